"""A Pygments lexer for `.circ` files (`pygmentize -l circ FILE`), registered through the
`pygments.lexers` entry point: the token rules of `circuitc.tokens`, which the
playground's editor highlights with too.
"""

from __future__ import annotations

from typing import ClassVar

from pygments.lexer import RegexLexer, bygroups
from pygments.token import string_to_tokentype

from .tokens import BUILTINS, RULES

__all__ = ["BUILTINS", "CircLexer"]


def _action(token: str | tuple[str, ...]):
    if isinstance(token, tuple):
        return bygroups(*map(string_to_tokentype, token))
    return string_to_tokentype(token)


class CircLexer(RegexLexer):
    """Circuits for circuitc: inputs, wires, gates, buses and reductions."""

    name = "circ"
    aliases = ("circ", "circuitc")
    filenames = ("*.circ",)

    tokens: ClassVar[dict] = {"root": [(pattern, _action(token)) for pattern, token in RULES]}
