"""The large module shape (docs/module_shape.md): from `LARGE` forward gates on, the
forward gates are written once, in `_forward`, and every function calls it; modules of
smaller circuits keep a line per forward gate in each function."""

from __future__ import annotations

import dataclasses
import random
import subprocess
import sys
import traceback
import types

import pytest

import circuitc
from circuitc import gates
from circuitc.api import elementwise, load_compiled_source
from circuitc.emit import python as python_emit
from circuitc.verify import verify_circuit
from conftest import EXAMPLES, run_cli
from whitelist import check_module


@pytest.fixture
def large(monkeypatch):
    """Every module of this test has the large shape."""
    monkeypatch.setattr(python_emit, "LARGE", 1)


def _module(source: str) -> types.ModuleType:
    module = types.ModuleType("circuit")
    exec(compile(source, "<circuit>", "exec"), module.__dict__)  # noqa: S102
    return module


@pytest.mark.parametrize("target", ["python", "numpy"])
@pytest.mark.parametrize("path", EXAMPLES, ids=[path.name for path in EXAMPLES])
def test_the_large_shape_computes_what_the_small_one_does(path, target, monkeypatch):
    text = path.read_text()
    options = {"hessian": True, "jvp": True, "elements": True}  # the written-out module's shapes
    small_source = circuitc.compile_source(text, path.name, target, **options)
    assert "def _forward(" not in small_source
    monkeypatch.setattr(python_emit, "LARGE", 1)
    source = circuitc.compile_source(text, path.name, target, **options)
    assert source == circuitc.compile_source(text, path.name, target, **options)
    check_module(source, target)
    small, big = elementwise(_module(small_source)), elementwise(_module(source))
    rng = random.Random(7)
    args = [rng.uniform(0.2, 0.9) for _ in small.INPUTS]
    seeds = [0.5 + k for k in range(len(small.OUTPUTS))]
    directions = [rng.uniform(-1, 1) for _ in small.WRT]
    assert big.forward(*args) == small.forward(*args)
    assert big.backward(*args, *seeds) == small.backward(*args, *seeds)
    assert big.hvp(*args, *directions, *seeds) == small.hvp(*args, *directions, *seeds)
    if not any(small.SHAPES.values()):  # `elementwise` has no jvp for a bus
        assert big.jvp(*args, *args) == small.jvp(*args, *args)
    if target == "python":
        assert big.hessian(*args, *seeds) == small.hessian(*args, *seeds)


def test_each_forward_gate_is_written_once(large):
    source = circuitc.compile_source("input x, y\ns = sin(x) * y\nf = exp(s) + x\n", "s.circ")
    assert source.count("math.sin(x)") == 1 and source.count("math.exp(s)") == 1
    assert "def forward(x, y):\n    \"\"\"Return f.\"\"\"\n    return _forward(x, y)[0]\n" in source
    assert "    t1, t2, f = _forward(x, y)[1]\n" in source  # the wires backward reads
    assert source.index("def _forward(") < source.index("def forward(")


def test_run_time_errors_name_the_gate_once(large):
    text = "input x, y\nq = log(x) * y\nf = q / y\n"
    m = _module(circuitc.compile_source(text, "e.circ", hessian=True, jvp=True))
    for call in (lambda: m.forward(-1.0, 2.0), lambda: m.backward(-1.0, 2.0),
                 lambda: m.jvp(-1.0, 2.0, 1.0, 1.0), lambda: m.hvp(-1.0, 2.0, 1.0, 1.0),
                 lambda: m.hessian(-1.0, 2.0)):
        with pytest.raises(ValueError, match="^e.circ:2:5: in 'log': math domain error$"):
            call()
    with pytest.raises(ZeroDivisionError, match="^e.circ:3:7: in '/': float division by zero$"):
        m.backward(1.0, 0.0)
    m = _module(circuitc.compile_source("input x\nf = sqrt(x) * x\n", "g.circ"))
    with pytest.raises(ZeroDivisionError, match="^g.circ:2:5: in the gradient of 'sqrt': "):
        m.backward(0.0)


