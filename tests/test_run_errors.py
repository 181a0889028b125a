"""Errors at run time (a gate outside its domain) are shown as compile-time errors are:
`file:line:col: error: ...`, the source line with a caret under the gate, and each `gate`
call it was reached through, in every target and form of the module."""

from __future__ import annotations

import pytest

from circuitc import api
from conftest import run_cli

LOG = "input x = -1\ny = log(x)\n"
CALLED = "gate lg(u) = log(u) * 2\ninput x = -1\ny = lg(x) + 1\n"
BUS = "input x[3] = [1, -1, 2]\ny[i] = log(x[i])\ns = sum(y[i] for i)\n"
BUS_CALLED = "gate lg(u) = log(u) * 2\ninput x[3] = [1, -1, 2]\ny[i] = lg(x[i])\ns = sum(y[i] for i)\n"
LOOPS = "size n = 300\ninput x[n] = -1\ny[i] = log(x[i])\ns = sum(y[i] for i)\n"


def eval_error(tmp_path, text, *args):
    path = tmp_path / "e.circ"
    path.write_text(text)
    result = run_cli("eval", "e.circ", *args, cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    assert "Traceback" not in result.stderr
    return result.stderr


@pytest.mark.parametrize("args", [(), ("--target", "numpy")])
def test_a_domain_error_shows_its_line_and_caret(tmp_path, args):
    reason = "math domain error" if not args else "invalid value encountered in log"
    assert eval_error(tmp_path, LOG, *args) == (f"e.circ:2:5: error: in 'log': {reason}\n"
                                                "  y = log(x)\n"
                                                "      ^^^\n")


@pytest.mark.parametrize("args", [(), ("--target", "numpy")])
def test_an_error_in_a_gradient_shows_its_gate(tmp_path, args):
    reason = "float division by zero" if not args else "divide by zero encountered in divide"
    assert eval_error(tmp_path, "input x = 0\ny = sqrt(x)\n", *args) == (
        f"e.circ:2:5: error: in the gradient of 'sqrt': {reason}\n"
        "  y = sqrt(x)\n"
        "      ^^^^\n")


@pytest.mark.parametrize("args", [(), ("--target", "numpy")])
def test_an_error_through_a_gate_call_shows_the_call(tmp_path, args):
    reason = "math domain error" if not args else "invalid value encountered in log"
    assert eval_error(tmp_path, CALLED, *args) == (f"e.circ:1:14: error: in 'log': {reason}\n"
                                                   "  gate lg(u) = log(u) * 2\n"
                                                   "               ^^^\n"
                                                   "  --> e.circ:3:5\n"
                                                   "  y = lg(x) + 1\n"
                                                   "      -- in this call of 'lg'\n")


@pytest.mark.parametrize(("text", "args", "head"), [
    (BUS, (), "2:8: error: in 'log' for y[1]: math domain error"),  # written out
    (BUS, ("--target", "numpy"), "2:8: error: in 'log': invalid value encountered in log"),
    (BUS, ("--target", "numpy", "--elements"),
     "2:8: error: in 'log' for y[1]: invalid value encountered in log"),
    (LOOPS, (), "3:8: error: in 'log': math domain error"),  # whole-bus code, loops
])
def test_an_error_in_a_bus_shows_its_definition(tmp_path, text, args, head):
    assert eval_error(tmp_path, text, *args) == (f"e.circ:{head}\n"
                                                 "  y[i] = log(x[i])\n"
                                                 "         ^^^\n")


@pytest.mark.parametrize("args", [(), ("--target", "numpy"), ("--target", "numpy", "--elements")])
def test_an_error_in_a_bus_through_a_call_shows_the_call(tmp_path, args):
    stderr = eval_error(tmp_path, BUS_CALLED, *args)
    assert stderr.startswith("e.circ:1:14: error: in 'log'")
    assert stderr.splitlines()[1:] == ["  gate lg(u) = log(u) * 2",
                                       "               ^^^",
                                       "  --> e.circ:3:8",
                                       "  y[i] = lg(x[i])",
                                       "         -- in this call of 'lg'"]


def test_step_and_stdin_show_the_line_too():
    result = run_cli("step", "-", "--minimize", "--step-size", "1",
                     input="input x = 0.01\nf = log(x)\n")
    assert result.returncode == 2
    assert result.stderr == ("<stdin>:2:5: error: in 'log': math domain error\n"
                             "  f = log(x)\n"
                             "      ^^^\n")


def test_an_error_no_gate_raised_is_none_of_the_circuits():
    assert api.run_error(ValueError("expected a bus of shape (3,)"), "e.circ", BUS) is None
    module = api.load_source(LOG, "e.circ")
    with pytest.raises(ValueError) as info:
        module.forward(-1.0)
    error = api.run_error(info.value, "e.circ", LOG)
    assert (error.span.line, error.span.column, error.span.end_column) == (2, 5, 8)
    assert error.message == "in 'log': math domain error" and error.labels == ()
