"""Forward mode, Hessian-vector products and sparse Hessians of whole-bus code against the
written-out module.

`jvp` and `hvp` of a whole-bus module (`compile_source(..., jvp=True, hessian=True)`:
forward mode over the plan, `indexed.ad`) must agree with those of the written-out
module (`elements=True`: forward mode over the scalar graph) to 1e-12 relative to the
largest magnitude compared, on random bus circuits (the oracle's generator) at random
points, directions and seeds: in the numpy target with batches of several shapes
(inputs and directions batched or not, broadcasting against each other), and in the
python target's loops. A domain error must be raised by both. The Hessian's pattern,
found from the plan's index patterns, is the written-out module's `HESSIAN_PATTERN`
entry for entry, and `sparse_hessian` (one `hvp` per colour of the pattern's columns)
gives the written-out `hessian`'s entries there. The module's text does not grow with
bus sizes.

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

import circuitc
from circuitc import api
from conftest import ROOT, run_cli
from strategies import BUS_SETTINGS, bus_circuits, bus_text

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


def _check_hessian(text: str, rng) -> None:
    """The pattern and the sparse Hessian of whole-bus modules, both targets, against the
    written-out python module's `HESSIAN_PATTERN` and `hessian`."""
    written = types.ModuleType("w")
    exec(compile(circuitc.compile_source(text, "c.circ", "python", hessian=True,  # noqa: S102
                                         elements=True), "w.py", "exec"), written.__dict__)
    places = sorted(getattr(written, "HESSIAN_PATTERN", ()), key=lambda rc: (rc[1], rc[0]))
    whole = _load(text, "numpy")
    if not hasattr(whole, "HESSIAN_PIECES"):
        return  # written out: an index the whole-bus form does not cover
    saved, api.LOOPS_FROM = api.LOOPS_FROM, 0
    try:
        looped = _load(text, "python")
    finally:
        api.LOOPS_FROM = saved
    assert [tuple(p) for p in whole.HESSIAN_PATTERN.tolist()] == places
    assert looped.HESSIAN_PATTERN == places
    shape = {n: tuple(whole.SHAPES[n]) for n in whole.INPUTS + whole.OUTPUTS}
    args = [np.round(rng.uniform(-2, 2, shape[n]), 3) for n in whole.INPUTS]
    seeds = [np.round(rng.normal(size=shape[n]), 3) for n in whole.OUTPUTS]
    want = _call(written.hessian, *(a.tolist() for a in args), *(s.tolist() for s in seeds))
    if isinstance(want, type):
        return
    n = sum(math.prod(whole.SHAPES[name]) for name in whole.WRT)
    dense = np.array(want[2], float).reshape(n, n)
    at = [dense[j, k] for j, k in places]
    for module, inputs in ((whole, args), (looped, [a.tolist() for a in args])):
        got = _call(module.sparse_hessian, *inputs, *(s.tolist() for s in seeds))
        if not isinstance(got, type):
            _agree(got[2], at)


@BUS_SETTINGS
@given(bus_circuits(), st.integers(0, 2**32 - 1))
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
        _check_hessian(text, rng)
    except AssertionError as e:
        raise AssertionError(f"{e}\nbus circuit:\n{text}") from None


@pytest.mark.parametrize("path", EXAMPLES)
def test_examples_agree(path):
    text = (ROOT / path).read_text()
    rng = np.random.default_rng(0)
    for _ in range(3):
        _check_numpy(text, rng)
        _check_loops(text, rng)
    if "spiral" not in path:  # a pattern of 184,524 places: listed in pure Python, slowly
        _check_hessian(text, rng)


def test_second_order_module_size_does_not_grow_with_bus_sizes():
    text = (ROOT / "circuits/rosenbrock.circ").read_text()
    for target in ("numpy", "python"):
        small, large = (circuitc.compile_source(text, "r.circ", target, sizes={"n": n},
                                                jvp=True, hessian=True)
                        for n in (300, 10**6))
        assert small.count("\n") == large.count("\n")
        assert abs(len(large) - len(small)) < 200


def test_rosenbrock_needs_three_products_at_any_size():
    optimize = pytest.importorskip("scipy.optimize")
    text = (ROOT / "circuits/rosenbrock.circ").read_text()
    for n in (10, 10**5):
        module = _load(text.replace("size n = 10", f"size n = {n}"), "numpy")
        assert module.HESSIAN_BAND == 1 and len(module.HESSIAN_PIECES) <= 4
        calls = []
        module.hvp = _counted(module.hvp, calls)
        x = np.linspace(-1, 1, n)
        entries = module.sparse_hessian(x)[2]
        assert calls == [(3, n)]  # one call, a batch of three directions
        assert len(entries) == 2 * n - 1
        places = module.HESSIAN_PATTERN
        want = optimize.rosen_hess(x) if n < 1000 else None
        if want is not None:
            np.testing.assert_allclose(entries, want[places[:, 0], places[:, 1]], rtol=1e-13)


def _counted(function, calls: list):
    """`function`, recording the shape of each call's second argument in `calls`."""
    def counted(*args):
        calls.append(np.shape(args[1]))
        return function(*args)
    return counted


def test_verify_checks_second_derivatives_of_whole_bus_modules():
    for target in ("numpy", "python"):
        result = run_cli("verify", ROOT / "circuits/rosenbrock.circ", "--order", "2",
                         "--target", target, "-D", "n=300", "--points", "1")
        assert result.returncode == 0, result.stderr
        assert "OK:" in result.stdout and " 0 failed" in result.stdout


BATCHES = [(), (3,), (2, 1), (2, 3), (1, 3), (4,)]


def _arrays(result):
    if isinstance(result, tuple | list):
        for x in result:
            yield from _arrays(x)
    elif isinstance(result, np.ndarray):
        yield result


@BUS_SETTINGS
@given(bus_circuits(), st.integers(0, 2**32 - 1))
def test_whole_bus_code_leaves_the_callers_arrays_alone(c, seed):
    """No function changes an array it was given, and no two of its results, nor a result
    and an argument, share memory (arrays that alias one another would change together)."""
    text = bus_text(c)
    try:
        whole = _load(text, "numpy")
    except circuitc.CircuitError:
        return
    rng = np.random.default_rng(seed)
    shape = {n: tuple(whole.SHAPES[n]) for n in whole.INPUTS + whole.OUTPUTS}

    def batch():
        return BATCHES[rng.integers(len(BATCHES))]
    args = [rng.uniform(-2, 2, batch() + shape[n]) for n in whole.INPUTS]
    seeds = [rng.normal(size=batch() + shape[n]) for n in whole.OUTPUTS]
    directions = [rng.normal(size=batch() + shape[n]) for n in whole.WRT]
    calls = {"forward": args, "backward": args + seeds,
             "jvp": args + [rng.normal(size=a.shape) for a in args],
             "hvp": args + directions + seeds}
    for name, params in calls.items():
        saved = [p.copy() for p in params]
        got = _call(getattr(whole, name), *params)
        for p, s in zip(params, saved):
            assert np.array_equal(p, s, equal_nan=True), f"{name} changed an argument\n{text}"
        results = list(_arrays(got)) if not isinstance(got, type) else []
        for k, r in enumerate(results):
            assert not any(np.shares_memory(r, p) for p in params), f"{name}\n{text}"
            assert not any(np.shares_memory(r, o) for o in results[k + 1:]), f"{name}\n{text}"
