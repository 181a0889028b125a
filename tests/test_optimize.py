"""What the optimizing compiler promises about generated code: activity analysis (`WRT`),
inlining, and straight-line code as lean as a careful person would write."""

from __future__ import annotations

import pytest

import circuitc
from conftest import CIRCUITS, load_source, run_cli


def _backward_body(source: str) -> str:
    """The code of `backward`, without its signature and docstring."""
    return source.split("def backward")[1].split("\n\n\n")[0].split('"""', 2)[2]


def test_wrt_defaults_to_every_input():
    m = load_source("f = a * x + b")
    assert m.WRT == m.INPUTS == ("a", "x", "b")


def test_wrt_selects_and_orders_the_gradients():
    source = circuitc.compile_source("input a, b, x, y\nf = a * x + b * y\n", wrt=["b", "a"])
    namespace: dict = {}
    exec(source, namespace)  # noqa: S102
    assert namespace["WRT"] == ("b", "a")
    assert namespace["backward"](1.0, 2.0, 3.0, 4.0) == (11.0, (4.0, 3.0))
    body = _backward_body(source)
    assert "d_x" not in body and "d_y" not in body
    assert body.count("*") == 2 + 2  # the forward products, then d_b = d_f*y and d_a = d_f*x


def test_gradient_work_that_cannot_reach_a_requested_input_is_not_emitted():
    text = "input w, x\nu = exp(x) * sin(x)\nf = w * u + log(u * u)\n"
    body = _backward_body(circuitc.compile_source(text, wrt=["w"]))
    assert "cos" not in body and "/" not in body  # d/dx of sin and log are never needed


def test_empty_wrt_gives_no_gradients():
    m = load_source("f = x * y")
    source = circuitc.compile_source("f = x * y", wrt=[])
    namespace: dict = {}
    exec(source, namespace)  # noqa: S102
    assert namespace["backward"](2.0, 3.0) == (6.0, ())
    assert m.backward(2.0, 3.0) == (6.0, (3.0, 2.0))


@pytest.mark.parametrize(("wrt", "message"), [
    (["z"], "--wrt names 'z', which is not an input"),
    (["a", "a"], "--wrt names 'a' twice"),
])
def test_bad_wrt(wrt, message):
    with pytest.raises(circuitc.CircuitError, match=message):
        circuitc.compile_source("f = a * x", wrt=wrt)


def test_wrt_on_the_command_line(tmp_path):
    result = run_cli("compile", CIRCUITS / "neuron.circ", "--wrt", "x, a", "-o", "-")
    assert result.returncode == 0
    assert 'WRT = ("x", "a")' in result.stdout
    bad = run_cli("compile", CIRCUITS / "neuron.circ", "--wrt", "q", "-o", tmp_path / "n.py")
    assert bad.returncode == 2 and "not an input" in bad.stderr and not (tmp_path / "n.py").exists()


def test_single_use_temporaries_are_inlined_and_named_wires_kept():
    source = circuitc.compile_file(CIRCUITS / "neuron.circ")
    forward = source.split("def forward")[1].split("\n\n\n")[0]
    assert "    s = a * x + b * y + c  # " in forward
    assert "    f = _sigmoid(s)  # " in forward
    assert "d_s = d_f * (f * (1.0 - f))" in _backward_body(source)


def test_gates_that_can_raise_keep_a_line_of_their_own():
    source = circuitc.compile_source("f = log(x * y) + 1 / (x + y)", "m.circ")
    lines = [line.split("#")[0] for line in source.split("def forward")[1].split("except")[0].splitlines()]
    for line in lines:
        assert line.count("math.log") + line.count("/") <= 1, line


def test_expressions_stay_shallow():
    # A 5,000-term sum is split across lines, so compile() and ast never recurse deeply.
    source = circuitc.compile_source("f = x" + " + x * 1.5" * 5000)
    depth = max(line.count("+") for line in source.splitlines())
    assert depth < 40
    compile(source, "<generated>", "exec")


def test_squares_are_products_and_constant_exponents_need_no_log():
    source = circuitc.compile_source("f = x ** 2 + y ** 3")
    assert "x * x" in source and "math.pow(y, 3.0)" in source and "log" not in source


def test_value_and_gradient_for_the_textbook_neuron_read_like_hand_written_code():
    body = _backward_body(circuitc.compile_file(CIRCUITS / "neuron.circ"))
    code = [line.split("#")[0].strip() for line in body.splitlines()[1:]]
    assert code == ["s = a * x + b * y + c", "f = _sigmoid(s)", "d_s = d_f * (f * (1.0 - f))",
                    "return f, (d_s * x, d_s * y, d_s, d_s * a, d_s * b)"]
