"""The numpy target (docs/numpy.md): the python target's numbers,
elementwise over batches; broadcasting, with each gradient summed to its input's shape;
stable gates; kinks; domain errors; the generated module itself; the command line."""

from __future__ import annotations

import ast
import itertools
import json
import math
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest

import circuitc
from circuitc.gates import GATES
from conftest import CIRCUITS, EXAMPLES, load_source, run_cli

RNG_SEED = 20260507


def _numpy(text: str, filename: str = "<test>"):
    return load_source(text, filename, target="numpy")


def _outputs(module, value) -> list:
    return list(value) if len(module.OUTPUTS) > 1 else [value]


def _flat(values) -> list[float]:
    """Numbers, arrays and nested sequences (bus values) as one flat list of floats."""
    return [float(x) for v in values for x in np.ravel(v)]


def _draw(module, n: int, rng) -> list[np.ndarray]:
    """`n` points per input around its default (or 0), in every example's domain; a bus
    input's points are an array of shape (n, *its shape)."""
    return [np.asarray(module.DEFAULTS.get(name, 0.0)) + rng.uniform(-1.0, 1.0, (n, *module.SHAPES[name]))
            for name in module.INPUTS]


# -- the same numbers as the python target -----------------------------------------------------


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_batches_match_the_python_target_point_by_point(path):
    fast, slow = circuitc.load(path, target="numpy"), circuitc.load(path)
    rng = np.random.default_rng(RNG_SEED)
    n = 40
    args = _draw(fast, n, rng)
    seeds = [rng.normal(size=(n, *fast.SHAPES[out])) for out in fast.OUTPUTS]
    value, grads = fast.backward(*args, *seeds)
    forward = fast.forward(*args)
    for i in range(n):
        point = [a[i].tolist() for a in args]  # a float, or nested lists for a bus
        want_value, want_grads = slow.backward(*point, *(s[i].tolist() for s in seeds))
        got = _flat(v[i] for v in _outputs(fast, value))
        assert got == pytest.approx(_flat(_outputs(slow, want_value)), rel=1e-13, abs=1e-15)
        assert _flat(v[i] for v in _outputs(fast, forward)) == got
        assert _flat(g[i] for g in grads) == pytest.approx(_flat(want_grads), rel=1e-12, abs=1e-14)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_examples_at_their_defaults_give_the_python_targets_floats(path):
    fast, slow = circuitc.load(path, target="numpy"), circuitc.load(path)
    point = [fast.DEFAULTS[name] for name in fast.INPUTS]
    value, grads = fast.backward(*point)
    want_value, want_grads = slow.backward(*point)
    assert _flat(_outputs(fast, value)) == pytest.approx(_flat(_outputs(slow, want_value)), rel=1e-15)
    assert _flat(grads) == pytest.approx(_flat(want_grads), rel=1e-14, abs=1e-300)
    assert all(type(g) is float for name, g in zip(fast.WRT, grads) if not fast.SHAPES[name])


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_eval_prints_the_same_with_either_target(path):
    python = run_cli("eval", path, "--json")
    numpy = run_cli("eval", path, "--json", "--target", "numpy")
    assert python.returncode == numpy.returncode == 0, numpy.stderr
    got, want = json.loads(numpy.stdout), json.loads(python.stdout)
    assert got["inputs"] == want["inputs"] and got["outputs"] == pytest.approx(want["outputs"])
    for out, grads in want["gradients"].items():
        for name, grad in grads.items():  # nested lists for a bus
            assert np.ravel(got["gradients"][out][name]) == pytest.approx(np.ravel(grad), rel=1e-14)


def test_textbook_neuron_through_the_command_line():
    """The python target's numbers, to the last bits that NumPy's own `exp` may round
    otherwise than `math`'s on some CPUs (numbers.md)."""
    result = run_cli("eval", CIRCUITS / "neuron.circ", "--target", "numpy")
    assert result.returncode == 0, result.stderr
    want = ("f = 0.8807970779778823\n"
            "  df/da = -0.10499358540350662\n"
            "  df/db = 0.31498075621051985\n"
            "  df/dc = 0.10499358540350662\n"
            "  df/dx = 0.10499358540350662\n"
            "  df/dy = 0.20998717080701323\n")
    lines = [line.split(" = ") for line in result.stdout.splitlines()]
    assert [name for name, _ in lines] == [line.split(" = ")[0] for line in want.splitlines()]
    assert [float(v) for _, v in lines] == pytest.approx(
        [float(line.split(" = ")[1]) for line in want.splitlines()], rel=1e-15)


