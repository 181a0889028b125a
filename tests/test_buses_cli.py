"""Buses through the installed `circuitc` command and the generated modules' contract:
JSON values, `--at`, `-D`, `--wrt`/`--fix` with bus names, and what `forward` and
`backward` take and return for buses in each target."""

from __future__ import annotations

import json
import math

import pytest

import circuitc
from conftest import run_cli

SIZED = "size n = 2\ninput x[n]\nf = sum(x[i] for i)\n"


# -- -D NAME=INT --------------------------------------------------------------------


@pytest.mark.parametrize(("source", "sizes", "message"), [
    (SIZED, {"m": 3}, "-D m: the circuit declares no size of that name (sizes: n)"),
    ("input x\nf = x\n", {"m": 3},
     "-D m: the circuit declares no size of that name (it declares none)"),
    (SIZED, {"n": -1}, "-D n=-1: a size must be a non-negative integer"),
])
def test_bad_sizes_in_the_api(source, sizes, message):
    with pytest.raises(circuitc.CircuitError) as info:
        circuitc.compile_source(source, "bad.circ", sizes=sizes)
    assert info.value.render() == f"bad.circ: error: {message}"


@pytest.mark.parametrize(("command", "source", "item", "message"), [
    ("compile", SIZED, "m=3", "-D m: the circuit declares no size of that name (sizes: n)"),
    ("eval", SIZED, "m=3", "-D m: the circuit declares no size of that name (sizes: n)"),
    ("verify", "input x\nf = x\n", "m=3",
     "-D m: the circuit declares no size of that name (it declares none)"),
    ("step", SIZED, "n=-1", "-D n=-1: a size must be a non-negative integer"),
])
def test_bad_sizes_on_the_command_line(tmp_path, command, source, item, message):
    (tmp_path / "bad.circ").write_text(source)
    result = run_cli(command, "bad.circ", "-D", item, cwd=tmp_path)
    assert (result.returncode, result.stderr) == (2, f"bad.circ: error: {message}\n")
    assert not (tmp_path / "bad.py").exists()


@pytest.mark.parametrize("item", ["n=x", "=3", "n", "n=1.5"])
def test_malformed_sizes_are_usage_errors(tmp_path, item):
    (tmp_path / "m.circ").write_text(SIZED)
    result = run_cli("eval", "m.circ", "x=1", "-D", item, cwd=tmp_path)
    assert result.returncode == 2
    assert f"expected NAME=INT, got {item!r}" in result.stderr and "Traceback" not in result.stderr


def test_sizes_change_the_shapes(tmp_path):
    (tmp_path / "m.circ").write_text(SIZED)
    result = run_cli("eval", "m.circ", "x=[1, 2, 4]", "-D", "n=3", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["outputs"] == {"f": 7.0}
    assert document["gradients"] == {"f": {"x": [1.0, 1.0, 1.0]}}
    module = circuitc.load(tmp_path / "m.circ", sizes={"n": 3})
    assert module.SHAPES["x"] == (3,)
    assert math.isclose(module.forward([1, 2, 4]), 7.0)
