"""`dtype="float32"` for the numpy target: every array a module returns is float32.

Random bus circuits (the generator of tests/test_buses_oracle.py) and the examples are
compiled whole-bus and written out, with `jvp` and `hessian`; every result of `forward`,
`backward`, `jvp`, `hvp` and `sparse_hessian` on a batch must be a float32 array (a
value of shape `()` a Python float, as the contract has it, equal to its float32
rounding), and agree with the float64 module to float32's precision. The python target
refuses float32 with a clear error, in the API and on the command line.
"""

from __future__ import annotations

import types
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import circuitc
from conftest import run_cli
from strategies import BUS_SETTINGS, bus_circuits, bus_text
from whitelist import check_module

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ["examples/mlp.circ", "examples/spiral.circ", "examples/moons.circ",
            "examples/svm.circ", "examples/logistic.circ", "circuits/rosenbrock.circ",
            "circuits/two_layer.circ", "benchmarks/softmax.circ"]


def _load(text: str, **options) -> types.ModuleType:
    module = types.ModuleType("circuit")
    source = circuitc.compile_source(text, "c.circ", "numpy", jvp=True, hessian=True, **options)
    exec(compile(source, "c.py", "exec"), module.__dict__)  # noqa: S102
    return module


def _leaves(result, path: str = ""):
    """Each number or array in a function's (nested tuple) result, with where it is."""
    if isinstance(result, tuple):
        for k, item in enumerate(result):
            yield from _leaves(item, f"{path}[{k}]")
    else:
        yield path, result


def _results(module, rng, batch: int = 3, stretch: float = 1.0) -> dict[str, object]:
    """Every function's result at random points of float32 numbers, `batch` of them
    (unbatched when 0), the inputs multiplied by `stretch`."""
    lead = (batch,) if batch else ()

    def draw(names):
        return [rng.uniform(-1, 1, lead + tuple(module.SHAPES[n])).astype(np.float32)
                .astype(float) for n in names]

    args = [a * stretch for a in draw(module.INPUTS)]
    made = {"forward": module.forward(*args), "backward": module.backward(*args),
            "jvp": module.jvp(*args, *draw(module.INPUTS)),
            "hvp": module.hvp(*args, *draw(module.WRT))}
    if hasattr(module, "sparse_hessian") and sum(
            np.prod(module.SHAPES[n], dtype=int) for n in module.WRT) <= 400:
        made["sparse_hessian"] = module.sparse_hessian(*[a[0] if batch else a for a in args])
    return made


def _check_float32(single, double, rng_seed: int) -> None:
    for batch in (3, 0):
        try:
            got = _results(single, np.random.default_rng(rng_seed), batch)
            want = _results(double, np.random.default_rng(rng_seed), batch)
            # How far float64's results move when the inputs move by 1e-6 (some 16 float32
            # roundings): where a result is that sensitive (tan near its pole), float32's
            # rounding of what feeds it moves it as far, and the comparison allows for it.
            near = _results(double, np.random.default_rng(rng_seed), batch, 1 + 1e-6)
        except ArithmeticError:
            return  # a domain error at these points (float32 overflows sooner)
        for function, result in got.items():
            wanted, moved = dict(_leaves(want[function])), dict(_leaves(near[function]))
            for path, value in _leaves(result):
                where = f"{function}{path}"
                if isinstance(value, float):  # nan: a `where`'s branch taken outside its domain
                    assert np.float32(value) == value or np.isnan(value), where
                else:
                    assert isinstance(value, np.ndarray) and value.dtype == np.float32, \
                        f"{where}: {type(value).__name__} {getattr(value, 'dtype', '')}"
                w, v = np.asarray(wanted[path], float), np.asarray(value, float)
                scale = max(1.0, float(np.max(np.abs(w), initial=0.0)))
                slack = np.nan_to_num(10 * np.abs(w - np.asarray(moved[path], float)), nan=0.0)
                with np.errstate(invalid="ignore"):
                    close = np.abs(v - w) <= 1e-3 * np.abs(w) + 1e-3 * scale + slack
                assert np.all(close | (v == w) | np.isnan(v) & np.isnan(w)), where


# Each example whole-bus and written out; but the 784-128-10 network, 100,000 gates written out.
@pytest.mark.parametrize(("path", "elements"), [(path, elements) for path in EXAMPLES
                                                for elements in (False, True)
                                                if not (elements and "softmax" in path)])
def test_examples_stay_float32(path, elements):
    text = (ROOT / path).read_text()
    single = _load(text, elements=elements, dtype="float32")
    assert single.DTYPE == "float32"
    _check_float32(single, _load(text, elements=elements), 0)


@BUS_SETTINGS
@given(bus_circuits(), st.integers(0, 2**32 - 1), st.booleans())
def test_random_bus_circuits_stay_float32(c, seed, elements):
    text = bus_text(c)
    try:
        double = _load(text, elements=elements)
    except circuitc.CircuitError:
        return  # a constant domain error
    try:
        _check_float32(_load(text, elements=elements, dtype="float32"), double, seed)
    except AssertionError as e:
        raise AssertionError(f"{e}\nbus circuit:\n{text}") from None


