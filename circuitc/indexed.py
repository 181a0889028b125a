"""The whole-bus form of a bus circuit: stages that each compute a wire or a whole bus.

`plan(statements, filename, sizes, wrt, fix)` turns a parsed file into a `Plan`, the
form the whole-bus emitters (`emit.whole`) read, or returns None for a circuit whose
indexes the form does not cover (an index mixing two variables, `x[i+j]`; one variable
twice in an access, `A[i, i]`; a reduction whose `range` depends on an outer index
variable; a stage over more than `MAX_AXES` index variables). Such a circuit is written
out element by element instead, which is also the reference semantics that the
whole-bus form must agree with (`buses`).

A stage defines one wire or bus over its axes (the index variables of a bus, each
with its range; a scalar wire has none):

- a map, `out[axes] = body(reads)`: the body is a scalar graph, lowered, optimized and
  differentiated by the same passes as any circuit, whose inputs are the reads: an
  element of another wire at integer-affine indexes of the axes (`x[i+1]`, `W[i, j]`,
  `x[3]`), or the value of an index variable;
- a reduction, `out[axes] = REDUCE over the axes `over` of its operands`: the
  operands of a `sum` are the factors of its term, so that a contraction such as
  `sum(W[i, j] * x[j] for j)` is one `einsum`; every other reduction (`prod`, `max`,
  `min`, `logsumexp`) has one operand, the term. An operand is a read.

A reduction inside an expression is lifted into a stage of its own over the outer
axes its term uses, and a factor of a sum that is not a plain read becomes a map
over just the axes it uses, so that `sum(W[i, j] * relu(x[j]) for j)` computes
`relu` over `j` only. Stage names of lifted stages contain `#`, which no `.circ`
name does.

The file is checked as `lower` checks any circuit (names, gate calls, outputs,
cycles), on its skeleton: the same statements with every bus as one wire.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from .buses import _affine, _Expansion, _walk_all
from .errors import CircuitError
from .grad import grad
from .graph import Graph, Origin
from .lower import _evaluate_constant, lower
from .parse import (
    Assign,
    BusAssign,
    BusItem,
    Call,
    GateDef,
    Index,
    InputDecl,
    ListLit,
    Name,
    Num,
    Op,
    OutputDecl,
    Reduce,
)
from .passes import dce, live_nodes, optimize


class Unsupported(Exception):
    """The circuit uses an index the whole-bus form does not cover."""


# The most axes a stage may have: `np.einsum` names each axis of its operands by a letter.
MAX_AXES = 52


@dataclass(frozen=True)
class Axis:
    var: str
    start: int
    stop: int

    @property
    def size(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class Read:
    """Element `index` of wire or bus `name`: per dimension (variable, coefficient,
    constant), the element `coefficient * variable + constant` (variable None: the
    element `constant`). With `name` None, the value of the index variable of the
    single entry."""

    name: str | None
    index: tuple[tuple[str | None, int, int], ...] = ()

    @property
    def vars(self) -> tuple[str, ...]:
        return tuple(v for v, _, _ in self.index if v is not None)


@dataclass
class Stage:
    name: str
    axes: tuple[Axis, ...]
    kind: str  # "map", or the reduction
    reads: tuple[Read, ...]  # a map's body inputs "[0]", "[1]", ...; a reduction's operands
    origin: Origin
    over: tuple[Axis, ...] = ()  # the axes a reduction reduces
    forward: Graph | None = None  # a map's body: output `name`
    backward: Graph | None = None  # `grad(forward)` for the reads that need an adjoint
    # Whether the stage's adjoint is needed: some input of WRT reaches it.
    differentiated: bool = False

    @property
    def domain(self) -> tuple[Axis, ...]:
        return self.axes + self.over


@dataclass
class Plan:
    filename: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    wrt: tuple[str, ...]
    shapes: dict[str, tuple[int, ...]]  # every input, output and stage; () for a scalar
    defaults: dict[str, object]  # a number, or for a bus a number or nested tuples
    stages: list[Stage] = field(default_factory=list)


def plan(statements: list, filename: str, sizes: Mapping[str, int] | None = None,
         wrt: Sequence[str] | None = None, fix: Sequence[str] | None = None) -> Plan | None:
    """The whole-bus form of a parsed bus circuit, or None where it does not apply.
    Raises `CircuitError` for a circuit the written-out form rejects (whose front end
    then says why, as for every circuit)."""
    expansion = _Expansion(statements, dict(sizes or {}))
    expansion.analyze()
    skeleton = lower(_skeleton(statements, expansion), filename)
    try:
        return _Planner(statements, expansion, skeleton, filename, wrt, fix).run()
    except Unsupported:
        return None


# -- the skeleton: every bus one wire, for `lower`'s checks ---------------------------


def _skeleton(statements: list, expansion: _Expansion) -> list:
    out = []
    for s in statements:
        kind = type(s)
        if kind is InputDecl:
            items = []
            for item in s.items:
                if type(item) is BusItem:
                    default = item.default
                    items.append((item.name, None if type(default) is ListLit else
                                  _scalar(default, expansion)))
                else:
                    items.append((item[0], _scalar(item[1], expansion)))
            out.append(InputDecl(tuple(items)))
        elif kind is Assign or kind is BusAssign:
            out.append(Assign(s.target, _scalar(s.expr, expansion)))
        elif kind is GateDef or kind is OutputDecl:
            if kind is GateDef and any(type(e) in (Index, Reduce) for e in _walk_all(s.body)):
                raise CircuitError("a gate's body is scalar", s.name.span)
            out.append(s)
    assigned = [s for s in statements if type(s) in (Assign, BusAssign)]
    if assigned and type(assigned[-1]) is BusAssign and not any(
            type(s) is OutputDecl for s in statements):
        out.append(OutputDecl((assigned[-1].target,)))
    return out


def _scalar(expr, expansion: _Expansion):
    """`expr` with each access `x[...]` read as the wire `x`, each reduction as its term,
    and each size or index variable as a number."""
    if expr is None:
        return None
    variables = {v.id for e in _walk_all(expr) if type(e) in (Reduce, Index)
                 for v in (e.vars if type(e) is Reduce else _names(e.args))}
    values = []
    for e in _postorder_all(expr):
        kind = type(e)
        if kind is Num:
            values.append(e)
        elif kind is Name:
            if e.id in expansion.sizes:
                values.append(Num(float(expansion.sizes[e.id]), e.span))
            elif e.id in expansion.declared or e.id not in variables:
                values.append(e)
            else:
                values.append(Num(1.0, e.span))
        elif kind is Index:
            del values[len(values) - len(e.args):]
            values.append(e.name)
        elif kind is Reduce:
            pass  # its term is already on `values`
        else:
            if kind is Op and e.gate == "floordiv":
                raise CircuitError("'//' is for sizes and indices", e.span)
            args = tuple(values[len(values) - len(e.args):])
            del values[len(values) - len(e.args):]
            values.append(Op(e.gate, args, e.span) if kind is Op else Call(e.name, args))
    return values.pop()


def _postorder_all(expr):
    """Every subexpression after its operands, a reduction after its term (its bounds,
    which are integer expressions, left out); an access's indexes are visited too."""
    stack = [(expr, False)]
    while stack:
        e, ready = stack.pop()
        kind = type(e)
        children = (e.body,) if kind is Reduce else e.args if kind in (Op, Call, Index) else ()
        if ready or not children:
            yield e
        else:
            stack.append((e, True))
            stack.extend((c, False) for c in reversed(children))


