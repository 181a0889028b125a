"""Second derivatives gate by gate: every gate `.circ` can write, alone on its inputs,
has the Hessian SymPy gives (python target) and an `hvp` that agrees between the
targets and with differences of the generated gradient; kinked gates have a second
derivative of 0 away from their kinks, known at compile time; and the gradient-only
gates (`_step`, `_sign`, `_share`) inside a gradient differentiate as the piecewise
constants they are, ties included."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy

from circuitc.gates import GATES
from conftest import load_second_order as load
from oracle import GATES as GATES_ORACLE

X, Y = sympy.symbols("x y", real=True)
# Points inside every gate's domain (positive, for `log`, `sqrt`, `x ** y`), x != y.
POINTS = [(0.3, 1.7), (1.1, 0.6), (0.8, 1.3)]
NEGATIVE = [(-0.7, 0.4), (-1.2, -0.5), (0.9, -1.4)]

# gate -> (.circ text of f over inputs x, y; SymPy's f): each smooth gate written bare, on
# inputs (`tests/oracle.py`).
SMOOTH = {name: (form.bare.format("x", "y"), form.sympy(*[X, Y][:form.arity]))
          for name, form in GATES_ORACLE.items() if form.kink is None}
# The same gates in the forms the compiler rewrites or treats apart: constant exponents
# (`x**2 -> x*x`, no `ln` part), a constant base, a gate of a gate, fan-out.
MORE = {
    "square": ("x ** 2", X**2),
    "cube": ("pow(x, 3)", X**3),
    "inverse": ("x ** -1", 1 / X),
    "root": ("x ** 0.5", sympy.sqrt(X)),
    "constant base": ("2 ** (x * y)", 2 ** (X * Y)),
    "nested": ("tanh(sigmoid(x * y) / y)", sympy.tanh(1 / (1 + sympy.exp(-X * Y)) / Y)),
    "fan-out": ("exp(x) * sin(x * y) + log(x) / y", sympy.exp(X) * sympy.sin(X * Y) + sympy.log(X) / Y),
}
KINKED = {**{name: form.bare.format("x", "y", "x - y") for name, form in GATES_ORACLE.items()
             if form.kink},
          # max(2y, x + y, 2x) and its min: a reduction's steps, which only reductions write
          "max reduction": "max(x * i + y * (2 - i) for i in range(3))",
          "min reduction": "min(x * i + y * (2 - i) for i in range(3))"}
REDUCTION_STEPS = {"max reduction": ("max_step", "max_last"), "min reduction": ("min_step", "min_last")}


def test_every_gate_circ_can_write_is_here():
    writable = {g.name for g in GATES.values() if g.callable or g.operator}
    assert writable == set(SMOOTH) | (set(KINKED) - set(REDUCTION_STEPS))
    assert {gate for name in KINKED for gate in REDUCTION_STEPS.get(name, (name,))} == {
        g.name for g in GATES.values() if g.kink}


def _circuit(text: str) -> str:
    return f"input x, y\nf = {text}\n"


@pytest.mark.parametrize("name", [*SMOOTH, *MORE])
def test_hessian_of_each_gate_agrees_with_sympy(name):
    text, f = {**SMOOTH, **MORE}[name]
    module = load(_circuit(text))
    want = sympy.lambdify([X, Y], sympy.hessian(f, [X, Y]).tolist(), "math")
    for point in POINTS:
        for seed in (1.0, -2.5):
            _, _, h = module.hessian(*point, seed)
            expected = [[seed * e for e in row] for row in want(*point)]
            scale = max(1.0, *(abs(e) for row in expected for e in row))
            for i in range(2):
                for j in range(2):
                    assert abs(h[i][j] - expected[i][j]) <= 1e-12 * scale, (point, i, j, h, expected)
            assert h[0][1] == h[1][0]
    # Entries that SymPy's derivative makes 0 outright are never computed.
    zero = {(i, j) for i in range(2) for j in range(i, 2) if sympy.diff(f, [X, Y][i], [X, Y][j]) == 0}
    assert not zero & set(module.HESSIAN_PATTERN), module.HESSIAN_PATTERN


@pytest.mark.parametrize("name", [*SMOOTH, *MORE, *KINKED])
def test_hvp_of_each_gate_agrees_between_targets_and_with_differences(name):
    text = KINKED[name] if name in KINKED else {**SMOOTH, **MORE}[name][0]
    python, batch = load(_circuit(text)), load(_circuit(text), "numpy")
    points = POINTS + (NEGATIVE if name in KINKED else [])
    xs, ys = (np.array(c) for c in zip(*points))
    vx, vy = np.linspace(-1, 1, len(points)), np.linspace(0.5, -0.3, len(points))
    _, grads, hv = batch.hvp(xs, ys, vx, vy, 1.5)
    step = 1e-6
    g_up = batch.backward(xs + step * vx, ys + step * vy, 1.5)[1]
    g_down = batch.backward(xs - step * vx, ys - step * vy, 1.5)[1]
    for p, point in enumerate(points):
        want = python.hvp(*point, vx[p], vy[p], 1.5)
        assert [grads[0][p], grads[1][p]] == pytest.approx(want[1], rel=1e-14, abs=1e-15)
        assert [hv[0][p], hv[1][p]] == pytest.approx(want[2], rel=1e-13, abs=1e-14)
        for i in range(2):
            numeric = (g_up[i][p] - g_down[i][p]) / (2 * step)
            assert numeric == pytest.approx(hv[i][p], rel=1e-5, abs=1e-6 * max(1.0, abs(grads[i][p])))


@pytest.mark.parametrize("name", KINKED)
def test_kinked_gates_have_no_second_derivative(name):
    """relu, abs, max and min are piecewise linear: their Hessian is 0 away from the kink,
    and known to be at compile time (an empty pattern), in both targets."""
    module = load(_circuit(KINKED[name]))
    assert module.HESSIAN_PATTERN == ()
    for point in POINTS + NEGATIVE + [(0.0, 0.0), (1.0, 1.0)]:
        h = module.hessian(*point)[2]
        assert h == ((0.0, 0.0), (0.0, 0.0))
        assert module.hvp(*point, 0.3, -0.7)[2] == (0.0, 0.0)
    batch = load(_circuit(KINKED[name]), "numpy")
    hv = batch.hvp(np.array([-1.0, 0.0, 2.0]), np.array([0.5, 0.0, 2.0]), 1.0, 1.0)[2]
    assert all(np.all(np.asarray(h) == 0.0) for h in hv)


# f -> [(x, y, its Hessian there)]: the gradient-only gates inside the gradient.
THROUGH_GRADIENT = {
    # f = x*relu(x): f' = relu(x) + x*step(x), f'' = 2*step(x)
    "relu(x) * x": [(1.5, 0.0, ((2.0, 0.0), (0.0, 0.0))), (-1.5, 0.0, ((0.0, 0.0), (0.0, 0.0)))],
    # f = abs(x)*y: H = [[0, sign x], [sign x, 0]], and sign 0 is 0
    "abs(x) * y": [(2.0, 3.0, ((0.0, 1.0), (1.0, 0.0))), (-2.0, 3.0, ((0.0, -1.0), (-1.0, 0.0))),
                   (0.0, 3.0, ((0.0, 0.0), (0.0, 0.0)))],
    # f = max(x, y)*x: x*x where x > y, x*y where x < y; at a tie each side gets half
    "max(x, y) * x": [(2.0, 1.0, ((2.0, 0.0), (0.0, 0.0))), (1.0, 2.0, ((0.0, 1.0), (1.0, 0.0))),
                      (1.0, 1.0, ((1.0, 0.5), (0.5, 0.0)))],
    # f = min(x, y)*y: y*y where y < x, x*y where y > x
    "min(x, y) * y": [(2.0, 1.0, ((0.0, 0.0), (0.0, 2.0))), (1.0, 2.0, ((0.0, 1.0), (1.0, 0.0))),
                      (1.0, 1.0, ((0.0, 0.5), (0.5, 1.0)))],
    # f = relu(x)**2 / 2: f' = relu(x), f'' = step(x)
    "relu(x) ** 2 / 2": [(0.5, 0.0, ((1.0, 0.0), (0.0, 0.0))), (-0.5, 0.0, ((0.0, 0.0), (0.0, 0.0)))],
    # f = abs(x*y): H = sign(xy) [[0, 1], [1, 0]]
    "abs(x * y)": [(1.0, -2.0, ((0.0, -1.0), (-1.0, 0.0)))],
}


@pytest.mark.parametrize("text", THROUGH_GRADIENT)
def test_gradient_only_gates_differentiate_as_piecewise_constants(text):
    python, batch = load(_circuit(text)), load(_circuit(text), "numpy")
    for x, y, want in THROUGH_GRADIENT[text]:
        assert python.hessian(x, y)[2] == want, (x, y)
        for v in ((1.0, 0.0), (0.0, 1.0), (0.25, -2.0)):
            hv = tuple(math.fsum(a * b for a, b in zip(row, v)) for row in want)
            assert python.hvp(x, y, *v)[2] == hv
            assert batch.hvp(np.array([x, x]), np.array([y, y]), *v)[2][0].tolist() == [hv[0]] * 2
