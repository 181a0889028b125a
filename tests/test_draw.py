"""`circuitc graph` and circuitc.draw: the drawn graph, its values, gradients and formats."""

from __future__ import annotations

import json
import os
import subprocess
import time
import xml.etree.ElementTree as ET

import pytest
from click.testing import CliRunner

import circuitc
from circuitc import draw
from circuitc.api import elementwise
from circuitc.cli import main
from circuitc.draw import mermaid, scene
from conftest import CIRCUITS, EXAMPLES, run_cli

NEURON = CIRCUITS / "neuron.circ"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# The textbook's neuron.circ at its defaults.
NEURON_VALUE = 0.8807970779778823
NEURON_GRADS = {"a": -0.10499358540350662, "b": 0.31498075621051985, "c": 0.10499358540350662,
                "x": 0.10499358540350662, "y": 0.20998717080701323}


def drawing(text: str, at=None, seeds=None, optimized=True) -> draw.Drawing:
    graph = draw.circuit(text, "<test>", optimized)
    if at is None:
        return draw.structure(graph, optimized)
    return draw.with_values(graph, at, seeds, optimized)


def strict_json(text: str):
    """`json.loads` that rejects the non-standard NaN and Infinity."""
    def refuse(name):
        raise ValueError(f"not JSON: {name}")
    return json.loads(text, parse_constant=refuse)


# -- JSON ---------------------------------------------------------------------


def test_neuron_json_has_the_textbook_nodes_edges_values_and_gradients():
    result = run_cli("graph", NEURON, "--format", "json")
    assert result.returncode == 0, result.stderr
    doc = strict_json(result.stdout)
    assert doc["version"] == 1 and doc["graph"] == "optimized"
    assert doc["file"] == str(NEURON)
    assert doc["at"] == {"a": 1.0, "b": 2.0, "c": -3.0, "x": -1.0, "y": 3.0}
    assert doc["seeds"] == {"f": 1.0}
    nodes = doc["nodes"]
    assert [n["id"] for n in nodes] == list(range(len(nodes)))
    by_name = {n["name"]: n for n in nodes if n["name"]}
    assert [i["name"] for i in doc["inputs"]] == ["a", "b", "c", "x", "y"]
    for item in doc["inputs"]:
        node = nodes[item["node"]]
        assert node["op"] == "input" and node["name"] == item["name"] == node["label"]
        assert node["grad"] == NEURON_GRADS[item["name"]]  # exact: repr round-trips
    [out] = doc["outputs"]
    f = nodes[out["node"]]
    assert out["name"] == "f" and f["name"] == "f"
    assert (f["op"], f["label"], f["value"], f["grad"]) == ("sigmoid", "sigmoid", NEURON_VALUE, 1.0)
    assert f["span"] == {"line": 5, "column": 5, "end_line": 5, "end_column": 12}
    s = by_name["s"]
    assert (s["op"], s["label"], s["value"]) == ("add", "+", 2.0)
    assert s["grad"] == pytest.approx(NEURON_VALUE * (1 - NEURON_VALUE), rel=1e-15)
    assert sorted(n["op"] for n in nodes) == sorted(["input"] * 5 + ["mul", "mul", "add", "add",
                                                                     "sigmoid"])
    # Every gate in the neuron passes the sigmoid's local gradient back unchanged.
    for n in nodes:
        if n["op"] in ("mul", "add"):
            assert n["grad"] == s["grad"]
            assert n["span"]["line"] == 4
    # The edges, by the names of their ends: a*x + b*y + c, then sigmoid.
    def end(i):
        n = nodes[i]
        return n["name"] or n["label"]
    edges = {(end(e["from"]), end(e["to"]), e["arg"]) for e in doc["edges"]}
    muls = [n["id"] for n in nodes if n["op"] == "mul"]
    inner = next(n["id"] for n in nodes if n["op"] == "add" and n["name"] is None)
    assert {(end(e["from"]), e["arg"]) for e in doc["edges"] if e["to"] in muls} == {
        ("a", 0), ("x", 1), ("b", 0), ("y", 1)}
    assert {e["from"] for e in doc["edges"] if e["to"] == inner} == set(muls)
    assert ("+", "s", 0) in edges and ("c", "s", 1) in edges and ("s", "f", 0) in edges
    assert len(doc["edges"]) == 9


def test_json_values_and_gradients_agree_with_the_generated_module_for_every_example():
    for path in EXAMPLES:
        text = circuitc.read_source(path)
        graph = draw.circuit(text, str(path))
        module = elementwise(circuitc.load(path))  # a bus circuit's inputs are elements here
        d = draw.with_values(graph, graph.defaults)
        doc = draw.describe(d)
        outputs, gradients = circuitc.evaluate(module, dict(module.DEFAULTS))
        for out in doc["outputs"]:
            assert doc["nodes"][out["node"]]["value"] == outputs[out["name"]], path
        for item in doc["inputs"]:
            total = sum(g[item["name"]] for g in gradients.values())
            if item["node"] is not None:
                assert doc["nodes"][item["node"]]["grad"] == pytest.approx(total, rel=1e-12), path


