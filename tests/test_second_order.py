"""Second order on random circuits: `hessian`, `hvp` and `jvp` against SymPy, against
each other and against finite differences of the generated gradient, in both targets.

The circuits are `tests/test_differential.py`'s (`strategies.scalar_circuits`: every gate
`.circ` can write, kinks included, `gate` definitions, fan-out, one to three outputs),
with random seeds, plus random bus circuits. Per circuit and kept point (away from kinks, values finite):

- python target: `hessian()`'s `H` against `sympy.hessian` of `sum(seed * out)` (1e-9
  relative to the matrix's scale), `H[i][j]` and `H[j][i]` the same bits, every entry
  that is not 0 inside `HESSIAN_PATTERN`, and `H`'s columns against central differences
  of `backward`'s gradient; `hvp`'s `hv` against `H @ v`; `jvp`'s tangents against the
  Jacobian (rows from `backward` with one-hot seeds) times the tangent;
- numpy target on all points at once: `jvp` and `hvp` with batches of the first inputs
  and the last one shared (a scalar), whose `hv` is then summed over the batch, against
  the python target point by point, and the batch gradient's differences against `hvp`.

The run in the suite is short. For a long run:

    CIRCUITC_SECOND_ORDER_EXAMPLES=2000 python -m pytest tests/test_second_order.py
"""

from __future__ import annotations

import math
import os
import random
import struct

import numpy as np
import sympy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import load_second_order as load
from oracle import FORMS, REAL
from strategies import INPUTS, KINK_MARGIN, LARGEST, SYMBOLS, scalar_circuits

