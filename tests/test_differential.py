"""Differential testing: random circuits against SymPy and against numerical gradients, in both targets.

`tests/test_sympy_oracle.py` covers the smooth gates at one point per circuit. Here the
circuits use every gate `.circ` can write, kinks included, `gate` definitions (called
with wires, so their bodies are inlined at several places), fan-out and several
outputs, and each is checked at many points:

- the python target, point by point, against SymPy's values and symbolic gradients
  (lambdified), and against central differences;
- the numpy target on all points at once (one batch), against the same SymPy numbers.

`relu`, `abs`, `max` and `min` have SymPy formulas without Piecewise or Heaviside
(`abs(a) = sqrt(a**2)`, `max(a, b) = (a + b + sqrt((a-b)**2))/2`), which are exact away
from their kinks; points closer than `KINK_MARGIN` to a kink of any gate in the circuit
are left out, as are points where a value grows beyond `LARGEST`. Gates with a
restricted domain get arguments that stay inside it (`log(1 + a**2)`).

The run in the test suite is short. For a long run:

    CIRCUITC_DIFFERENTIAL_EXAMPLES=20000 python -m pytest tests/test_differential.py
"""

from __future__ import annotations

import math
import os
import types

import numpy as np
import sympy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import circuitc
from circuitc.gates import CALLABLE, GATES

EXAMPLES = int(os.environ.get("CIRCUITC_DIFFERENTIAL_EXAMPLES", "100"))
POINTS = 16
KINK_MARGIN = 1e-3
LARGEST = 1e30
INPUTS = ("x", "y", "z")
SYMBOLS = {name: sympy.Symbol(name, real=True) for name in INPUTS}


def _abs(a):
    return sympy.sqrt(a**2)


# gate -> (arity, .circ template over {0}, {1}, SymPy builder, kink argument or None).
# Templates keep arguments inside the gate's domain; the SymPy builder mirrors them.
FORMS = {
    "add": (2, "{0} + {1}", lambda a, b: a + b, None),
    "sub": (2, "{0} - {1}", lambda a, b: a - b, None),
    "mul": (2, "{0} * {1}", lambda a, b: a * b, None),
    "div": (2, "{0} / (1 + {1}*{1})", lambda a, b: a / (1 + b * b), None),
    "neg": (1, "-{0}", lambda a: -a, None),
    "pow": (2, "(1 + {0}*{0}) ** tanh({1})", lambda a, b: (1 + a * a) ** sympy.tanh(b), None),
    "sigmoid": (1, "sigmoid({0})", lambda a: 1 / (1 + sympy.exp(-a)), None),
    "tanh": (1, "tanh({0})", sympy.tanh, None),
    "relu": (1, "relu({0})", lambda a: (a + _abs(a)) / 2, lambda a: a),
    "softplus": (1, "softplus({0})", lambda a: sympy.log(1 + sympy.exp(a)), None),
    "exp": (1, "exp(tanh({0}))", lambda a: sympy.exp(sympy.tanh(a)), None),
    "log": (1, "log(1 + {0}*{0})", lambda a: sympy.log(1 + a * a), None),
    "sqrt": (1, "sqrt(1 + {0}*{0})", lambda a: sympy.sqrt(1 + a * a), None),
    "sin": (1, "sin({0})", sympy.sin, None),
    "cos": (1, "cos({0})", sympy.cos, None),
    "tan": (1, "tan(atan({0}) / 2)", lambda a: sympy.tan(sympy.atan(a) / 2), None),
    "atan": (1, "atan({0})", sympy.atan, None),
    "abs": (1, "abs({0})", _abs, lambda a: a),
    "max": (2, "max({0}, {1})", lambda a, b: (a + b + _abs(a - b)) / 2, lambda a, b: a - b),
    "min": (2, "min({0}, {1})", lambda a, b: (a + b - _abs(a - b)) / 2, lambda a, b: a - b),
    # Integer powers, which the compiler may rewrite (`x**2 -> x*x`).
    "square": (1, "{0}**2", lambda a: a**2, None),
    "cube": (1, "pow({0}, 3)", lambda a: a**3, None),
    "inverse": (1, "(1 + {0}*{0}) ** -1", lambda a: 1 / (1 + a * a), None),
}
# Every gate `.circ` can write has a form here.
assert {g.name for g in GATES.values() if g.callable or g.operator} <= set(FORMS)


class Circuit(types.SimpleNamespace):
    """`.circ` text, its outputs as SymPy expressions, and the kink arguments to avoid."""


@st.composite
def _application(draw, names: list[str], exprs: dict, kinks: list):
    """One gate applied to names in scope: its `.circ` text and its SymPy expression."""
    op = draw(st.sampled_from(sorted(FORMS)))
    arity, template, build, kink = FORMS[op]
    args = [draw(st.sampled_from(names)) for _ in range(arity)]
    if kink is not None:
        kinks.append(kink(*(exprs[a] for a in args)))
    return template.format(*args), build(*(exprs[a] for a in args))


