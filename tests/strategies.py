"""The hypothesis strategies the tests share: random circuits of every gate, and random
bus circuits, each with what the tests need to check them.

`scalar_circuits()` draws circuits of gates applied to inputs and earlier wires (every gate
`.circ` can write, `tests/oracle.py`'s forms, kinks included; `gate` definitions called with
wires, so their bodies are inlined at several places; fan-out; one to three outputs), each
a `ScalarCircuit` with its outputs as SymPy expressions, the kink arguments to avoid and
`POINTS` random points.

`bus_circuits()` draws bus circuits (sizes 1-4, input buses of rank 1 and 2, bus
definitions with elementwise gates and calls of `gate` definitions (one with a constant
body), offset, scaled and reversed indices such as `x[i+1]`, `x[2*i]` and `x[n-1-i]`,
constant indices, reductions `sum prod max min logsumexp mean` over inferred or given ranges
(`for q in range(1, 3)`, read at offsets too), nested reductions, index variables and sizes
used as numbers, scalar wires reading reductions, bus and scalar outputs, statements in
any order) as a `BusCircuit`: a model of the language of its own (ranges inferred as
intersections of what each access allows, plain uses agreeing on a size, left-hand
variables from 0), which `bus_text` writes as `.circ` text and from which
tests/test_buses_oracle.py writes the scalar circuit it means. `BUS_SETTINGS` is their
tests' settings (`CIRCUITC_BUS_EXAMPLES` examples).
"""

from __future__ import annotations

import math
import os
import types
from dataclasses import dataclass, field

import numpy as np
import sympy
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from circuitc.gates import CALLABLE
from oracle import FORMS, GATES

# -- scalar circuits ------------------------------------------------------------------

POINTS = 16
KINK_MARGIN = 1e-3  # how near a kink a point may lie and be checked
LARGEST = 1e30  # the largest magnitude of a value or derivative at a point checked
INPUTS = ("x", "y", "z")
SYMBOLS = {name: sympy.Symbol(name, real=True) for name in INPUTS}


class ScalarCircuit(types.SimpleNamespace):
    """`.circ` text, its outputs as SymPy expressions, and the kink arguments to avoid."""


@st.composite
def _application(draw, names: list[str], exprs: dict, kinks: list):
    """One gate applied to names in scope: its `.circ` text and its SymPy expression."""
    op = draw(st.sampled_from(sorted(FORMS)))
    form = FORMS[op]
    arity, template, build, kink = form.arity, form.safe, form.build, form.kink
    args = [draw(st.sampled_from(names)) for _ in range(arity)]
    if kink is not None:
        kinks.append(kink(*(exprs[a] for a in args)))
    return template.format(*args), build(*(exprs[a] for a in args))


@st.composite
def scalar_circuits(draw):
    kinks: list = []
    lines = [f"input {', '.join(INPUTS)}"]
    gates = {}  # name -> (params, SymPy body over the params' symbols)
    for g in range(draw(st.integers(0, 2))):
        params = ["p", "q"][: draw(st.integers(1, 2))]
        symbols = {p: sympy.Symbol(f"_{p}", real=True) for p in params}
        body_kinks: list = []
        first, e1 = draw(_application(params, symbols, body_kinks))
        text, body = draw(_application([*params, "_u"], {**symbols, "_u": e1}, body_kinks))
        text = text.replace("_u", f"({first})")
        gates[f"g{g}"] = (params, body, list(symbols.values()), body_kinks)
        lines.append(f"gate g{g}({', '.join(params)}) = {text}")
    names = list(INPUTS)
    exprs = dict(SYMBOLS)
    for k in range(draw(st.integers(2, 8))):
        wire = f"w{k}"
        if gates and draw(st.integers(0, 3)) == 0:
            name = draw(st.sampled_from(sorted(gates)))
            params, body, symbols, body_kinks = gates[name]
            args = [draw(st.sampled_from(names)) for _ in params]
            lines.append(f"{wire} = {name}({', '.join(args)})")
            bind = dict(zip(symbols, (exprs[a] for a in args)))
            exprs[wire] = body.subs(bind, simultaneous=True)
            kinks += [k.subs(bind, simultaneous=True) for k in body_kinks]
        else:
            text, exprs[wire] = draw(_application(names, exprs, kinks))
            lines.append(f"{wire} = {text}")
        names.append(wire)
    wires = names[len(INPUTS):]
    outputs = draw(st.lists(st.sampled_from(wires), min_size=1, max_size=3, unique=True))
    lines.append(f"output {', '.join(outputs)}")
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    points = rng.uniform(-2.0, 2.0, size=(POINTS, len(INPUTS)))
    return ScalarCircuit(text="\n".join(lines) + "\n", outputs=[exprs[o] for o in outputs],
                   kinks=kinks, points=points, uses_gates=bool(gates))


