"""Plan -> plan rewrites that change how a plan computes, never what.

- `without_copies`: `f = sum#1` (a map that copies a buffer whole) -> `sum#1` named `f`.
- `fused`: two maps over one domain, where the second can run beside the first, ->
  one map (a map and its adjoint or tangent, whose bodies share the forward gates,
  then compute them once: Rosenbrock's `backward` is one map).
- `with_residuals`: a map that recomputes gates of an earlier map over the same domain
  (an adjoint whose seed comes later) -> the earlier map also writes those gates'
  values, which the later one reads (NumPy keeps arrays; loops recompute instead).

Maps are merged by building their bodies into one hash-consed graph (`graph.Builder`),
so a gate both compute is one node: no pattern matching on bodies.
"""

from __future__ import annotations

from dataclasses import replace

from ..graph import Builder, Graph
from .ir import (
    Access,
    Buffer,
    Map,
    Plan,
    Write,
    axes_shape,
    body_of,
    covers,
    identity,
    leaves_of,
    node_vars,
    primal,
)


def without_copies(plan: Plan) -> Plan:
    """A map `t[...] = s[...]` copying buffer `s` whole, where `s` is no input or output
    and the copy is its only reader, dropped: `s` is named `t` instead."""
    stages = list(plan.stages)
    buffers = dict(plan.buffers)
    for m in list(stages):
        source = _copied(m, {n: b.shape for n, b in buffers.items()})
        if source is None or source in plan.inputs or source in plan.outputs or sum(
                source in {a.name for a in s.reads} for s in stages) != 1:
            continue
        target = m.writes[0].target.name
        stages.remove(m)
        stages = [_renamed(s, source, target) for s in stages]
        buffers[target] = replace(buffers.pop(source), name=target)
    return replace(plan, stages=tuple(stages), buffers=buffers)


def _copied(m, shapes) -> str | None:
    """The buffer a map copies whole into its target, or None."""
    if not isinstance(m, Map) or len(m.writes) != 1 or m.writes[0].add or len(m.reads) != 1:
        return None
    (_, node), = m.body.outputs
    read, target = m.reads[0], m.writes[0].target
    if m.body.nodes[node].op != "input" or read.name is None:
        return None
    if read != identity(read.name, m.domain) or target != identity(target.name, m.domain):
        return None
    if not covers(m.domain, read, shapes[read.name]) or shapes[read.name] != shapes[target.name]:
        return None  # a copy of part of the source: a bus of its own
    return read.name


def _renamed(stage, old: str, new: str):
    def access(a: Access) -> Access:
        return replace(a, name=new) if a.name == old else a
    if isinstance(stage, Map):
        return replace(stage, reads=tuple(map(access, stage.reads)),
                       writes=tuple(replace(w, target=access(w.target)) for w in stage.writes))
    return replace(stage, terms=tuple(map(access, stage.terms)), target=access(stage.target))


# -- merging bodies -----------------------------------------------------------------------


class _Merged:
    """Map bodies built into one graph: equal gates are one node, a read one input."""

    def __init__(self, filename: str):
        self.b = Builder()
        self.reads: dict[Access, int] = {}  # read -> its input node
        self.filename = filename
        self.defined: dict[Access, int] = {}  # a `=` target -> the node written there

    def add(self, m: Map) -> list[int]:
        """Build `m`'s body in; each of its nodes' node here."""
        new = []
        for node in m.body.nodes:
            if node.op == "input":
                read = m.reads[int(node.attr[1:-1])]
                found = self.defined.get(read)
                if found is None:
                    found = self.reads.get(read)
                if found is None:
                    found = self.reads[read] = self.b.add("input", (), f"[{len(self.reads)}]")
                new.append(found)
            elif node.op == "const":
                new.append(self.b.const(node.attr))
            else:
                new.append(self.b.add(node.op, tuple(new[a] for a in node.args), node.attr,
                                      node.origin, node.name))
        return new

    def graph(self, outputs) -> Graph:
        return Graph(self.filename, tuple(f"[{k}]" for k in range(len(self.reads))), {},
                     tuple(self.b.nodes), tuple(outputs))


def _map(domain, origin, merged: _Merged, outputs, writes) -> Map:
    """A map of a merged body with `outputs` ((label, node)), unused nodes and reads dropped."""
    graph = merged.graph(outputs)
    body, reads = body_of(graph, graph.outputs, leaves_of(graph, tuple(merged.reads)))
    return Map(domain, reads, body, tuple(writes), origin)


# -- fusion ----------------------------------------------------------------------------


def fused(plan: Plan) -> Plan:
    """Each map merged into the latest earlier map over the same domain that it can run
    beside (`_movable`), where the two bodies share a gate."""
    stages = list(plan.stages)
    k = 0
    while k < len(stages):
        later = stages[k]
        if isinstance(later, Map):
            for j in range(k - 1, -1, -1):
                earlier = stages[j]
                if not _movable(later, stages[j + 1:k], earlier):
                    break
                if isinstance(earlier, Map) and earlier.domain == later.domain:
                    merged = _fuse(plan, earlier, later)
                    if merged is not None:
                        stages[j] = merged
                        del stages[k]
                        k -= 1
                        break
        k += 1
    return replace(plan, stages=tuple(stages))