def _gate_text(name: str) -> str:
    gate = GATES[name]
    if gate.callable:
        return f"f = {name}({', '.join('xyz'[: gate.arity])})"
    return f"f = x {gate.operator} y" if gate.arity == 2 else f"f = {gate.operator}x"


# Zeros, ties, signs, and points where some gates leave their domain.
GRID = [-1.5, -0.7, 0.0, 0.3, 1.0, 1.4]


@pytest.mark.parametrize("name", [n for n, g in GATES.items() if g.callable or g.operator])
def test_every_gate_matches_the_python_target_elementwise(name):
    """Where the python target answers, the batch gives the same numbers (kinks and ties
    included); where it raises a domain error, so does the numpy target at that point."""
    arity = GATES[name].arity
    fast, slow = _numpy(_gate_text(name), "g.circ"), load_source(_gate_text(name), "g.circ")
    good, bad = [], []
    for point in itertools.product(GRID, repeat=arity):
        try:
            good.append((point, slow.backward(*point)))
        except (ArithmeticError, ValueError) as e:
            bad.append((point, str(e).split(": ")[0]))  # the gate's place, and its label
    columns = [np.array([p[k] for p, _ in good]) for k in range(arity)]
    value, grads = fast.backward(*columns)
    # NumPy's transcendental functions may differ from `math`'s in the last bit.
    assert value == pytest.approx([v for _, (v, _) in good], rel=1e-15, abs=1e-300)
    for k in range(arity):
        assert grads[k] == pytest.approx([g[k] for _, (_, g) in good], rel=4e-15, abs=1e-300)
    for point, where in bad:
        with pytest.raises(FloatingPointError, match="^" + re.escape(where + ": ")):
            fast.backward(*point)


def test_max_and_min_split_ties_in_half_elementwise():
    m = _numpy("f = max(x, y) + min(x, y)\ng = relu(x) + abs(y)\noutput f, g")
    x, y = np.array([1.0, 2.0, 0.0, -3.0]), np.array([1.0, 1.0, 0.0, -3.0])
    _, (dx, dy) = m.backward(x, y, 1.0, 0.0)
    assert dx.tolist() == [1.0, 1.0, 1.0, 1.0]  # half from each at a tie, else all from one
    assert dy.tolist() == [1.0, 1.0, 1.0, 1.0]
    _, (dx, dy) = _numpy("f = max(x, y)").backward(x, y)
    assert dx.tolist() == [0.5, 1.0, 0.5, 0.5] and dy.tolist() == [0.5, 0.0, 0.5, 0.5]
    _, (dx, dy) = _numpy("f = min(x, y)").backward(x, y)
    assert dx.tolist() == [0.5, 0.0, 0.5, 0.5] and dy.tolist() == [0.5, 1.0, 0.5, 0.5]
    _, (dx, dy) = m.backward(x, y, 0.0, 1.0)
    assert dx.tolist() == [1.0, 1.0, 0.0, 0.0] and dy.tolist() == [1.0, 1.0, 0.0, -1.0]


# -- broadcasting and shapes -------------------------------------------------------------------

SHAPES = [((), ()), ((5,), ()), ((), (5,)), ((5,), (5,)), ((5, 1), (1, 4)), ((3, 1, 2), (4, 1)),
          ((1,), (6,)), ((0,), ()), ((0,), (3, 1)), ((2, 0), (1,)), ((1, 1), ())]


@pytest.mark.parametrize(("xs", "ys"), SHAPES)
def test_values_broadcast_and_gradients_sum_to_their_inputs_shapes(xs, ys):
    m = _numpy("input x, y, w\nf = w * sin(x) * y + x / (1 + y**2)\n")
    rng = np.random.default_rng(RNG_SEED)
    x, y, w = rng.normal(size=xs), rng.normal(size=ys), 1.5
    shape = np.broadcast_shapes(xs, ys)
    value, (dx, dy, dw) = m.backward(x, y, w)
    assert np.shape(value) == shape and np.shape(m.forward(x, y, w)) == shape
    assert (np.shape(dx), np.shape(dy), np.shape(dw)) == (xs, ys, ())
    # The gradient of each input is the sum of the per-element gradients it took part in.
    full = [np.broadcast_to(v, shape).copy() for v in (x, y, np.float64(w))]
    _, (fx, fy, fw) = m.backward(*full)
    assert np.shape(fx) == shape and np.shape(fw) == shape
    for got, per_element, s in ((dx, fx, xs), (dy, fy, ys), (dw, fw, ())):
        summed = np.asarray(per_element).sum(axis=tuple(range(len(shape) - len(s))))
        summed = summed.sum(axis=tuple(i for i, n in enumerate(s) if n == 1), keepdims=True)
        np.testing.assert_allclose(got, summed.reshape(s), rtol=1e-13, atol=1e-13)