def test_float64_is_the_default_and_said():
    text = (ROOT / "examples/mlp.circ").read_text()
    assert _load(text).DTYPE == "float64"
    assert circuitc.compile_source(text, "m.circ", "numpy") == circuitc.compile_source(
        text, "m.circ", "numpy", dtype="float64")


def test_constants_and_indicators_do_not_promote():
    # `x**y` (np.float_power computes in float64), a step's 0/1 (np.where of two floats),
    # an index variable's values (np.arange), a large constant and a where between constants
    # all stay float32.
    text = ("size n = 4\ninput x[n], y\n"
            "f[i] = x[i]**y + relu(x[i]) * i + 1e30 * x[i] / 1e30 + where(y > 2, 0.5, 2) * x[i]\n"
            "g = sum(f[i] for i)\noutput f, g\n")
    module = _load(text, dtype="float32")
    for elements in (False, True):
        check_module(circuitc.compile_source(text, "c.circ", "numpy", elements=elements,
                                             dtype="float32"), "numpy", not elements)
    x = np.linspace(0.5, 2, 4)
    (f, g), (dx, dy) = module.backward(np.stack([x, x]), np.array([2.0, 3.0]))
    assert {f.dtype, g.dtype, dx.dtype, dy.dtype} == {np.dtype(np.float32)}
    assert np.allclose(f[0], x**2 + x * np.arange(4) + x + 2 * x, rtol=1e-6)
    assert np.allclose(f[1], x**3 + x * np.arange(4) + x + 0.5 * x, rtol=1e-6)


def test_the_cache_keys_the_dtype(tmp_path):
    circuit = tmp_path / "c.circ"
    circuit.write_text("input x\nf = x * x\n")
    single = circuitc.load(circuit, "numpy", dtype="float32")
    double = circuitc.load(circuit, "numpy")
    assert (single.DTYPE, double.DTYPE) == ("float32", "float64")


def test_the_python_target_refuses_float32():
    text = "input x\nf = x * x\n"
    with pytest.raises(ValueError, match="python target computes in float64 only .*numpy"):
        circuitc.compile_source(text, "c.circ", "python", dtype="float32")
    with pytest.raises(ValueError, match="unknown dtype 'float16'"):
        circuitc.compile_source(text, "c.circ", "numpy", dtype="float16")


def test_cli_dtype(tmp_path):
    circuit = tmp_path / "c.circ"
    circuit.write_text("input x, y\nf = x * y + 1\n")
    out = tmp_path / "c.py"
    done = run_cli("compile", circuit, "--target", "numpy", "--dtype", "float32", "-o", out)
    assert done.returncode == 0, done.stderr
    assert 'DTYPE = "float32"' in out.read_text()
    refused = run_cli("compile", circuit, "--dtype", "float32", "-o", tmp_path / "p.py")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "python target computes in float64 only" in refused.stderr
    assert "float32 needs the numpy target" in refused.stderr
    assert not (tmp_path / "p.py").exists()
    evaluated = run_cli("eval", circuit, "x=2", "y=3", "--target", "numpy", "--dtype", "float32")
    assert evaluated.returncode == 0, evaluated.stderr
    assert "f = 7.0" in evaluated.stdout


@pytest.mark.parametrize("path", ["examples/mlp.circ", "examples/moons.circ",
                                  "examples/logistic.circ", "circuits/rosenbrock.circ"])
def test_verify_passes_a_float32_module_with_float32_steps(path):
    done = run_cli("verify", ROOT / path, "--target", "numpy", "--dtype", "float32",
                   "--points", "3", "-q")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    assert "rtol 0.005, atol 0.005" in done.stdout  # float32's tolerances, not float64's
    second = run_cli("verify", ROOT / path, "--target", "numpy", "--dtype", "float32",
                     "--points", "1", "--order", "2", "-q")
    assert second.returncode == 0, second.stdout[-2000:] + second.stderr


def test_verify_fails_a_float32_module_with_a_wrong_gradient(tmp_path):
    circuit = tmp_path / "c.circ"
    circuit.write_text("input x = 1.5, y = -0.5\nf = tanh(x * y) + x\n")
    module = tmp_path / "m.py"
    assert run_cli("compile", circuit, "--target", "numpy", "--dtype", "float32",
                   "-o", module).returncode == 0
    right = run_cli("verify", circuit, "--module", module, "--points", "3")
    assert right.returncode == 0, right.stdout + right.stderr
    source = module.read_text()
    wrong = source.replace("d_x = ", "d_x = 1.05 * ", 1)  # five percent off
    assert wrong != source
    module.write_text(wrong)
    failed = run_cli("verify", circuit, "--module", module, "--points", "3")
    assert failed.returncode == 1 and "FAIL" in failed.stdout, failed.stdout + failed.stderr
    refused = run_cli("verify", module, "--dtype", "float32")
    assert refused.returncode == 2 and "--dtype compiles a circuit" in refused.stderr
