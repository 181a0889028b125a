"""The python target's whole-bus module (`emit.loops`) against the written-out module.

On the example bus circuits and on random bus circuits (the strategy of
`tests/strategies.py`), at random points with random seeds: forward values and
backward values and gradients agree, bit for bit where the operations and their
order are the same, else to a relative 1e-12 (`_close`); a domain error is raised
by both. The module's text does not grow with the sizes of its buses, and a
run-time error names the gate's `.circ` position.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import circuitc
from circuitc import api
from conftest import ROOT
from strategies import (
    BUS_SETTINGS,
    BusCircuit,
    bus_circuits,
    bus_text,
    nested,
    random_point,
    random_seeds,
)

EXAMPLES = [path for path in sorted([*(ROOT / "circuits").glob("*.circ"), *(ROOT / "examples").glob("*.circ")])
            if "[" in path.read_text()]  # the bus circuits
LOOP = re.compile(r"^ +for \w+ in range\(", re.MULTILINE)  # a loop over a bus


def _load(text: str, filename: str = "c.circ", **options):
    return api.load_source(text, filename, "python", **options)


def _both(text: str, filename: str = "c.circ", sizes=None):
    """The whole-bus module (looped at any size) and the written-out module."""
    saved, api.LOOPS_FROM = api.LOOPS_FROM, 0
    try:
        source = circuitc.compile_source(text, filename, sizes=sizes)
    finally:
        api.LOOPS_FROM = saved
    return source, _load(text, filename, sizes=sizes, elements=True)


def _loaded(source: str):
    namespace: dict = {}
    exec(compile(source, "loops.py", "exec"), namespace)  # noqa: S102
    return type("Module", (), namespace)


def _flat(value) -> list[float]:
    if isinstance(value, tuple):
        return [x for v in value for x in _flat(v)]
    return [value]


def _close(got: list[float], want: list[float]) -> None:
    """Equal as numbers, or within a relative 1e-12 of the larger terms' scale."""
    assert len(got) == len(want)
    scale = max([abs(w) for w in want if math.isfinite(w)] + [1.0])
    for g, w in zip(got, want):
        if math.isnan(w):
            assert math.isnan(g), (got, want)
        elif g != w:
            assert g == pytest.approx(w, rel=1e-12, abs=1e-12 * scale), (got, want)


def _compare(loops, written, args, seeds) -> None:
    results = []
    for module in (loops, written):
        try:
            results.append((module.forward(*args), module.backward(*args, *seeds)))
        except (ArithmeticError, ValueError) as e:
            results.append(type(e))
    got, want = results
    if isinstance(want, type):
        assert got == want
        return
    if isinstance(got, type):
        # Whole-bus code computes every element of a bus; the written-out module only
        # those an output needs, so it may not meet the domain error of another.
        return
    _close(_flat(got[0]), _flat(want[0]))
    _close(_flat(got[1][0]), _flat(want[1][0]))
    _close(_flat(got[1][1]), _flat(want[1][1]))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_circuits_agree_with_the_written_out_module(path):
    text = path.read_text()
    source, written = _both(text, str(path))
    assert LOOP.search(source) and "import numpy" not in source
    loops = _loaded(source)
    for name in ("INPUTS", "OUTPUTS", "WRT", "SHAPES", "DEFAULTS"):
        assert getattr(loops, name) == getattr(written, name), name
    rng = np.random.default_rng(1)
    shapes = written.SHAPES
    for k in range(4):
        args = [rng.normal(size=shapes[n]) if shapes[n] else float(rng.normal()) for n in written.INPUTS]
        if k == 0:
            args = [written.DEFAULTS.get(n, 0.5) for n in written.INPUTS]
        elif k == 1:
            args = [a.tolist() if hasattr(a, "tolist") else a for a in args]  # nested lists
        seeds = [rng.normal(size=shapes[o]) if shapes[o] else float(rng.normal()) for o in written.OUTPUTS]
        _compare(loops, written, args, seeds)


def test_rosenbrock_is_bit_for_bit():
    """Same gates, same order: the sum accumulated from -0.0 is the written-out left fold."""
    source, written = _both((ROOT / "circuits" / "rosenbrock.circ").read_text(), sizes={"n": 50})
    loops = _loaded(source)
    x = np.random.default_rng(2).uniform(-2, 2, 50)
    got, want = loops.backward(x, 0.7), written.backward(x, 0.7)
    assert got[0].hex() == want[0].hex()
    assert [g.hex() for g in got[1][0]] == [w.hex() for w in want[1][0]]


@BUS_SETTINGS
@given(bus_circuits(), st.integers(0, 2**32 - 1))
def test_random_bus_circuits_agree_with_the_written_out_module(c: BusCircuit, seed):
    text = bus_text(c)
    try:
        source, written = _both(text)
    except circuitc.CircuitError as e:  # a constant domain error, the written-out one's too
        assert "fails on constant operands" in e.message
        return
    loops = _loaded(source)
    rng = np.random.default_rng(seed)
    for container in (list, tuple, np.array):
        point, seeds = random_point(c, rng), random_seeds(c, rng)
        args = [nested(point[n], shape, container) if shape else point[n][0]
                for n, _, shape in c.inputs]
        seed_args = [nested(seeds[n], c.shape(n), container) if c.shape(n) else seeds[n][0]
                     for n in c.outputs]
        try:
            _compare(loops, written, args, seed_args)
        except AssertionError as e:
            raise AssertionError(f"{e}\n{text}\n{source}") from None


