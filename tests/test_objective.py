"""`circuitc.objective` over a data set (`data=`), and `circuitc.gradients` by name.

A logistic regression's loss is written for one point; the objective over a data set is
its mean over the points, from one call of the numpy-target module a step. Its value,
gradient and Hessian-vector products are checked against the same loss written by hand in
NumPy, and minimizing it with SciPy reaches the hand-written objective's minimum.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import minimize

import circuitc
from circuitc.api import load_source

LOGISTIC = """\
size d = 5
input x[d], y                          # a point and its label, 0 or 1
input w[d] = 0, b = 0, alpha = 0.01    # the weights, the bias and the L2 weight
z = sum(w[i] * x[i] for i) + b
loss = softplus(z) - y * z + alpha / 2 * sum(w[i] * w[i] for i)
"""


def _data(n: int = 200, seed: int = 3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    y = (X @ np.array([1.0, -2.0, 0.5, 0.0, 1.5]) + 0.3 + rng.normal(size=n) > 0).astype(float)
    return X, y


def _by_hand(X, y, alpha=0.01):
    """The mean loss, its gradient and its Hessian over (w, b), in NumPy."""
    def parts(v):
        w, b = v[:-1], v[-1]
        z = X @ w + b
        p = 1 / (1 + np.exp(-z))
        loss = np.mean(np.logaddexp(0, z) - y * z) + alpha / 2 * w @ w
        grad = np.append(X.T @ (p - y) / len(y) + alpha * w, np.mean(p - y))
        Z = np.hstack([X, np.ones((len(y), 1))])
        hess = Z.T @ (Z * (p * (1 - p))[:, None]) / len(y) + alpha * np.diag([1.0] * 5 + [0.0])
        return loss, grad, hess
    return parts


def test_the_objective_over_a_data_set_is_the_mean_over_its_points():
    X, y = _data()
    module = load_source(LOGISTIC, "logistic.circ", "numpy", hessian=True, fix=["x", "y", "alpha"])
    problem = circuitc.objective(module, data={"x": X, "y": y}, hessian="hvp")
    hand = _by_hand(X, y)
    v = np.linspace(-0.5, 0.5, 6)
    loss, grad, hess = hand(v)
    assert problem["fun"](v) == pytest.approx(loss, rel=1e-13)
    np.testing.assert_allclose(problem["jac"](v), grad, rtol=1e-12, atol=1e-15)
    p = np.cos(np.arange(6.0))
    np.testing.assert_allclose(problem["hessp"](v, p), hess @ p, rtol=1e-12, atol=1e-15)
    result = minimize(**problem, method="Newton-CG", options={"xtol": 1e-12})
    want = minimize(lambda u: hand(u)[0], np.zeros(6), jac=lambda u: hand(u)[1],
                    method="BFGS", options={"gtol": 1e-12})
    # Two minimizers stop within their tolerances of the one minimum, where the
    # gradient vanishes.
    assert np.linalg.norm(hand(result.x)[1]) < 1e-7
    np.testing.assert_allclose(result.x, want.x, atol=1e-5)
    summed = circuitc.objective(module, data={"x": X, "y": y}, over="sum")
    assert summed["fun"](v) == pytest.approx(len(y) * loss, rel=1e-13)


def test_a_float32_module_gives_scipy_float64():
    # SciPy works in float64: the float32 module's value and derivatives come back as
    # float64, its data set is kept as float32 (converted once), and L-BFGS reaches the
    # minimum to float32's precision.
    X, y = _data()
    module = load_source(LOGISTIC, "logistic.circ", "numpy", hessian=True,
                         fix=["x", "y", "alpha"], dtype="float32")
    problem = circuitc.objective(module, data={"x": X, "y": y}, hessian="hvp")
    hand = _by_hand(X, y)
    v = np.linspace(-0.5, 0.5, 6)
    loss, grad, hess = hand(v)
    assert type(problem["fun"](v)) is float and problem["fun"](v) == pytest.approx(loss, rel=1e-5)
    jac, hv = problem["jac"](v), problem["hessp"](v, np.ones(6))
    assert jac.dtype == hv.dtype == np.float64
    np.testing.assert_allclose(jac, grad, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(hv, hess @ np.ones(6), rtol=1e-4, atol=1e-6)
    result = minimize(**{k: problem[k] for k in ("fun", "x0", "jac")}, method="L-BFGS-B")
    assert np.linalg.norm(hand(result.x)[1]) < 1e-4


def test_data_that_does_not_fit_says_so():
    X, y = _data()
    module = load_source(LOGISTIC, "logistic.circ", "numpy", fix=["x", "y", "alpha"])
    with pytest.raises(ValueError, match=r"data for 'x' has shape \(200, 4\)"):
        circuitc.objective(module, data={"x": X[:, :4], "y": y})
    with pytest.raises(ValueError, match="different numbers of points: x 200, y 199"):
        circuitc.objective(module, data={"x": X, "y": y[:-1]})
    with pytest.raises(ValueError, match="over must be 'mean' or 'sum'"):
        circuitc.objective(module, data={"x": X, "y": y}, over="max")
    python = load_source(LOGISTIC, "logistic.circ", "python", fix=["x", "y", "alpha"])
    with pytest.raises(ValueError, match="numpy target"):
        circuitc.objective(python, data={"x": X, "y": y})


@pytest.mark.parametrize("target", ["python", "numpy"])
def test_gradients_by_name(target):
    module = load_source(LOGISTIC, "logistic.circ", target)
    x = [0.5, -1.0, 2.0, 0.0, 1.0]
    got = circuitc.gradients(module, x=x, y=1.0, w=[0.1] * 5, b=0.2)
    assert list(got) == ["x", "y", "w", "b", "alpha"]
    _, grads = module.backward(x, 1.0, [0.1] * 5, 0.2, 0.01)
    for name, g in zip(module.WRT, grads):
        np.testing.assert_array_equal(np.asarray(got[name]), np.asarray(g))
    with pytest.raises(ValueError, match="no value for input x"):
        circuitc.gradients(module)
    with pytest.raises(ValueError, match="no output named 'f'"):
        circuitc.gradients(module, "f", x=x, y=1.0)


def _run_example(name: str) -> dict:
    """Run examples/`name`.py as a user does, then import it and return its `main()`."""
    script = Path(__file__).resolve().parent.parent / "examples" / f"{name}.py"
    result = subprocess.run([sys.executable, script], capture_output=True, text=True,
                            check=False, timeout=300)
    assert result.returncode == 0, result.stderr
    spec = importlib.util.spec_from_file_location(f"{name}_example", script)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    return example.main()


def test_the_logistic_regression_example_reaches_scikit_learns_model():
    got = _run_example("logistic_regression")
    assert got["ours"] == got["theirs"] > 0.98
    assert got["gap"] < 1e-6


def test_the_convolution_example_learns_the_least_squares_filter():
    got = _run_example("conv1d")
    assert got["gap"] < 1e-8
    np.testing.assert_allclose(got["ours"], [0.25, -1.0, 1.5, -1.0, 0.25, 0.1], atol=0.01)
