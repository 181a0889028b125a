"""A `max` or `min` reduction is one n-ary operation: at a tie it splits its gradient
equally among the terms equal to its result, in every form a circuit compiles to (written
out, whole-bus NumPy code, Python loops), as `jnp.max` and PyTorch's `amax` do. The
two-argument gates keep their own rule (half each), and `logsumexp`, which is smooth,
has the softmax for its gradient at ties too.

The rule is checked as stated, `d/dt_k = g * [t_k == m] / #{j: t_j == m}`, on terms
drawn from a few values so that ties are common; and against JAX where it is installed.
"""

from __future__ import annotations

import math
import types

import numpy as np
import pytest

import circuitc
from circuitc import api

# Every form of a bus circuit: (target, options), the python target's loops forced.
FORMS = [("python", {}), ("python", {"elements": True}), ("numpy", {}),
         ("numpy", {"elements": True})]


def _load(text: str, target: str, **options) -> types.ModuleType:
    saved, api.LOOPS_FROM = api.LOOPS_FROM, 0  # loops at any size, for the python target
    try:
        source = circuitc.compile_source(text, "t.circ", target, **options)
    finally:
        api.LOOPS_FROM = saved
    module = types.ModuleType("circuit")
    exec(compile(source, "t.py", "exec"), module.__dict__)  # noqa: S102
    return module


def _rule(terms: np.ndarray, larger: bool) -> np.ndarray:
    """d(max or min over the last axis)/d(each term), as the rule says."""
    m = terms.max(axis=-1, keepdims=True) if larger else terms.min(axis=-1, keepdims=True)
    tied = terms == m
    return tied / tied.sum(axis=-1, keepdims=True)


@pytest.mark.parametrize(("target", "options"), FORMS)
def test_three_hundred_equal_terms_share_alike(target, options):
    """A left fold of the two-argument gate gave the first of 300 equal terms 2^-299."""
    text = "size n = 300\ninput x[n] = 1, next = 2\ns = max(x[i] * next for i)\n"
    module = _load(text, target, **options)
    value, (dx, dnext) = module.backward(np.ones(300), 2.0)
    assert value == 2.0 and dnext == pytest.approx(1.0, rel=1e-13)
    assert np.asarray(dx).tolist() == [2.0 / 300] * 300


@pytest.mark.parametrize(("target", "options"), FORMS)
@pytest.mark.parametrize("kind", ["max", "min"])
def test_ties_split_equally(target, options, kind):
    """`m[i] = max(W[i, j] for j)` over rows with ties of every size, under a seed."""
    text = f"input W[6, 4]\nm[i] = {kind}(W[i, j] for j)\n"
    module = _load(text, target, **options)
    rng = np.random.default_rng(5)
    for _ in range(5):
        W = rng.integers(0, 3, (6, 4)).astype(float)
        W[0] = 1.0  # all four tied
        seed = rng.normal(size=6)
        value, (dW,) = module.backward(W, seed)
        want = seed[:, None] * _rule(W, kind == "max")
        np.testing.assert_allclose(np.asarray(dW, float), want, rtol=1e-15, atol=0)
        np.testing.assert_array_equal(np.asarray(value), W.max(1) if kind == "max" else W.min(1))


@pytest.mark.parametrize(("target", "options"), FORMS)
def test_a_tie_across_two_reduced_axes_and_a_term_read_twice(target, options):
    """`max(x[i] * y[j] for i, j)`: the tied products share the gradient, and an element
    in several of them gets the sum of their shares."""
    text = "input x[3], y[2]\ns = max(x[i] * y[j] for i, j)\n"
    module = _load(text, target, **options)
    x, y = np.array([1.0, 2.0, 2.0]), np.array([1.0, 1.0])  # four products equal 2
    _, (dx, dy) = module.backward(x, y)
    assert np.asarray(dx).tolist() == [0.0, 0.5, 0.5]
    assert np.asarray(dy).tolist() == [1.0, 1.0]  # each in two tied products, times x = 2


@pytest.mark.parametrize(("target", "options"), FORMS)
def test_logsumexp_at_a_tie_is_the_softmax(target, options):
    text = "input s[4]\nloss = logsumexp(s[c] for c) - s[0]\n"
    module = _load(text, target, **options)
    value, (ds,) = module.backward(np.zeros(4))
    assert value == pytest.approx(math.log(4), rel=1e-15)
    assert np.asarray(ds) == pytest.approx([0.25 - 1, 0.25, 0.25, 0.25], rel=1e-15, abs=1e-16)


def test_the_two_argument_gates_keep_half_each():
    module = _load("input x, y\ns = max(x, y) + min(x, y)\n", "python")
    assert module.backward(1.0, 1.0) == (2.0, (1.0, 1.0))
    module = _load("input x, y, z\ns = max(max(x, y), z)\n", "python")
    assert module.backward(1.0, 1.0, 1.0)[1] == (0.25, 0.25, 0.5)


def test_second_order_through_a_tied_reduction():
    """The written-out functions of `--hessian` and `--jvp` keep the rule."""
    text = "input x[3]\ns = max(x[i] * x[i] for i)\n"
    for target in ("python", "numpy"):
        module = _load(text, target, hessian=True, jvp=True)
        x = np.array([1.0, -1.0, 0.5])  # x0^2 and x1^2 tie
        _, grads, hv = module.hvp(x, np.array([1.0, 1.0, 1.0]))
        assert np.asarray(grads[0]).tolist() == [1.0, -1.0, 0.0]
        assert np.asarray(hv[0]).tolist() == [1.0, 1.0, 0.0]  # d(x_k)/dx_k for the tied
        # half of d(x0^2) + half of d(x1^2) along (1, 2, 3): (2 - 4) / 2
        assert float(module.jvp(x, np.array([1.0, 2.0, 3.0]))[1]) == -1.0


def test_against_jax():
    """JAX's max and min share their gradient equally among tied terms, as circuitc's do."""
    import jax

    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy
    text = "input W[5, 6], v[6]\nm[i] = max(W[i, j] * v[j] for j)\nn[j] = min(W[i, j] for i)\n" \
           "s = sum(m[i] for i) + 2 * sum(n[j] * v[j] for j)\n"

    def f(W, v):
        return jnp.max(W * v, axis=1).sum() + 2 * (jnp.min(W, axis=0) * v).sum()

    rng = np.random.default_rng(7)
    for target, options in FORMS:
        module = _load(text, target, **options)
        for _ in range(10):
            W, v = rng.integers(-1, 2, (5, 6)).astype(float), rng.integers(0, 2, 6).astype(float)
            _, grads = module.backward(W, v, 1.0)
            want = jax.grad(f, argnums=(0, 1))(W, v)
            for got, w in zip(grads[:2], want):
                np.testing.assert_allclose(np.asarray(got, float), np.asarray(w), rtol=1e-15, atol=0)
