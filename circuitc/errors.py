"""One error type for everything wrong with a `.circ` file, with its position.

A `CircuitError` carries a message and a `Span`; the compiler entry points attach
the file name and source text, and `render()` prints what compiler users expect:

    neuron.circ:3:5: error: unknown gate 'sigmod'; did you mean 'sigmoid'?
      f = sigmod(s)
          ^^^^^^
"""

from __future__ import annotations

import difflib
from typing import NamedTuple


class Span(NamedTuple):
    """A region of source text; lines and columns count from 1, `end_column` is exclusive."""

    line: int
    column: int
    end_line: int
    end_column: int

    def to(self, other: Span) -> Span:
        """The span from the start of this one to the end of `other`."""
        return Span(self.line, self.column, other.end_line, other.end_column)

    def __str__(self) -> str:
        return f"{self.line}:{self.column}"


class CircuitError(Exception):
    """A bad `.circ` file (or a bad value for one of its inputs)."""

    def __init__(self, message: str, span: Span | None = None):
        super().__init__(message)
        self.message = message
        self.span = span
        self.filename: str | None = None
        self.source: str | None = None

    def attach(self, filename: str, source: str) -> CircuitError:
        """Record where the error happened, unless an inner caller already did."""
        if self.filename is None:
            self.filename, self.source = filename, source
        return self

    def __str__(self) -> str:
        return self.render()

    def render(self) -> str:
        """`file:line:col: error: message`, then the source line with a caret under the span."""
        where = self.filename or "<circuit>"
        if self.span is None or self.source is None:
            return f"{where}: error: {self.message}"
        line, column = self.span.line, self.span.column
        head = f"{where}:{line}:{column}: error: {self.message}"
        # Lines end at "\n" only, as the lexer counts them (not at "\x0c" or U+2028).
        lines = self.source.split("\n")
        if not 0 < line <= len(lines) or not lines[line - 1].strip():
            return head
        text = "".join(c if c.isprintable() or c == "\t" else "\ufffd" for c in lines[line - 1])
        end = self.span.end_column if self.span.end_line == line else len(text) + 1
        width = max(1, min(end, len(text) + 1) - column)
        # Keep tabs in the indent so the caret lines up however tabs are shown.
        indent = "".join("\t" if c == "\t" else " " for c in text[: column - 1])
        return f"{head}\n  {text}\n  {indent}{'^' * width}"


class ModuleError(CircuitError):
    """A Python module that `verify` cannot check: it does not follow the contract of a
    generated module, or it fails to load or to run (a domain error is not a failure)."""


def did_you_mean(name: str, candidates) -> str:
    """`; did you mean 'x'?` for the closest candidate, or nothing."""
    close = difflib.get_close_matches(name, sorted(candidates), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""
