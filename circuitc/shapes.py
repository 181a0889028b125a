"""The analysis of a file with buses: its names, sizes, buses' shapes and index ranges.

`analyze(statements, sizes)` reads a parsed file once for both back ends, the written-out
one (`buses.expand`) and the whole-bus one (`indexed.planner`): every declared name, every
size's value (`-D` overrides included), every bus's shape, and the range of every index
variable at the place that binds it (`Analysis.ranges`). It checks what those need
(a name declared twice, sizes in a cycle, a bus indexed with the wrong rank, an index out
of range, an empty range, a bus or a reduction over `MAX_ELEMENTS`); what a circuit
computes is `lower`'s to check.

Index expressions and sizes are integer-affine (`affine`): integers, sizes and index
variables with `+`, `-`, `*` by a constant and `//` of constants. An index variable's
range is inferred from the buses it indexes (Halide's bounds inference): `b[i]` asks for
`0 <= i < size(b)`, and two such plain uses must agree on the size; an offset or scaled
use (`x[i+1]`, `x[2*i]`) only narrows the range so that every access stays in bounds. A
variable on the left of a definition starts at 0 (the first element of the bus it
defines); a reduction's may start later (`sum(x[j] - x[j-1] for j)` runs from 1). An
index mixing two variables (`x[i+j]`) does not take part in inference; it is checked
element by element when written out.

Everything is walked with explicit stacks, so nesting depth is limited only by memory,
as in `lower`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from .affine import affine, index_text
from .draws import DEFAULT_SEED, drawn
from .errors import CircuitError, Span, did_you_mean
from .gates import CALLABLE
from .limits import check_bus, check_terms, dimension_text, shape_text
from .syntax import (
    Assign,
    BusAssign,
    BusItem,
    Call,
    GateDef,
    Index,
    InputDecl,
    Name,
    Op,
    Reduce,
    SizeDecl,
    postorder,
    walk_all,
)

# Each reduction and the gate folding its terms, if one does (`mean` divides their sum).
REDUCTIONS = {"sum": "add", "mean": "add", "prod": "mul", "max": "max", "min": "min",
              "logsumexp": None}
_SPELLINGS = {"avg": "mean", "average": "mean"}  # other names, for a `did you mean`



@dataclass(frozen=True)
class Definition:
    """A bus defined element by element: `target[indices] = expr`."""

    statement: BusAssign
    shape: tuple[int, ...]


@dataclass
class Buses:
    """The indexed form of a circuit: the shape of every bus (inputs and defined
    buses), each definition, and the sizes it was compiled with."""

    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    definitions: dict[str, Definition] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)


def analyze(statements: list, sizes: Mapping[str, int] | None = None,
            seed: int = DEFAULT_SEED) -> Analysis | None:
    """The analysis of a parsed file, or None for a file without sizes or buses (which
    `lower` reads as it is). `sizes` overrides declared sizes (`-D NAME=INT`); naming a
    size the file does not declare is an error. `seed` seeds the random defaults the
    analysis draws (`draws.drawn`)."""
    sizes = dict(sizes or {})
    if not has_buses(statements):
        if sizes:
            raise CircuitError(f"-D {next(iter(sizes))}: the circuit declares no size of that name"
                               + _known({}))
        return None
    return Analysis(statements, sizes, seed)


def has_buses(statements: list) -> bool:
    """Whether a parsed file declares or uses a size, a bus, a reduction or `//`."""
    return any(_has_buses(s) for s in statements)


def _has_buses(s) -> bool:
    """Whether a statement declares or uses a size, a bus, a reduction or `//`."""
    kind = type(s)
    if kind is SizeDecl or kind is BusAssign:
        return True
    if kind is InputDecl:
        return any(type(item) is BusItem or _indexes(item[1]) for item in s.items)
    if kind is Assign:
        return _indexes(s.expr)
    return kind is GateDef and _indexes(s.body)


def _indexes(expr) -> bool:
    """Whether `expr` indexes, reduces or uses `//`."""
    stack = [expr]  # every expression of a scalar file passes here: kept to a tight loop
    while stack:
        e = stack.pop()
        kind = type(e)
        if kind is Op:
            if e.gate == "floordiv":
                return True
            stack += e.args
        elif kind is Call:
            stack += e.args
        elif kind is Index or kind is Reduce:
            return True
    return False


# -- inference ------------------------------------------------------------------


@dataclass
class _Range:
    """What the accesses of one index variable ask of its range."""

    var: Name
    lo: int = 0
    hi: int | None = None
    plain: tuple[str, int] | None = None  # (bus, size) of the first plain use
    starts_at_zero: bool = False  # a left-hand variable
    given: bool = False  # by `in range(...)`: not inferred
    mixed: bool = False  # in an index together with another variable (`x[i+j]`)
    # The accesses that set `lo` and `hi`, as the reasons an empty range gives.
    lo_by: str = ""
    hi_by: str = ""


class Analysis:
    """What a file with buses declares and how its indexes range (see the module docstring).

    `statements` is the parsed file, its random defaults drawn (`draws.drawn`, seeded by
    the constructor's `seed`); `sizes` every size's value; `declared` every declared
    name (sizes, inputs, wires, buses) at its declaration; `scalars` the scalar inputs and
    wires; `buses` the indexed form (`Buses`); `ranges` the range of every index variable,
    by (the span of its binder, its name): a binder is a definition's target or a
    reduction's name, each at its own place in the file. Made whole by its constructor,
    which raises `CircuitError` for the first thing it finds wrong, and not changed after.
    """

    def __init__(self, statements: list, overrides: dict[str, int], seed: int = DEFAULT_SEED):
        self.statements = statements
        self.buses = Buses()
        self.scalars: dict[str, Name] = {}
        self.ranges: dict[tuple[Span, str], range] = {}
        self._collect(overrides)
        self.statements = drawn(statements, self.sizes, self.buses.shapes, seed)
        self._infer_all()

    # -- declarations -----------------------------------------------------------

    def _collect(self, overrides: dict[str, int]) -> None:
        declared: dict[str, Name] = {}

        def declare(name: Name, what: str):
            if name.id in declared:
                raise CircuitError(f"'{name.id}' is declared twice (first at line "
                                   f"{declared[name.id].span.line})", name.span)
            if name.id in CALLABLE:
                raise CircuitError(f"'{name.id}' is a built-in gate and cannot name {what}",
                                   name.span)
            declared[name.id] = name

        size_decls = {}
        for s in self.statements:
            kind = type(s)
            if kind is SizeDecl:
                declare(s.name, "a size")
                size_decls[s.name.id] = s
            elif kind is BusAssign:
                declare(s.target, "a bus")
            elif kind is Assign:
                declare(s.target, "a wire")
                self.scalars[s.target.id] = s.target
            elif kind is InputDecl:
                for item in s.items:
                    name = item.name if type(item) is BusItem else item[0]
                    declare(name, "an input")
                    if type(item) is not BusItem:
                        self.scalars[name.id] = name
        for name in overrides:
            if name not in size_decls:
                raise CircuitError(f"-D {name}: the circuit declares no size of that name"
                                   + _known(size_decls))
        self.sizes = self._sizes(size_decls, overrides)
        self.buses.sizes = dict(self.sizes)
        self.declared = declared
        for s in self.statements:
            if type(s) is InputDecl:
                for item in s.items:
                    if type(item) is BusItem:
                        self.buses.shapes[item.name.id] = self._shape(item)

    def _sizes(self, decls: dict[str, SizeDecl], overrides: dict[str, int]) -> dict[str, int]:
        """Every size's value, each computed after the sizes it reads."""
        sizes: dict[str, int] = {}
        for root in decls:
            path = [root]
            while path:
                name = path[-1]
                if name in sizes:
                    path.pop()
                    continue
                if name in overrides:
                    value = overrides[name]
                    if type(value) is not int or value < 0:  # not 1e23, nor True
                        raise CircuitError(f"-D {name}={value}: a size must be a non-negative "
                                           "integer")
                else:
                    reads = [e.id for e in postorder(decls[name].expr)
                             if type(e) is Name and e.id in decls and e.id not in sizes]
                    if reads:
                        if reads[0] in path:
                            cycle = path[path.index(reads[0]):] + [reads[0]]
                            raise CircuitError("sizes defined in a cycle: " + " -> ".join(cycle),
                                               decls[reads[0]].name.span)
                        path.append(reads[0])
                        continue
                    form = affine(decls[name].expr, sizes)
                    value, span = form[""], decls[name].expr.span
                if value < 0:
                    raise CircuitError(f"size '{name}' is {value}; a size must be a non-negative "
                                       "integer", span)
                sizes[name] = value
                path.pop()
        return sizes

    def _shape(self, item: BusItem) -> tuple[int, ...]:
        shape = []
        for dim in item.dims:
            n = affine(dim, self.sizes)[""] if _is_constant(dim, self.sizes) else None
            if n is None:
                raise CircuitError(f"the shape of '{item.name.id}' must be sizes or integers",
                                   dim.span)
            if n < 1:  # a bus without elements would vanish from the module's parameters
                raise CircuitError(f"'{item.name.id}' would have {n} elements along this "
                                   "dimension; a bus needs at least one element along each", dim.span)
            shape.append(n)
        check_bus(item.name, tuple(shape))
        return tuple(shape)

    # -- the whole file ---------------------------------------------------------

    def largest(self) -> int:
        """The most elements of a bus, or terms of a definition or a reduction (over all its
        index variables), 0 for none."""
        counts = [math.prod(shape) for shape in self.buses.shapes.values()]
        domains: dict[Span, int] = {}  # a definition's or a reduction's, by its position
        for (span, _), r in self.ranges.items():
            domains[span] = domains.get(span, 1) * len(r)
        return max(counts + list(domains.values()), default=0)

    def _infer_all(self) -> None:
        """Infer every index variable's range, and every defined bus's shape."""
        for k in self._definition_order():
            s = self.statements[k]
            self._infer(s.expr, s.target.span, s.indices, s.bounds)
            shape = tuple(len(self.ranges[s.target.span, v.id]) for v in s.indices)
            check_bus(s.target, shape)
            self.buses.shapes[s.target.id] = shape
            self.buses.definitions[s.target.id] = Definition(s, shape)
        for s in self.statements:
            if type(s) is Assign:
                self._infer(s.expr, s.target.span, ())

    def _definition_order(self) -> list[int]:
        """The bus definitions (statement numbers), each after the buses it reads."""
        defs = {s.target.id: k for k, s in enumerate(self.statements) if type(s) is BusAssign}
        reads = {name: [e for e in walk_all(self.statements[k].expr)
                        if type(e) is Index and e.name.id in defs]
                 for name, k in defs.items()}
        order, placed = [], set()
        for root in defs:
            if root in placed:
                continue
            path, iters = [root], [iter(reads[root])]
            while path:
                e = next(iters[-1], None)
                if e is None:
                    placed.add(path[-1])
                    order.append(defs[path.pop()])
                    iters.pop()
                elif e.name.id in path:
                    cycle = path[path.index(e.name.id):] + [e.name.id]
                    raise CircuitError("cycle: " + " -> ".join(cycle), e.span)
                elif e.name.id not in placed:
                    path.append(e.name.id)
                    iters.append(iter(reads[e.name.id]))
        return order

    # -- inference ------------------------------------------------------------

    def _infer(self, expr, target: Span, indices: tuple[Name, ...],
               bounds: tuple | None = None) -> None:
        """Infer the range of every index variable of a statement: the left-hand
        `indices` (bound at `target`; `bounds` gives some of them, as `BusAssign.bounds`)
        and each reduction's."""
        ranges: dict[tuple, _Range] = {}
        left = {}
        for v, given in zip(indices, bounds or (None,) * len(indices)):
            self._check_variable(v, left, target)
            left[v.id] = (target, v.id)
            ranges[target, v.id] = _Range(v, starts_at_zero=True, given=given is not None)
            if given is not None:
                self.ranges[target, v.id] = self._given_range(v, given)
        stack = [(expr, left)]
        while stack:
            e, scope = stack.pop()
            for sub in postorder(e):
                kind = type(sub)
                if kind is Index:
                    self._constrain(sub, scope, ranges)
                elif kind is Reduce:
                    inner = dict(scope)
                    self._check_reduction(sub)
                    bounds = [affine(b, self.sizes, scope) for b in sub.bounds or ()]
                    if bounds and all(len(b) == 1 for b in bounds):  # constant: checked here
                        check_terms(sub, [range(*(b[""] for b in bounds))] * len(sub.vars))
                    for v in sub.vars:
                        self._check_variable(v, inner, sub.span)
                        inner[v.id] = (sub.span, v.id)
                        ranges[sub.span, v.id] = _Range(v, given=sub.bounds is not None)
                    stack.append((sub.body, inner))
                elif kind is Name and sub.id in self.buses.shapes and sub.id not in scope:
                    raise self.unindexed(sub)
        for key, r in ranges.items():
            if r.given:
                continue
            if r.hi is None:
                raise CircuitError(f"cannot infer the range of '{r.var.id}': it indexes no bus"
                                   + (" on its own (an index mixing two variables does not "
                                      "count)" if r.mixed else "")
                                   + ("" if r.starts_at_zero else
                                      f"; give it as 'for {r.var.id} in range(...)'"), r.var.span)
            if r.lo >= r.hi:
                why = " and ".join(filter(None, (r.lo_by, r.hi_by)))
                raise CircuitError(f"the range of '{r.var.id}' is empty: {why}", r.var.span)
            self.ranges[key] = range(r.lo, r.hi)
        for e in walk_all(expr):
            if type(e) is Reduce and e.bounds is None:
                check_terms(e, [self.ranges[e.span, v.id] for v in e.vars])

    def _check_variable(self, v: Name, scope, binder: Span) -> None:
        """`v` may be bound at `binder` (a definition's target or a reduction): it is
        bound there only once and hides no other variable or name."""
        if v.id in scope:
            if scope[v.id][0] == binder:
                raise CircuitError(f"index variable '{v.id}' is bound twice", v.span)
            raise CircuitError(f"index variable '{v.id}' shadows the outer index variable "
                               f"'{v.id}'; rename one of them", v.span)
        if v.id in self.declared:
            raise CircuitError(f"index variable '{v.id}' shadows the {self._what(v.id)} "
                               f"'{v.id}'", v.span)

    def _what(self, name: str) -> str:
        """What a declared name names: size, bus, input or wire."""
        if name in self.sizes:
            return "size"
        if name in self.buses.shapes or any(
                type(s) is BusAssign and s.target.id == name for s in self.statements):
            return "bus"
        return "wire" if any(type(s) is Assign and s.target.id == name
                             for s in self.statements) else "input"

    def _given_range(self, v: Name, bounds: tuple) -> range:
        """The range given to a left-hand index variable: `range(stop)`, from 0 as every
        bus, with `stop` a constant (sizes and integers)."""
        if len(bounds) != 1:
            raise CircuitError(f"a bus is defined from index 0: give the range of '{v.id}' as "
                               f"range(stop), with one argument (got {len(bounds)})", v.span)
        if not _is_constant(bounds[0], self.sizes):
            raise CircuitError(f"the range of '{v.id}' must be sizes or integers",
                               bounds[0].span)
        stop = affine(bounds[0], self.sizes)[""]
        if stop < 1:
            raise CircuitError(f"the range of '{v.id}' is empty: range({stop})", bounds[0].span)
        return range(stop)

    @staticmethod
    def _check_reduction(r: Reduce) -> None:
        if r.name.id not in REDUCTIONS:
            guess = _SPELLINGS.get(r.name.id.lower())
            hint = f"; did you mean '{guess}'?" if guess else did_you_mean(r.name.id, REDUCTIONS)
            raise CircuitError(f"'{r.name.id}' is not a reduction (the reductions are "
                               f"{', '.join(REDUCTIONS)}){hint}", r.name.span)
        if r.bounds is not None and len(r.bounds) not in (1, 2):
            raise CircuitError(f"range takes 1 or 2 arguments, got {len(r.bounds)}", r.name.span)

    def unindexed(self, name: Name) -> CircuitError:
        shape = self.buses.shapes[name.id]
        return CircuitError(f"'{name.id}' is a bus of shape {shape_text(shape)}: index it "
                            f"({name.id}[i]) or reduce it (sum({name.id}[i] for i))", name.span)

    def bus_shape(self, access: Index) -> tuple[int, ...]:
        name = access.name
        if name.id not in self.buses.shapes:
            if name.id in self.scalars:
                raise CircuitError(f"'{name.id}' is not a bus and cannot be indexed", name.span)
            if name.id in self.declared:  # a bus defined later, in a cycle
                raise CircuitError(f"'{name.id}' is used before its shape is known", name.span)
            raise CircuitError(f"unknown bus '{name.id}'; declare it with "
                               f"'input {name.id}[SIZE]' or define it", name.span)
        shape = self.buses.shapes[name.id]
        if len(access.args) != len(shape):
            raise CircuitError(f"'{name.id}' has {len(shape)} dimension"
                               f"{'' if len(shape) == 1 else 's'}, indexed with "
                               f"{len(access.args)}", name.span)
        return shape

    def _constrain(self, access: Index, scope: dict, ranges: dict) -> None:
        shape = self.bus_shape(access)
        for d, (arg, n) in enumerate(zip(access.args, shape)):
            form = affine(arg, self.sizes, scope)
            variables = [v for v in form if v]
            if not variables:
                if not 0 <= form[""] < n:
                    raise CircuitError(f"index {form['']} is out of range for '{access.name.id}'"
                                       f"{dimension_text(d, shape)} of size {n}", arg.span)
                continue
            if len(variables) > 1:
                for v in variables:
                    ranges[scope[v]].mixed = True
                continue
            v = variables[0]
            r = ranges[scope[v]]
            a, c = form[v], form[""]
            if r.given:
                continue
            if a == 1 and c == 0:
                if r.plain is not None and r.plain[1] != n:
                    raise CircuitError(
                        f"'{v}' indexes '{r.plain[0]}' (size {r.plain[1]}) and "
                        f"'{access.name.id}'{dimension_text(d, shape)} (size {n}): the sizes differ",
                        arg.span)
                r.plain = r.plain or (access.name.id, n)
            # 0 <= a*v + c <= n - 1
            if a > 0:
                lo, hi = -(c // a), (n - 1 - c) // a + 1
            else:
                lo, hi = -((n - 1 - c) // -a), c // -a + 1
            if r.starts_at_zero and lo > 0:
                raise CircuitError(
                    f"'{access.name.id}' would be read below index 0 when {v} = 0; a bus is "
                    "defined from index 0: shift the index (x[i+1] - x[i], not x[i] - x[i-1])",
                    arg.span)
            where = f"dimension {d + 1}, size {n}" if len(shape) > 1 else f"size {n}"
            read = f"'{access.name.id}' ({where}) read at {index_text(v, a, c)} needs {v}"
            if lo > r.lo:
                r.lo, r.lo_by = lo, f"{read} >= {lo}"
            if r.hi is None or hi < r.hi:
                r.hi, r.hi_by = hi, f"{read} < {hi}"


def _is_constant(expr, sizes) -> bool:
    return all(type(e) is not Name or e.id in sizes for e in postorder(expr))


def _known(decls) -> str:
    return f" (sizes: {', '.join(decls)})" if decls else " (it declares none)"
