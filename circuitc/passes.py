"""Pure `Graph -> Graph` rewrites, run in order by `optimize`.

A rewrite is a function the `Builder` applies to each gate as it is added; a pass
rebuilds the graph through a fresh builder with its rewrites, so it also merges the
common subexpressions they expose. `grad` builds with the same rewrites
(`GRADIENT_REWRITES`), so gradients come out folded and simplified. Only rewrites that
are exact in IEEE arithmetic are made: `x*1 -> x`, but never `x*0 -> 0` (wrong for
inf and nan) nor `x+0 -> x` (wrong for -0.0, since -0.0 + 0.0 is 0.0).
"""

from __future__ import annotations

from dataclasses import replace

from .errors import CircuitError
from .gates import GATES
from .graph import Builder, Graph, Node, Origin, fold_constant, needed, new_node, renumbered


def _rewrite(graph: Graph, rewrites, keep=None) -> Graph:
    """Rebuild `graph` node by node through a `Builder` that applies `rewrites`;
    `keep` masks nodes known to be dead."""
    nodes = graph.nodes
    b = Builder((), rewrites)
    add = b.add
    new = [-1] * len(nodes)  # old node -> new node
    for i, (op, old, attr, origin, name) in enumerate(nodes):
        if keep is not None and not keep[i]:
            continue
        new[i] = add(op, renumbered(old, new), attr, origin, name)
    return b.graph(graph, [(name, new[n]) for name, n in graph.outputs],
                   [(name, new[n]) for name, n in graph.grads],
                   [(name, new[n]) for name, n in graph.tangents])


def _fold(b: Builder, op: str, args: tuple[int, ...], origin: Origin | None) -> int | None:
    nodes = b.nodes
    for a in args:
        if nodes[a].op != "const":
            return None
    if not GATES[op].folds:
        return None
    return b.const(fold_constant(op, [nodes[a].attr for a in args], origin))


def _fold_quietly(b: Builder, op: str, args: tuple[int, ...], origin: Origin | None) -> int | None:
    """`_fold`, but a gradient gate that fails on constants stays, to raise at run time.

    `0 ** x` is fine, but its gradient holds `log(0)`: the circuit must still
    compile, and `backward` raise at that gate, with its position, if it is called.
    """
    try:
        return _fold(b, op, args, origin)
    except CircuitError:
        return None


def fold(graph: Graph) -> Graph:
    """`gate(c1, c2) -> c`, with `c` computed by the gate table's own `fn`."""
    return _rewrite(graph, (_fold,))


def _value(b: Builder, node: int) -> str | None:
    """The `repr` of `node`'s value if it is a constant (`repr` tells 0.0 from -0.0)."""
    n = b.nodes[node]
    return repr(n.attr) if n.op == "const" else None


def _simplify_mul(b: Builder, op: str, args: tuple[int, ...], origin: Origin | None) -> int | None:
    if _value(b, args[0]) == "1.0":
        return args[1]
    return args[0] if _value(b, args[1]) == "1.0" else None


def _simplify_div(b: Builder, op: str, args: tuple[int, ...], origin: Origin | None) -> int | None:
    return args[0] if _value(b, args[1]) == "1.0" else None


def _negated(b: Builder, node: int) -> int | None:
    """`x` if `node` is `-x`."""
    n = b.nodes[node]
    return n.args[0] if n.op == "neg" else None


def _simplify_sub(b: Builder, op: str, args: tuple[int, ...], origin: Origin | None) -> int | None:
    if _value(b, args[1]) == "0.0":
        return args[0]
    x = _negated(b, args[1])
    return None if x is None else b.add("add", (args[0], x), None, origin)


def _simplify_add(b: Builder, op: str, args: tuple[int, ...], origin: Origin | None) -> int | None:
    if _value(b, args[0]) == "-0.0":
        return args[1]
    if _value(b, args[1]) == "-0.0":
        return args[0]
    # IEEE defines y - x as y + (-x): the same result, signed zeros included, one gate less.
    x = _negated(b, args[0])
    if x is not None:
        return b.add("sub", (args[1], x), None, origin)
    x = _negated(b, args[1])
    return None if x is None else b.add("sub", (args[0], x), None, origin)


