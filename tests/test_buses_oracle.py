"""Bus circuits against their written-out scalar circuits, written independently here.

Hypothesis draws random bus circuits (sizes 1-4, input buses of rank 1 and 2, bus
definitions with elementwise gates and calls of `gate` definitions (one with a constant
body), offset, scaled and reversed indices such as `x[i+1]`, `x[2*i]` and `x[n-1-i]`,
constant indices, reductions `sum prod max min logsumexp` over inferred or given
ranges (`for q in range(1, 3)`, read at offsets too), nested reductions, index
variables and sizes used as numbers, scalar wires reading reductions, bus and scalar
outputs, statements in any order). The test's own model of
the language (ranges inferred as intersections of what each access allows, plain
uses agreeing on a size, left-hand variables from 0) gives each index variable's
range, and a writer of its own spells the scalar circuit out as the module
docstring of `circuitc.buses` defines it: elements `x_0`, `W_1_2`; reductions as
left folds; `logsumexp` as `m + log(sum(exp(t - m)))` with `m` the left-folded
`max`. Both texts are compiled and must agree bit for bit: the python target of
each, forward values and backward gradients under random seeds, at random points
(a domain error must be raised by both), gradients wherever no `max` or `min`
reduction ties (there a reduction splits its gradient equally, which the text's nested
two-argument gates cannot say; tests/test_reduction_ties.py checks the rule); and the
numpy target of the bus circuit, written out (`elements=True`; tests/test_whole_bus.py
checks its whole-bus code), on a batch of points against the python target of the
scalar circuit, bit for bit where NumPy computes every gate of the circuit as `math`
does on every CPU (the correctly rounded operations of NUMPY_EXACT; others may differ
in the last bit and are compared to 1e-12).

The run in the test suite is modest. For a long run:

    CIRCUITC_BUS_EXAMPLES=2000 python -m pytest tests/test_buses_oracle.py
"""

from __future__ import annotations

import math
import operator
import os
import re
import types
from dataclasses import dataclass, field
from itertools import product

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import circuitc
from circuitc.gates import GATES

