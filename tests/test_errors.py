"""Every invalid circuit in fixtures/errors.txt and fixtures/bus_errors.txt gives exactly
its expected message."""

from __future__ import annotations

import pytest

import circuitc
from conftest import ROOT, run_cli


def _cases(fixture: str = "errors.txt"):
    text = (ROOT / "tests" / "fixtures" / fixture).read_text(encoding="utf-8")
    for block in text.split("\n=== ")[1:]:
        title, _, rest = block.partition("\n")
        source, _, expected = rest.partition("---\n")
        yield pytest.param(source, expected.rstrip("\n"), id=title)


CASES = list(_cases())
BUS_CASES = list(_cases("bus_errors.txt"))


@pytest.mark.parametrize(("source", "expected"), CASES + BUS_CASES)
def test_error_message(source, expected):
    with pytest.raises(circuitc.CircuitError) as info:
        circuitc.compile_source(source, "bad.circ")
    assert info.value.render() == expected


def test_there_are_many_cases():
    assert len(CASES) >= 35
    assert len(BUS_CASES) >= 30


@pytest.mark.parametrize(("source", "expected"), CASES[:6])
def test_cli_reports_error_without_traceback(tmp_path, source, expected):
    (tmp_path / "bad.circ").write_text(source, encoding="utf-8")
    result = run_cli("compile", "bad.circ", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.rstrip("\n") == expected
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "bad.py").exists()
