"""The whole-bus IR: a plan of stages, each computing whole buses at once.

A `Plan` is a list of stages over named arrays (`Buffer`s): the circuit's inputs, the
buses and wires its stages compute, and, after differentiation, adjoints and
tangents. Every array has the batch as its leading axes (which the IR does not name)
and its bus's dimensions after them.

A stage runs over a *domain*: index variables, each with its range (`Axis`). It
reads buffers at integer-affine indexes of the domain's variables (`Access`: `x[i+1]`,
`W[i, j]`, `x[3]`, or the value of `i` itself), and writes buffers the same way:

- `Map`: a scalar graph (`body`, lowered and optimized like any circuit) evaluated at
  every point of the domain, its inputs `[k]` the values of `reads[k]` there. Each
  output of the body has a `Write`: `=` defines the target at every point (its
  access is the domain's variables, in order, or a part of them the value does not
  depend on), `+=` adds the value into the target, summed over the domain variables
  the target's access lacks. A sum over `j` is a `+=` write lacking `j`; the
  adjoint of a read is a `+=` write at the read's own access (scatter-add: the
  transpose of a gather); a contraction is a `+=` whose value is a product of reads.
- `Fold`: a reduction that is not a sum, over the domain's last `over` variables, of
  the value of `terms[0]` there: `max`, `min` (the first largest or smallest term),
  `prod` (from the left), `logsumexp` (`m + log(sum(exp(t - m)))`, `m` the max),
  whose target lacks those variables; and two folds that derivatives use, whose
  target is the whole domain: `prod_except` (at each term, the product of the
  others) and `prod_except_tangent` (its derivative along the tangents `terms[1]`).

A buffer's `role` says where its value comes from: `input` and `direction` (the caller's
input, or an input's tangent direction: read only), `seed` (the caller's seed of an
output's adjoint, plus every `+=` into it), `sum` (zero, plus every `+=`), `value`
(defined by one `=` write). Stages run in order; a stage reads a buffer only after
every write into it. `check` verifies this and every other invariant, and `dump`
prints a plan for people and tests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from ..graph import LEAVES, Graph, GraphError, Node, Origin, needed
from ..graph import check as check_graph

ADJOINT = "\N{PARTIAL DIFFERENTIAL}"  # `∂x`: x's adjoint (as `grad` names them)
TANGENT = "\N{DOT OPERATOR}"  # `⋅x`: x's tangent (as `grad` names them)
ROLES = ("input", "direction", "seed", "sum", "value")
FOLDS = ("max", "min", "prod", "logsumexp", "prod_except", "prod_except_tangent")


@dataclass(frozen=True)
class Axis:
    """An index variable of a domain and its range, `start <= var < stop`."""

    var: str
    start: int
    stop: int

    @property
    def size(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class Access:
    """Elements of buffer `name`: per dimension `(var, coefficient, constant)`, the element
    `coefficient * var + constant` (var None: the element `constant`). With `name` None,
    the value of the index variable of the single entry, as a number."""

    name: str | None
    index: tuple[tuple[str | None, int, int], ...] = ()

    @property
    def vars(self) -> tuple[str, ...]:
        return tuple(v for v, _, _ in self.index if v is not None)


def axes_shape(axes: tuple[Axis, ...]) -> tuple[int, ...]:
    """The shape of an array over `axes`."""
    return tuple(a.size for a in axes)


def identity(name: str, axes: tuple[Axis, ...]) -> Access:
    """The access of a buffer computed over `axes` at the point of the domain: element
    `var - start` in each dimension."""
    return Access(name, tuple((a.var, 1, -a.start) for a in axes))


@dataclass(frozen=True)
class Buffer:
    name: str
    shape: tuple[int, ...]  # the bus's dimensions; () for a number
    role: str
    derivative: str | None = None  # "adjoint" or "tangent" of buffer `of`, or None
    of: str | None = None


def is_residual(name: str) -> bool:
    """Whether buffer `name` holds gates of a map that a later map reads instead of
    recomputing them (`passes.with_residuals` names it `h#r`, `h#r1`, ...)."""
    return re.search(r"#r\d*$", name) is not None


def primal(plan: Plan, name: str) -> str:
    """The buffer `name` is a derivative of, through every level (`x` for `⋅∂x`)."""
    while plan.buffers[name].of is not None:
        name = plan.buffers[name].of
    return name


@dataclass(frozen=True)
class Write:
    target: Access
    add: bool  # `+=`, summed over the domain variables `target` lacks; else `=`


@dataclass(frozen=True)
class Map:
    domain: tuple[Axis, ...]
    reads: tuple[Access, ...]  # body input `[k]` is `reads[k]`
    body: Graph  # inputs `[0]`, `[1]`, ...; an output per write, in order
    writes: tuple[Write, ...]
    origin: Origin

    @property
    def kind(self) -> str:
        return "map"


@dataclass(frozen=True)
class Fold:
    kind: str  # one of FOLDS
    domain: tuple[Axis, ...]
    over: int  # the last `over` axes of the domain are folded
    terms: tuple[Access, ...]
    target: Access
    origin: Origin

    @property
    def reads(self) -> tuple[Access, ...]:
        return self.terms

    @property
    def writes(self) -> tuple[Write, ...]:
        return (Write(self.target, False),)

    @property
    def kept(self) -> tuple[Axis, ...]:
        return self.domain[:len(self.domain) - self.over]


Stage = Map | Fold


@dataclass(frozen=True)
class Plan:
    filename: str
    inputs: tuple[str, ...]  # the circuit's inputs, in order
    outputs: tuple[str, ...]  # the circuit's outputs, in order
    wrt: tuple[str, ...]  # the inputs differentiated with respect to
    defaults: dict[str, object]  # a number, or for a bus a number or nested tuples
    buffers: dict[str, Buffer]
    stages: tuple[Stage, ...]
    grads: tuple[tuple[str, str], ...] = ()  # (input, its adjoint's buffer) after `vjp`
    tangents: tuple[tuple[str, str], ...] = ()  # (label, buffer) after `jvp`
    # The buffer of each output's seed and each input's direction.
    seeds: dict[str, str] = field(default_factory=dict)
    directions: dict[str, str] = field(default_factory=dict)

    def shape(self, name: str) -> tuple[int, ...]:
        return self.buffers[name].shape


class PlanError(Exception):
    """A plan breaks an invariant of the IR: a bug in whatever built it, never bad input."""


def check(plan: Plan) -> None:
    """Raise `PlanError` naming the first broken invariant of `plan`."""
    def require(ok: bool, why: str) -> None:
        if not ok:
            raise PlanError(why)

    buffers = plan.buffers
    for name, b in buffers.items():
        require(b.name == name and b.role in ROLES, f"buffer {name!r}: {b}")
    for name in plan.inputs:
        require(name in buffers and buffers[name].role == "input", f"input {name!r} has no input buffer")
    require(set(plan.wrt) <= set(plan.inputs), f"WRT {plan.wrt} names a non-input")
    read: set[str] = set()  # buffers a stage has read: their writes are over
    defined: set[str] = set()
    added: set[str] = set()  # sums a stage has added to
    for n, stage in enumerate(plan.stages):
        where = f"stage {n} ({stage.kind})"
        names = [a.var for a in stage.domain]
        require(len(set(names)) == len(names), f"{where}: a variable twice in its domain")
        for access in stage.reads:
            _check_access(plan, access, stage.domain, f"{where}: read {access}", require)
            if access.name is not None:
                role = buffers[access.name].role
                require(role != "value" or access.name in defined,
                        f"{where}: reads {access.name!r} before it is defined")
                require(role != "sum" or access.name in added,
                        f"{where}: reads the sum {access.name!r}, which nothing has added to")
                read.add(access.name)
        for w in stage.writes:
            target = w.target
            _check_access(plan, target, stage.domain, f"{where}: write {target}", require)
            role = buffers[target.name].role
            require(target.name not in read, f"{where}: writes {target.name!r} after a read of it")
            if w.add:
                require(role in ("sum", "seed"), f"{where}: += into {role} buffer {target.name!r}")
                added.add(target.name)
            else:
                require(role == "value" and target.name not in defined,
                        f"{where}: = into {role} buffer {target.name!r}, or a second time")
                axes = tuple(a for a in stage.domain if a.var in target.vars)
                require(target == identity(target.name, axes)
                        and axes_shape(axes) == buffers[target.name].shape,
                        f"{where}: = writes {target}, not each element once at its point")
                defined.add(target.name)
        if isinstance(stage, Map):
            _check_map(stage, where, require)
        else:
            require(stage.kind in FOLDS and 0 < stage.over <= len(stage.domain),
                    f"{where}: a fold of kind {stage.kind!r} over {stage.over} axes")
            want = 2 if stage.kind == "prod_except_tangent" else 1
            require(len(stage.terms) == want, f"{where}: {len(stage.terms)} terms")
            whole = stage.kind.startswith("prod_except")
            axes = stage.domain if whole else stage.kept
            require(stage.target == identity(stage.target.name, axes),
                    f"{where}: its target {stage.target} is not over {'the domain' if whole else 'the kept axes'}")
    for name, b in buffers.items():
        if b.role == "value":
            require(name in defined, f"value buffer {name!r} is never defined")
    for _, name in (*plan.grads, *plan.tangents):
        require(name in buffers, f"a gradient or tangent in no buffer: {name!r}")
    for name in plan.outputs:
        require(name in buffers, f"output {name!r} is no buffer")


def _check_access(plan: Plan, access: Access, domain, what: str, require) -> None:
    variables = {a.var: a for a in domain}
    if access.name is None:
        require(len(access.index) == 1 and access.index[0][0] in variables
                and access.index[0][1:] == (1, 0), f"{what}: an index value that is not one variable")
        return
    require(access.name in plan.buffers, f"{what}: no buffer {access.name!r}")
    shape = plan.buffers[access.name].shape
    require(len(access.index) == len(shape), f"{what}: {len(access.index)} indexes for shape {shape}")
    used = [v for v in access.vars]
    require(len(set(used)) == len(used), f"{what}: a variable twice")
    for (v, a, c), n in zip(access.index, shape):
        if v is None:
            require(0 <= c < n, f"{what}: element {c} of {n}")
            continue
        require(v in variables and a != 0, f"{what}: {v!r} is not in the domain")
        axis = variables[v]
        ends = (a * axis.start + c, a * (axis.stop - 1) + c)
        require(0 <= min(ends) and max(ends) < n, f"{what}: reads {ends} of {n}")


def _check_map(m: Map, where: str, require) -> None:
    try:
        check_graph(m.body)
    except GraphError as e:
        raise PlanError(f"{where}: its body: {e}") from None
    require(m.body.inputs == tuple(f"[{k}]" for k in range(len(m.reads))),
            f"{where}: body inputs {m.body.inputs} for {len(m.reads)} reads")
    require(len(m.body.outputs) == len(m.writes), f"{where}: {len(m.body.outputs)} outputs, "
                                                  f"{len(m.writes)} writes")
    require(all(node.op in ("input", "const") or node.op not in LEAVES for node in m.body.nodes),
            f"{where}: a body leaf that is not an input or a constant")
    axes = node_vars(m)
    for (label, node), w in zip(m.body.outputs, m.writes):
        if not w.add:
            require(axes[node] <= set(w.target.vars),
                    f"{where}: = writes {w.target}, a value that varies along {sorted(axes[node])}")


def node_vars(m: Map) -> list[frozenset[str]]:
    """For each node of a map's body, the domain variables its value varies along: those
    of the reads it depends on."""
    out: list[frozenset[str]] = []
    reads = m.reads
    for node in m.body.nodes:
        if node.op == "input":
            out.append(frozenset(reads[int(node.attr[1:-1])].vars))
        elif node.args:
            out.append(frozenset().union(*(out[a] for a in node.args)))
        else:
            out.append(frozenset())
    return out


def body_of(graph: Graph, outputs, leaves: dict[int, Access]) -> tuple[Graph, tuple[Access, ...]]:
    """A map's body made of `graph`: the nodes `outputs` ((label, node) pairs) need, each
    leaf node of `leaves` an input `[k]` that reads `leaves[node]` (several leaves with one
    read are one input), and the map's reads in input order."""
    nodes = graph.nodes
    need = needed(nodes, [n for _, n in outputs])
    reads: dict[Access, int] = {}
    inputs: dict[int, int] = {}  # read -> its input node
    new: dict[int, int] = {}
    out: list[Node] = []
    for i, node in enumerate(nodes):
        if not need[i]:
            continue
        if i in leaves:
            k = reads.setdefault(leaves[i], len(reads))
            if k in inputs:
                new[i] = inputs[k]
                continue
            inputs[k] = len(out)
            node = Node("input", (), f"[{k}]", node.origin)
        elif node.args:
            node = node._replace(args=tuple(new[a] for a in node.args))
        elif node.op != "const":
            raise PlanError(f"a leaf {node} that reads nothing")
        new[i] = len(out)
        out.append(node)
    body = Graph(graph.filename, tuple(f"[{k}]" for k in range(len(reads))), {}, tuple(out),
                 tuple((label, new[n]) for label, n in outputs))
    return body, tuple(reads)


