"""The optimizer's passes: before/after fixtures, purity, and the IR's invariants."""

from __future__ import annotations

import math

import pytest

import circuitc
from circuitc.grad import grad
from circuitc.graph import check, dump
from circuitc.passes import PASSES, dce, fold, optimize
from conftest import EXAMPLES, ROOT, load_source


def _graph(text: str):
    return circuitc.api.lower_source(text.replace("\\n", "\n") + "\n", "<test>")[0]


def _cases():
    for line in (ROOT / "tests" / "fixtures" / "passes.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, before, after = (part.strip() for part in line.split("|"))
            yield pytest.param(name, before, after, id=f"{name}: {before.split(chr(92) + 'n')[-1]}")


@pytest.mark.parametrize(("name", "before", "after"), list(_cases()))
def test_pass_rewrites(name, before, after):
    rewrite = {p.__name__: p for p in PASSES}[name]
    result = dce(rewrite(fold(_graph(before))))
    check(result)
    assert dump(result) == dump(dce(fold(_graph(after))))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_pass_keeps_the_invariants_and_does_not_mutate(path):
    graph = grad(_graph(path.read_text()))
    for rewrite in PASSES:
        before = dump(graph)
        result = rewrite(graph)
        check(result)
        assert dump(graph) == before, f"{rewrite.__name__} changed its input"
        graph = result


def test_optimized_graphs_have_no_foldable_or_dead_nodes():
    for path in EXAMPLES:
        forward, backward = circuitc.compile_graphs(path.read_text())
        for graph in (forward, backward):
            assert dump(optimize(graph)) == dump(graph)


def test_hash_consing_merges_common_subexpressions():
    graph = _graph("input x, y\np = x * y\nq = y * x\nf = p + q\n")
    assert [n.op for n in graph.nodes] == ["input", "input", "mul", "add"]
    assert graph.nodes[2].name == "p"


def test_max_and_min_keep_their_operand_order():
    """Python's `max(a, b)` is `a` unless `b > a`: with signed zeros or nan the order shows,
    so `max(x, y)` and `max(y, x)` are two gates."""
    m = load_source("input x, y\noutput p, q, r, s\np = max(x, y)\nq = max(y, x)\n"
                    "r = min(x, y)\ns = min(y, x)\n")
    p, q, r, s = (math.copysign(1.0, v) for v in m.forward(0.0, -0.0))
    assert (p, q, r, s) == (1.0, -1.0, 1.0, -1.0)
    assert [math.isnan(v) for v in m.forward(1.0, math.nan)] == [False, True, False, True]


def test_passes_docstrings_show_their_rewrite():
    for rewrite in PASSES:
        assert "->" in rewrite.__doc__ or rewrite is dce


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_optimize_is_the_passes_in_order(path):
    graph = grad(_graph(path.read_text()))
    expected = graph
    for rewrite in PASSES:
        expected = rewrite(expected)
    assert dump(optimize(graph)) == dump(expected)


POWERS_OF_ZERO = [("sqrt(x) ** 0", -1.0, ValueError), ("log(x) ** 0", 0.0, ValueError),
                  ("(x / 0) ** 0", 1.0, ZeroDivisionError), ("exp(x) ** 0", 1000.0, OverflowError),
                  ("(2 * sqrt(x) + 1) ** 0", -1.0, ValueError), ("(x / (x - 1)) ** 0", 1.0, ZeroDivisionError)]


@pytest.mark.parametrize("target", ["python", "numpy"])
@pytest.mark.parametrize(("expression", "x", "error"), POWERS_OF_ZERO)
def test_a_zeroth_power_keeps_its_operands_domain_errors(expression, x, error, target):
    """`x**0 -> 1` drops the computation of `x`: only made where that cannot raise."""
    with pytest.raises(error):
        eval(expression.replace("sqrt", "math.sqrt").replace("log", "math.log")
             .replace("exp", "math.exp"), {"math": math, "x": x})
    module = load_source(f"input x\nf = {expression}\n", target=target)
    expected = error if target == "python" else FloatingPointError
    with pytest.raises(expected, match=r"^<test>:2:"):
        module.forward(x)
    with pytest.raises(expected, match=r"^<test>:2:"):
        module.backward(x)
    # Where the operand is defined the value is 1 and the gradient 0, even where the
    # operand is 0 (`log(1) ** 0`, `0 / -1`: a**0 is 1 for every a, so no a**-1 is computed).
    if "/ 0" not in expression:
        assert module.backward(0.0 if "/" in expression else 1.0) == (1.0, (0.0,))


def test_a_constant_square_folds_as_a_square_runs():
    """`x**2 -> x*x` at run time, so a constant square folds as `c*c`: inf where it overflows
    (`math.pow` would raise), and a cube, which stays `math.pow`, fails as at run time."""
    square = load_source("input x, c\nf = x + c ** 2\n")
    assert square.forward(1.0, 1e200) == math.inf
    assert load_source("input x\nf = x + 1e200 ** 2\n").backward(1.0) == (math.inf, (1.0,))
    assert load_source("input x\nf = x + pow(-1e200, 2)\n").forward(1.0) == math.inf
    cube = load_source("input x, c\nf = x + c ** 3\n")
    with pytest.raises(OverflowError):
        cube.forward(1.0, 1e200)
    with pytest.raises(circuitc.CircuitError, match="math range error"):
        circuitc.compile_source("input x\nf = x + 1e200 ** 3\n")
