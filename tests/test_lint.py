"""Warnings (circuitc/lint.py): an output that is an input and a wire no output depends on,
from the API (`circuitc.lint_source`, the notebook's `Circuit.warnings`) and on the
commands' stderr, where `--quiet` silences them; the examples have none."""

from __future__ import annotations

import pytest

import circuitc
from conftest import CIRCUITS, EXAMPLES, ROOT, run_cli

PASSED_THROUGH = "input x = 1, y = 2\nf = x * y\noutput f, x\n"
PASSED_THROUGH_WARNING = """\
m.circ:3:11: warning: output 'x' is an input: it is the input's own value, passed through unchanged
  output f, x
            ^
  --> m.circ:1:7
  input x = 1, y = 2
        - declared as an input here"""


@pytest.mark.parametrize(("text", "warnings"), [
    (PASSED_THROUGH, ["3:11: output 'x' is an input"]),
    ("f = x * y\noutput f, x\n", ["2:11: output 'x' is an input"]),  # inputs not declared
    ("input x = 1\nu = x * 2\nv = u + 1\nf = x * 3\n",  # no output statement: f
     ["2:1: wire 'u' is not used: no output depends on it",
      "3:1: wire 'v' is not used: no output depends on it"]),
    ("size n = 3\ninput x[n] = 1\nu[i] = x[i] * 2\nf = sum(x[i] for i)\noutput f\n",
     ["3:1: bus 'u' is not used: no output depends on it"]),
    ("input x = 1\nu = x * 2\noutput x\n",
     ["2:1: wire 'u' is not used", "3:8: output 'x' is an input"]),
    # Read by an output through a bus, a reduction, a gate and a wire defined after it.
    ("size n = 2\ninput x[n] = 1\ngate sq(a) = a * a\ns = sum(h[i] for i)\nh[i] = sq(g[i])\n"
     + "g[i] = x[i] + t\nt = 1\noutput s\n", []),
])
def test_the_warnings_of_a_circuit(text, warnings):
    found = circuitc.lint_source(text, "m.circ")
    assert all(isinstance(w, circuitc.CircuitWarning) for w in found)
    lines = [w.render().split("\n")[0] for w in found]
    assert len(lines) == len(warnings)
    for line, expected in zip(lines, warnings):
        where, message = expected.split(" ", 1)
        assert line.startswith(f"m.circ:{where} warning: {message}"), line


def test_no_example_has_a_warning():
    paths = [*EXAMPLES, *sorted((ROOT / "examples").glob("*.circ"))]
    for path in paths:
        assert circuitc.lint_source(path.read_text(), str(path)) == [], path


@pytest.mark.parametrize("command", ["compile", "eval", "verify", "step", "graph"])
def test_every_command_warns_on_stderr_and_quiet_silences_it(tmp_path, command):
    (tmp_path / "m.circ").write_text(PASSED_THROUGH)
    out = ["-o", "-"] if command in ("compile", "graph") else []
    result = run_cli(command, "m.circ", *out, cwd=tmp_path)
    assert (result.returncode, result.stderr) == (0, PASSED_THROUGH_WARNING + "\n")
    assert result.stdout
    quiet = run_cli(command, "m.circ", *out, "--quiet", cwd=tmp_path)
    assert (quiet.returncode, quiet.stderr, quiet.stdout) == (0, "", result.stdout)


def test_an_unused_bus_is_one_warning_through_the_command(tmp_path):
    (tmp_path / "m.circ").write_text("size n = 3\ninput x[n] = 1\nu[i] = x[i] * 2\n"
                                     "f = sum(x[i] for i)\noutput f\n")
    result = run_cli("eval", "m.circ", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stderr == ("m.circ:3:1: warning: bus 'u' is not used: no output depends on it\n"
                             "  u[i] = x[i] * 2\n  ^\n")


def test_an_example_compiles_without_a_word(tmp_path):
    result = run_cli("compile", CIRCUITS / "neuron.circ", "-o", tmp_path / "n.py")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_the_notebook_circuit_has_its_warnings_and_shows_them():
    c = circuitc.circuit(PASSED_THROUGH)
    assert [w.message for w in c.warnings] == [
        "output 'x' is an input: it is the input's own value, passed through unchanged"]
    assert "warning: output &#x27;x&#x27; is an input" in c._repr_html_()
    assert circuitc.circuit("input x = 1\nf = x * 2\n").warnings == []
