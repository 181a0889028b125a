"""Buses: sizes, indexed wires and reductions, written out element by element.

`expand(statements, sizes)` takes a parsed file and returns the statements of the
scalar circuit it means, which `lower` compiles like any other file, together with
the indexed form (`Buses`): every bus's shape, and each bus definition with the
range of its index variables. The written-out circuit is the reference semantics
of a bus circuit:

- an element of bus `x` is the scalar named `x[i]` (`W[3,1]` for rank 2), a name
  no `.circ` text can spell, so elements never clash with other names;
- `h[i] = EXPR` assigns `h[0]`, `h[1]`, ... in row-major order, each with the
  index variables replaced by their values;
- `sum(EXPR for i)` is `EXPR(0) + EXPR(1) + ...` from the left; `prod` likewise
  with `*`; `max` and `min` nest the two-argument gates from the left (so ties
  split their gradient as those gates do); `logsumexp` is
  `m + log(sum(exp(EXPR(i) - m) for i))` with `m` the `max` of the terms, which
  never overflows;
- a size, or an index variable used as a number, is its integer value;
- a bus no output depends on is written out at its first element only, and every read
  of it reads that element: its names and calls are checked, and nothing is made of it
  (`lint.needed`; the generated code would leave all of it out).

Index expressions and sizes are integer-affine: integers, sizes and index
variables with `+`, `-`, `*` by a constant and `//` of constants. An index
variable's range is inferred from the buses it indexes (Halide's bounds
inference): `b[i]` asks for `0 <= i < size(b)`, and two such plain uses must agree
on the size; an offset or scaled use (`x[i+1]`, `x[2*i]`) only narrows the range
so that every access stays in bounds. A variable on the left of a definition
starts at 0 (the first element of the bus it defines); a reduction's may start
later (`sum(x[j] - x[j-1] for j)` runs from 1). An index mixing two variables
(`x[i+j]`) does not take part in inference; it is checked element by element.

Everything is walked with explicit stacks, so nesting depth is limited only by
memory, as in `lower`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import product

from . import lint
from .errors import CircuitError, Span, did_you_mean
from .gates import CALLABLE
from .graph import element, elements
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
    SizeDecl,
)

REDUCTIONS = {"sum": "add", "prod": "mul", "max": "max", "min": "min", "logsumexp": None}

# A bus (an input or a definition) has at most this many elements, and a reduction at most
# this many terms. A bus of this size takes 80 MB as an array of 64-bit floats, and the
# commands that see every element (eval, verify, step, graph) take about a minute on it;
# a larger size is refused at once, where it would take many minutes or all the memory
# (docs/language.md).
MAX_ELEMENTS = 10**7


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


def expand(statements: list, sizes: Mapping[str, int] | None = None) -> tuple[list, Buses]:
    """The written-out scalar statements of a file, and its indexed form.

    `sizes` overrides declared sizes (`-D NAME=INT`); naming a size the file does
    not declare is an error. A file without sizes or buses comes back unchanged.
    """
    sizes = dict(sizes or {})
    if not has_buses(statements):
        if sizes:
            raise CircuitError(f"-D {next(iter(sizes))}: the circuit declares no size of that name"
                               + _known({}))
        return statements, Buses()
    return _Expansion(statements, sizes).run()


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


def _children(e) -> tuple:
    kind = type(e)
    if kind is Op or kind is Call or kind is Index:
        return e.args
    return ()


def _postorder(expr):
    """Every subexpression of `expr` after its operands (a reduction's body and
    bounds are not entered: they have scopes of their own)."""
    stack = [(expr, False)]
    while stack:
        e, ready = stack.pop()
        children = _children(e)
        if ready or not children:
            yield e
        else:
            stack.append((e, True))
            stack.extend((c, False) for c in reversed(children))


# -- integer-affine expressions -----------------------------------------------
# An affine form is a dict {variable: coefficient}, the key "" holding the constant.

_AFFINE = "an index or size must be an integer expression: integers, sizes and index variables " \
          "with + - * //"


def _affine(expr, sizes: Mapping[str, int], scope=()) -> dict:
    """The affine form of an integer expression; `scope` holds the index variables."""
    values: list[dict] = []
    for e in _postorder(expr):
        kind = type(e)
        if kind is Num:
            if not e.value.is_integer():
                raise CircuitError(f"{e.value!r} is not an integer; {_AFFINE}", e.span)
            values.append({"": int(e.value)})
        elif kind is Name:
            if e.id in scope:
                values.append({e.id: 1, "": 0})
            elif e.id in sizes:
                values.append({"": sizes[e.id]})
            else:
                raise CircuitError(f"'{e.id}' is not a size or an index variable; {_AFFINE}",
                                   e.span)
        elif kind is Op and e.gate in ("add", "sub", "neg", "mul", "floordiv"):
            args = values[len(values) - len(e.args):]
            del values[len(values) - len(e.args):]
            values.append({k: v for k, v in _combine(e, args).items() if v or not k})
        else:
            raise CircuitError(_AFFINE, e.span)
    return values.pop()


def _combine(e: Op, args: list[dict]) -> dict:
    if e.gate == "neg":
        return {k: -v for k, v in args[0].items()}
    a, b = args
    if e.gate in ("add", "sub"):
        sign = 1 if e.gate == "add" else -1
        out = dict(a)
        for k, v in b.items():
            out[k] = out.get(k, 0) + sign * v
        return out
    constant = [len(x) == 1 for x in args]
    if e.gate == "mul" and (constant[0] or constant[1]):
        factor, form = (a[""], b) if constant[0] else (b[""], a)
        return {k: factor * v for k, v in form.items()}
    if e.gate == "floordiv" and all(constant):
        if b[""] == 0:
            raise CircuitError("integer division by zero", e.span)
        return {"": a[""] // b[""]}
    raise CircuitError("an index must be affine: multiply and divide index variables only by "
                       "constants", e.span)


def _at(form: dict, env: Mapping[str, int]) -> int:
    value = 0
    for k, v in form.items():  # a loop, not sum(): this runs for every element written out
        value += v * env[k] if k else v
    return value


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


class _Expansion:
    def __init__(self, statements: list, overrides: dict[str, int]):
        self.statements = statements
        self.buses = Buses()
        self.scalars: dict[str, Name] = {}  # scalar inputs and wires
        # (the span of the binder, variable) -> its range; a binder is a definition's
        # target or a reduction's name, each at its own place in the file.
        self.ranges: dict[tuple[Span, str], range] = {}
        # An index access -> its bus's shape and the affine form of each index: the same
        # for every element written out, since an access's index variables are fixed
        # by where it stands.
        self.accesses: dict[Index, tuple[tuple[int, ...], list[dict]]] = {}
        # A bus no output depends on -> its one element written out (`run`).
        self.dead: dict[str, tuple[int, ...]] = {}
        self._collect(overrides)

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
                    reads = [e.id for e in _postorder(decls[name].expr)
                             if type(e) is Name and e.id in decls and e.id not in sizes]
                    if reads:
                        if reads[0] in path:
                            cycle = path[path.index(reads[0]):] + [reads[0]]
                            raise CircuitError("sizes defined in a cycle: " + " -> ".join(cycle),
                                               decls[reads[0]].name.span)
                        path.append(reads[0])
                        continue
                    form = _affine(decls[name].expr, sizes)
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
            n = _affine(dim, self.sizes)[""] if _is_constant(dim, self.sizes) else None
            if n is None:
                raise CircuitError(f"the shape of '{item.name.id}' must be sizes or integers",
                                   dim.span)
            if n < 1:  # a bus without elements would vanish from the module's parameters
                raise CircuitError(f"'{item.name.id}' would have {n} elements along this "
                                   "dimension; a bus needs at least one element along each", dim.span)
            shape.append(n)
        _check_bus(item.name, tuple(shape))
        return tuple(shape)

    # -- the whole file ---------------------------------------------------------

    def analyze(self) -> None:
        """Infer every index variable's range, and every defined bus's shape."""
        for k in self._definition_order():
            s = self.statements[k]
            self._infer(s.expr, s.target.span, s.indices)
            shape = tuple(len(self.ranges[s.target.span, v.id]) for v in s.indices)
            _check_bus(s.target, shape)
            self.buses.shapes[s.target.id] = shape
            self.buses.definitions[s.target.id] = Definition(s, shape)
        for s in self.statements:
            if type(s) is Assign:
                self._infer(s.expr, s.target.span, ())

    def run(self) -> tuple[list, Buses]:
        self.analyze()
        # A bus no output depends on is written out at its first element only, which every
        # read of it reads: enough for `lower` to check its names and calls, and what it
        # computes is dropped anyway (it could be 10^7 elements, for nothing).
        needed = lint.needed(self.statements)
        self.dead = {s.target.id: (0,) * len(s.indices) for s in self.statements
                     if type(s) is BusAssign and s.target.id not in needed}
        out = []
        for s in self.statements:
            kind = type(s)
            if kind is Assign:
                out.append(Assign(s.target, self._write(s.expr, {})))
            elif kind is BusAssign:
                out += self._write_bus(s)
            elif kind is InputDecl:
                out.append(InputDecl(tuple(self._input_items(s.items))))
            elif kind is OutputDecl:
                out.append(OutputDecl(tuple(self._output_names(s.names))))
            elif kind is GateDef:
                for e in _postorder(s.body):
                    if type(e) in (Index, Reduce):
                        raise CircuitError("a gate's body is scalar: it cannot index or reduce "
                                           "buses (call the gate on elements instead)", e.span)
                out.append(s)
        assigned = [s for s in self.statements if type(s) in (Assign, BusAssign)]
        if assigned and type(assigned[-1]) is BusAssign and not any(
                type(s) is OutputDecl for s in self.statements):
            # With no `output` statement the output is the last assigned wire: a whole bus.
            out.append(OutputDecl(tuple(self._output_names([assigned[-1].target]))))
        return out, self.buses

    def _definition_order(self) -> list[int]:
        """The bus definitions (statement numbers), each after the buses it reads."""
        defs = {s.target.id: k for k, s in enumerate(self.statements) if type(s) is BusAssign}
        reads = {name: [e for e in _walk_all(self.statements[k].expr)
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

    def _infer(self, expr, target: Span, indices: tuple[Name, ...]) -> None:
        """Infer the range of every index variable of a statement: the left-hand
        `indices` (bound at `target`) and each reduction's."""
        ranges: dict[tuple, _Range] = {}
        left = {}
        for v in indices:
            self._check_variable(v, left, target)
            left[v.id] = (target, v.id)
            ranges[target, v.id] = _Range(v, starts_at_zero=True)
        stack = [(expr, left)]
        while stack:
            e, scope = stack.pop()
            for sub in _postorder(e):
                kind = type(sub)
                if kind is Index:
                    self._constrain(sub, scope, ranges)
                elif kind is Reduce:
                    inner = dict(scope)
                    self._check_reduction(sub)
                    bounds = [_affine(b, self.sizes, scope) for b in sub.bounds or ()]
                    if bounds and all(len(b) == 1 for b in bounds):  # constant: checked here
                        _check_terms(sub, [range(*(b[""] for b in bounds))] * len(sub.vars))
                    for v in sub.vars:
                        self._check_variable(v, inner, sub.span)
                        inner[v.id] = (sub.span, v.id)
                        ranges[sub.span, v.id] = _Range(v, given=sub.bounds is not None)
                    stack.append((sub.body, inner))
                elif kind is Name and sub.id in self.buses.shapes and sub.id not in scope:
                    raise self._unindexed(sub)
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
        for e in _walk_all(expr):
            if type(e) is Reduce and e.bounds is None:
                _check_terms(e, [self.ranges[e.span, v.id] for v in e.vars])

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

    @staticmethod
    def _check_reduction(r: Reduce) -> None:
        if r.name.id not in REDUCTIONS:
            raise CircuitError(f"'{r.name.id}' is not a reduction (the reductions are "
                               f"{', '.join(REDUCTIONS)})" + did_you_mean(r.name.id, REDUCTIONS),
                               r.name.span)
        if r.bounds is not None and len(r.bounds) not in (1, 2):
            raise CircuitError(f"range takes 1 or 2 arguments, got {len(r.bounds)}", r.name.span)

    def _unindexed(self, name: Name) -> CircuitError:
        shape = self.buses.shapes[name.id]
        return CircuitError(f"'{name.id}' is a bus of shape {_shape_text(shape)}: index it "
                            f"({name.id}[i]) or reduce it (sum({name.id}[i] for i))", name.span)

    def _bus_shape(self, access: Index) -> tuple[int, ...]:
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
        shape = self._bus_shape(access)
        for d, (arg, n) in enumerate(zip(access.args, shape)):
            form = _affine(arg, self.sizes, scope)
            variables = [v for v in form if v]
            if not variables:
                if not 0 <= form[""] < n:
                    raise CircuitError(f"index {form['']} is out of range for '{access.name.id}'"
                                       f"{_dimension(d, shape)} of size {n}", arg.span)
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
                        f"'{access.name.id}'{_dimension(d, shape)} (size {n}): the sizes differ",
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
            read = f"'{access.name.id}' ({where}) read at {_index_text(v, a, c)} needs {v}"
            if lo > r.lo:
                r.lo, r.lo_by = lo, f"{read} >= {lo}"
            if r.hi is None or hi < r.hi:
                r.hi, r.hi_by = hi, f"{read} < {hi}"

    # -- writing out --------------------------------------------------------------

    def _write_bus(self, s: BusAssign) -> list[Assign]:
        ranges = [self.ranges[s.target.span, v.id] for v in s.indices]
        names = [v.id for v in s.indices]
        indices = [self.dead[s.target.id]] if s.target.id in self.dead else product(*ranges)
        return [Assign(Name(element(s.target.id, idx), s.target.span),
                       self._write(s.expr, dict(zip(names, idx))))
                for idx in indices]

    def _write(self, expr, env: dict[str, int]):
        """`expr` as scalar syntax, with index variables bound by `env`."""
        values = []
        stack = [(expr, env, None)]
        while stack:
            e, env, ready = stack.pop()
            kind = type(e)
            if kind is Num:
                values.append(e)
            elif kind is Name:
                values.append(self._name(e, env))
            elif kind is Index:
                values.append(self._element(e, env))
            elif kind is Reduce:
                if ready is None:
                    terms = self._bindings(e, env)
                    if not terms:
                        raise CircuitError(f"'{e.name.id}' over an empty range", e.span)
                    stack.append((e, env, len(terms)))
                    stack.extend((e.body, t, None) for t in reversed(terms))
                else:
                    terms = values[len(values) - ready:]
                    del values[len(values) - ready:]
                    values.append(_reduce(e, terms))
            elif kind is Op and e.gate == "floordiv":
                raise CircuitError("'//' is for sizes and indices, not for values", e.span)
            elif ready is None:
                stack.append((e, env, len(e.args)))
                stack.extend((a, env, None) for a in reversed(e.args))
            else:
                args = tuple(values[len(values) - ready:])
                del values[len(values) - ready:]
                values.append(Op(e.gate, args, e.span) if kind is Op else Call(e.name, args))
        return values.pop()

    def _name(self, e: Name, env: dict[str, int]):
        if e.id in env:
            return Num(float(env[e.id]), e.span)
        if e.id in self.sizes:
            return Num(float(self.sizes[e.id]), e.span)
        if e.id in self.buses.shapes:
            raise self._unindexed(e)
        return e

    def _element(self, e: Index, env: dict[str, int]) -> Name:
        if e not in self.accesses:
            self.accesses[e] = (self._bus_shape(e), [_affine(a, self.sizes, env) for a in e.args])
        shape, forms = self.accesses[e]
        index = []
        for d, (arg, n, form) in enumerate(zip(e.args, shape, forms)):
            i = _at(form, env)
            if not 0 <= i < n:
                where = ", ".join(f"{v} = {x}" for v, x in env.items())
                raise CircuitError(f"index {i} is out of range for '{e.name.id}'"
                                   f"{_dimension(d, shape)} of size {n} (at {where})", arg.span)
            index.append(i)
        return Name(element(e.name.id, self.dead.get(e.name.id, index)), e.name.span)

    def _bindings(self, r: Reduce, env: dict[str, int]) -> list[dict]:
        """Each binding of a reduction's variables, in row-major order."""
        if r.bounds is not None:
            given = range(*[_at(_affine(b, self.sizes, env), env) for b in r.bounds])
            ranges = [given] * len(r.vars)
            _check_terms(r, ranges)
        else:
            ranges = [self.ranges[r.span, v.id] for v in r.vars]
        names = [v.id for v in r.vars]
        return [{**env, **dict(zip(names, values))} for values in product(*ranges)]

    # -- inputs and outputs --------------------------------------------------------

    def _input_items(self, items):
        for item in items:
            if type(item) is not BusItem:
                yield item[0], self._default(item[0], item[1])
                continue
            shape = self.buses.shapes[item.name.id]
            names = elements(item.name.id, shape)
            default = item.default
            if type(default) is ListLit:
                defaults = [self._default(item.name, d)
                            for d in _flatten(default, shape, item.name.id)]
            else:
                defaults = [self._default(item.name, default)] * len(names)
            for name, d in zip(names, defaults):
                yield Name(name, item.name.span), d

    def _default(self, name: Name, expr):
        """A default written out (sizes are numbers); it reads no bus."""
        if expr is None:
            return None
        for e in _walk_all(expr):
            if type(e) in (Index, Reduce):
                raise CircuitError(f"the default of '{name.id}' must be a constant, but it "
                                   f"uses '{e.name.id}'", e.span)
        return self._write(expr, {})

    def _output_names(self, names):
        buses = set()
        for name in names:
            if name.id in self.buses.shapes:
                if name.id in buses:  # named as a bus, not by its first element
                    raise CircuitError(f"output '{name.id}' is declared twice", name.span)
                buses.add(name.id)
                for e in elements(name.id, self.buses.shapes[name.id]):
                    yield Name(e, name.span)
            else:
                yield name


