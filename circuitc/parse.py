"""Text -> syntax tree: the `.circ` grammar run by Lark's LALR parser.

`parse(text)` returns the file's statements as small immutable syntax nodes, each
carrying the `Span` it came from. The tree is built by callbacks that run while
the LALR parser reduces, so nothing recurses however deep the nesting is, and no
intermediate Lark tree is kept. Lark's exceptions become `CircuitError`s.

Two drivers run the same LALR tables and callbacks. `_Fast` is a tight loop with
a one-regex lexer, for large circuits (benchmarks/RESULTS.md); it gives up at the
first thing that is not valid text. Lark's driver then parses again from the start of
the statement where it stopped (what precedes is valid, and is not read again), to
report the error exactly as Lark finds it. Both give the same tree for valid text, and
the same errors as Lark's driver reading the whole file (tests check both on generated
programs).

After a syntax error, Lark's driver resumes at the next statement (after the next
newline or ';' outside parentheses), so one run reports every syntax error of the
file, up to `errors.LIMIT`. Where the likely fix is known (a look-alike character
such as U+2212 for '-', `2x`, `math.exp`, a misspelt keyword) the error says so in
a `help:` line (`hints`). The nodes of the tree are `syntax`'s; `unparse` writes them back.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path
from typing import NamedTuple

from lark import Lark, Token, Transformer
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken
from lark.grammar import Rule
from lark.parsers.lalr_analysis import Shift

from .errors import LIMIT, CircuitError, Span, collected
from .hints import character_hint, token_hint
from .syntax import (
    KEYWORDS,
    Assign,
    BusAssign,
    BusItem,
    Call,
    GateDef,
    Index,
    InputDecl,
    ListLit,
    Name,
    Num,
    Op,
    OutputDecl,
    Reduce,
    SizeDecl,
)


def _span(token: Token) -> Span:
    return Span(token.line, token.column, token.end_line, token.end_column)


def _name(token: Token) -> Name:
    name = token.value  # a plain str: cheaper to hash and compare than the Token
    if name in KEYWORDS:
        raise CircuitError(f"'{name}' is a keyword and cannot be used as a name", _span(token))
    return Name(name, _span(token))


def _binary(gate):
    return lambda self, c: Op(gate, (c[0], c[2]), _span(c[1]))


class _Build(Transformer):
    """Callbacks run by the LALR parser at each reduction."""

    def start(self, c):
        # A `size` statement declaring several sizes is one `SizeDecl` each (a list).
        return [x for s in c for x in (s if type(s) is list else (s,))]
    add, sub, mul, div, pow, floordiv = (_binary(g) for g in ("add", "sub", "mul", "div", "pow",
                                                              "floordiv"))
    lt, le, gt, ge, eq, ne = (_binary(g) for g in ("lt", "le", "gt", "ge", "eq", "ne"))
    dims = tuple

    def bounds(self, c):
        if c[0].value != "range":
            raise CircuitError(f"expected 'range(...)' after 'in', got '{c[0].value}'", _span(c[0]))
        return tuple(c[1:])

    def neg(self, c):
        return Op("neg", (c[1],), _span(c[0]))

    def pos(self, c):
        return c[1]

    def number(self, c):
        return Num(float(c[0].value), _span(c[0]))

    def name(self, c):
        return _name(c[0])

    def call(self, c):
        return Call(_name(c[0]), tuple(c[1:]))

    def index(self, c):
        return Index(_name(c[0]), c[1])

    def reduce(self, c):
        bounds = c[-1] if type(c[-1]) is tuple else None
        names = c[2:-1] if bounds is not None else c[2:]
        return Reduce(_name(c[0]), c[1], tuple(_name(t) for t in names), bounds)

    def list(self, c):
        return ListLit(tuple(c), c[0].span)

    def bus_item(self, c):
        return BusItem(_name(c[0]), c[1], c[2] if len(c) > 2 else None)

    def bus_index(self, c):
        return _name(c[0]), (c[1] if len(c) > 1 else None)

    def bus_assign(self, c):
        indices = c[1:-1]
        bounds = tuple(b for _, b in indices)
        return BusAssign(_name(c[0]), tuple(v for v, _ in indices), c[-1],
                         bounds if any(b is not None for b in bounds) else None)

    def size_decl(self, c):
        return c

    def size_item(self, c):
        return SizeDecl(_name(c[0]), c[1])

    def input_item(self, c):
        return _name(c[0]), (c[1] if len(c) > 1 else None)

    def input_decl(self, c):
        return InputDecl(tuple(c))

    def output_decl(self, c):
        return OutputDecl(tuple(_name(t) for t in c))

    def assign(self, c):
        return Assign(_name(c[0]), c[1])

    def gate_def(self, c):
        return GateDef(_name(c[0]), tuple(_name(t) for t in c[1:-1]), c[-1])


_OPENING = frozenset(("LPAR", "LSQB"))
_CLOSING = frozenset(("RPAR", "RSQB"))


class _Parens:
    """Postlexer: inside parentheses or brackets a newline does not end the statement."""

    always_accept = ("_NL",)

    def process(self, stream):
        opened = []
        for token in stream:
            if token.type in _OPENING:
                opened.append(token)
            elif token.type in _CLOSING and opened:
                opened.pop()
            elif token.type == "_NL" and opened:
                continue
            yield token
        if opened:
            raise CircuitError(f"'{opened[-1]}' was never closed", _span(opened[-1]))


def grammar_text() -> str:
    """The grammar ships inside the package; in a source checkout it sits beside it."""
    packaged = resources.files("circuitc") / "grammar" / "circuit.lark"
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    return (Path(__file__).parent.parent / "grammar" / "circuit.lark").read_text(encoding="utf-8")


@cache
def _parser() -> Lark:
    return Lark(grammar_text(), parser="lalr", transformer=_Build(), postlex=_Parens(),
                propagate_positions=False, maybe_placeholders=False)


@cache
def _fast() -> _Fast:
    return _Fast(_parser())


def parse(text: str) -> list:
    """The statements of a `.circ` source text, in source order (a new list each time; the
    statements themselves are immutable)."""
    return list(_parsed(text))


def parse_recovering(text: str) -> tuple[list, list[CircuitError]]:
    """The statements of `text` that parse, and its syntax errors (those `parse` raises,
    in source order): a statement with an error is left out, and the others are parsed
    as if it were blank. Nothing is moved: every span is where it is in `text`. What an
    editor shows of a file being typed (`circuitc.analysis`)."""
    if not text.endswith("\n"):
        text += "\n"
    try:
        return parse(text), []
    except CircuitError as e:
        errors = list(getattr(e, "errors", [e]))
    blanked, kept = text, errors
    # Each round blanks the statements of the errors found, so the next finds others or
    # none. Where `_resume` finds no end (a '(' never closed), the statement is taken to
    # end with the error's line.
    for _ in range(LIMIT + 1):
        for error in kept:
            at = _offset(blanked, error.span)
            end = _resume(blanked, at) or blanked.find("\n", at) + 1 or len(blanked)
            start = _statement(blanked, at)[0]
            blanked = blanked[:start] + re.sub(r"[^\n]", " ", blanked[start:end]) + blanked[end:]
        try:
            return parse(blanked), errors
        except CircuitError as e:
            kept = list(getattr(e, "errors", [e]))
    return [], errors


# The statements of the last text parsed are kept: a command reads its circuit more than
# once (the whole-bus front end, the written-out one, the warnings), and parsing takes
# about a second a megabyte. A text that is not valid raises each time.
@lru_cache(maxsize=1)
def _parsed(text: str) -> list:
    if not text.endswith("\n"):
        text += "\n"
    parsed = _fast().parse(text)
    if type(parsed) is list:
        return parsed
    # Lark's driver reports from the start of the statement where the fast one stopped:
    # what precedes it is valid, and reading it again would cost as much as the whole
    # file again (for an error at the end of a large file).
    return _parse_reporting(text, _statement(text, parsed)[0])


def _parse_reporting(text: str, start: int = 0) -> list:
    """The statements of `text` by Lark's driver, or its syntax errors, read from offset
    `start` (where a statement starts; the text before it is valid): after each error, the
    parse starts again at the statement after it, until the text ends or `LIMIT` errors
    and one more are found. Where Lark's driver finds no error from `start` on (its
    lexer, which knows what the parser expects, reads a few texts that the fast driver's
    does not, `in range` written `inrange`), it reads the whole text for its statements."""
    errors: list[CircuitError] = []
    line, column = _position(text, start)  # where this parse starts in `text`
    while len(errors) <= LIMIT:
        part = text[start:]
        try:
            statements = _parser().parse(part)
        except UnexpectedInput as e:
            error = _syntax_error(e, part, (line, column))
        except CircuitError as e:
            error = e
        else:
            if not errors:
                return statements if start == 0 else _parse_reporting(text)
            break
        at = _offset(part, error.span)
        error.span = _moved(error.span, line, column)
        errors.append(error)
        resume = _resume(part, at)
        if resume is None:
            break
        line, column = _moved_position(*_position(part, resume), line, column)
        start += resume
    raise collected(errors)


def _offset(text: str, span: Span) -> int:
    """Where `span` starts in `text`."""
    return sum(map(len, text.split("\n", span.line - 1)[:-1])) + span.line - 1 + span.column - 1


def _position(text: str, offset: int) -> tuple[int, int]:
    """The line and column of `offset` in `text`."""
    line = text.count("\n", 0, offset) + 1
    return line, offset - text.rfind("\n", 0, offset)


def _moved_position(at_line: int, at_column: int, line: int, column: int) -> tuple[int, int]:
    """A position in a text that starts at `line` and `column` of the file, in the file."""
    return at_line + line - 1, at_column + (column - 1 if at_line == 1 else 0)


def _moved(span: Span, line: int, column: int) -> Span:
    """`span` in a text that starts at `line` and `column` of the file, as a span of the file."""
    return Span(*_moved_position(span.line, span.column, line, column),
                *_moved_position(span.end_line, span.end_column, line, column))


# What separates statements and nests: parentheses, newlines and ';' outside comments.
_PUNCTUATION = re.compile(r"#[^\n]*|[()[\]\n;]")
# The start of a statement: `name =`, `name[...] =` or a keyword.
_STATEMENT = re.compile(r"[ \t\f\r]*(?:[A-Za-z_][A-Za-z0-9_]*[ \t\f\r]*[=[]|(?:input|output|gate|size)\b)")


def _statement(text: str, at: int) -> tuple[int, list[int]]:
    """Where the statement holding offset `at` starts, and the offsets of the '('s (and
    '['s) still open at `at` (counted as the postlexer counts them)."""
    start, opened = 0, []
    for m in _PUNCTUATION.finditer(text, 0, at):
        c = m.group()
        if c in "([":
            opened.append(m.start())
        elif c in ")]":
            if opened:
                opened.pop()
        elif c in "\n;" and not opened:
            start = m.end()
    return start, opened


def _resume(text: str, at: int) -> int | None:
    """Where to parse again after a syntax error at offset `at`: after the first newline
    or ';' from `at` on that closes the statement (parentheses counted from its start),
    or, if a '(' opened on an earlier line is still open and a statement starts the
    error's line, at that line (the ')' is likely missing). None at the end of the text."""
    _, opened = _statement(text, at)
    line_start = text.rfind("\n", 0, at) + 1
    if opened and opened[-1] < line_start and not text[line_start:at].strip() \
            and _STATEMENT.match(text, at):
        return line_start
    depth = len(opened)
    for m in _PUNCTUATION.finditer(text, at):
        c = m.group()
        if c in "([":
            depth += 1
        elif c in ")]":
            depth -= 1
        elif c in "\n;" and depth <= 0:
            return m.end() if m.end() < len(text) else None
    return None


