"""Every invalid circuit in fixtures/errors.txt and fixtures/bus_errors.txt gives exactly
its expected message; several errors in one run, long lines, colour, and `-` for standard
input."""

from __future__ import annotations

import os
import subprocess

import pytest

import circuitc
from circuitc.errors import LIMIT, WIDTH, CircuitErrors
from conftest import ROOT, circuitc_command, error_cases, run_cli

CASES = list(error_cases())
BUS_CASES = list(error_cases("bus_errors.txt"))


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


def _case(title: str) -> tuple[str, str]:
    return next(tuple(case.values) for case in CASES if case.id == title)


def test_cli_reports_several_errors_and_counts_them(tmp_path):
    source, expected = _case("several errors in one run: each one, then how many")
    (tmp_path / "bad.circ").write_text(source, encoding="utf-8")
    result = run_cli("compile", "bad.circ", cwd=tmp_path)
    assert (result.returncode, result.stderr) == (2, expected + "\n")
    assert expected.endswith("\n\n5 errors")


def test_several_errors_are_one_circuit_error_holding_each():
    with pytest.raises(circuitc.CircuitError) as info:
        circuitc.compile_source("input x\nf = y\ng = x + z\n", "m.circ")
    e = info.value
    assert isinstance(e, CircuitErrors) and not e.more
    assert [(d.message, str(d.span)) for d in e.errors] == [("unknown name 'y'", "2:5"),
                                                            ("unknown name 'z'", "3:9")]
    assert (e.message, e.span) == (e.errors[0].message, e.errors[0].span)  # the first one
    assert all(d.filename == "m.circ" for d in e.errors)


@pytest.mark.parametrize("line", ["y{k} = x + )", "input x\ny{k} = z{k} + x"],
                         ids=["syntax", "semantic"])
def test_at_most_twenty_errors_are_reported(line):
    lines = [line.format(k=k) for k in range(30)]
    if lines[0].startswith("input"):
        lines = ["input x"] + [s.removeprefix("input x\n") for s in lines]
    with pytest.raises(CircuitErrors) as info:
        circuitc.compile_source("\n".join(lines), "m.circ")
    e = info.value
    assert len(e.errors) == LIMIT == 20 and e.more
    assert e.render().endswith("\n\n20 errors; stopped there, there are more")


def test_errors_are_in_source_order_whatever_check_finds_them():
    source = "input x\noutput g\nf = sigmod(x)\nx = 1\n"
    with pytest.raises(CircuitErrors) as info:
        circuitc.compile_source(source, "m.circ")
    assert [d.span.line for d in info.value.errors] == [2, 3, 4]


def test_a_syntax_error_after_a_semicolon_has_its_column_in_the_file():
    with pytest.raises(CircuitErrors) as info:
        circuitc.compile_source("a = 1 +; b = 2 +; c = $\n", "m.circ")
    assert [str(d.span) for d in info.value.errors] == ["1:8", "1:17", "1:23"]


def test_the_clean_statements_around_a_syntax_error_are_not_errors():
    with pytest.raises(circuitc.CircuitError) as info:
        circuitc.compile_source("a = 1\nb = (2 +\n 3) * $\nc = a + b\n", "m.circ")
    assert not isinstance(info.value, CircuitErrors)
    assert str(info.value.span) == "3:7"


# -- long lines -------------------------------------------------------------------

def _rendered(source: str) -> str:
    with pytest.raises(circuitc.CircuitError) as info:
        circuitc.compile_source(source, "m.circ")
    return info.value.render()


def test_a_long_line_is_cut_around_the_caret_on_both_sides():
    terms = " + ".join(f"x{k}" for k in range(200))
    source = f"f = {terms[:600]} $ {terms[600:]}\n"
    at = source.index("$")
    assert _rendered(source) == (f"m.circ:1:{at + 1}: error: unexpected character '$'\n"
                                 f"  ...{source[at - WIDTH // 3:at - WIDTH // 3 + WIDTH]}...\n"
                                 f"  {' ' * 3}{' ' * (WIDTH // 3)}^")


def test_a_long_line_is_cut_on_the_left_only_when_the_caret_is_near_its_end():
    source = "f = " + " + ".join(f"x{k}" for k in range(100)) + " +\n"
    text = source.rstrip("\n")
    assert _rendered(source) == ("m.circ:1:{}: error: unexpected end of line; expected an "
                                 "expression\n  ...{}\n     {}^").format(
        len(text) + 1, text[-100:], " " * 100)


def test_a_long_line_is_cut_on_the_right_only_when_the_caret_is_near_its_start():
    source = "f = sigmod(" + " + ".join(f"x{k}" for k in range(100)) + ")\n"
    assert _rendered(source) == ("m.circ:1:5: error: unknown gate 'sigmod'; did you mean "
                                 f"'sigmoid'?\n  {source[:100]}...\n      ^^^^^^")


def test_a_line_of_exactly_the_width_is_shown_whole():
    source = "f = " + "x" * 94 + " $\n"
    assert len(source.rstrip("\n")) == WIDTH
    assert _rendered(source).split("\n")[1] == "  " + source.rstrip("\n")


# -- colour -----------------------------------------------------------------------

