"""Pure `Graph -> Graph` rewrites, run in order by `optimize`.

Every pass rebuilds the graph through a fresh `Builder`, so each one also merges
the common subexpressions its rewrites expose. Only rewrites that are exact in
IEEE arithmetic are made: `x*1 -> x`, but never `x*0 -> 0` (wrong for inf and
nan) nor `x+0 -> x` (wrong for -0.0, since -0.0 + 0.0 is 0.0).
"""

from __future__ import annotations

from .errors import CircuitError
from .gates import GATES
from .graph import Builder, Graph, Node


def _rewrite(graph: Graph, visit, keep=None) -> Graph:
    """Rebuild `graph` node by node; `visit(b, node, args)` returns the new node."""
    b = Builder()
    new: list[int | None] = [None] * len(graph.nodes)
    for i, node in enumerate(graph.nodes):
        if keep is not None and not keep[i]:
            continue
        args = tuple(new[a] for a in node.args)
        new[i] = visit(b, node, args)
        if node.name is not None:
            b.name(new[i], node.name)
    return b.graph(graph, [(name, new[n]) for name, n in graph.outputs],
                   [(name, new[n]) for name, n in graph.grads])


def _copy(b: Builder, node: Node, args: tuple[int, ...]) -> int:
    return b.add(node.op, args, node.attr, node.origin)


def fold(graph: Graph) -> Graph:
    """`gate(c1, c2) -> c`, with `c` computed by the gate table's own `fn`."""
    def visit(b, node, args):
        if node.op not in GATES or not all(b.is_const(a) for a in args):
            return _copy(b, node, args)
        values = [b.nodes[a].attr for a in args]
        try:
            return b.const(GATES[node.op].fn(*values))
        except (ArithmeticError, ValueError) as exc:
            label = node.origin.label if node.origin else node.op
            raise CircuitError(f"{label} fails on constant operands {tuple(values)}: {exc}",
                               node.origin and node.origin.span) from None
    return _rewrite(graph, visit)


def _is(b: Builder, node: int, value: float) -> bool:
    n = b.nodes[node]
    return n.op == "const" and repr(n.attr) == repr(value)  # tells 0.0 from -0.0


def simplify(graph: Graph) -> Graph:
    """`x*1 -> x`, `x/1 -> x`, `x**1 -> x`, `x-0 -> x`, `x+(-0.0) -> x`, `--x -> x`,
    `x**0 -> 1` (C's pow gives 1 for every x, nan included), `x**2 -> x*x`."""
    def visit(b, node, args):
        op = node.op
        if op == "mul" and _is(b, args[0], 1.0):
            return args[1]
        if op in ("mul", "div", "pow") and _is(b, args[1], 1.0):
            return args[0]
        if op == "sub" and _is(b, args[1], 0.0):
            return args[0]
        if op == "add" and (_is(b, args[0], -0.0) or _is(b, args[1], -0.0)):
            return args[1] if _is(b, args[0], -0.0) else args[0]
        if op == "pow" and (_is(b, args[1], 0.0) or _is(b, args[1], -0.0)):
            return b.const(1.0)
        if op == "pow" and _is(b, args[1], 2.0):  # one rounding either way: exact
            return b.add("mul", (args[0], args[0]), None, node.origin)
        if op == "neg" and b.nodes[args[0]].op == "neg":
            return b.nodes[args[0]].args[0]
        return _copy(b, node, args)
    return _rewrite(graph, visit)


def dce(graph: Graph) -> Graph:
    """Drop every node that no output or gradient depends on."""
    live = [False] * len(graph.nodes)
    for root in graph.roots:
        live[root] = True
    for i in range(len(graph.nodes) - 1, -1, -1):
        if live[i]:
            for a in graph.nodes[i].args:
                live[a] = True
    return _rewrite(graph, _copy, keep=live)


PASSES = (fold, simplify, dce)


def optimize(graph: Graph) -> Graph:
    for p in PASSES:
        graph = p(graph)
    return graph
