"""Whole-bus NumPy code against the written-out NumPy module of the same bus circuit.

The written-out circuit is the reference semantics (tests/test_buses_oracle.py checks
it against a writer of its own). Here hypothesis draws random bus circuits with that
test's generator, and the whole-bus module (`circuitc.compile_source(..., "numpy")`)
must agree with the written-out one (`elements=True`) at random points under random
seeds, laid out in batches of every kind (`BATCHINGS`: one batch, single points,
unbatched parameters beside batched data, batch shapes that broadcast, empty batches,
seeds with batch axes of their own): forward values bit for bit when the circuit has
no `sum`, `mean`, `prod` or `logsumexp` (whose terms whole-bus code adds or multiplies
in another order), and otherwise, like every gradient (a wire read several times sums its
adjoints in another order), to 1e-12 relative to the largest magnitude among the
results compared; a domain error must be raised by both, and any other error fails.
The examples' circuits are checked the same way, then circuits that once gave wrong
numbers or failed, and a few properties of the code: module size independent of bus
sizes, slices for offset reads, einsum for contractions, run-time errors naming the
`.circ` position.

For a long run:

    CIRCUITC_BUS_EXAMPLES=2000 python -m pytest tests/test_whole_bus.py
"""

from __future__ import annotations

import math
import re
import time
import types
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import circuitc
from conftest import error_cases
from strategies import BUS_SETTINGS, bus_circuits, bus_text

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ["examples/mlp.circ", "examples/spiral.circ", "examples/moons.circ",
            "examples/svm.circ", "circuits/rosenbrock.circ", "circuits/two_layer.circ"]


def _load(text: str, **options) -> types.ModuleType:
    module = types.ModuleType("circuit")
    exec(compile(circuitc.compile_source(text, "c.circ", "numpy", **options), "c.py", "exec"),  # noqa: S102
         module.__dict__)
    return module


def _results(module, args, seeds):
    try:
        values, grads = module.backward(*args, *seeds)
    except ArithmeticError as e:  # a domain error; anything else (a ValueError) is a bug
        return type(e)
    forward = module.forward(*args)
    outputs = list(values) if len(module.OUTPUTS) > 1 else [values]
    again = list(forward) if len(module.OUTPUTS) > 1 else [forward]
    return [np.asarray(v, float) for v in outputs], [np.asarray(v, float) for v in again], \
        [np.asarray(g, float) for g in grads]


def _agree(whole, written, exact: bool) -> None:
    """`whole`'s results are `written`'s: bit for bit where `exact`, else to 1e-12
    relative to the largest magnitude among them."""
    (values, forward, grads), (want_values, want_forward, want_grads) = whole, written
    for got, want, bits in ((values, want_values, exact), (forward, want_forward, exact),
                            (grads, want_grads, False)):
        assert [g.shape for g in got] == [w.shape for w in want]
        finite = [abs(x) for w in want for x in w.reshape(-1) if math.isfinite(x)]
        scale = max(finite, default=1.0)
        for g, w in zip(got, want):
            if bits:
                np.testing.assert_array_equal(g, w)
            else:
                np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12 * scale)


def _raises_with_every_output(text: str, args) -> bool:
    module = _load(text, elements=True)
    try:
        module.forward(*args)
    except (ArithmeticError, ValueError):
        return True
    return False


# How the points are laid out: each a function from a random generator to the batch shape
# of each input and of each seed (given how many of each there are).
BATCHINGS = {
    "one batch": lambda rng, n, m: ([(4,)] * n, [(4,)] * m),
    "single points": lambda rng, n, m: ([()] * n, [()] * m),
    # Parameters without a batch beside data with one, and seeds with or without.
    "unbatched parameters": lambda rng, n, m: (
        [[(), (4,)][rng.integers(2)] for _ in range(n)], [[(), (4,)][rng.integers(2)] for _ in range(m)]),
    "broadcast": lambda rng, n, m: (  # batch shapes that broadcast together: (2, 3)
        [[(2, 1), (3,), (1, 3), ()][rng.integers(4)] for _ in range(n)],
        [[(), (3,), (2, 3)][rng.integers(3)] for _ in range(m)]),
    "empty": lambda rng, n, m: ([[(0,), ()][rng.integers(2)] for _ in range(n)], [()] * m),
    # Seeds with batch axes that no input has: several seeds for each point.
    "seeded": lambda rng, n, m: ([[(), (3,)][rng.integers(2)] for _ in range(n)],
                                 [[(2, 1), (5, 2, 3)][rng.integers(2)] for _ in range(m)]),
}