def test_scalars_in_scalars_out():
    m = circuitc.load(CIRCUITS / "svm_loss.circ", target="numpy")
    value, grads = m.backward(*(m.DEFAULTS[name] for name in m.INPUTS))
    for number in (*value, *grads, m.forward(1, 2, 3, 4, 5, 6, 7)[0]):
        assert type(number) is float
    integers = m.backward(1, 2, 3, 4, 5, 6, 7)  # integers are computed as floats
    assert integers == m.backward(1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0)
    zero_d = m.backward(*(np.array(m.DEFAULTS[name]) for name in m.INPUTS))
    assert zero_d == (value, grads) and type(zero_d[0][0]) is float


def test_a_scalar_weight_gets_the_gradient_summed_over_the_batch():
    m = circuitc.load(CIRCUITS / "neuron.circ", target="numpy")
    slow = circuitc.load(CIRCUITS / "neuron.circ")
    rng = np.random.default_rng(RNG_SEED)
    x, y = rng.normal(size=100), rng.normal(size=100)
    _, (da, db, dc, dx, dy) = m.backward(1.0, 2.0, -3.0, x, y)
    per_point = np.array([slow.backward(1.0, 2.0, -3.0, xi, yi)[1] for xi, yi in zip(x, y)])
    assert [da, db, dc] == pytest.approx(per_point[:, :3].sum(axis=0), rel=1e-12)
    assert dx == pytest.approx(per_point[:, 3], rel=1e-13)
    assert dy == pytest.approx(per_point[:, 4], rel=1e-13)


def test_outputs_have_the_shape_of_all_inputs_even_when_constant():
    m = _numpy("input x, y\nf = 3\ng = 2 * x\noutput f, g\n")
    (f, g), (dx, dy) = m.backward(np.ones(3), np.zeros((2, 1)))
    assert f.shape == g.shape == (2, 3) and (f == 3).all()
    assert dx.tolist() == [4.0, 4.0, 4.0] and dy.tolist() == [[0.0], [0.0]]


def test_seeds_broadcast_against_their_outputs():
    m = _numpy("f = x * y")
    x, y = np.arange(3.0), 2.0
    _, (dx, dy) = m.backward(x, y, d_f=np.array([1.0, 10.0, 100.0]))
    assert dx.tolist() == [2.0, 20.0, 200.0] and dy == 0 * 1 + 1 * 10 + 2 * 100
    _, (dx, dy) = m.backward(1.0, 2.0, d_f=np.ones(4))  # a batch of seeds on scalar inputs
    assert (dx, dy) == (8.0, 4.0)


def test_incompatible_shapes_are_numpys_error():
    with pytest.raises(ValueError, match="broadcast"):
        _numpy("f = x * y").forward(np.ones(3), np.ones(4))


# -- numerical care ----------------------------------------------------------------------------

def test_stable_gates_at_huge_inputs_without_any_warning():
    m = _numpy("f = sigmoid(x)\ng = softplus(x)\nh = tanh(x)\noutput f, g, h\n")
    x = np.array([-1e308, -1000.0, -745.0, -40.0, 0.0, 40.0, 745.0, 1000.0, 1e308])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):  # no floating-point event escapes the module either
            (f, g, h), _ = m.backward(x, 1.0, 1.0, 1.0)
            grads = [m.backward(x, *seeds)[1][0] for seeds in np.eye(3)]
    assert f[[0, 1, 4, 7, 8]].tolist() == [0.0, 0.0, 0.5, 1.0, 1.0]
    assert g[[0, 1, 7, 8]].tolist() == [0.0, 0.0, 1000.0, 1e308]
    assert h[[0, 1, 7, 8]].tolist() == [-1.0, -1.0, 1.0, 1.0]
    assert all(np.isfinite(d).all() for d in grads)
    assert grads[0][[1, 7]].tolist() == [0.0, 0.0] and grads[1][[1, 7]].tolist() == [0.0, 1.0]
    slow = load_source("f = sigmoid(x)\ng = softplus(x)\nh = tanh(x)\noutput f, g, h\n")
    # The tails' tiny values too, to full relative precision where they are normal numbers;
    # below, NumPy's `exp` and `math`'s may round a subnormal differently (numbers.md).
    for i, xi in enumerate(x):
        assert [f[i], g[i], h[i]] == pytest.approx(slow.forward(float(xi)), rel=1e-15, abs=1e-320)


