"""Reverse mode as a graph transformation.

`grad(graph)` returns the same graph with more gates appended: for each output a
`seed` leaf (the output's adjoint, `d_<output>` in generated code), and the
gates that carry adjoints back to the inputs, gate by gate in reverse order,
using each gate's derivative rule from the gate table. A wire that fans out
receives one contribution per consumer; they are summed (the chain rule's sum).
`grads` then names the adjoint of every input. Because the result is ordinary
graph, the optimizer and every emitter apply to it unchanged. The new gates are
folded and simplified as they are made (`passes.GRADIENT_RULES`), so of the
optimizer only dead-code elimination is left to do: `dce(grad(graph), len(graph.nodes))`
for an optimized `graph`.
"""

from __future__ import annotations

from .gates import GATES
from .graph import LEAVES, Builder, Graph, Origin
from .passes import GRADIENT_RULES

ADJOINT = "\N{PARTIAL DIFFERENTIAL}"  # prefix of adjoint names; never part of a `.circ` name


class _Rules:
    """The builder derivative rules see: `b.mul(x, y)` appends a `mul` gate.

    Each gate is a method made once here (not looked up per call), as rules
    run several times for every gate of a circuit.
    """

    def __init__(self, builder: Builder):
        self.origin: Origin | None = None
        self.const = builder.const
        self.is_const = builder.is_const
        self.const_value = builder.const_value
        for op in GATES:
            setattr(self, op, self._gate(builder.add, op))

    def _gate(self, add, op: str):
        def gate(*args):
            return add(op, args, None, self.origin)
        return gate


def grad(graph: Graph, wrt: tuple[str, ...] | None = None) -> Graph:
    """Append the gradient of `sum(d_out * out)` with respect to each input in `wrt`."""
    return grad_with_adjoints(graph, wrt)[0]


def grad_with_adjoints(graph: Graph, wrt: tuple[str, ...] | None = None
                       ) -> tuple[Graph, dict[int, int]]:
    """`grad(graph, wrt)`, and `{node: its adjoint node}` for the nodes of `graph`.

    The result's first `len(graph.nodes)` nodes are `graph`'s own, so a node keeps
    its index. A node missing from the mapping receives no contribution (no output
    depends on it, or every rule says its derivative is zero): its gradient is 0.
    Constants are missing from it: nothing can change a constant.
    """
    b = Builder(graph.nodes, GRADIENT_RULES)
    rules = _Rules(b)
    add = b.add
    nodes = graph.nodes
    pending: list[list[int] | None] = [None] * len(nodes)  # node -> its contributions so far
    for name, node in graph.outputs:
        seed = add("seed", (), name)
        b.name(seed, ADJOINT + name)
        if pending[node] is None:
            pending[node] = []
        pending[node].append(seed)
    adjoint: dict[int, int] = {}
    for i in range(len(nodes) - 1, -1, -1):
        contributions = pending[i]
        if contributions is None:
            continue
        pending[i] = None
        node = nodes[i]
        origin = rules.origin = node.origin and Origin(node.origin.span,
                                                       f"the gradient of {node.origin.label}")
        g = contributions[0]
        for c in contributions[1:]:
            # An input has no position: its sum is placed at a gate it comes from, so an
            # overflowing sum (an error in the numpy target) names a place in the file.
            g = add("add", (g, c), None, origin or b.nodes[c].origin or b.nodes[g].origin)
        if node.name is not None:
            b.name(g, ADJOINT + node.name)
        adjoint[i] = g
        if node.op in LEAVES:
            continue
        parts = GATES[node.op].derivative(rules, g, i, *node.args)
        for arg, part in zip(node.args, parts, strict=True):
            if part is not None and nodes[arg].op != "const":  # nothing can change a constant
                if pending[arg] is None:
                    pending[arg] = [part]
                else:
                    pending[arg].append(part)
    inputs = {node.attr: i for i, node in enumerate(nodes) if node.op == "input"}
    grads = []
    for name in graph.inputs if wrt is None else wrt:
        node = adjoint.get(inputs.get(name, -1))
        grads.append((name, b.const(0.0) if node is None else node))
    return b.graph(graph, graph.outputs, grads), adjoint