def _movable(m: Map, between: list, earlier) -> bool:
    """Whether map `m` can run right after `earlier`, before the stages `between`: none of
    them writes what `m` reads or reads what `m` writes, and `earlier` writes nothing `m`
    reads except a `=` target it reads at the same place."""
    reads = {a.name for a in m.reads if a.name is not None}
    writes = {w.target.name for w in m.writes}
    for s in between:
        if any(w.target.name in reads for w in s.writes) or any(a.name in writes for a in s.reads):
            return False
    defined = {w.target for w in earlier.writes if not w.add}
    for w in earlier.writes:
        if w.target.name in writes:
            return False
        if w.target.name in reads and not all(a in defined for a in m.reads
                                                if a.name == w.target.name):
            return False
    return not any(a.name in writes for a in earlier.reads)


def _fuse(plan: Plan, a: Map, b: Map) -> Map | None:
    """`a` and `b` as one map, or None where their bodies share no gate."""
    merged = _Merged(plan.filename)
    first = merged.add(a)
    outputs = [(label, first[n]) for label, n in a.body.outputs]
    for (_, n), w in zip(a.body.outputs, a.writes):
        if not w.add:
            merged.defined[w.target] = first[n]
    second = merged.add(b)
    shared = {n for n, node in zip(second, b.body.nodes) if node.args} & set(first)
    if not shared:
        return None
    outputs += [(label, second[n]) for label, n in b.body.outputs]
    return _map(a.domain, a.origin, merged, outputs, (*a.writes, *b.writes))


# -- residuals ---------------------------------------------------------------------------


def with_residuals(plan: Plan) -> Plan:
    """Each map that recomputes gates of an earlier map over the same domain reads their
    values instead, which the earlier map writes into buffers of their own (`h#3`, over
    the variables each varies along)."""
    stages = list(plan.stages)
    buffers = dict(plan.buffers)
    count = 0
    for k, later in enumerate(stages):
        if not isinstance(later, Map):
            continue
        for j in range(k):
            earlier = stages[j]
            if not isinstance(earlier, Map) or earlier.domain != later.domain:
                continue
            merged = _Merged(plan.filename)
            first = merged.add(earlier)
            second = merged.add(later)
            gates = {n for n, node in zip(second, later.body.nodes) if node.args} & set(first)
            # The shared gates the later body uses directly: its frontier.
            own = [n for n, node in zip(second, later.body.nodes) if node.args and n not in gates]
            used = {a for n in own for a in merged.b.nodes[n].args} | {
                second[n] for _, n in later.body.outputs}
            saved = sorted(gates & used)
            if not saved:
                continue
            varies = node_vars(replace(earlier, body=merged.graph(()), reads=tuple(merged.reads)))
            outputs, writes = list(earlier.body.outputs), list(earlier.writes)
            given = {first[n]: w.target for (_, n), w in zip(outputs, writes)
                     if not w.add and len(w.target.vars) == len(earlier.domain)}
            position = {n: i for i, n in enumerate(first)}
            for n in saved:
                if n in given:
                    continue
                axes = tuple(x for x in earlier.domain if x.var in varies[n])
                stem = primal(plan, earlier.writes[0].target.name).split("#")[0]
                name = f"{stem}#r"  # `ir.is_residual`
                while name in buffers:
                    count += 1
                    name = f"{stem}#r{count}"
                buffers[name] = Buffer(name, axes_shape(axes), "value")
                outputs.append((name, position[n]))
                writes.append(Write(identity(name, axes), False))
                given[n] = identity(name, axes)
            stages[j] = replace(earlier, body=replace(earlier.body, outputs=tuple(outputs)),
                                writes=tuple(writes))
            stages[k] = later = _reading(plan, later, second, given)
    return replace(plan, stages=tuple(stages), buffers=buffers)


def _reading(plan: Plan, m: Map, nodes: list[int], given: dict[int, Access]) -> Map:
    """Map `m`, each node whose merged node is in `given` read from there instead."""
    b = Builder()
    reads: dict[Access, int] = {}

    def leaf(access: Access) -> int:
        if access not in reads:
            reads[access] = b.add("input", (), f"[{len(reads)}]")
        return reads[access]

    new = []
    for node, merged in zip(m.body.nodes, nodes):
        if merged in given:
            new.append(leaf(given[merged]))
        elif node.op == "input":
            new.append(leaf(m.reads[int(node.attr[1:-1])]))
        elif node.op == "const":
            new.append(b.const(node.attr))
        else:
            new.append(b.add(node.op, tuple(new[a] for a in node.args), node.attr, node.origin,
                             node.name))
    outputs = [(label, new[n]) for label, n in m.body.outputs]
    graph = Graph(plan.filename, tuple(f"[{k}]" for k in range(len(reads))), {},
                  tuple(b.nodes), tuple(outputs))
    body, reads_ = body_of(graph, graph.outputs, leaves_of(graph, tuple(reads)))
    return replace(m, reads=reads_, body=body)
