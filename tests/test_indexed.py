"""The whole-bus IR directly: plans as the planner makes them, the checker, the derivative
rules, the rewrites and the Hessian's pattern (`circuitc.indexed`).

Other tests check what the printed modules compute (`test_whole_bus*.py`, `test_loops.py`);
these pin down the IR itself: a plan's dump, what `check` refuses (also under `python -O`,
where an `assert` would vanish), and that the pattern's pieces do not grow with the sizes.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import pytest

from circuitc.indexed import plan
from circuitc.indexed.ad import hvp, jvp, vjp
from circuitc.indexed.ir import Access, Map, PlanError, Write, check, dump
from circuitc.indexed.passes import fused, with_residuals
from circuitc.indexed.sparsity import _System, band, hessian_pattern
from circuitc.parse import parse
from conftest import ROOT

ROSENBROCK = (ROOT / "circuits" / "rosenbrock.circ").read_text()
LAYER = """\
size n = 3
size m = 2
input W[m, n], x[n], b[m]
h[i] = tanh(sum(W[i, j] * x[j] for j) + b[i])
f = logsumexp(h[i] for i)
"""


def _plan(text: str, **sizes):
    return plan(parse(text), "c.circ", sizes)


def test_rosenbrock_is_one_map_that_sums():
    p = _plan(ROSENBROCK, n=5)
    assert dump(p) == """\
buffer x[5] input
buffer f sum
map over (i in 0..4)
  [0] = x[i+1]
  [1] = x[i]
  %0 = input [0]
  %1 = input [1]
  %2 = const 100.0
  %3 = mul %1 %1
  %4 = sub %0 %3
  %5 = mul %4 %4
  %6 = mul %2 %5
  %7 = const 1.0
  %8 = sub %7 %1
  %9 = mul %8 %8
  %10 = add %6 %9
  f += %10
