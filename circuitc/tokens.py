"""The token rules of `.circ` text, as data: what the Pygments lexer (`circuitc.lexer`)
and the playground's editor (`circuitc.playground`) highlight, from one table.

It follows `grammar/circuit.lark`: the keywords (`input`, `output`, `gate`, `size` as
declarations, `for` and `in` in reductions), the gates a circuit may call and the
reductions (from the gate table and `buses.REDUCTIONS`, with `range` and the random
defaults `draws.DRAWS`) as builtins,
the name a `gate` statement defines as a function, numbers, operators, brackets and
`#` comments. Any other character is an `Error` token, as the parser rejects it.

`RULES` is a tuple of `(pattern, token)`: at each position the first pattern that
matches (a regular expression in the syntax Python and JavaScript share, `$` matching
at each line's end) gives the token, a Pygments token name; a rule whose token is a
tuple names one token per group, and its groups cover the whole match.
"""

from __future__ import annotations

from .buses import REDUCTIONS
from .draws import DRAWS
from .gates import CALLABLE

BUILTINS = tuple(sorted({*CALLABLE, *REDUCTIONS, *DRAWS, "range"}))

_SPACE = r"[ \t\f\r]+"
_NAME = r"[A-Za-z_][A-Za-z0-9_]*"


def _words(names) -> str:
    return "(?:" + "|".join(names) + ")"


RULES: tuple[tuple[str, str | tuple[str, ...]], ...] = (
    (_SPACE, "Text.Whitespace"),
    (r"\n", "Text.Whitespace"),
    (r"#.*?$", "Comment.Single"),
    (rf"(gate)({_SPACE})({_NAME})", ("Keyword.Declaration", "Text.Whitespace", "Name.Function")),
    (_words(("input", "output", "gate", "size")) + r"\b", "Keyword.Declaration"),
    (_words(("for", "in")) + r"\b", "Keyword"),
    (_words(BUILTINS) + r"\b(?=[ \t]*\()", "Name.Builtin"),
    (_NAME, "Name"),
    (r"([0-9]+\.[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|[0-9]+[eE][+-]?[0-9]+", "Number.Float"),
    (r"[0-9]+", "Number.Integer"),
    (r"\*\*|//|[<>=!]=|[-+*/=<>]", "Operator"),
    (r"[()\[\],;]", "Punctuation"),
)