EXAMPLES = int(os.environ.get("CIRCUITC_BUS_EXAMPLES", "100"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

UNARY = ("sigmoid", "tanh", "relu", "softplus", "exp", "log", "sqrt", "sin", "cos", "tan",
         "atan", "abs")
BINARY_CALLS = ("max", "min", "pow")
OPERATORS = ("+", "-", "*", "/")
REDUCTIONS = ("sum", "prod", "max", "min", "logsumexp")
# What NumPy computes bit for bit as `math` and Python's operators do, on every CPU:
# IEEE's correctly rounded `+ - * /` and `sqrt`, and what only compares or flips a sign.
# NumPy's `exp`, `log`, `sin`, ... are its own (SIMD kernels chosen per CPU, within an ulp
# or so of `math`'s), so a circuit that calls anything else is compared to 1e-12.
LITERALS = ("0.5", "2", "1.5", "3", "0.25")
# `gate` definitions every circuit has, and what each computes: a constant one makes maps
# whose gradients are all 0.
GATE_DEFS = {"konst": ("gate konst(p) = 1.5", lambda p: 1.5),
             "mix": ("gate mix(p, q) = p * q - q", lambda p, q: p * q - q)}
NUMPY_EXACT = frozenset(("sqrt", "abs", "relu", "max", "min", "sum", "prod", *GATE_DEFS))


# -- the model: expressions, variables and their ranges ---------------------------------


@dataclass
class Var:
    """An index variable: its name, the size it indexes plainly, and its range so far."""

    name: str
    nominal: int
    lo: int = 0
    hi: int | None = None
    left: bool = False  # bound by a definition's left-hand side: starts at 0
    given: tuple[int, int] | None = None  # `in range(a, b)`

    def allows(self, lo: int, hi: int) -> bool:
        """Whether narrowing to [lo, hi) leaves the range room for a plain use too."""
        new_lo, new_hi = max(self.lo, lo, 0), min(self.nominal, hi, *[self.hi or hi])
        return new_lo < new_hi and not (self.left and lo > 0)

    def narrow(self, lo: int, hi: int) -> None:
        self.lo, self.hi = max(self.lo, lo), hi if self.hi is None else min(self.hi, hi)

    @property
    def values(self) -> range:
        return range(*self.given) if self.given else range(self.lo, self.hi)


# Expressions are tuples: ("num", text), ("name", scalar), ("size", name),
# ("ivar", Var), ("access", bus, (index, ...)), ("op", symbol, a, b), ("neg", a),
# ("pow", a, text), ("call", gate, (args...)), ("reduce", kind, (Var, ...), body).
# An index is ("const", k) or ("affine", Var, a, c): a*var + c.


@dataclass
class Circuit:
    sizes: dict[str, int] = field(default_factory=dict)
    inputs: list = field(default_factory=list)  # (name, dims text or None, shape)
    buses: dict[str, tuple[int, ...]] = field(default_factory=dict)
    scalars: list[str] = field(default_factory=list)
    statements: list = field(default_factory=list)  # ("bus", name, (Var...), expr) | ("wire", name, expr)
    outputs: list[str] = field(default_factory=list)
    order: list[int] = field(default_factory=list)  # of the statements in the text: any will do

    def shape(self, name: str) -> tuple[int, ...]:
        return self.buses.get(name, ())


class Generator:
    """Draws a random valid bus circuit; `draw(lo, hi)` picks an integer in [lo, hi]."""

    def __init__(self, draw):
        self.draw = draw
        self.c = Circuit()
        self.var_names = (f"{v}{k or ''}" for k in range(100) for v in "ijlpqruv")

    def pick(self, seq):
        return seq[self.draw(0, len(seq) - 1)]

    def circuit(self) -> Circuit:
        c = self.c
        for name in "nm"[: self.draw(1, 2)]:
            c.sizes[name] = self.draw(1, 4)
        for name in "xyzw"[: self.draw(1, 3)]:
            rank = self.draw(1, 2)
            dims = [self.pick([*c.sizes, "1", "2", "3"]) for _ in range(rank)]
            shape = tuple(c.sizes[d] if d in c.sizes else int(d) for d in dims)
            c.inputs.append((name, ", ".join(dims), shape))
            c.buses[name] = shape
        for name in "ab"[: self.draw(0, 2)]:
            c.inputs.append((name, None, ()))
            c.scalars.append(name)
        for name in "hgfe"[: self.draw(1, 3)]:
            self.definition(name)
        for name in "st"[: self.draw(0, 2)]:
            expr = self.expr([], 2, reductions=2)
            c.statements.append(("wire", name, expr))
            c.scalars.append(name)
        defined = [s[1] for s in c.statements]
        c.outputs = [n for n in defined if self.draw(0, 2)] or [defined[-1]]
        left = list(range(len(c.statements)))
        while left:  # in order, most often; a wire may also be used above its definition
            c.order.append(left.pop(self.draw(0, len(left) - 1) if self.draw(0, 2) == 0 else 0))
        return c

    def definition(self, name: str) -> None:
        rank = self.draw(1, 2)
        variables = [self.new_var(left=True) for _ in range(rank)]
        expr = self.expr(variables, 3, reductions=2)
        expr = self.use_all(expr, variables, variables)
        self.c.statements.append(("bus", name, tuple(variables), expr))
        self.c.buses[name] = tuple(len(v.values) for v in variables)

    def new_var(self, left: bool) -> Var:
        dims = [n for shape in self.c.buses.values() for n in shape]
        return Var(next(self.var_names), self.pick(dims), left=left)

    def use_all(self, expr, variables, scope):
        """`expr` combined with a plain access for each variable no access uses."""
        for v in variables:
            if v.given is None and not _uses(expr, v):
                expr = ("op", self.pick(OPERATORS[:3]), expr, self.access_using(v, scope))
        return expr

    def access_using(self, v: Var, scope):
        """An access indexing `v` plainly in one dimension (a bus with a dimension of its
        nominal size exists: the nominal size was picked from one)."""
        choices = [(bus, d) for bus, shape in self.c.buses.items()
                   for d, n in enumerate(shape) if n == v.nominal]
        bus, d = self.pick(choices)
        v.narrow(0, v.nominal)
        index = [("affine", v, 1, 0) if k == d else self.index(n, scope, plain=False)
                 for k, n in enumerate(self.c.buses[bus])]
        return ("access", bus, tuple(index))

    def index(self, n: int, scope, plain: bool = True):
        """An index into a dimension of size `n` that keeps every variable's range
        non-empty; `plain` allows a variable itself (its size must then be `n`)."""
        options = [("const", k) for k in range(n)]
        for v in scope:
            for a, c in ((1, 0), (1, 1), (1, 2), (1, -1), (2, 0), (2, 1), (-1, n - 1),
                         (-1, n - 2), (-1, 1), (-2, n - 1)):
                if v.given is not None:  # any index that stays in bounds over the range
                    if all(0 <= a * x + c < n for x in v.values) and (
                            (a, c) == (1, 0) or self.draw(0, 1)):
                        options.append(("affine", v, a, c))
                    continue
                if (a, c) == (1, 0) and not (plain and n == v.nominal):
                    continue
                if (a, c) != (1, 0) and n == v.nominal and self.draw(0, 1):
                    continue  # a plain use is likelier where one is possible
                if abs(a) == 2 and self.draw(0, 2):
                    continue
                if v.allows(*_bounds(a, c, n)):
                    options.append(("affine", v, a, c))
        choice = self.pick(options)
        if choice[0] == "affine" and choice[1].given is None:
            choice[1].narrow(*_bounds(choice[2], choice[3], n))
        return choice

    def expr(self, scope, depth: int, reductions: int):
        kind = self.draw(0, 9) if depth > 0 else self.draw(0, 3)
        if kind <= 1 or (kind == 2 and not self.c.scalars):
            bus = self.pick(list(self.c.buses))
            return ("access", bus, tuple(self.index(n, scope) for n in self.c.buses[bus]))
        if kind == 2:
            return ("name", self.pick(self.c.scalars))
        if kind == 3:
            small = [("num", t) for t in LITERALS] + [("size", s) for s in self.c.sizes]
            small += [("ivar", v) for v in scope]
            return self.pick(small)
        if kind <= 5:
            return ("op", self.pick(OPERATORS), self.expr(scope, depth - 1, reductions),
                    self.expr(scope, depth - 1, reductions))
        if kind == 6:
            gate = self.pick((*UNARY, "neg", "pow", "konst"))
            if gate == "neg":
                return ("neg", self.expr(scope, depth - 1, reductions))
            if gate == "pow":
                return ("pow", self.expr(scope, depth - 1, reductions), self.pick(("2", "3")))
            return ("call", gate, (self.expr(scope, depth - 1, reductions),))
        if kind == 7:
            gate = self.pick((*BINARY_CALLS, "mix"))
            return ("call", gate, (self.expr(scope, depth - 1, reductions),
                                   self.expr(scope, depth - 1, reductions)))
        if reductions == 0:
            return self.expr(scope, depth - 1, 0)
        return self.reduction(scope, depth, reductions)

    def reduction(self, scope, depth: int, reductions: int):
        variables = [self.new_var(left=False) for _ in range(self.draw(1, 2))]
        if self.draw(0, 3) == 0:  # one given range for all, within a size
            nominal = min(v.nominal for v in variables)
            start = self.draw(0, nominal - 1)
            given = (start, self.draw(start + 1, nominal))
            for v in variables:
                v.given = given
        inner = [*scope, *variables]
        body = self.expr(inner, depth - 1, reductions - 1)
        body = self.use_all(body, variables, inner)
        return ("reduce", self.pick(REDUCTIONS), tuple(variables), body)


def _bounds(a: int, c: int, n: int) -> tuple[int, int]:
    """The values of `v` for which `a*v + c` indexes a dimension of size `n`: [lo, hi)."""
    if a > 0:
        return -(c // a), (n - 1 - c) // a + 1
    return -((n - 1 - c) // -a), c // -a + 1


def _uses(expr, v: Var) -> bool:
    """Whether an access of `expr` indexes with `v` (the check of inference)."""
    stack = [expr]
    while stack:
        e = stack.pop()
        if e[0] == "access":
            if any(i[0] == "affine" and i[1] is v for i in e[2]):
                return True
        elif e[0] in ("op",):
            stack += [e[2], e[3]]
        elif e[0] in ("neg", "pow"):
            stack.append(e[1])
        elif e[0] == "call":
            stack += list(e[2])
        elif e[0] == "reduce":
            stack.append(e[3])
    return False


# -- the two writers ---------------------------------------------------------------------


def _in_order(c: Circuit) -> list:
    """The statements in the order the texts have them."""
    return [c.statements[k] for k in c.order or range(len(c.statements))]


def bus_text(c: Circuit) -> str:
    lines = [f"size {name} = {value}" for name, value in c.sizes.items()]
    lines += [text for text, _ in GATE_DEFS.values()]
    lines.append("input " + ", ".join(f"{n}[{dims}]" if dims else n for n, dims, _ in c.inputs))
    for s in _in_order(c):
        if s[0] == "bus":
            lines.append(f"{s[1]}[{', '.join(v.name for v in s[2])}] = {_bus_expr(s[3])}")
        else:
            lines.append(f"{s[1]} = {_bus_expr(s[2])}")
    lines.append("output " + ", ".join(c.outputs))
    return "\n".join(lines) + "\n"


def _bus_index(index) -> str:
    if index[0] == "const":
        return str(index[1])
    _, v, a, c = index
    if a < 0:  # `n - 1 - i`, `2 - 2 * i`
        return f"{c} - {v.name if a == -1 else f'{-a} * {v.name}'}"
    text = v.name if a == 1 else f"{a} * {v.name}"
    return text if c == 0 else f"{text} + {c}" if c > 0 else f"{text} - {-c}"


def _bus_expr(e) -> str:
    kind = e[0]
    if kind in ("num", "name", "size"):
        return e[1]
    if kind == "ivar":
        return e[1].name
    if kind == "access":
        return f"{e[1]}[{', '.join(map(_bus_index, e[2]))}]"
    if kind == "op":
        return f"({_bus_expr(e[2])} {e[1]} {_bus_expr(e[3])})"
    if kind == "neg":
        return f"(-{_bus_expr(e[1])})"
    if kind == "pow":
        return f"({_bus_expr(e[1])} ** {e[2]})"
    if kind == "call":
        return f"{e[1]}({', '.join(map(_bus_expr, e[2]))})"
    _, reduction, variables, body = e
    names = ", ".join(v.name for v in variables)
    given = variables[0].given
    if given:
        bounds = f" in range({given[1]})" if given[0] == 0 else f" in range({given[0]}, {given[1]})"
    else:
        bounds = ""
    return f"{reduction}({_bus_expr(body)} for {names}{bounds})"


def element(name: str, index) -> str:
    return "_".join([name, *map(str, index)])


def scalar_text(c: Circuit) -> str:
    """The written-out circuit, by the definition in `circuitc.buses`'s docstring."""
    names = []
    for name, _, shape in c.inputs:
        names += [element(name, k) for k in product(*map(range, shape))]
    lines = [text for text, _ in GATE_DEFS.values()]
    lines.append("input " + ", ".join(names))
    for s in _in_order(c):
        if s[0] == "bus":
            _, name, variables, expr = s
            for values in product(*(v.values for v in variables)):
                env = {v.name: k for v, k in zip(variables, values)}
                lines.append(f"{element(name, values)} = {_scalar(expr, env, c)}")
        else:
            lines.append(f"{s[1]} = {_scalar(s[2], {}, c)}")
    outputs = []
    for name in c.outputs:
        outputs += [element(name, k) for k in product(*map(range, c.shape(name)))]
    lines.append("output " + ", ".join(outputs))
    return "\n".join(lines) + "\n"


def _scalar(e, env: dict, c: Circuit) -> str:
    kind = e[0]
    if kind in ("num", "name"):
        return e[1]
    if kind == "size":
        return str(c.sizes[e[1]])
    if kind == "ivar":
        return str(env[e[1].name])
    if kind == "access":
        index = [i[1] if i[0] == "const" else i[2] * env[i[1].name] + i[3] for i in e[2]]
        assert all(0 <= k < n for k, n in zip(index, c.buses[e[1]])), (e, env)
        return element(e[1], index)
    if kind == "op":
        return f"({_scalar(e[2], env, c)} {e[1]} {_scalar(e[3], env, c)})"
    if kind == "neg":
        return f"(-{_scalar(e[1], env, c)})"
    if kind == "pow":
        return f"({_scalar(e[1], env, c)} ** {e[2]})"
    if kind == "call":
        return f"{e[1]}({', '.join(_scalar(a, env, c) for a in e[2])})"
    _, reduction, variables, body = e
    terms = [_scalar(body, {**env, **{v.name: k for v, k in zip(variables, values)}}, c)
             for values in product(*(v.values for v in variables))]
    if reduction == "logsumexp":
        m = _fold("max", terms)
        return f"({m} + log({_fold('sum', [f'exp(({t} - {m}))' for t in terms])}))"
    return _fold(reduction, terms)


def _fold(reduction: str, terms: list[str]) -> str:
    total = terms[0]
    for t in terms[1:]:
        if reduction in ("sum", "prod"):
            total = f"({total} {'+' if reduction == 'sum' else '*'} {t})"
        else:
            total = f"{reduction}({total}, {t})"
    return total


# -- running and comparing ---------------------------------------------------------------


def _load(text: str, target: str = "python", **options) -> types.ModuleType:
    module = types.ModuleType("circuit")
    exec(compile(circuitc.compile_source(text, "c.circ", target, **options), "c.py", "exec"),  # noqa: S102
         module.__dict__)
    return module


def _flat(value, shape) -> list:
    """The elements of a nested tuple of `shape`, checking that it is one."""
    values = [value]
    for n in shape:
        assert all(type(v) is tuple and len(v) == n for v in values), (value, shape)
        values = [x for v in values for x in v]
    return values


def _nested(flat: list, shape, container):
    values = list(flat)
    for n in reversed(shape):
        values = [container(values[k:k + n]) for k in range(0, len(values), n)]
    return values[0]


def _bits(x) -> tuple:
    """A float as what must agree bit for bit (every nan counts as one)."""
    x = float(x)
    return ("nan",) if math.isnan(x) else (x.hex(),)


def _outputs(module, value) -> list:
    return list(value) if len(module.OUTPUTS) > 1 else [value]


def _run(bus, scalar, c: Circuit, point: dict, seeds: dict, container):
    """Both modules at `point`, the bus module's results flattened; or the exception
    type each raised."""
    bus_args = [_nested(point[n], shape, container) if shape else point[n][0]
                for n, _, shape in c.inputs]
    bus_seeds = [_nested(seeds[n], c.shape(n), container) if c.shape(n) else seeds[n][0]
                 for n in c.outputs]
    flat_args = [x for n, _, _ in c.inputs for x in point[n]]
    flat_seeds = [x for n in c.outputs for x in seeds[n]]
    results = []
    for module, args, seed in ((bus, bus_args, bus_seeds), (scalar, flat_args, flat_seeds)):
        try:
            results.append((module.forward(*args), module.backward(*args, *seed)))
        except (ArithmeticError, ValueError) as e:
            results.append(type(e))
    (got, want) = results
    if isinstance(got, type) or isinstance(want, type):
        assert got == want, (got, want)
        return None
    values = [x for n, v in zip(c.outputs, _outputs(bus, got[0])) for x in _flat(v, c.shape(n))]
    forward_values = [x for n, v in zip(c.outputs, _outputs(bus, got[1][0]))
                      for x in _flat(v, c.shape(n))]
    grads = [x for (n, _, shape), g in zip(c.inputs, got[1][1]) for x in _flat(g, shape)]
    assert list(map(_bits, values)) == list(map(_bits, _outputs(scalar, want[0])))
    assert list(map(_bits, forward_values)) == list(map(_bits, _outputs(scalar, want[1][0])))
    if not _ties(c, point):
        # A wire's contributions are added in the order the gates were met, which a bus no
        # output needs (written out at one element) changes: its last bit may differ.
        scale = max([abs(x) for x in grads if math.isfinite(x)], default=1.0)
        assert grads == pytest.approx(list(want[1][1]), rel=1e-15, abs=4e-16 * scale,
                                      nan_ok=True)
    return values, grads


def _left_fold(terms: list, f):
    total = terms[0]
    for t in terms[1:]:
        total = f(total, t)
    return total


def _ties(c: Circuit, point: dict) -> bool:
    """Whether a `max` or `min` reduction of `c` has, at `point`, two terms equal to its
    result or a NaN term: there a reduction splits its gradient equally among the terms
    equal to its result, where its text here, a left fold of the two-argument gates, gives
    each tie half of what reaches it. The circuit is evaluated on its own terms."""
    found = []
    values = {n: dict(zip(product(*map(range, shape)), point[n])) if shape else point[n][0]
              for n, _, shape in c.inputs}

    def value(e, env):
        kind = e[0]
        if kind == "num":
            return float(e[1])
        if kind == "name":
            return values[e[1]]
        if kind == "size":
            return float(c.sizes[e[1]])
        if kind == "ivar":
            return float(env[e[1].name])
        if kind == "access":
            return values[e[1]][tuple(i[1] if i[0] == "const" else i[2] * env[i[1].name] + i[3]
                                      for i in e[2])]
        if kind == "op":
            a, b = value(e[2], env), value(e[3], env)
            return {"+": a + b, "-": a - b, "*": a * b}[e[1]] if e[1] != "/" else a / b
        if kind == "neg":
            return -value(e[1], env)
        if kind == "pow":
            return math.pow(value(e[1], env), float(e[2]))
        if kind == "call":
            args = [value(a, env) for a in e[2]]
            return GATE_DEFS[e[1]][1](*args) if e[1] in GATE_DEFS else GATES[e[1]].fn(*args)
        _, reduction, variables, body = e
        terms = [value(body, {**env, **{v.name: k for v, k in zip(variables, ks)}})
                 for ks in product(*(v.values for v in variables))]
        if reduction in ("sum", "prod"):
            return _left_fold(terms, operator.add if reduction == "sum" else operator.mul)
        m = _left_fold(terms, min if reduction == "min" else max)
        if reduction in ("max", "min") and (terms.count(m) > 1 or any(map(math.isnan, terms))):
            found.append(e)
        if reduction == "logsumexp":
            return m + math.log(_left_fold([math.exp(t - m) for t in terms], operator.add))
        return m

    try:
        for s in c.statements:
            if s[0] == "bus":
                _, name, variables, expr = s
                values[name] = {k: value(expr, {v.name: x for v, x in zip(variables, k)})
                                for k in product(*(v.values for v in variables))}
            else:
                values[s[1]] = value(s[2], {})
    except (ArithmeticError, ValueError):
        return True  # the modules raised too; or a value overflowed here: not worth telling
    return bool(found)


@st.composite
def circuits(draw):
    return Generator(lambda lo, hi: draw(st.integers(lo, hi))).circuit()


def _point(c: Circuit, rng) -> dict:
    return {n: [float(v) for v in np.round(rng.uniform(-2, 2, max(1, math.prod(shape))), 3)]
            for n, _, shape in c.inputs}


def _seeds(c: Circuit, rng) -> dict:
    return {n: [float(v) for v in np.round(rng.normal(size=max(1, math.prod(c.shape(n)))), 3)]
            for n in c.outputs}


@SETTINGS
@given(circuits(), st.integers(0, 2**32 - 1))
def test_bus_circuit_is_its_written_out_circuit(c, seed):
    bus_source, scalar_source = bus_text(c), scalar_text(c)
    note = f"bus circuit:\n{bus_source}\nwritten out:\n{scalar_source}"
    errors = []
    for source in (bus_source, scalar_source):
        try:
            errors.append(_load(source))
        except circuitc.CircuitError as e:  # a constant domain error must be both's
            errors.append(e.message)
    if any(isinstance(e, str) for e in errors):
        assert errors[0] == errors[1], note
        assert "fails on constant operands" in errors[0], note
        return
    bus, scalar = errors
    assert bus.SHAPES == {**{n: s for n, _, s in c.inputs}, **{n: c.shape(n) for n in c.outputs}}
    rng = np.random.default_rng(seed)
    points = []
    for k in range(3):
        point, seeds = _point(c, rng), _seeds(c, rng)
        container = (list, tuple, np.array)[k]
        try:
            result = _run(bus, scalar, c, point, seeds, container)
        except AssertionError as e:
            raise AssertionError(f"{e}\n{note}") from None
        if result is not None:
            points.append((point, seeds, result))
    if points:
        _check_numpy(bus_source, c, points, note)


def _check_numpy(bus_source: str, c: Circuit, points: list, note: str) -> None:
    """The numpy module of the bus circuit on a batch of the points where the python
    modules answered: the same numbers, point by point."""
    fast = _load(bus_source, "numpy", elements=True)
    args = [np.array([p[n] for p, _, _ in points]).reshape((len(points), *shape))
            for n, _, shape in c.inputs]
    seeds = [np.array([s[n] for _, s, _ in points]).reshape((len(points), *c.shape(n)))
             for n in c.outputs]
    try:
        value, grads = fast.backward(*args, *seeds)
    except (ArithmeticError, ValueError):
        # NumPy raises on overflow where Python's arithmetic gives inf; an infinity
        # among the python results is the only excuse.
        finite = all(math.isfinite(x) for _, _, r in points for x in r[0] + r[1])
        assert not finite, note
        return
    exact = "**" not in bus_source and set(re.findall(r"(\w+)\(", bus_source)) <= NUMPY_EXACT
    # An ulp of a value near its operands' scale may be a large part of a result that
    # cancels (`1 - tanh(x)**2`): compared relative to the largest magnitude too.
    scale = max([abs(x) for _, _, r in points for x in r[0] + r[1] if math.isfinite(x)], default=1.0)
    for b, (_, _, (want_values, want_grads)) in enumerate(points):
        got_values = [float(x) for n, v in zip(c.outputs, _outputs(fast, value))
                      for x in np.asarray(v)[b].reshape(-1)]
        got_grads = [float(x) for g in grads for x in np.asarray(g)[b].reshape(-1)]
        for got, want in ((got_values, want_values), (got_grads, want_grads)):
            if exact:
                assert list(map(_bits, got)) == list(map(_bits, want)), note
            else:
                assert got == pytest.approx(want, rel=1e-12, abs=1e-12 * scale, nan_ok=True), note
