"""The gate graph a drawing shows (`circuit`), and each node's value and gradient
(`with_values`): a `Drawing`, which every format writes.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..api import written_graph
from ..draws import DEFAULT_SEED
from ..errors import CircuitError
from ..grad import grad_with_adjoints
from ..graph import Builder, Graph, run
from ..passes import REWRITES, live_nodes, optimize


@dataclass(frozen=True)
class Drawing:
    """A graph to draw and, when evaluated, each node's value and gradient.

    `values[i]` and `grads[i]` belong to `graph.nodes[i]`; a constant's gradient is
    `None` (nothing can change a constant), and so are both of a gate no output
    depends on (it is not evaluated). `at` is the point and `seeds` the
    weight of each output in the function whose gradient is shown.
    """

    graph: Graph
    optimized: bool = True
    at: dict[str, float] | None = None
    seeds: dict[str, float] | None = None
    values: tuple[float, ...] | None = None
    grads: tuple[float | None, ...] | None = None


def circuit(text: str, filename: str = "<string>", optimized: bool = True,
            sizes: dict[str, int] | None = None, seed: int = DEFAULT_SEED) -> Graph:
    """The forward graph of the circuit in `text`: optimized, or as written.

    Either way the file must compile (the optimizer's constant folding included); a
    bad one raises `CircuitError` with the file's name and text attached.
    """
    with written_graph(text, filename, sizes, seed) as (written, _):
        forward = optimize(written)
    return forward if optimized else written


def structure(graph: Graph, optimized: bool = True) -> Drawing:
    """A drawing of the graph alone, without values or gradients."""
    return Drawing(graph, optimized)


def with_values(graph: Graph, at: dict[str, float | None], seeds: dict[str, float] | None = None,
                optimized: bool = True) -> Drawing:
    """A drawing with the value at `at` and the gradient of every node an output
    depends on, where they are known.

    The gradient is that of `sum(seeds[out] * out)` (every seed 1.0 by default),
    computed by the gradient graph that `grad` builds, evaluated with the gate
    table. A graph as written (not `optimized`) has the values the generated code
    computes (see `_as_compiled`), so that both drawings agree with `eval`. A gate
    no output depends on (a dead wire of the graph as written) is not evaluated, as
    the generated code does not evaluate it: its value and gradient are `None`. A
    gate that fails on its operands (`log(-1)`) raises a `CircuitError` at its
    source span (the caller attaches the file's text). An input whose value in `at` is
    `None` (none given, no default) has none, nor has anything computed from it: a
    value or a gradient that needs it is `None` (`f = w*x` without `x`: `w`'s gradient
    is unknown, `x`'s is `w`).
    """
    seeds = {name: 1.0 for name, _ in graph.outputs} if seeds is None else dict(seeds)
    full, adjoint = grad_with_adjoints(graph)
    values = _run(full, at, seeds, len(graph.nodes), None if optimized else _as_compiled(graph, at),
                  list(adjoint.values()))
    live = live_nodes(graph)
    grads = tuple(None if node.op == "const" or not live[i]
                  else values[adjoint[i]] if i in adjoint else 0.0
                  for i, node in enumerate(graph.nodes))
    return Drawing(graph, optimized, dict(at), seeds, tuple(values[:len(graph.nodes)]), grads)


def _as_compiled(graph: Graph, at: dict[str, float]) -> list[float | None]:
    """The value of each node of `graph` as the generated code computes it: the value of
    the node the optimizer's rewrites make of it (`None` for a node no output needs).

    The rewrites are exact where both forms give a number, but not in what can fail:
    `x**2 -> x*x` gives inf where `math.pow` raises.
    """
    live = live_nodes(graph)
    b = Builder((), REWRITES)
    new = [-1] * len(graph.nodes)
    for i, (op, args, attr, origin, _) in enumerate(graph.nodes):
        if live[i]:
            new[i] = b.add(op, tuple([new[a] for a in args]), attr, origin)
    compiled = b.graph(graph, [(name, new[n]) for name, n in graph.outputs])
    values = _run(compiled, at, {}, len(compiled.nodes), roots=())
    return [None if n < 0 else values[n] for n in new]


def _run(graph: Graph, at: dict[str, float], seeds: dict[str, float],
         forward: int, known: list[float | None] | None = None, roots=None) -> list[float | None]:
    """`run(graph, at, seeds)` for the gates the roots depend on (`None` for the others,
    and for a gate that reads a `None`), naming the gate and its span when one fails. A
    gate only the branch of a `where` not taken needs is not computed, nor its gradient:
    both are `None`.

    The operands are quoted for the first `forward` nodes, the circuit's own gates;
    a gradient gate's operands would mean nothing to the reader. `known`, if given,
    holds the values of those first nodes, which are then not computed again. `roots`, the
    nodes wanted besides the graph's roots (`graph.run`).
    """
    live = live_nodes(graph)

    def apply(gate, args, i):
        if not live[i]:
            return None
        if known is not None and i < forward:
            return known[i]
        read = args if gate.name != "where" or args[0] is None else (
            args[0], args[1] if args[0] else args[2])  # a `where` reads one branch
        if None in read:  # it reads a value not known: an input without one
            return None
        try:
            return gate.fn(*args)
        except (ArithmeticError, ValueError) as e:
            origin = graph.nodes[i].origin
            what = origin.label if origin else f"'{gate.label}'"
            if i < forward:
                what += " on " + ", ".join(map(repr, args))
            raise CircuitError(f"{what} fails: {e}", origin and origin.span,
                               labels=origin.call_labels() if origin else ()) from None

    return run(graph, at, seeds, apply, missing=None, roots=roots)
