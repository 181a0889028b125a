"""One error type for everything wrong with a `.circ` file, with its position.

A `CircuitError` carries a message and a `Span`; the compiler entry points attach
the file name and source text, and `render()` prints what compiler users expect:

    neuron.circ:3:5: error: unknown gate 'sigmod'; did you mean 'sigmoid'?
      f = sigmod(s)
          ^^^^^^

An error may also point at other places that explain it (`Label`s, each shown
with its own source line, a `-` underline and its text) and end with `note:` and
`help:` lines. Several errors found in one run are a `CircuitErrors`, which is a
`CircuitError` too (the first of them), rendered one after the other and counted.
A `CircuitWarning` renders the same way, as a `warning:`.
"""

from __future__ import annotations

import difflib
from typing import NamedTuple

# At most this many errors are reported from one run.
LIMIT = 20

# The widest source line shown: a longer one is cut to a window around the underline.
WIDTH = 100


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


class Label(NamedTuple):
    """A secondary place that explains an error, and what to say there."""

    span: Span
    text: str


class _Style:
    """How `render` marks up its parts: ANSI colours on a terminal, nothing elsewhere."""

    def __init__(self, color: bool):
        self.color = color

    def _wrap(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.color and text else text

    def bold(self, text: str) -> str:
        return self._wrap("1", text)

    def error(self, text: str) -> str:
        return self._wrap("1;31", text)

    def warning(self, text: str) -> str:
        return self._wrap("1;35", text)

    def secondary(self, text: str) -> str:
        return self._wrap("1;34", text)


class CircuitError(Exception):
    """A bad `.circ` file (or a bad value for one of its inputs)."""

    severity = "error"  # what `render` calls it

    def __init__(self, message: str, span: Span | None = None, *, labels=(), notes=(),
                 hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.span = span
        self.labels: tuple[Label, ...] = tuple(labels)
        self.notes: tuple[str, ...] = tuple(notes)
        self.hint = hint
        self.filename: str | None = None
        self.source: str | None = None

    def attach(self, filename: str, source: str) -> CircuitError:
        """Record where the error happened, unless an inner caller already did."""
        if self.filename is None:
            self.filename, self.source = filename, source
        return self

    def __str__(self) -> str:
        return self.render()

    def _render_traceback_(self) -> list[str]:
        """What IPython shows for the error: the diagnostic alone, in colour, without a
        traceback (the fault is in the circuit, not in the code that compiled it)."""
        return self.render(color=True).split("\n")

    def render(self, color: bool = False) -> str:
        """`file:line:col: error: message`, then the source line with a caret under the span,
        each label's place and line, and the notes and help; ANSI colours if `color`."""
        style = _Style(color)
        where = self.filename or "<circuit>"
        paint = style.warning if self.severity == "warning" else style.error
        message = paint(self.severity) + style.bold(f": {self.message}")
        if self.span is None or self.source is None:
            out = [style.bold(f"{where}:") + " " + message]
        else:
            out = [style.bold(f"{where}:{self.span}:") + " " + message]
            out += _snippet(self.source, self.span, "^", paint)
            for label in self.labels:
                shown = _snippet(self.source, label.span, "-", style.secondary, label.text)
                arrow = style.secondary("-->") + f" {where}:{label.span}"
                out += [f"  {arrow}", *shown] if shown else [f"  {arrow}: {label.text}"]
        out += [f"  {style.secondary('=')} {style.bold('note')}: {n}" for n in self.notes]
        if self.hint:
            out.append(f"  {style.secondary('=')} {style.bold('help')}: {self.hint}")
        return "\n".join(out)


class CircuitErrors(CircuitError):
    """Several errors in one file, in source order (at most `LIMIT`, `more` if there were
    more). As a `CircuitError` it is the first of them."""

    def __init__(self, errors: list[CircuitError], more: bool = False):
        first = errors[0]
        super().__init__(first.message, first.span, labels=first.labels, notes=first.notes,
                         hint=first.hint)
        self.errors = list(errors)
        self.more = more

    def attach(self, filename: str, source: str) -> CircuitError:
        for e in self.errors:
            e.attach(filename, source)
        return super().attach(filename, source)

    def render(self, color: bool = False) -> str:
        """Each error, a blank line between, then a line that counts them."""
        count = f"{len(self.errors)} errors" + ("; stopped there, there are more" if self.more else "")
        return "\n\n".join([*(e.render(color) for e in self.errors), _Style(color).bold(count)])


def collected(errors: list[CircuitError]) -> CircuitError:
    """The error to raise for `errors` (not empty, in source order): the one error as it
    is, several as a `CircuitErrors` of the first `LIMIT`."""
    if len(errors) == 1:
        return errors[0]
    return CircuitErrors(errors[:LIMIT], more=len(errors) > LIMIT)


def _snippet(source: str, span: Span, mark: str, paint, label: str = "") -> list[str]:
    """The source line of `span` and a line that underlines the span with `mark`s (then
    `label`, both painted by `paint`): a window around the span if the line is long.
    Nothing if the line is blank or not in the text."""
    line, column = span.line, span.column
    # Lines end at "\n" only, as the lexer counts them (not at "\x0c" or U+2028); the
    # text is split no further than the span's line, however long the file.
    lines = source.split("\n", line) if line > 0 else []
    if not 0 < line <= len(lines) or not lines[line - 1].strip():
        return []
    text = "".join(c if c.isprintable() or c == "\t" else "\ufffd" for c in lines[line - 1])
    end = span.end_column if span.end_line == line else len(text) + 1
    start, end = column - 1, max(column, min(end, len(text) + 1)) - 1  # 0-based, end exclusive
    left, right = 0, len(text)
    if len(text) > WIDTH:
        left = max(0, min(start - WIDTH // 3, len(text) - WIDTH))
        right = left + WIDTH
        end = min(end, right)
    shown = ("..." if left else "") + text[left:right] + ("..." if right < len(text) else "")
    # Keep tabs in the indent so the caret lines up however tabs are shown.
    indent = "   " * bool(left) + "".join("\t" if c == "\t" else " " for c in text[left:start])
    under = paint(mark * max(1, end - start) + (f" {label}" if label else ""))
    return [f"  {shown}", f"  {indent}{under}"]


class CircuitWarning(CircuitError):
    """What a `.circ` file says that compiles but is likely not what was meant (`lint`):
    rendered as an error is, as `file:line:col: warning: ...`. Never raised."""

    severity = "warning"


class ModuleError(CircuitError):
    """A Python module that `verify` cannot check: it does not follow the contract of a
    generated module, or it fails to load or to run (a domain error is not a failure)."""


def did_you_mean(name: str, candidates) -> str:
    """`; did you mean 'x'?` for the closest candidate, or nothing."""
    close = difflib.get_close_matches(name, sorted(candidates), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""