@st.composite
def circuits(draw):
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
    return Circuit(text="\n".join(lines) + "\n", outputs=[exprs[o] for o in outputs],
                   kinks=kinks, points=points, uses_gates=bool(gates))


def _lambdified(exprs):
    return sympy.lambdify(list(SYMBOLS.values()), exprs, modules="math")


def _expected(circuit: Circuit):
    """Per kept point: the outputs' values and, per output, the gradient; and the points kept."""
    symbols = list(SYMBOLS.values())
    values = _lambdified(circuit.outputs)
    grads = _lambdified([[sympy.diff(e, s) for s in symbols] for e in circuit.outputs])
    # A kink argument that is identically zero (`max(w, w)`) is a tie everywhere, where the
    # compiler's convention (half the gradient to each side) agrees with the formula.
    live = [k for k in circuit.kinks if k != 0]
    kinks = _lambdified(live) if live else None
    kept, expected = [], []
    for point in circuit.points:
        if kinks is not None and min(abs(k) for k in kinks(*point)) < KINK_MARGIN:
            continue
        try:
            v, g = values(*point), grads(*point)
        except (ArithmeticError, ValueError):
            continue
        numbers = [*v, *(x for row in g for x in row)]
        if all(math.isfinite(x) and abs(x) < LARGEST for x in numbers):
            kept.append(point)
            expected.append((v, g))
    return np.array(kept).reshape(-1, len(INPUTS)), expected


def _close(a: float, b: float, scale: float, rel: float) -> bool:
    return abs(a - b) <= rel * max(abs(b), scale)


def _load(text: str, target: str) -> types.ModuleType:
    module = types.ModuleType("differential")
    exec(compile(circuitc.compile_source(text, "random.circ", target), "random.py", "exec"),  # noqa: S102
         module.__dict__)
    return module


def _numerical(module, point, k: int, n_out: int) -> list[float]:
    """Central differences of output `k` at `point`, one per input."""
    def f(p):
        value = module.forward(*p)
        return value[k] if n_out > 1 else value
    grads = []
    for i in range(len(point)):
        h = 1e-6 * max(1.0, abs(point[i]))
        up, down = list(point), list(point)
        up[i] += h
        down[i] -= h
        grads.append((f(up) - f(down)) / (2 * h))
    return grads


SETTINGS = settings(max_examples=EXAMPLES, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@SETTINGS
@given(circuits())
def test_random_circuits_agree_with_sympy_and_numerical_gradients(circuit):
    points, expected = _expected(circuit)
    n_out = len(circuit.outputs)
    python = _load(circuit.text, "python")
    for point, (values, grads) in zip(points.tolist(), expected, strict=True):
        got = python.forward(*point)
        got = got if n_out > 1 else (got,)
        scale = max(1.0, *map(abs, values))
        assert all(_close(a, b, scale, 1e-9) for a, b in zip(got, values, strict=True)), circuit.text
        for k in range(n_out):
            seeds = [float(j == k) for j in range(n_out)]
            _, analytic = python.backward(*point, *seeds)
            gscale = max(1.0, *map(abs, grads[k]))
            assert all(_close(a, b, gscale, 1e-8) for a, b in zip(analytic, grads[k], strict=True)), (
                circuit.text, point, k, analytic, grads[k])
            numeric = _numerical(python, point, k, n_out)
            assert all(_close(a, b, gscale * 10, 1e-5) for a, b in zip(analytic, numeric, strict=True)), (
                circuit.text, point, k, analytic, numeric)
    if not len(points):
        return
    # The numpy target: every kept point in one batch.
    batch = _load(circuit.text, "numpy")
    columns = [points[:, i] for i in range(len(INPUTS))]
    values = np.array([v for v, _ in expected])  # point, output
    got = batch.forward(*columns)
    got = np.stack(got, axis=1) if n_out > 1 else np.asarray(got)[:, None]
    scale = np.maximum(1.0, np.abs(values).max(axis=1, keepdims=True))
    assert np.all(np.abs(got - values) <= 1e-9 * np.maximum(np.abs(values), scale)), circuit.text
    for k in range(n_out):
        seeds = [float(j == k) for j in range(n_out)]
        _, analytic = batch.backward(*columns, *seeds)
        want = np.array([g[k] for _, g in expected])  # point, input
        gscale = np.maximum(1.0, np.abs(want).max(axis=1, keepdims=True))
        diff = np.abs(np.stack(analytic, axis=1) - want)
        assert np.all(diff <= 1e-8 * np.maximum(np.abs(want), gscale)), (circuit.text, k)


def test_the_forms_cover_every_gate_circ_can_write():
    writable = {g.name for g in CALLABLE.values()} | {g.name for g in GATES.values() if g.operator}
    assert writable <= set(FORMS)
    assert {name for name, form in FORMS.items() if form[3] is not None} == {
        g.name for g in GATES.values() if g.kink and (g.callable or g.operator)}
