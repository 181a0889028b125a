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
    assert set(CALLABLE) == {"pow", "sigmoid", "tanh", "relu", "softplus", "exp", "log", "log1p",
                             "expm1", "erf", "erfc", "sqrt", "sin", "cos", "tan", "atan", "abs",
                             "max", "min", "where"}


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


# The textbook forms round away a small input (`1 + 1e-20` is 1), or cancel (`1 - erf(10)`
# is 0): the gates keep these digits, and so do their gradients (`1 + expm1(-50)` is 0).
STABLE = [
    ("log1p(x)", 1e-20, 1e-20, 1.0),
    ("log1p(x)", -1e-20, -1e-20, 1.0),
    ("expm1(x)", 1e-20, 1e-20, 1.0),
    ("expm1(x)", -50.0, math.expm1(-50.0), math.exp(-50.0)),
    ("erf(x)", 1e-20, 2 / math.sqrt(math.pi) * 1e-20, 2 / math.sqrt(math.pi)),
    ("erfc(x)", 10.0, math.erfc(10.0), -2 / math.sqrt(math.pi) * math.exp(-100.0)),
    ("erfc(x)", 26.0, math.erfc(26.0), -2 / math.sqrt(math.pi) * math.exp(-676.0)),
    ("erfc(x)", -3.0, math.erfc(-3.0), -2 / math.sqrt(math.pi) * math.exp(-9.0)),
]


@pytest.mark.parametrize("target", ["python", "numpy"])
@pytest.mark.parametrize(("expr", "x", "value", "grad"), STABLE)
def test_new_gates_keep_the_digits_the_textbook_forms_lose(expr, x, value, grad, target):
    f, (g,) = load_source(f"f = {expr}\n", target=target).backward(x)
    # 8 units in the last place: NumPy's SIMD log1p and expm1, and the numpy target's
    # own erf, may round otherwise than `math` (docs/numbers.md).
    assert float(f) == pytest.approx(value, rel=8 * 2**-52, abs=0)
    assert float(g) == pytest.approx(grad, rel=8 * 2**-52, abs=0)
    assert value != 0 and grad != 0


@pytest.mark.parametrize("name", [n for n, g in GATES.items() if g.cfn is not None])
def test_complex_form_has_the_value_and_the_complex_step_derivative(name):
    """`cfn` on x + ih, h tiny: the real part is `fn`'s value and imag/h the derivative
    (log1p's and expm1's keep both for a small x, where 1 + x or e^x - 1 would not)."""
    gate = GATES[name]
    graph = grad(_one_gate(name))
    for point in [*_points(name), *([(1e-12, 0.5)] if gate.arity == 1 else [])]:
        values = run(graph, dict(zip(graph.inputs, point)))
        for k, (_, node) in enumerate(graph.grads):
            stepped = [complex(x) for x in point]
            stepped[k] += 1e-20j
            z = gate.cfn(*stepped[: gate.arity])
            assert z.real == pytest.approx(gate.fn(*point[: gate.arity]), rel=1e-14), (name, point)
            assert z.imag / 1e-20 == pytest.approx(values[node], rel=1e-12), (name, point, k)