def _walk_all(expr):
    """Every subexpression of `expr`, reductions' bodies and bounds included."""
    stack = [expr]
    while stack:
        e = stack.pop()
        yield e
        if type(e) is Reduce:
            stack.append(e.body)
            stack.extend(e.bounds or ())
        else:
            stack.extend(_children(e))


def _is_constant(expr, sizes) -> bool:
    return all(type(e) is not Name or e.id in sizes for e in _postorder(expr))


def _flatten(default: ListLit, shape: tuple[int, ...], name: str) -> list:
    """The elements of a nested list default, checked against the bus's shape."""
    rows = [default]
    for n in shape:
        flat = []
        for row in rows:
            if type(row) is not ListLit or len(row.items) != n:
                raise CircuitError(f"the default of '{name}' must have shape "
                                   f"{_shape_text(shape)}", row.span)
            flat += row.items
        rows = flat
    for item in rows:
        if type(item) is ListLit:
            raise CircuitError(f"the default of '{name}' must have shape {_shape_text(shape)}",
                               item.span)
    return rows


def _reduce(r: Reduce, terms: list):
    """The written-out reduction of `terms` (see the module docstring)."""
    span, kind = r.name.span, r.name.id
    if kind == "logsumexp":
        # `m` is there for stability only: its share of the gradient is 0 (to rounding).
        m = _fold("max", terms, span)
        shifted = [Call(Name("exp", span), (Op("sub", (t, m), span),)) for t in terms]
        return Op("add", (m, Call(Name("log", span), (_fold("add", shifted, span),))), span)
    if kind in ("max", "min"):  # steps with the reduction's tie rule (`gates._step_rule`)
        total = terms[0]
        for k, t in enumerate(terms[1:], 2):
            total = Op(f"{kind}_{'last' if k == len(terms) else 'step'}", (total, t), span)
        return total
    return _fold(REDUCTIONS[kind], terms, span)


