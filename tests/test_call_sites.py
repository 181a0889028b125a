"""A gate's call site is never lost: generated comments, run-time errors and compile-time
errors name the chain of `gate` calls a gate was inlined through, and the bus element."""

from __future__ import annotations

import numpy as np
import pytest

import circuitc
from conftest import run_cli

SOURCE = """\
gate lg(u) = log(u) * 2
gate twice(v) = lg(v) + 1
input a = 1, b = 1, x[3] = [1, 2, 3]
f = lg(a)
g = twice(b)
h[i] = lg(x[i])
output f, g, h
"""


def load(tmp_path, target="python"):
    path = tmp_path / "g.circ"
    path.write_text(SOURCE)
    return circuitc.load(path, target)


@pytest.mark.parametrize("target", ["python", "numpy"])
def test_generated_lines_name_the_call_site_then_the_body(target):
    source = circuitc.compile_source(SOURCE, "g.circ", target)
    assert "  # line 4, in lg (line 1)" in source
    assert "  # line 5, in twice (line 2), in lg (line 1)" in source  # the log of b, nested
    assert "  # line 5, in twice (line 2)" in source  # the + 1 of twice's own body
    assert "  # line 6, in lg (line 1)" in source


@pytest.mark.parametrize(("target", "reason"), [("python", "math domain error"),
                                                ("numpy", "invalid value encountered in log")])
def test_each_call_of_one_gate_fails_with_its_own_chain(tmp_path, target, reason):
    m = load(tmp_path, target)
    where = str(tmp_path / "g.circ")
    cases = [
        ((-1.0, 1.0, [1.0, 2.0, 3.0]), f"{where}:4:5: in call of 'lg': {where}:1:14: in 'log'"),
        ((1.0, -1.0, [1.0, 2.0, 3.0]),
         f"{where}:5:5: in call of 'twice': {where}:2:17: in call of 'lg': {where}:1:14: in 'log'"),
        # Whole-bus code (the numpy target) computes the bus at once: no element to name.
        ((1.0, 1.0, [1.0, 2.0, -3.0]),
         (f"{where}:6:8: in call of 'lg'{' for h[2]' if target == 'python' else ''}: "
          f"{where}:1:14: in 'log'")),
    ]
    for args, message in cases:
        for function in (m.forward, m.backward):
            with pytest.raises((ValueError, ArithmeticError)) as info:
                function(*args)
            assert str(info.value) == f"{message}: {reason}"


def test_a_gate_in_a_bus_definition_names_its_element_without_a_call(tmp_path):
    path = tmp_path / "e.circ"
    path.write_text("input x[2] = [1, -1]\nh[i] = sqrt(x[i])\n")
    result = run_cli("eval", path)
    assert result.returncode == 2
    assert result.stderr == (f"{path}:2:8: error: in 'sqrt' for h[1]: math domain error\n"
                             "  h[i] = sqrt(x[i])\n"
                             "         ^^^^\n")


def test_a_constant_that_fails_in_a_body_shows_the_call_site():
    with pytest.raises(circuitc.CircuitError) as info:
        circuitc.compile_source("gate lg(u) = log(u) * 2\nf = x + lg(-1)\n", "bad.circ")
    assert info.value.render() == (
        "bad.circ:1:14: error: 'log' fails on constant operands (-1.0,): math domain error\n"
        "  gate lg(u) = log(u) * 2\n"
        "               ^^^\n"
        "  --> bad.circ:2:9\n"
        "  f = x + lg(-1)\n"
        "          -- in this call of 'lg'")


def test_the_normal_path_is_unchanged(tmp_path):
    m = load(tmp_path)
    value, grads = m.backward(1.0, 2.0, np.array([1.0, 2.0, 3.0]))
    assert value[0] == 0.0 and grads[0] == 2.0


def test_blame_names_the_call_chain(monkeypatch, tmp_path):
    from dataclasses import replace

    from circuitc import gates, verify

    path = tmp_path / "b.circ"
    path.write_text("gate sq(u) = sin(u) * u\ninput x = 0.5\nf = sq(x)\n")
    wrong = replace(gates.GATES["sin"], derivative=lambda b, g, y, x: (b.mul(g, b.sin(x)),))
    monkeypatch.setitem(gates.GATES, "sin", wrong)
    module, forward = circuitc.api.load_compiled(path)
    report = verify.verify_circuit(module, forward)
    (point,) = report.points
    assert [b.where for b in point.blame] == [f"{path}:1:14 (in the call of 'sq' at {path}:3:5)"]
