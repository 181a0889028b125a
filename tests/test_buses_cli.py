"""Buses through the installed `circuitc` command and the generated modules' contract:
JSON values, `--at`, `-D`, `--wrt`/`--fix` with bus names, and what `forward` and
`backward` take and return for buses in each target."""

from __future__ import annotations

import json
import math
import types

import numpy as np
import pytest

import circuitc
from conftest import ROOT, run_cli

SIZED = "size n = 2\ninput x[n]\nf = sum(x[i] for i)\n"


# -- -D NAME=INT --------------------------------------------------------------------


@pytest.mark.parametrize(("source", "sizes", "message"), [
    (SIZED, {"m": 3}, "-D m: the circuit declares no size of that name (sizes: n)"),
    ("input x\nf = x\n", {"m": 3},
     "-D m: the circuit declares no size of that name (it declares none)"),
    (SIZED, {"n": -1}, "-D n=-1: a size must be a non-negative integer"),
    (SIZED, {"n": 1e23}, "-D n=1e+23: a size must be a non-negative integer"),
    (SIZED, {"n": 3.0}, "-D n=3.0: a size must be a non-negative integer"),
])
def test_bad_sizes_in_the_api(source, sizes, message):
    with pytest.raises(circuitc.CircuitError) as info:
        circuitc.compile_source(source, "bad.circ", sizes=sizes)
    assert info.value.render() == f"bad.circ: error: {message}"


@pytest.mark.parametrize(("command", "source", "item", "message"), [
    ("compile", SIZED, "m=3", "-D m: the circuit declares no size of that name (sizes: n)"),
    ("eval", SIZED, "m=3", "-D m: the circuit declares no size of that name (sizes: n)"),
    ("verify", "input x\nf = x\n", "m=3",
     "-D m: the circuit declares no size of that name (it declares none)"),
    ("step", SIZED, "n=-1", "-D n=-1: a size must be a non-negative integer"),
    ("eval", SIZED, "n=9223372036854775808",
     ("2:7: error: 'x' [9223372036854775808] would have 9,223,372,036,854,775,808 elements "
      "(73,786,976,295 GB as 64-bit floats); a bus has at most 10,000,000 (80 MB)\n"
      "  input x[n]\n        ^")),
])
def test_bad_sizes_on_the_command_line(tmp_path, command, source, item, message):
    (tmp_path / "bad.circ").write_text(source)
    result = run_cli(command, "bad.circ", "-D", item, cwd=tmp_path)
    where = ":" if message[0].isdigit() else ": error: "
    assert (result.returncode, result.stderr) == (2, f"bad.circ{where}{message}\n")
    assert not (tmp_path / "bad.py").exists()


@pytest.mark.parametrize("item", ["n=x", "=3", "n", "n=1.5"])
def test_malformed_sizes_are_usage_errors(tmp_path, item):
    (tmp_path / "m.circ").write_text(SIZED)
    result = run_cli("eval", "m.circ", "x=1", "-D", item, cwd=tmp_path)
    assert result.returncode == 2
    assert f"expected NAME=INT, got {item!r}" in result.stderr and "Traceback" not in result.stderr


def test_a_size_given_twice_is_a_usage_error(tmp_path):
    (tmp_path / "m.circ").write_text(SIZED)
    result = run_cli("compile", "m.circ", "-D", "n=3", "-D", "n=4", cwd=tmp_path)
    assert result.returncode == 2
    assert "Invalid value for '-D': n is given twice (n=3, n=4)" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "m.py").exists()


