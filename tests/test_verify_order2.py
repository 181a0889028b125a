"""`circuitc verify --order 2`: second derivatives against numerical derivatives of the
gradient. The examples pass; a rule right in value but wrong when differentiated fails and
is blamed on its gate; the gradient's kinks are skipped; --fast, --json, the numpy target,
the complex step, modules with and without hessian."""

from __future__ import annotations

import dataclasses
import json
import math
import types

import pytest
from click.testing import CliRunner

import circuitc
from circuitc import gates
from circuitc.api import elementwise
from circuitc.cli import main
from circuitc.verify import SECOND_ORDER_TOLERANCES, report_text, verify_hessian
from conftest import CIRCUITS, EXAMPLES, run_cli


def checked(text: str, target: str = "python", name: str = "c.circ", **options):
    """`verify_hessian` of the circuit in `text`, compiled with its Hessian."""
    module = types.ModuleType("circuit")
    exec(circuitc.compile_source(text, name, target, hessian=True), module.__dict__)  # noqa: S102
    return verify_hessian(elementwise(module), circuitc.compile_graphs(text, name)[0], **options)


def verify(*args):
    """`circuitc verify --order 2 ARGS`, in this process (so that patched gates apply)."""
    return CliRunner().invoke(main, ["verify", "--order", "2", *map(str, args)],
                              catch_exceptions=False)


def verdicts(report) -> dict[str, str]:
    return {c.name: c.verdict for p in report.points for c in p.checks}


@pytest.fixture
def corrupt(monkeypatch):
    """Replace one gate's derivative rule, for this test only."""
    def replace(name, derivative):
        monkeypatch.setitem(gates.GATES, name, dataclasses.replace(gates.GATES[name],
                                                                   derivative=derivative))
    return replace


# -- the examples -------------------------------------------------------------------------

@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_example_verifies_to_second_order(path):
    for difference in ("central", "forward", "complex"):
        report = checked(path.read_text(), name=str(path), n_points=2, difference=difference)
        assert report.ok and report.judged > 0, report_text(report)
        assert report.count("pass") == report.judged


