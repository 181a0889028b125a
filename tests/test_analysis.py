"""`circuitc.analysis`: a file's errors and whatever still resolves, its names, and each
wire's value, gradients and derivative as the generated `backward` computes it."""

from __future__ import annotations

import re

import pytest

import circuitc
from circuitc.analysis import REDUCTION_RULES, analyze, builtin
from circuitc.buses import REDUCTIONS
from circuitc.errors import CircuitError, Span
from circuitc.parse import parse, parse_recovering
from conftest import CIRCUITS, EXAMPLES

NEURON = (CIRCUITS / "neuron.circ").read_text()


def spans(analysis, name: str) -> list[tuple[int, int]]:
    symbol = analysis.symbols[name]
    return [(s.line, s.column) for s in analysis.references(symbol)]


# -- recovering from syntax errors --------------------------------------------------


@pytest.mark.parametrize("text", [
    "input a = 1, b = 2\ns = a *+* b\nf = sigmoid(s\ng = (f + \nh = 2x\noutput f\n",
    "x = 1 +\ny = 3 ^ 2\nz = y\n",
    "a = 1; b = 2 +* 3; c = a\n",
    "f = (1 +",
])
def test_recovering_reports_the_errors_parse_raises(text):
    with pytest.raises(CircuitError) as raised:
        parse(text)
    expected = getattr(raised.value, "errors", [raised.value])
    _, errors = parse_recovering(text)
    assert [(e.span, e.message) for e in errors] == [(e.span, e.message) for e in expected]


def test_recovering_keeps_every_statement_without_an_error_where_it_is():
    text = "input a = 1, b = 2\ns = a *+* b\nf = sigmoid(s\ng = (f + \nh = 2x\noutput f\n"
    statements, errors = parse_recovering(text)
    assert len(errors) == 3
    assert [type(s).__name__ for s in statements] == ["InputDecl", "OutputDecl"]
    assert statements[1].names[0].span == Span(6, 8, 6, 9)
    statements, _ = parse_recovering("a = 1; b = 2 +* 3; c = a\nd = c\n")
    assert [s.target.id for s in statements] == ["a", "c", "d"]
    assert statements[1].target.span == Span(1, 20, 1, 21)


def test_a_valid_text_is_parsed_as_parse_does():
    assert parse_recovering(NEURON) == (parse(NEURON), [])


# -- names ----------------------------------------------------------------------------


def test_the_names_of_the_neuron():
    a = analyze(NEURON, "neuron.circ")
    assert a.errors == [] and a.warnings == [] and a.compiled
    kinds = {name: s.kind for name, s in a.symbols.items()}
    assert kinds == {"a": "input", "b": "input", "c": "input", "x": "input", "y": "input",
                     "s": "wire", "f": "wire"}
    assert a.definition("s") == Span(4, 1, 4, 2)
    assert spans(a, "s") == [(4, 1), (5, 13)]
    assert spans(a, "f") == [(5, 1), (6, 8)]
    assert a.references(a.symbols["f"], definition=False) == [Span(6, 8, 6, 9)]
    assert a.formula(a.symbols["s"]) == "s = a*x + b*y + c"
    assert a.formula(a.symbols["x"]) == "input x = -1, y = 3"
    assert a.at(5, 5).symbol is builtin("sigmoid")
    assert a.at(5, 13).symbol is a.symbols["s"] and a.at(5, 14).symbol is a.symbols["s"]
    assert a.at(5, 4) is None
    assert a.rule(a.symbols["f"]) == "'sigmoid': s(1-s), reusing s"
    assert a.rule(a.symbols["s"]) == "'+': 1, 1"


def test_inputs_never_declared_are_defined_where_first_used():
    a = analyze("f = sigmoid(w*x) + w\n")
    w = a.symbols["w"]
    assert w.kind == "input" and w.implicit and w.span == Span(1, 13, 1, 14)
    assert spans(a, "w") == [(1, 13), (1, 20)]
    assert "sigmoid" not in a.symbols


