"""The `.circ` language (docs/language.md) as the generated module sees it."""

from __future__ import annotations

import math

import pytest

import circuitc
from conftest import load_source


def value(text: str, *args, **kwargs):
    return load_source(text).forward(*args, **kwargs)


@pytest.mark.parametrize(("text", "expected"), [
    ("f = -x**2", -9.0),                # ** binds tighter than a unary sign on its left
    ("f = 2**x**2", 2.0 ** 9),          # right-associative
    ("f = x**-1", 1 / 3),               # a unary sign on its right is allowed
    ("f = -(-x)", 3.0),
    ("f = +x - -x", 6.0),
    ("f = 10 - x - 2", 5.0),            # left-associative
    ("f = 12 / x / 2", 2.0),
    ("f = 1 + x * 2", 7.0),
    ("f = (1 + x) * 2", 8.0),
    ("f = .5 * x + 1e-3 + 2.5E+1", 26.501),
    ("f = 0000.5 * x", 1.5),
])
def test_precedence_as_in_python(text, expected):
    assert value(text, 3.0) == pytest.approx(expected, rel=1e-15)


def test_one_liner_inputs_in_order_of_first_appearance():
    m = load_source("f = sigmoid(a*x + b*y + c)")
    assert m.INPUTS == ("a", "x", "b", "y", "c")
    assert m.OUTPUTS == ("f",)
    assert m.DEFAULTS == {}


def test_declarative_order_and_last_wire_is_the_output():
    m = load_source("f = q * z\nq = x + y\n")
    assert m.INPUTS == ("z", "x", "y")
    assert m.OUTPUTS == ("q",)  # the last assigned wire, even though f is computed from it
    assert m.forward(-4.0, -2.0, 5.0) == 3.0


def test_wires_may_be_used_before_their_definition():
    m = load_source("input x = 2\noutput f\nf = g * g\ng = x + 1\n")
    assert m.forward(2.0) == 9.0
    assert m.backward(2.0) == (9.0, (6.0,))


def test_defaults_are_constant_expressions():
    m = load_source("input w = -1/3, v = 2**-2, u, t = sqrt(4) * max(1, 2)\nf = w + v + u + t\n")
    assert m.DEFAULTS == {"w": -1 / 3, "v": 0.25, "t": 4.0}
    assert m.INPUTS == ("w", "v", "u", "t")


def test_semicolons_comments_and_continuation_lines():
    text = "input a = 1; input b = 2  # comment ; not a statement\n" \
           "f = (a +   # a comment inside parentheses\n\n     b) * sigmoid(\n a)\n"
    m = load_source(text)
    assert m.forward(1.0, 2.0) == pytest.approx(3 / (1 + math.exp(-1)))


def test_bom_and_crlf(tmp_path):
    path = tmp_path / "w.circ"
    path.write_bytes(b"\xef\xbb\xbfinput x = 2\r\nf = x * x\r\n")
    assert circuitc.load(path).forward(3.0) == 9.0
    assert circuitc.compile_source("\ufeffinput x\r\nf = x\r\n").startswith("# Generated")


def test_gates_inline_and_call_each_other():
    text = ("gate sq(u) = u * u\n"
            "gate norm(p, q) = sqrt(sq(p) + sq(q))\n"
            "f = norm(x, y) + sq(2)\n")
    m = load_source(text)
    assert m.forward(3.0, 4.0) == 9.0
    assert m.backward(3.0, 4.0) == (9.0, pytest.approx((0.6, 0.8), rel=1e-15))


def test_gate_parameters_shadow_wires():
    m = load_source("gate g(x) = 2 * x\ninput x\ny = x + 1\nf = g(y)\n")
    assert m.forward(1.0) == 4.0


