"""Random circuits (hypothesis) agree with SymPy's symbolic derivatives, an oracle we did not write.

Circuits are lists of wires, each one gate applied to inputs or earlier wires, so they
have fan-out and depth; the last two wires are the outputs. Arguments of gates with a
restricted domain are made positive first (`log(1 + e*e)`, `tests/oracle.py`'s safe
forms), so every point is valid.
"""

from __future__ import annotations

import math

import sympy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import load_source
from oracle import FORMS
from strategies import INPUTS, SYMBOLS

# The smooth gates and forms, as `tests/oracle.py` writes them with their arguments kept
# inside their domains.
SMOOTH = {name: form for name, form in FORMS.items() if form.kink is None}


@st.composite
def circuits(draw):
    names = list(INPUTS)
    exprs = dict(SYMBOLS)
    lines = [f"input {', '.join(INPUTS)}"]
    for k in range(draw(st.integers(2, 8))):
        op = draw(st.sampled_from(sorted(SMOOTH)))
        form = SMOOTH[op]
        args = [draw(st.sampled_from(names)) for _ in range(form.arity)]
        wire = f"w{k}"
        lines.append(f"{wire} = {form.safe.format(*args)}")
        exprs[wire] = form.build(*(exprs[a] for a in args))
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
