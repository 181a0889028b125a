"""Pure `Graph -> Graph` rewrites, run in order by `optimize`.

Every rewriting pass rebuilds the graph through a fresh `Builder`, so each one
also merges the common subexpressions its rewrites expose. Only rewrites that are exact in
IEEE arithmetic are made: `x*1 -> x`, but never `x*0 -> 0` (wrong for inf and
nan) nor `x+0 -> x` (wrong for -0.0, since -0.0 + 0.0 is 0.0).
"""

from __future__ import annotations

from dataclasses import replace

from .errors import CircuitError
from .graph import LEAVES, Builder, Graph, Node, fold_constant


def _rewrite(graph: Graph, rules, keep=None, done: int = 0) -> Graph:
    """Rebuild `graph` node by node, applying `rules` in order to each.

    A rule `rule(b, node, args)` (with `args` already rebuilt) returns the node
    that replaces `node` in the new builder `b`, or `None` to leave it to the next
    rule; a node no rule replaces is copied. `keep` masks nodes known to be dead;
    the first `done` nodes are kept as they are.
    """
    b = Builder(graph.nodes[:done])
    new: list[int] = [*range(done), *[-1] * (len(graph.nodes) - done)]
    for i in range(done, len(graph.nodes)):
        node = graph.nodes[i]
        if keep is not None and not keep[i]:
            continue
        args = tuple([new[a] for a in node.args])
        for rule in rules:
            result = rule(b, node, args)
            if result is not None:
                if node.name is not None:
                    b.name(result, node.name)
                break
        else:
            result = b.add(node.op, args, node.attr, node.origin, node.name)
        new[i] = result
    return b.graph(graph, [(name, new[n]) for name, n in graph.outputs],
                   [(name, new[n]) for name, n in graph.grads])


def _fold(b: Builder, node: Node, args: tuple[int, ...]) -> int | None:
    if node.op in LEAVES or not all(b.nodes[a].op == "const" for a in args):
        return None
    return b.const(fold_constant(node.op, [b.nodes[a].attr for a in args], node.origin))


def _fold_quietly(b: Builder, node: Node, args: tuple[int, ...]) -> int | None:
    """`_fold`, but a gradient gate that fails on constants stays, to raise at run time.

    `0 ** x` is fine, but its gradient holds `log(0)`: the circuit must still
    compile, and `backward` raise at that gate, with its position, if it is called.
    """
    try:
        return _fold(b, node, args)
    except CircuitError:
        return None


def fold(graph: Graph) -> Graph:
    """`gate(c1, c2) -> c`, with `c` computed by the gate table's own `fn`."""
    return _rewrite(graph, (_fold,))


def _is(b: Builder, node: int, value: float) -> bool:
    n = b.nodes[node]
    return n.op == "const" and repr(n.attr) == repr(value)  # tells 0.0 from -0.0


def _simplify(b: Builder, node: Node, args: tuple[int, ...]) -> int | None:
    op = node.op
    if op == "mul" and _is(b, args[0], 1.0):
        return args[1]
    if op in ("mul", "div", "pow") and _is(b, args[1], 1.0):
        return args[0]
    if op == "sub" and _is(b, args[1], 0.0):
        return args[0]
    if op == "add" and (_is(b, args[0], -0.0) or _is(b, args[1], -0.0)):
        return args[1] if _is(b, args[0], -0.0) else args[0]
    if op == "neg" and b.nodes[args[0]].op == "neg":
        return b.nodes[args[0]].args[0]
    if op == "pow" and (_is(b, args[1], 0.0) or _is(b, args[1], -0.0)):
        return b.const(1.0)
    if op == "pow" and _is(b, args[1], 2.0):  # one rounding either way: exact
        return b.add("mul", (args[0], args[0]), None, node.origin)
    return None


def simplify(graph: Graph) -> Graph:
    """`x*1 -> x`, `x/1 -> x`, `x**1 -> x`, `x-0 -> x`, `x+(-0.0) -> x`, `--x -> x`,
    `x**0 -> 1` (C's pow gives 1 for every x, nan included), `x**2 -> x*x`."""
    return _rewrite(graph, (_simplify,))


def live_nodes(graph: Graph) -> list[bool]:
    """For each node, whether an output or gradient depends on it."""
    live = [False] * len(graph.nodes)
    for root in graph.roots:
        live[root] = True
    for i in range(len(graph.nodes) - 1, -1, -1):
        if live[i]:
            for a in graph.nodes[i].args:
                live[a] = True
    return live


def dce(graph: Graph) -> Graph:
    """Drop every node that no output or gradient depends on."""
    live = live_nodes(graph)
    if all(live):
        return graph
    new = [-1] * len(graph.nodes)
    nodes = []
    for i, node in enumerate(graph.nodes):
        if live[i]:
            new[i] = len(nodes)
            nodes.append(node._replace(args=tuple([new[a] for a in node.args])) if node.args else node)
    return replace(graph, nodes=tuple(nodes), outputs=tuple((n, new[i]) for n, i in graph.outputs),
                   grads=tuple((n, new[i]) for n, i in graph.grads))


PASSES = (fold, simplify, dce)


def optimize(graph: Graph, done: int = 0) -> Graph:
    """`dce(simplify(fold(graph)))`, with folding and simplification fused into one
    traversal (each rule sees arguments the other has already rewritten).

    `done` says that the graph's first `done` nodes are an optimized graph already
    (the forward part of a gradient graph), so only the nodes after them are visited.
    """
    rules = (_fold if done == 0 else _fold_quietly, _simplify)
    return dce(_rewrite(graph, rules, keep=live_nodes(graph), done=done))
