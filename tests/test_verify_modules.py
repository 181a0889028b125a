"""`circuitc verify` on Python modules: alone (`verify M.py`), against the circuit they
claim to come from (`verify FILE.circ --module M.py`), and through the API without a
graph; a module that disagrees with its circuit is blamed as such, naming the wire."""

from __future__ import annotations

import json
import textwrap

import pytest

import circuitc
from circuitc.api import load_python
from circuitc.errors import ModuleError
from circuitc.verify import report_text, verify_circuit
from conftest import CIRCUITS, EXAMPLES, run_cli

NEURON = CIRCUITS / "neuron.circ"
SIGMOID_RULE = "d_s = d_f * (f * (1.0 - f))"


def compiled(tmp_path, circuit=NEURON, name=None):
    """`circuitc compile circuit` into tmp_path, through the command; the module's path."""
    out = tmp_path / (name or circuit.with_suffix(".py").name)
    result = run_cli("compile", circuit, "-o", out)
    assert result.returncode == 0, result.stderr
    return out


def edited(tmp_path, old=SIGMOID_RULE, new="d_s = d_f * f", name="edited.py"):
    """The neuron's module with one line of its text replaced, as a person would edit it."""
    text = compiled(tmp_path).read_text()
    assert text.count(old) == 1
    path = tmp_path / name
    path.write_text(text.replace(old, new))
    return path


def line_of(path, text: str) -> int:
    """The number of the first line of the file at `path` that starts (indented) with `text`."""
    lines = path.read_text().splitlines()
    return next(k for k, line in enumerate(lines, 1) if line.strip().startswith(text))


