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
  with `*`; `mean` is the sum divided by the number of terms; `max` and `min` nest
  the two-argument gates from the left (so ties split their gradient as those gates
  do); `logsumexp` is
  `m + log(sum(exp(EXPR(i) - m) for i))` with `m` the `max` of the terms, which
  never overflows;
- a size, or an index variable used as a number, is its integer value;
- a bus no output depends on is written out at its first element only, and every read
  of it reads that element: its names and calls are checked, and nothing is made of it
  (`lint.needed`; the generated code would leave all of it out).

The sizes, shapes and index ranges come from the file's analysis (`shapes.analyze`),
which the whole-bus back end (`indexed.planner`) reads too; an index mixing two variables
(`x[i+j]`), which takes no part in inferring ranges, is checked here, element by element.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import product

from . import lint
from .affine import affine, value_at
from .errors import CircuitError, Span
from .graph import element, elements
from .limits import check_terms, dimension_text, shape_text
from .shapes import REDUCTIONS, Analysis, Buses, analyze
from .syntax import (
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
    postorder,
    walk_all,
)


def expand(statements: list, sizes: Mapping[str, int] | None = None) -> tuple[list, Buses]:
    """The written-out scalar statements of a file, and its indexed form.

    `sizes` overrides declared sizes (`-D NAME=INT`); naming a size the file does
    not declare is an error. A file without sizes or buses comes back unchanged.
    """
    return written_out(statements, analyze(statements, sizes))


def written_out(statements: list, analysis: Analysis | None) -> tuple[list, Buses]:
    """`expand` of a parsed file whose analysis is made (`shapes.analyze(statements,
    sizes)`, None for a file without buses)."""
    if analysis is None:
        return statements, Buses()
    return _Expansion(analysis).run()


def default_elements(analysis: Analysis, item: BusItem) -> list:
    """The default of each element of the bus input `item`, in row-major order, written out
    as `expand` writes it (sizes as numbers)."""
    return [default for _, default in _Expansion(analysis).input_items([item])]


class _Expansion:
    """Writes a file with buses out, element by element, from its analysis."""

    def __init__(self, analysis: Analysis):
        self.analysis = analysis
        self.statements = analysis.statements
        self.sizes, self.ranges = analysis.sizes, analysis.ranges
        self.shapes = analysis.buses.shapes
        # An index access -> its bus's shape and the affine form of each index: the same
        # for every element written out, since an access's index variables are fixed
        # by where it stands.
        self.accesses: dict[Index, tuple[tuple[int, ...], list[dict]]] = {}
        # A bus no output depends on -> its one element written out (`run`).
        self.dead: dict[str, tuple[int, ...]] = {}

    def run(self) -> tuple[list, Buses]:
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
                out.append(InputDecl(tuple(self.input_items(s.items))))
            elif kind is OutputDecl:
                out.append(OutputDecl(tuple(self._output_names(s.names))))
            elif kind is GateDef:
                for e in postorder(s.body):
                    if type(e) in (Index, Reduce):
                        raise CircuitError("a gate's body is scalar: it cannot index or reduce "
                                           "buses (call the gate on elements instead)", e.span)
                out.append(s)
        assigned = [s for s in self.statements if type(s) in (Assign, BusAssign)]
        if assigned and type(assigned[-1]) is BusAssign and not any(
                type(s) is OutputDecl for s in self.statements):
            # With no `output` statement the output is the last assigned wire: a whole bus.
            out.append(OutputDecl(tuple(self._output_names([assigned[-1].target]))))
        return out, self.analysis.buses

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
        if e.id in self.shapes:
            raise self.analysis.unindexed(e)
        return e

    def _element(self, e: Index, env: dict[str, int]) -> Name:
        if e not in self.accesses:
            self.accesses[e] = (self.analysis.bus_shape(e), [affine(a, self.sizes, env) for a in e.args])
        shape, forms = self.accesses[e]
        index = []
        for d, (arg, n, form) in enumerate(zip(e.args, shape, forms)):
            i = value_at(form, env)
            if not 0 <= i < n:
                where = ", ".join(f"{v} = {x}" for v, x in env.items())
                raise CircuitError(f"index {i} is out of range for '{e.name.id}'"
                                   f"{dimension_text(d, shape)} of size {n} (at {where})", arg.span)
            index.append(i)
        return Name(element(e.name.id, self.dead.get(e.name.id, index)), e.name.span)

    def _bindings(self, r: Reduce, env: dict[str, int]) -> list[dict]:
        """Each binding of a reduction's variables, in row-major order."""
        if r.bounds is not None:
            given = range(*[value_at(affine(b, self.sizes, env), env) for b in r.bounds])
            ranges = [given] * len(r.vars)
            check_terms(r, ranges)
        else:
            ranges = [self.ranges[r.span, v.id] for v in r.vars]
        names = [v.id for v in r.vars]
        return [{**env, **dict(zip(names, values))} for values in product(*ranges)]

    # -- inputs and outputs --------------------------------------------------------

    def input_items(self, items):
        for item in items:
            if type(item) is not BusItem:
                yield item[0], self._default(item[0], item[1])
                continue
            shape = self.shapes[item.name.id]
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
        for e in walk_all(expr):
            if type(e) in (Index, Reduce):
                raise CircuitError(f"the default of '{name.id}' must be a constant, but it "
                                   f"uses '{e.name.id}'", e.span)
        return self._write(expr, {})

    def _output_names(self, names):
        buses = set()
        for name in names:
            if name.id in self.shapes:
                if name.id in buses:  # named as a bus, not by its first element
                    raise CircuitError(f"output '{name.id}' is declared twice", name.span)
                buses.add(name.id)
                for e in elements(name.id, self.shapes[name.id]):
                    yield Name(e, name.span)
            else:
                yield name


def _flatten(default: ListLit, shape: tuple[int, ...], name: str) -> list:
    """The elements of a nested list default, checked against the bus's shape."""
    rows = [default]
    for n in shape:
        flat = []
        for row in rows:
            if type(row) is not ListLit or len(row.items) != n:
                raise CircuitError(f"the default of '{name}' must have shape "
                                   f"{shape_text(shape)}", row.span)
            flat += row.items
        rows = flat
    for item in rows:
        if type(item) is ListLit:
            raise CircuitError(f"the default of '{name}' must have shape {shape_text(shape)}",
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
    if kind == "mean":
        return Op("div", (_fold("add", terms, span), Num(float(len(terms)), span)), span)
    return _fold(REDUCTIONS[kind], terms, span)


def _fold(gate: str, terms: list, span: Span):
    total = terms[0]
    for t in terms[1:]:
        total = Op(gate, (total, t), span) if gate in ("add", "mul") else \
            Call(Name(gate, span), (total, t))
    return total

