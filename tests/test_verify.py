"""`circuitc verify`: the examples pass; wrong gradients fail and are blamed on the right gate;
kinks are skipped and domain edges reported, never failed; the complex step, --fast, points."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
from click.testing import CliRunner

import circuitc
from circuitc import gates
from circuitc.cli import main
from circuitc.report import values
from circuitc.verify import DEFAULT_TOLERANCES, Check, report_dict, report_text, verify_circuit
from circuitc.verify.checked import Checked
from circuitc.verify.checks import Checker
from conftest import CIRCUITS, EXAMPLES, load_source, run_cli


def verify_json(*args):
    result = run_cli("verify", *args, "--json")
    assert result.returncode in (0, 1), result.stderr
    document = json.loads(result.stdout)
    assert document["ok"] == (result.returncode == 0)
    return document


def checks(document):
    return [c for p in document["points"] for c in p["checks"]]


def write(tmp_path, text, name="c.circ"):
    path = tmp_path / name
    path.write_text(text)
    return path


# -- every example verifies ------------------------------------------------------------

@pytest.mark.parametrize("difference", ["central", "forward", "complex"])
@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_example_verifies(path, difference):
    result = run_cli("verify", path, "--points", "4", "--difference", difference)
    assert result.returncode == 0, result.stdout + result.stderr
    summary = result.stdout.strip().splitlines()[-1]
    assert summary.startswith(f"{path}: OK: ") and " 0 failed" in summary


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_example_verifies_fast(path):
    document = verify_json(path, "--fast", "--points", "3")
    assert document["ok"] and document["summary"]["passed"] > 0
    for point in document["points"]:  # one check per output, along a direction
        assert [c["input"] for c in point["checks"]] == [None] * len(point["outputs"])


def test_table_and_summary_of_the_neuron():
    result = run_cli("verify", CIRCUITS / "neuron.circ")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "point 1 (the defaults): a = 1.0, b = 2.0, c = -3.0, x = -1.0, y = 3.0"
    assert lines[1] == "  f = 0.8807970779778823"
    assert lines[2].split() == ["gradient", "analytic", "numeric", "abs", "err", "rel", "err",
                                "verdict"]
    row = lines[3].split()
    assert row[:2] == ["df/da", "-0.10499358540350662"] and row[-1] == "ok"
    assert abs(float(row[2]) - -0.10499358540350662) < 1e-9
    assert lines[-1].startswith(f"{CIRCUITS / 'neuron.circ'}: OK: 5 passed, 0 failed at 1 point;")


def test_json_document():
    document = verify_json(CIRCUITS / "svm_loss.circ", "--points", "2", "--seed", "3")
    assert document["ok"] is True
    assert document["difference"] == "central"
    assert (document["rtol"], document["atol"]) == DEFAULT_TOLERANCES["central"]
    assert len(document["points"]) == 3
    first = document["points"][0]
    assert first["label"] == "the defaults"
    assert first["outputs"] == {"loss": 2.7, "score": -1.2}
    names = [(c["output"], c["input"]) for c in first["checks"]]
    assert names[:2] == [("loss", "a"), ("score", "a")] and len(names) == 14
    for check in checks(document):
        assert check["verdict"] == "pass"
        assert check["abs_error"] <= check["tolerance"]
        assert check["tolerance"] == pytest.approx(1e-8 + 1e-6 * abs(check["numeric"]))
    assert document["summary"]["passed"] == 3 * 14


# -- a wrong gradient fails, and the wrong rule is named ---------------------------------------

@pytest.fixture
def corrupt(monkeypatch):
    """Replace one gate's derivative rule, for this test only."""
    def replace(name, derivative):
        monkeypatch.setitem(gates.GATES, name, dataclasses.replace(gates.GATES[name],
                                                                   derivative=derivative))
    return replace


