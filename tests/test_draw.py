"""`circuitc graph` and circuitc.draw: the drawn graph, its values, gradients and formats."""

from __future__ import annotations

import json
import os
import subprocess
import xml.etree.ElementTree as ET

import pytest

import circuitc
from circuitc import draw
from circuitc.api import elementwise
from conftest import CIRCUITS, EXAMPLES, run_cli

NEURON = CIRCUITS / "neuron.circ"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# SPEC.md section 6: neuron.circ at its defaults.
NEURON_VALUE = 0.8807970779778823
NEURON_GRADS = {"a": -0.10499358540350662, "b": 0.31498075621051985, "c": 0.10499358540350662,
                "x": 0.10499358540350662, "y": 0.20998717080701323}


def drawing(text: str, at=None, seeds=None, optimized=True) -> draw.Drawing:
    graph = draw.circuit(text, "<test>", optimized)
    if at is None:
        return draw.structure(graph, optimized)
    return draw.evaluate(graph, at, seeds, optimized)


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
        d = draw.evaluate(graph, graph.defaults)
        doc = draw.describe(d)
        outputs, gradients = circuitc.evaluate(module, dict(module.DEFAULTS))
        for out in doc["outputs"]:
            assert doc["nodes"][out["node"]]["value"] == outputs[out["name"]], path
        for item in doc["inputs"]:
            total = sum(g[item["name"]] for g in gradients.values())
            if item["node"] is not None:
                assert doc["nodes"][item["node"]]["grad"] == pytest.approx(total, rel=1e-12), path


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


def test_graph_with_some_values_missing_names_them(tmp_path):
    (tmp_path / "m.circ").write_text("input x = 1, y\nf = x * y\n")
    result = run_cli("graph", "m.circ", cwd=tmp_path)
    assert result.returncode == 2 and "no value for input 'y'" in result.stderr
    assert run_cli("graph", "m.circ", "--no-values", cwd=tmp_path).returncode == 0


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
    assert draw._mermaid_text('a "b" #1 <i> & `c`\nd') == (
        "a #quot;b#quot; #35;1 #lt;i#gt; #amp; #96;c#96; d")


def test_drawings_are_deterministic():
    text = (CIRCUITS / "two_layer.circ").read_text()
    for write in (draw.to_dot, draw.to_mermaid, draw.to_json):
        graph = draw.circuit(text, "two_layer.circ")
        first = write(draw.evaluate(graph, graph.defaults))
        graph = draw.circuit(text, "two_layer.circ")
        assert write(draw.evaluate(graph, graph.defaults)) == first


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


def test_the_readme_shows_what_the_command_draws():
    readme = (CIRCUITS.parent / "README.md").read_text(encoding="utf-8")
    mermaid = run_cli("graph", NEURON, "--format", "mermaid").stdout
    assert f"```mermaid\n{mermaid}```\n" in readme
    assert "![" in readme and "(docs/neuron.svg)" in readme
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
    dot = draw.to_dot(draw.evaluate(graph, {"x": 1.0, "y": 2.0}))
    assert "a&amp;&lt;&quot;b&gt;.circ" in dot and "dir/" not in dot
    svg = draw.render(dot, "svg")
    assert 'a&<"b>.circ' in "".join(ET.fromstring(svg).itertext())