def test_gates_parameters_and_index_variables_have_their_own_scopes():
    text = ("size n = 3\ninput x[n] = 1, W[2, n] = 0.5\ngate act(a, b) = tanh(a + b)\n"
            "h[i] = act(sum(W[i, j] * x[j] for j), 1)\ng[i] = h[i] * 2\nf = sum(g[k] for k)\n")
    a = analyze(text)
    assert a.errors == []
    assert {s.kind for s in a.symbols.values()} == {"size", "input", "gate", "bus", "wire"}
    assert spans(a, "n") == [(1, 6), (2, 9), (2, 22)]
    assert spans(a, "act") == [(3, 6), (4, 8)]
    i4, i5 = a.at(4, 3).symbol, a.at(5, 3).symbol
    assert i4.kind == i5.kind == "index" and i4 is not i5
    assert [(s.line, s.column) for s in a.references(i4)] == [(4, 3), (4, 18)]
    j = a.at(4, 35).symbol
    assert j.within == Span(4, 12, 4, 36) and a.references(j) == [
        Span(4, 21, 4, 22), Span(4, 28, 4, 29), Span(4, 35, 4, 36)]
    param = a.at(3, 23).symbol
    assert param.kind == "parameter" and a.at(3, 10).symbol is param
    assert a.rule(a.symbols["h"]) == "'act': the derivative of its body, inlined at the call"
    assert a.rule(a.symbols["f"]) == "'sum': " + REDUCTION_RULES["sum"]
    # In a gate's body only its parameters and the gates; a reduction's variable inside it.
    assert {s.name for s in a.visible(3, 25)} == {"a", "b", "act"}
    assert {s.name for s in a.visible(4, 30)} >= {"i", "j", "x", "n", "act"}
    assert "j" not in {s.name for s in a.visible(4, 8)}
    assert "i" not in {s.name for s in a.visible(6, 5)}
    assert a.size("n") == 3
    assert a.elements(a.symbols["h"]) == ["h[0]", "h[1]"]


def test_what_a_line_being_typed_would_bind_is_visible_there():
    a = analyze("input p = 1\ngate g(u, v) = u * (\n")
    assert a.errors and a.statements  # the `gate` line does not parse; the input does
    names = {s.name for s in a.visible(2, 21)}
    assert {"p", "u", "v"} <= names


def test_deep_nesting_does_not_recurse():
    depth = 10_000
    a = analyze("f = " + "(" * depth + "x" + ")" * depth + "\n")
    assert a.errors == [] and spans(a, "x") == [(1, 5 + depth)]


def test_every_reduction_has_its_rule():
    assert set(REDUCTION_RULES) == set(REDUCTIONS)
    assert all(builtin(name) is not None for name in REDUCTIONS)


# -- errors ---------------------------------------------------------------------------


def test_a_syntax_error_leaves_the_rest_resolved():
    a = analyze("input a = 1\ns = a + * 2\nf = a * 3\noutput f\n", "t.circ")
    assert [e.message for e in a.errors] == ["unexpected '*'; expected an expression"]
    assert a.errors[0].filename == "t.circ" and "^" in a.errors[0].render()
    assert set(a.symbols) == {"a", "f"} and spans(a, "a") == [(1, 7), (3, 5)]
    assert not a.compiled and a.value("f") is None and a.derivative("f") is None
    assert a.warnings == []  # said only of a file that compiles, as the commands say them


def test_the_errors_past_parsing_are_the_commands():
    text = "input a = 1\nf = sigmod(a) + q\nf = 2\nk = log(-1)\noutput f\n"
    with pytest.raises(CircuitError) as raised:
        circuitc.compile_source(text, "t.circ")
    a = analyze(text, "t.circ")
    assert [e.render() for e in a.errors] == [e.render() for e in raised.value.errors]
    assert len(a.errors) == 3 and a.errors[2].labels
    assert set(a.symbols) == {"a", "f", "k"}