EXAMPLES = int(os.environ.get("CIRCUITC_SECOND_ORDER_EXAMPLES", "25"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def bits(x: float) -> bytes:
    return struct.pack("<d", x)


def close(a: float, b: float, scale: float, rel: float = 1e-9) -> bool:
    return abs(a - b) <= rel * max(abs(b), scale)


def scale_of(*groups) -> float:
    return max(1.0, *(abs(x) for g in groups for x in g))


def matvec(h, v) -> list[float]:
    return [math.fsum(a * b for a, b in zip(row, v, strict=True)) for row in h]


def flat_rows(h) -> list[float]:
    return [x for row in h for x in row]


# `sqrt(a**2)` of a real `a` is `Abs(a)` to SymPy, whose second derivative is a
# `DiracDelta`: 0 at the points kept, which are away from every kink.
AWAY_FROM_KINKS = {"DiracDelta": lambda *args: 0.0, **REAL}


class Oracle:
    """SymPy's value, gradient and Hessian of `sum(seed * out)` over `symbols`,
    lambdified, and the kink arguments of the circuit, to keep points away from."""

    def __init__(self, outputs, seeds, symbols, kinks=()):
        f = sum(s * e for s, e in zip(seeds, outputs, strict=True))
        self.symbols = symbols
        self.n = len(symbols)
        gradient = [sympy.diff(f, s) for s in symbols]
        hessian = sympy.hessian(f, symbols).tolist()
        self.function = sympy.lambdify(symbols, [f, gradient, hessian], [AWAY_FROM_KINKS, "math"],
                                       cse=True)
        live = [k for k in kinks if k != 0]  # a tie everywhere agrees with the formula
        self.kinks = sympy.lambdify(symbols, live, "math") if live else None

    def kink_sides(self, point) -> list[bool] | None:
        if self.kinks is None:
            return []
        try:
            values = self.kinks(*point)
        except (ArithmeticError, ValueError):
            return None
        if min(abs(k) for k in values) < KINK_MARGIN:
            return None
        return [k > 0 for k in values]

    def at(self, point):
        """(value, gradient, Hessian) at `point`, or None where it is near a kink, outside
        a domain or too large."""
        if self.kink_sides(point) is None:
            return None
        try:
            value, grads, hessian = self.function(*point)
        except (ArithmeticError, ValueError):
            return None
        numbers = [value, *grads, *flat_rows(hessian)]
        if not all(math.isfinite(x) and abs(x) < LARGEST for x in numbers):
            return None
        return value, grads, hessian


def seeds_for(draw_seed: int, count: int) -> list[float]:
    rng = random.Random(draw_seed)
    return [rng.choice([1.0, -0.5, 2.0, rng.uniform(-2, 2)]) for _ in range(count)]


def check_point(python, oracle: Oracle, point, seeds, direction, tangent, n_out):
    """Every python-target check at one point (arguments and seeds as scalars)."""
    expected = oracle.at(point)
    if expected is None:
        return False
    _, want_grads, want_h = expected
    n = oracle.n
    value, grads, h = python.hessian(*point, *seeds)
    assert len(h) == n and all(len(row) == n for row in h)
    hscale = scale_of(flat_rows(want_h))
    for i in range(n):
        for j in range(n):
            assert close(h[i][j], want_h[i][j], hscale), (i, j, h[i][j], want_h[i][j])
            assert bits(h[i][j]) == bits(h[j][i]), (i, j)
    pattern = set(python.HESSIAN_PATTERN)
    assert all(j <= k for j, k in pattern)
    for i in range(n):
        for j in range(i, n):
            if (i, j) not in pattern:
                assert h[i][j] == 0.0 and want_h[i][j] == 0.0 or abs(want_h[i][j]) <= 1e-12 * hscale
    # `hessian` and `hvp` compute the same value and gradient as `backward`.
    assert (value, tuple(grads)) == python.backward(*point, *seeds)
    hv_value, hv_grads, hv = python.hvp(*point, *direction, *seeds)
    assert (hv_value, hv_grads) == (value, grads)
    want_hv = matvec(h, direction)
    hvscale = scale_of(want_hv, [hscale * max(map(abs, direction))])
    assert all(close(a, b, hvscale, 1e-12) for a, b in zip(hv, want_hv, strict=True)), (hv, want_hv)
    # jvp: the Jacobian's rows from `backward` with one-hot seeds.
    jvp_value, tangents = python.jvp(*point, *tangent)
    tangents = tangents if n_out > 1 else (tangents,)
    assert jvp_value == python.forward(*point)
    for k in range(n_out):
        row = python.backward(*point, *(float(j == k) for j in range(n_out)))[1]
        want = math.fsum(a * b for a, b in zip(row, tangent, strict=True))
        assert close(tangents[k], want, scale_of(row) * max(map(abs, tangent)), 1e-12), (k, tangents[k], want)
    # Central differences of the generated gradient, a column per input (skipped where a
    # step would cross a kink).
    gscale = scale_of(want_grads, flat_rows(want_h))
    sides = oracle.kink_sides(point)
    for j in range(n):
        step = 1e-5 * max(1.0, abs(point[j]))
        up, down = list(point), list(point)
        up[j] += step
        down[j] -= step
        if oracle.kink_sides(up) != sides or oracle.kink_sides(down) != sides:
            continue
        try:
            g_up, g_down = python.backward(*up, *seeds)[1], python.backward(*down, *seeds)[1]
        except (ArithmeticError, ValueError):
            continue
        for i in range(n):
            numeric = (g_up[i] - g_down[i]) / (2 * step)
            assert close(numeric, h[i][j], gscale, 1e-5), (i, j, numeric, h[i][j])
    return True


@SETTINGS
@given(scalar_circuits(), st.integers(0, 2**32 - 1))
def test_random_circuits_second_order_agrees_with_sympy(circuit, seed):
    n_out = len(circuit.outputs)
    seeds = seeds_for(seed, n_out)
    symbols = list(SYMBOLS.values())
    oracle = Oracle(circuit.outputs, seeds, symbols, circuit.kinks)
    python = load(circuit.text)
    rng = np.random.default_rng(seed)
    kept = []
    for point in circuit.points.tolist()[:6]:
        direction = rng.uniform(-1, 1, len(INPUTS)).tolist()
        tangent = rng.uniform(-1, 1, len(INPUTS)).tolist()
        if check_point(python, oracle, point, seeds, direction, tangent, n_out):
            kept.append(point)
    # The numpy target: the first inputs a batch, the last one shared by every point.
    shared = circuit.points[0, -1]
    batch = [p for p in (list(q[:-1]) + [shared] for q in circuit.points.tolist())
             if oracle.at(p) is not None]
    if not batch:
        return
    check_numpy_batch(circuit.text, python, np.array(batch), seeds, rng, n_out, oracle)


def check_numpy_batch(text, python, points, seeds, rng, n_out, oracle):
    numpy_module = load(text, "numpy")
    count, n = points.shape
    columns = [points[:, i] for i in range(n - 1)] + [float(points[0, -1])]
    direction = [rng.uniform(-1, 1, count) for _ in range(n - 1)] + [float(rng.uniform(-1, 1))]
    tangent = [rng.uniform(-1, 1, count) for _ in range(n - 1)] + [float(rng.uniform(-1, 1))]
    _, grads, hv = numpy_module.hvp(*columns, *direction, *seeds)
    assert np.shape(hv[-1]) == () and isinstance(hv[-1], float)  # the shared input's: summed
    _, tangents = numpy_module.jvp(*columns, *tangent)
    tangents = tangents if n_out > 1 else (tangents,)
    want_hv = np.zeros((count, n))
    for p in range(count):
        point = points[p].tolist()
        v = [float(d[p]) for d in direction[:-1]] + [direction[-1]]
        t = [float(d[p]) for d in tangent[:-1]] + [tangent[-1]]
        want_hv[p] = python.hvp(*point, *v, *seeds)[2]
        want_t = python.jvp(*point, *t)[1]
        want_t = want_t if n_out > 1 else (want_t,)
        for k in range(n_out):
            assert math.isclose(tangents[k][p], want_t[k], rel_tol=1e-12, abs_tol=1e-12 * scale_of(want_t))
        for i in range(n - 1):
            assert math.isclose(hv[i][p], want_hv[p, i], rel_tol=1e-12,
                                abs_tol=1e-12 * scale_of(want_hv[p])), (i, p)
    total = want_hv[:, -1]
    assert math.isclose(hv[-1], total.sum(), rel_tol=1e-9, abs_tol=1e-9 * scale_of(np.abs(total)))
    # Central differences of the batch gradient along the batch's direction agree with hv.
    sides = [oracle.kink_sides(p) for p in points.tolist()]
    step = 1e-6
    moved = [[c + s * step * d for c, d in zip(columns, direction, strict=True)] for s in (1, -1)]
    for s in (0, 1):
        for p in range(count):
            point = [float(np.broadcast_to(c, (count,))[p]) for c in moved[s]]
            if oracle.kink_sides(point) != sides[p]:
                return
    g_up = numpy_module.backward(*moved[0], *seeds)[1]
    g_down = numpy_module.backward(*moved[1], *seeds)[1]
    gscale = scale_of(np.abs(np.concatenate([np.ravel(g) for g in grads])), np.abs(want_hv).ravel())
    for i in range(n):
        numeric = (np.asarray(g_up[i]) - np.asarray(g_down[i])) / (2 * step)
        assert np.allclose(numeric, hv[i], rtol=1e-5, atol=1e-5 * gscale * count), (i, numeric, hv[i])


# -- bus circuits ------------------------------------------------------------------

SMOOTH = sorted(op for op, form in FORMS.items() if form.kink is None)


@st.composite
def bus_circuits(draw):
    """A random circuit over buses `x[n]`, `W[n, n]` and a scalar `s`: elementwise gates,
    a matrix-vector product, a scalar output summing a bus and the last bus as an output
    too (its seed a sequence). Returns the text, the outputs' SymPy elements, the input
    elements' symbols in `WRT` order, and the sizes."""
    n = draw(st.integers(1, 2))
    x = [sympy.Symbol(f"x{i}", real=True) for i in range(n)]
    w = [[sympy.Symbol(f"W{i}{j}", real=True) for j in range(n)] for i in range(n)]
    s = sympy.Symbol("s", real=True)
    buses = {"x": x}
    lines = [f"size n = {n}", "input x[n], W[n, n], s"]
    for k in range(draw(st.integers(1, 3))):  # SymPy's Hessian grows fast with depth
        name = f"b{k}"
        if draw(st.booleans()):
            arg = draw(st.sampled_from(sorted(buses)))
            lines.append(f"{name}[i] = sum(W[i, j] * {arg}[j] for j)")
            buses[name] = [sum(w[i][j] * buses[arg][j] for j in range(n)) for i in range(n)]
            continue
        op = draw(st.sampled_from(SMOOTH))
        form = FORMS[op]
        arity, template, build = form.arity, form.safe, form.build
        args = [draw(st.sampled_from([*sorted(buses), "s"])) for _ in range(arity)]
        if all(a == "s" for a in args):  # a bus reads at least one bus
            args[0] = draw(st.sampled_from(sorted(buses)))
        lines.append(f"{name}[i] = " + template.format(*(a if a == "s" else f"{a}[i]" for a in args)))
        buses[name] = [build(*(s if a == "s" else buses[a][i] for a in args)) for i in range(n)]
    last = f"b{k}"
    lines.append(f"f = sum({last}[i] * {last}[i] * s for i)")
    lines.append(f"output f, {last}")
    f = sum(e * e * s for e in buses[last])
    symbols = [*x, *(v for row in w for v in row), s]
    return "\n".join(lines) + "\n", [f, *buses[last]], symbols, n


@settings(SETTINGS, max_examples=max(1, EXAMPLES // 2))
@given(bus_circuits(), st.integers(0, 2**32 - 1))
def test_random_bus_circuits_second_order_agrees_with_sympy(case, seed):
    text, outputs, symbols, n = case
    rng = np.random.default_rng(seed)
    seed_f, seed_bus = seeds_for(seed, 1)[0], rng.uniform(-2, 2, n).tolist()
    oracle = Oracle(outputs, [seed_f, *seed_bus], symbols)
    python = load(text)
    assert python.WRT == ("x", "W", "s")
    for _ in range(3):
        point = rng.uniform(-1.5, 1.5, len(symbols)).tolist()
        expected = oracle.at(point)
        if expected is None:
            continue
        _, want_grads, want_h = expected
        x, w, s = point[:n], [point[n + i * n:n + i * n + n] for i in range(n)], point[-1]
        _, grads, h = python.hessian(x, w, s, seed_f, seed_bus)
        flat_grads = [*grads[0], *(g for row in grads[1] for g in row), grads[2]]
        gscale = scale_of(want_grads)
        assert all(close(a, b, gscale) for a, b in zip(flat_grads, want_grads, strict=True))
        hscale = scale_of(flat_rows(want_h))
        pattern = set(python.HESSIAN_PATTERN)
        for i, row in enumerate(h):
            for j, entry in enumerate(row):
                assert close(entry, want_h[i][j], hscale), (text, i, j, entry, want_h[i][j])
                assert bits(entry) == bits(h[j][i])
                if entry != 0.0:
                    assert (min(i, j), max(i, j)) in pattern
        v = rng.uniform(-1, 1, len(symbols)).tolist()
        vx, vw, vs = v[:n], np.array(v[n:-1]).reshape(n, n), v[-1]
        _, _, hv = python.hvp(x, w, s, vx, vw, vs, seed_f, seed_bus)
        flat_hv = [*hv[0], *(g for row in hv[1] for g in row), hv[2]]
        want = matvec(h, v)
        assert all(close(a, b, scale_of(want, [hscale]), 1e-12) for a, b in zip(flat_hv, want, strict=True))
        # jvp of the bus output against rows of the Jacobian from `backward`.
        t = rng.uniform(-1, 1, len(symbols)).tolist()
        _, (t_f, t_bus) = python.jvp(x, w, s, t[:n], np.array(t[n:-1]).reshape(n, n), t[-1])
        for k, got in enumerate([t_f, *t_bus]):
            seeds = [float(k == 0), [float(k == i + 1) for i in range(n)]]
            g = python.backward(x, w, s, *seeds)[1]
            row = [*g[0], *(e for r in g[1] for e in r), g[2]]
            assert close(got, math.fsum(a * b for a, b in zip(row, t)), scale_of(row), 1e-12)


def test_the_oracle_sees_a_hessian_the_gradient_alone_would_not():
    """A sanity check of the checks: a wrong Hessian entry is caught."""
    python = load("input x, y\nf = x * x * y\n")
    _, _, h = python.hessian(1.5, -2.0)
    assert h == ((-4.0, 3.0), (3.0, 0.0))
    assert python.HESSIAN_PATTERN == ((0, 0), (0, 1))