def test_wrt_and_renamed_inputs(large):
    text = "input lambda, y, z\nf = sin(lambda * y) + z * z\n"
    source = circuitc.compile_source(text, "w.circ", wrt=["z", "lambda"])
    check_module(source)
    m = _module(source)
    assert m.WRT == ("z", "lambda")
    _, grads = m.backward(**{"lambda": 0.5, "y": 2.0, "z": 3.0})
    assert grads == pytest.approx((6.0, 2.0 * 0.5403023058681398))


def test_verify_blames_a_wrong_rule_in_a_large_module(large, monkeypatch):
    monkeypatch.setitem(gates.GATES, "mul", dataclasses.replace(
        gates.GATES["mul"], derivative=lambda b, g, y, x1, x2: (b.mul(g, x2), b.mul(g, x2))))
    text = "input x = 3, y = 2\nq = x + 1\nf = sin(q) * y\n"
    module, forward = load_compiled_source(text, "p.circ")
    assert hasattr(module, "_forward")
    report = verify_circuit(module, forward)
    (blame,) = report.points[0].blame
    assert (blame.input, blame.gate, blame.where) == ("y", "'*'", "p.circ:3:12")


def test_a_module_from_large_gates_on_has_the_large_shape(tmp_path):
    """Through the command, at the real threshold: a chain of `LARGE` gates."""
    n = python_emit.LARGE
    lines = ["input x0 = 0.5"] + [f"x{i} = sin(x{i - 1})" for i in range(1, n + 1)]
    (tmp_path / "chain.circ").write_text("\n".join(lines) + "\n")
    result = run_cli("compile", "chain.circ", "--hessian", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    source = (tmp_path / "chain.py").read_text()
    assert source.count(" = math.sin(") == n  # once, in `_forward`
    ruff = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", str(tmp_path / "chain.py")],
                          capture_output=True, text=True, check=False)
    assert ruff.returncode == 0, ruff.stdout
    result = run_cli("verify", "chain.circ", "--points", "1", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    smaller = "\n".join(lines[:n]) + "\n"  # n - 1 gates: the small shape
    assert "def _forward(" not in circuitc.compile_source(smaller, "c.circ")


def test_a_loaded_module_keeps_its_line_numbers_block_by_block(large):
    """`circuitc.load` compiles a module a top-level block at a time (`cache.compiled_blocks`):
    `_WHERE` and tracebacks still see each line where the module has it."""
    text = "input x, y\nq = log(x) * y\nf = sqrt(q) / y\n"
    module, _ = load_compiled_source(text, "t.circ", hessian=True)
    with pytest.raises(ValueError, match="^t.circ:2:5: in 'log'") as raised:
        module.hessian(-1.0, 2.0)
    frames = traceback.extract_tb(raised.value.__traceback__)
    assert [frame.name for frame in frames[-2:]] == ["hessian", "_forward"]
    assert frames[-2].line == "(" or frames[-2].line.endswith("= _forward(x, y)[1]")
    assert frames[-1].line == "raise _located(exc) from None"
    with pytest.raises(ZeroDivisionError, match="^t.circ:3:5: in the gradient of 'sqrt'"):
        module.hessian(1.0, 1.0)  # sqrt(0): the gradient's line, in the last function


def test_numpy_errors_name_the_gate_in_the_large_shape(large):
    np = pytest.importorskip("numpy")
    source = circuitc.compile_source("input x, y\nq = log(x) * y\nf = q / y\n", "n.circ", "numpy")
    assert "def _forward(" in source
    m = _module(source)
    for call in (m.forward, m.backward):
        with pytest.raises(FloatingPointError, match="^n.circ:2:5: in 'log': "):
            call(np.array([1.0, -1.0]), 2.0)
    value, (dx, dy) = m.backward(np.array([1.0, 2.0]), 2.0)
    assert value.tolist() == pytest.approx([0.0, np.log(2.0)])
    assert dx.tolist() == pytest.approx([1.0, 0.5]) and dy == pytest.approx(0.0)