output f"""


def test_a_contraction_is_a_map_whose_body_is_a_product():
    p = _plan(LAYER)
    contraction = p.stages[0]
    assert [a.var for a in contraction.domain] == ["i", "j"]
    assert contraction.reads == (Access("W", (("i", 1, 0), ("j", 1, 0))), Access("x", (("j", 1, 0),)))
    assert [n.op for n in contraction.body.nodes] == ["input", "input", "mul"]
    assert contraction.writes == (Write(Access("sum#1", (("i", 1, 0),)), True),)
    assert p.stages[-1].kind == "logsumexp"


def test_a_mean_is_a_sum_its_reader_divides_by_the_number_of_terms():
    p = _plan("size n = 3\ninput W[2, n], x[n]\nh[i] = mean(W[i, j] * x[j] for j)\n"
              "f = mean(x[j] * h[k] for j, k in range(0, 2))\n")
    check(p)
    contraction, divided = p.stages[0], p.stages[1]
    assert contraction.writes == (Write(Access("mean#1", (("i", 1, 0),)), True),)
    assert p.buffers["mean#1"].role == "sum"
    assert [(n.op, n.attr) for n in divided.body.nodes][1:] == [("const", 3.0), ("div", None)]
    over_pairs = p.stages[-1]  # 2 x 2 terms
    assert [(n.op, n.attr) for n in over_pairs.body.nodes][1:] == [("const", 4.0), ("div", None)]

def test_reverse_mode_transposes_reads_into_scatter_adds():
    backward = vjp(_plan(ROSENBROCK, n=5))
    check(backward)
    assert backward.grads == (("x", "\N{PARTIAL DIFFERENTIAL}x"),)
    adjoint = backward.stages[-1]
    targets = [w.target for w in adjoint.writes]
    assert targets == [Access("\N{PARTIAL DIFFERENTIAL}x", (("i", 1, 1),)),
                       Access("\N{PARTIAL DIFFERENTIAL}x", (("i", 1, 0),))]
    assert all(w.add for w in adjoint.writes)
    # The seed of `f`, which the forward map summed over `i`, is read at no `i`: a broadcast.
    assert Access("\N{PARTIAL DIFFERENTIAL}f") in adjoint.reads


def test_the_transpose_of_a_contraction_is_a_contraction():
    backward = vjp(_plan(LAYER))
    check(backward)
    adjoint = next(s for s in backward.stages if isinstance(s, Map)
                   and any(w.target.name == "\N{PARTIAL DIFFERENTIAL}x" for w in s.writes))
    node = dict(zip((w.target.name for w in adjoint.writes), (n for _, n in adjoint.body.outputs)))
    body = adjoint.body.nodes
    assert body[node["\N{PARTIAL DIFFERENTIAL}x"]].op == "mul"  # ∂x[j] += ∂sum[i] * W[i, j]
    assert {a.name for a in adjoint.reads} >= {"W", "\N{PARTIAL DIFFERENTIAL}sum#1"}


def test_forward_mode_and_hvp_check():
    for p in (_plan(ROSENBROCK, n=5), _plan(LAYER)):
        check(jvp(p))
        second = hvp(p)
        check(second)
        assert [name for name, _ in second.grads] == list(p.wrt)
        assert len(second.tangents) == len(p.wrt)


def test_fusion_makes_rosenbrocks_gradient_one_stage():
    backward = vjp(_plan(ROSENBROCK, n=5))
    one = fused(backward)
    check(one)
    assert len(backward.stages) == 2 and len(one.stages) == 1
    assert {w.target.name for w in one.stages[0].writes} == {"f", "\N{PARTIAL DIFFERENTIAL}x"}


def test_residuals_save_what_an_adjoint_would_recompute():
    backward = vjp(_plan(LAYER))
    saved = with_residuals(backward)
    check(saved)
    tanh = [s for s in saved.stages if isinstance(s, Map)
            and any(n.op == "tanh" for n in s.body.nodes)]
    assert len(tanh) == 1  # the adjoint reads tanh's value instead of computing it again


@pytest.mark.parametrize(("broken", "message"), [
    (lambda p: replace(p, stages=p.stages[:1] + p.stages[2:]), "before it is defined"),
    (lambda p: replace(p, stages=p.stages[:2] + p.stages[1:]), "a second time"),
    (lambda p: replace(p, stages=(*p.stages, p.stages[0])), "after a read of it"),
    (lambda p: replace(p, stages=(replace(p.stages[0], reads=p.stages[0].reads[:1]),
                                  *p.stages[1:])), "body inputs"),
    (lambda p: replace(p, stages=(replace(p.stages[0], reads=(
        Access("W", (("i", 1, 0), ("j", 1, 5))), p.stages[0].reads[1])), *p.stages[1:])),
     "reads"),
    (lambda p: replace(p, stages=(replace(p.stages[0], writes=(Write(Access("sum#1", (
        ("i", 1, 0),)), False),)), *p.stages[1:])), "= into sum buffer"),
])
def test_check_refuses_a_malformed_plan(broken, message):
    with pytest.raises(PlanError, match=message):
        check(broken(_plan(LAYER)))


def test_check_raises_under_optimization():
    code = ("from dataclasses import replace\n"
            "from circuitc.indexed import plan\n"
            "from circuitc.indexed.ir import PlanError, check\n"
            "from circuitc.parse import parse\n"
            "p = plan(parse('size n = 3\\ninput x[n]\\nh[i] = x[i] * 2\\n'), 'c.circ')\n"
            "try:\n    check(replace(p, stages=()))\nexcept PlanError:\n    print('raised')\n")
    result = subprocess.run([sys.executable, "-O", "-c", code], capture_output=True, text=True,
                            cwd=ROOT, check=False)
    assert result.stdout.strip() == "raised", result.stderr


def test_the_patterns_pieces_do_not_grow_with_the_sizes():
    small, large = (hessian_pattern(_plan(ROSENBROCK, n=n)) for n in (10, 10**6))
    assert len(small) == len(large) <= 4
    assert band(small) == band(large) == 1


def test_affine_equations_are_solved_over_the_integers():
    # 2 p + 1 = 3 q over 0 <= p < 10, 0 <= q < 10: (p, q) = (1, 1), (4, 3), (7, 5).
    system = _System([10, 10])
    assert system.equate((0, 2, 1), (1, 3, 0))
    piece = system.piece(((0, 1, 0),), "", ((1, 1, 0),), [])
    (s,) = piece.sizes
    assert sorted((piece.b[0][1] * k + piece.b[0][2], piece.v[0][1] * k + piece.v[0][2])
                  for k in range(s)) == [(1, 1), (4, 3), (7, 5)]
    assert not _System([10, 10]).equate((0, 2, 0), (1, 2, 1))  # even = odd
    assert not _System([3]).equate((0, 1, 0), (None, 0, 5))  # out of range