def leaves_of(graph: Graph, reads: tuple[Access, ...]) -> dict[int, Access]:
    """The input leaves of a body, each with the read it stands for."""
    return {i: reads[int(node.attr[1:-1])] for i, node in enumerate(graph.nodes)
            if node.op == "input"}


# -- reading a plan ---------------------------------------------------------------------


def live(plan: Plan, roots) -> list[Stage]:
    """The stages that `roots` (buffer names) need, in order."""
    needed = set(roots)
    keep = []
    for stage in reversed(plan.stages):
        if any(w.target.name in needed for w in stage.writes):
            keep.append(stage)
            needed |= {a.name for a in stage.reads if a.name is not None}
    return keep[::-1]


def pruned(plan: Plan, roots) -> Plan:
    """`plan` with only the stages `roots` (buffer names) need, and the buffers they use."""
    stages = tuple(live(plan, roots))
    used = {*plan.inputs, *roots, *plan.seeds.values(), *plan.directions.values()}
    used |= {a.name for s in stages for a in (*s.reads, *(w.target for w in s.writes))}
    return replace(plan, stages=stages, buffers={n: b for n, b in plan.buffers.items() if n in used})


def covers(domain, access: Access, shape: tuple[int, ...]) -> bool:
    """Whether `access`, over `domain`, takes every element of a buffer of `shape`."""
    axes = {a.var: a for a in domain}
    for (v, a, c), n in zip(access.index, shape):
        if v is None or abs(a) != 1 or axes[v].size != n:
            return False
        if min(a * axes[v].start + c, a * (axes[v].stop - 1) + c) != 0:
            return False
    return True


