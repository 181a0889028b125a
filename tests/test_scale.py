"""Depth and size are limited only by memory: nothing recurses on the input."""

from __future__ import annotations

import math

import pytest

import circuitc
from conftest import load_source, run_cli

N = 10_000


@pytest.mark.parametrize(("text", "x", "expected"), [
    ("f = " + "(" * N + "x" + ")" * N, 2.0, (2.0, (1.0,))),
    ("f = " + "-" * N + "x", 2.0, (2.0, (1.0,))),
    ("f = " + "-(" * N + "x" + ")" * N, 2.0, (2.0, (1.0,))),
    ("f = " + "relu(" * N + "x" + ")" * N, 2.0, (2.0, (1.0,))),
    ("f = x" + " + x" * N, 2.0, (2.0 * (N + 1), (float(N + 1),))),
    ("f = x" + " * 1.0001" * N, 1.0, (1.0001 ** N, (1.0001 ** N,))),
], ids=["parentheses", "signs", "negated-parentheses", "calls", "sum", "product"])
def test_deep_expressions(text, x, expected):
    value, (grad,) = load_source(text).backward(x)
    assert value == pytest.approx(expected[0], rel=1e-9)
    assert grad == pytest.approx(expected[1][0], rel=1e-9)


def test_deeply_nested_gate_calls():
    text = "gate inc(u) = u + 1\nf = " + "inc(" * N + "x" + ")" * N + "\n"
    assert load_source(text).backward(0.0) == (float(N), (1.0,))


def test_deep_nesting_errors_cleanly(tmp_path):
    (tmp_path / "deep.circ").write_text("f = " + "(" * N + "x" + ")" * (N - 1) + "\n")
    result = run_cli("compile", "deep.circ", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("deep.circ:1:") and "'(' was never closed" in result.stderr


def test_long_chain_of_wires():
    """A 100,000-gate file compiles, and its value and gradient are the chain's."""
    lines = ["input x0 = 0.5"]
    for i in range(1, 100_001):
        lines.append(f"x{i} = x{i - 1} * 0.999 + 0.001" if i % 2 else f"x{i} = sin(x{i - 1})")
    module_source = circuitc.compile_source("\n".join(lines) + "\n", "chain.circ")
    namespace: dict = {}
    exec(compile(module_source, "chain.py", "exec"), namespace)  # noqa: S102
    x, slope = 0.5, 1.0  # the same chain, and the chain rule, by hand
    for i in range(1, 100_001):
        x, slope = (x * 0.999 + 0.001, slope * 0.999) if i % 2 else (math.sin(x), slope * math.cos(x))
    value, (grad,) = namespace["backward"](0.5)
    assert value == pytest.approx(x, rel=1e-12)
    assert grad == pytest.approx(slope, rel=1e-9)


def test_zeroth_powers_of_a_deep_chain_compile_in_linear_time():
    """Whether each `s_i ** 0` may become 1 depends on all of `s_i`'s gates: asked of every
    wire of a chain, that is answered once per gate, not once per gate per question."""
    lines = ["input x = 0.5", "s0 = x"]
    lines += [f"s{i} = s{i - 1} * 0.5 + sigmoid(x)" for i in range(1, N + 1)]
    lines.append("f = x + " + " + ".join(f"s{i} ** 0" for i in range(1, N + 1)))
    assert load_source("\n".join(lines) + "\n").backward(0.5) == (0.5 + N, (1.0,))