def test_multiple_outputs_and_seeds():
    m = load_source("input x, y\ns = x + y\np = x * y\noutput s, p\n")
    assert m.OUTPUTS == ("s", "p")
    assert m.forward(2.0, 5.0) == (7.0, 10.0)
    assert m.backward(2.0, 5.0) == ((7.0, 10.0), (6.0, 3.0))
    assert m.backward(2.0, 5.0, d_s=0.0, d_p=1.0) == ((7.0, 10.0), (5.0, 2.0))


def test_an_output_may_be_an_input_or_an_alias():
    m = load_source("input x, y\ng = x\noutput x, g, y\n")
    assert m.forward(1.0, 2.0) == (1.0, 1.0, 2.0)
    assert m.backward(1.0, 2.0)[1] == (2.0, 1.0)


def test_fan_out_gradients_are_summed():
    m = load_source("f = x * x + x")
    assert m.backward(3.0) == (12.0, (7.0,))


def test_unused_input_has_zero_gradient():
    m = load_source("input x, unused\nf = 2 * x\n")
    assert m.backward(1.0, 5.0) == (2.0, (2.0, 0.0))


def test_constant_circuit():
    m = load_source("input x\nf = 2 * 3 + 1\n")
    assert m.forward(0.0) == 7.0
    assert m.backward(0.0) == (7.0, (0.0,))


@pytest.mark.parametrize("gate", ["sigmoid", "softplus", "tanh"])
@pytest.mark.parametrize("x", [-1000.0, -745.5, 0.0, 745.5, 1000.0, 1e308, -1e308])
def test_stable_gates_never_overflow(gate, x):
    m = load_source(f"f = {gate}(x)")
    value, (grad,) = m.backward(x)
    assert math.isfinite(value) and math.isfinite(grad)
    assert 0.0 <= grad <= 1.0


def test_stable_gate_values_at_the_extremes():
    assert value("f = sigmoid(x)", -1000.0) == 0.0
    assert value("f = sigmoid(x)", 1000.0) == 1.0
    assert value("f = softplus(x)", 1000.0) == 1000.0
    assert value("f = softplus(x)", -1000.0) == 0.0


@pytest.mark.parametrize(("gate", "x", "grad"), [
    ("relu", 0.0, 0.0), ("relu", 2.0, 1.0), ("relu", -2.0, 0.0),
    ("abs", 0.0, 0.0), ("abs", -2.0, -1.0), ("abs", 2.0, 1.0),
])
def test_kink_conventions(gate, x, grad):
    assert load_source(f"f = {gate}(x)").backward(x)[1] == (grad,)


@pytest.mark.parametrize(("gate", "x", "y", "grads"), [
    ("max", 1.0, 1.0, (0.5, 0.5)), ("max", 2.0, 1.0, (1.0, 0.0)), ("max", 1.0, 2.0, (0.0, 1.0)),
    ("min", 1.0, 1.0, (0.5, 0.5)), ("min", 2.0, 1.0, (0.0, 1.0)), ("min", 1.0, 2.0, (1.0, 0.0)),
])
def test_max_min_ties_split_the_gradient(gate, x, y, grads):
    assert load_source(f"f = {gate}(x, y)").backward(x, y)[1] == grads


def test_power_with_a_variable_exponent_differentiates_both():
    m = load_source("f = x ** y")
    value, (dx, dy) = m.backward(2.0, 3.0)
    assert (value, dx) == (8.0, 12.0)
    assert dy == pytest.approx(8.0 * math.log(2.0), rel=1e-15)


def test_power_with_a_constant_exponent_has_no_log():
    # d/dx x**2 must not involve log(x): at x = -3 a log would fail.
    m = load_source("f = x ** 2 + pow(x, 3)")
    assert "log" not in circuitc.compile_source("f = x ** 2 + pow(x, 3)")
    assert m.backward(-3.0) == (-18.0, (-6.0 + 27.0,))


def test_huge_and_tiny_numbers_read_as_python_reads_them():
    m = load_source("input x\nf = x * 1e999 + 1e-400 + 123456789012345678901234567890\n")
    assert m.forward(1.0) == math.inf
    assert m.backward(1.0)[1] == (math.inf,)