def _simplify_neg(b: Builder, op: str, args: tuple[int, ...], origin: Origin | None) -> int | None:
    return _negated(b, args[0])


def _simplify_pow(b: Builder, op: str, args: tuple[int, ...], origin: Origin | None) -> int | None:
    exponent = _value(b, args[1])
    if exponent == "1.0":
        return args[0]
    if exponent in ("0.0", "-0.0") and b.cannot_raise(args[0]):  # `sqrt(-1) ** 0` must raise
        return b.const(1.0)
    if exponent == "2.0":  # one rounding either way: exact
        return b.add("mul", (args[0], args[0]), None, origin)
    return None


def _simplify_where(b: Builder, op, args, origin) -> int | None:
    """`where(c, x, x) -> x`; `where(1, x, y) -> x` and `where(0, x, y) -> y` for a
    constant condition (nonzero, nan included, is true)."""
    c, x, y = args
    if x == y:
        return x
    if b.is_const(c):
        return x if b.const_value(c) else y
    return None


_SIMPLIFICATIONS = {"mul": _simplify_mul, "div": _simplify_div, "sub": _simplify_sub,
                    "add": _simplify_add, "neg": _simplify_neg, "pow": _simplify_pow,
                    "where": _simplify_where}


def _simplify(b: Builder, op: str, args: tuple[int, ...], origin: Origin | None) -> int | None:
    rewrite = _SIMPLIFICATIONS.get(op)
    return None if rewrite is None else rewrite(b, op, args, origin)


def simplify(graph: Graph) -> Graph:
    """`x*1 -> x`, `x/1 -> x`, `x**1 -> x`, `x-0 -> x`, `x+(-0.0) -> x`, `--x -> x`,
    `-x + y -> y - x`, `y - -x -> y + x`, `x**0 -> 1` (C's pow gives 1 for every x,
    nan included; only where computing x cannot raise, so `sqrt(-1)**0` still does),
    `x**2 -> x*x`, `where(c, x, x) -> x`, `where(1, x, y) -> x`, `where(0, x, y) -> y`."""
    return _rewrite(graph, (_simplify,))


def live_nodes(graph: Graph, done: int = 0) -> list[bool]:
    """For each node, whether an output or gradient depends on it.

    The first `done` nodes are taken to be live without looking: they are an
    optimized graph, every node of which its outputs need.
    """
    return needed(graph.nodes, graph.roots, done)


def dce(graph: Graph, done: int = 0) -> Graph:
    """Drop every node that no output or gradient depends on (the first `done` nodes
    are known to be live: see `live_nodes`)."""
    return _without_dead(graph, live_nodes(graph, done))


def _without_dead(graph: Graph, live: list[bool]) -> Graph:
    """`graph` without the nodes `live` says are dead, the others renumbered."""
    if all(live):
        return graph
    first = live.index(False)  # the nodes before it keep their numbers
    new = list(range(len(graph.nodes)))
    nodes = list(graph.nodes[:first])
    for i in range(first, len(graph.nodes)):
        if live[i]:
            new[i] = len(nodes)
            op, args, attr, origin, name = node = graph.nodes[i]
            if args:
                node = new_node(Node, (op, renumbered(args, new), attr, origin, name))
            nodes.append(node)
    return replace(graph, nodes=tuple(nodes), outputs=tuple((n, new[i]) for n, i in graph.outputs),
                   grads=tuple((n, new[i]) for n, i in graph.grads),
                   tangents=tuple((n, new[i]) for n, i in graph.tangents))


PASSES = (fold, simplify, dce)


# Simplification first: its rewrites are exact, so a gate of constants folds to the same
# value either way, except `c**2 -> c*c`, which must fold as `x**2` runs, to inf where
# `math.pow` would raise (`1e200 ** 2`).
REWRITES = (_simplify, _fold)
GRADIENT_REWRITES = (_simplify, _fold_quietly)  # see `_fold_quietly`; `grad` builds with these


def optimize(graph: Graph) -> Graph:
    """`dce(fold(simplify(graph)))`, with simplification and folding fused into one
    traversal (each rewrite sees arguments the other has already rewritten)."""
    return dce(_rewrite(graph, REWRITES, keep=live_nodes(graph)))