def test_a_constant_that_fails_is_an_error_and_warnings_wait_for_a_file_that_compiles():
    a = analyze("input x = 1\nu = x\nf = log(-1) * x\n")
    assert [e.message for e in a.errors] == [
        "'log' fails on constant operands (-1.0,): math domain error"]
    assert a.warnings == []  # as the commands print them: after a compile
    a = analyze("output f\n")  # lint would call `f` an input, which `lower` never defines
    assert [e.message for e in a.errors] == ["output 'f' is never defined"] and not a.warnings
    a = analyze("input x = 1\nu = x\nf = log(2) * x\n")
    assert [w.message for w in a.warnings] == ["wire 'u' is not used: no output depends on it"]


# -- values and derivatives -------------------------------------------------------------


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_derivative_is_what_the_module_writes(path):
    """The line of each wire's gradient is a line of `backward`; its text is read there."""
    text = path.read_text()
    source = circuitc.compile_source(text, str(path), elements=True)
    backward = source.split("def backward", 1)[1].split("\ndef ", 1)[0]
    lines = {re.sub(r"  # .*", "", line.strip()) for line in backward.split("\n")}
    a = analyze(text, str(path))
    checked = 0
    for symbol in a.symbols.values():
        for name in a.elements(symbol):
            d = a.derivative(name)
            if d is None:
                continue
            assert d.line is None or d.line in lines, (name, d)
            assert d.text in backward, (name, d)
            checked += 1
    assert checked


def test_the_neuron_values_and_derivatives():
    a = analyze(NEURON)
    module = circuitc.load(CIRCUITS / "neuron.circ")
    value, grads = module.backward(**module.DEFAULTS)
    assert a.value("f").value == value
    assert [a.value(x).gradients["f"] for x in module.INPUTS] == list(grads)
    assert a.value("s").value == 2.0 and a.value("s").gradients == {"f": grads[2]}
    assert a.derivative("s") == ("d_s", "d_s = d_f * (f * (1.0 - f))")
    assert a.derivative("c") == a.derivative("s")  # `c`'s gradient is `s`'s
    assert a.derivative("a") == ("d_s * x", None)
    assert a.derivative("f") == ("d_f", None)  # the seed: a parameter
    assert a.value("nothing") is None and a.derivative("nothing") is None


def test_a_renamed_adjoint_is_found_by_its_node_not_its_spelling():
    text = "input x = 1, d_s = 2\ns = x * d_s\nf = sigmoid(s)\n"
    assert "d_s_ = d_f * (f * (1.0 - f))" in circuitc.compile_source(text)
    assert analyze(text).derivative("s") == ("d_s_", "d_s_ = d_f * (f * (1.0 - f))")


def test_wires_that_share_a_node_or_a_gradient():
    text = "input p = 1, q = 2, r = 3\nu = p + q\nv = u + r\nw = v\nt = v * 1\nf = w * 2 + t\n"
    a = analyze(text)
    # `u`'s gradient is `v`'s node; `w = v` is `v`'s node (one node, one gradient).
    assert a.derivative("u") == a.derivative("v") == ("d_v", "d_v = d_f + d_f * 2.0")
    assert a.derivative("w") == a.derivative("v")
    assert a.value("w") == a.value("v") == (6.0, {"f": 3.0})
    assert a.derivative("t") is None  # made into `v` by the optimizer: no line of its own
    assert a.value("t") == (6.0, {"f": 1.0})  # as written, a gate of its own


def test_values_of_buses_and_outputs_each_their_own_gradient():
    text = "input x[2] = [1, 2]\nh[i] = x[i] * x[i]\nf = h[0] + h[1]\ng = 3 * h[1]\noutput f, g\n"
    a = analyze(text)
    assert a.value("x[1]") == (2.0, {"f": 4.0, "g": 12.0})
    assert a.value("h[0]") == (1.0, {"f": 1.0, "g": 0.0})
    assert a.elements(a.symbols["x"]) == ["x[0]", "x[1]"]


def test_an_input_without_a_default_has_no_value_and_a_failing_gate_raises():
    a = analyze("input x, y = 2\nf = x * y\n")
    assert a.value("y") == (2.0, {"f": None}) and a.value("f").value is None
    a = analyze("input x = -1\nf = log(x)\n", "t.circ")
    with pytest.raises(CircuitError, match=r"'log' on -1.0 fails") as raised:
        a.value("f")
    assert raised.value.filename == "t.circ"
