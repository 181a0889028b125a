"""What people type: help for the likely fix of a syntax error, the `help:` line of its
message (`character_hint` for a character that begins no token, `token_hint` for a token
the grammar does not allow where it stands): a look-alike character such as U+2212 for
'-', `2x`, `math.exp`, a misspelt keyword, a gate defined without `gate`.
"""

from __future__ import annotations

import difflib
import math
import re
import unicodedata

from lark import Token

from .gates import CALLABLE
from .syntax import KEYWORDS

# Characters that look like an operator (or a space), and what to write instead.
_LOOKALIKES = {"\u2212": "-", "\u2013": "-", "\u2014": "-", "\u00d7": "*", "\u00b7": "*",
               "\u22c5": "*", "\u2219": "*", "\u00f7": "/", "\u00b2": "**2", "\u00b3": "**3",
               "\u00a0": " "}
_QUOTES = "\u201c\u201d\u2018\u2019\u201e\u00ab\u00bb\"'`"
_COMPARISONS = ("LT", "LE", "GT", "GE", "EQ", "NE")  # the grammar's terminals
_CONSTANTS = {"pi": math.pi, "e": math.e, "tau": math.tau}
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_WORD_BEFORE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_NUMBER_BEFORE = re.compile(r"(?<![A-Za-z0-9_.])(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
_CALL_DEFINED = re.compile(r"[ \t\f\r]*([A-Za-z_][A-Za-z0-9_]*[ \t\f\r]*\([^()\n;]*\))[ \t\f\r]*=")


def _named(c: str) -> str:
    return f"{c!r} is U+{ord(c):04X} {unicodedata.name(c, 'UNNAMED')}"


def character_hint(text: str, at: int) -> str | None:
    """Help for the character at offset `at`, which begins no token."""
    c = text[at]
    if c in _LOOKALIKES:
        instead = _LOOKALIKES[c]
        if instead == " ":
            return f"{_named(c)}; write an ordinary space"
        if instead.startswith("**"):
            return f"{_named(c)}; write the power as '{instead}'"
        return f"{_named(c)}, which looks like '{instead}'; write '{instead}'"
    if c == "!":
        return "'!' alone is no operator: write '!=' for 'not equal'"
    if c in _QUOTES:
        return (f"{_named(c)}; a circuit has no quotes: remove it" if ord(c) > 127
                else "a circuit has no quotes: remove it")
    if c == ".":
        before, after = _WORD_BEFORE.search(text, 0, at), _WORD.match(text, at + 1)
        if before and after:
            written = f"{before.group()}.{after.group()}"
            if after.group() in CALLABLE:
                return f"gates are called by their name alone: write '{after.group()}', not '{written}'"
            if after.group() in _CONSTANTS:
                return f"write the number {_CONSTANTS[after.group()]!r} for '{written}'"
            return f"a name has no '.': write '{written.replace('.', '_')}', say"
        return None
    if unicodedata.decimal(c, None) is not None:
        return (f"'{c}' is the digit {unicodedata.decimal(c)} of another script; numbers are "
                "written with the ASCII digits 0-9")
    if c.isalnum():
        hint = "names are ASCII: the letters a-z and A-Z, the digits 0-9 and '_'"
        name = unicodedata.name(c, "")
        if name.startswith("GREEK ") and " LETTER " in name:
            return f"{hint}; for '{c}' write '{name.rsplit(' ', 1)[-1].lower()}'"
        return hint
    return None


def token_hint(token: Token, text: str, start: int, at: int) -> str | None:
    """Help for the token at offset `at` that the grammar does not allow there, in the
    statement that starts at offset `start`."""
    if token.type in _COMPARISONS:
        return (f"comparisons do not chain: for 'a < b {token.value} c' write "
                f"'(a < b) * (b {token.value} c)', or parenthesize one comparison")
    before = text[start:at]
    if token.value == "=" and "=" in before and all(
            before.count(o) == before.count(c) for o, c in ("()", "[]")):  # not unclosed
        return "to compare, write '=='"
    if token.type in ("NAME", "LPAR"):
        number = _NUMBER_BEFORE.search(text, start, at)
        if number:
            operand = token.value if token.type == "NAME" else "(...)"
            return f"to multiply, write '{number.group()}*{operand}'"
    first = _WORD.fullmatch(text[start:at].strip())
    if first and token.type == "NAME" and first.group() not in KEYWORDS:
        word = first.group()
        keyword = next((k for k in sorted(KEYWORDS) if k == word.lower()), None) or next(
            iter(difflib.get_close_matches(word.lower(), sorted(KEYWORDS), n=1, cutoff=0.6)), None)
        if keyword:
            return f"'{word}' is not a keyword; did you mean '{keyword}'?"
    if first and token.type == "LPAR":
        defined = _CALL_DEFINED.match(text, start)
        if defined:
            return f"to define a gate, write 'gate {defined.group(1)} = ...'"
    return None
