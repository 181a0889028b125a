"""Fuzzing: any text given to the compiler ends in a module or a `CircuitError` with a valid position.

Inputs come from two hypothesis strategies: `.circ`-like text generated from the
grammar's tokens and statements (often valid, sometimes broken on purpose), and
byte-level mutations of the example circuits. A compiled module must pass the
syntax-tree whitelist and import; an error must point inside the text (a line of
the file, a column within that line or just past its end) and render. Through
the installed command (compile, eval, verify, step, graph), every input ends with
exit status 0 or 2 (or 1 from verify, for a failed check) and no traceback.

The run in the test suite is short. For a long run, raise the number of examples:

    CIRCUITC_FUZZ_EXAMPLES=100000 python -m pytest tests/test_fuzz.py --hypothesis-show-statistics
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from lark.exceptions import UnexpectedInput

import circuitc
from circuitc.api import normalize
from circuitc.errors import CircuitError
from circuitc.gates import CALLABLE
from circuitc.parse import _fast, _parse_reporting, _parser, parse
from conftest import EXAMPLES, run_cli
from whitelist import check_module

EXAMPLES_IN_PROCESS = int(os.environ.get("CIRCUITC_FUZZ_EXAMPLES", "200"))
EXAMPLES_CLI = max(20, EXAMPLES_IN_PROCESS // 10)
SETTINGS = settings(max_examples=EXAMPLES_IN_PROCESS, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# -- text from the grammar -----------------------------------------------------

# Mostly names a circuit may use (hostile but valid ones among them), sometimes a
# keyword or a gate's name where a name should be.
GOOD_NAMES = ["x", "y", "z", "w1", "_", "X", "a_b", "lambda", "__import__", "t1", "d_f", "math",
              "ValueError", "f", "g", "np"]
BAD_NAMES = ["input", "output", "gate", "sigmoid", "log", "max", "pow"]
NAMES = st.sampled_from(GOOD_NAMES * 8 + BAD_NAMES)
GATE_CALLS = st.sampled_from(sorted((g.name, g.arity) for g in CALLABLE.values()))
NUMBERS = st.sampled_from(["0", "1", "2.5", ".5", "1e-3", "2.5E+4", "1e999", "1e-400", "0000.5",
                           "9" * 40, "1.", "3", "0.0", "-1"])
JUNK = st.sampled_from(["^", "(", ")", ",", "=", ";", "\n", "#", "**", "*", "+", "-", "/", "$",
                        "\t", "\r", "\x0c", "\x0b", "\u2028", "\x00", "é", "1e", "..", "\\",
                        '"', "input", "gate", "output", "\r\n", "\ufeff", " "])


def _expressions():
    def extend(inner):
        return st.one_of(
            st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "**"]), inner).map(
                lambda t: f"{t[0]} {t[1]} {t[2]}"),
            st.tuples(st.sampled_from(["-", "+"]), inner).map("".join),
            inner.map(lambda e: f"({e})"),
            st.tuples(GATE_CALLS, st.lists(inner, min_size=2, max_size=2)).map(
                lambda t: f"{t[0][0]}({', '.join(t[1][:t[0][1]])})"),
            st.tuples(NAMES, st.lists(inner, max_size=3)).map(
                lambda t: f"{t[0]}({', '.join(t[1])})"))
    return st.recursive(st.one_of(NAMES, NUMBERS), extend, max_leaves=12)


EXPRS = _expressions()
ASSIGNMENTS = st.tuples(NAMES, EXPRS).map(lambda t: f"{t[0]} = {t[1]}")
OTHER_STATEMENTS = st.one_of(
    st.lists(st.tuples(NAMES, st.none() | EXPRS), min_size=1, max_size=3).map(
        lambda items: "input " + ", ".join(n if e is None else f"{n} = {e}" for n, e in items)),
    st.tuples(NAMES, st.lists(NAMES, max_size=3), EXPRS).map(
        lambda t: f"gate {t[0]}({', '.join(t[1])}) = {t[2]}"),
    st.just(""),
    st.text(max_size=10).map(lambda s: "# " + s.replace("\n", " ")),
)


@st.composite
def grammar_texts(draw):
    """Wires, maybe inputs, gates and outputs, in any order; then a few random edits."""
    statements = draw(st.lists(ASSIGNMENTS, min_size=1, max_size=5))
    statements += draw(st.lists(OTHER_STATEMENTS, max_size=2))
    if draw(st.booleans()):
        wires = [s.split(" = ")[0] for s in statements if " = " in s and s[0] != "#"]
        outputs = draw(st.lists(st.sampled_from(wires) | NAMES, min_size=1, max_size=3))
        statements.append("output " + ", ".join(outputs))
    statements = draw(st.permutations(statements))
    separators = draw(st.lists(st.sampled_from(["\n", "; ", "\r\n", "  # note\n"]),
                               min_size=len(statements), max_size=len(statements)))
    text = "".join(s + sep for s, sep in zip(statements, separators, strict=True))
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2, 3]))):
        at = draw(st.integers(0, len(text)))
        if draw(st.booleans()):
            text = text[:at] + draw(JUNK) + text[at:]
        else:
            text = text[:at] + text[at + draw(st.integers(1, 3)):]
    return text


# -- mutated examples ----------------------------------------------------------

SEEDS = [p.read_bytes() for p in EXAMPLES]


@st.composite
def mutated_examples(draw):
    """An example circuit with random byte-level edits: flips, inserts, deletes, splices."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["flip", "insert", "delete", "duplicate", "splice"]))
        if kind == "flip" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=4) | JUNK.map(str.encode))
        elif kind == "delete":
            del data[at:at + draw(st.integers(1, 12))]
        elif kind == "duplicate":
            data[at:at] = data[at:at + draw(st.integers(1, 40))]
        elif kind == "splice":
            other = draw(st.sampled_from(SEEDS))
            start = draw(st.integers(0, len(other)))
            data[at:at] = other[start:start + draw(st.integers(1, 40))]
    return bytes(data)


