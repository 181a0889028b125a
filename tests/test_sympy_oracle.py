"""Random circuits (hypothesis) agree with SymPy's symbolic derivatives, an oracle we did not write.

Circuits are lists of wires, each one gate applied to inputs or earlier wires, so they
have fan-out and depth; the last two wires are the outputs. Arguments of gates with a
restricted domain are made positive first (`log(1 + e*e)`), so every point is valid.
"""

from __future__ import annotations

import math

import sympy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import load_source

INPUTS = ("x", "y", "z")
SYMBOLS = {name: sympy.Symbol(name, real=True) for name in INPUTS}

# name -> (arity, .circ template, SymPy builder)
SMOOTH = {
    "add": (2, "{} + {}", lambda a, b: a + b),
    "sub": (2, "{} - {}", lambda a, b: a - b),
    "mul": (2, "{} * {}", lambda a, b: a * b),
    "div": (2, "{} / (1 + {}**2)", lambda a, b: a / (1 + b**2)),
    "neg": (1, "-{}", lambda a: -a),
    "square": (1, "{}**2", lambda a: a**2),
    "cube": (1, "pow({}, 3)", lambda a: a**3),
    "power": (2, "(1 + {}**2) ** sin({})", lambda a, b: (1 + a**2) ** sympy.sin(b)),
    "sigmoid": (1, "sigmoid({})", lambda a: 1 / (1 + sympy.exp(-a))),
    "tanh": (1, "tanh({})", sympy.tanh),
    "softplus": (1, "softplus({})", lambda a: sympy.log(1 + sympy.exp(a))),
    "exp": (1, "exp(tanh({}))", lambda a: sympy.exp(sympy.tanh(a))),
    "log": (1, "log(1 + {}**2)", lambda a: sympy.log(1 + a**2)),
    "sqrt": (1, "sqrt(1 + {}**2)", lambda a: sympy.sqrt(1 + a**2)),
    "sin": (1, "sin({})", sympy.sin),
    "cos": (1, "cos({})", sympy.cos),
    "tan": (1, "tan(atan({}) / 2)", lambda a: sympy.tan(sympy.atan(a) / 2)),
    "atan": (1, "atan({})", sympy.atan),
}


@st.composite
def circuits(draw):
    names = list(INPUTS)
    exprs = dict(SYMBOLS)
    lines = [f"input {', '.join(INPUTS)}"]
    for k in range(draw(st.integers(2, 8))):
        op = draw(st.sampled_from(sorted(SMOOTH)))
        arity, template, build = SMOOTH[op]
        args = [draw(st.sampled_from(names)) for _ in range(arity)]
        wire = f"w{k}"
        lines.append(f"{wire} = {template.format(*args, *args)}")
        exprs[wire] = build(*(exprs[a] for a in args))
        names.append(wire)
    outputs = names[-2:]
    lines.append(f"output {', '.join(outputs)}")
    point = [draw(st.floats(-2, 2, allow_nan=False)) for _ in INPUTS]
    return "\n".join(lines) + "\n", [exprs[o] for o in outputs], point


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(circuits())
def test_values_and_gradients_agree_with_sympy(case):
    text, outputs, point = case
    module = load_source(text)
    subs = dict(zip(SYMBOLS.values(), point))
    values = module.forward(*point)
    for k, expr in enumerate(outputs):
        assert _close(values[k], float(expr.evalf(subs=subs))), text
        seeds = [float(j == k) for j in range(len(outputs))]
        _, grads = module.backward(*point, *seeds)
        for name, g in zip(INPUTS, grads):
            expected = float(sympy.diff(expr, SYMBOLS[name]).evalf(subs=subs))
            assert _close(g, expected), (text, name, g, expected)