def test_the_installed_command_checks_the_upper_triangle(tmp_path):
    result = run_cli("verify", CIRCUITS / "neuron.circ", "--order", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[2].split()[:3] == ["second", "derivative", "analytic"]
    rows = [line.split()[0] for line in lines if line.startswith("  d2f/")]
    names = "abcxy"
    assert rows == [f"d2f/d{names[i]}d{names[j]}" for i in range(5) for j in range(i, 5)]
    assert lines[-1].startswith(f"{CIRCUITS / 'neuron.circ'}: OK: 15 passed, 0 failed at 1 point; "
                                "central differences of the gradient (h relative to each input), "
                                "rtol 1e-05, atol 1e-07")


def test_json_gives_each_entry_its_pair_of_inputs():
    result = run_cli("verify", CIRCUITS / "svm_loss.circ", "--order", "2", "--json", "--wrt", "a,b")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["order"] == 2 and document["ok"]
    assert (document["rtol"], document["atol"]) == SECOND_ORDER_TOLERANCES["central"]
    checks = document["points"][0]["checks"]
    assert [(c["output"], c["inputs"]) for c in checks] == [
        ("loss", ["a", "a"]), ("loss", ["a", "b"]), ("loss", ["b", "b"]),
        ("score", ["a", "a"]), ("score", ["a", "b"]), ("score", ["b", "b"])]
    assert [c["input"] for c in checks] == ["a", "b", "b"] * 2  # the input differenced along
    assert checks[0]["analytic"] == 0.2  # 2 * alpha
    first = json.loads(CliRunner().invoke(main, ["verify", str(CIRCUITS / "neuron.circ"),
                                                 "--json"]).output)
    assert first["order"] == 1 and "inputs" not in first["points"][0]["checks"][0]


# -- a wrong second derivative fails, and its gate is blamed ---------------------------------

# cos's rule with the wrong sign: sin's rule, b.cos(x), is right in value, so first
# derivatives pass, but differentiating it goes through cos's rule.
WRONG_COS = ("cos", lambda b, g, y, x: (b.mul(g, b.sin(x)),))
SINE = "input x = 0.7, y = 1.3\nq = x * y\nf = sin(q) + x\n"


def test_a_rule_wrong_when_differentiated_is_blamed(corrupt, tmp_path):
    corrupt(*WRONG_COS)
    path = tmp_path / "s.circ"
    path.write_text(SINE)
    assert CliRunner().invoke(main, ["verify", str(path)]).exit_code == 0  # first order is right
    result = verify(path)
    assert result.exit_code == 1, result.output
    rows = [line.split()[0] for line in result.output.splitlines() if line.endswith("FAIL")]
    assert rows == ["d2f/dxdx", "d2f/dxdy", "d2f/dydy"]
    (blame,) = [line for line in result.output.splitlines() if line.startswith("  blame:")]
    assert blame.startswith(f"  blame: d2f/dxdx, d2f/dxdy, d2f/dydy: the second derivative of "
                            f"'sin' at {path}:3:5 (its derivative rule, differentiated) gives ")
    assert "for its arguments (1, 1)" in blame


def test_fast_catches_it_too_and_json_blames_the_arguments(corrupt):
    corrupt(*WRONG_COS)
    report = checked(SINE, fast=True, n_points=1)
    assert [c.name for p in report.points for c in p.checks] == ["d2f along u, v"] * 2
    assert report.count("fail") == 2
    blame = report.points[0].blame[0].as_dict()
    assert (blame["gate"], blame["where"], blame["argument"], blame["argument2"]) == (
        "'sin'", "c.circ:3:5", 1, 1)
    assert blame["rule"] == pytest.approx(math.sin(0.91))
    assert blame["numeric"] == pytest.approx(-math.sin(0.91))


def test_a_wrong_mixed_entry_is_blamed_on_its_two_argument_gate(corrupt):
    # mul's rule through tan(atan(b)), which is b in value but, with tan's rule gone,
    # constant when differentiated: only the mixed second derivative of a*b is wrong.
    corrupt("tan", lambda b, g, y, x: (None,))
    corrupt("mul", lambda b, g, y, x1, x2: (b.mul(g, b.tan(b.atan(x2))),
                                            b.mul(g, b.tan(b.atan(x1)))))
    report = checked("input x = 0.5, y = 2\nf = x * y\n")
    assert verdicts(report) == {"d2f/dxdx": "pass", "d2f/dxdy": "fail", "d2f/dydy": "pass"}
    (blame,) = report.points[0].blame
    assert (blame.gate, blame.argument, blame.argument2) == ("'*'", 1, 2)
    assert (blame.rule, blame.numeric) == (0.0, pytest.approx(1.0))


def test_when_every_gate_is_right_but_the_hessian_is_not_the_rules_are_combined_wrongly():
    text = "input x = 0.5, y = 2\nf = sin(x) * y\n"
    module = types.ModuleType("m")
    exec(circuitc.compile_source(text, "w.circ", hessian=True), module.__dict__)  # noqa: S102
    hessian = module.hessian
    module.hessian = lambda *args: (*hessian(*args)[:2], ((2.0, 0.0), (0.0, 0.0)))
    report = verify_hessian(module, circuitc.compile_graphs(text, "w.circ")[0],
                            difference="complex")
    assert report.points[0].unblamed == ["d2f/dxdx", "d2f/dxdy"]
    assert ("blame: d2f/dxdx, d2f/dxdy: no gate's second derivative (its derivative rule, "
            "differentiated) disagrees with the numerical derivative of its rule here, yet the "
            "complex step, exact to rounding, disagrees with the Hessian: the rules are "
            "combined wrongly") in report_text(report)


# -- kinks, retries, the complex step --------------------------------------------------------

def test_a_difference_across_a_kink_of_the_gradient_is_skipped():
    # the gradient is sign(x) + 2x: sign, a gate only gradients use, switches at 0
    report = checked("input x = 0, y = 1\nf = abs(x) + x * x * y\n")
    checks = {c.name: c for c in report.points[0].checks}
    assert checks["d2f/dxdx"].verdict == "skip"
    assert checks["d2f/dxdx"].reason == "at the kink of the gradient of 'abs' (c.circ:2:5)"
    assert checks["d2f/dxdy"].verdict == checks["d2f/dydy"].verdict == "pass"
    # off the kink, relu's second derivative is 0 and is judged
    report = checked("input x = 0.5\nf = relu(x) * x\n", n_points=3)
    assert report.ok and report.count("pass") == 4


def test_kinks_of_one_output_do_not_skip_another():
    text = "input x = 1, y = 2\nf = max(x, 1) * y\ng = x * x * y\noutput f, g\n"
    report = checked(text, difference="complex")
    checks = {c.name: c for c in report.points[0].checks}
    assert checks["d2f/dxdx"].verdict == "skip"  # along x, where max(x, 1) switches
    assert "the gradient of 'max' at c.circ:2:5 is not complex-analytic" in checks["d2f/dxdx"].note
    others = [check for name, check in checks.items() if name != "d2f/dxdx"]
    assert {(c.method, c.verdict) for c in others} == {("complex", "pass")}


def test_a_step_that_does_not_suit_the_point_is_retried():
    report = checked("input x = 1e6\nf = sin(x)\n")
    (check,) = report.points[0].checks
    assert check.verdict == "pass" and "agrees with h = " in check.note
    assert check.analytic == -math.sin(1e6)


def test_the_complex_step_of_the_gradient_is_exact():
    report = checked((CIRCUITS / "physics.circ").read_text(), difference="complex")
    assert report.ok and max(c.rel_error for p in report.points for c in p.checks) < 1e-12
    assert {c.method for p in report.points for c in p.checks} == {"complex"}


# -- the numpy target, modules ----------------------------------------------------------------

def test_the_numpy_target_checks_every_entry_of_hvp():
    pytest.importorskip("numpy")
    result = run_cli("verify", CIRCUITS / "two_layer.circ", "--order", "2", "--target", "numpy",
                     "--fast", "--points", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    report = checked((CIRCUITS / "neuron.circ").read_text(), "numpy")
    assert report.ok and report.count("pass") == 25  # hvp's columns are not mirrored: all 25


def test_a_module_needs_hessian_or_hvp(tmp_path):
    plain, with_hessian = tmp_path / "n.py", tmp_path / "nh.py"
    plain.write_text(circuitc.compile_file(CIRCUITS / "neuron.circ"))
    with_hessian.write_text(circuitc.compile_file(CIRCUITS / "neuron.circ", hessian=True))
    result = run_cli("verify", plain, "--order", "2")
    assert result.returncode == 2 and not result.stdout
    assert result.stderr == (f"{plain}: error: --order 2 checks a module's hessian or hvp, and "
                             "it has neither: compile it with --hessian, or check its circuit: "
                             "circuitc verify CIRCUIT.circ --order 2\n")
    result = run_cli("verify", CIRCUITS / "neuron.circ", "--module", with_hessian, "--order", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK: 25 passed" in result.stdout  # a module's Hessian need not be symmetric
    assert (f"note: --order 2 checks the module on its own, not against "
            f"{CIRCUITS / 'neuron.circ'}") in result.stdout


CUBIC = """
INPUTS = ("x", "y")
OUTPUTS = ("f",)
DEFAULTS = {"x": 0.5, "y": -2.0}


def forward(x, y):
    return x ** 3 * y


def backward(x, y, d_f=1.0):
    return forward(x, y), (d_f * 3 * x ** 2 * y, d_f * x ** 3)


def hessian(x, y, d_f=1.0):
    return forward(x, y), backward(x, y, d_f)[1], ((d_f * 6 * x * y, d_f * 3 * x ** 2),
                                                    (d_f * LOWER * x ** 2, 0.0))
"""


def test_a_hand_written_hessian_is_checked_in_full_against_its_backward(tmp_path):
    right, wrong = tmp_path / "right.py", tmp_path / "wrong.py"
    right.write_text(CUBIC.replace("LOWER", "3"))
    wrong.write_text(CUBIC.replace("LOWER", "2"))  # not symmetric: its lower triangle is wrong
    for fast in ([], ["--fast", "--points", "2"]):  # --fast: hvp from its hessian
        result = verify(right, *fast)
        assert result.exit_code == 0, result.output
    result = verify(wrong)
    assert result.exit_code == 1
    rows = {line.split()[0]: line.split()[-1] for line in result.output.splitlines()
            if line.startswith("  d2f/")}
    assert rows == {"d2f/dxdx": "ok", "d2f/dxdy": "ok", "d2f/dydx": "FAIL", "d2f/dydy": "ok"}
    assert "  blame: d2f/dydx: checked without its circuit, so no gate can be blamed" in result.output
    broken = tmp_path / "broken.py"
    broken.write_text(CUBIC.replace("(d_f * LOWER * x ** 2, 0.0)", ""))
    result = verify(broken)
    assert result.exit_code == 2
    assert result.output == (f"{broken}: error: its hessian did not return (outputs, grads, H) "
                             "with H 2×2, a row and a column per name in WRT\n")
