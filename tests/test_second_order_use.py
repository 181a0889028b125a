"""Second order as users meet it: `eval --hessian` through the installed command, Newton
steps on Rosenbrock's function, `circuitc.objective` in `scipy.optimize.minimize`
(`hess` from the python target, `hessp` from the numpy target's `hvp`), `--wrt`/`--fix`
cutting the Hessian down to the `WRT` elements, modules that did not ask for second
order unchanged, and `examples/rosenbrock.py`."""

from __future__ import annotations

import importlib.util
import itertools
import json
import subprocess
import sys

import numpy as np
import pytest

import circuitc
from circuitc.api import elementwise
from conftest import CIRCUITS, EXAMPLES, ROOT, run_cli

ROSENBROCK = CIRCUITS / "rosenbrock.circ"


def rosenbrock_hessian(x):
    """The Hessian of sum(100*(x[i+1] - x[i]**2)**2 + (1 - x[i])**2), written out."""
    n = len(x)
    h = np.zeros((n, n))
    for i in range(n - 1):
        h[i, i] += 1200 * x[i] ** 2 - 400 * x[i + 1] + 2
        h[i + 1, i + 1] += 200
        h[i, i + 1] = h[i + 1, i] = -400 * x[i]
    return h


def test_eval_hessian_json_through_the_installed_command(tmp_path):
    result = run_cli("eval", ROSENBROCK, "-D", "n=2", "x=[-1.2,1]", "--hessian", "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["hessian"] == {"f": [[1330.0, 480.0], [480.0, 200.0]]}
    assert document["gradients"]["f"]["x"] == pytest.approx([-215.6, -88.0], rel=1e-14)
    # A bus output has a Hessian per element, over the WRT elements only (x, then y).
    circuit = tmp_path / "layer.circ"
    circuit.write_text("input x[2], y, W[2, 2]\nh[i] = tanh(sum(W[i, j] * x[j] for j) + y)\n"
                       "f = sum(h[i] * h[i] for i)\noutput f, h\n")
    result = run_cli("eval", circuit, "x=[0.5,-1]", "y=0.25", "W=[[1,2],[-3,0.5]]", "--wrt", "x,y",
                     "--hessian", "--json")
    assert result.returncode == 0, result.stderr
    hessian = json.loads(result.stdout)["hessian"]
    module = elementwise(circuitc.load(circuit, hessian=True, wrt=["x", "y"]))
    args = [0.5, -1.0, 0.25, 1.0, 2.0, -3.0, 0.5]
    assert list(hessian) == ["f", "h[0]", "h[1]"]
    for k, out in enumerate(hessian):
        seeds = [float(j == k) for j in range(3)]
        assert hessian[out] == [list(row) for row in module.hessian(*args, *seeds)[2]]
        assert len(hessian[out]) == 3 and all(len(row) == 3 for row in hessian[out])


def test_eval_hessian_asks_for_the_python_or_numba_target():
    result = run_cli("eval", ROSENBROCK, "--hessian", "--target", "numpy")
    assert result.returncode == 2
    assert "--hessian needs the python or numba target" in result.stderr
    assert "Traceback" not in result.stderr


def test_newton_steps_take_rosenbrock_to_its_minimum():
    result = run_cli("step", ROSENBROCK, "-D", "n=2", "x=[-1.2,1]", "--method", "newton",
                     "--minimize", "--steps", "40", "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    after = document["after"]["inputs"]
    assert abs(after["x[0]"] - 1.0) <= 1e-8 and abs(after["x[1]"] - 1.0) <= 1e-8, after
    history = document["history"]
    assert all(b <= a for a, b in itertools.pairwise(history))  # a descent method
    assert next(k for k, f in enumerate(history) if f <= 1e-16) < 40


def test_objective_with_scipy_trust_exact_and_newton_cg(tmp_path):
    optimize = pytest.importorskip("scipy.optimize")
    circuit = tmp_path / "fit.circ"
    # A bus to move and a scalar to keep: minimum at w = (a, 2a) for a fixed `a`.
    circuit.write_text("input w[2] = [3, -1], a = 0.5\n"
                       "f = (w[0] - a)**4 + (w[1] - 2*w[0])**2 + cosh_like(w[1])\n"
                       .replace("cosh_like(w[1])", "0.1 * log(1 + (w[1] - 2*a)**2)"))
    python = circuitc.load(circuit, hessian=True, fix=["a"])
    batch = circuitc.load(circuit, "numpy", hessian=True, fix=["a"])
    problem = circuitc.objective(python, at={"a": 0.5})
    assert set(problem) == {"fun", "x0", "jac", "hess"}
    assert problem["x0"].tolist() == [3.0, -1.0]
    numpy_problem = circuitc.objective(batch, at={"a": 0.5})
    assert set(numpy_problem) == {"fun", "x0", "jac", "hessp"}
    x = np.array([0.3, -0.2])
    h = problem["hess"](x)
    for p in ([1.0, 0.0], [0.0, 1.0], [0.7, -1.3]):
        assert numpy_problem["hessp"](x, np.array(p)) == pytest.approx(h @ p, rel=1e-13)
    for method, kwargs in (("trust-exact", problem), ("Newton-CG", problem),
                           ("Newton-CG", numpy_problem), ("trust-krylov", numpy_problem)):
        result = optimize.minimize(**kwargs, method=method, options={"gtol": 1e-10}
                                   if method.startswith("trust") else {"xtol": 1e-12})
        assert result.x == pytest.approx([0.5, 1.0], abs=1e-3), (method, result)
        assert np.abs(kwargs["jac"](result.x)).max() < 1e-6, method


def test_objective_of_a_circuit_of_numbers_only(tmp_path):
    # Every input of WRT a number: the point's values are floats already when the
    # objective assembles the module's arguments (a regression: it took them for arrays).
    optimize = pytest.importorskip("scipy.optimize")
    circuit = tmp_path / "bowl.circ"
    circuit.write_text("input x = 2, y = -1\nf = (x - 1)**2 + 3 * (y - x)**2\n")
    problem = circuitc.objective(circuitc.load(circuit, hessian=True))
    assert problem["fun"](np.array([1.0, 1.0])) == 0.0
    assert problem["hess"](np.array([0.0, 0.0])).tolist() == [[8.0, -6.0], [-6.0, 6.0]]
    result = optimize.minimize(**problem, method="trust-exact")
    assert result.x == pytest.approx([1.0, 1.0], abs=1e-8)


def test_objective_newton_on_rosenbrock_matches_scipys_derivatives():
    optimize = pytest.importorskip("scipy.optimize")
    module = circuitc.load(ROSENBROCK, sizes={"n": 5}, hessian=True)
    problem = circuitc.objective(module)
    x = np.array([-1.2, 1.0, 0.3, 2.0, -0.5])
    assert problem["fun"](x) == pytest.approx(optimize.rosen(x), rel=1e-15)
    assert problem["jac"](x) == pytest.approx(optimize.rosen_der(x), rel=1e-14)
    assert problem["hess"](x) == pytest.approx(optimize.rosen_hess(x), rel=1e-14)
    assert problem["hess"](x) == pytest.approx(rosenbrock_hessian(x), rel=1e-14)
    result = optimize.minimize(**problem, method="trust-exact")
    assert result.success and result.x == pytest.approx(np.ones(5), abs=1e-6)


@pytest.mark.parametrize(("wrt", "fix"), [(["x", "z"], None), (None, ["y"]), (["z", "x"], None),
                                          (["y"], None)])
def test_wrt_and_fix_cut_the_hessian_down_to_the_wrt_elements(tmp_path, wrt, fix):
    circuit = tmp_path / "three.circ"
    circuit.write_text("input x[2], y, z\nf = sin(x[0] * y) * exp(z * x[1]) + y * y * z\n")
    full = elementwise(circuitc.load(circuit, hessian=True))
    part = elementwise(circuitc.load(circuit, hessian=True, wrt=wrt, fix=fix))
    point = [0.3, -0.8, 1.1, 0.6]
    index = {name: k for k, name in enumerate(full.WRT)}
    chosen = [index[e] for e in part.WRT]
    assert len(part.WRT) == len(chosen) < len(full.WRT)
    h_full, h_part = full.hessian(*point, 1.0)[2], part.hessian(*point, 1.0)[2]
    assert h_part == tuple(tuple(h_full[i][j] for j in chosen) for i in chosen)
    v = [0.5 * (k + 1) for k in range(len(chosen))]
    hv = part.hvp(*point, *v, 1.0)[2]
    assert hv == pytest.approx([sum(h_part[i][j] * v[j] for j in range(len(v))) for i in range(len(v))],
                               rel=1e-14)
    flags = ["--wrt", ",".join(wrt)] if wrt else ["--fix", ",".join(fix)]
    result = run_cli("eval", circuit, "x=[0.3,-0.8]", "y=1.1", "z=0.6", *flags, "--hessian", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["hessian"]["f"] == [list(row) for row in h_part]


CIRCUIT_FILES = [*EXAMPLES, *sorted((ROOT / "examples").glob("*.circ"))]


@pytest.mark.parametrize("target", ["python", "numpy"])
@pytest.mark.parametrize("path", CIRCUIT_FILES, ids=[p.name for p in CIRCUIT_FILES])
def test_second_order_only_adds_to_a_module(path, target):
    """Without hessian/jvp a module is what it was; with them, what it was plus the new
    functions (and `HESSIAN_PATTERN`), its own functions unchanged, in whole-bus code
    as in the written-out module."""
    text = path.read_text()
    plain = circuitc.compile_source(text, path.name, target)
    assert plain == circuitc.compile_source(text, path.name, target, hessian=False, jvp=False)
    assert "def hvp" not in plain and "def jvp" not in plain and "HESSIAN_PATTERN" not in plain
    extended = circuitc.compile_source(text, path.name, target, hessian=True, jvp=True)
    assert extended == circuitc.compile_source(text, path.name, target, hessian=True, jvp=True)
    for function in ("def forward(", "def backward("):
        block = plain[plain.index(function):].split("\n\n\n")[0]
        assert block in extended, function
    assert ("def hessian(" in extended) == (target == "python")


def test_compile_without_second_order_flags_is_the_api_default(tmp_path):
    out = tmp_path / "rosenbrock.py"
    result = run_cli("compile", ROSENBROCK, "-o", out)
    assert result.returncode == 0, result.stderr
    assert out.read_text() == circuitc.compile_file(ROSENBROCK)
    result = run_cli("compile", ROSENBROCK, "-o", out, "--hessian", "--jvp")
    assert result.returncode == 0, result.stderr
    assert out.read_text() == circuitc.compile_file(ROSENBROCK, hessian=True, jvp=True)
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", str(out)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_rosenbrock_example_runs_and_matches_scipy():
    pytest.importorskip("scipy")
    script = ROOT / "examples" / "rosenbrock.py"
    result = subprocess.run([sys.executable, script], capture_output=True, text=True, check=False,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert "trust-exact" in result.stdout and "Newton-CG" in result.stdout
    spec = importlib.util.spec_from_file_location("rosenbrock_example", script)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    assert example.compare("trust-exact") <= 1e-12


def test_objective_sparse_hessian_of_whole_bus_code():
    optimize = pytest.importorskip("scipy.optimize")
    sparse = pytest.importorskip("scipy.sparse")
    module = circuitc.load(ROSENBROCK, "numpy", sizes={"n": 50}, hessian=True)
    problem = circuitc.objective(module, hessian="sparse")
    assert set(problem) == {"fun", "x0", "jac", "hess"}
    x = np.linspace(-1.0, 1.5, 50)
    h = problem["hess"](x)
    assert sparse.issparse(h) and h.nnz == 3 * 50 - 2
    np.testing.assert_allclose(h.toarray(), optimize.rosen_hess(x), rtol=1e-14)
    hessp = circuitc.objective(module, hessian="hvp")["hessp"]
    p = np.cos(np.arange(50.0))
    np.testing.assert_allclose(hessp(x, p), h @ p, rtol=1e-13)
    for method, options in (("Newton-CG", {"xtol": 1e-12}), ("trust-constr", {"gtol": 1e-12})):
        result = optimize.minimize(**problem, method=method, options=options)
        assert result.x == pytest.approx(np.ones(50), abs=1e-6), method
    with pytest.raises(ValueError, match="hessian must be one of"):
        circuitc.objective(module, hessian="exact")
    with pytest.raises(ValueError, match="needs the module's hessian"):
        circuitc.objective(module, hessian="dense")
