"""Edges of buses and second order found by review: a bus named like a reduction,
batched directions, bus outputs given to SciPy, Newton steps without a Hessian."""

from __future__ import annotations

import numpy as np
import pytest

import circuitc
from circuitc.step import StepError, climb

ROSENBROCK = "size n = 3\ninput x[n] = -1.2\nf = sum(100*(x[i+1] - x[i]**2)**2 + (1 - x[i])**2 for i)\n"


def load(tmp_path, text, **options):
    path = tmp_path / "c.circ"
    path.write_text(text)
    return circuitc.load(path, **options)


def test_a_bus_named_like_a_reduction_is_no_cycle(tmp_path):
    m = load(tmp_path, "input x[2] = [1, 2]\nsum[i] = x[i]\nh[i] = sum(sum[j] for j) * x[i]\n")
    assert m.forward([1.0, 2.0]) == (3.0, 6.0)


def test_directions_broadcast_like_inputs_in_the_numpy_target(tmp_path):
    m = load(tmp_path, ROSENBROCK, target="numpy", hessian=True, jvp=True)
    directions = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    _, tangents = m.jvp(np.full(3, 0.5), directions)
    _, (grad,) = m.backward(np.full(3, 0.5))
    assert tangents.tolist() == [grad[0], grad[1]]
    value, grads, (hv,) = m.hvp(np.full(3, 0.5), directions)
    assert (value, grads[0].tolist()) == (m.backward(np.full(3, 0.5))[0], grad.tolist())
    # A batch of directions at one point: a product per direction.
    assert hv.tolist() == [m.hvp(np.full(3, 0.5), d)[2][0].tolist() for d in directions]


def test_a_batch_of_directions_for_a_scalar_input():
    """The value and gradient are `backward`'s, not counted once per direction, and `hv`
    has a product per direction, for every input (a direction is one per input)."""
    m = circuitc.api.load_source("input x, y\nf = x * x * y\n", "c.circ", "numpy", hessian=True)
    value, grads, hv = m.hvp(1.0, 2.0, np.array([1.0, 2.0, 3.0]), 0.0)
    assert (value, grads) == (2.0, (4.0, 1.0))
    assert [h.tolist() for h in hv] == [[4.0, 8.0, 12.0], [2.0, 4.0, 6.0]]  # (2y vx, 2x vx)
    # A direction per point: an input the points share sums its products, as its gradient.
    value, grads, hv = m.hvp(np.array([1.0, 2.0]), 2.0, np.array([1.0, 1.0]), 0.0)
    assert grads[1] == 5.0 and hv[1] == 2.0 + 4.0 and hv[0].tolist() == [4.0, 4.0]


def test_objective_refuses_a_bus_output(tmp_path):
    m = load(tmp_path, "input x[2] = [1, 2]\nh[i] = x[i] * x[i]\n")
    with pytest.raises(ValueError, match="is a bus"):
        circuitc.objective(m, output="h")


def test_newton_steps_without_a_hessian_say_so(tmp_path):
    m = load(tmp_path, ROSENBROCK)
    with pytest.raises(StepError, match="hessian=True"):
        climb(circuitc.api.elementwise(m), {"x[0]": 0.5, "x[1]": 0.5, "x[2]": 0.5},
              method="newton")


def test_a_renamed_input_given_twice_is_named_the_same_way_every_time(tmp_path):
    m = load(tmp_path, "input lambda = 1, exc = 2\nf = lambda * exc\n")
    for _ in range(3):
        with pytest.raises(TypeError, match="'lambda' twice"):
            m.forward(**{"lambda": 1.0, "lambda_": 1.0, "exc": 2.0, "exc_": 2.0})


def test_numpy_hvp_sums_a_gradient_its_tangent_reads():
    """`d_a` is summed to `a`'s shape in `hvp` too, where the product's tangent reads it
    (a name `backward` had summed was taken as summed in `hvp`)."""
    m = circuitc.api.load_source("input x, a\nh = x + log(a)\n", "c.circ", "numpy", hessian=True,
                                 elements=True)
    x, a = np.ones((1, 3)), np.full((2, 1), 2.0)
    grads = m.backward(x, a)[1]
    hvp_grads = m.hvp(x, a, np.ones(()), np.ones(()))[1]
    assert np.shape(hvp_grads[1]) == np.shape(grads[1]) == (2, 1)
    np.testing.assert_allclose(hvp_grads[1], grads[1])