class _Token(NamedTuple):
    """A token of the fast driver: the fields of Lark's `Token` the callbacks read."""

    type: str
    value: str
    line: int
    column: int
    end_line: int
    end_column: int


class _Fast:
    """Lark's LALR tables and callbacks for the grammar, driven by one tight loop.

    The lexer is one regular expression of the grammar's terminals, tried in the
    order Lark's lexer tries them, each preceded by what the grammar ignores;
    keywords are names that the grammar also spells as strings. Tokens that no
    callback keeps (punctuation, newlines) are not made into `_Token`s.
    """

    def __init__(self, lark: Lark):
        terminals = sorted(lark.terminals, key=lambda t: (-t.priority, -t.pattern.max_width,
                                                           -len(t.pattern.value), t.name))
        ignored = [t.pattern.to_regexp() for t in terminals if t.name in lark.ignore_tokens]
        matched = [t for t in terminals if t.name not in lark.ignore_tokens]
        words = [t for t in matched if t.pattern.type == "re"]
        self.keywords = {t.pattern.value: str(t.name) for t in matched if t.pattern.type == "str"
                         and any(re.fullmatch(w.pattern.to_regexp(), t.pattern.value) for w in words)}
        alternatives = "|".join(f"(?P<{t.name}>{t.pattern.to_regexp()})" for t in matched
                                if t.pattern.value not in self.keywords)
        # What is skipped is never given back (`*+`), and a character no terminal matches
        # is an `_ERROR` token, for which the table has no action: the matches are
        # contiguous, and an error is found at once however much space precedes it.
        self.token = re.compile(f"(?:{'|'.join(ignored)})*+(?:{alternatives}|(?P<_ERROR>(?s:.)))")
        parser = lark.parser.parser.parser
        table, callbacks = parser.parse_table, parser.callbacks
        # A state is its row of the action table: row[symbol] is the row of the state to
        # shift to (or go to, after a reduction), or (size, callback, nonterminal) to
        # reduce; callback None for a rule that passes its single child up unchanged.
        # Symbols are made plain `str`s: Lark's are partly `Token`s, slow to compare.
        rows = {state: {} for state in table.states}
        for state, row in table.states.items():
            rows[state].update(
                (str(symbol), rows[arg] if action is Shift else (
                    len(arg.expansion),
                    None if arg.options.expand1 and arg.alias is None and len(arg.expansion) == 1
                    else callbacks[arg],
                    str(arg.origin.name)))
                for symbol, (action, arg) in row.items())
        self.start, self.end = rows[table.start_states["start"]], rows[table.end_states["start"]]
        self.kept = {symbol.name for rule in callbacks if isinstance(rule, Rule)
                     for symbol in rule.expansion if symbol.is_term and not symbol.filter_out}

    def parse(self, text: str) -> list | int:
        """The statements of `text` (ending in a newline), or, if it is not valid, the
        offset where it stops: the start of the first token it cannot take (the end of the
        text where the text ends too early)."""
        keywords, kept = self.keywords, self.kept
        states, values = [self.start], []
        line, line_start, depth = 1, 0, 0
        for m in self.token.finditer(text):  # contiguous matches, the last one "\n"
            group = kind = m.lastgroup
            token = None
            if kind == "_NL":
                line, line_start = line + 1, m.end()
                if depth:
                    continue
            elif kind in _OPENING:
                depth += 1
            elif kind in _CLOSING and depth:  # an unopened one the table rejects
                depth -= 1
            elif kind == "NAME":
                kind = keywords.get(m.group(group), kind)
            if kind in kept:
                start, end = m.span(group)
                column = start - line_start + 1
                token = _Token(kind, m.group(group), line, column, line, column + end - start)
            if not self._feed(states, values, kind, token):
                return m.start(group)
        if depth or not self._feed(states, values, "$END", None):
            return len(text)
        return values[-1]

    def _feed(self, states: list, values: list, kind: str, token) -> bool:
        """Reduce as the table says, then shift `token` (or, at the end, accept);
        False if `kind` cannot come next."""
        while True:
            action = states[-1].get(kind)
            if action is None:
                return False
            if type(action) is dict:
                states.append(action)
                values.append(token)
                return True
            size, callback, nonterminal = action
            if callback is None:  # a unit rule like `sum: product`: the value stays
                states.pop()
            elif size:
                children = values[-size:]
                del states[-size:], values[-size:]
                values.append(callback(children))
            else:
                values.append(callback([]))
            states.append(states[-1][nonterminal])
            if states[-1] is self.end:
                return True


