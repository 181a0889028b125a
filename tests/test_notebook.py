"""The notebook API (`circuitc.circuit`, `Circuit`), the `%%circuit` magic, and the tour
notebook run in a real Jupyter kernel.

The API's results are checked against the commands they stand for: `gradient()`
against `circuitc eval --json`, `draw()` against `circuitc graph`, `verify()` and
`step()` against the text `circuitc verify` and `circuitc step` print.
"""

from __future__ import annotations

import html
import json
import subprocess
import sys

import pytest

import circuitc
from circuitc import draw
from circuitc.report import json_safe
from circuitc.values import InputError
from conftest import CIRCUITS, ROOT, run_cli

NEURON = CIRCUITS / "neuron.circ"
NEURON_TEXT = "f = sigmoid(a*x + b*y + c)"
TEXTBOOK = {"a": 1, "b": 2, "c": -3, "x": -1, "y": 3}
LAYER = """size n = 2
input w[n] = 0.5, x[n] = 1, b = 0
f = sigmoid(sum(w[i] * x[i] for i) + b)
"""


def cli_json(*args):
    done = run_cli(*args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def cli_text(*args, status: int = 0) -> str:
    done = run_cli(*args)
    assert done.returncode == status, done.stderr
    return done.stdout.removesuffix("\n")


# -- what circuit() reads ---------------------------------------------------------


def test_the_textbook_neuron_from_text():
    c = circuitc.circuit(NEURON_TEXT)
    result = c.gradient(**TEXTBOOK)
    assert result["outputs"] == {"f": pytest.approx(0.8808, abs=1e-4)}
    assert result["gradients"]["f"] == pytest.approx(
        {"a": -0.105, "b": 0.315, "c": 0.105, "x": 0.105, "y": 0.21}, abs=1e-3)
    assert c.inputs == ("a", "x", "b", "y", "c") and c.outputs == ("f",)
    assert c.forward(1, -1, 2, 3, -3) == result["outputs"]["f"]
    assert c.module.INPUTS == c.inputs and c.filename == "<circuit>"


@pytest.mark.parametrize("given", [NEURON, str(NEURON), "circuits/neuron.circ"])
def test_a_path_or_a_string_naming_a_file_is_read(given, monkeypatch):
    monkeypatch.chdir(ROOT)
    c = circuitc.circuit(given)
    assert c.name == "neuron" and c.filename == str(given)
    assert c.defaults == {"a": 1.0, "b": 2.0, "c": -3.0, "x": -1.0, "y": 3.0}


def test_an_existing_file_is_read_whatever_its_suffix(tmp_path):
    path = tmp_path / "neuron.txt"
    path.write_text(NEURON.read_text())
    assert circuitc.circuit(str(path)).name == "neuron"


def test_a_circ_name_that_is_no_file_is_an_error_not_text():
    with pytest.raises(circuitc.CircuitError, match="cannot read 'missing.circ'"):
        circuitc.circuit("missing.circ")


def test_a_bad_circuit_raises_the_usual_diagnostic():
    with pytest.raises(circuitc.CircuitError) as caught:
        circuitc.circuit("input s\nf = sigmod(s)")
    assert str(caught.value) == ("<circuit>:2:5: error: unknown gate 'sigmod'; did you mean "
                                 "'sigmoid'?\n  f = sigmod(s)\n      ^^^^^^")
    # What IPython shows instead of a traceback: the diagnostic, in colour.
    shown = "\n".join(caught.value._render_traceback_())
    assert "\x1b[" in shown and "^^^^^^" in shown and "Traceback" not in shown


def test_options_reach_the_compiler():
    c = circuitc.circuit(LAYER, wrt=["w"], sizes={"n": 3})
    assert c.wrt == ("w",) and c.shapes["w"] == (3,)
    assert "def backward" in c.source and '"w"' in c.source
    with pytest.raises(circuitc.CircuitError, match="--wrt names 'q'"):
        circuitc.circuit(LAYER, wrt=["q"])


def test_import_circuitc_does_not_import_the_notebook_api():
    code = ("import sys, circuitc; print(sorted(m for m in ('circuitc.notebook', "
            "'circuitc.verify', 'circuitc.draw', 'circuitc.cli') if m in sys.modules)); "
            "circuitc.circuit; print('circuitc.notebook' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split("\n")[:2] == ["[]", "True"]


# -- gradient, draw, verify, step: the commands' results -----------------------------


def test_gradient_is_what_eval_json_prints():
    assert json_safe(circuitc.circuit(NEURON).gradient(x=2)) == cli_json("eval", NEURON, "x=2")


def test_gradient_of_a_bus_circuit_is_what_eval_json_prints(tmp_path):
    path = tmp_path / "layer.circ"
    path.write_text(LAYER)
    c = circuitc.circuit(path, sizes={"n": 3})
    expected = cli_json("eval", path, "-D", "n=3", "x=[1, -2, 0.5]", "b=0.25")
    assert c.gradient(x=[1, -2, 0.5], b=0.25) == expected
    assert c.gradient({"x": (1, -2, 0.5)}, b=0.25) == expected  # a dict, tuples


def test_values_that_do_not_fit_are_input_errors():
    c = circuitc.circuit(LAYER)
    with pytest.raises(InputError, match=r"x: expected a number or a nested list of shape \[2\]"):
        c.gradient(x=[1, 2, 3])
    with pytest.raises(InputError, match="no input named 'xx'; did you mean 'x'"):
        c.draw(xx=1)
    with pytest.raises(InputError, match="no value for input 'a'"):
        circuitc.circuit(NEURON_TEXT).gradient(x=1)


def test_draw_is_the_graph_commands_drawing(tmp_path, graphviz):
    picture = circuitc.circuit(NEURON).draw(y=2)
    assert picture.data("dot") == cli_text("graph", NEURON, "y=2") + "\n"
    bundle = picture._repr_mimebundle_()
    assert set(bundle) == {"image/svg+xml", "text/plain"} and "<svg" in bundle["image/svg+xml"]
    for suffix, fmt in draw.SUFFIXES.items():
        picture.save(tmp_path / f"neuron{suffix}")
        if fmt != "png":  # Graphviz's PNG need not be the same bytes twice
            data = draw.written(picture.drawing, fmt)
            assert (tmp_path / f"neuron{suffix}").read_bytes() == (
                data if isinstance(data, bytes) else data.encode())
    assert (tmp_path / "neuron.png").read_bytes().startswith(b"\x89PNG")
    with pytest.raises(ValueError, match="cannot tell the format"):
        picture.save(tmp_path / "neuron.pdf")


def test_draw_of_a_bus_circuit_is_drawn_bus_by_bus(graphviz, tmp_path):
    path = tmp_path / "layer.circ"
    path.write_text(LAYER)
    picture = circuitc.circuit(path).draw(x=[1, -2])
    assert picture.data("json") == cli_text("graph", path, "x=[1, -2]", "--format", "json") + "\n"
    assert "sum over i" in picture.svg


def test_draw_without_values_or_defaults_is_the_structure():
    picture = circuitc.circuit(NEURON_TEXT).draw()
    assert json.loads(picture.data("json")) == json.loads(
        draw.to_json(draw.structure(draw.circuit(NEURON_TEXT, "<circuit>"))))


def test_without_graphviz_a_drawing_shows_as_text(monkeypatch):
    monkeypatch.setattr(draw.shutil, "which", lambda name: None)
    c = circuitc.circuit(NEURON)
    bundle = c.draw()._repr_mimebundle_()
    assert list(bundle) == ["text/plain"] and "needs Graphviz's 'dot' program" in bundle["text/plain"]
    assert "(no picture: " in c._repr_html_()


def test_verify_is_the_verify_commands_report():
    report = circuitc.circuit(NEURON).verify({"x": 2}, points=2, seed=3)
    assert report.ok and str(report) == repr(report)
    assert str(report) == cli_text("verify", NEURON, "x=2", "--points", "2", "--seed", "3")
    assert report.as_dict()["summary"]["passed"] == 15
    page = report._repr_html_()
    assert page.count("<table>") == 3 and "df/da" in page and "OK: 15 passed" in page


def test_verify_of_second_derivatives():
    report = circuitc.circuit(NEURON).verify(order=2)
    assert report.ok and str(report) == cli_text("verify", NEURON, "--order", "2")
    with pytest.raises(ValueError, match="order must be 1 or 2, got 3"):
        circuitc.circuit(NEURON).verify(order=3)


def test_a_failing_verify_shows_its_failure():
    report = circuitc.circuit(NEURON).verify(rtol=0, atol=0, h=1e-3, difference="forward")
    assert not report.ok
    assert "FAIL" in str(report) and "#cf222e" in report._repr_html_()


def test_step_is_the_step_commands_report():
    result = circuitc.circuit(NEURON).step({"x": 2}, steps=3, step_size=0.1)
    assert str(result) == cli_text("step", NEURON, "x=2", "--steps", "3", "--step-size", "0.1")
    assert result.before == {"a": 1.0, "b": 2.0, "c": -3.0, "x": 2.0, "y": 3.0}
    assert result.climb.after_output > result.climb.before_output
    assert "<table>" in result._repr_html_()


def test_step_goes_on_from_where_it_stopped_and_gives_buses_whole():
    c = circuitc.circuit(LAYER, wrt=["w"])
    once = c.step(steps=2)
    twice = c.step(c.step(steps=1).after, steps=1)
    assert once.after == twice.after and once.after["x"] == [1.0, 1.0]
    assert c.step(method="newton").climb.method == "newton"


def test_a_circuit_shows_its_inputs_outputs_source_and_picture(graphviz):
    c = circuitc.circuit(NEURON)
    assert repr(c) == ("<Circuit neuron: inputs a = 1.0, b = 2.0, c = -3.0, x = -1.0, "
                       "y = 3.0; outputs f>")
    page = c._repr_html_()
    assert "<svg" in page and "<?xml" not in page
    assert '<span style="color: #008000; font-weight: bold">input</span>' in page  # highlighted
    layer = circuitc.circuit(LAYER.replace("x[n] = 1", "x[n] = [1, 2]"))
    assert repr(layer) == "<Circuit circuit: inputs w[2] = 0.5, x[2], b = 0.0; outputs f>"


def test_a_circuit_with_some_defaults_missing_shows_what_is_known():
    """It showed a traceback from `_repr_html_` (no value for input 'x')."""
    c = circuitc.circuit("input x, w = 1\nf = w * x\n")
    page = html.unescape(c._repr_html_())
    assert "<p>no value for input 'x' (no default, none given): drawn without the values " \
           "that depend on it</p>" in page
    picture = c.draw()
    assert picture.missing == ["x"] and c.draw(x=2).missing == []
    assert [(n["value"], n["grad"]) for n in json.loads(picture.data("json"))["nodes"]] == [
        (None, 1.0), (1.0, None), (None, 1.0)]


def test_a_circuit_undefined_at_its_defaults_still_shows():
    page = html.unescape(circuitc.circuit("input x = -1\nf = log(x)")._repr_html_())
    assert "<circuit>:2:5: error: 'log' on -1.0 fails: math domain error" in page


# -- the %%circuit magic --------------------------------------------------------------


@pytest.fixture(scope="module")
def shell():
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "circuitc")
    return ip


def test_the_magic_binds_and_shows_the_circuit(shell, capsys):
    result = shell.run_cell("%%circuit neuron --wrt a,b\n" + NEURON_TEXT + "\n")
    assert result.success
    c = shell.user_ns["neuron"]
    assert isinstance(c, circuitc.Circuit) and c.name == "neuron" and c.wrt == ("a", "b")
    assert "<Circuit neuron: inputs a, x, b, y, c; outputs f>" in capsys.readouterr().out


def test_the_magic_passes_sizes_and_target(shell):
    pytest.importorskip("numpy")
    assert shell.run_cell("%%circuit layer --target numpy -D n=3\n" + LAYER).success
    layer = shell.user_ns["layer"]
    assert layer.shapes["w"] == (3,) and layer.target == "numpy"
    assert layer.gradient()["outputs"]["f"] == pytest.approx(0.8175744761936437)


def test_the_magic_passes_the_dtype(shell):
    pytest.importorskip("numpy")
    assert shell.run_cell("%%circuit layer --target numpy --dtype float32 -D n=3\n" + LAYER).success
    layer = shell.user_ns["layer"]
    assert layer.module.DTYPE == "float32" and 'DTYPE = "float32"' in layer.source


def test_a_bad_cell_shows_its_diagnostic_without_a_traceback(shell, capsys):
    result = shell.run_cell("%%circuit bad\ninput s\nf = sigmod(s)\n")
    assert not result.success and isinstance(result.error_in_exec, circuitc.CircuitError)
    shown = capsys.readouterr()
    text = shown.out + shown.err
    assert "<bad>:2:5:" in text and "^^^^^^" in text and "Traceback" not in text
    assert "bad" not in shell.user_ns


@pytest.mark.parametrize("line, message", [
    ("", "Missing argument 'NAME'"),
    ("1x", "'1x' is not a Python name"),
    ("f --target nope", "'nope' is not one of 'python', 'numpy'"),
    ("f -D n", "expected NAME=INT, got 'n'"),
    ("f --wrt a,,b", "has an empty name"),
    ("f --wrt 'a", "No closing quotation"),
    ("f --dtype float32", "the python target computes in float64 only"),
])
def test_bad_options_are_usage_errors(shell, capsys, line, message):
    result = shell.run_cell(f"%%circuit {line}\nf = x\n")
    assert not result.success
    shown = capsys.readouterr()
    assert "UsageError" in shown.err and message in shown.err and "Traceback" not in shown.err


# -- the tour, in a real kernel ------------------------------------------------------


def test_the_tour_runs_in_a_jupyter_kernel(tmp_path, graphviz):
    nbclient = pytest.importorskip("nbclient")
    nbformat = pytest.importorskip("nbformat")
    source = ROOT / "docs" / "tour.ipynb"
    notebook = nbformat.read(source, as_version=4)
    assert all(not c.get("outputs") and c.get("execution_count") is None
               for c in notebook.cells if c.cell_type == "code"), "commit the tour without outputs"
    # The kernel is this Python, whatever kernels the machine has installed.
    spec = tmp_path / "jupyter" / "kernels" / "circuitc-test"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "circuitc test", "language": "python"}))
    work = tmp_path / "work"
    work.mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
        nbclient.NotebookClient(notebook, kernel_name="circuitc-test", timeout=60,
                                resources={"metadata": {"path": str(work)}}).execute()
    outputs = {c.source: c.outputs for c in notebook.cells if c.cell_type == "code"}
    assert not any(o.output_type == "error" for out in outputs.values() for o in out)

    def shown(cell: str, kind: str = "text/plain") -> str:
        return "".join(o.get("data", {}).get(kind, "") for o in outputs[cell])

    assert "<svg" in shown("neuron.draw()", "image/svg+xml")
    assert "<svg" in shown("layer.draw(x=[1, -2, 0.5])", "image/svg+xml")
    gradient = shown("neuron.gradient()")
    for number in ("0.8807970779778823", "-0.10499358540350662", "0.31498075621051985",
                   "0.10499358540350662", "0.20998717080701323"):
        assert number in gradient
    assert "OK: 15 passed" in shown("neuron.verify(points=2)")
    magic = next(out for cell, out in outputs.items() if cell.startswith("%%circuit add_multiply"))
    assert any("text/html" in o.get("data", {}) for o in magic)
    assert shown('add_multiply.gradient()["gradients"]') == "{'f': {'x': -4.0, 'y': -4.0}}"