def test_render_in_colour():
    with pytest.raises(circuitc.CircuitError) as info:
        circuitc.compile_source("input x\nx = 3\nf = y\n", "m.circ")
    bold, red, blue, reset = "\x1b[1m", "\x1b[1;31m", "\x1b[1;34m", "\x1b[0m"
    assert info.value.render(color=True) == "\n".join([
        (f"{bold}m.circ:2:1:{reset} {red}error{reset}{bold}: 'x' is an input and cannot be "
         f"assigned{reset}"),
        "  x = 3",
        f"  {red}^{reset}",
        f"  {blue}-->{reset} m.circ:1:7",
        "  input x",
        f"        {blue}- declared as an input here{reset}",
        "",
        f"{bold}m.circ:3:5:{reset} {red}error{reset}{bold}: unknown name 'y'{reset}",
        "  f = y",
        f"      {red}^{reset}",
        f"  {blue}={reset} {bold}help{reset}: declare it with 'input y'",
        "",
        f"{bold}2 errors{reset}"])
    assert "\x1b" not in info.value.render()


def _stderr_on_a_terminal(tmp_path, env_extra: dict) -> str:
    """What `circuitc compile` writes to a stderr that is a terminal (a pseudo-terminal)."""
    pty = pytest.importorskip("pty")
    (tmp_path / "bad.circ").write_text("f = sigmod(x)\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "TERM")}
    master, slave = pty.openpty()
    try:
        result = subprocess.run([circuitc_command(), "compile", "bad.circ"], cwd=tmp_path,
                                stdout=subprocess.PIPE, stderr=slave, env={**env, **env_extra},
                                timeout=300, check=False)
        os.close(slave)
        assert result.returncode == 2
        data = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # Linux: the other side is closed
                break
            if not chunk:
                break
            data += chunk
    finally:
        os.close(master)
    return data.decode().replace("\r\n", "\n")


def test_the_command_colours_errors_on_a_terminal(tmp_path):
    stderr = _stderr_on_a_terminal(tmp_path, {"TERM": "xterm"})
    assert stderr.startswith("\x1b[1mbad.circ:1:5:\x1b[0m \x1b[1;31merror\x1b[0m\x1b[1m: unknown "
                             "gate 'sigmod'; did you mean 'sigmoid'?\x1b[0m\n")


@pytest.mark.parametrize("env", [{"TERM": "xterm", "NO_COLOR": "1"}, {"TERM": "dumb"}])
def test_no_colour_when_asked_or_on_a_dumb_terminal(tmp_path, env):
    stderr = _stderr_on_a_terminal(tmp_path, env)
    assert stderr.startswith("bad.circ:1:5: error: unknown gate") and "\x1b" not in stderr


def test_no_colour_when_piped(tmp_path):
    (tmp_path / "bad.circ").write_text("f = sigmod(x)\n", encoding="utf-8")
    result = run_cli("compile", "bad.circ", cwd=tmp_path, env={**os.environ, "TERM": "xterm"})
    assert result.returncode == 2 and "\x1b" not in result.stderr


# -- standard input -----------------------------------------------------------------

def test_eval_reads_standard_input():
    result = run_cli("eval", "-", "x=2", "y=3", input="f = x * y\n")
    assert (result.returncode, result.stdout, result.stderr) == (
        0, "f = 6.0\n  df/dx = 3.0\n  df/dy = 2.0\n", "")


def test_compile_of_standard_input_writes_to_stdout(tmp_path):
    result = run_cli("compile", "-", input="f = x * y\n", cwd=tmp_path)
    assert result.returncode == 0 and result.stderr == "" and list(tmp_path.iterdir()) == []
    assert result.stdout == circuitc.compile_source("f = x * y\n", "<stdin>")
    assert "from <stdin>" in result.stdout.split("\n")[0]


def test_compile_of_standard_input_to_a_file(tmp_path):
    result = run_cli("compile", "-", "-o", "m.py", input="f = x * y\n", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout == ""
    assert (tmp_path / "m.py").read_text() == circuitc.compile_source("f = x * y\n", "<stdin>")


@pytest.mark.parametrize("command", [["compile"], ["eval"], ["verify"], ["step"], ["graph"]])
def test_errors_in_standard_input_name_it(command):
    result = run_cli(command[0], "-", input="f = x +\n")
    assert result.returncode == 2
    assert result.stderr == ("<stdin>:1:8: error: unexpected end of line; expected an expression\n"
                             "  f = x +\n         ^\n")


@pytest.mark.parametrize(("command", "expected"), [
    (["verify", "-", "x=1", "y=2"], "<stdin>: OK: 2 passed"),
    (["step", "-", "x=1", "y=2", "--json"], '"method": "analytic"'),
    (["graph", "-", "--format", "json"], '"file": "<stdin>"'),
])
def test_every_command_reads_standard_input(command, expected):
    result = run_cli(*command, input="f = x * y\n")
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout


def test_standard_input_that_is_not_utf8():
    result = subprocess.run([circuitc_command(), "eval", "-"], input=b"f = \xff\n",
                            capture_output=True, timeout=300, check=False)
    assert (result.returncode, result.stderr) == (2, b"<stdin>:1:5: error: not UTF-8: byte 0xff\n")


def test_the_help_says_that_dash_is_standard_input():
    result = run_cli("--help")
    assert result.returncode == 0 and "standard input when FILE is '-'" in result.stdout


def test_the_documented_example_of_several_errors_is_what_the_command_prints(tmp_path):
    section = (ROOT / "docs" / "errors.md").read_text(encoding="utf-8")
    blocks = section.split("```\n")
    source, printed = blocks[2], blocks[4]  # the page's second and third blocks
    (tmp_path / "bad.circ").write_text(source, encoding="utf-8")
    result = run_cli("compile", "bad.circ", cwd=tmp_path)
    assert (result.returncode, result.stderr) == (2, printed)