_DESCRIBE = {"NAME": "a name", "NUMBER": "a number", "_NL": "end of line",
             "LPAR": "'('", "RPAR": "')'", "LSQB": "'['", "RSQB": "']'", "EQUAL": "'='", "COMMA": "','", "SEMICOLON": "';'"}


def _describe(token: Token) -> str:
    if token.type in ("NAME", "NUMBER"):
        return f"{_DESCRIBE[token.type][2:]} '{token}'"
    return _DESCRIBE.get(token.type) or f"'{token}'"


def _expected(names: set[str]) -> str:
    if {"NAME", "NUMBER"} <= names:
        return "; expected an expression"
    if len(names) == 1 and next(iter(names)) in _DESCRIBE:
        return f"; expected {_DESCRIBE[next(iter(names))]}"
    if names == {"EQUAL", "LSQB"}:  # after a statement's first name
        return "; expected '=' (or '[' to define a bus)"
    return ""


def _unclosed(text: str, span: Span, origin: tuple[int, int]) -> str:
    """A note on the innermost '(' still open before `span`, if it is on an earlier line
    (`text` starts at line and column `origin` of the file)."""
    opened = []
    for token in _parser().lex(text):
        if (token.line, token.column) >= (span.line, span.column):
            break
        if token.type in _OPENING:
            opened.append(token)
        elif token.type in _CLOSING and opened:
            opened.pop()
    if opened and opened[-1].line < span.line:
        line, column = _moved_position(opened[-1].line, opened[-1].column, *origin)
        return f" (the '{opened[-1]}' at line {line} column {column} is not closed)"
    return ""


def _syntax_error(e: UnexpectedInput, text: str, origin: tuple[int, int]) -> CircuitError:
    """The error for Lark's exception `e`, with a span in `text` (which starts at line and
    column `origin` of the file)."""
    span = Span(e.line, e.column, e.line, e.column + 1)
    if isinstance(e, UnexpectedCharacters):
        if e.char == "^":
            return CircuitError("'^' is not an operator; use '**' for powers", span)
        return CircuitError(f"unexpected character {e.char!r}", span,
                            hint=character_hint(text, _offset(text, span)))
    if isinstance(e, UnexpectedToken):
        token = e.token
        if token.type != "_NL":  # (a newline's own span would end on the next line)
            span = _span(token)
        message = f"unexpected {_describe(token)}" + _expected(e.accepts or e.expected)
        at = _offset(text, span)
        return CircuitError(message + _unclosed(text, span, origin), span,
                            hint=token_hint(token, text, _statement(text, at)[0], at))
    return CircuitError(f"syntax error: {e}", span)