# -- the properties ------------------------------------------------------------

_HEAD = re.compile(r"^(?P<file>.*):(?P<line>\d+):(?P<column>\d+): error: \S")


def assert_valid_error(e: CircuitError, filename: str) -> None:
    """`e`, and each error it holds, points inside its source text (as do its labels)
    and renders as `file:line:col: error: ...`; several are in source order."""
    errors = getattr(e, "errors", [e])
    for error in errors:
        assert error.span is not None and error.source is not None, error.message
        lines = error.source.split("\n")
        for span in (error.span, *(label.span for label in error.labels)):
            line, column = span.line, span.column
            assert 1 <= line <= len(lines), (span, len(lines))
            assert 1 <= column <= len(lines[line - 1]) + 1, (span, lines[line - 1])
            assert (span.end_line, span.end_column) >= (line, column), span
        head = _HEAD.match(error.render().split("\n")[0])
        assert head and head["file"] == filename
        assert (int(head["line"]), int(head["column"])) == (error.span.line, error.span.column)
    assert [error.span for error in errors] == sorted(error.span for error in errors)
    assert e.render().split("\n")[0] == errors[0].render().split("\n")[0]


def compile_or_fail_cleanly(text: str, filename: str = "fuzz.circ") -> str | None:
    """The module for `text` (checked and imported), or None after a valid `CircuitError`."""
    try:
        source = circuitc.compile_source(text, filename)
    except CircuitError as e:
        assert_valid_error(e, filename)
        return None
    check_module(source)
    exec(compile(source, "<fuzz>", "exec"), {})  # noqa: S102 (checked above)
    return source


@SETTINGS
@given(grammar_texts())
@example("f = x\x0b\n")  # a vertical tab outside a comment
@example("f = (x\n")
@example("input x = (1\n")
@example("\ufeff\r\nf = x^2\r\n")
def test_grammar_text_compiles_or_fails_cleanly(text):
    compile_or_fail_cleanly(text)