@pytest.mark.parametrize(("text", "args", "where"), [
    ("input x\ny = 1 + x\nf = log(y)\n", ([1.0, -5.0],), "bad.circ:3:5: in 'log'"),
    ("f = log(x)", ([1.0, 0.0],), "bad.circ:1:5: in 'log'"),
    ("f = sqrt(x)", ([4.0, -1.0],), "bad.circ:1:5: in 'sqrt'"),
    ("f = x / y", ([1.0, 1.0], [2.0, 0.0]), "bad.circ:1:7: in '/'"),
    ("f = exp(x)", ([1.0, 1000.0],), "bad.circ:1:5: in 'exp'"),
    ("f = x * y", ([2.0, 1e300], [3.0, 1e300]), "bad.circ:1:7: in '\\*'"),
    ("f = pow(x, 0.5)", ([4.0, -1.0],), "bad.circ:1:5: in 'pow'"),
    ("gate safe(u) = log(u)\nf = safe(x)\n", ([1.0, 0.0],),
     "bad.circ:2:5: in call of 'safe': bad.circ:1:16: in 'log'"),
])
def test_domain_errors_anywhere_in_a_batch_name_the_gate(text, args, where):
    m = _numpy(text, "bad.circ")
    for function in (m.forward, m.backward):
        with pytest.raises(FloatingPointError, match="^" + where):
            function(*map(np.array, args))
    m.forward(*(np.array(a[:1]) for a in args))  # the good point alone is fine


def test_gradient_domain_errors_name_the_gradient_and_underflow_is_no_error():
    m = _numpy("f = sqrt(x)", "bad.circ")
    assert m.forward(np.zeros(2)).tolist() == [0.0, 0.0]
    with pytest.raises(FloatingPointError, match="^bad.circ:1:5: in the gradient of 'sqrt'"):
        m.backward(np.zeros(2))
    assert _numpy("f = exp(x) * y").forward(-1000.0, 1e-300) == 0.0


def test_the_sum_of_a_fanned_out_inputs_gradient_names_a_gate_it_comes_from():
    m = _numpy("input a, b, x\nf = a*x + b*x\n", "bad.circ")
    with pytest.raises(FloatingPointError, match=r"^bad.circ:2:(6|12): in the gradient of '\*': overflow"):
        m.backward(1e308, 1e308, 1e-10)
    source = circuitc.compile_source("input a, b, x\nf = a*x + b*x\n", "bad.circ", "numpy")
    assert all(line.endswith("# line 2") for line in source.split("with np.errstate")[-1]
               .split("except")[0].splitlines()[1:-1] if not line.lstrip().startswith("del"))


def test_a_gradient_that_overflows_as_it_is_summed_to_its_inputs_shape_is_an_error():
    m = _numpy("input a, b, x\nf = a*x + b*x\n", "bad.circ")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an error, not inf and a RuntimeWarning
        with pytest.raises(FloatingPointError, match=r"^bad.circ:2:(6|12): in the gradient of '\*': overflow"):
            m.backward(1e-300, 1e-300, np.array([1e308, 1e308]))
        with pytest.raises(FloatingPointError, match="overflow"):  # a seed summed for a scalar input
            _numpy("f = x + y").backward(1.0, np.ones(2), np.array([1e308, 1e308]))


@pytest.mark.parametrize("text", ["f = (x + y) * z", "f = x * 1", "input x, y, z\nf = x\ng = f * 1\noutput f, g",
                                  "input x, y, z\nf = x * y\ng = f\noutput f, g, y", "f = x*y + y*z + z*x"])
def test_results_are_fresh_arrays_the_caller_may_change(text):
    m = _numpy(text)
    args = [np.arange(1.0, 4.0) for _ in m.INPUTS]
    kept = [a.copy() for a in args]
    value, grads = m.backward(*args)
    results = [*_outputs(m, value), *grads, *_outputs(m, m.forward(*args))]
    arrays = [r for r in results if isinstance(r, np.ndarray)]
    assert len(arrays) == len(results)
    for i, r in enumerate(arrays):
        assert r.flags.writeable and not any(np.shares_memory(r, a) for a in args)
        assert not any(np.shares_memory(r, other) for other in arrays[i + 1:])
        r[...] = -7.0
    assert all((a == k).all() for a, k in zip(args, kept, strict=True))


