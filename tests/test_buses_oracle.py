"""Bus circuits against their written-out scalar circuits, written independently here.

Hypothesis draws random bus circuits (`strategies.bus_circuits`, whose model of the
language gives each index variable's range), and a writer of this module's own spells the
scalar circuit out as the module docstring of `circuitc.buses` defines it: elements `x_0`,
`W_1_2`; reductions as left folds; `mean` as the sum divided by the number of terms;
`logsumexp` as `m + log(sum(exp(t - m)))` with `m` the left-folded `max`. Both texts are compiled and must agree bit for bit: the python target of
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
import re
import types
from itertools import product

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import circuitc
from circuitc.gates import GATES
from strategies import (
    BUS_SETTINGS,
    GATE_DEFS,
    BusCircuit,
    bus_circuits,
    bus_text,
    in_order,
    nested,
    random_point,
    random_seeds,
)

# What NumPy computes bit for bit as `math` and Python's operators do, on every CPU:
# IEEE's correctly rounded `+ - * /` and `sqrt`, and what only compares or flips a sign.
# NumPy's `exp`, `log`, `sin`, ... are its own (SIMD kernels chosen per CPU, within an ulp
# or so of `math`'s), so a circuit that calls anything else is compared to 1e-12.
# The comparisons, by symbol: 1.0 where they hold.
OPERATIONS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
              "==": operator.eq, "!=": operator.ne}
NUMPY_EXACT = frozenset(("sqrt", "abs", "relu", "max", "min", "sum", "prod", "mean", "where",
                         *GATE_DEFS))


# -- the written-out circuit, written here -----------------------------------------------


def element(name: str, index) -> str:
    return "_".join([name, *map(str, index)])


def scalar_text(c: BusCircuit) -> str:
    """The written-out circuit, by the definition in `circuitc.buses`'s docstring."""
    names = []
    for name, _, shape in c.inputs:
        names += [element(name, k) for k in product(*map(range, shape))]
    lines = [text for text, _ in GATE_DEFS.values()]
    lines.append("input " + ", ".join(names))
    for s in in_order(c):
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


def _scalar(e, env: dict, c: BusCircuit) -> str:
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
    if reduction == "mean":
        return f"({_fold('sum', terms)} / {len(terms)})"
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


def _bits(x) -> tuple:
    """A float as what must agree bit for bit (every nan counts as one)."""
    x = float(x)
    return ("nan",) if math.isnan(x) else (x.hex(),)


def _outputs(module, value) -> list:
    return list(value) if len(module.OUTPUTS) > 1 else [value]


def _run(bus, scalar, c: BusCircuit, point: dict, seeds: dict, container):
    """Both modules at `point`, the bus module's results flattened; or the exception
    type each raised."""
    bus_args = [nested(point[n], shape, container) if shape else point[n][0]
                for n, _, shape in c.inputs]
    bus_seeds = [nested(seeds[n], c.shape(n), container) if c.shape(n) else seeds[n][0]
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


def _ties(c: BusCircuit, point: dict) -> bool:
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
            if e[1] in OPERATIONS:
                return float(OPERATIONS[e[1]](a, b))
            return {"+": a + b, "-": a - b, "*": a * b}[e[1]] if e[1] != "/" else a / b
        if kind == "call" and e[1] == "where":  # lazy, as the circuit is
            return value(e[2][1] if value(e[2][0], env) else e[2][2], env)
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
        if reduction == "mean":
            return _left_fold(terms, operator.add) / len(terms)
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


@BUS_SETTINGS
@given(bus_circuits(), st.integers(0, 2**32 - 1))
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
        point, seeds = random_point(c, rng), random_seeds(c, rng)
        container = (list, tuple, np.array)[k]
        try:
            result = _run(bus, scalar, c, point, seeds, container)
        except AssertionError as e:
            raise AssertionError(f"{e}\n{note}") from None
        if result is not None:
            points.append((point, seeds, result))
    if points:
        _check_numpy(bus_source, c, points, note)


def _check_numpy(bus_source: str, c: BusCircuit, points: list, note: str) -> None:
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