@SETTINGS
@given(st.one_of(grammar_texts(), mutated_examples().map(lambda data: data.decode("utf-8", "replace"))))
@example("f = input\n")  # a keyword where Lark's contextual lexer reads a name
@example("f = x ** -y ** 2; g = (f\n*\n2)\n")
@example("f = (x\n")
@example("x = 1" + " " * 40 + "$\n")  # no backtracking through the spaces
@example("x = 1" + " \t# c\n" * 3000 + "^\n")
def test_the_fast_parser_agrees_with_lark(text):
    """`parse` runs the LALR tables in its own loop and falls back to Lark's driver only
    to report an error: on valid text both give the same tree, on invalid text the
    fast one gives up (saying where)."""
    text = normalize(text) + "\n"
    fast = _fast().parse(text)
    try:
        expected = _parser().parse(text)
    except (UnexpectedInput, CircuitError):
        assert type(fast) is int
    else:
        assert fast == expected


@SETTINGS
@given(st.one_of(grammar_texts(), mutated_examples().map(lambda data: data.decode("utf-8", "replace"))),
       st.integers(0, 3))
@example("f = (x\n", 1)
@example("s = sum(x[i] for i inrange(3))\n", 2)  # Lark's contextual lexer reads `in range`
@example("f = x; g = (y\n", 1)
def test_errors_reported_from_where_the_fast_parser_stops_are_lark_s_own(text, valid):
    """Lark's driver reports a syntax error from the statement where the fast parser stopped,
    not from the start of the file: the errors (or the statements) are those it finds
    reading the whole file."""
    text = "x0 = 1\n" * valid + normalize(text) + "\n"
    try:
        expected = _parse_reporting(text)
    except CircuitError as e:
        with pytest.raises(CircuitError) as info:
            parse(text)
        assert info.value.render() == e.render()
    else:
        assert parse(text) == expected


_TMP = Path(tempfile.mkdtemp(prefix="circuitc-fuzz-"))


@SETTINGS
@given(mutated_examples())
def test_mutated_examples_compile_or_fail_cleanly(data):
    path = _TMP / "mutant.circ"
    path.write_bytes(data)
    try:
        source = circuitc.compile_file(path)
    except CircuitError as e:
        if e.message.startswith("not UTF-8: byte 0x"):  # no text: check against the bytes
            lines = data.split(b"\n")
            if e.span is not None:
                assert 1 <= e.span.line <= len(lines), e.span
                assert 1 <= e.span.column <= len(lines[e.span.line - 1]) + 1, e.span
            assert e.render().startswith(str(path) + ":")
            return
        assert_valid_error(e, str(path))
        return
    check_module(source)


# Each command with the exit statuses it may give: `verify` says 1 when a gradient
# check fails, which random circuits may well do (at a kink, say).
COMMANDS = [(["compile", "-o", "-"], (0, 2)), (["compile", "--target", "numpy", "-o", "-"], (0, 2)),
            (["eval"], (0, 2)), (["verify", "--points", "2"], (0, 1, 2)),
            (["step", "--steps", "2"], (0, 2)), (["graph", "--format", "json"], (0, 2))]


@settings(SETTINGS, max_examples=EXAMPLES_CLI)
@given(st.one_of(grammar_texts().map(str.encode), mutated_examples()), st.sampled_from(COMMANDS))
def test_the_command_never_shows_a_traceback(data, command):
    path = _TMP / "cli.circ"
    path.write_bytes(data)
    args, statuses = command
    result = run_cli(args[0], path, *args[1:])
    assert result.returncode in statuses, result
    assert "Traceback" not in result.stderr, result.stderr
    if result.returncode == 2:  # one error, or several and how many
        count = re.fullmatch(r"(?s).*\n\n(\d+) errors(; stopped there, there are more)?\n",
                             result.stderr)
        errors = len(re.findall(r"(?m)^\S*:\d+:\d+: error: ", result.stderr))
        assert errors == (int(count[1]) if count else 1) or (
            not count and result.stderr.lower().count("error:") == 1), result.stderr