def test_sizes_change_the_shapes(tmp_path):
    (tmp_path / "m.circ").write_text(SIZED)
    result = run_cli("eval", "m.circ", "x=[1, 2, 4]", "-D", "n=3", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["outputs"] == {"f": 7.0}
    assert document["gradients"] == {"f": {"x": [1.0, 1.0, 1.0]}}
    module = circuitc.load(tmp_path / "m.circ", sizes={"n": 3})
    assert module.SHAPES["x"] == (3,)
    assert math.isclose(module.forward([1, 2, 4]), 7.0)


# -- JSON values, --at, and shapes --------------------------------------------------------

LINEAR = """\
input W[2, 2], x[2] = [1, -2]
h[i] = sum(W[i, j] * x[j] for j)
s = sum(h[i] ** 2 for i)
output s, h
"""


@pytest.fixture
def linear(tmp_path):
    (tmp_path / "lin.circ").write_text(LINEAR)
    return tmp_path


def test_eval_json_has_buses_as_nested_lists(linear):
    result = run_cli("eval", "lin.circ", "W=[[1, 2], [3, 4]]", "x=[1,-2]", "--json", cwd=linear)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "inputs": {"W": [[1.0, 2.0], [3.0, 4.0]], "x": [1.0, -2.0]},
        "outputs": {"s": 34.0, "h": [-3.0, -5.0]},
        "gradients": {
            "s": {"W": [[-6.0, 12.0], [-10.0, 20.0]], "x": [-36.0, -52.0]},
            "h[0]": {"W": [[1.0, -2.0], [0.0, -0.0]], "x": [1.0, 2.0]},
            "h[1]": {"W": [[0.0, -0.0], [1.0, -2.0]], "x": [3.0, 4.0]},
        },
    }


def test_eval_text_prints_buses_and_each_elements_gradient(linear):
    result = run_cli("eval", "lin.circ", "W=[[1, 2], [3, 4]]", cwd=linear)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == (
        "s = 34.0\n"
        "  ds/dW = [[-6.0, 12.0], [-10.0, 20.0]]\n"
        "  ds/dx = [-36.0, -52.0]\n"
        "h = [-3.0, -5.0]\n"
        "  dh[0]/dW = [[1.0, -2.0], [0.0, -0.0]]\n"
        "  dh[0]/dx = [1.0, 2.0]\n"
        "  dh[1]/dW = [[0.0, -0.0], [1.0, -2.0]]\n"
        "  dh[1]/dx = [3.0, 4.0]\n")


def test_values_from_a_json_file_a_number_filling_a_bus_and_overrides(linear):
    (linear / "at.json").write_text('{"W": 2, "x": [3, 4]}')
    result = run_cli("eval", "lin.circ", "--at", "at.json", "x=[1, 0]", "--json", "--wrt", "x",
                     cwd=linear)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["inputs"] == {"W": [[2.0, 2.0], [2.0, 2.0]], "x": [1.0, 0.0]}
    assert document["outputs"] == {"s": 8.0, "h": [2.0, 2.0]}
    assert document["gradients"]["s"] == {"x": [16.0, 16.0]}


def test_what_eval_json_prints_reads_back_with_at(linear):
    first = run_cli("eval", "lin.circ", "W=[[1e999, 0], [1, 2]]", "x=[-1e999, 0]", "--json",
                    cwd=linear)
    assert first.returncode == 0, first.stderr
    document = json.loads(first.stdout)
    assert document["inputs"] == {"W": [["inf", 0.0], [1.0, 2.0]], "x": ["-inf", 0.0]}
    (linear / "at.json").write_text(json.dumps(document["inputs"]))
    again = run_cli("eval", "lin.circ", "--at", "at.json", "--json", cwd=linear)
    assert (again.returncode, again.stdout) == (0, first.stdout), again.stderr
    given = run_cli("eval", "lin.circ", 'W=[["inf", 0], [1, 2]]', 'x=["-inf", 0]', "--json",
                    cwd=linear)
    assert (given.returncode, given.stdout) == (0, first.stdout), given.stderr


@pytest.mark.parametrize(("args", "at", "message"), [
    (["W=1", "x=[1, 2, 3]"], None, "x: expected a number or a nested list of shape [2]"),
    (["W=[1, 2]"], None, "W: expected a number or a nested list of shape [2, 2]"),
    (["W=[[1, 2], [3]]"], None, "W: expected a number or a nested list of shape [2, 2]"),
    (["W=1", 'x=[1, "a"]'], None, "x: expected a number or a nested list of shape [2] of numbers"),
    (["W=1", "x=[1,"], None, "x: '[1,' is not a number or a JSON list"),
    ([], '{"W": [[1, 2]]}', "W: expected a number or a nested list of shape [2, 2]"),
    ([], '[1, 2]', "--at 'at.json': expected a JSON object of input values"),
    (["W=1"], '{"v": 1}', "no input named 'v' in at.json (inputs: W, x)"),
])
def test_values_of_the_wrong_shape_are_usage_errors(linear, args, at, message):
    if at is not None:
        (linear / "at.json").write_text(at)
        args = [*args, "--at", "at.json"]
    result = run_cli("eval", "lin.circ", *args, cwd=linear)
    assert result.returncode == 2
    assert result.stderr.endswith(f"Error: {message}\n"), result.stderr
    assert "Traceback" not in result.stderr


