"""The playground's Python side, under CPython: what its worker answers
(`circuitc.playground.session`), the token rules its editor highlights with, and
`circuitc playground --build` and its errors. The page itself, in Chromium, is
tests/test_playground_browser.py."""

from __future__ import annotations

import json
import re
import subprocess
import urllib.request
import zipfile
from pathlib import Path

import pytest

from circuitc import tokens
from circuitc.playground import session
from conftest import CIRCUITS, ROOT, circuitc_command, run_cli

NEURON = (CIRCUITS / "neuron.circ").read_text()


def ask(**request) -> dict:
    request.setdefault("name", "neuron.circ")
    return json.loads(session.handle(json.dumps(request)))


def cli_json(*args) -> dict:
    done = run_cli(*args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_show_answers_what_eval_prints_with_the_module_and_the_drawing():
    a = ask(op="show", text=NEURON)
    assert a["ok"] and a["diagnostics"] == []
    assert a["evaluation"] == cli_json("eval", CIRCUITS / "neuron.circ")
    assert [i["name"] for i in a["inputs"]] == ["a", "b", "c", "x", "y"]
    assert a["dot"].startswith("digraph circuit {") and "sigmoid" in a["dot"]
    assert "  # line 5" in a["code"] and a["buses"] is False


def test_a_typo_is_the_caret_message_of_the_command_line(tmp_path):
    text = NEURON.replace("sigmoid(s)", "sigmod(s)")
    (tmp_path / "neuron.circ").write_text(text)
    a = ask(op="show", text=text)
    assert not a["ok"] and "evaluation" not in a
    [error] = a["diagnostics"]
    assert error["span"] == [5, 5, 5, 11] and error["severity"] == "error"
    done = run_cli("eval", "neuron.circ", cwd=tmp_path)
    assert done.returncode == 2 and error["text"] == done.stderr.rstrip("\n")


def test_each_error_of_a_file_is_marked_and_all_are_rendered_once():
    a = ask(op="show", text="f = sigmod(x) + cos(y, y)\n", name="two.circ")
    first, second = a["diagnostics"]
    assert (first["span"], second["span"]) == ([1, 5, 1, 11], [1, 17, 1, 20])
    assert first["text"].endswith("2 errors") and second["text"] == ""


def test_a_domain_error_at_run_time_is_shown_at_its_gate():
    a = ask(op="show", text="input x = -1\nf = log(x)\noutput f\n", name="c.circ")
    assert not a["ok"] and a["evaluation"] is None
    assert a["diagnostics"][0]["text"].startswith("c.circ:2:5: error: in 'log'")
    assert a["diagnostics"][0]["span"] == [2, 5, 2, 8]


def test_warnings_come_with_the_values():
    a = ask(op="show", text="input x = 2\nt = x + 1\nf = x * x\noutput f\n", name="w.circ")
    assert a["ok"] and a["evaluation"]["outputs"] == {"f": 4.0}
    assert [d["severity"] for d in a["diagnostics"]] == ["warning"]
    assert a["diagnostics"][0]["text"].startswith("w.circ:2:1: warning:")


@pytest.mark.parametrize("method", ["random", "numerical", "analytic"])
def test_a_step_moves_the_inputs_as_circuitc_step_does(method):
    a = ask(op="step", text=NEURON, method=method, step_size=0.01, seed=3, at={"x": 2})
    expected = cli_json("step", CIRCUITS / "neuron.circ", "x=2", "--method", method, "--seed", "3")
    assert a["ok"] and a["after"] == expected["after"]["inputs"]
    assert "<table>" in a["html"]


def test_verify_is_the_report_of_circuitc_verify():
    a = ask(op="verify", text=NEURON)
    done = run_cli("verify", CIRCUITS / "neuron.circ")
    assert a["ok"] and a["passed"]
    assert a["text"].splitlines()[:7] == done.stdout.splitlines()[:7]


def test_a_bus_circuit_draws_by_bus_and_by_element():
    text = (CIRCUITS / "two_layer.circ").read_text()
    by_bus = ask(op="show", text=text, name="two_layer.circ")
    by_element = ask(op="show", text=text, name="two_layer.circ", elements=True)
    assert by_bus["buses"] and by_bus["inputs"][0] == {"name": "x", "shape": [2],
                                                       "default": [0.5, -1.5]}
    assert by_bus["dot"].count(" -> ") < by_element["dot"].count(" -> ")


def test_inputs_without_values_draw_the_structure_and_say_which():
    text = (ROOT / "examples" / "mlp.circ").read_text()
    a = ask(op="show", text=text, name="mlp.circ", target="numpy")
    assert a["ok"] and a["evaluation"] is None and "x" in a["missing"]
    assert a["dot"] and "import numpy as np" in a["code"]


def test_a_bad_value_is_an_error_not_a_fault():
    text = (CIRCUITS / "two_layer.circ").read_text()
    a = ask(op="show", text=text, name="two_layer.circ", at={"x": [1, "a"]})
    assert not a["ok"] and "x: expected" in a["diagnostics"][0]["text"]


def test_infinities_are_json():
    a = ask(op="show", text="input x = 1e200\nf = x * x\noutput f\n", name="e.circ")
    assert a["evaluation"]["outputs"] == {"f": "inf"}


def test_each_rule_with_groups_covers_its_match():
    # The editor emits a rule's groups one after another: they must be the whole match.
    for pattern, token in tokens.RULES:
        if isinstance(token, tuple):
            assert re.compile(pattern).groups == len(token)
            m = re.match(pattern, "gate \t sq")
            assert m and "".join(m.groups()) == m.group(0)


# -- circuitc playground --build ---------------------------------------------------


def test_build_writes_a_site_that_needs_nothing_else(npm, tmp_path):
    done = run_cli("playground", "--build", tmp_path / "site", CIRCUITS / "neuron.circ")
    assert done.returncode == 0, done.stderr
    assert "1 circuits in the menu" in done.stdout
    site = tmp_path / "site"
    for name in ("index.html", "app.js", "editor.js", "worker.js", "style.css",
                 "vendor/graphviz.js", "vendor/pyodide/pyodide.asm.wasm"):
        assert (site / name).is_file(), name
    config = json.loads((site / "config.json").read_text())
    assert config["tokens"] == json.loads(json.dumps(tokens.RULES))
    assert config["circuits"] == [{"path": str(CIRCUITS / "neuron.circ"), "text": NEURON}]
    names = zipfile.ZipFile(site / "python.zip").namelist()
    assert {"circuitc/grammar/circuit.lark", "circuitc/playground/session.py",
            "lark/__init__.py"} <= set(names)
    assert not [n for n in names if "/web/" in n or "__pycache__" in n]
    # Nothing in the site names another host: it loads only from itself.
    for page in ("index.html", "app.js", "editor.js", "worker.js", "style.css"):
        assert not re.search(r"https?://", (site / page).read_text()), page


def test_build_without_npm_says_what_it_needs(tmp_path):
    done = run_cli("playground", "--build", tmp_path / "site", env={"PATH": str(tmp_path)})
    assert done.returncode == 2
    assert done.stderr.startswith("error: building the playground needs Node.js's npm")
    assert "Traceback" not in done.stderr


def test_serving_a_folder_with_no_site_fails_clearly(tmp_path):
    done = run_cli("playground", "--site", tmp_path, "--no-browser")
    assert done.returncode == 2 and "holds no playground site" in done.stderr
    assert "Traceback" not in done.stderr


def test_site_takes_no_files(tmp_path):
    done = run_cli("playground", "--site", tmp_path, CIRCUITS / "neuron.circ")
    assert done.returncode == 2 and "--site serves a site as built" in done.stderr


def test_the_tutorial_links_each_of_its_circuits_to_the_playground():
    from circuitc.playground import DEFAULT_PORT
    from circuitc.playground.site import default_circuits

    text = (ROOT / "docs" / "tutorial.md").read_text()
    shown = re.findall(r"^\$ cat ((?:circuits|examples)/\w+\.circ)$", text, re.MULTILINE)
    linked = re.findall(rf"\(http://127\.0\.0\.1:{DEFAULT_PORT}/#example=([^)&]+)[^)]*\)", text)
    assert shown and linked == shown
    menu = [str(p.relative_to(ROOT)) for p in default_circuits(ROOT)]
    assert set(linked) <= set(menu)


def test_playground_builds_serves_and_cleans_up_when_stopped(npm, tmp_path):
    # Without --site the site is built into a temporary folder, which goes when the
    # server is stopped (by SIGTERM as by Ctrl-C).
    process = subprocess.Popen([circuitc_command(), "playground", CIRCUITS / "neuron.circ",
                                "--port", "0", "--no-browser"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        building = process.stdout.readline()
        assert building.startswith("building the playground into "), process.stderr.read()
        folder = Path(building.split(" into ", 1)[1].removesuffix(" ...\n"))
        assert "1 circuits in the menu" in process.stdout.readline()
        url = process.stdout.readline().split(" at ", 1)[1].split()[0]
        with urllib.request.urlopen(url + "config.json", timeout=30) as answer:
            assert json.load(answer)["circuits"][0]["text"] == NEURON
        with urllib.request.urlopen(url + "vendor/pyodide/pyodide.asm.wasm", timeout=30) as answer:
            assert answer.headers["Content-Type"] == "application/wasm"
        assert folder.is_dir()
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert not folder.exists()