def test_a_wrong_rule_fails_and_is_blamed(corrupt):
    # sigmoid's rule forgets the (1 - s) factor
    corrupt("sigmoid", lambda b, g, y, x: (b.mul(g, y),))
    result = CliRunner().invoke(main, ["verify", str(CIRCUITS / "neuron.circ")])
    assert result.exit_code == 1, result.output
    rows = {line.split()[0]: line for line in result.output.splitlines() if line.startswith("  d")}
    assert set(rows) == {"df/da", "df/db", "df/dc", "df/dx", "df/dy"}
    assert all(row.endswith("FAIL") for row in rows.values())
    blame = [line for line in result.output.splitlines() if line.startswith("  blame:")]
    assert len(blame) == 1
    assert blame[0].startswith("  blame: df/da, df/db, df/dc, df/dx, df/dy: the derivative rule "
                               f"of 'sigmoid' at {CIRCUITS / 'neuron.circ'}:5:5 gives ")
    assert result.output.splitlines()[-1].startswith(
        f"{CIRCUITS / 'neuron.circ'}: FAILED: 0 passed, 5 failed")


def test_blame_names_the_first_wrong_gate_on_the_path(corrupt):
    # mul's rule gives both inputs the second factor: wrong for the first argument only
    corrupt("mul", lambda b, g, y, x1, x2: (b.mul(g, x2), b.mul(g, x2)))
    text = "input x = 3, y = 2\nq = x + 1\nf = sin(q) * y\n"
    module = load_source(text)
    report = verify_circuit(module, circuitc.compile_graphs(text, "p.circ")[0])
    verdicts = {c.input: c.verdict for c in report.points[0].checks}
    assert verdicts == {"x": "pass", "y": "fail"}
    (blame,) = report.points[0].blame
    assert (blame.input, blame.gate, blame.where, blame.argument) == ("y", "'*'", "p.circ:3:12", 2)
    assert blame.rule == pytest.approx(2.0) and blame.numeric == pytest.approx(math.sin(4.0))


def test_fast_catches_a_wrong_rule_and_blames_it(corrupt):
    corrupt("tanh", lambda b, g, y, x: (b.mul(g, b.sub(b.const(1.0), y)),))
    text = "input a = 0.3, b = -0.7\nf = tanh(a * b) + a\n"
    report = verify_circuit(load_source(text), circuitc.compile_graphs(text, "t.circ")[0], fast=True)
    (check,) = report.points[0].checks
    assert check.input is None and check.verdict == "fail"
    assert report.points[0].blame[0].gate == "'tanh'"
    assert report.points[0].blame[0].where == "t.circ:2:5"


# Correct rules at points where the default step misjudges them: a large argument
# (sin at 1e6: the step is 6, a sixth of a period), a steep one (1/x at 0.001), a pole
# (tan next to pi/2). Blame retries smaller steps and the complex step, as the main
# check does, and blames none of them.
HARD_POINTS = [("input x = 1e6\nf = sin(x)\n", "sin"),
               ("input x = 0.001\nf = sin(1/x)\n", "/"),
               ("input x = 1.5707963\nf = tan(x)\n", "tan")]


@pytest.mark.parametrize(("text", "gate"), HARD_POINTS, ids=[g for _, g in HARD_POINTS])
def test_blame_retries_before_it_blames_a_correct_rule(text, gate):
    module = load_source(text)
    checker = Checker(Checked(module, circuitc.compile_graphs(text)[0]), "central",
                       None, None, None)
    assert checker.blame(dict(module.DEFAULTS), Check("f", "x", verdict="fail")) is None


@pytest.mark.parametrize(("text", "wrong", "blamed"), [
    ("input x = 1e6\nf = exp(sin(x))\n", "exp", "'exp' at h.circ:2:5"),
    ("input x = 0.001\nf = sin(1/x)\n", "sin", "'sin' at h.circ:2:5"),
    ("input x = 1.5707963\nf = sin(tan(x))\n", "sin", "'sin' at h.circ:2:5"),
], ids=["sin", "/", "tan"])
def test_blame_passes_over_a_correct_rule_at_a_hard_point_to_the_wrong_one(
        corrupt, tmp_path, text, wrong, blamed):
    corrupt(wrong, lambda b, g, y, x: (b.mul(g, b.const(3.0)),))
    path = write(tmp_path, text, "h.circ")
    result = CliRunner().invoke(main, ["verify", str(path)], catch_exceptions=False)
    assert result.exit_code == 1, result.output
    (blame,) = [line for line in result.output.splitlines() if line.startswith("  blame:")]
    assert f"the derivative rule of {blamed.replace(' at h.circ', f' at {path}')}" in blame