# -- --wrt and --fix with bus names -----------------------------------------------------

REGRESSION = """\
input x[2], y, w[2] = [0.5, -0.5], c = 0.1
s = sum(w[i] * x[i] for i) + c
loss = (s - y) ** 2
output loss
"""


@pytest.fixture
def regression(tmp_path):
    (tmp_path / "r.circ").write_text(REGRESSION)
    return tmp_path


def test_compile_with_fixed_buses_differentiates_the_rest(regression):
    result = run_cli("compile", "r.circ", "--fix", "x,y", "-o", "-", cwd=regression)
    assert result.returncode == 0, result.stderr
    assert 'WRT = ("w", "c")' in result.stdout
    module = circuitc.load(regression / "r.circ", fix=["x", "y"])
    value, grads = module.backward([1, 2], 0.3, [0.5, -0.5], 0.1)
    assert value == pytest.approx(0.49)
    assert type(grads[0]) is tuple and len(grads) == 2
    assert [*grads[0], grads[1]] == pytest.approx([-1.4, -2.8, -1.4])


def test_verify_with_fixed_buses_checks_the_rest_by_element(regression):
    result = run_cli("verify", "r.circ", "x=[1, 2]", "y=0.3", "--fix", "x,y", cwd=regression)
    assert (result.returncode, result.stderr) == (0, "")
    checked = [line.split()[0] for line in result.stdout.splitlines()
               if line.startswith("  dloss")]
    assert checked == ["dloss/dw[0]", "dloss/dw[1]", "dloss/dc"]
    fast = run_cli("verify", "r.circ", "x=[1, 2]", "y=0.3", "--wrt", "w", "--fast",
                   "--points", "2", cwd=regression)
    assert (fast.returncode, fast.stderr) == (0, "")
    assert "keeping x, y" in fast.stdout and "3 passed, 0 failed" in fast.stdout


def test_verify_names_given_and_drawn_buses_by_bus():
    # 32 elements given, 338 drawn: each bus is one word in the points' labels
    mlp = ROOT / "examples" / "mlp.circ"
    result = run_cli("verify", mlp, "--fast", "--points", "1", "W1=0.05")
    assert result.returncode == 0, result.stdout + result.stderr
    heads = [line for line in result.stdout.splitlines() if line.startswith("point ")]
    assert heads[0].startswith("point 1 (the given values; drawn: x, y, b1, W2, b2, w3, c): ")
    assert heads[1].startswith("point 2 (random point 1, keeping W1): ")
    assert all(len(line) < 400 for line in heads)


def test_verify_names_elements_of_rank_two_buses(linear):
    result = run_cli("verify", "lin.circ", "W=[[1, 2], [3, 4]]", "--wrt", "W", cwd=linear)
    assert (result.returncode, result.stderr) == (0, "")
    assert "  ds/dW[0,1]     12.0 " in result.stdout
    assert "dh[1]/dW[1,1]" in result.stdout and "/dx" not in result.stdout


def test_step_moves_only_the_parameters(regression):
    result = run_cli("step", "r.circ", "x=[1, 2]", "y=0.3", "--fix", "x,y", "--minimize",
                     "--steps", "3", "--json", cwd=regression)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    before, after = document["before"], document["after"]
    for name in ("x[0]", "x[1]", "y"):
        assert after["inputs"][name] == before["inputs"][name]
    for name in ("w[0]", "w[1]", "c"):
        assert after["inputs"][name] != before["inputs"][name]
    assert after["output"] < before["output"]