def access_text(access: Access) -> str:
    """`x[i+1, 3]`, `W[i, j]`, `f`, or `#i` for the value of `i`."""
    if access.name is None:
        return "#" + access.index[0][0]
    if not access.index:
        return access.name
    parts = []
    for v, a, c in access.index:
        if v is None:
            parts.append(str(c))
            continue
        text = v if a == 1 else f"-{v}" if a == -1 else f"{a}*{v}"
        parts.append(text + (f"+{c}" if c > 0 else f"-{-c}" if c < 0 else ""))
    return f"{access.name}[{', '.join(parts)}]"


def dump(plan: Plan) -> str:
    """The plan as text: its buffers, then a stage a paragraph (its domain, reads, body
    and writes), then its roots. Tests compare plans this way."""
    from ..graph import dump as dump_graph

    lines = [f"buffer {b.name}{list(b.shape) if b.shape else ''} {b.role}" for b in plan.buffers.values()]
    for stage in plan.stages:
        domain = ", ".join(f"{a.var} in {a.start}..{a.stop}" for a in stage.domain)
        if isinstance(stage, Map):
            lines.append(f"map over ({domain})")
            lines += [f"  [{k}] = {access_text(a)}" for k, a in enumerate(stage.reads)]
            body = dump_graph(stage.body).splitlines()
            lines += ["  " + line for line in body if not line.startswith("output ")]
            for (_, node), w in zip(stage.body.outputs, stage.writes):
                lines.append(f"  {access_text(w.target)} {'+=' if w.add else '='} %{node}")
        else:
            terms = ", ".join(access_text(t) for t in stage.terms)
            lines.append(f"{access_text(stage.target)} = {stage.kind} over "
                         f"{', '.join(a.var for a in stage.domain[len(stage.kept):])} of {terms}"
                         f"  ({domain})")
    lines += [f"output {name}" for name in plan.outputs]
    lines += [f"grad {name} = {b}" for name, b in plan.grads]
    lines += [f"tangent {name} = {b}" for name, b in plan.tangents]
    return "\n".join(lines)