def _check(text: str, rng, batching: str = "one batch", index_numbers: bool = False) -> None:
    """Whole-bus and written-out modules of `text` agree at random points laid out as
    `batching` says; with `index_numbers` (an index variable used as a number, a constant
    the written-out optimizer can simplify around: `x ** tan(j)` at j = 0 is 1), a domain
    error of the whole-bus module alone is allowed."""
    whole, written = _load(text), _load(text, elements=True)
    for name in ("INPUTS", "OUTPUTS", "WRT", "SHAPES", "DEFAULTS"):
        assert getattr(whole, name) == getattr(written, name), name
    batches, seed_batches = BATCHINGS[batching](rng, len(whole.INPUTS), len(whole.OUTPUTS))
    args = [np.round(rng.uniform(-2, 2, batch + tuple(whole.SHAPES[n])), 3)
            for n, batch in zip(whole.INPUTS, batches)]
    seeds = [np.round(rng.normal(size=batch + tuple(whole.SHAPES[n])), 3)
             for n, batch in zip(whole.OUTPUTS, seed_batches)]
    got, want = _results(whole, args, seeds), _results(written, args, seeds)
    if isinstance(want, type):
        return  # sums may overflow to inf in whole-bus code where the additions raise
    if isinstance(got, type):
        # Whole-bus code computes every element of a bus; the written-out module only
        # those its outputs need. The error must be in one they do not need.
        defined = re.findall(r"^(\w+)(?:\[[^]]*\])? =", text, re.MULTILINE)
        every = re.sub(r"^output .*$", "output " + ", ".join(defined), text, flags=re.MULTILINE)
        assert index_numbers or _raises_with_every_output(every, args), \
            f"whole-bus code raised {got} where the written-out did not"
        return
    exact = not any(f"{r}(" in text for r in ("sum", "mean", "prod", "logsumexp"))
    _agree(got, want, exact)


@BUS_SETTINGS
@given(bus_circuits(), st.integers(0, 2**32 - 1), st.sampled_from(sorted(BATCHINGS)))
def test_whole_bus_code_is_the_written_out_module(c, seed, batching):
    text = bus_text(c)
    try:
        _load(text, elements=True)
    except circuitc.CircuitError:
        return  # a constant domain error: tests/test_buses_oracle.py checks both give it
    try:
        _check(text, np.random.default_rng(seed), batching,
               index_numbers="'ivar'" in repr(c.statements))
    except AssertionError as e:
        raise AssertionError(f"{e}\nbus circuit:\n{text}") from None


@pytest.mark.parametrize("path", EXAMPLES)
def test_examples_agree(path):
    text = (ROOT / path).read_text()
    rng = np.random.default_rng(0)
    for batching in BATCHINGS:
        _check(text, rng, batching)


def test_a_wide_weights_gradient_is_a_product_the_fast_way_round():
    # A weight with more columns than rows (784-128 in MNIST's network): its gradient is
    # `(x.T @ d).T`, which BLAS computes several times faster than `d.T @ x`.
    text = ("size d = 5\nsize h = 3\ninput x[d], W[h, d]\n"
            "z[i] = tanh(sum(W[i, j] * x[j] for j))\nf = sum(z[i] * z[i] for i)\noutput f\n")
    assert "(x.reshape(x.size // 5, 5).T @ d_sum1.reshape(" in circuitc.compile_source(
        text, "w.circ", "numpy")
    rng = np.random.default_rng(4)
    for batching in BATCHINGS:
        _check(text, rng, batching)


def test_contractions_are_matrix_products_and_offsets_slices():
    mlp = circuitc.compile_file(ROOT / "examples/mlp.circ", "numpy")
    assert "sum1 = x @ W1.T if W1.ndim == 2 else _contract('...ij,...j->...i', W1, x)" in mlp
    assert "_elements" not in mlp  # no bus is taken apart
    rosenbrock = circuitc.compile_file(ROOT / "circuits/rosenbrock.circ", "numpy")
    assert "x[..., 1:]" in rosenbrock and "x[..., :9]" in rosenbrock
    assert "d_x[..., 1:]" in rosenbrock.split("def backward")[1]


