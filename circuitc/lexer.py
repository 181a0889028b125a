"""A Pygments lexer for `.circ` files (`pygmentize -l circ FILE`), registered through the
`pygments.lexers` entry point.

It follows `grammar/circuit.lark`: the keywords (`input`, `output`, `gate`, `size` as
declarations, `for` and `in` in reductions), the gates a circuit may call and the
reductions (from the gate table and `buses.REDUCTIONS`, with `range`) as builtins,
the name a `gate` statement defines as a function, numbers, operators, brackets and
`#` comments. Any other character is an `Error` token, as the parser rejects it.
"""

from __future__ import annotations

from typing import ClassVar

from pygments.lexer import RegexLexer, bygroups, words
from pygments.token import Comment, Keyword, Name, Number, Operator, Punctuation, Whitespace

from .buses import REDUCTIONS
from .gates import CALLABLE

BUILTINS = tuple(sorted({*CALLABLE, *REDUCTIONS, "range"}))


class CircLexer(RegexLexer):
    """Circuits for circuitc: inputs, wires, gates, buses and reductions."""

    name = "circ"
    aliases = ("circ", "circuitc")
    filenames = ("*.circ",)

    tokens: ClassVar[dict] = {
        "root": [
            (r"[ \t\f\r]+", Whitespace),
            (r"\n", Whitespace),
            (r"#.*?$", Comment.Single),
            (r"(gate)([ \t\f\r]+)([A-Za-z_][A-Za-z0-9_]*)",
             bygroups(Keyword.Declaration, Whitespace, Name.Function)),
            (words(("input", "output", "gate", "size"), suffix=r"\b"), Keyword.Declaration),
            (words(("for", "in"), suffix=r"\b"), Keyword),
            (words(BUILTINS, suffix=r"\b(?=[ \t]*\()"), Name.Builtin),
            (r"[A-Za-z_][A-Za-z0-9_]*", Name),
            (r"([0-9]+\.[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|[0-9]+[eE][+-]?[0-9]+", Number.Float),
            (r"[0-9]+", Number.Integer),
            (r"\*\*|//|[-+*/=]", Operator),
            (r"[()\[\],;]", Punctuation),
        ],
    }