def test_the_normal_path_copies_nothing():
    source = circuitc.compile_file(CIRCUITS / "neuron.circ", target="numpy")
    assert ", True)" not in source


@pytest.mark.parametrize("expr", ["relu(x)", "max(x, y)", "min(x, y)", "x ** 0.5", "x ** y", "abs(x)"])
def test_signed_zeros_infinities_and_nan_as_the_python_target_elementwise(expr):
    special = [-0.0, 0.0, 0.5, -np.inf, np.inf, np.nan]
    xs, ys = (np.array(v) for v in zip(*itertools.product(special, repeat=2), strict=True))
    fast = _numpy(f"input x, y\nf = {expr}\n")
    slow = load_source(f"input x, y\nf = {expr}\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            values = fast.forward(xs, ys)
        except FloatingPointError:  # somewhere in the batch: compare the points one by one
            values = [_or_error(fast.forward, x, y) for x, y in zip(xs, ys, strict=True)]
    for x, y, value in zip(xs, ys, values, strict=True):
        expected = _or_error(slow.forward, float(x), float(y))
        if isinstance(expected, str):
            assert isinstance(value, str), (x, y, value)
        elif math.isfinite(expected) and expected not in (0.0, 1.0):  # `0.5 ** 0.5`: NumPy's
            assert float(value) == pytest.approx(expected, rel=1e-15), (expr, x, y)  # own pow
        else:  # the special values, bit for bit: signed zeros, infinities, nan, 1
            assert repr(float(value)) == repr(expected), (expr, x, y)


def _or_error(function, *args):
    try:
        return function(*args)
    except (ArithmeticError, ValueError) as e:
        return type(e).__name__


def test_nan_inputs_give_nan_without_an_error():
    value, (dx,) = _numpy("f = log(x) + sigmoid(x)").backward(np.array([1.0, np.nan]))
    assert np.isnan(value[1]) and np.isnan(dx[1]) and np.isfinite(value[0])


# -- the generated module ----------------------------------------------------------------------

def test_module_imports_only_numpy_and_keeps_the_interface():
    source = circuitc.compile_file(CIRCUITS / "neuron.circ", target="numpy")
    imports = [node for node in ast.walk(ast.parse(source))
               if isinstance(node, (ast.Import, ast.ImportFrom))]
    assert [(a.name, a.asname) for node in imports for a in node.names] == [("numpy", "np")]
    assert "for NumPy" in source.splitlines()[0]
    fast, slow = circuitc.load(CIRCUITS / "neuron.circ", "numpy"), circuitc.load(CIRCUITS / "neuron.circ")
    for name in ("INPUTS", "OUTPUTS", "DEFAULTS"):
        assert getattr(fast, name) == getattr(slow, name)


def test_same_line_per_gate_layout_and_dead_arrays_are_freed():
    source = circuitc.compile_file(CIRCUITS / "neuron.circ", target="numpy")
    backward = source.split("def backward")[1].split("\n\n\n")[0]
    assert "            s = t3 + c  # " in backward
    assert backward.count("_sigmoid(") == 1
    assert "            del s\n" in backward  # s is dead once f is known
    assert "d_a = _unbroadcast(d_s * x, a.shape)" in backward  # summed as soon as it is known
    assert "            d_c = _unbroadcast(d_s, c.shape)  # line 5\n" in backward  # under np.errstate
    assert backward.rstrip().endswith("(d_a, d_b, d_c, d_x, d_y)")


def test_deterministic_and_ruff_clean(tmp_path):
    texts = [p.read_text(encoding="utf-8") for p in EXAMPLES] + [
        "f = x", "input np, lambda, _shape\nf = np * lambda + _shape\n", "f = 1e999 * x - 1e999",
        "input x = 1e999\nf = x", "f = relu(x) + abs(y) + max(x, y) + min(x, y) + softplus(x)",
        "input x\nf = 3\n", "input d_f, f\ng = d_f * f\ny = g * g\noutput y, g\n"]
    for i, text in enumerate(texts):
        source = circuitc.compile_source(text, f"m{i}.circ", "numpy")
        assert source == circuitc.compile_source(text, f"m{i}.circ", "numpy")
        (tmp_path / f"m{i}.py").write_text(source, encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", str(tmp_path)],
                            check=False, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_every_helper_the_gate_table_names_exists():
    from circuitc.emit import numpy_helpers
    from circuitc.emit.numpy import HELPER_SOURCES

    named = {g.numpy.helper for g in GATES.values() if g.numpy.helper}
    assert named and named <= set(HELPER_SOURCES)
    assert all(callable(getattr(numpy_helpers, name)) for name in HELPER_SOURCES)


def test_names_the_numpy_module_uses_are_renamed():
    m = _numpy("input np, lambda, _shape, x\nf = np * lambda + _shape * x\n")
    assert m.INPUTS == ("np", "lambda", "_shape", "x")
    value, grads = m.backward(2, 3, 4, np.arange(2.0))
    assert value.tolist() == [6.0, 10.0]
    assert [np.ndim(g) for g in grads] == [0, 0, 0, 1]
    assert [float(g) for g in grads[:3]] == [6.0, 4.0, 1.0] and grads[3].tolist() == [4.0, 4.0]


def test_a_seed_that_shares_its_adjoints_name_is_not_freed_too_early():
    m = _numpy("input x, y\nscore = x * y\nloss = score * score\noutput loss, score\n")
    slow = load_source("input x, y\nscore = x * y\nloss = score * score\noutput loss, score\n")
    assert m.backward(2.0, 3.0, 1.0, 10.0) == slow.backward(2.0, 3.0, 1.0, 10.0)


# -- API and command line ----------------------------------------------------------------------

def test_unknown_target_is_an_error():
    with pytest.raises(ValueError, match="unknown target 'jax'"):
        circuitc.compile_source("f = x", target="jax")
    result = run_cli("compile", CIRCUITS / "neuron.circ", "--target", "jax")
    assert result.returncode == 2 and "jax" in result.stderr and "Traceback" not in result.stderr


def test_compile_target_numpy_writes_the_module(tmp_path):
    result = run_cli("compile", CIRCUITS / "neuron.circ", "--target", "numpy", "-o", "-")
    assert result.returncode == 0
    assert result.stdout == circuitc.compile_file(CIRCUITS / "neuron.circ", target="numpy")
    out = tmp_path / "neuron_np.py"
    assert run_cli("compile", CIRCUITS / "neuron.circ", "--target", "numpy", "-o", out).returncode == 0
    assert out.read_text(encoding="utf-8") == result.stdout


def test_eval_target_numpy_reports_domain_errors_cleanly(tmp_path):
    circ = tmp_path / "bad.circ"
    circ.write_text("input x = -1\nf = log(x)\n", encoding="utf-8")
    result = run_cli("eval", circ, "--target", "numpy")
    assert result.returncode == 2
    assert "in 'log'" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_verify_checks_the_numpy_module(path):
    result = run_cli("verify", path, "--target", "numpy", "--points", "3")
    assert result.returncode == 0, result.stdout
    assert ": OK: " in result.stdout and "np." not in result.stdout  # plain floats in the table


def test_numpy_erf_and_erfc_are_within_a_few_ulps_of_math():
    """NumPy has no erf: the module's own, over the three ranges of its approximations and
    their ends, the tails where erfc is subnormal and beyond, signed zeros, inf and nan."""
    from circuitc.emit.numpy import ERRSTATE, HELPER_SOURCES

    namespace = {"np": np}
    exec(HELPER_SOURCES["_erf"], namespace)  # noqa: S102 (as a generated module carries it)
    erf, errstate = namespace["_erf"], eval(ERRSTATE, namespace)
    ends = np.array([0.46875, 4.0, 26.0, 26.6, 27.0, 30.0])
    x = np.concatenate([np.linspace(-30, 30, 60001), np.geomspace(1e-300, 1, 301),
                        ends, np.nextafter(ends, 0), np.nextafter(ends, 60)])
    x = np.concatenate([x, -x, [0.0, -0.0, 1e300, -1e300, np.inf, -np.inf]])
    with errstate:  # what generated code runs under: no finite input may warn
        for complement, reference, worst in ((False, math.erf, 4), (True, math.erfc, 7)):
            want = np.array([reference(v) for v in x])
            got = erf(x, complement)
            ulps = np.abs(got - want) / np.spacing(np.abs(want))
            assert ulps.max() <= worst, (complement, x[np.argmax(ulps)])
            assert np.array_equal(np.signbit(got), np.signbit(want))
            assert np.isnan(erf(np.nan, complement))
            assert erf(0.5, complement) == erf(np.array([0.5]), complement)[0]
