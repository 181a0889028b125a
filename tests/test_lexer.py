"""The Pygments lexer for `.circ`, through this Python's Pygments (which finds it by its
entry point), on every circuit in the repository."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT

FILES = sorted([*ROOT.glob("circuits/*.circ"), *ROOT.glob("examples/*.circ")])
KEYWORDS = {"input", "output", "gate", "size"}


def pygmentize(*args, input: str | None = None) -> str:
    # This Python's Pygments (`pygmentize` may be a link to another Python's, which
    # would find another circuitc through the entry point).
    done = subprocess.run([sys.executable, "-m", "pygments", *map(str, args)], input=input,
                          capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def tokens(text: str) -> list[tuple[str, str]]:
    """(token type, text) of `text`, by `pygmentize -l circ -f raw`, whitespace left out."""
    out = []
    for line in pygmentize("-l", "circ", "-f", "raw", input=text).splitlines():
        kind, _, value = line.partition("\t")
        value = eval(value)
        if kind != "Token.Text.Whitespace":
            out.append((kind.removeprefix("Token."), value))
    return out


def test_every_circuit_lexes_without_an_error_token():
    # The lexer keeps no state from line to line: the files lex as they do one by one.
    text = "\n".join(path.read_text() for path in FILES)
    found = tokens(text)
    assert "".join("".join(value for _, value in found).split()) == "".join(text.split())
    assert not [value for kind, value in found if kind == "Error"]


def test_the_lexer_is_found_by_the_file_suffix():
    raw = pygmentize("-f", "raw", ROOT / "examples" / "mlp.circ")
    assert "Token.Keyword.Declaration\t'size'" in raw and "Token.Error" not in raw


def test_every_token_class_is_sensible_on_the_examples():
    for kind, value in tokens("\n".join(path.read_text() for path in FILES)):
        if value in KEYWORDS:
            assert kind == "Keyword.Declaration", value
        elif kind == "Name" or kind.startswith("Name."):
            assert value.isidentifier(), value
        elif kind.startswith("Literal.Number"):
            float(value)
        elif kind == "Comment.Single":
            assert value.startswith("#") and "\n" not in value
        else:
            assert kind in ("Operator", "Punctuation", "Keyword"), (kind, value)


def test_the_syntax_is_highlighted_as_it_means():
    text = ("# a layer\nsize n = 2 ; input x[n] = [1, -2.5e3], W[n, n]\n"
            "gate act(u) = max(u, 0)\n"
            "h[i] = act(sum(W[i, j] * x[j] for j in range(0, n)) // 1 + .5)\n"
            "s = x[0] ** 2\noutput h, s\n")
    assert tokens(text) == [
        ("Comment.Single", "# a layer"),
        ("Keyword.Declaration", "size"), ("Name", "n"), ("Operator", "="),
        ("Literal.Number.Integer", "2"), ("Punctuation", ";"),
        ("Keyword.Declaration", "input"), ("Name", "x"), ("Punctuation", "["), ("Name", "n"),
        ("Punctuation", "]"), ("Operator", "="), ("Punctuation", "["),
        ("Literal.Number.Integer", "1"), ("Punctuation", ","), ("Operator", "-"),
        ("Literal.Number.Float", "2.5e3"), ("Punctuation", "]"), ("Punctuation", ","),
        ("Name", "W"), ("Punctuation", "["), ("Name", "n"), ("Punctuation", ","),
        ("Name", "n"), ("Punctuation", "]"),
        ("Keyword.Declaration", "gate"), ("Name.Function", "act"), ("Punctuation", "("),
        ("Name", "u"), ("Punctuation", ")"), ("Operator", "="), ("Name.Builtin", "max"),
        ("Punctuation", "("), ("Name", "u"), ("Punctuation", ","),
        ("Literal.Number.Integer", "0"), ("Punctuation", ")"),
        ("Name", "h"), ("Punctuation", "["), ("Name", "i"), ("Punctuation", "]"),
        ("Operator", "="), ("Name", "act"), ("Punctuation", "("), ("Name.Builtin", "sum"),
        ("Punctuation", "("), ("Name", "W"), ("Punctuation", "["), ("Name", "i"),
        ("Punctuation", ","), ("Name", "j"), ("Punctuation", "]"), ("Operator", "*"),
        ("Name", "x"), ("Punctuation", "["), ("Name", "j"), ("Punctuation", "]"),
        ("Keyword", "for"), ("Name", "j"), ("Keyword", "in"), ("Name.Builtin", "range"),
        ("Punctuation", "("), ("Literal.Number.Integer", "0"), ("Punctuation", ","),
        ("Name", "n"), ("Punctuation", ")"), ("Punctuation", ")"), ("Operator", "//"),
        ("Literal.Number.Integer", "1"), ("Operator", "+"), ("Literal.Number.Float", ".5"),
        ("Punctuation", ")"),
        ("Name", "s"), ("Operator", "="), ("Name", "x"), ("Punctuation", "["),
        ("Literal.Number.Integer", "0"), ("Punctuation", "]"), ("Operator", "**"),
        ("Literal.Number.Integer", "2"),
        ("Keyword.Declaration", "output"), ("Name", "h"), ("Punctuation", ","), ("Name", "s"),
    ]


def test_comparisons_are_operators_and_where_a_builtin():
    found = tokens("f = where(a <= b, a < b, a == b) + (a != b) * (a > b) * (a >= b)\n")
    assert [v for k, v in found if k == "Operator"] == ["=", "<=", "<", "==", "+", "!=", "*",
                                                        ">", "*", ">="]
    assert ("Name.Builtin", "where") in found
    assert not [v for k, v in found if k == "Error"]


def test_names_that_start_like_keywords_or_gates_are_names():
    assert tokens("inputs = exp2 + sum\nsizes = maxi(gateway)\n") == [
        ("Name", "inputs"), ("Operator", "="), ("Name", "exp2"), ("Operator", "+"),
        ("Name", "sum"), ("Name", "sizes"), ("Operator", "="), ("Name", "maxi"),
        ("Punctuation", "("), ("Name", "gateway"), ("Punctuation", ")")]


def test_what_the_parser_rejects_is_an_error_token():
    assert ("Error", "^") in tokens("f = x ^ 2\n")


def test_html_output_highlights_keywords_and_builtins():
    page = pygmentize("-l", "circ", "-f", "html", ROOT / "circuits" / "neuron.circ")
    assert '<span class="k' in page and '<span class="nb">sigmoid</span>' in page


def test_gates_whose_names_extend_others_and_mean_are_builtins():
    from pygments import lex
    from pygments.token import Name

    from circuitc.lexer import CircLexer

    text = "f = erfc(x) + erf(x) + log1p(x) + expm1(x) + mean(y[i] for i)\n"
    assert [value for kind, value in lex(text, CircLexer()) if kind is Name.Builtin] == [
        "erfc", "erf", "log1p", "expm1", "mean"]