def test_module_size_does_not_grow_with_bus_sizes():
    text = (ROOT / "circuits/rosenbrock.circ").read_text()
    small = circuitc.compile_source(text, "r.circ", "numpy", sizes={"n": 10})
    start = time.perf_counter()
    large = circuitc.compile_source(text, "r.circ", "numpy", sizes={"n": 10**6})
    assert time.perf_counter() - start < 30  # a generous bound; benchmarks/ measure it
    assert abs(len(large) - len(small)) < 100
    assert small.replace("10,", "1000000,").count("\n") == large.count("\n")


def test_elements_writes_out():
    text = (ROOT / "examples/mlp.circ").read_text()
    assert "_elements(W1, (16, 2))" in circuitc.compile_source(text, "m.circ", "numpy",
                                                                elements=True)


def test_run_time_error_names_the_gate():
    text = "size n = 3\ninput x[n]\nh[i] = log(x[i])\nf = sum(h[i] for i)\n"
    module = _load(text)
    with pytest.raises(FloatingPointError, match=r"c\.circ:3:8: in 'log'"):
        module.forward(np.array([1.0, -1.0, 2.0]))


def test_wrt_and_fix():
    text = (ROOT / "examples/mlp.circ").read_text()
    module = _load(text.replace("output loss, score", "output loss"), wrt=["W1", "c"])
    assert module.WRT == ("W1", "c")
    written = _load(text.replace("output loss, score", "output loss"), wrt=["W1", "c"],
                    elements=True)
    rng = np.random.default_rng(3)
    args = [rng.uniform(-1, 1, (7, *module.SHAPES[n])) for n in module.INPUTS]
    got, want = module.backward(*args)[1], written.backward(*args)[1]
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(("source", "expected"), list(error_cases("bus_errors.txt")))
def test_a_bad_bus_circuit_gets_the_written_out_error(source, expected):
    """Every error of the written-out front end, word for word, through whole-bus code
    (a given range reading out of bounds was once compiled)."""
    with pytest.raises(circuitc.CircuitError) as info:
        circuitc.compile_source(source, "bad.circ", "numpy")
    assert info.value.render() == expected


# -- regressions: circuits whose whole-bus code once gave wrong numbers or failed -------


def _same_as_written_out(text: str, args, seeds=()):
    """Whole-bus and written-out results at `args` under `seeds`, which must agree (to
    1e-12); the whole-bus ones."""
    whole, written = _load(text), _load(text, elements=True)
    want = written.backward(*args, *seeds), written.forward(*args)
    got = whole.backward(*args, *seeds), whole.forward(*args)
    for g, w in zip(_leaves(got), _leaves(want), strict=True):
        assert np.shape(g) == np.shape(w)
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)
    return got[0]


def _leaves(value) -> list:
    if isinstance(value, tuple):
        return [x for v in value for x in _leaves(v)]
    return [value]


# The adjoint of a whole read in a sum's term is a broadcast (`d_sum[..., None]`, size 1
# along the bus): it must get its bus's full shape before a slice of it is updated.
CONSTANT_INDEX_IN_MAP = ("input x[2] = [1, 2], y = 3, z[2] = [1, 1]\nu[k] = x[0] * z[k]\n"
                         "t = sum(y - x[q] for q)\nf = t + u[0] + u[1]\n")
# A weight bus read whole by a contraction (whose gradient the contraction sums over the
# batch) and at a constant index (a per-point gradient).
BIAS_FROM_WEIGHTS = "input w[2], x[2]\nloss = sum(w[j] * x[j] for j) + w[0]\n"


def test_a_constant_index_in_a_map_beside_a_broadcast_adjoint():
    _, (dx, dy, dz) = _same_as_written_out(CONSTANT_INDEX_IN_MAP, ([1.0, 2.0], 3.0, [1.0, 1.0]))
    assert dx.tolist() == [1.0, -1.0] and dy == 2.0 and dz.tolist() == [1.0, 1.0]
    rng = np.random.default_rng(0)
    _same_as_written_out(CONSTANT_INDEX_IN_MAP, (rng.normal(size=(3, 2)), rng.normal(size=(3,)),
                                                 rng.normal(size=2)), (rng.normal(size=(2, 3)),))