@pytest.mark.parametrize(("text", "at"), [
    ("input x\nf = x ** 0\n", {"x": 0.0}),  # its derivative 0*x**-1 would raise
    ("input x\nf = x ** 2\n", {"x": 1e200}),  # math.pow would raise; x*x is inf
    ("input x\nf = log(x) ** 0 + pow(x, 2) * 1\n", {"x": 1.0}),
    ("input x, y\nf = (x * y) ** 2 - -x ** 1 / 1\n", {"x": 1e160, "y": 1e-5}),
])
def test_the_source_graph_has_the_values_and_gradients_of_eval(text, at, tmp_path):
    module = circuitc.load(_write(tmp_path, text))
    outputs, gradients = circuitc.evaluate(module, at)
    for optimized in (True, False):
        d = drawing(text, at, optimized=optimized)
        assert [d.values[n] for _, n in d.graph.outputs] == list(outputs.values())
        nodes = {node.attr: i for i, node in enumerate(d.graph.nodes) if node.op == "input"}
        assert {name: d.grads[nodes[name]] if name in nodes else 0.0 for name in at} == gradients["f"]
    result = run_cli("graph", "m.circ", "--source", "--format", "json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr


def _write(tmp_path, text: str):
    path = tmp_path / "m.circ"
    path.write_text(text)
    return path


def test_of_draws_the_gradient_of_one_output():
    path = CIRCUITS / "svm_loss.circ"
    result = run_cli("graph", path, "--format", "json", "--of", "loss")
    assert result.returncode == 0, result.stderr
    doc = strict_json(result.stdout)
    assert doc["seeds"] == {"loss": 1.0, "score": 0.0}
    module = circuitc.load(path)
    _, gradients = circuitc.evaluate(module, dict(module.DEFAULTS))
    for item in doc["inputs"]:
        assert doc["nodes"][item["node"]]["grad"] == pytest.approx(gradients["loss"][item["name"]])
    bad = run_cli("graph", path, "--of", "los")
    assert bad.returncode == 2 and "no output named 'los'; did you mean 'loss'?" in bad.stderr


def test_json_carries_non_finite_numbers_as_strings():
    doc = draw.describe(drawing("f = x * 2\n", {"x": float("inf")}))
    assert doc["at"] == {"x": "inf"}
    assert [n["value"] for n in doc["nodes"] if n["op"] == "mul"] == ["inf"]
    strict_json(draw.to_json(drawing("f = x * 2\n", {"x": float("nan")})))


def test_constants_are_nodes_in_json_without_a_gradient():
    doc = draw.describe(drawing("f = x * 2\n", {"x": 3.0}))
    [const] = [n for n in doc["nodes"] if n["op"] == "const"]
    assert (const["value"], const["grad"], const["label"], const["span"]) == (2.0, None, "2", None)
    assert {"from": const["id"], "to": doc["outputs"][0]["node"], "arg": 1} in doc["edges"]


# -- the picture ----------------------------------------------------------------


def test_missing_values_draw_the_structure_only():
    text = "s = x * y\nf = s + 1\n"
    doc = draw.describe(drawing(text))
    assert doc["at"] is None and doc["seeds"] is None
    assert all(n["grad"] is None for n in doc["nodes"])
    assert [n["value"] for n in doc["nodes"]] == [None, None, None, 1.0, None]
    dot = draw.to_dot(drawing(text))
    assert "<i>s</i>" in dot and "font color" not in dot and "gradient" not in dot
    mermaid = draw.to_mermaid(drawing(text))
    assert "value" not in mermaid and '|"s"|' in mermaid


def test_graph_without_defaults_or_values_draws_structure(tmp_path):
    (tmp_path / "m.circ").write_text("f = x * y\n")
    result = run_cli("graph", "m.circ", "--format", "json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    doc = strict_json(result.stdout)
    assert doc["at"] is None and all(n["value"] is None for n in doc["nodes"])
    given = strict_json(run_cli("graph", "m.circ", "x=-2", "y=3", "--format", "json",
                                cwd=tmp_path).stdout)
    assert [n["value"] for n in given["nodes"]] == [-2.0, 3.0, -6.0]
    assert [n["grad"] for n in given["nodes"]] == [3.0, -2.0, 1.0]


def test_graph_with_some_values_missing_draws_what_is_known_and_names_them(tmp_path):
    """Data without defaults and parameters with them, the usual model: the structure
    with the values and gradients that do not need the data."""
    (tmp_path / "m.circ").write_text("input x, w = 1\nf = w * x\n")
    result = run_cli("graph", "m.circ", "--format", "json", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stderr == ("note: no value for input 'x' (no default, none given): drawn "
                             "without the values that depend on it\n")
    doc = strict_json(result.stdout)
    assert doc["at"] == {"x": None, "w": 1.0}
    assert [(n["name"], n["value"], n["grad"]) for n in doc["nodes"]] == [
        ("x", None, 1.0), ("w", 1.0, None), ("f", None, 1.0)]
    dot = run_cli("graph", "m.circ", cwd=tmp_path).stdout
    assert 'n0 -> n2 [label=<<font color="#cf222e">1</font>>]' in dot  # x: its gradient
    assert 'n1 -> n2 [label=<<font color="#1a7f37">1</font>>]' in dot  # w: its value
    given = strict_json(run_cli("graph", "m.circ", "x=2", "--format", "json", cwd=tmp_path).stdout)
    assert [n["value"] for n in given["nodes"]] == [2.0, 1.0, 2.0]
    quiet = run_cli("graph", "m.circ", "--no-values", cwd=tmp_path)
    assert (quiet.returncode, quiet.stderr) == (0, "")


def test_a_bus_circuit_with_some_values_missing_draws_what_is_known(tmp_path):
    (tmp_path / "m.circ").write_text("size n = 3\ninput x[n], w[n] = 0.5, b = 1\n"
                                     "f = sum(w[i] * x[i] for i) + b\n")
    result = run_cli("graph", "m.circ", "--format", "json", cwd=tmp_path)
    assert result.returncode == 0 and "no value for input 'x'" in result.stderr
    nodes = {n["name"]: (n["value"], n["grad"]) for n in strict_json(result.stdout)["nodes"]}
    assert nodes == {"x": (None, [0.5] * 3), "w": ([0.5] * 3, None), "b": (1.0, 1.0),
                     "f": (None, 1.0)}


def test_constants_fold_into_gate_labels_and_operand_order_is_marked():
    # The graph as written, so that no optimizer rewrite changes the gates.
    d = drawing("input v = 2, g = 3\nr = max(0, v ** 2 / g) - 1\n", {"v": 2.0, "g": 3.0},
                optimized=False)
    dot = draw.to_dot(d)
    for label in ("** 2", "max(0, ·)", "- 1"):
        assert f"label=<{label}>" in dot
    assert "headlabel=<①>" in dot and "headlabel=<②>" in dot  # v**2 / g: two wires, ordered
    assert "shape=box, style=\"dashed" not in dot  # no constant drawn on its own
    mermaid = draw.to_mermaid(d)
    assert '("max(0, ·)"):::gate' in mermaid and "①" in mermaid


def test_a_wire_that_fans_out_forks_once_with_one_label():
    d = drawing("f = x * x + x\n", {"x": 3.0})
    dot = draw.to_dot(d)
    assert "j0 [shape=point" in dot
    assert dot.count("n0 -> j0 [label=") == 1
    assert '<font color="#cf222e">7</font>' in dot  # d(x*x + x)/dx = 2x + 1
    assert dot.count("j0 -> ") == 3


def test_source_graph_keeps_what_the_optimizer_folds():
    text = "f = x * -2 * 1\n"
    optimized = draw.describe(drawing(text, {"x": 1.5}))
    source = draw.describe(drawing(text, {"x": 1.5}, optimized=False))
    assert optimized["graph"] == "optimized" and source["graph"] == "source"
    assert [n["op"] for n in optimized["nodes"]] == ["input", "const", "mul"]
    assert [n["op"] for n in source["nodes"]].count("mul") == 2 and "neg" in [
        n["op"] for n in source["nodes"]]
    out = source["nodes"][source["outputs"][0]["node"]]
    assert out["value"] == -3.0 and source["nodes"][0]["grad"] == -2.0
    assert "label=<* -2>" in draw.to_dot(drawing(text, {"x": 1.5}))


def test_constant_outputs_and_outputs_that_are_inputs_are_drawn(graphviz):
    d = drawing("input x = 2\nh = 3\noutput h, x\n", {"x": 2.0})
    dot = draw.to_dot(d)
    assert 'label=<3>, shape=box, style="dashed,filled"' in dot
    assert "label=<h>" in dot and "label=<x>" in dot
    assert subprocess.run(["dot", "-Tsvg"], input=dot, capture_output=True, text=True,
                          check=False).returncode == 0


def test_mermaid_for_the_neuron_has_its_nodes_and_wires():
    result = run_cli("graph", NEURON, "--format", "mermaid")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "flowchart LR"
    shapes = [line.strip() for line in lines if line.strip().startswith(("n", "r"))
              and ":::" in line]
    assert shapes == ['n0(["a"]):::input', 'n1(["b"]):::input', 'n2(["c"]):::input',
                      'n3(["x"]):::input', 'n4(["y"]):::input', 'n5("*"):::gate',
                      'n6("*"):::gate', 'n7("+"):::gate', 'n8("+"):::gate',
                      'n9("sigmoid"):::gate', 'r0((("f"))):::output']
    wires = [line.strip() for line in lines if "--" in line]
    assert len(wires) == 10
    assert any(w.endswith('|"s<br/>value 2<br/>grad 0.105"| n9') for w in wires)
    assert any(w.endswith('|"value 0.8808<br/>grad 1"| r0') for w in wires)
    assert any(w.startswith("n0 -->") and '"value 1<br/>grad -0.105"' in w for w in wires)


def test_mermaid_labels_are_escaped():
    assert mermaid._mermaid_text('a "b" #1 <i> & `c`\nd') == (
        "a #quot;b#quot; #35;1 #lt;i#gt; #amp; #96;c#96; d")


def test_drawings_are_deterministic():
    text = (CIRCUITS / "two_layer.circ").read_text()
    for write in (draw.to_dot, draw.to_mermaid, draw.to_json):
        graph = draw.circuit(text, "two_layer.circ")
        first = write(draw.with_values(graph, graph.defaults))
        graph = draw.circuit(text, "two_layer.circ")
        assert write(draw.with_values(graph, graph.defaults)) == first


# -- Graphviz -----------------------------------------------------------------


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_dot_output_of_every_example_is_valid_graphviz(path, graphviz):
    for flags in ((), ("--source",), ("--no-values",)):
        result = run_cli("graph", path, *flags)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("digraph circuit {\n  graph [rankdir=LR")
        check = subprocess.run(["dot", "-Tsvg"], input=result.stdout, capture_output=True,
                               text=True, check=False)
        assert check.returncode == 0 and check.stderr == "", check.stderr


def test_svg_is_well_formed_and_shows_values_and_gradients(tmp_path, graphviz):
    result = run_cli("graph", NEURON, "--format", "svg")
    assert result.returncode == 0, result.stderr
    root = ET.fromstring(result.stdout.encode("utf-8"))
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    texts = [(t.text, t.get("fill")) for t in root.iter("{http://www.w3.org/2000/svg}text")]
    green, red = draw.VALUE_COLOR, draw.GRAD_COLOR
    assert ("0.8808", green) in texts and ("-0.105", red) in texts and ("0.315", red) in texts
    assert {"sigmoid", "s", "a", "f"} <= {t for t, _ in texts}
    # -o with a .svg suffix picks the format.
    assert run_cli("graph", NEURON, "-o", tmp_path / "n.svg").returncode == 0
    ET.parse(tmp_path / "n.svg")


def test_png_renders(tmp_path, graphviz):
    out = tmp_path / "n.png"
    result = run_cli("graph", NEURON, "--format", "png", "-o", out)
    assert result.returncode == 0 and result.stdout == "", result.stderr
    data = out.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 1000


def test_png_goes_to_stdout_when_it_is_not_a_terminal(graphviz):
    from conftest import circuitc_command
    done = subprocess.run([circuitc_command(), "graph", str(NEURON), "--format", "png"],
                          capture_output=True, check=False, timeout=300)
    assert done.returncode == 0 and done.stdout.startswith(PNG_SIGNATURE)


def test_missing_graphviz_says_how_to_install_it(tmp_path):
    env = {**os.environ, "PATH": str(tmp_path)}  # an empty directory: no `dot`
    for fmt in ("svg", "png"):
        out = tmp_path / f"n.{fmt}"
        result = run_cli("graph", NEURON, "--format", fmt, "-o", out, env=env)
        assert result.returncode == 2
        assert "Graphviz" in result.stderr and "apt-get install graphviz" in result.stderr
        assert "Traceback" not in result.stderr and not out.exists()
    # Formats written without Graphviz still work.
    assert run_cli("graph", NEURON, "--format", "mermaid", env=env).returncode == 0


def test_a_gate_that_fails_at_the_point_is_a_located_error(tmp_path):
    (tmp_path / "m.circ").write_text("input x = -1\nf = log(x) * 2\n")
    result = run_cli("graph", "m.circ", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("m.circ:2:5: error: 'log' on -1.0 fails: math domain error")
    assert "Traceback" not in result.stderr


def test_a_dead_wire_of_the_source_graph_is_drawn_without_a_value(tmp_path):
    # `u` feeds no output: like compile, eval and verify, graph --source does not evaluate it
    (tmp_path / "m.circ").write_text("input x = -1\nu = log(x)\nf = x*2\noutput f\n")
    result = run_cli("graph", "m.circ", "--source", "--format", "json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    nodes = {n["op"]: n for n in strict_json(result.stdout)["nodes"]}
    assert (nodes["log"]["name"], nodes["log"]["value"], nodes["log"]["grad"]) == ("u", None, None)
    assert (nodes["mul"]["value"], nodes["input"]["value"], nodes["input"]["grad"]) == (-2, -1, 2)
    dot = run_cli("graph", "m.circ", "--source", cwd=tmp_path)
    assert dot.returncode == 0 and "label=<log>" in dot.stdout
    # a live gate that fails is still an error
    (tmp_path / "m.circ").write_text("input x = -1\nu = log(x)\nf = u*2\noutput f\n")
    result = run_cli("graph", "m.circ", "--source", cwd=tmp_path)
    assert result.returncode == 2 and "'log' on -1.0 fails" in result.stderr


def test_output_file_errors_and_source_protection(tmp_path):
    (tmp_path / "m.circ").write_text("f = x * y\n")
    result = run_cli("graph", "m.circ", "-o", "m.circ", cwd=tmp_path)
    assert result.returncode == 2 and "overwrite the source" in result.stderr
    assert (tmp_path / "m.circ").read_text() == "f = x * y\n"
    result = run_cli("graph", "m.circ", "-o", "missing/dir/m.dot", cwd=tmp_path)
    assert result.returncode == 2 and "cannot write" in result.stderr
    result = run_cli("graph", "m.circ", "-o", "m.mmd", cwd=tmp_path)
    assert result.returncode == 0 and (tmp_path / "m.mmd").read_text().startswith("flowchart LR")
    bad = run_cli("graph", "m.circ", "--no-values", "x=1", cwd=tmp_path)
    assert bad.returncode == 2 and "--no-values" in bad.stderr


def test_the_docs_show_what_the_command_draws():
    page = (CIRCUITS.parent / "docs" / "drawing.md").read_text(encoding="utf-8")
    mermaid = run_cli("graph", NEURON, "--format", "mermaid").stdout
    assert f"```mermaid\n{mermaid}```\n" in page
    assert "![" in page and "(neuron.svg)" in page
    svg = ET.parse(CIRCUITS.parent / "docs" / "neuron.svg").getroot()
    texts = {t.text for t in svg.iter("{http://www.w3.org/2000/svg}text")}
    assert {"0.8808", "-0.105", "0.315", "0.21", "sigmoid", "s"} <= texts


def test_a_wire_read_far_along_a_deep_circuit_is_drawn_as_copies(graphviz):
    steps = 30
    text = "input x = 0.5\nw0 = x * 2\n" + "".join(
        f"w{i} = sin(w{i - 1}) * x\n" for i in range(1, steps))
    d = drawing(text, {"x": 0.5})
    dot = draw.to_dot(d)
    assert "j0 " not in dot  # no long forking wire from x ...
    assert dot.count('label=<x>, shape=ellipse, style="dashed') == steps  # ... a copy per reader
    grad = draw.describe(d)["nodes"][0]["grad"]
    assert f'xlabel=<<font color="{draw.VALUE_COLOR}">0.5</font><br/>' \
           f'<font color="{draw.GRAD_COLOR}">{grad:.4g}</font>>' in dot
    assert subprocess.run(["dot", "-Tsvg"], input=dot, capture_output=True, text=True,
                          check=False).returncode == 0
    mermaid = draw.to_mermaid(d)
    assert 'n0(["x<br/>value 0.5<br/>grad ' in mermaid and mermaid.count('(["x"]):::copy') == steps
    # Nearby readers share one forking wire.
    assert "j0 [shape=point" in draw.to_dot(drawing("f = sin(x) * x\n", {"x": 0.5}))


def test_a_file_name_with_markup_characters_is_escaped_in_the_picture(graphviz):
    graph = draw.circuit("f = x * y\n", 'dir/a&<"b>.circ')
    dot = draw.to_dot(draw.with_values(graph, {"x": 1.0, "y": 2.0}))
    assert "a&amp;&lt;&quot;b&gt;.circ" in dot and "dir/" not in dot
    svg = draw.run_graphviz(dot, "svg")
    assert 'a&<"b>.circ' in "".join(ET.fromstring(svg).itertext())


# -- circuits with buses: drawn bus by bus --------------------------------------

MLP = """\
# a small multilayer perceptron and its max-margin loss on one point
size n = 3
input x[2] = [0.5, -1.5], y = 1
input W1[n, 2] = [[0.2, -0.4], [0.7, 0.1], [-0.3, 0.5]], b1[n] = 0.1
input W2[n, n] = [[0.3, -0.2, 0.4], [0.1, 0.6, -0.5], [-0.7, 0.2, 0.3]]
input b2[n] = [0, 0.1, -0.1], w3[n] = [0.5, -0.6, 0.8], c = 0.05
h1[i] = relu(sum(W1[i, j] * x[j] for j) + b1[i])
h2[i] = relu(sum(W2[i, j] * h1[j] for j) + b2[i])
score = sum(w3[i] * h2[i] for i) + c
loss = relu(1 - y * score)
output loss, score
"""
MLP_INPUTS = {"x": [0.5, -1.5], "y": 1.0, "W1": [[0.2, -0.4], [0.7, 0.1], [-0.3, 0.5]],
              "b1": [0.1] * 3, "W2": [[0.3, -0.2, 0.4], [0.1, 0.6, -0.5], [-0.7, 0.2, 0.3]],
              "b2": [0.0, 0.1, -0.1], "w3": [0.5, -0.6, 0.8], "c": 0.05}


@pytest.fixture
def mlp(tmp_path):
    path = tmp_path / "mlp.circ"
    path.write_text(MLP)
    return path


def mlp_forward():
    """The MLP's wires, computed as the written-out circuit computes them."""
    v = MLP_INPUTS
    relu = lambda t: max(t, 0.0)
    h1 = [relu(v["W1"][i][0] * v["x"][0] + v["W1"][i][1] * v["x"][1] + v["b1"][i])
          for i in range(3)]
    h2 = [relu(v["W2"][i][0] * h1[0] + v["W2"][i][1] * h1[1] + v["W2"][i][2] * h1[2]
               + v["b2"][i]) for i in range(3)]
    score = v["w3"][0] * h2[0] + v["w3"][1] * h2[1] + v["w3"][2] * h2[2] + v["c"]
    return {"h1": h1, "h2": h2, "score": score, "loss": relu(1 - v["y"] * score)}


def test_bus_json_has_a_node_per_bus_and_wire_and_an_edge_per_access(mlp):
    result = run_cli("graph", mlp, "--format", "json")
    assert result.returncode == 0, result.stderr
    doc = strict_json(result.stdout)
    assert (doc["version"], doc["level"], doc["file"]) == (1, "bus", str(mlp))
    assert doc["sizes"] == {"n": 3} and "graph" not in doc
    nodes = doc["nodes"]
    assert [n["id"] for n in nodes] == list(range(len(nodes)))
    assert [(n["kind"], n["name"], n["shape"], n["label"]) for n in nodes] == [
        ("input", "x", [2], "x [2]"), ("input", "y", [], "y"),
        ("input", "W1", [3, 2], "W1 [3, 2]"), ("input", "b1", [3], "b1 [3]"),
        ("input", "W2", [3, 3], "W2 [3, 3]"), ("input", "b2", [3], "b2 [3]"),
        ("input", "w3", [3], "w3 [3]"), ("input", "c", [], "c"),
        ("wire", "h1", [3], "h1 [3]"), ("wire", "h2", [3], "h2 [3]"),
        ("wire", "score", [], "score"), ("wire", "loss", [], "loss")]
    by_name = {n["name"]: n for n in nodes}
    assert by_name["h1"]["expr"] == "relu(sum(W1[i,j] * x[j] for j) + b1[i])"
    assert by_name["score"]["expr"] == "sum(w3[i] * h2[i] for i) + c"
    assert by_name["loss"]["expr"] == "relu(1 - y * score)" and by_name["x"]["expr"] is None
    assert by_name["h2"]["span"] == {"line": 8, "column": 1, "end_line": 8, "end_column": 3}
    assert [i["name"] for i in doc["inputs"]] == ["x", "y", "W1", "b1", "W2", "b2", "w3", "c"]
    assert all(nodes[i["node"]]["name"] == i["name"] for i in doc["inputs"])
    assert [(o["name"], nodes[o["node"]]["name"]) for o in doc["outputs"]] == [
        ("loss", "loss"), ("score", "score")]
    edges = [(nodes[e["from"]]["name"], nodes[e["to"]]["name"], e["access"],
              [(r["op"], r["over"], r["range"]) for r in e["reductions"]]) for e in doc["edges"]]
    sum_j, sum_i = [("sum", ["j"], None)], [("sum", ["i"], None)]
    assert edges == [
        ("W1", "h1", "W1[i,j]", sum_j), ("x", "h1", "x[j]", sum_j), ("b1", "h1", "b1[i]", []),
        ("W2", "h2", "W2[i,j]", sum_j), ("h1", "h2", "h1[j]", sum_j), ("b2", "h2", "b2[i]", []),
        ("w3", "score", "w3[i]", sum_i), ("h2", "score", "h2[i]", sum_i),
        ("c", "score", "c", []), ("y", "loss", "y", []), ("score", "loss", "score", [])]


def test_bus_json_values_and_gradients_agree_with_the_module(mlp):
    doc = strict_json(run_cli("graph", mlp, "--format", "json").stdout)
    by_name = {n["name"]: n for n in doc["nodes"]}
    assert doc["at"] == MLP_INPUTS and doc["seeds"] == {"loss": 1.0, "score": 1.0}
    for name, value in mlp_forward().items():
        assert by_name[name]["value"] == value, name  # exact: the same operations in order
    # d(loss + score)/d score is 0 here (loss = relu(1 - score) > 0); its inputs' too.
    assert (by_name["loss"]["grad"], by_name["score"]["grad"]) == (1.0, 0.0)
    doc = strict_json(run_cli("graph", mlp, "--of", "loss", "--format", "json").stdout)
    assert doc["seeds"] == {"loss": 1.0, "score": 0.0}
    by_name = {n["name"]: n for n in doc["nodes"]}
    module = circuitc.load(mlp)
    grads = module.backward(**module.DEFAULTS, d_loss=1.0, d_score=0.0)[1]
    assert any(g != 0 for g in grads[2][0])
    for name, g in zip(module.WRT, grads):
        drawn = by_name[name]["grad"]
        assert flat(drawn) == pytest.approx(flat(g), rel=1e-12), name
    assert by_name["h2"]["grad"] == [-0.5, 0.6, -0.8]  # d loss / d h2 = -y * w3


def flat(value) -> list:
    """A number, or nested lists or tuples of numbers, as a flat list."""
    stack, out = [value], []
    while stack:
        v = stack.pop()
        if isinstance(v, (list, tuple)):
            stack.extend(reversed(v))
        else:
            out.append(v)
    return out


def test_bus_dot_labels_nodes_with_shapes_and_arrows_with_accesses(mlp, graphviz):
    result = run_cli("graph", mlp)
    assert result.returncode == 0, result.stderr
    dot = result.stdout
    assert dot.startswith("digraph circuit {\n  graph [rankdir=LR")
    assert "label=<mlp.circ  (n = 3)    <font" in dot
    assert 'n2 [label=<W1 [3, 2]<br/><font color="#1a7f37">min -0.4, max 0.7</font><br/>' in dot
    assert ('n8 [label=<h1 [3]<br/><font color="#57606a" point-size="11">'
            "relu(sum(W1[i,j] * x[j] for j) + b1[i])</font><br/>") in dot
    assert ('  n2 -> n8 [label=<W1[i,j]<br/><font color="#57606a"><i>sum over j</i></font>>];'
            in dot.splitlines())
    assert "  n3 -> n8 [label=<b1[i]>];" in dot.splitlines()
    assert "  n7 -> n10;" in dot.splitlines()  # a scalar read whole: nothing to add
    assert "  n11 -> r0;" in dot.splitlines() and "  n10 -> r1;" in dot.splitlines()
    check = subprocess.run(["dot", "-Tsvg"], input=dot, capture_output=True, text=True,
                           check=False)
    assert check.returncode == 0 and check.stderr == "", check.stderr
    svg = run_cli("graph", mlp, "--format", "svg")
    assert svg.returncode == 0, svg.stderr
    texts = [t.text for t in ET.fromstring(svg.stdout.encode()).iter(
        "{http://www.w3.org/2000/svg}text")]
    for shown in ("W1 [3, 2]", "W1[i,j]", "sum over j", "sum over i", "h2 [3]", "loss",
                  "relu(sum(W1[i,j] * x[j] for j) + b1[i])", "[0.5, -1.5]"):
        assert shown in texts, shown


def test_bus_mermaid_spells_out_each_node_and_arrow(tmp_path):
    (tmp_path / "m.circ").write_text("input x[2] = [1, -2], c = 3\nd[i] = x[i] * c\n"
                                     "f = sum(d[i] for i)\n")
    result = run_cli("graph", "m.circ", "--format", "mermaid", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == """\
flowchart LR
  n0(["x [2]<br/>value [1, -2]<br/>grad [3, 3]"]):::input
  n1(["c<br/>value 3<br/>grad -1"]):::input
  n2("d [2]<br/>x[i] * c<br/>value [3, -6]<br/>grad [1, 1]"):::wire
  n3("f<br/>sum(d[i] for i)<br/>value -3<br/>grad 1"):::wire
  r0((("f"))):::output
  n0 -->|"x[i]"| n2
  n1 --> n2
  n2 -->|"d[i]<br/>sum over i"| n3
  n3 --> r0
  classDef input fill:#ddf4ff,stroke:#0969da,color:#1f2328
  classDef output fill:#fff8c5,stroke:#9a6700,color:#1f2328
  classDef wire fill:#f6f8fa,stroke:#57606a,color:#1f2328
"""


@pytest.mark.parametrize("fmt", ["dot", "json", "mermaid"])
def test_elements_draws_the_gate_graph_of_the_written_out_circuit(mlp, fmt):
    write = {"dot": draw.to_dot, "json": draw.to_json, "mermaid": draw.to_mermaid}[fmt]
    text = mlp.read_text()
    for flags, optimized in (((), True), (("--source",), False)):
        result = run_cli("graph", mlp, "--elements", "--format", fmt, *flags)
        assert result.returncode == 0, result.stderr
        graph = draw.circuit(text, str(mlp), optimized)
        assert result.stdout == write(draw.with_values(graph, graph.defaults, optimized=optimized))
    assert "W1[1,0]" in result.stdout and "relu" in result.stdout


def test_sizes_given_with_D_shape_the_drawing(tmp_path):
    (tmp_path / "s.circ").write_text("size n = 2\ninput x[n] = 0.5\ny[i] = x[i] * i\n"
                                     "output y\n")
    base = strict_json(run_cli("graph", "s.circ", "--format", "json", cwd=tmp_path).stdout)
    assert base["sizes"] == {"n": 2} and base["nodes"][1]["value"] == [0.0, 0.5]
    result = run_cli("graph", "s.circ", "-D", "n=5", "--format", "json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    doc = strict_json(result.stdout)
    assert doc["sizes"] == {"n": 5}
    assert [(n["label"], n["value"]) for n in doc["nodes"]] == [
        ("x [5]", [0.5] * 5), ("y [5]", [0.0, 0.5, 1.0, 1.5, 2.0])]
    assert doc["seeds"] == {"y": 1.0} and doc["nodes"][0]["grad"] == [0.0, 1.0, 2.0, 3.0, 4.0]
    mermaid = run_cli("graph", "s.circ", "-D", "n=5", "--format", "mermaid", cwd=tmp_path).stdout
    assert 'n0(["x [5]<br/>value all 0.5<br/>grad min 0, max 4"]):::input' in mermaid
    assert "(n = 5)" in run_cli("graph", "s.circ", "-D", "n=5", cwd=tmp_path).stdout
    bad = run_cli("graph", "s.circ", "-D", "m=5", cwd=tmp_path)
    assert bad.returncode == 2 and "-D m: the circuit declares no size of that name" in bad.stderr


def test_circuits_without_buses_are_drawn_gate_by_gate_as_before():
    for path in [*EXAMPLES, *sorted((CIRCUITS.parent / "examples").glob("*.circ"))]:
        text = path.read_text()
        buses = circuitc.api.lower_source(text, str(path))[1].shapes
        assert (draw.bus_circuit(text, str(path)) is None) == (not buses), path
    for flags in ((), ("--format", "json"), ("--format", "mermaid", "--source")):
        plain = run_cli("graph", NEURON, *flags)
        assert plain.returncode == 0 and plain.stdout == run_cli("graph", NEURON, "--elements",
                                                                 *flags).stdout
    assert '"level"' not in run_cli("graph", NEURON, "--format", "json").stdout
    # A size alone makes no bus.
    assert draw.bus_circuit("size n = 2\nf = x * n  # x[0]\n", "<test>") is None


def test_bus_values_are_summarised_compactly():
    assert scene._summary([1.0, -2.0], (2,)) == "[1, -2]"
    assert scene._summary([1.0, 0.0, 0.0, 1.0], (2, 2)) == "[[1, 0], [0, 1]]"
    assert scene._summary([0.25] * 6, (6,)) == "all 0.25"
    assert scene._summary([0.5, -1.25, 3.0, 0.0, 2.0], (5,)) == "min -1.25, max 3"
    assert scene._summary([0.5, float("nan"), 3.0, 0.0, 2.0], (5,)) == "min 0, max 3, nan"
    assert scene._summary([0.123456, None], (2,)) == "[0.1235, None]"
    assert scene._summary([None, None], (2,)) is None
    assert scene._summary([7.0], ()) == "7"
    assert scene._summary([], (0,)) is None


def test_a_dead_bus_wire_is_drawn_without_values(tmp_path):
    (tmp_path / "m.circ").write_text("input x[2] = [1, 2]\nu[i] = log(-x[i])\n"
                                     "f = x[0] * x[1]\noutput f\n")
    result = run_cli("graph", "m.circ", "--format", "json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    u = strict_json(result.stdout)["nodes"][1]
    assert (u["name"], u["value"], u["grad"]) == ("u", None, None)
    mermaid = run_cli("graph", "m.circ", "--format", "mermaid", cwd=tmp_path).stdout
    assert '  n1("u [2]<br/>log(-x[i])"):::wire' in mermaid
    assert '  n0 -->|"x[0], x[1]"| n2' in mermaid  # two constant indices, one arrow


def test_of_a_bus_output_draws_its_gradient(tmp_path):
    (tmp_path / "m.circ").write_text("input x[2] = [1, 2]\ne[i] = x[i] * 3\nt = x[0] * x[1]\n"
                                     "output e, t\n")
    doc = strict_json(run_cli("graph", "m.circ", "--of", "e", "--format", "json",
                              cwd=tmp_path).stdout)
    assert doc["seeds"] == {"e": 1.0, "t": 0.0} and doc["nodes"][0]["grad"] == [3.0, 3.0]
    assert "gradient of e</font>" in run_cli("graph", "m.circ", "--of", "e", cwd=tmp_path).stdout
    bad = run_cli("graph", "m.circ", "--of", "e[0]", cwd=tmp_path)
    assert bad.returncode == 2 and "no output named 'e[0]' (outputs: e, t)" in bad.stderr
    # The gate graph has the elements as outputs of their own.
    one = strict_json(run_cli("graph", "m.circ", "--elements", "--of", "e[0]", "--format",
                              "json", cwd=tmp_path).stdout)
    assert one["seeds"] == {"e[0]": 1.0, "e[1]": 0.0, "t": 0.0}
    both = strict_json(run_cli("graph", "m.circ", "--elements", "--of", "e", "--format",
                               "json", cwd=tmp_path).stdout)
    assert both["seeds"] == {"e[0]": 1.0, "e[1]": 1.0, "t": 0.0}


def test_bus_values_given_on_the_command_line_and_no_values(tmp_path):
    (tmp_path / "m.circ").write_text("input x[2], c\nd[i] = x[i] * c\n")
    result = run_cli("graph", "m.circ", "--format", "json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    doc = strict_json(result.stdout)
    assert doc["at"] is None and doc["seeds"] is None
    assert all(n["value"] is None and n["grad"] is None for n in doc["nodes"])
    dot = run_cli("graph", "m.circ", cwd=tmp_path).stdout
    assert draw.VALUE_COLOR not in dot and "label=<x [2]>" in dot
    given = strict_json(run_cli("graph", "m.circ", "x=[0.5,-1]", "c=2", "--format", "json",
                                cwd=tmp_path).stdout)
    assert given["at"] == {"x": [0.5, -1.0], "c": 2.0}
    assert [n["value"] for n in given["nodes"]] == [[0.5, -1.0], 2.0, [1.0, -2.0]]
    assert [n["grad"] for n in given["nodes"]] == [[2.0, 2.0], -0.5, [1.0, 1.0]]
    bad = run_cli("graph", "m.circ", "x=[1,2,3]", "c=1", cwd=tmp_path)
    assert bad.returncode == 2 and "x: expected a number or a nested list of shape [2]" in bad.stderr


def test_a_bad_bus_circuit_is_a_located_error(tmp_path):
    (tmp_path / "m.circ").write_text("input x[2]\nh[i] = x[i] * x\n")
    result = run_cli("graph", "m.circ", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("m.circ:2:15: error: 'x' is a bus of shape [2]")


def test_a_bus_of_no_element_is_refused_as_everywhere(tmp_path):
    (tmp_path / "m.circ").write_text("input w[2, 0], x[2] = 1\nf = x[0] * 2\n")
    result = run_cli("graph", "m.circ", "--format", "json", cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("m.circ:1:12: error: 'w' would have 0 elements")


# -- a drawing too big for Graphviz to lay out in seconds ------------------------------

def _chain(steps: int) -> str:
    return "input x = 0.5\nw0 = sin(x)\n" + "".join(f"w{i} = sin(w{i - 1}) * 0.5\n" for i in range(1, steps))


def test_a_drawing_too_big_to_lay_out_is_refused_fast(tmp_path):
    # x, sin, 2 nodes a step, the output: just over the limit
    (tmp_path / "chain.circ").write_text(_chain(draw.MAX_LAYOUT_NODES // 2 + 1))
    for fmt in ("svg", "png"):
        start = time.monotonic()
        result = run_cli("graph", "chain.circ", "--format", fmt, "-o", f"chain.{fmt}", cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        assert time.monotonic() - start < 60  # Graphviz would take minutes
        assert result.stderr.startswith(
            "error: too big for Graphviz's dot to lay out in seconds: the drawing has "
            f"{draw.MAX_LAYOUT_NODES + 3:,} nodes (at most {draw.MAX_LAYOUT_NODES:,}); draw less")
        assert "--of" in result.stderr and "--format dot or json" in result.stderr
        assert "--force" in result.stderr and "Traceback" not in result.stderr
        assert not (tmp_path / f"chain.{fmt}").exists()
    # What needs no layout is written whatever its size.
    assert run_cli("graph", "chain.circ", "--format", "dot", cwd=tmp_path).returncode == 0


def _readers(n: int) -> str:
    """`x` read by `n` gates side by side (a layer of `n` units): a node with `n` arrows out."""
    lines = ["input x = 0.5"] + [f"input w{j} = 0.1, v{j} = 0.2\nh{j} = tanh(w{j} * x)" for j in range(n)]
    return "\n".join(lines) + f"\nf = {' + '.join(f'v{j} * h{j}' for j in range(n))}\n"


@pytest.mark.parametrize(("limit", "refused"), [
    ("MAX_LAYOUT_NODES", "the drawing has 7 nodes (at most 6)"),
    ("MAX_LAYOUT_FAN_OUT", "a node of the drawing has 2 arrows out"),
])
def test_each_limit_refuses_one_over_and_force_lifts_it(tmp_path, monkeypatch, graphviz, limit,
                                                        refused):
    circuit = tmp_path / "fork.circ"
    circuit.write_text("input x = 0.5, y = 2\nf = x * y + sin(x)\n")
    nodes, _, fan_out = draw.dot_size(run_cli("graph", circuit).stdout)
    assert (nodes, fan_out) == (7, 2)  # x, y, 3 gates, the output, the fork of x
    at = nodes if limit == "MAX_LAYOUT_NODES" else fan_out
    out = tmp_path / "n.svg"
    monkeypatch.setattr(draw, limit, at)  # exactly at the limit: drawn
    result = CliRunner().invoke(main, ["graph", str(circuit), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text().lstrip().startswith("<?xml")
    out.unlink()
    monkeypatch.setattr(draw, limit, at - 1)  # one over: refused, nothing written
    result = CliRunner().invoke(main, ["graph", str(circuit), "-o", str(out)])
    assert result.exit_code == 2 and refused in result.output, result.output
    assert not out.exists()
    result = CliRunner().invoke(main, ["graph", str(circuit), "-o", str(out), "--force"])
    assert result.exit_code == 0, result.output
    assert out.read_text().lstrip().startswith("<?xml")


def test_a_wire_read_by_many_gates_is_refused():
    assert draw.too_big_to_lay_out(draw.to_dot(draw.structure(draw.circuit(
        _readers(draw.MAX_LAYOUT_FAN_OUT), "r.circ")))) is None
    why = draw.too_big_to_lay_out(draw.to_dot(draw.structure(draw.circuit(
        _readers(draw.MAX_LAYOUT_FAN_OUT + 1), "r.circ"))))
    assert why.startswith(f"a node of the drawing has {draw.MAX_LAYOUT_FAN_OUT + 1} arrows out")
