"""Every gate in the table, checked against numerical derivatives with no per-gate code."""

from __future__ import annotations

import dataclasses
import math

import pytest

from circuitc.gates import ARITIES, CALLABLE, GATES, markdown_table
from circuitc.grad import grad
from circuitc.graph import Builder, Graph, check, run
from conftest import ROOT, load_source

# Points away from every kink and tie; a point outside a gate's domain is not used.
POINTS = [(0.7, 1.3, -0.4), (1.9, 0.4, 2.1), (-0.8, 1.1, 0.3), (-1.6, -0.3, -0.9),
          (2.3, -1.2, 1.7)]
H = 1e-6


def _one_gate(name: str) -> Graph:
    b = Builder()
    inputs = tuple("xyz"[: GATES[name].arity])
    args = tuple(b.add("input", (), n) for n in inputs)
    out = b.add(name, args)
    return Graph("<gate>", inputs, {}, tuple(b.nodes), (("f", out),))


def _points(name: str):
    gate = GATES[name]
    points = []
    for point in POINTS:
        try:
            gate.fn(*point[: gate.arity])
        except ValueError:
            continue
        points.append(point[: gate.arity])
    assert len(points) >= 2, f"{name}: too few points in its domain"
    return points


@pytest.mark.parametrize("name", GATES)
def test_derivative_rule_matches_numerical_derivative(name):
    graph = grad(_one_gate(name))
    check(graph)
    fn = GATES[name].fn
    for point in _points(name):
        values = run(graph, dict(zip(graph.inputs, point)))
        for k, (_, node) in enumerate(graph.grads):
            up, down = list(point), list(point)
            up[k] += H
            down[k] -= H
            numeric = (fn(*up) - fn(*down)) / (2 * H)
            assert values[node] == pytest.approx(numeric, rel=1e-6, abs=1e-8), (name, point, k)


@pytest.mark.parametrize("name", [n for n, g in GATES.items() if g.callable or g.operator])
def test_generated_python_agrees_with_the_gate_table(name):
    gate = GATES[name]
    if gate.callable:
        text = f"f = {name}({', '.join('xyz'[: gate.arity])})"
    elif gate.arity == 2:
        text = f"f = x {gate.operator} y"
    else:
        text = f"f = {gate.operator}x"
    module = load_source(text)
    reference = grad(_one_gate(name))
    for point in _points(name):
        values = run(reference, dict(zip(reference.inputs, point)))
        value, grads = module.backward(*point)
        assert value == values[reference.outputs[0][1]]
        assert grads == pytest.approx([values[n] for _, n in reference.grads], rel=1e-15)


def test_every_public_gate_is_reachable_from_circ_source():
    operators = {g.operator for g in GATES.values() if g.operator}
    assert operators == {"+", "-", "*", "/", "**", "<", "<=", ">", ">=", "==", "!="}
    assert set(CALLABLE) == {"pow", "sigmoid", "tanh", "relu", "softplus", "exp", "log", "sqrt",
                             "sin", "cos", "tan", "atan", "abs", "max", "min", "where"}


def test_the_documented_gate_table_is_the_gate_table():
    assert markdown_table() in (ROOT / "docs" / "language.md").read_text(encoding="utf-8")


def test_stable_helpers_match_the_textbook_formulas():
    for x in (-30.0, -1.0, 0.0, 0.5, 30.0):
        assert GATES["sigmoid"].fn(x) == pytest.approx(1 / (1 + math.exp(-x)), rel=1e-15)
        assert GATES["softplus"].fn(x) == pytest.approx(math.log1p(math.exp(x)), rel=1e-15)


def test_every_gate_has_one_two_or_three_operands():
    """The emitters and the passes spell out the operands of a gate, one, two or three
    (`where` alone has three)."""
    assert ARITIES == (1, 2, 3)
    assert {gate.arity for gate in GATES.values()} <= set(ARITIES)
    assert [name for name, gate in GATES.items() if gate.arity == 3] == ["where"]
    with pytest.raises(ValueError, match="gate 'fma': 4 operands; a gate takes 1 or 2 or 3"):
        dataclasses.replace(GATES["add"], name="fma", arity=4)
