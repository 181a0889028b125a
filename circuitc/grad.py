"""Reverse mode as a graph transformation.

`grad(graph)` returns the same graph with more gates appended: for each output a
`seed` leaf (the output's adjoint, `d_<output>` in generated code), and the
gates that carry adjoints back to the inputs, gate by gate in reverse order,
using each gate's derivative rule from the gate table. A wire that fans out
receives one contribution per consumer; they are summed (the chain rule's sum).
`grads` then names the adjoint of every input. Because the result is ordinary
graph, the optimizer and every emitter apply to it unchanged.
"""

from __future__ import annotations

from .gates import GATES
from .graph import LEAVES, Builder, Graph, Origin

ADJOINT = "\N{PARTIAL DIFFERENTIAL}"  # prefix of adjoint names; never part of a `.circ` name


class _Rules:
    """The builder derivative rules see: `b.mul(x, y)` appends a `mul` gate."""

    def __init__(self, builder: Builder):
        self._b = builder
        self.origin: Origin | None = None
        self.const = builder.const
        self.is_const = builder.is_const

    def __getattr__(self, op: str):
        if op not in GATES:
            raise AttributeError(op)
        return lambda *args: self._b.add(op, args, None, self.origin)


def grad(graph: Graph, wrt: tuple[str, ...] | None = None) -> Graph:
    """Append the gradient of `sum(d_out * out)` with respect to each input in `wrt`."""
    return grad_with_adjoints(graph, wrt)[0]


def grad_with_adjoints(graph: Graph, wrt: tuple[str, ...] | None = None
                       ) -> tuple[Graph, dict[int, int]]:
    """`grad(graph, wrt)`, and `{node: its adjoint node}` for the nodes of `graph`.

    The result's first `len(graph.nodes)` nodes are `graph`'s own, so a node keeps
    its index. A node missing from the mapping receives no contribution (no output
    depends on it, or every rule says its derivative is zero): its gradient is 0.
    """
    b = Builder(graph.nodes)
    rules = _Rules(b)
    pending: dict[int, list[int]] = {}
    for name, node in graph.outputs:
        seed = b.add("seed", (), name)
        b.name(seed, ADJOINT + name)
        pending.setdefault(node, []).append(seed)
    adjoint: dict[int, int] = {}
    for i in range(len(graph.nodes) - 1, -1, -1):
        contributions = pending.pop(i, None)
        if contributions is None:
            continue
        node = graph.nodes[i]
        rules.origin = node.origin and Origin(node.origin.span, f"the gradient of {node.origin.label}")
        g = contributions[0]
        for c in contributions[1:]:
            g = b.add("add", (g, c), None, rules.origin)
        if node.name is not None:
            b.name(g, ADJOINT + node.name)
        adjoint[i] = g
        if node.op in LEAVES:
            continue
        parts = GATES[node.op].derivative(rules, g, i, *node.args)
        for arg, part in zip(node.args, parts, strict=True):
            if part is not None:
                pending.setdefault(arg, []).append(part)
    inputs = {node.attr: i for i, node in enumerate(graph.nodes) if node.op == "input"}
    grads = []
    for name in graph.inputs if wrt is None else wrt:
        node = adjoint.get(inputs.get(name, -1))
        grads.append((name, b.const(0.0) if node is None else node))
    return b.graph(graph, graph.outputs, grads), adjoint