def test_module_text_does_not_grow_with_bus_sizes(monkeypatch):
    monkeypatch.setattr(api, "LOOPS_FROM", 0)
    text = (ROOT / "examples" / "mlp.circ").read_text()
    small = circuitc.compile_source(text, "mlp.circ", sizes={"n": 10})
    large = circuitc.compile_source(text, "mlp.circ", sizes={"n": 3000})  # W2: 9 million elements
    assert re.sub(r"\d+", "N", small) == re.sub(r"\d+", "N", large)
    rosen = (ROOT / "circuits" / "rosenbrock.circ").read_text()
    small = circuitc.compile_source(rosen, "r.circ", sizes={"n": 10})
    large = circuitc.compile_source(rosen, "r.circ", sizes={"n": 10**6})
    assert re.sub(r"\d+", "N", small) == re.sub(r"\d+", "N", large)
    assert len(large) < 3000


def test_small_buses_stay_written_out():
    text = (ROOT / "circuits" / "rosenbrock.circ").read_text()
    assert not LOOP.search(circuitc.compile_source(text, sizes={"n": api.LOOPS_FROM}))
    assert LOOP.search(circuitc.compile_source(text, sizes={"n": api.LOOPS_FROM + 1}))
    for options in ({"elements": True}, {"hessian": True}, {"jvp": True}):
        assert not LOOP.search(circuitc.compile_source(text, sizes={"n": 100}, **options))


def test_run_time_error_names_the_gate(monkeypatch):
    monkeypatch.setattr(api, "LOOPS_FROM", 0)
    text = "size n = 20\ninput x[n]\nh[i] = log(x[i])\nf = sum(h[i] for i)\n"
    module = _load(text, "g.circ")
    x = [1.0] * 20
    x[7] = -1.0
    for call in (lambda: module.forward(x), lambda: module.backward(x)):
        with pytest.raises(ValueError, match=r"^g\.circ:3:8: in 'log': math domain error"):
            call()


def test_a_bus_given_as_one_number_and_as_an_array(monkeypatch):
    monkeypatch.setattr(api, "LOOPS_FROM", 0)
    text = (ROOT / "circuits" / "rosenbrock.circ").read_text()
    module = _load(text, sizes={"n": 30})
    assert module.forward(-1.2) == module.forward(np.full(30, -1.2)) == module.forward([-1.2] * 30)
    _, (grad,) = module.backward(np.full(30, -1.2))
    assert type(grad) is tuple and len(grad) == 30 and type(grad[0]) is float


def test_names_of_the_module_and_of_the_circuit_do_not_clash(monkeypatch):
    """Loop variables, `acc`, `grads` and `.circ` names (`lambda` is renamed) stay apart."""
    monkeypatch.setattr(api, "LOOPS_FROM", 0)
    text = ("size n = 3\ninput acc[n], lambda, grads\n"
            "h[i] = acc[i] * lambda + grads\nf = max(h[t] for t) + sum(h[grads1] for grads1)\n"
            "output f, h\n")
    source, written = _both(text)
    loops = _loaded(source)
    assert loops.RENAMED == {"lambda": "lambda_"}
    args = ([0.5, -1.0, 2.0], 1.5, 0.25)
    _compare(loops, written, args, (0.7, [1.0, -2.0, 0.5]))
    # d_h is the seed (1.0 each) plus 1 from the sum, and 1 from the max for h[2]: (2, 2, 3)
    assert loops.backward(acc=[1.0, 2.0, 3.0], grads=0.5, **{"lambda": 2.0})[1][1] == 2 + 4 + 9


def test_rosenbrock_backward_is_one_loop():
    """The output's sum and its terms: forward and reverse fused into one loop."""
    source, _ = _both((ROOT / "circuits" / "rosenbrock.circ").read_text())
    backward = source.split("def backward")[1].split("\ndef ")[0]
    assert len(LOOP.findall(backward)) == 1


def test_signed_zeros_of_gradients_as_written_out(monkeypatch):
    """An adjoint starts at -0.0 where every element gets something added (which then adds
    nothing, not even a sign: d(x/y)/dy at y = inf is -0.0), else at 0.0, which an element
    nothing reads keeps (`w[2*i]` reads no odd element)."""
    monkeypatch.setattr(api, "LOOPS_FROM", 0)
    text = "input x[6], w[6], y\nf[i] = x[i] / y\ng = sum(x[2 * i] / y for i)\nh[i] = w[2 * i] / y\n" \
           "output f, g, h\n"
    source, written = _both(text)
    loops = _loaded(source)
    args, seeds = ([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [1.0] * 6, math.inf), ([1.0] * 6, 1.0, [1.0] * 3)
    got, want = loops.backward(*args, *seeds)[1], written.backward(*args, *seeds)[1]
    assert math.copysign(1.0, got[2]) == -1.0 and got[2] == 0.0
    signs = [[math.copysign(1.0, x) for x in _flat(g)] for g in (got, want)]
    assert signs[0] == signs[1]
