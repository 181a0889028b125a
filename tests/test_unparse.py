"""`circuitc.unparse`: expressions written back as `.circ` text that parses back to them (the
drawings' labels). Moved here from tests/test_draw.py with the unparser."""

from __future__ import annotations

import pytest

from circuitc.unparse import expression_text


@pytest.mark.parametrize("source, shown", [
    ("a - (b - c)", "a - (b - c)"), ("(a - b) - c", "a - b - c"), ("-x ** 2", "-x ** 2"),
    ("(-x) ** 2", "(-x) ** 2"), ("2 ** -y", "2 ** -y"), ("a ** (b ** c)", "a ** b ** c"),
    ("(a ** b) ** c", "(a ** b) ** c"), ("a / (b * c)", "a / (b * c)"), ("-(a + b)", "-(a + b)"),
    ("x[n - 1 - i] * x[2*i + 1]", "x[n-1-i] * x[2*i+1]"), ("f(a, b + c)", "f(a, b + c)"),
    ("sum(x[i, j] for i, j in range(1, n - 1))", "sum(x[i,j] for i, j in range(1, n - 1))"),
    ("0.1 + 3.0 * a - 1e-300", "0.1 + 3 * a - 1e-300"), ("a - -b", "a - -b"),
])
def test_expressions_are_written_back_as_circ_text(source, shown):
    from circuitc.parse import parse
    text = expression_text(parse(f"f = {source}\n")[0].expr)
    assert text == shown
    assert expression_text(parse(f"f = {text}\n")[0].expr) == text  # it reads back


def test_expressions_nested_deeply_are_written_without_recursion():
    from circuitc.parse import parse
    depth = 5000
    text = expression_text(parse("f = " + "(" * depth + "x" + " + 1)" * depth + "\n")[0].expr)
    assert text == "x" + " + 1" * depth
