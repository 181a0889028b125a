"""Comparisons and `where(c, a, b)`: the branch not taken is not computed, forward or
backward, first or second order, in both targets, scalar and bus (written out, whole-bus
NumPy code and the python target's loops), at the boundary too; `verify` treats the
boundary as a kink and catches a wrong `where` rule."""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pytest

import circuitc
from circuitc import gates
from circuitc.api import LOOPS_FROM
from circuitc.graph import run
from circuitc.verify import verify_circuit
from conftest import CIRCUITS, load_second_order, load_source, run_cli

# log(x) where x > 0, 1/(x - 1) where x > 1: each branch outside its domain where not taken.
MASKED = "input x\nf = where(x > 0, log(x), 0) + where(x > 1, 1 / (x - 1), -x)\n"
POINTS = [-1.0, 0.0, 1.0, 2.0, 0.5]  # 0 and 1: the boundaries themselves


def _masked(x: float) -> tuple[float, float, float]:
    """f, f' and f'' of `MASKED`, by hand."""
    f = (math.log(x) if x > 0 else 0.0) + (1 / (x - 1) if x > 1 else -x)
    d = (1 / x if x > 0 else 0.0) + (-1 / (x - 1) ** 2 if x > 1 else -1.0)
    dd = (-1 / x**2 if x > 0 else 0.0) + (2 / (x - 1) ** 3 if x > 1 else 0.0)
    return f, d, dd