def write(tmp_path, text, name="m.py"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def verify_json(*args, cwd=None):
    result = run_cli("verify", *args, "--json", cwd=cwd)
    assert result.returncode in (0, 1), result.stderr
    document = json.loads(result.stdout)
    assert document["ok"] == (result.returncode == 0)
    return document


def failed_rows(stdout):
    return [line for line in stdout.splitlines() if line.startswith("  d") and line.endswith("FAIL")]


def blame_lines(stdout):
    return [line for line in stdout.splitlines() if line.startswith("  blame:")]


# -- the default step fails a correct gradient: the complex step settles it ---------------------

@pytest.mark.parametrize(("text", "gate"), [
    ("input x = 1e6\nf = sin(x)\n", "sin"),
    ("input x = 0.001\nf = sin(1/x)\n", "/"),
    ("input x = 1.5707963\nf = tan(x)\n", "tan"),
], ids=["sin", "/", "tan"])
def test_a_correct_gradient_no_real_step_can_judge_passes_by_the_complex_step(tmp_path, text,
                                                                                gate):
    path = tmp_path / "hard.circ"
    path.write_text(text)
    result = run_cli("verify", path)
    assert result.returncode == 0, result.stdout
    assert "blame" not in result.stdout and "FAIL" not in result.stdout
    assert "note: df/dx: agrees with the complex step; no real step tried does" in result.stdout
    (check,) = verify_json(path)["points"][0]["checks"]
    assert check["method"] == "complex" and check["verdict"] == "pass"
    assert check["tolerance"] == pytest.approx(1e-8 + 1e-6 * abs(check["numeric"]))


# -- a module on its own -------------------------------------------------------------------------

@pytest.mark.parametrize("circuit", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_compiled_example_verifies_as_a_module(tmp_path, circuit):
    module = compiled(tmp_path, circuit)
    result = run_cli("verify", module, "--points", "3")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1].startswith(f"{module}: OK: ") and " 0 failed" in lines[-1]
    assert lines[-2] == ("note: checked without its circuit: kinks are not recognised and no "
                         "gate can be blamed (verify CIRCUIT.circ --module MODULE.py compares "
                         "a module with its circuit)")


def test_a_module_whose_forward_takes_no_complex_numbers_falls_back_and_says_why(tmp_path):
    module = compiled(tmp_path)
    result = run_cli("verify", module, "--difference", "complex")
    assert result.returncode == 0, result.stdout
    assert ("note: df/da, df/db, df/dc, df/dx, df/dy: central differences: the module's forward "
            "does not accept complex numbers (TypeError: ") in result.stdout
    assert "(central-difference fallbacks: rtol 1e-06, atol 1e-08)" in result.stdout
    document = verify_json(module, "--difference", "complex")
    assert {c["method"] for c in document["points"][0]["checks"]} == {"central"}


HAND_WRITTEN = """\
    import cmath

    INPUTS = ("x", "y")
    OUTPUTS = ("f",)
    DEFAULTS = {"x": 0.5}


    def forward(x, y):
        return cmath.exp(x * y).real if not isinstance(x * y, complex) else cmath.exp(x * y)


    def backward(x, y, d_f=1.0):
        f = cmath.exp(x * y).real
        return f, (d_f * f * y, d_f * f * x)
"""


def test_a_hand_written_module_that_takes_complex_numbers_gets_the_complex_step(tmp_path):
    path = write(tmp_path, HAND_WRITTEN)
    document = verify_json(path, "--difference", "complex", "--points", "2")
    assert document["ok"] and document["module"] == str(path) and document["circuit"] is None
    checks = [c for p in document["points"] for c in p["checks"]]
    assert len(checks) == 6 and {c["method"] for c in checks} == {"complex"}
    assert all(c["abs_error"] <= 1e-13 + 1e-11 * abs(c["numeric"]) for c in checks)
    assert document["points"][0]["label"] == "the defaults; drawn: y"  # DEFAULTS names x alone


def test_a_complex_step_through_a_non_analytic_module_falls_back_to_central(tmp_path):
    path = write(tmp_path, """\
        INPUTS = ("x",)
        OUTPUTS = ("f",)
        DEFAULTS = {"x": -1.5}


        def forward(x):
            return abs(x) * 3


        def backward(x, d_f=1.0):
            return abs(x) * 3, (d_f * (3.0 if x > 0 else -3.0),)
    """)
    result = run_cli("verify", path, "--difference", "complex")
    assert result.returncode == 0, result.stdout
    assert ("note: df/dx: the complex step disagrees, central differences agree: the module's "
            "forward takes complex numbers but is not complex-analytic here" in result.stdout)
    (check,) = verify_json(path, "--difference", "complex")["points"][0]["checks"]
    assert (check["method"], check["h"]) == ("central", pytest.approx(9.08e-06, rel=1e-3))


def test_loading_runs_the_module_but_not_its_script_part_and_writes_nothing(tmp_path):
    path = write(tmp_path, """\
        import dataclasses

        INPUTS = ("x",)
        OUTPUTS = ("f",)


        @dataclasses.dataclass
        class Square:  # a dataclass needs its module in sys.modules while it is made
            x: float


        def forward(x):
            return Square(x).x ** 2


        def backward(x, d_f=1.0):
            return x * x, (2 * x * d_f,)


        if __name__ == "__main__":
            raise SystemExit("run as a script")
    """)
    result = run_cli("verify", path, "x=3")
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.py"]


def test_only_the_inputs_in_wrt_are_checked(tmp_path):
    module = compiled(tmp_path)
    text = module.read_text().replace('WRT = ("a", "b", "c", "x", "y")', 'WRT = ("b", "x")')
    text = text.replace("(d_s * x, d_s * y, d_s, d_s * a, d_s * b)", "(d_s * y, d_s * a)")
    module.write_text(text)
    document = verify_json(module)
    assert document["ok"]
    assert [c["input"] for c in document["points"][0]["checks"]] == ["b", "x"]
    fast = verify_json(module, "--fast", "--points", "2")
    assert fast["ok"] and fast["summary"]["passed"] == 3


def test_a_wrong_module_fails_and_no_gate_is_blamed_without_its_circuit(tmp_path):
    result = run_cli("verify", edited(tmp_path))
    assert result.returncode == 1
    assert blame_lines(result.stdout) == [
        ("  blame: df/da, df/db, df/dc, df/dx, df/dy: checked without its circuit, so no gate "
         "can be blamed")]


# -- a module against its circuit -----------------------------------------------------------------

def test_a_hand_edited_rule_is_blamed_on_the_module_naming_the_wire(tmp_path):
    module = edited(tmp_path)  # sigmoid's rule loses its (1 - s): 740% off
    for extra in ([], ["--difference", "complex"]):
        result = run_cli("verify", "circuits/neuron.circ", "--module", module, *extra,
                         cwd=CIRCUITS.parent)
        assert result.returncode == 1, result.stdout
        assert "may be inaccurate" not in result.stdout
        assert len(failed_rows(result.stdout)) == 5
        assert blame_lines(result.stdout) == [
            ("  blame: df/da, df/db, df/dc, df/dx, df/dy: the module disagrees with what circuitc "
             "generates from circuits/neuron.circ (a stale or edited module): the first wire "
             "whose adjoint differs is s: d_s = 0.8807970779778823 in the module "
             f"({module}:{line_of(module, 'd_s =')}), 0.10499358540350662 from the circuit "
             "(circuits/neuron.circ:5)")]
        summary = result.stdout.splitlines()[-1]
        assert summary.startswith(f"{module}: FAILED: 0 passed, 5 failed at 1 point; "
                                  "disagrees with circuits/neuron.circ at 1 point; ")


def test_the_json_of_a_module_against_its_circuit(tmp_path):
    module = edited(tmp_path)
    document = verify_json(NEURON, "--module", module, "--points", "1")
    assert (document["file"], document["module"], document["circuit"]) == (
        str(module), str(module), str(NEURON))
    assert document["summary"]["points_disagreeing_with_circuit"] == 2
    mismatch = document["points"][0]["circuit_mismatch"]
    assert {k: mismatch[k] for k in ("wire", "variable", "adjoint", "outputs", "circuit_line")} == {
        "wire": "s", "variable": "d_s", "adjoint": True, "outputs": [],
        "circuit_line": f"{NEURON}:5"}
    assert mismatch["derivatives"] == ["df/da", "df/db", "df/dc", "df/dx", "df/dy"]
    assert mismatch["module_line"] == f"{module}:{line_of(module, 'd_s =')}"
    assert mismatch["message"].startswith("the module disagrees with what circuitc generates")
    check = document["points"][0]["checks"][0]
    assert check["circuit"] == -0.10499358540350662 and check["verdict"] == "fail"
    assert document["points"][0]["blame"] == [] and document["points"][0]["unblamed"] == []


def test_a_wire_from_a_gate_call_is_placed_at_the_call_and_in_the_gate(tmp_path):
    # the module's comment says `# line 3, in sq (line 1)`; the place comes from the
    # circuit's own graph, not from reading the comment back
    circuit = write(tmp_path, "gate sq(a) = a * a\ninput x = 3\ny = sq(x)\nf = sigmoid(y)\n",
                    name="g.circ")
    module = compiled(tmp_path, circuit)
    text = module.read_text()
    assert text.count("    y = x * x  # line 3, in sq (line 1)\n") == 2  # forward, backward
    module.write_text(text.replace("    y = x * x  #", "    y = x * x * 1.5  #"))
    document = verify_json(circuit, "--module", module)
    mismatch = document["points"][0]["circuit_mismatch"]
    assert (mismatch["variable"], mismatch["circuit_line"]) == ("y", f"{circuit}:3, in sq (line 1)")
    module.write_text(text.replace("  # line 3, in sq (line 1)", ""))  # no comments at all
    document = verify_json(circuit, "--module", module, "x=-1")
    assert document["ok"]  # the same module otherwise


def test_an_unedited_module_agrees_with_its_circuit(tmp_path):
    module = compiled(tmp_path)
    result = run_cli("verify", NEURON, "--module", module, "--points", "2")
    assert result.returncode == 0, result.stdout
    assert result.stdout.splitlines()[2].split() == [
        "gradient", "analytic", "numeric", "circuit", "abs", "err", "rel", "err", "verdict"]
    assert f"at 3 points; agrees with {NEURON}; central differences" in result.stdout
    document = verify_json(NEURON, "--module", module, "--fast")
    (check,) = document["points"][0]["checks"]
    assert check["circuit"] == pytest.approx(check["analytic"], rel=1e-15)


def test_a_module_that_is_right_for_an_older_circuit_is_stale(tmp_path):
    module = compiled(tmp_path)
    newer = tmp_path / "neuron.circ"
    newer.write_text(NEURON.read_text().replace("sigmoid(s)", "tanh(s)"))
    result = run_cli("verify", newer, "--module", module)
    assert result.returncode == 1  # its own gradients are right, but not the circuit's
    assert failed_rows(result.stdout) == []
    (blame,) = blame_lines(result.stdout)
    assert blame.endswith("the first wire whose value differs is f: f = 0.8807970779778823 in "
                          f"the module ({module}:{line_of(module, 'f =')}), 0.9640275800758169 "
                          "from the circuit "
                          f"({newer}:5)")


def test_a_module_with_other_inputs_cannot_come_from_the_circuit(tmp_path):
    module = compiled(tmp_path)
    other = tmp_path / "other.circ"
    other.write_text("input a = 1, b = 2\nf = a * b\n")
    result = run_cli("verify", other, "--module", module)
    assert result.returncode == 1
    assert (f"{module} cannot come from {other}: its INPUTS are (a, b, c, x, y), the circuit's "
            "(a, b)") in result.stdout
    assert failed_rows(result.stdout) == []  # the module itself is right, checked on its own
    assert verify_json(other, "--module", module)["circuit_mismatch"].startswith("its INPUTS")


def test_a_module_whose_wires_have_other_names_is_blamed_without_a_wire(tmp_path):
    module = write(tmp_path, """\
        INPUTS = ("a", "b", "c", "x", "y")
        OUTPUTS = ("f",)


        def forward(a, b, c, x, y):
            return 1.0 / (1.0 + __import__("math").exp(-(a * x + b * y + c)))


        def backward(a, b, c, x, y, d_f=1.0):
            out = forward(a, b, c, x, y)
            g = d_f * out
            return out, (g * x, g * y, g, g * a, g * b)
    """)
    result = run_cli("verify", NEURON, "--module", module)
    assert result.returncode == 1
    (blame,) = blame_lines(result.stdout)
    assert blame.endswith("(a stale or edited module): none of the circuit's wires is found by "
                          "name in the module, so none can be named")


# -- the API, without a graph ----------------------------------------------------------------------

def test_verify_circuit_checks_a_module_without_a_graph(tmp_path):
    module = load_python(compiled(tmp_path))
    report = verify_circuit(module, None, n_points=2, fast=True)
    assert report.ok and report.judged == 3 and not report.graph
    assert report.module == module.__file__ and report.circuit is None
    assert "no gate can be blamed" in report.notes[0] and "no gate can be blamed" in report_text(report)
    wrong = load_python(edited(tmp_path))
    report = verify_circuit(wrong, None)
    assert not report.ok and report.points[0].blame == []
    assert report.points[0].unblamed == ["df/da", "df/db", "df/dc", "df/dx", "df/dy"]


def test_verify_circuit_compares_a_module_with_the_one_circuitc_generates(tmp_path):
    reference, forward = circuitc.api.load_compiled(NEURON)
    report = verify_circuit(load_python(edited(tmp_path)), forward, reference=reference)
    mismatch = report.points[0].mismatch
    assert (mismatch.wire, mismatch.adjoint, mismatch.circuit) == ("s", True, str(NEURON))
    assert not report.ok and report.mismatches == 1
    assert verify_circuit(load_python(compiled(tmp_path)), forward, reference=reference).ok
    with pytest.raises(ValueError, match="needs the forward graph"):
        verify_circuit(reference, None, reference=reference)


# -- what is not a circuit nor a module ---------------------------------------------------------------

EXPECTS = ("verify expects a .circ circuit, or a Python module (.py) as `circuitc compile` "
           "writes one: INPUTS and OUTPUTS (tuples of names)")


@pytest.mark.parametrize(("text", "message"), [
    ("X = 1\n", "it defines no INPUTS"),
    ("INPUTS = ('x',)\nOUTPUTS = 'f'\n", "its OUTPUTS is not a tuple of names"),
    ("INPUTS = ('x',)\nOUTPUTS = ('f',)\nWRT = ('y',)\n", "its WRT names an input that is not in INPUTS"),
    ("INPUTS = ('x',)\nOUTPUTS = ('f',)\nDEFAULTS = {'x': 'one'}\n",
     ("its DEFAULTS is not a dict of numbers (nested lists of them for buses) for names in "
     "INPUTS")),
    ("INPUTS = ('x',)\nOUTPUTS = ('f',)\n", "it defines no function forward"),
    ("INPUTS = ('x',)\nOUTPUTS = ('f',)\ndef forward(x, y): pass\ndef backward(x, d_f): pass\n",
     "its forward does not take 1 arguments"),
    ("def f(:\n", "not a Python module: "),
])
def test_a_python_file_that_is_not_a_module_says_what_verify_expects(tmp_path, text, message):
    path = write(tmp_path, text)
    result = run_cli("verify", path)
    assert result.returncode == 2, result.stdout
    assert result.stderr.startswith(f"{path}: error: {message}")
    assert EXPECTS in result.stderr and "Traceback" not in result.stderr
    with pytest.raises(ModuleError):
        load_python(path)


@pytest.mark.parametrize(("body", "message"), [
    ("raise RuntimeError('boom')\n", "running it raised RuntimeError: boom ({path}:1)"),
    (("INPUTS = ('x',)\nOUTPUTS = ('f',)\ndef forward(x): return x\n"
      "def backward(x, d_f=1.0): return x, (q,)\n"),
     "its backward raised NameError: name 'q' is not defined ({path}:4)"),
    (("INPUTS = ('x',)\nOUTPUTS = ('f',)\ndef forward(x): return x\n"
      "def backward(x, d_f=1.0): return x, (1.0, 2.0)\n"),
     "its backward did not return (outputs, grads) with 1 gradients, one per name in WRT"),
    (("INPUTS = ('x',)\nOUTPUTS = ('f', 'g')\ndef forward(x): return x, x, x\n"
      "def backward(x, d_f=1.0, d_g=1.0): return (x, x), (1.0,)\n"),
     "its forward returned 3 values for 2 OUTPUTS"),
])
def test_a_module_that_fails_to_load_or_run_is_reported_without_a_traceback(tmp_path, body,
                                                                              message):
    path = write(tmp_path, body)
    result = run_cli("verify", path, "x=1")
    assert result.returncode == 2, result.stdout
    assert result.stderr == f"{path}: error: {message.format(path=path)}\n"


def test_python_text_under_another_name_is_read_as_a_circuit_and_says_so(tmp_path):
    path = tmp_path / "neuron.txt"
    path.write_text(compiled(tmp_path).read_text())
    result = run_cli("verify", path)
    assert result.returncode == 2
    assert result.stderr.startswith(f"{path}:2:1: error: unexpected character '\"'")
    assert (f"note: verify reads '{path}' as a circuit, as its name does not end in .py; it "
            "expects a .circ circuit, or a Python module (.py)") in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["m.py", "--module", "m.py"], "--module takes the module, FILE its circuit"),
    (["m.py", "--target", "numpy"], "--target compiles a circuit; a module is checked as it is"),
    ([NEURON, "--module", "m.py", "--target", "python"], "--target compiles a circuit"),
    (["missing.py"], "missing.py: error: cannot read 'missing.py': no such file"),
    ([NEURON, "--module", "missing.py"], "cannot read 'missing.py': no such file"),
])
def test_bad_usage_with_modules_exits_2(tmp_path, args, message):
    compiled(tmp_path, name="m.py")
    result = run_cli("verify", *args, cwd=tmp_path)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