def test_when_every_rule_is_right_but_the_complex_step_disagrees_the_rules_are_combined_wrongly():
    text = "input x = 0.5, y = 2\nf = sin(x) * y\n"
    module = load_source(text)
    backward = module.backward
    module.backward = lambda x, y, d_f=1.0: (backward(x, y, d_f)[0],
                                             tuple(2 * g for g in backward(x, y, d_f)[1]))
    report = verify_circuit(module, circuitc.compile_graphs(text, "w.circ")[0])
    assert [c.method for c in report.points[0].checks] == ["complex", "complex"]
    assert report.points[0].unblamed == ["df/dx", "df/dy"]
    assert ("  blame: df/dx, df/dy: no gate's derivative rule disagrees with its own numerical "
            "derivative here, yet the complex step, exact to rounding, disagrees with the "
            "gradient: the rules are combined wrongly") in report_text(report)


def test_too_large_a_step_fails_with_both_numbers(tmp_path):
    path = write(tmp_path, "input x = 1\nf = exp(10 * x)\n")
    result = run_cli("verify", path, "--h", "0.1")
    assert result.returncode == 1
    document = verify_json(path, "--h", "0.1")
    (check,) = checks(document)
    assert check["verdict"] == "fail"
    assert check["analytic"] == 10 * math.exp(10)
    assert check["numeric"] == pytest.approx(10 * math.exp(10) * math.sinh(1.0), rel=1e-12)
    row = next(line for line in result.stdout.splitlines() if line.startswith("  df/dx"))
    assert repr(check["analytic"]) in row and repr(check["numeric"]) in row and "FAIL" in row
    assert "no gate's derivative rule disagrees" in result.stdout
    # with its default step the same circuit passes
    assert run_cli("verify", path).returncode == 0


# -- kinks: skipped, never failed ----------------------------------------------------------------

@pytest.mark.parametrize(("text", "gate"), [
    ("f = relu(x)\n", "relu"),
    ("f = abs(x)\n", "abs"),
    ("f = max(x, 0)\n", "max"),
    ("f = min(x, 2*x)\n", "min"),
    ("f = relu(x - 1e-9) * 3\n", "relu"),  # within h of the kink, not on it
])
def test_a_kink_is_skipped_not_failed(tmp_path, text, gate):
    path = write(tmp_path, text)
    result = run_cli("verify", path, "x=0")
    assert result.returncode == 0, result.stdout
    assert f"skipped: at the kink of '{gate}' ({path}:1:5)" in result.stdout
    # every check met the kink, so a point near it, off the kink, is checked too
    assert "point 2 (near point 1, where every check met a kink): x = " in result.stdout
    assert result.stdout.splitlines()[-1].startswith(
        f"{path}: OK: 1 passed, 0 failed, 1 skipped at kinks at 2 points")
    for difference in ("central", "forward", "complex"):
        report = verify_circuit(load_source(text), circuitc.compile_graphs(text)[0], {"x": 0.0},
                                difference=difference)
        (check,) = report.points[0].checks
        assert check.verdict == "skip" and check.method != "complex" and check.numeric is None
        (moved,) = report.points[1].checks
        assert moved.verdict == "pass" and 1e-4 < abs(report.points[1].at["x"]) < 1e-2
        assert report.ok


def test_a_kink_only_skips_what_depends_on_it(tmp_path):
    path = write(tmp_path, "input x = 0, y = 2\nf = relu(x) + y*y\ng = x * y\noutput f, g\n")
    verdicts = {(c["output"], c["input"]): c["verdict"] for c in checks(verify_json(path))}
    assert verdicts == {("f", "x"): "skip", ("g", "x"): "pass",
                        ("f", "y"): "pass", ("g", "y"): "pass"}


def test_away_from_the_kink_relu_is_judged(tmp_path):
    path = write(tmp_path, "f = relu(x) + abs(x - 3) + max(x, 1) + min(x, -1)\n")
    document = verify_json(path, "x=0.5")
    assert [c["verdict"] for c in checks(document)] == ["pass"]


@pytest.mark.parametrize("args", [(), ("--fast",), ("--order", "2"), ("--order", "2", "--fast"),
                                  ("--target", "numpy"), ("--difference", "forward")])
