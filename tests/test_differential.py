"""Differential testing: random circuits against SymPy and against numerical gradients, in both targets.

`tests/test_sympy_oracle.py` covers the smooth gates at one point per circuit. Here the
circuits (`strategies.scalar_circuits`) use every gate `.circ` can write, kinks included,
`gate` definitions (called with wires, so their bodies are inlined at several places),
fan-out and several outputs, and each is checked at many points:

- the python target, point by point, against SymPy's values and symbolic gradients
  (lambdified), and against central differences;
- the numpy target on all points at once (one batch), against the same SymPy numbers.

`relu`, `abs`, `max` and `min` have SymPy formulas without Piecewise or Heaviside
(`tests/oracle.py`: `abs(a) = sqrt(a**2)`, `max(a, b) = (a + b + sqrt((a-b)**2))/2`), which
are exact away from their kinks; points closer than `KINK_MARGIN` to a kink of any gate in the circuit
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

import circuitc
from circuitc.gates import CALLABLE, GATES
from oracle import FORMS, REAL
from strategies import INPUTS, KINK_MARGIN, LARGEST, SYMBOLS, ScalarCircuit, scalar_circuits

EXAMPLES = int(os.environ.get("CIRCUITC_DIFFERENTIAL_EXAMPLES", "100"))


def _lambdified(exprs):
    return sympy.lambdify(list(SYMBOLS.values()), exprs, modules=[REAL, "math"])


def _expected(circuit: ScalarCircuit):
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
@given(scalar_circuits())
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
    assert {name for name, form in FORMS.items() if form.kink is not None} == {
        g.name for g in GATES.values() if g.kink and (g.callable or g.operator)}