@pytest.mark.parametrize(("option", "message"), [
    (["--fix", "x[0]"], "--fix names 'x[0]', which is not an input"),
    (["--wrt", "w,w"], "--wrt names 'w' twice"),
    (["--wrt", "w", "--fix", "x"], "give --wrt or --fix, not both"),
])
def test_bad_wrt_and_fix(regression, option, message):
    result = run_cli("eval", "r.circ", "x=1", "y=1", *option, cwd=regression)
    assert (result.returncode, result.stderr) == (2, f"r.circ: error: {message}\n")


# -- the generated module's contract --------------------------------------------------------


def _module(text: str, target: str = "python", **options):
    module = types.ModuleType("circuit")
    exec(compile(circuitc.compile_source(text, "m.circ", target, **options), "m.py", "exec"),  # noqa: S102
         module.__dict__)
    return module


def test_bus_inputs_take_lists_tuples_arrays_and_numbers():
    module = _module(LINEAR)
    assert module.SHAPES == {"W": (2, 2), "x": (2,), "s": (), "h": (2,)}
    assert module.DEFAULTS == {"x": (1.0, -2.0)}
    want = module.backward([[1.0, 2.0], [3.0, 4.0]], [1.0, -2.0])
    # Seeds 1.0 on s and on each element of h: d_h[i] = 2*h[i] + 1.
    assert want == ((34.0, (-3.0, -5.0)), (((-5.0, 10.0), (-9.0, 18.0)), (-32.0, -46.0)))
    for W, x in ((((1.0, 2.0), (3.0, 4.0)), (1.0, -2.0)),
                 (np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([1.0, -2.0]))):
        assert module.backward(W, x) == want
        assert module.forward(W, x) == want[0]
    assert module.forward(2.0, [1.0, -2.0]) == module.forward([[2.0, 2.0], [2.0, 2.0]], [1, -2])
    with pytest.raises(ValueError, match=r"expected a bus of shape \(2, 2\)"):
        module.forward([1.0, 2.0], [1.0, -2.0])


@pytest.mark.parametrize("n", [3, 300])  # written out, and loops
def test_a_bus_nested_deeper_than_its_shape_is_a_value_error(n):
    module = _module(f"size n = {n}\ninput x[n]\nf = sum(x[i] * x[i] for i)\n")
    for value in ([[1.0]] * n, np.ones((n, 1))):
        with pytest.raises(ValueError, match=rf"expected a bus of shape \({n},\)"):
            module.forward(value)
        with pytest.raises(ValueError, match=rf"expected a bus of shape \({n},\)"):
            module.backward(value)


def test_gradients_have_the_shapes_of_their_inputs_and_outputs_are_nested_tuples():
    module = _module("input A[2, 3], b\nC[i, j] = A[i, j] * b\nt = sum(C[i, j] for i, j)\n"
                     "output C, t\n")
    (C, t), (dA, db) = module.backward([[1, 2, 3], [4, 5, 6]], 2.0)
    assert C == ((2.0, 4.0, 6.0), (8.0, 10.0, 12.0)) and t == 42.0
    assert dA == ((4.0, 4.0, 4.0), (4.0, 4.0, 4.0)) and db == 42.0  # seeds 1.0 by default
    _, (dA, db) = module.backward([[1, 2, 3], [4, 5, 6]], 2.0, [[1, 0, 0], [0, 0, 1]], 0.0)
    assert dA == ((2.0, 0.0, 0.0), (0.0, 0.0, 2.0)) and db == 7.0
    _, (dA, db) = module.backward([[1, 2, 3], [4, 5, 6]], 2.0, 0.5, 0.0)
    assert dA == ((1.0, 1.0, 1.0), (1.0, 1.0, 1.0)) and db == 10.5
    with pytest.raises(ValueError, match=r"expected a bus of shape \(2, 3\)"):
        module.backward([[1, 2, 3], [4, 5, 6]], 2.0, [1, 0, 0], 0.0)


