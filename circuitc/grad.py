"""Reverse mode as a graph transformation.

`grad(graph)` returns the same graph with more gates appended: for each output a
`seed` leaf (the output's adjoint, `d_<output>` in generated code), and the
gates that carry adjoints back to the inputs, gate by gate in reverse order,
using each gate's derivative rule from the gate table. A wire that fans out
receives one contribution per consumer; they are summed (the chain rule's sum).
`grads` then names the adjoint of every input. Because the result is ordinary
graph, the optimizer and every emitter apply to it unchanged. The new gates are
folded and simplified as they are made (`passes.GRADIENT_REWRITES`), so of the
optimizer only dead-code elimination is left to do: `dce(grad(graph), len(graph.nodes))`
for an optimized `graph`.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

from .errors import CircuitError, did_you_mean
from .gates import GATES
from .graph import LEAVES, Builder, Graph, Origin, by_bus, needed
from .guards import guards, lazy
from .passes import GRADIENT_REWRITES

ADJOINT = "\N{PARTIAL DIFFERENTIAL}"  # prefix of adjoint names; never part of a `.circ` name


class GateBuilder:
    """The builder derivative rules see: `b.mul(x, y)` appends a `mul` gate.

    Each gate is a method made once here (not looked up per call), as rules
    run several times for every gate of a circuit.
    """

    def __init__(self, builder: Builder):
        self.origin: Origin | None = None
        self.const = builder.const
        self.is_const = builder.is_const
        self.const_value = builder.const_value
        self.node = builder.nodes.__getitem__  # a node of the graph, for a rule that walks it
        for op in GATES:
            setattr(self, op, self._gate(builder.add, op))

    def _gate(self, add, op: str):
        def gate(*args):
            return add(op, args, None, self.origin)
        return gate



def wrt_elements(graph: Graph, wrt: Sequence[str] | None, fix: Sequence[str] | None
                 ) -> tuple[str, ...]:
    """The input elements of `graph` to differentiate with respect to, in order: those of
    the inputs `wrt` names, in its order, or of every input but those `fix` names (every
    input by default); a bus is named as a whole. A `CircuitError` for both, for a name
    that is not an input, or for one named twice."""
    if wrt is not None and fix is not None:
        raise CircuitError("give --wrt or --fix, not both")
    inputs = by_bus(graph.inputs)
    for option, names in (("--wrt", wrt), ("--fix", fix)):
        for k, name in enumerate(names or ()):
            if name not in inputs:
                raise CircuitError(f"{option} names {name!r}, which is not an input"
                                   + did_you_mean(name, inputs))
            if name in names[:k]:
                raise CircuitError(f"{option} names {name!r} twice")
    if wrt is None:
        wrt = [name for name in inputs if name not in (fix or ())]
    return tuple(e for name in wrt for e in inputs[name])


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

    Laziness (`guards`): a contribution a gate makes under a deeper guard than its
    operand's (a node only a `where` branch needs, to a node needed outside it, or to an
    input, whose adjoint is a gradient) is wrapped as `where(c, part, 0)` per condition it is deeper by, so that the adjoint
    computes nothing of a branch not taken (`1/x` of `log`'s rule at a point where the
    branch `log(x)` is not taken), and a masked target adds 0 there, never nan.
    """
    b = Builder(graph.nodes, GRADIENT_REWRITES)
    gates = GateBuilder(b)
    add = b.add
    nodes = graph.nodes
    guard = guards(nodes, [n for _, n in graph.outputs]) if lazy(nodes) else None
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
        o = node.origin  # a plain constructor: this runs for every gate
        origin = gates.origin = o and Origin(o.span, f"the gradient of {o.label}", o.calls,
                                             o.element)
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
        parts = GATES[node.op].derivative(gates, g, i, *node.args)
        for arg, part in zip(node.args, parts, strict=True):
            if part is not None and nodes[arg].op != "const":  # nothing can change a constant
                if guard is not None:
                    # An input's adjoint is a gradient, needed everywhere: `()` deep.
                    depth = 0 if nodes[arg].op in LEAVES else len(guard[arg])
                    if len(guard[i]) > depth:
                        part = _within(gates, guard[i][depth:], part)
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


def _within(gates: GateBuilder, conditions, part: int) -> int:
    """`part` where each of `conditions` ((node, branch), outermost first) takes its
    branch, else 0: `where(c, part, 0)`, lazy in `part`."""
    zero = gates.const(0.0)
    for c, branch in reversed(conditions):
        part = gates.where(c, part, zero) if branch else gates.where(c, zero, part)
    return part


# -- forward mode -----------------------------------------------------------------

