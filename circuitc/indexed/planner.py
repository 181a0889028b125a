"""The planner: a parsed bus circuit -> its whole-bus plan (`ir.Plan`), forward stages only.

`plan(statements, filename, sizes, wrt, fix)` returns the plan, or None for a circuit
whose indexes the form does not cover (an index mixing two variables, `x[i+j]`; one
variable twice in an access, `A[i, i]`; a reduction whose `range` depends on an outer
index variable; a stage over more than `MAX_AXES` index variables; a `where` whose
branch reads a wire or bus of the file or holds a reduction, which would be a stage of its
own, computed whether the branch is taken or not: `_branch_reads_a_stage`). Such a circuit
is written out element by element instead, which is also the reference semantics that
the whole-bus form must agree with (`buses`).

Each assignment becomes a stage over the index variables of its left side (none for
a scalar wire):

- `h[i] = EXPR` is a map whose body is `EXPR` lowered and optimized like any circuit,
  its inputs the reads of `EXPR`: elements of other wires at integer-affine indexes
  (`x[i+1]`, `W[i, j]`, `x[3]`), or the value of an index variable used as a number.
- A reduction inside an expression is lifted into a stage of its own, over the outer
  variables its term uses and its own. A `sum` is a map with a `+=` write: a
  contraction of the factors of its term that are plain reads (`sum(W[i, j] * x[j]
  for j)`), each other factor first computed by a map over just the variables it uses
  (`relu(x[j])` over `j` only); a term with no plain read is the map's body itself
  (Rosenbrock's sum is one map). A `mean` is that sum, which the expression reading it
  divides by the number of terms. Every other reduction is a `Fold` of its term, a
  read (or a map over the term's variables).

Names of lifted stages contain `#`, which no `.circ` name does. The file is checked as
`lower` checks any circuit (names, gate calls, outputs, cycles), on its skeleton: the
same statements with every bus as one wire.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from ..affine import affine
from ..buses import default_elements
from ..errors import CircuitError
from ..grad import wrt_elements
from ..graph import Graph, Origin
from ..lower import evaluate_constant, lower
from ..passes import optimize
from ..shapes import Analysis
from ..syntax import (
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
    walk_all,
)
from .ir import (
    Access,
    Axis,
    Buffer,
    Fold,
    Map,
    Plan,
    Write,
    axes_shape,
    body_of,
    identity,
    leaves_of,
    pruned,
)
from .passes import without_copies


class Unsupported(Exception):
    """The circuit uses an index the whole-bus form does not cover."""


# The most variables a stage's domain may have: `np.einsum` names each by a letter.
MAX_AXES = 52


def plan(statements: list, filename: str, sizes: Mapping[str, int] | None = None,
         wrt: Sequence[str] | None = None, fix: Sequence[str] | None = None, *,
         analysis: Analysis | None = None) -> Plan | None:
    """The whole-bus form of a parsed bus circuit, or None where it does not apply.
    Raises `CircuitError` for a circuit the written-out form rejects (whose front end
    then says why, as for every circuit). `analysis` is the file's (`shapes.analyze`
    of `statements` and `sizes`), if already made."""
    expansion = analysis or Analysis(statements, dict(sizes or {}))
    skeleton = lower(_skeleton(statements, expansion), filename)
    if _branch_reads_a_stage(statements):
        return None
    try:
        return _Planner(statements, expansion, skeleton, filename, wrt, fix).run()
    except Unsupported:
        return None


def _branch_reads_a_stage(statements: list) -> bool:
    """Whether a branch of a `where` (or an argument of a `gate` whose body has one) reads a
    wire or bus the file defines, or holds a reduction. Written out, what only a branch
    needs is computed only where it is taken, across wires; in whole-bus code a wire, a
    bus or a reduction is a stage of its own, computed everywhere, and its adjoint's
    stage would see no mask: such a circuit is written out."""
    defined = {s.target.id for s in statements if type(s) in (Assign, BusAssign)}
    lazy_gates = {s.name.id for s in statements if type(s) is GateDef and any(
        type(e) is Call and e.name.id == "where" for e in walk_all(s.body))}

    def stage(e) -> bool:
        kind = type(e)
        return kind is Reduce or (kind is Name and e.id in defined) or (
            kind is Index and e.name.id in defined)
    for s in statements:
        if type(s) not in (Assign, BusAssign):
            continue
        for e in walk_all(s.expr):
            if type(e) is not Call or e.name.id not in ("where", *lazy_gates):
                continue
            for branch in e.args[1:] if e.name.id == "where" else e.args:
                if any(map(stage, walk_all(branch))):
                    return True
    return False


# -- the skeleton: every bus one wire, for `lower`'s checks ---------------------------


def _skeleton(statements: list, expansion: Analysis) -> list:
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
            if kind is GateDef and any(type(e) in (Index, Reduce) for e in walk_all(s.body)):
                raise CircuitError("a gate's body is scalar", s.name.span)
            out.append(s)
    assigned = [s for s in statements if type(s) in (Assign, BusAssign)]
    if assigned and type(assigned[-1]) is BusAssign and not any(
            type(s) is OutputDecl for s in statements):
        out.append(OutputDecl((assigned[-1].target,)))
    return out


def _scalar(expr, expansion: Analysis):
    """`expr` with each access `x[...]` read as the wire `x`, each reduction as its term,
    and each size or index variable as a number."""
    if expr is None:
        return None
    variables = {v.id for e in walk_all(expr) if type(e) in (Reduce, Index)
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
    return [e for x in exprs for e in walk_all(x) if type(e) is Name]


# -- stages ---------------------------------------------------------------------------


class _Planner:
    def __init__(self, statements, expansion: Analysis, skeleton: Graph, filename: str,
                 wrt, fix):
        self.statements = statements
        self.x = expansion
        self.filename = filename
        self.gates = [s for s in statements if type(s) is GateDef]
        shapes = expansion.buses.shapes
        self.buffers = {name: Buffer(name, shapes.get(name, ()), "input") for name in skeleton.inputs}
        self.skeleton = skeleton
        self.wrt, self.fix = wrt, fix
        self.stages: list[Map | Fold] = []
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
        every = Plan(self.filename, self.skeleton.inputs, outputs, self._wrt(), self._defaults(),
                     self.buffers, tuple(self.stages))
        return without_copies(pruned(every, outputs))

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
                reads = (e.name if type(e) is Index else e for e in walk_all(assigned[name].expr))
                stack.extend((e.id, False) for e in reads
                             if type(e) is Name and e.id in assigned and e.id not in placed)
        return order

    def _wrt(self) -> tuple[str, ...]:
        return wrt_elements(self.skeleton, self.wrt, self.fix)  # the checks of written out

    # -- building -------------------------------------------------------------------

    def _buffer(self, name: str, axes: tuple[Axis, ...], role: str) -> None:
        self.buffers[name] = Buffer(name, axes_shape(axes), role)

    def _body(self, name: str, expr, reads: dict[Access, int], origin: Origin
              ) -> tuple[Graph, tuple[Access, ...]]:
        """`expr`, whose reads are the placeholders `[k]` (`_substitute`), as an optimized
        scalar graph with the one output `name`, and the reads it still uses: a reduction in
        an argument a gate ignores is not computed, as written out."""
        program = [*self.gates,
                   InputDecl(tuple((Name(f"[{k}]", origin.span), None) for k in range(len(reads)))),
                   Assign(Name(name, origin.span), expr), OutputDecl((Name(name, origin.span),))]
        graph = optimize(lower(program, self.filename))
        return body_of(graph, graph.outputs, leaves_of(graph, tuple(reads)))

    def _map(self, name: str, axes: tuple[Axis, ...], expr, origin: Origin) -> Access:
        """Add the map stage `name[axes] = expr`, and return the read of it by its axes."""
        reads: dict[Access, int] = {}
        body, used = self._body(name, self._substitute(expr, {a.var: a for a in axes}, reads),
                                reads, origin)
        target = identity(name, axes)
        self._buffer(name, axes, "value")
        self.stages.append(Map(axes, used, body, (Write(target, False),), origin))
        return target

    def _substitute(self, expr, scope: dict[str, Axis], reads: dict[Access, int]):
        """`expr` with every read a placeholder input `[k]` (`reads` maps the read to
        `k`), sizes as numbers and reductions lifted into stages."""

        def placeholder(read: Access, span):
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
                    values.append(placeholder(Access(None, ((e.id, 1, 0),)), e.span))
                elif e.id in self.x.sizes:
                    values.append(Num(float(self.x.sizes[e.id]), e.span))
                else:
                    values.append(placeholder(Access(e.id), e.span))
            elif kind is Index:
                values.append(placeholder(self._access(e, scope), e.span))
            elif kind is Reduce:
                read = placeholder(self._reduce(e, scope), e.span)
                if e.name.id == "mean":
                    terms = math.prod(a.stop - a.start for a in self._over(e, scope))
                    read = Op("div", (read, Num(float(terms), e.span)), e.span)
                values.append(read)
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

    def _access(self, e: Index, scope: dict[str, Axis]) -> Access:
        index = []
        for arg, n in zip(e.args, self.x.buses.shapes[e.name.id]):
            form = affine(arg, self.x.sizes, scope)
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
        return Access(e.name.id, tuple(index))

    def _over(self, e: Reduce, scope: dict[str, Axis]) -> tuple[Axis, ...]:
        """The axes a reduction runs over."""
        if e.bounds is not None:
            bounds = [affine(b, self.x.sizes, scope) for b in e.bounds]
            if any(len(b) > 1 for b in bounds):
                raise Unsupported  # a range that depends on an outer variable
            given = range(*[b[""] for b in bounds])
            if not given:
                raise CircuitError(f"'{e.name.id}' over an empty range", e.span)
            return tuple(Axis(v.id, given.start, given.stop) for v in e.vars)
        return tuple(Axis(v.id, r.start, r.stop) for v in e.vars
                     for r in [self.x.ranges[e.span, v.id]])

    def _reduce(self, e: Reduce, scope: dict[str, Axis]) -> Access:
        """Lift a reduction into a stage; the read of its result (a `mean`'s sum)."""
        over = self._over(e, scope)
        inner = {**scope, **{a.var: a for a in over}}
        if len(inner) > MAX_AXES:
            raise Unsupported  # written out: a reduction over more variables than that
        self.lifted += 1
        name = f"{e.name.id}#{self.lifted}"
        origin = Origin(e.name.span, f"'{e.name.id}'")
        kind = e.name.id
        summed = kind in ("sum", "mean")
        terms = _factors(e.body) if summed else [e.body]
        if summed and not any(type(t) is Index for t in terms):
            return self._summed(name, scope, over, e.body, origin)
        operands = [self._access(t, inner) for t in terms if type(t) is Index]
        numbers = [t for t in terms if type(t) is Num] if summed else []
        rest = [t for t in terms if type(t) is not Index and t not in numbers]
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
        kept = tuple(a for a in scope.values() if a.var in used)
        target = identity(name, kept)
        if summed:
            self._buffer(name, kept, "sum")
            body = self._product(name, len(operands), numbers, origin)
            self.stages.append(Map(kept + over, tuple(operands), body, (Write(target, True),),
                                   origin))
        else:
            self._buffer(name, kept, "value")
            self.stages.append(Fold(kind, kept + over, len(over), tuple(operands), target, origin))
        return target

    def _summed(self, name: str, scope: dict[str, Axis], over: tuple[Axis, ...], term,
                origin: Origin) -> Access:
        """A sum whose term has no plain read as a factor: one map, its body the term."""
        reads: dict[Access, int] = {}
        inner = {**scope, **{a.var: a for a in over}}
        body, used = self._body(name, self._substitute(term, inner, reads), reads, origin)
        variables = {v for r in used for v in r.vars}
        kept = tuple(a for a in scope.values() if a.var in variables)
        target = identity(name, kept)
        self._buffer(name, kept, "sum")
        self.stages.append(Map(kept + over, used, body, (Write(target, True),), origin))
        return target

    def _product(self, name: str, n: int, numbers: list, origin: Origin) -> Graph:
        """The body `[0] * [1] * ... * numbers` of a contraction of `n` reads."""
        term = Name("[0]", origin.span)
        for f in [*(Name(f"[{k}]", origin.span) for k in range(1, n)), *numbers]:
            term = Op("mul", (term, f), origin.span)
        return self._body(name, term, {Access(f"[{k}]"): k for k in range(n)}, origin)[0]

    # -- what the module needs ----------------------------------------------------------

    def _defaults(self) -> dict[str, object]:
        defaults = dict(self.skeleton.defaults)
        for s in self.statements:
            if type(s) is not InputDecl:
                continue
            for item in s.items:
                if type(item) is BusItem and type(item.default) is ListLit:
                    gates = {g.name.id: g for g in self.gates}
                    values = [evaluate_constant(d, gates) for d in default_elements(self.x, item)]
                    defaults[item.name.id] = _nested_tuples(values, self.buffers[item.name.id].shape)
        return {name: defaults[name] for name in self.skeleton.inputs if name in defaults}


def _factors(expr) -> list:
    """The factors of a product `a * b * c` (just `[expr]` for anything else)."""
    if type(expr) is Op and expr.gate == "mul":
        return [f for a in expr.args for f in _factors(a)]
    return [expr]


def _uses(exprs, variables: set[str]) -> set[str]:
    """The index variables of `variables` that `exprs` use."""
    return {e.id for x in exprs for e in walk_all(x) if type(e) is Name and e.id in variables}


def _nested_tuples(values: list, shape: tuple[int, ...]):
    """Row-major `values` as nested tuples of `shape`."""
    for n in reversed(shape[1:]):
        values = [tuple(values[k:k + n]) for k in range(0, len(values), n)]
    return tuple(values)