def test_an_unbatched_weight_read_whole_and_at_an_index():
    w, x = np.array([0.5, 1.5]), np.array([[1.0, 2.0], [3.0, 4.0]])
    _, (dw, dx) = _same_as_written_out(BIAS_FROM_WEIGHTS, (w, x))
    assert dw.tolist() == [6.0, 6.0] and dx.tolist() == [[0.5, 1.5], [0.5, 1.5]]
    _same_as_written_out(BIAS_FROM_WEIGHTS, (w, x), (np.array([[1.0, -2.0]] * 3),))


@pytest.mark.parametrize(("text", "value"), [
    ("input x[2] = [3, 5]\nt = sum(x[1 - q] for q in range(1, 2))\n", 3.0),
    ("input x[2] = [3, 5], y[2] = [4, 6]\nt = sum(x[1 - q] + y[q - 1] for q)\n", 7.0),
    ("input x[3] = [3, 5, 7]\nt = sum(x[2 - q] * x[q] for q in range(1, 3))\n", 46.0),
    ("input x[4] = [1, 2, 3, 4]\nu[i] = x[3 - i]\nt = sum(u[i] * x[i] for i)\noutput u, t\n", None),
    ("input x[5] = [1, 2, 3, 4, 5]\nu[i] = x[4 - 2 * i]\noutput u\n", None),
])
def test_negative_index_coefficients(text, value):
    whole = _load(text)
    got, _ = _same_as_written_out(text, [whole.DEFAULTS[n] for n in whole.INPUTS])
    if value is not None:
        assert got == value
    rng = np.random.default_rng(1)
    args = [rng.normal(size=(2, *whole.SHAPES[n])) for n in whole.INPUTS]
    seeds = [rng.normal(size=(3, 1, *whole.SHAPES[n])) for n in whole.OUTPUTS]
    _same_as_written_out(text, args, seeds)


@pytest.mark.parametrize("text", [
    "input x[2] = [3, 5]\nu[k] = x[1] + x[k]\noutput u\n",
    "input x[2] = [3, 5]\nu[k] = x[0] + x[k]\nf = sum(u[k] * u[k] for k)\n",
    "input x[3]\nu[k] = x[0] * x[k] + x[2]\nv[k] = u[k] * x[1]\noutput u, v\n",
])
def test_a_constant_index_and_a_whole_read_of_one_bus(text):
    """Under seeds whose batch axes the inputs lack, and the other way round."""
    rng = np.random.default_rng(2)
    whole = _load(text)
    for batch, seed_batch in (((), ()), ((), (2,)), ((), (2, 2)), ((3,), ()), ((3,), (2, 1)),
                              ((2, 1), (3,))):
        args = [rng.normal(size=(*batch, *whole.SHAPES[n])) for n in whole.INPUTS]
        seeds = [rng.normal(size=(*seed_batch, *whole.SHAPES[n])) for n in whole.OUTPUTS]
        _same_as_written_out(text, args, seeds)


FOLDS = ("prod", "logsumexp", "max", "min")


@pytest.mark.parametrize("kind", FOLDS)
@pytest.mark.parametrize(("w", "x", "seed"), [
    ((), (3,), ()),  # the terms unbatched, their adjoint a batch
    ((3,), (), ()),
    ((2, 1), (3,), ()),  # batches that broadcast
    ((), (), (4,)),  # a seed with a batch axis no input has
    ((3,), (2, 1), (5, 1, 1)),
])
def test_a_fold_under_batches_of_every_shape(kind, w, x, seed):
    text = f"input w[3], x\ns = {kind}(w[i] for i) * x + {kind}(w[i] * x for i)\n"
    rng = np.random.default_rng(3)
    _same_as_written_out(text, (rng.uniform(0.5, 1.5, (*w, 3)), rng.uniform(0.5, 1.5, x)),
                         (rng.normal(size=seed),))


@pytest.mark.parametrize("kind", FOLDS)
def test_a_fold_over_an_empty_batch(kind):
    text = f"input w[3], x[2, 3]\ns[i] = {kind}(w[j] * x[i, j] for j)\nt = {kind}(w[j] for j)\n" \
           "output s, t\n"
    for w, x in (((0, 3), (0, 2, 3)), ((3,), (0, 2, 3)), ((0, 3), (2, 3))):
        (s, t), grads = _same_as_written_out(text, (np.ones(w), np.ones(x)))
        assert s.shape == (0, 2) and t.shape == (0,)
        assert [g.shape for g in grads] == [w, x]