TANGENT = "\N{DOT OPERATOR}"  # prefix of tangent names; never part of a `.circ` name


def _users(nodes, roots) -> list[list[int]]:
    """For each node, the gates that read it and that some node of `roots` depends on
    (a tangent pushed anywhere else would be thrown away)."""
    need = needed(nodes, roots)
    users: list[list[int]] = [[] for _ in nodes]
    for i, node in enumerate(nodes):
        if need[i]:
            for a in dict.fromkeys(node.args):
                users[a].append(i)
    return users


def _push(b: Builder, gates: GateBuilder, users: list[list[int]], start: dict[int, int]
          ) -> dict[int, int]:
    """Tangents pushed forward from `start` ({node: its tangent}) through the first
    `len(users)` nodes of `b`: {node: tangent} for every node that depends on a start
    node; the others' tangents are zero.

    A gate's tangent is the sum, over its operands with a tangent `t`, of that
    operand's part of the gate's derivative rule applied to `t`. A rule is linear in
    the adjoint it is given (each part is `g` times a local derivative), so the same
    table serves both modes. Only the nodes that depend on `start` are visited, in
    topological (index) order.
    """
    nodes, add = b.nodes, b.add
    tangent = dict(start)
    queue = sorted({u for n in start for u in users[n]})
    seen = set(queue)
    while queue:
        i = heapq.heappop(queue)
        op, args, _, origin, _ = nodes[i]
        gates.origin = origin and Origin(origin.span, f"the tangent of {origin.label}",
                                         origin.calls, origin.element)
        total = None
        for k, a in enumerate(args):
            t = tangent.get(a)
            if t is None:
                continue
            part = GATES[op].derivative(gates, t, i, *args)[k]
            if part is not None:
                total = part if total is None else add("add", (total, part), None, gates.origin)
        if total is None:
            continue
        tangent[i] = total
        for u in users[i]:
            if u not in seen:
                seen.add(u)
                heapq.heappush(queue, u)
    return tangent


def _inputs(graph: Graph) -> dict[str, int]:
    return {node.attr: i for i, node in enumerate(graph.nodes) if node.op == "input"}


def directional(graph: Graph, names, pairs) -> Graph:
    """`graph` with a `tangent` leaf per input in `names` (the direction it moves in,
    named `TANGENT + input`) and, in `tangents`, the tangent of each `(label, node)` of
    `pairs`: the derivative of that node along the directions."""
    b = Builder(graph.nodes, GRADIENT_REWRITES)
    inputs = _inputs(graph)
    start = {}
    for name in names:
        t = b.add("tangent", (), name, None, TANGENT + name)
        if name in inputs:
            start[inputs[name]] = t
    tangent = _push(b, GateBuilder(b), _users(graph.nodes, [n for _, n in pairs]), start)
    return b.graph(graph, graph.outputs, graph.grads,
                   [(label, tangent.get(n, b.const(0.0))) for label, n in pairs])


def jvp_graph(graph: Graph) -> Graph:
    """`graph` with forward mode appended: a direction per input, and in `tangents` each
    output's directional derivative (labelled by output)."""
    return directional(graph, graph.inputs, graph.outputs)


def hvp_graph(backward: Graph) -> Graph:
    """A gradient graph with the Hessian-vector product appended (forward mode over
    the gradient): a direction `v` per input of `grads` and, in `tangents`, each
    gradient's tangent, `(H v)` for that input."""
    return directional(backward, [name for name, _ in backward.grads], backward.grads)


def hessian_graph(backward: Graph) -> Graph:
    """A gradient graph with the entries of the Hessian appended, one column at a time
    (forward mode over the gradient along each input of `grads`), in `tangents`,
    labelled `"j,k"` (row, column, counting the inputs of `grads`), for `j <= k` only and
    only where the entry is not known to be zero: the pattern of the upper triangle.
    The lower triangle is the upper one's mirror, so the Hessian is symmetric exactly.
    """
    b = Builder(backward.nodes, GRADIENT_REWRITES)
    gates, inputs = GateBuilder(b), _inputs(backward)
    users = _users(backward.nodes, [n for _, n in backward.grads])
    entries = []
    for k, (name, _) in enumerate(backward.grads):
        if name not in inputs:
            continue
        column = _push(b, gates, users, {inputs[name]: b.const(1.0)})
        for j, (_, g) in enumerate(backward.grads[:k + 1]):
            h = column.get(g)
            if h is not None and not (b.is_const(h) and b.nodes[h].attr == 0.0):
                entries.append((f"{j},{k}", h))
    return b.graph(backward, backward.outputs, backward.grads, entries)