def test_logsumexp_at_ties_is_smooth_and_judged(tmp_path, args):
    # equal logits, the zero-initialised case: the max inside logsumexp only keeps exp from
    # overflowing, and moves nothing however it switches
    path = write(tmp_path, "input s[3] = 0\nloss = logsumexp(s[c] for c) - s[0]\n")
    result = run_cli("verify", path, *args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "skipped" not in result.stdout and "near point" not in result.stdout
    assert result.stdout.splitlines()[-1].startswith(f"{path}: OK: ")
    assert result.stderr == ""


@pytest.mark.parametrize("text", [
    "m = max(max(a, b), c)\nf = m + log(exp(a - m) + exp(b - m) + exp(c - m))\n",
    "m = max(a, max(b, c))\nf = m + log(exp(a - m) + exp(b - m) + exp(c - m))\n",
    "m = max(a, b)\nm2 = max(m, c)\nf = m2 + log(exp(a - m2) + exp(b - m2) + exp(c - m2))\n"])
def test_a_kink_that_moves_nothing_is_none_whatever_the_fold(text):
    # logsumexp written out with the max folded either way: what matters is whether the
    # function is smooth, not how its max is nested
    graph = circuitc.compile_graphs(text)[0]
    report = verify_circuit(load_source(text), graph, {"a": 0.5, "b": 0.5, "c": 0.5})
    assert [c.verdict for c in report.points[0].checks] == ["pass"] * 3
    assert len(report.points) == 1 and report.ok


def test_a_max_that_shows_is_a_kink_though_logsumexp_shares_it(tmp_path):
    path = write(tmp_path, "input s[3] = 0\nz = max(s[c] for c) + logsumexp(s[c] for c)\n")
    document = verify_json(path)
    first, near = document["points"]
    assert [c["verdict"] for c in first["checks"]] == ["skip"] * 3
    assert all(c["reason"].startswith(f"at the kink of 'max' ({path}:2:5)")
               for c in first["checks"])
    assert near["label"] == "near point 1, where every check met a kink"
    assert [c["verdict"] for c in near["checks"]] == ["pass"] * 3
    assert all(1e-4 <= abs(x) < 1e-2 for x in near["inputs"].values())


def test_relu_squared_at_zero_is_still_a_kink(tmp_path):
    # its slope is 0 at 0, but a central difference there measures h/2: the kink shows
    path = write(tmp_path, "input x = 0\nf = relu(x) * relu(x)\n")
    for order in ("1", "2"):
        document = verify_json(path, "--order", order)
        assert [c["verdict"] for c in document["points"][0]["checks"]] == ["skip"]
        assert [c["verdict"] for c in document["points"][1]["checks"]] == ["pass"]


@pytest.mark.parametrize(("text", "args", "why"), [
    ("input x = -1\nf = log(x) * 2\n", (), "every check was skipped or outside the domain"),
    ("f = 2 * 3\n", (), "there was none to judge"),
    ("input x = 1, y = 3\nf = x * y\n", ("--h", "1e-300"),
     "every check was skipped or outside the domain")])
def test_a_run_that_judges_nothing_exits_1(tmp_path, text, args, why):
    path = write(tmp_path, text)
    result = run_cli("verify", path, *args)
    assert result.returncode == 1, result.stdout
    assert result.stdout.splitlines()[-1].startswith(f"{path}: NOTHING JUDGED: 0 passed, 0 failed")
    assert result.stderr == f"error: no gradient was judged ({why}), so nothing is verified\n"
    document = verify_json(path, *args)
    assert not document["ok"] and document["summary"]["passed"] == 0


# -- domains: reported, never failed ---------------------------------------------------------------

def test_a_point_outside_the_domain_is_reported(tmp_path):
    path = write(tmp_path, "input x = -1\nf = log(x) * 2\n")
    result = run_cli("verify", path)
    assert result.returncode == 1  # nothing was judged
    assert f"  outside the domain: {path}:2:5: in 'log': math domain error" in result.stdout
    assert "FAIL" not in result.stdout
    assert "no gradient was judged" in result.stderr
    document = verify_json(path)
    assert document["summary"]["points_outside_domain"] == 1
    assert "'log'" in document["points"][0]["outside_domain"]


def test_only_the_targets_domain_errors_are_outside_the_domain(monkeypatch):
    text = "input x = 2, y = 3\nf = log(x) * y\n"
    graph = circuitc.compile_graphs(text)[0]
    for target in ("python", "numpy"):  # math's ValueError, NumPy's FloatingPointError
        report = verify_circuit(load_source(text, target=target), graph, {"x": -1.0},
                                target=target)
        assert "in 'log'" in report.points[0].domain and not report.failed
    # from NumPy code a ValueError is arrays whose shapes do not fit: a failure, not a pass
    module = load_source(text, target="numpy")

    def broken(*args):
        raise ValueError("operands could not be broadcast together with shapes (2,) (3,)")
    monkeypatch.setattr(module, "backward", broken)
    report = verify_circuit(module, graph, n_points=1, target="numpy")
    raised = "the module's backward raised ValueError: operands could not be broadcast"
    assert all(p.error.startswith(raised) for p in report.points) and len(report.points) == 2
    assert report.failed and not report.ok
    text = report_text(report)
    assert "  FAILED: the module's backward raised ValueError: operands" in text
    assert ": FAILED: 0 passed, 0 failed, 2 errors at 2 points;" in text.splitlines()[-1]
    document = report_dict(report)
    assert document["summary"]["points_with_errors"] == 2 and not document["ok"]
    assert document["points"][0]["error"] == report.points[0].error


def test_an_undefined_gradient_is_outside_the_domain(tmp_path):
    path = write(tmp_path, "f = sqrt(x)\n")
    document = verify_json(path, "x=0")
    assert not document["ok"] and "the gradient" in document["points"][0]["outside_domain"]


def test_a_gradient_that_is_not_finite_is_outside_the_domain_and_blames_no_gate():
    # at a = inf, df/dx = s(1-s) * a = 0 * inf = nan: undefined, not wrong
    result = run_cli("verify", CIRCUITS / "neuron.circ", "a=inf")
    assert result.returncode == 0, result.stdout
    rows = {line.split()[0]: line for line in result.stdout.splitlines() if line.startswith("  d")}
    assert rows["df/dx"].split()[1] == "nan"
    assert rows["df/dx"].endswith("outside the domain: the gradient is not finite")
    assert "FAIL" not in result.stdout and "blame" not in result.stdout
    assert ", 2 outside the domain at 1 point;" in result.stdout.splitlines()[-1]
    document = verify_json(CIRCUITS / "neuron.circ", "a=inf", "--fast")
    assert [c["verdict"] for c in checks(document)] == ["domain"]  # nan along any direction


def test_blame_passes_over_a_gate_whose_derivatives_are_not_finite_there():
    text = (CIRCUITS / "neuron.circ").read_text()
    checker = Checker(Checked(load_source(text), circuitc.compile_graphs(text)[0]),
                       "central", None, None, None)
    at = {"a": math.inf, "b": 2.0, "c": -3.0, "x": -1.0, "y": 3.0}
    # '*' of a*x: its rule gives inf for x, its central difference nan; neither is wrong
    assert checker.blame(at, Check("f", "x", verdict="fail")) is None


def test_a_step_below_the_inputs_resolution_is_reported_not_failed(tmp_path):
    path = write(tmp_path, "input x = 1, y = 3\nf = x * y\n")
    result = run_cli("verify", path, "--h", "1e-300")
    assert result.returncode == 1, result.stdout  # nothing was judged
    assert ("skipped: h = 1e-300 is below the resolution of x = 1.0 (x + h == x): "
            "give a larger --h") in result.stdout
    assert "FAIL" not in result.stdout and "try a smaller --h" not in result.stdout
    assert result.stdout.splitlines()[-1].startswith(
        f"{path}: NOTHING JUDGED: 0 passed, 0 failed, 2 skipped with h below an input's "
        "resolution at 1 point")
    assert "no gradient was judged" in result.stderr
    # only the inputs it does not move: x = 1 moves by 1e-6, y = 1e12 does not
    document = verify_json(path, "y=1e12", "--h", "1e-6")
    assert [c["verdict"] for c in checks(document)] == ["pass", "skip"]
    (check,) = checks(verify_json(path, "y=1e12", "--h", "1e-6", "--fast"))
    assert check["verdict"] == "skip"
    assert check["reason"] == "h = 1e-06 is below the resolution of y = 1000000000000.0 (x + h·v == x): " \
        "give a larger --h"
    # the complex step has no such limit
    assert verify_json(path, "--h", "1e-300", "--difference", "complex")["summary"]["passed"] == 2


def test_near_the_edge_of_the_domain_a_smaller_step_is_used(tmp_path):
    path = write(tmp_path, "f = log(x)\n")
    (check,) = checks(verify_json(path, "x=1e-6"))
    assert check["verdict"] == "pass" and check["h"] < 1e-6
    assert "the default step does not suit" in check["note"]


def test_random_points_avoid_the_domain_edges_where_they_can(tmp_path):
    path = write(tmp_path, "f = log(x) + sqrt(y) + 1/z\n")
    document = verify_json(path, "--points", "10")
    assert document["ok"] and document["summary"]["passed"] == 33
    for point in document["points"]:
        assert point["inputs"]["x"] > 0 and point["inputs"]["y"] > 0


# -- the complex step ------------------------------------------------------------------------------

SMOOTH = ["multiply.circ", "add_multiply.circ", "neuron.circ", "physics.circ", "two_layer.circ"]


@pytest.mark.parametrize("name", SMOOTH)
def test_complex_step_is_exact_to_about_1e_12(name):
    document = verify_json(CIRCUITS / name, "--difference", "complex", "--points", "5")
    assert document["ok"]
    assert (document["rtol"], document["atol"]) == DEFAULT_TOLERANCES["complex"]
    for check in checks(document):
        assert check["method"] == "complex" and check["h"] < 1e-15
        assert check["abs_error"] <= 1e-12 * abs(check["numeric"]) + 1e-15
    central = verify_json(CIRCUITS / name, "--points", "5")
    worst = max(c["rel_error"] for c in checks(central) if c["numeric"])
    assert worst > 1e-12  # the complex step really is the more accurate


def test_complex_step_falls_back_at_piecewise_gates_and_says_so(tmp_path):
    path = write(tmp_path, "input x = 0.5, y = -1.5, z = 2\n"
                           "f = relu(x) + abs(y) + min(x, y) + max(x*y, -3) + exp(z)\n")
    result = run_cli("verify", path, "--difference", "complex")
    assert result.returncode == 0
    assert f"note: df/dx: central differences: 'relu' at {path}:2:5 is not complex-analytic" \
        in result.stdout
    assert f"note: df/dy: central differences: 'abs' at {path}:2:15 is not complex-analytic" \
        in result.stdout
    assert "(central-difference fallbacks: rtol 1e-06, atol 1e-08)" in result.stdout
    methods = {c["input"]: c["method"] for c in checks(verify_json(path, "--difference", "complex"))}
    assert methods == {"x": "central", "y": "central", "z": "complex"}


def test_a_gate_without_cfn_yet_is_not_called_piecewise(monkeypatch):
    """A complex-analytic gate whose `cfn` is not written yet (as a new `erf` would be)
    falls back to central differences saying so, and is no kink: at `tanh`'s 0, where
    a kink would straddle, it is checked, not skipped."""
    module, forward = circuitc.api.load_compiled_source("input x = 0.0\nf = tanh(x) * 3\n",
                                                           "g.circ")
    monkeypatch.setitem(gates.GATES, "tanh", dataclasses.replace(gates.GATES["tanh"], cfn=None))
    report = verify_circuit(module, forward, difference="complex")
    (check,) = report.points[0].checks
    assert (check.verdict, check.method) == ("pass", "central")
    assert check.note == "central differences: 'tanh' at g.circ:2:5 has no complex implementation (cfn)"
    assert "not complex-analytic" not in report_text(report)
    assert not gates.GATES["relu"].analytic and gates.GATES["relu"].no_complex_step == (
        "is not complex-analytic")
    with pytest.raises(ValueError, match="gate 'relu' is not analytic: it can have no cfn"):
        dataclasses.replace(gates.GATES["relu"], cfn=abs)


# -- --fast on thousands of inputs -------------------------------------------------------------------

def test_fast_checks_two_thousand_inputs(tmp_path):
    names = [f"{v}{i}" for i in range(1000) for v in "xy"]
    defaults = ", ".join(f"{name} = {(k % 7 - 3) / 4}" for k, name in enumerate(names))
    body = " + ".join(f"x{i}*y{i}" for i in range(1000))
    path = write(tmp_path, f"input {defaults}\nf = sigmoid(({body}) / 100)\n")
    document = verify_json(path, "--fast", "--points", "2", "--difference", "complex")
    assert document["ok"] and document["summary"]["passed"] == 3
    assert all(len(p["checks"]) == 1 for p in document["points"])
    assert len(document["points"][1]["inputs"]) == 2000
    result = run_cli("verify", path, "--fast")
    assert result.returncode == 0
    # long points are abbreviated: 6 values, the count of those left out, the last value
    first = result.stdout.splitlines()[0]
    assert "... (1993 more), y999 = " in first and first.count(" = ") == 7


def test_abbreviated_values_count_what_they_leave_out():
    named = {f"x{k}": float(k) for k in range(10)}
    assert values(named) == ("x0 = 0.0, x1 = 1.0, x2 = 2.0, x3 = 3.0, x4 = 4.0, x5 = 5.0, "
                             "... (3 more), x9 = 9.0")
    eight = dict(list(named.items())[:8])
    assert values(eight) == ", ".join(f"x{k} = {k}.0" for k in range(8))
    assert values(named, limit=None) == ", ".join(f"x{k} = {k}.0" for k in range(10))


# -- points and seeds --------------------------------------------------------------------------------

def test_random_points_are_seeded_and_drawn_from_the_documented_distribution():
    path = CIRCUITS / "two_layer.circ"
    first = verify_json(path, "--points", "20", "--seed", "7")
    again = verify_json(path, "--points", "20", "--seed", "7")
    other = verify_json(path, "--points", "20", "--seed", "8")
    assert first == again and first["points"] != other["points"]
    values = [v for p in first["points"][1:] for v in p["inputs"].values()]
    assert all(0.5 <= abs(v) < 2 for v in values)
    assert any(v < 0 for v in values) and any(v > 0 for v in values)


def test_given_values_stay_fixed_and_missing_ones_are_drawn(tmp_path):
    path = write(tmp_path, "input w = 3, x, y\nf = w * x + y\n")
    document = verify_json(path, "y=0.25", "--points", "2")
    labels = [p["label"] for p in document["points"]]
    assert labels == ["the given values and defaults; drawn: x", "random point 1, keeping y",
                      "random point 2, keeping y"]
    assert document["points"][0]["inputs"]["w"] == 3.0
    assert all(p["inputs"]["y"] == 0.25 for p in document["points"])
    assert document["points"][1]["inputs"]["w"] != 3.0


# -- bad usage -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("args", "message"), [
    (["--difference", "backward"], "Invalid value for '--difference'"),
    (["--h", "0"], "Invalid value for '--h'"),
    (["--h", "nan"], "must be a finite number"),
    (["--rtol", "-1"], "Invalid value for '--rtol'"),
    (["--points", "-2"], "Invalid value for '--points'"),
    (["z=1"], "no input named 'z'"),
    (["x=abc"], "x: 'abc' is not a number"),
])
def test_bad_usage_exits_2(args, message):
    result = run_cli("verify", CIRCUITS / "multiply.circ", *args)
    assert result.returncode == 2 and message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_bad_file_exits_2(tmp_path):
    path = write(tmp_path, "f = sigmod(x)\n")
    result = run_cli("verify", path)
    assert result.returncode == 2
    assert result.stderr.startswith(f"{path}:1:5: error: unknown gate 'sigmod'")


def test_circuits_without_inputs_or_with_overflow(tmp_path):
    result = run_cli("verify", write(tmp_path, "f = 2 * 3\n"))
    assert result.returncode == 1  # nothing to judge
    assert result.stdout.splitlines()[:3] == ["point 1 (no inputs)", "  f = 6.0",
                                              "  (no inputs: nothing to differentiate)"]
    text = "input x = 1e200\nf = x * x\n"
    report = verify_circuit(load_source(text), circuitc.compile_graphs(text)[0])
    assert not report.ok and report.points[0].domain == "not finite: f = inf"


@pytest.mark.parametrize("seed", range(6))
def test_fast_sees_errors_that_cancel_in_sign_only_directions(corrupt, seed):
    # swapped adjoints: the errors in dx and dy are equal and opposite, so a direction of
    # signs alone would miss them whenever the two signs agree
    corrupt("mul", lambda b, g, y, x1, x2: (b.mul(g, x1), b.mul(g, x2)))
    text = "input x = 0.5, y = -0.25\nf = x * y\n"
    report = verify_circuit(load_source(text), circuitc.compile_graphs(text)[0], fast=True,
                            seed=seed, n_points=2)
    assert [c.verdict for p in report.points for c in p.checks] == ["fail"] * 3
