"""A circuit with buses and no `output` statement: its last wire is the output, and
when that wire is a bus, the whole bus."""

from __future__ import annotations

from conftest import load_source, run_cli


def test_a_last_bus_without_output_is_output_whole(tmp_path):
    m = load_source("input x[2], c\nd[i] = x[i] * c\n")
    assert m.OUTPUTS == ("d",) and m.SHAPES["d"] == (2,)
    assert m.forward([1.0, 2.0], 3.0) == (3.0, 6.0)
    (tmp_path / "m.circ").write_text("input x[2] = [1, 2], c = 3\nd[i] = x[i] * c\n")
    result = run_cli("eval", "m.circ", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("d = [3.0, 6.0]\n")
    # A scalar wire after the bus is the output, as in any circuit.
    assert load_source("input x[2]\nd[i] = x[i] * 2\nf = d[0] + d[1]\n").OUTPUTS == ("f",)
