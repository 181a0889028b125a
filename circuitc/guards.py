"""Which nodes of a gate graph only one branch of a `where` needs, and under which
conditions: what keeps the branch not taken from being computed.

A node's *guard* is the path of conditions under which it is needed: a tuple of
`(condition node, branch)` pairs, outermost first, `branch` True for `where`'s second
operand (taken where the condition is nonzero) and False for its third. A use of a node
as a branch of `where(c, a, b)` asks for the where's own guard plus `(c, True)` (or
`(c, False)`); any other use asks for its user's guard; a root, or a node nothing reads,
is needed unconditionally (`()`). A node's guard is the longest common prefix of what
its uses ask for, so a node is computed under a condition only when every use is under
it: code sinks into branches as far as it can and no further. Guards are keyed by the
condition node rather than by the `where`, so the adjoints `grad` wraps in a
`where` of the same condition share a guard with the forward nodes they read.

`graph.run` evaluates a node only where its guard holds; the python target writes the
guarded nodes inside `if c:` blocks (`schedule` puts each condition before the nodes
it guards), the numpy target computes them with floating-point errors ignored and lets
`np.where` choose.
"""

from __future__ import annotations

Guard = tuple[tuple[int, bool], ...]


def guards(nodes, roots=(), sinks: bool = True) -> list[Guard]:
    """Per node of `nodes`, its guard: `()` for every node but those that only branches
    of a `where` need. Nodes with no users count as roots, as do `roots`; without
    `sinks`, they do not: a node no root needs has the guard None (it is not computed)."""
    n = len(nodes)
    guard: list[Guard | None] = [None] * n
    for root in roots:
        guard[root] = ()
    for i in range(n - 1, -1, -1):
        g = guard[i]
        if g is None:  # no user: a root, with `sinks`
            if not sinks:
                continue
            g = guard[i] = ()
        op, args = nodes[i][0], nodes[i][1]
        if op == "where":
            c = args[0]
            wanted = ((c, g), (args[1], (*g, (c, True))), (args[2], (*g, (c, False))))
        else:
            wanted = ((a, g) for a in args)
        for a, want in wanted:
            old = guard[a]
            if old is None:
                guard[a] = want
            elif old != want:
                k = 0
                while k < len(old) and k < len(want) and old[k] == want[k]:
                    k += 1
                guard[a] = old[:k]
    return guard  # type: ignore[return-value]


def lazy(nodes) -> bool:
    """Whether any node is a `where` (else every guard is `()`)."""
    return any(node[0] == "where" for node in nodes)


def schedule(nodes, guard: list[Guard | None]) -> list[int]:
    """Every node, in an order where each comes after its operands and after the
    conditions of its guard (index order, but for a guarded node that comes before its
    condition: a depth-first walk, deterministic)."""
    placed = [False] * len(nodes)
    order: list[int] = []
    for i in range(len(nodes)):
        stack = [i]
        while stack:
            top = stack[-1]
            if placed[top]:
                stack.pop()
                continue
            waiting = [a for a in (*nodes[top][1], *(c for c, _ in guard[top] or ()))
                       if not placed[a]]
            if waiting:
                stack.extend(reversed(waiting))
            else:
                placed[top] = True
                order.append(top)
                stack.pop()
    return order


def holds(guard: Guard, values) -> bool:
    """Whether every condition of `guard` takes its branch, given the nodes' `values`."""
    return all(bool(values[c]) is branch for c, branch in guard)


def conditions(guard: list[Guard] | None) -> set[int]:
    """The condition nodes of the guards `guard` (none for None)."""
    return {c for g in guard or () for c, _ in g}


def written_order(nodes, roots, done: int = 0, scheduled: bool = True):
    """`(guard, order)` for a code generator: each node's guard, None for nodes without a
    `where`, and the order to write the nodes from `done` on in: `schedule`'s (each
    condition before the nodes it guards, for an `if` that reads it), or index order
    unless `scheduled`."""
    if not lazy(nodes):
        return None, range(done, len(nodes))
    guard = guards(nodes, roots)
    if not scheduled:
        return guard, range(done, len(nodes))
    return guard, [i for i in schedule(nodes, guard) if i >= done]



def only_where(expr: str, guard: Guard, text) -> str:
    """Python text of `expr` where `guard` holds, else 0.0 (`text(c)`: condition `c`'s)."""
    if not guard:
        return expr
    test = " and ".join(text(c) if branch else f"not {text(c)}" for c, branch in guard)
    return f"({expr} if {test} else 0.0)"