def _names(exprs) -> list[Name]:
    return [e for x in exprs for e in _walk_all(x) if type(e) is Name]


# -- stages ---------------------------------------------------------------------------


class _Planner:
    def __init__(self, statements, expansion: _Expansion, skeleton: Graph, filename: str,
                 wrt, fix):
        self.statements = statements
        self.x = expansion
        self.filename = filename
        self.gates = [s for s in statements if type(s) is GateDef]
        shapes = expansion.buses.shapes
        self.shapes = {name: shapes.get(name, ()) for name in skeleton.inputs}
        self.skeleton = skeleton
        self.wrt, self.fix = wrt, fix
        self.stages: list[Stage] = []
        self.lifted = 0

    def run(self) -> Plan:
        for s in self._order():
            if type(s) is BusAssign:
                axes = tuple(Axis(v.id, r.start, r.stop) for v in s.indices
                             for r in [self.x.ranges[s.target.span, v.id]])
            else:
                axes = ()
            self._map(s.target.id, axes, s.expr, Origin(s.target.span, f"'{s.target.id}'"))
        outputs = tuple(name for name, _ in self.skeleton.outputs)
        wrt = self._wrt()
        result = Plan(self.filename, self.skeleton.inputs, outputs, wrt,
                      {**self.shapes, **{s.name: axes_shape(s.axes) for s in self.stages}},
                      self._defaults())
        result.stages = self._live(outputs, set(wrt))
        return result

    def _order(self) -> list:
        """The assignments, each after the ones it reads (the skeleton has no cycle)."""
        assigned = {s.target.id: s for s in self.statements if type(s) in (Assign, BusAssign)}
        order, placed = [], set()
        for root in assigned:
            stack = [(root, False)]
            while stack:
                name, ready = stack.pop()
                if name in placed:
                    continue
                if ready:
                    placed.add(name)
                    order.append(assigned[name])
                    continue
                stack.append((name, True))
                reads = (e.name if type(e) is Index else e for e in _walk_all(assigned[name].expr))
                stack.extend((e.id, False) for e in reads
                             if type(e) is Name and e.id in assigned and e.id not in placed)
        return order

    def _wrt(self) -> tuple[str, ...]:
        from .api import _checked_wrt  # the same checks and messages as written out
        return _checked_wrt(self.skeleton, self.wrt, self.fix)

    # -- building -------------------------------------------------------------------

    def _map(self, name: str, axes: tuple[Axis, ...], expr, origin: Origin) -> Read:
        """Add the map stage `name[axes] = expr`, and return the read of it by its axes."""
        reads: dict[Read, int] = {}
        body = self._substitute(expr, {a.var: a for a in axes}, reads)
        program = [*self.gates,
                   InputDecl(tuple((Name(f"[{k}]", origin.span), None) for k in range(len(reads)))),
                   Assign(Name(name, origin.span), body), OutputDecl((Name(name, origin.span),))]
        forward = optimize(lower(program, self.filename))
        self._add(Stage(name, axes, "map", tuple(reads), origin, forward=forward))
        return Read(name, tuple((a.var, 1, -a.start) for a in axes))

    def _substitute(self, expr, scope: dict[str, Axis], reads: dict[Read, int]):
        """`expr` with every read a placeholder input `[k]` (`reads` maps the read to
        `k`), sizes as numbers and reductions lifted into stages."""

        def placeholder(read: Read, span):
            k = reads.setdefault(read, len(reads))
            return Name(f"[{k}]", span)

        values = []
        stack = [(expr, False)]
        while stack:
            e, ready = stack.pop()
            kind = type(e)
            if kind is Num:
                values.append(e)
            elif kind is Name:
                if e.id in scope:
                    values.append(placeholder(Read(None, ((e.id, 1, 0),)), e.span))
                elif e.id in self.x.sizes:
                    values.append(Num(float(self.x.sizes[e.id]), e.span))
                else:
                    values.append(placeholder(Read(e.id), e.span))
            elif kind is Index:
                values.append(placeholder(self._access(e, scope), e.span))
            elif kind is Reduce:
                values.append(placeholder(self._reduce(e, scope), e.span))
            elif kind is Op and e.gate == "floordiv":
                raise CircuitError("'//' is for sizes and indices, not for values", e.span)
            elif not ready:
                stack.append((e, True))
                stack.extend((a, False) for a in reversed(e.args))
            else:
                args = tuple(values[len(values) - len(e.args):])
                del values[len(values) - len(e.args):]
                values.append(Op(e.gate, args, e.span) if kind is Op else Call(e.name, args))
        return values.pop()

    def _access(self, e: Index, scope: dict[str, Axis]) -> Read:
        index = []
        for arg, n in zip(e.args, self.x.buses.shapes[e.name.id]):
            form = _affine(arg, self.x.sizes, scope)
            variables = [v for v in form if v]
            if len(variables) > 1:
                raise Unsupported
            v = variables[0] if variables else None
            if v is not None and any(v == w for w, _, _ in index):
                raise Unsupported
            if v is not None:  # a given range may read out of bounds: written out says where
                ends = [form[v] * x + form[""] for x in (scope[v].start, scope[v].stop - 1)]
                if min(ends) < 0 or max(ends) >= n:
                    raise CircuitError("index out of range", arg.span)
            # In the read's own terms: the element at position p of v's axis.
            index.append((v, form.get(v, 0), form[""]))
        return Read(e.name.id, tuple(index))

    def _reduce(self, e: Reduce, scope: dict[str, Axis]) -> Read:
        """Lift a reduction into a stage; the read of its result."""
        if e.bounds is not None:
            bounds = [_affine(b, self.x.sizes, scope) for b in e.bounds]
            if any(len(b) > 1 for b in bounds):
                raise Unsupported  # a range that depends on an outer variable
            given = range(*[b[""] for b in bounds])
            if not given:
                raise CircuitError(f"'{e.name.id}' over an empty range", e.span)
            over = tuple(Axis(v.id, given.start, given.stop) for v in e.vars)
        else:
            over = tuple(Axis(v.id, r.start, r.stop) for v in e.vars
                         for r in [self.x.ranges[e.span, v.id]])
        inner = {**scope, **{a.var: a for a in over}}
        self.lifted += 1
        name = f"{e.name.id}#{self.lifted}"
        origin = Origin(e.name.span, f"'{e.name.id}'")
        kind = e.name.id
        terms = _factors(e.body) if kind == "sum" else [e.body]
        operands = [self._access(t, inner) for t in terms if type(t) is Index]
        rest = [t for t in terms if type(t) is not Index]
        groups: dict[frozenset, list] = {}
        for t in rest:
            groups.setdefault(frozenset(_uses([t], set(inner))), []).append(t)
        for used, group in groups.items():
            axes = tuple(a for a in (*scope.values(), *over) if a.var in used)
            self.lifted += 1
            term = group[0]
            for f in group[1:]:
                term = Op("mul", (term, f), e.span)
            operands.append(self._map(f"term#{self.lifted}", axes, term, origin))
        used = {v for r in operands for v in r.vars}
        axes = tuple(a for a in scope.values() if a.var in used)
        self._add(Stage(name, axes, kind, tuple(operands), origin, over=over))
        return Read(name, tuple((a.var, 1, -a.start) for a in axes))

    def _add(self, stage: Stage) -> None:
        if len(stage.domain) > MAX_AXES:
            raise Unsupported  # written out: one reduction over more index variables than that
        self.stages.append(stage)

    # -- what the module needs ----------------------------------------------------------

    def _live(self, outputs: tuple[str, ...], wrt: set[str]) -> list[Stage]:
        """The stages the outputs need, each marked `differentiated` where an input of
        `wrt` reaches it, with the gradient graph of each differentiated map. A map needs
        the reads its body's output depends on (`konst(sum(log(x[i]) for i))`, for a gate
        `konst` that ignores its parameter, needs no sum, as written out)."""
        live = set(outputs)
        for s in reversed(self.stages):
            if s.name in live:
                live |= {r.name for r in live_reads(s) if r.name is not None}
        stages = [s for s in self.stages if s.name in live]
        reached = set(wrt)
        for s in stages:
            s.differentiated = any(r.name in reached for r in live_reads(s))
            if s.differentiated:
                reached.add(s.name)
            if s.kind == "map" and s.differentiated:
                needed = tuple(f"[{k}]" for k, r in enumerate(s.reads) if r.name in reached)
                s.backward = dce(grad(s.forward, needed), done=len(s.forward.nodes))
        return stages

    def _defaults(self) -> dict[str, object]:
        defaults = dict(self.skeleton.defaults)
        for s in self.statements:
            if type(s) is not InputDecl:
                continue
            for item in s.items:
                if type(item) is BusItem and type(item.default) is ListLit:
                    gates = {g.name.id: g for g in self.gates}
                    values = [_evaluate_constant(d, gates) for _, d in self.x._input_items([item])]
                    defaults[item.name.id] = _nested(values, self.shapes[item.name.id])
        return {name: defaults[name] for name in self.skeleton.inputs if name in defaults}


def live_reads(s: Stage) -> list[Read]:
    """The reads a stage's value depends on: all of a reduction's; the inputs of a map's
    body that its output depends on."""
    if s.kind != "map":
        return list(s.reads)
    live = live_nodes(s.forward)
    used = {n.attr for i, n in enumerate(s.forward.nodes) if live[i] and n.op == "input"}
    return [r for k, r in enumerate(s.reads) if f"[{k}]" in used]


def _factors(expr) -> list:
    """The factors of a product `a * b * c` (just `[expr]` for anything else)."""
    if type(expr) is Op and expr.gate == "mul":
        return [f for a in expr.args for f in _factors(a)]
    return [expr]


def _uses(exprs, variables: set[str]) -> set[str]:
    """The index variables of `variables` that `exprs` use."""
    return {e.id for x in exprs for e in _walk_all(x) if type(e) is Name and e.id in variables}


def axes_shape(axes: tuple[Axis, ...]) -> tuple[int, ...]:
    """The shape of an array over `axes`."""
    return tuple(a.size for a in axes)


def _nested(values: list, shape: tuple[int, ...]):
    for n in reversed(shape[1:]):
        values = [tuple(values[k:k + n]) for k in range(0, len(values), n)]
    return tuple(values)