# -- bus circuits ---------------------------------------------------------------------

EXAMPLES = int(os.environ.get("CIRCUITC_BUS_EXAMPLES", "100"))
BUS_SETTINGS = settings(max_examples=EXAMPLES, deadline=None,
                        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

UNARY = tuple(name for name, form in GATES.items() if form.arity == 1 and name in CALLABLE)
BINARY_CALLS = tuple(name for name, form in GATES.items() if form.arity == 2 and name in CALLABLE)
OPERATORS = ("+", "-", "*", "/")
COMPARISONS = ("<", "<=", ">", ">=", "==", "!=")
REDUCTIONS = ("sum", "prod", "max", "min", "logsumexp", "mean")
LITERALS = ("0.5", "2", "1.5", "3", "0.25")
# `gate` definitions every circuit has, and what each computes: a constant one makes maps
# whose gradients are all 0.
GATE_DEFS = {"konst": ("gate konst(p) = 1.5", lambda p: 1.5),
             "mix": ("gate mix(p, q) = p * q - q", lambda p, q: p * q - q)}


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
class BusCircuit:
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
        self.c = BusCircuit()
        self.var_names = (f"{v}{k or ''}" for k in range(100) for v in "ijlpqruv")

    def pick(self, seq):
        return seq[self.draw(0, len(seq) - 1)]

    def circuit(self) -> BusCircuit:
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
            symbols = OPERATORS if self.draw(0, 4) else COMPARISONS
            return ("op", self.pick(symbols), self.expr(scope, depth - 1, reductions),
                    self.expr(scope, depth - 1, reductions))
        if kind == 6:
            gate = self.pick((*UNARY, "neg", "pow", "konst"))
            if gate == "neg":
                return ("neg", self.expr(scope, depth - 1, reductions))
            if gate == "pow":
                return ("pow", self.expr(scope, depth - 1, reductions), self.pick(("2", "3")))
            return ("call", gate, (self.expr(scope, depth - 1, reductions),))
        if kind == 7:
            gate = self.pick((*BINARY_CALLS, "mix", "where"))
            return ("call", gate, tuple(self.expr(scope, depth - 1, reductions)
                                        for _ in range(3 if gate == "where" else 2)))
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


def in_order(c: BusCircuit) -> list:
    """The statements in the order the texts have them (any order will do: a wire may be
    used above its definition)."""
    return [c.statements[k] for k in c.order or range(len(c.statements))]


def bus_text(c: BusCircuit) -> str:
    lines = [f"size {name} = {value}" for name, value in c.sizes.items()]
    lines += [text for text, _ in GATE_DEFS.values()]
    lines.append("input " + ", ".join(f"{n}[{dims}]" if dims else n for n, dims, _ in c.inputs))
    for s in in_order(c):
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


@st.composite
def bus_circuits(draw):
    return Generator(lambda lo, hi: draw(st.integers(lo, hi))).circuit()


def random_point(c: BusCircuit, rng) -> dict:
    """Random values of `c`'s inputs, element by element (rounded: readable in a failure)."""
    return {n: [float(v) for v in np.round(rng.uniform(-2, 2, max(1, math.prod(shape))), 3)]
            for n, _, shape in c.inputs}


def random_seeds(c: BusCircuit, rng) -> dict:
    """Random seeds of `c`'s outputs, element by element."""
    return {n: [float(v) for v in np.round(rng.normal(size=max(1, math.prod(c.shape(n)))), 3)]
            for n in c.outputs}


def nested(flat: list, shape, container):
    """Row-major `flat` as nested `container`s (list, tuple, np.array) of `shape`."""
    values = list(flat)
    for n in reversed(shape):
        values = [container(values[k:k + n]) for k in range(0, len(values), n)]
    return values[0]