def test_seeds_with_batch_axes_of_their_own_count_once_for_their_output():
    """The gradient of `sum(d_s*s) + sum(d_t*t)`, each product broadcast on its own: the
    written-out module once counted `d_t` again for each row that only `d_s` has."""
    text = "input x[1], y\ns = x[0] * y\nt = x[0]\noutput s, t\n"
    x, y = np.array([[1.0], [2.0], [3.0]]), np.ones((1, 3))
    d_s, d_t = np.arange(6.0).reshape(2, 3), 10.0  # d_s: two rows of seeds for each point
    for module in (_load(text), _load(text, elements=True)):
        _, (dx, dy) = module.backward(x, y, d_s, d_t)
        assert dx.tolist() == [[3.0 + 10], [5.0 + 10], [7.0 + 10]]
        assert dy.tolist() == [[3.0 * 1, 5.0 * 2, 7.0 * 3]]


@pytest.mark.parametrize("target", ["numpy", "python"])
def test_a_reduction_no_output_needs_is_not_computed(target, monkeypatch):
    """As written out: `konst` ignores its parameter, so no `log` of `x[0]` is taken."""
    monkeypatch.setattr(circuitc.api, "LOOPS_FROM", 0)
    text = "gate konst(p) = 1.5\ninput x[3]\nh[i] = konst(sum(log(x[0]) * x[j] for j)) + x[i]\n"
    module = circuitc.api.load_source(text, "c.circ", target)
    x = [-1.0, 2.0, 3.0]
    value, (dx,) = module.backward(np.array(x) if target == "numpy" else x)
    assert np.asarray(value).tolist() == [0.5, 3.5, 4.5]
    assert np.asarray(dx).tolist() == [1.0, 1.0, 1.0]


@pytest.mark.parametrize("target", ["numpy", "python"])
@pytest.mark.parametrize("text", [
    # A bus used above its definition, by a reduction and by a constant index.
    "size n = 300\ninput x[n]\ns = sum(v[i] for i) + t\nt = 2 * v[0]\nv[i] = x[i] * 2\noutput s\n",
    # A map whose gradients are all 0 (a gate with a constant body): no loop without a body.
    "size n = 300\ninput x[n]\ngate c(p) = 1.5\nu[k] = c(x[k])\n",
    # `range`, `next`, `iter`, `float`, `min` and `len` as names of every kind.
    ("size n = 300\ninput x[n], range = 2, next = 0.5\niter[i] = x[i] * range + i\n"
     "float = max(iter[min] * next for min) + min(x[len] for len)\n"),
])
def test_loops_and_whole_bus_code_of_awkward_circuits(target, text):
    """Against the written-out module; with 300 elements the python target writes loops."""
    module = circuitc.api.load_source(text, "c.circ", target)
    written = circuitc.api.load_source(text, "c.circ", target, elements=True)
    rng = np.random.default_rng(4)
    args = [rng.normal(size=module.SHAPES[n]) if module.SHAPES[n] else 0.5 for n in module.INPUTS]
    if target == "python":
        args = [a.tolist() if hasattr(a, "tolist") else a for a in args]
    for got, want in zip(_leaves(module.backward(*args)), _leaves(written.backward(*args)), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_a_reduction_over_many_index_variables():
    """27 index variables: more than the 26 letters einsum's subscripts once had; 53: more
    than einsum can name, written out."""
    for count in (27, 53):
        names = [f"v{k}" for k in range(count)]
        text = (f"input x[1], y[2]\ns = sum({' * '.join(f'x[{v}]' for v in names)} * y[0] "
                f"for {', '.join(names)})\nt = max({' + '.join(f'x[{v}]' for v in names)} "
                f"for {', '.join(names)})\noutput s, t\n")
        (s, t), (dx, dy) = _same_as_written_out(text, (np.array([1.01]), np.array([2.0, 3.0])))
        assert dy.tolist() == pytest.approx([1.01 ** count, 0.0], rel=1e-14)
        assert s == pytest.approx(1.01 ** count * 2, rel=1e-14) and t == pytest.approx(1.01 * count)
        assert dx.tolist() == pytest.approx([count * 1.01 ** (count - 1) * 2 + count], rel=1e-14)
