"""Numbers at run time: overflow, underflow, `inf` and `nan`, per gate and target, as docs/numbers.md says.

The cases are the rows of the table in docs/numbers.md, read from the page itself, so
the documentation and the tests cannot drift apart. A cell is
`f`'s value, optionally followed by `, grad G` (the gradient, a number or a tuple in
`INPUTS` order, or an exception name), or an exception name alone, which both
`forward` and `backward` must raise with the failing gate's `.circ` position.
"""

from __future__ import annotations

import math
import re
import types

import pytest

import circuitc
from circuitc.gates import GATES
from conftest import ROOT

TARGETS = ("python", "numpy")
FILENAME = "numbers.circ"
ERRORS = {cls.__name__: cls for cls in (OverflowError, ValueError, ZeroDivisionError,
                                        FloatingPointError)}


def documented_table() -> list[dict[str, str]]:
    """The rows of the numbers table of docs/numbers.md, as {column: cell}."""
    section = (ROOT / "docs" / "numbers.md").read_text(encoding="utf-8")
    rows = [line.strip().strip("|").split("|") for line in section.splitlines()
            if line.startswith("| ")]
    header = [cell.strip() for cell in rows[0]]
    return [dict(zip(header, (cell.strip() for cell in row), strict=True)) for row in rows[1:]]


ROWS = documented_table()


def _module(expr: str, target: str) -> types.ModuleType:
    module = types.ModuleType("numbers")
    source = circuitc.compile_source(f"f = {expr}\n", FILENAME, target)
    exec(compile(source, FILENAME + ".py", "exec"), module.__dict__)  # noqa: S102
    return module


def _numbers(text: str) -> tuple[float, ...]:
    """`1.0` or `(0.0, -0.0)` as floats; `inf` and `nan` as Python's float() reads them."""
    return tuple(float(part) for part in text.strip("()").split(","))


def _same(actual, expected: float) -> bool:
    actual = float(actual)
    if math.isnan(expected):
        return math.isnan(actual)
    return actual == expected and math.copysign(1, actual) == math.copysign(1, expected)


def _expect_error(name: str, call, expr: str) -> None:
    """`call()` raises `name`, its message starting with the gate's position in `expr`."""
    with pytest.raises(ERRORS[name]) as raised:
        call()
    located = re.match(rf"{re.escape(FILENAME)}:1:(\d+): in (the gradient of )?'(.+?)': ",
                       str(raised.value))
    assert located, str(raised.value)
    column, label = int(located[1]), located[3]
    assert expr[column - 5: column - 5 + len(label)] == label, (expr, str(raised.value))


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("row", ROWS, ids=[f"{r['`f =`']} at {r['at']}" for r in ROWS])
def test_documented_behaviour(row, target):
    expr = row["`f =`"].strip("`")
    module = _module(expr, target)
    at = {name: float(value) for name, value in (item.split("=") for item in row["at"].split(", "))}
    assert set(at) == set(module.INPUTS), row
    args = [at[name] for name in module.INPUTS]
    value, _, grad = row[target].partition(", grad ")
    if value in ERRORS:
        _expect_error(value, lambda: module.forward(*args), expr)
        _expect_error(value, lambda: module.backward(*args), expr)
        return
    assert _same(module.forward(*args), float(value)), row
    if grad in ERRORS:
        _expect_error(grad, lambda: module.backward(*args), expr)
        return
    result, grads = module.backward(*args)
    assert _same(result, float(value)), row
    if grad:
        assert len(grads) == len(_numbers(grad)), row
        assert all(map(_same, grads, _numbers(grad))), (row, grads)


def test_the_table_names_every_target_and_several_cases_per_kind():
    assert {"python", "numpy"} <= set(ROWS[0]) and len(ROWS) >= 20
    cells = " ".join(row[t] for row in ROWS for t in TARGETS)
    for word in ("inf", "nan", "0.0", *ERRORS):
        assert word in cells, word


# Every gate that `.circ` can write, as an expression of all-NaN inputs; a comparison
# gives 0.0 or 1.0 (below).
COMPARISONS = {"lt": 0.0, "le": 0.0, "gt": 0.0, "ge": 0.0, "eq": 0.0, "ne": 1.0}
NAN_CASES = sorted({(g.name, f"{g.name}({', '.join('xyz'[: g.arity])})" if g.callable
                     else f"x {g.operator} y" if g.arity == 2 else f"{g.operator}x")
                    for g in GATES.values() if (g.callable or g.operator)
                    and g.name not in COMPARISONS})


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize(("gate", "expr"), NAN_CASES, ids=[g for g, _ in NAN_CASES])
def test_a_gate_whose_inputs_are_all_nan_returns_nan(gate, expr, target):
    module = _module(expr, target)
    args = [math.nan] * len(module.INPUTS)
    assert math.isnan(module.forward(*args))
    assert math.isnan(module.backward(*args)[0])


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("gate", COMPARISONS)
def test_a_comparison_of_nan_is_false_but_for_not_equal(gate, target):
    module = _module(f"x {GATES[gate].operator} y", target)
    assert module.forward(math.nan, math.nan) == COMPARISONS[gate]
    assert module.backward(math.nan, 1.0) == (COMPARISONS[gate], (0.0, 0.0))