def test_numpy_batches_broadcast_against_a_parameter_without_batch():
    fast, slow = _module(REGRESSION, "numpy"), _module(REGRESSION)
    rng = np.random.default_rng(3)
    X, Y, w = rng.normal(size=(5, 2)), rng.normal(size=5), np.array([0.5, -0.5])
    value, (dX, dY, dw, dc) = fast.backward(X, Y, w, 0.1)
    assert value.shape == (5,) and dX.shape == (5, 2) and dY.shape == (5,)
    assert dw.shape == (2,) and isinstance(dc, float)
    points = [slow.backward(X[b].tolist(), float(Y[b]), w.tolist(), 0.1) for b in range(5)]
    assert value.tolist() == [v for v, _ in points]
    assert dX.tolist() == [list(g[0]) for _, g in points]
    assert dw == pytest.approx(np.sum([g[2] for _, g in points], axis=0), rel=1e-14)
    assert dc == pytest.approx(sum(g[3] for _, g in points), rel=1e-14)


def test_numpy_bus_outputs_have_the_batch_axes_first():
    module = _module(LINEAR, "numpy")
    W = np.arange(24.0).reshape(3, 2, 2, 2)
    s, h = module.forward(W, np.array([1.0, -2.0]))
    assert s.shape == (3, 2) and h.shape == (3, 2, 2)
    (s, h), (dW, dx) = module.backward(W, [1.0, -2.0], 1.0, np.ones((3, 2, 2)))
    assert dW.shape == (3, 2, 2, 2) and dx.shape == (2,)
    with pytest.raises(ValueError, match="last axes have shape"):
        module.forward(np.ones((3, 2)), [1.0, -2.0])


@pytest.mark.parametrize(("text", "options", "given", "checked"), [
    ("input x = 1, y = 2\nf = x * y\n", {"fix": ["x"]}, {}, ["y"]),
    (REGRESSION, {"wrt": ["w"]}, {"x[0]": 1.0, "x[1]": 2.0, "y": 0.3}, ["w[0]", "w[1]"]),
])
@pytest.mark.parametrize("fast", [False, True])
def test_verify_checks_only_the_inputs_differentiated(tmp_path, text, options, given, checked,
                                                      fast):
    from circuitc.api import elementwise, load_compiled
    from circuitc.verify import verify_circuit

    (tmp_path / "m.circ").write_text(text)
    module, forward = load_compiled(tmp_path / "m.circ", **options)
    report = verify_circuit(elementwise(module), forward, given, fast=fast, n_points=1)
    assert report.ok
    inputs = [c.input for p in report.points for c in p.checks]
    assert inputs == ([None, None] if fast else checked * 2)


# -- a bus no output needs ------------------------------------------------------------

DEAD = """\
size n = {n}
input x[n] = 0.5, y = 2
u[i, j] = x[i] * x[j]
v[i] = sum(u[i, j] for j) + y
f = y * y + sum(x[i] for i)
output f
"""


def test_a_bus_no_output_needs_is_written_out_at_one_element():
    """`verify` and `--elements` compile the written-out circuit: a dead bus of n^2
    elements was written out whole (7.6 GB for a circuit of ten lines)."""
    graph, _ = circuitc.api.lower_source(DEAD.format(n=100), "dead.circ")
    assert len(graph.nodes) < 500  # x: 100 inputs and a sum of them; u and v: one element each
    names = {node.name for node in graph.nodes}
    assert {"u[0,0]", "v[0]"} <= names and "u[0,1]" not in names and "v[1]" not in names
    live = circuitc.api.lower_source(DEAD.format(n=100).replace("output f", "output f, v"),
                                     "dead.circ")[0]
    assert {"u[99,99]", "v[99]"} <= {node.name for node in live.nodes}
    with pytest.raises(circuitc.CircuitError, match="unknown name 'z'"):  # still checked
        circuitc.compile_source(DEAD.format(n=2).replace("+ y", "+ z"), elements=True)


def test_verify_of_a_circuit_with_a_large_bus_no_output_needs(tmp_path):
    (tmp_path / "dead.circ").write_text(DEAD.format(n=300))
    result = run_cli("verify", "dead.circ", "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "OK: 301 passed, 0 failed" in result.stdout
    module = circuitc.load(tmp_path / "dead.circ", elements=True)
    assert module.backward(0.5, 2.0) == (154.0, ((1.0,) * 300, 4.0))