@pytest.fixture
def strict():
    """Every NumPy warning an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def test_the_python_target_computes_no_branch_not_taken():
    module = load_second_order(MASKED)
    for x in POINTS:
        f, d, dd = _masked(x)
        assert module.forward(x) == f
        assert module.backward(x) == (f, (pytest.approx(d, rel=1e-15),))
        assert module.hessian(x)[2] == ((pytest.approx(dd, rel=1e-14),),)
        assert module.hvp(x, 2.0)[2] == (pytest.approx(2 * dd, rel=1e-14),)
        assert module.jvp(x, 2.0)[1] == pytest.approx(2 * d, rel=1e-15)


def test_the_numpy_target_masks_the_branch_not_taken(strict):
    module = load_second_order(MASKED, "numpy")
    xs = np.array(POINTS)
    value, (grad,) = module.backward(xs)
    _, _, (hv,) = module.hvp(xs, np.full(len(POINTS), 2.0))
    _, tangent = module.jvp(xs, 2.0)
    for k, x in enumerate(POINTS):
        f, d, dd = _masked(x)
        assert value[k] == pytest.approx(f, rel=1e-15)
        assert grad[k] == pytest.approx(d, rel=1e-15)
        assert hv[k] == pytest.approx(2 * dd, rel=1e-14)
        assert tangent[k] == pytest.approx(2 * d, rel=1e-15)
        assert module.backward(x) == (pytest.approx(f, rel=1e-15), (pytest.approx(d, rel=1e-15),))
    for array in (value, grad, hv, tangent):
        assert not np.isnan(array).any()


@pytest.mark.parametrize("target", ["python", "numpy"])
def test_an_input_read_only_in_a_branch_gets_its_gradient_lazily(strict, target):
    # x is needed only where c > 0, but its gradient everywhere: 1/x must be masked
    # where it is summed into the gradient, not computed at c <= 0.
    module = load_second_order("input x, c\nf = where(c > 0, log(x), 0)\n", target)
    for x, c, want in ((0.0, -1.0, (0.0, (0.0, 0.0))), (-1.0, 0.0, (0.0, (0.0, 0.0))),
                       (2.0, 1.0, (math.log(2.0), (0.5, 0.0)))):
        assert module.backward(x, c) == want
        assert module.hvp(x, c, 1.0, 1.0)[2] == ((-0.25, 0.0) if c > 0 else (0.0, 0.0))


def test_a_domain_error_in_the_branch_taken_still_raises_in_the_python_target():
    module = load_source("input x\nf = where(x < 1, log(x), 0)\n", "w.circ")
    with pytest.raises(ValueError, match=r"w.circ:2:18: in 'log'"):
        module.forward(-1.0)
    with pytest.raises(ValueError, match=r"w.circ:2:18: in 'log'"):
        module.backward(-1.0)


def test_the_python_target_writes_the_branch_in_an_if_block():
    source = circuitc.compile_source("input x\nf = where(x > 0, log(x), 0)\n")
    assert "        if t1:\n            t2 = math.log(x)  # line 2\n" in source
    assert "f = t2 if t1 else 0.0" in source
    numpy = circuitc.compile_source("input x\nf = where(x > 0, log(x), 0)\n", target="numpy")
    assert 'with np.errstate(all="ignore"):\n                t2 = np.log(x)' in numpy
    assert "f = np.where(t1, t2, 0.0)" in numpy


def test_a_drawing_shows_no_value_where_a_branch_is_not_taken():
    from circuitc.draw.drawing import with_values
    text = "input x = -1\nf = where(x > 0, 2 * log(x), 0)\n"
    graph = circuitc.compile_graphs(text, "d.circ")[0]
    drawn = with_values(graph, {"x": -1.0})
    logs = [i for i, node in enumerate(graph.nodes) if node.op == "log"]
    assert [drawn.values[i] for i in logs] == [None]
    assert drawn.values[graph.outputs[0][1]] == 0.0 and drawn.grads[0] == 0.0


def test_a_wire_named_float_beside_a_comparison():
    module = load_source("input float = 2\nf = float < 3\n")
    assert module.forward(2.0) == 1.0 and module.forward(4.0) == 0.0


def test_the_graph_is_run_lazily():
    _, backward = circuitc.api.graphs(circuitc.front.read(MASKED, "m.circ"))
    for x in POINTS:
        f, d, _ = _masked(x)
        values = run(backward, {"x": x})
        assert values[backward.outputs[0][1]] == f
        assert values[backward.grads[0][1]] == pytest.approx(d, rel=1e-15)


def test_nested_where_and_a_branch_shared_with_its_condition():
    text = ("input x, y\n"
            "u = log(x)\n"
            "f = where(x > 0, where(u > 0, sqrt(u) * y, -u), where(y > 0, log(y), x))\n")
    module = load_second_order(text)
    batch = load_second_order(text, "numpy")

    def expected(x, y):
        if x > 0:
            u = math.log(x)
            return (math.sqrt(u) * y, (y / (2 * math.sqrt(u) * x), math.sqrt(u))) if u > 0 else (
                -u, (-1 / x, 0.0))
        return (math.log(y), (0.0, 1 / y)) if y > 0 else (x, (1.0, 0.0))
    points = [(-1.0, -2.0), (-1.0, 2.0), (0.0, 0.0), (0.5, 1.0), (1.0, 3.0), (3.0, 2.0)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        values, grads = batch.backward(*(np.array(c) for c in zip(*points)))
    for k, (x, y) in enumerate(points):
        f, g = expected(x, y)
        assert module.backward(x, y) == (f, pytest.approx(g, rel=1e-15))
        assert (values[k], grads[0][k], grads[1][k]) == pytest.approx((f, *g), rel=1e-15)
        module.hessian(x, y)  # raises nothing


BUS = ("size n = {n}\ninput x[n]\n"
       "y[i] = where(x[i] > 0, log(x[i]), 0)\n"
       "s = sum(where(x[i] >= 1, sqrt(x[i] - 1) * x[i], 2 * x[i]) for i)\n"
       "output y, s\n")


def _bus_expected(xs):
    y = [math.log(x) if x > 0 else 0.0 for x in xs]
    dy = [1 / x if x > 0 else 0.0 for x in xs]  # seeds 1: d(sum y + s)/dx
    s = math.fsum(math.sqrt(x - 1) * x if x >= 1 else 2 * x for x in xs)
    ds = [math.sqrt(x - 1) + x / (2 * math.sqrt(x - 1)) if x > 1 else 2.0 if x < 1 else math.inf
          for x in xs]
    return y, s, [a + b for a, b in zip(dy, ds)]


@pytest.mark.parametrize(("target", "n", "elements"), [
    ("numpy", 6, False),  # whole-bus NumPy code
    ("numpy", 6, True),  # written out
    ("python", 6, False),  # written out: small
    ("python", LOOPS_FROM + 4, False),  # loops
])
def test_a_bus_computes_no_branch_not_taken(strict, target, n, elements):
    text = BUS.format(n=n)
    source = circuitc.compile_source(text, "b.circ", target, elements=elements)
    assert ("x_0" not in source) == (n > 6 or (target == "numpy" and not elements))
    module = load_second_order(text, target, elements=elements)
    xs = ([-1.0, 0.0, 0.5, 2.0, 5.0, -3.0] * n)[:n]  # x = 1 would be sqrt's own kink
    (y, s), (grad,) = module.backward(xs)
    want_y, want_s, want_grad = _bus_expected(xs)
    assert list(y) == pytest.approx(want_y, rel=1e-15)
    assert s == pytest.approx(want_s, rel=1e-14)
    assert list(grad) == pytest.approx(want_grad, rel=1e-14)
    _, _, (hv,) = module.hvp(xs, [1.0] * n)
    assert all(math.isfinite(h) for h in hv)


def test_a_bus_batch_in_numpy_has_no_nan(strict):
    module = load_second_order(BUS.format(n=4), "numpy")
    xs = np.array([[-1.0, 0.0, 0.5, 2.0], [3.0, -2.0, 0.0, 1.5]])
    (y, s), (grad,) = module.backward(xs)
    for row, x in enumerate(xs):
        want_y, want_s, want_grad = _bus_expected(list(x))
        assert list(y[row]) == pytest.approx(want_y, rel=1e-15)
        assert s[row] == pytest.approx(want_s, rel=1e-14)
        assert list(grad[row]) == pytest.approx(want_grad, rel=1e-14)
    assert not np.isnan(grad).any() and not np.isnan(y).any()


@pytest.mark.parametrize("text", [
    "f = where(a > 0, sum(log(x[i]) for i), 0)\n",  # a reduction in a branch
    "h[i] = log(x[i])\ny[i] = where(x[i] > 0, h[i], 0)\nf = sum(y[i] for i)\n",  # a bus
    "gate pick(c, u) = where(c, u, 0)\nf = pick(a > 0, sum(log(x[i]) for i))\n",
])
@pytest.mark.parametrize(("target", "n"), [("numpy", 3), ("python", LOOPS_FROM + 1)])
def test_a_branch_that_reads_a_stage_is_written_out(strict, text, target, n):
    """Whole-bus code would compute the stage whether the branch is taken or not."""
    text = f"size n = {n}\ninput x[n], a = -1\n{text}output f\n"
    assert "x_0" in circuitc.compile_source(text, "s.circ", target)
    module = load_second_order(text, target)
    xs = ([-1.0, 0.0, 2.0] * n)[:n]
    value, grads = module.backward(xs, -1.0)
    assert math.isfinite(value) and all(math.isfinite(g) for g in [*grads[0], grads[1]])


def test_the_hessian_pattern_of_whole_bus_code_with_where_is_the_written_out_one():
    # The sparsity pattern once read where's masking 0 as a term of its own (a KeyError).
    text = "size n = 2\ninput x[n], a\nh[j] = where(a < 0, a, x[0]) * x[j]\noutput h\n"
    whole = load_second_order(text, "numpy")
    written = load_second_order(text, "python", elements=True)
    assert "x_0" in circuitc.compile_source(text, "h.circ", "python", elements=True)
    assert tuple(map(tuple, whole.HESSIAN_PATTERN)) == written.HESSIAN_PATTERN


# -- comparisons --------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["python", "numpy"])
def test_comparisons_give_one_or_zero_and_bind_looser_than_sums(target):
    text = ("input a, b\nlt = a < b\nle = a <= b\ngt = a > b\nge = a >= b\neq = a == b\n"
            "ne = a != b\nloose = a + 1 > b * 2\noutput lt, le, gt, ge, eq, ne, loose\n")
    module = load_source(text, target=target)
    for a, b in ((1.0, 2.0), (2.0, 2.0), (3.0, 2.0), (math.nan, 1.0)):
        got = [float(v) for v in module.forward(a, b)]
        want = [float(a < b), float(a <= b), float(a > b), float(a >= b), float(a == b),
                float(a != b), float(a + 1 > b * 2)]
        assert got == want
        _, grads = module.backward(a, b)
        assert [float(g) for g in grads] == [0.0, 0.0]


def test_a_comparison_prints_back_as_it_parses():
    from circuitc.parse import parse
    from circuitc.unparse import expression_text
    for text in ("a < b", "(a < b) < c", "a + 1 >= b * 2", "where(a != b, a, -b) == c",
                 "(a == b) * (b <= c)"):
        expr = parse(f"f = {text}\n")[0].expr
        assert expression_text(expr) == text
        assert parse(f"f = {expression_text(expr)}\n")[0].expr == expr


# -- verify: the boundary is a kink, a wrong rule fails --------------------------------------


def test_verify_passes_on_hubers_loss_and_skips_its_boundary():
    huber = CIRCUITS / "huber.circ"
    result = run_cli("verify", huber, "--points", "8", "--seed", "4")
    assert result.returncode == 0, result.stdout
    at_boundary = run_cli("verify", huber, "r=1", "delta=1")
    assert at_boundary.returncode == 0, at_boundary.stdout
    assert "skipped: at the kink of" in at_boundary.stdout
    assert "OK: " in at_boundary.stdout.splitlines()[-1]


def test_verify_skips_the_boundary_of_a_masked_log():
    result = run_cli("verify", CIRCUITS / "masked_log.circ", "x=0")
    assert result.returncode == 0, result.stdout
    assert f"skipped: at the kink of 'where' ({CIRCUITS / 'masked_log.circ'}:3:5)" in result.stdout


def test_verify_fails_on_a_wrong_where_rule(monkeypatch):
    # The adjoint goes to the branch not taken.
    monkeypatch.setitem(gates.GATES, "where", dataclasses.replace(
        gates.GATES["where"], derivative=lambda b, g, y, c, x1, x2: (
            None, b.where(c, b.const(0.0), g), b.where(c, g, b.const(0.0)))))
    text = (CIRCUITS / "huber.circ").read_text()
    graph = circuitc.compile_graphs(text, "huber.circ")[0]
    report = verify_circuit(load_source(text), graph)
    assert not report.ok
    assert {c.input: c.verdict for c in report.points[0].checks} == {"r": "fail", "delta": "fail"}