def _fold(gate: str, terms: list, span: Span):
    total = terms[0]
    for t in terms[1:]:
        total = Op(gate, (total, t), span) if gate in ("add", "mul") else \
            Call(Name(gate, span), (total, t))
    return total


def _count(ranges) -> int:
    """The number of bindings of variables over `ranges` (no `len`, which is limited to
    what fits in a C `ssize_t`)."""
    count = 1
    for r in ranges:
        count *= max(0, r.stop - r.start)
    return count


def _check_bus(name: Name, shape: tuple[int, ...]) -> None:
    """A `CircuitError` at `name` if a bus of `shape` would have more than `MAX_ELEMENTS`."""
    count = _count(range(n) for n in shape)
    if count > MAX_ELEMENTS:
        raise CircuitError(
            f"'{name.id}' {_shape_text(shape)} would have {count:,} elements "
            f"({_bytes(8 * count)} as 64-bit floats); a bus has at most {MAX_ELEMENTS:,} "
            f"({_bytes(8 * MAX_ELEMENTS)})", name.span)


def _check_terms(r: Reduce, ranges: list[range]) -> None:
    """A `CircuitError` at `r` if it would have more than `MAX_ELEMENTS` terms over its
    variables' `ranges` (one per variable)."""
    count = _count(ranges)
    if count > MAX_ELEMENTS:
        raise CircuitError(f"'{r.name.id}' over {', '.join(v.id for v in r.vars)} would have "
                           f"{count:,} terms; a reduction has at most {MAX_ELEMENTS:,}", r.span)


def _bytes(n: int) -> str:
    """`80 MB`, `8 GB`: a number of bytes, in decimal units."""
    return f"{n / 1e6:,.0f} MB" if n < 10**9 else f"{n / 1e9:,.0f} GB"


def _index_text(v: str, a: int, c: int) -> str:
    """`a*v + c` as written: `i`, `i + 1`, `2*i - 1`."""
    term = v if a == 1 else f"-{v}" if a == -1 else f"{a}*{v}"
    return term if c == 0 else f"{term} + {c}" if c > 0 else f"{term} - {-c}"


def _dimension(d: int, shape) -> str:
    return "" if len(shape) == 1 else f" (dimension {d + 1})"


def _shape_text(shape) -> str:
    return f"[{', '.join(map(str, shape))}]"


def _known(decls) -> str:
    return f" (sizes: {', '.join(decls)})" if decls else " (it declares none)"
