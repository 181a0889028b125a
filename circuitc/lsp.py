"""`circuitc lsp`: a language server for `.circ` files, over stdin and stdout.

It serves what `circuitc.analysis` finds to any editor that speaks the Language
Server Protocol (docs/editors.md), on pygls (`pip install 'circuitc[lsp]'`):

- diagnostics when a file is opened and, `DELAY` seconds after the last change, on each
  change: every error the commands would report, its labelled places as related
  information, its notes and help; and, for a file without errors, the warnings;
- hover: a wire's or an input's statement, value and gradients at the defaults, the
  local derivative of its gate and the line of `backward` for its gradient; a gate's
  definition; a built-in gate's or a reduction's derivative rule;
- go to definition and find references, for every name a file defines or binds;
- completion of the names in scope there, the built-in gates, the reductions and the
  keywords; semantic tokens, the Pygments lexer's kinds refined by what each name is.

Positions are converted between circuitc's columns (characters, code points) and the
encoding the client asked for in `initialize` (UTF-16 unless it chose UTF-8 or UTF-32).
While a file has errors, hover answers with the values and derivatives of the last
version that compiled, for the names the file still defines. The analysis runs in a
worker thread, one at a time, so the server keeps answering from the last one.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path
from pygments.token import Comment, Keyword, Name, Number, Operator

from . import __version__
from .analysis import REDUCTION_RULES, Analysis, Symbol, analyze, builtin
from .errors import CircuitError, Span
from .gates import CALLABLE
from .lexer import CircLexer
from .parse import KEYWORDS

# Seconds after the last change before a file is analyzed again: a fast typist's pause.
DELAY = 0.3
# Seconds without a change after its analysis before the values and derivatives of a file
# that compiles are computed (for hover): a pause in typing, not between two keys.
QUIET = 1.0
SHOWN_ELEMENTS = 4  # of a bus, in a hover


class Positions:
    """Converts between circuitc's places (line and column from 1, the column counting
    characters) and LSP positions (from 0, the character counting code units of
    `encoding`) in `source`, the text the client sent. Lines end at `\\n`, as circuitc's
    do; a `\\r` before it and a byte-order mark are not part of circuitc's text."""

    def __init__(self, source: str, encoding: str = lsp.PositionEncodingKind.Utf16):
        self.lines = source.split("\n")
        self.encoding = encoding
        self.bom = int(source.startswith("\ufeff"))

    def units(self, text: str) -> int:
        """The length of `text` in code units of the encoding."""
        if text.isascii() or self.encoding == lsp.PositionEncodingKind.Utf32:
            return len(text)
        if self.encoding == lsp.PositionEncodingKind.Utf8:
            return len(text.encode("utf-8", "surrogatepass"))
        return len(text) + sum(ord(c) > 0xFFFF for c in text)

    def position(self, line: int, column: int) -> lsp.Position:
        """The LSP position of circuitc's `line`, `column` (a column past the end of the
        line is the line's end)."""
        if line > len(self.lines):
            return lsp.Position(len(self.lines) - 1, self.units(self.lines[-1]))
        text = self.lines[line - 1]
        shift = self.bom if line == 1 else 0
        return lsp.Position(line - 1, self.units(text[:max(column - 1, 0) + shift].rstrip("\r")))

    def range(self, span: Span | None) -> lsp.Range:
        if span is None:
            return lsp.Range(lsp.Position(0, 0), lsp.Position(0, 0))
        return lsp.Range(self.position(span.line, span.column),
                         self.position(span.end_line, span.end_column))

    def _index(self, position: lsp.Position) -> int:
        """The character of the client's line `position.line` at `position`."""
        text = self.lines[position.line] if position.line < len(self.lines) else ""
        if text.isascii() or self.encoding == lsp.PositionEncodingKind.Utf32:
            return min(position.character, len(text))
        units = index = 0
        for c in text:
            if units >= position.character:
                break
            units += self.units(c)
            index += 1
        return index

    def place(self, position: lsp.Position) -> tuple[int, int]:
        """circuitc's line and column at an LSP position."""
        shift = self.bom if position.line == 0 else 0
        return position.line + 1, max(self._index(position) - shift, 0) + 1

    def word(self, position: lsp.Position) -> str | None:
        """The name written at (or just before) an LSP position."""
        if position.line >= len(self.lines):
            return None
        at = self._index(position)
        for m in re.finditer(r"[A-Za-z_]\w*", self.lines[position.line]):
            if m.start() <= at <= m.end():
                return m.group()
        return None


@dataclass
class _Document:
    """What the server knows of an open document: the last analysis and the source it
    read, the last one that compiled, and the pending re-analysis."""

    uri: str
    analysis: Analysis | None = None
    source: str = ""
    good: Analysis | None = None
    timer: asyncio.TimerHandle | None = None
    pending: set = field(default_factory=set)


class CircuitServer(LanguageServer):
    """The server: pygls's, with a `_Document` per open `.circ` file."""

    def __init__(self):
        super().__init__("circuitc", __version__)
        self.documents: dict[str, _Document] = {}
        self.analyzing = asyncio.Lock()

    @property
    def encoding(self) -> str:
        return self.workspace.position_encoding or lsp.PositionEncodingKind.Utf16

    def positions(self, document: _Document) -> Positions:
        """The converter for the source the document's analysis read."""
        return Positions(document.source, self.encoding)

    def current(self, uri: str) -> Positions:
        """The converter for the document's text as it is now (for a request's position)."""
        return Positions(self.workspace.get_text_document(uri).source, self.encoding)

    def schedule(self, uri: str, delay: float) -> None:
        """Analyze the document `delay` seconds from now, unless it changes before."""
        self._later(self.documents[uri], delay, lambda: self.refresh(uri))

    def _later(self, document: _Document, delay: float, work) -> None:
        """Run the coroutine `work()` as a task `delay` seconds from now, in place of what
        the document had waiting (a change puts off everything that was waiting)."""
        if document.timer is not None:
            document.timer.cancel()
        loop = asyncio.get_running_loop()

        def start():
            task = loop.create_task(work())
            document.pending.add(task)  # kept until done: the loop holds tasks weakly
            task.add_done_callback(document.pending.discard)
        document.timer = loop.call_later(delay, start)

    async def refresh(self, uri: str) -> None:
        """Analyze the document's text as it is now, in a worker thread, one analysis at a
        time; keep and publish the result unless the text changed meanwhile (a change
        schedules another). For a file that compiles, its values and derivatives are then
        computed once it has not changed for `QUIET` seconds, so that hover has them at
        once, and typing is not slowed by computing them for each version."""
        async with self.analyzing:
            document = self.documents.get(uri)
            if document is None:
                return
            text = self.workspace.get_text_document(uri)
            version, source = text.version, text.source
            analysis = await asyncio.to_thread(analyze, source, to_fs_path(uri) or uri)
            if self.documents.get(uri) is not document or text.version != version:
                return
            document.analysis, document.source = analysis, source
            if analysis.compiled:
                document.good = analysis
            self.publish(document, version)
        if analysis.compiled:
            self._later(document, QUIET, lambda: asyncio.to_thread(analysis.evaluate))

    def publish(self, document: _Document, version: int | None) -> None:
        positions = self.positions(document)
        related = _capability(self, "text_document.publish_diagnostics.related_information")
        diagnostics = [_diagnostic(e, document.uri, positions, related)
                       for e in [*document.analysis.errors, *document.analysis.warnings]]
        self.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(
            document.uri, diagnostics, version))


def _capability(server: LanguageServer, path: str) -> bool:
    """Whether the client's capabilities set `path` (dotted attribute names) true."""
    value = server.client_capabilities
    for part in path.split("."):
        value = getattr(value, part, None)
    return bool(value)


def _diagnostic(error: CircuitError, uri: str, positions: Positions, related: bool
                ) -> lsp.Diagnostic:
    """An error or a warning as a diagnostic: its labels as related information (or, for a
    client that takes none, as lines of the message), then its notes and help."""
    lines = [error.message]
    information = None
    if related and error.labels:
        information = [lsp.DiagnosticRelatedInformation(
            lsp.Location(uri, positions.range(label.span)), label.text) for label in error.labels]
    else:
        lines += [f"line {label.span.line}: {label.text}" for label in error.labels]
    lines += [f"note: {note}" for note in error.notes]
    if error.hint:
        lines.append(f"help: {error.hint}")
    severity = (lsp.DiagnosticSeverity.Warning if error.severity == "warning"
                else lsp.DiagnosticSeverity.Error)
    return lsp.Diagnostic(positions.range(error.span), "\n".join(lines), severity,
                          source="circuitc", related_information=information)


# -- hover ---------------------------------------------------------------------------


def _number(x: float | None) -> str:
    return "unknown" if x is None else repr(x)


def _values_text(analysis: Analysis, symbol: Symbol, stale: bool) -> list[str]:
    """Hover lines for the values, gradients and `backward` lines of an input or a wire."""
    names = analysis.elements(symbol)
    if not names:
        return []
    lines = []
    try:
        for name in names[:SHOWN_ELEMENTS]:
            value = analysis.value(name)
            if value is None:
                continue
            grads = ", ".join(f"∂{out}/∂{name} = `{_number(g)}`"
                              for out, g in value.gradients.items())
            lines.append(f"`{name}` = `{_number(value.value)}` at the defaults; {grads}")
    except CircuitError as e:
        lines.append(f"no value at the defaults: {e.message}")
    if len(names) > SHOWN_ELEMENTS:
        lines.append(f"... {len(names)} elements")
    derivative = analysis.derivative(names[0])
    if derivative is not None:
        code = derivative.line or derivative.text
        lines.append(f"`backward` computes ∂/∂`{names[0]}` as `{code}`")
    if stale and lines:
        lines.append("*(as of the last version that compiled)*")
    return lines


def hover_text(symbol: Symbol, analysis: Analysis, latest: Analysis, good: Analysis | None
               ) -> str:
    """The hover of `symbol`, in Markdown: `analysis` is the analysis it comes from, `latest`
    the document's last one and `good` the last one that compiled, whose values are shown
    while the file has errors (marked as such)."""
    if symbol.kind == "builtin":
        gate = symbol.gate
        return f"built-in gate {gate.usage}\n\nlocal derivative: {gate.derivative_text}"
    if symbol.kind == "reduction":
        return (f"reduction `{symbol.name}(EXPR for i)`\n\nderivative: "
                f"{REDUCTION_RULES[symbol.name]}")
    what = "input (never declared: first used here)" if symbol.implicit else symbol.kind
    parts = [f"**{symbol.name}**: {what}, line {symbol.span.line}"]
    owner = symbol.statement
    if symbol.within is not None:
        parts.append(f"bound by the reduction at line {symbol.within.line}")
    elif symbol.kind == "parameter":
        parts.append(f"bound by gate `{owner.name.id}`")
    elif symbol.kind == "index":
        parts.append(f"bound by the definition of `{owner.target.id}`")
    elif analysis.formula(symbol):
        parts.append(f"```circ\n{analysis.formula(symbol)}\n```")
    if symbol.kind in ("wire", "bus") and analysis.rule(symbol):
        parts.append(f"local derivative of {analysis.rule(symbol)}")
    if symbol.kind == "size" and analysis.size(symbol.name) is not None:
        parts.append(f"= `{analysis.size(symbol.name)}`")
    if symbol.kind == "gate":
        parts.append("inlined at each call; differentiated as its body")
    if symbol.kind in ("input", "wire", "bus"):
        if not analysis.compiled and good is not None and symbol.name in good.symbols:
            analysis, symbol = good, good.symbols[symbol.name]
        if analysis.compiled:
            parts += _values_text(analysis, symbol, stale=analysis is not latest)
    return "\n\n".join(parts)


# -- semantic tokens ---------------------------------------------------------------

TOKEN_TYPES = ["keyword", "comment", "number", "operator", "function", "variable", "parameter"]
TOKEN_MODIFIERS = ["declaration", "readonly", "defaultLibrary"]
# A name's token type and modifiers by what it is; an input is a parameter of the circuit.
_BY_KIND = {"input": ("parameter", ()), "wire": ("variable", ()), "bus": ("variable", ()),
            "size": ("variable", ("readonly",)), "gate": ("function", ()),
            "parameter": ("parameter", ()), "index": ("variable", ("readonly",)),
            "builtin": ("function", ("defaultLibrary",)),
            "reduction": ("function", ("defaultLibrary",))}
_BY_TOKEN = [(Comment, ("comment", ())), (Keyword, ("keyword", ())), (Number, ("number", ())),
             (Operator, ("operator", ())), (Name.Builtin, ("function", ("defaultLibrary",))),
             (Name.Function, ("function", ("declaration",)))]


def _token_kind(token) -> tuple[str, tuple[str, ...]] | None:
    """The token type and modifiers of a Pygments token type, or None (not shown)."""
    return next((kind for t, kind in _BY_TOKEN if token in t), None)


def semantic_tokens(source: str, analysis: Analysis | None, positions: Positions) -> list[int]:
    """The semantic tokens of `source` in LSP's relative encoding: the Pygments lexer's
    tokens, each name refined by what `analysis` says it is (by its place, if `analysis`
    read this text, else by its name)."""
    text = source.removeprefix("\ufeff")
    current = analysis is not None and analysis.text == text.replace("\r\n", "\n")
    kinds: dict = {}  # Pygments token type -> its kind, as met
    data, line, line_start, last_line, last_start = [], 1, 0, 0, 0
    for offset, token, value in CircLexer().get_tokens_unprocessed(text):
        if token not in kinds:
            kinds[token] = _token_kind(token)
        kind = kinds[token]
        if kind is None and token is not Name:
            continue
        newlines = text.count("\n", line_start, offset)
        if newlines:
            line += newlines
            line_start = text.rfind("\n", 0, offset) + 1
        if token is Name and analysis is not None:
            found = analysis.at(line, offset - line_start + 1) if current else None
            symbol = found.symbol if found else analysis.symbols.get(value)
            if symbol is not None:
                kind = _BY_KIND[symbol.kind]
                if found and found.definition:
                    kind = (kind[0], (*kind[1], "declaration"))
        if kind is None:
            continue
        start = positions.position(line, offset - line_start + 1)
        delta = start.line - last_line
        data += [delta, start.character - (0 if delta else last_start), positions.units(value),
                 TOKEN_TYPES.index(kind[0]), sum(1 << TOKEN_MODIFIERS.index(m) for m in kind[1])]
        last_line, last_start = start.line, start.character
    return data


# -- the server's features -----------------------------------------------------------


def make_server() -> CircuitServer:
    """A server with every feature registered."""
    server = CircuitServer()

    @server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: CircuitServer, params: lsp.DidOpenTextDocumentParams):
        uri = params.text_document.uri
        ls.documents[uri] = _Document(uri)
        ls.schedule(uri, 0)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: CircuitServer, params: lsp.DidChangeTextDocumentParams):
        if params.text_document.uri in ls.documents:
            ls.schedule(params.text_document.uri, DELAY)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: CircuitServer, params: lsp.DidCloseTextDocumentParams):
        document = ls.documents.pop(params.text_document.uri, None)
        if document is not None and document.timer is not None:
            document.timer.cancel()
        ls.text_document_publish_diagnostics(
            lsp.PublishDiagnosticsParams(params.text_document.uri, []))

    def lookup(ls: CircuitServer, uri: str, position: lsp.Position):
        """The document, the symbol at `position` and the analysis it comes from: the name
        there in the last analysis, else the name written there looked up by name in the
        last analysis, in the last one that compiled, and among the built-in gates."""
        document = ls.documents.get(uri)
        if document is None or document.analysis is None:
            return document, None, None
        found = document.analysis.at(*ls.positions(document).place(position))
        if found is not None:
            return document, found.symbol, document.analysis
        word = ls.current(uri).word(position)
        for analysis in (document.analysis, document.good):
            if analysis is not None and word in analysis.symbols:
                return document, analysis.symbols[word], analysis
        return document, builtin(word) if word else None, document.analysis

    @server.feature(lsp.TEXT_DOCUMENT_HOVER)
    async def hover(ls: CircuitServer, params: lsp.HoverParams):
        document, symbol, analysis = lookup(ls, params.text_document.uri, params.position)
        if symbol is None:
            return None
        text = await asyncio.to_thread(hover_text, symbol, analysis, document.analysis,
                                       document.good)
        return lsp.Hover(lsp.MarkupContent(lsp.MarkupKind.Markdown, text))

    @server.feature(lsp.TEXT_DOCUMENT_DEFINITION)
    def definition(ls: CircuitServer, params: lsp.DefinitionParams):
        document, symbol, _ = lookup(ls, params.text_document.uri, params.position)
        if symbol is None or symbol.span is None:
            return None
        return lsp.Location(document.uri, ls.positions(document).range(symbol.span))

    @server.feature(lsp.TEXT_DOCUMENT_REFERENCES)
    def references(ls: CircuitServer, params: lsp.ReferenceParams):
        document, symbol, analysis = lookup(ls, params.text_document.uri, params.position)
        if symbol is None or symbol.span is None or analysis is not document.analysis:
            return None
        positions = ls.positions(document)
        return [lsp.Location(document.uri, positions.range(span)) for span in
                document.analysis.references(symbol, params.context.include_declaration)]

    @server.feature(lsp.TEXT_DOCUMENT_COMPLETION)
    def completion(ls: CircuitServer, params: lsp.CompletionParams):
        document = ls.documents.get(params.text_document.uri)
        if document is None or document.analysis is None:
            return None
        analysis = document.analysis
        line, column = ls.current(params.text_document.uri).place(params.position)
        items, seen = [], set()
        for symbol in analysis.visible(line, column):
            if symbol.name not in seen:
                seen.add(symbol.name)
                kind = (lsp.CompletionItemKind.Function if symbol.kind == "gate" else
                        lsp.CompletionItemKind.Constant if symbol.kind == "size" else
                        lsp.CompletionItemKind.Variable)
                items.append(lsp.CompletionItem(symbol.name, kind=kind, detail=(
                    analysis.formula(symbol) if symbol.kind not in ("parameter", "index")
                    else None) or symbol.kind))
        for name, gate in CALLABLE.items():
            items.append(lsp.CompletionItem(name, kind=lsp.CompletionItemKind.Function,
                                            detail=f"built-in gate: {gate.derivative_text}"))
        for name, rule in REDUCTION_RULES.items():
            if name not in CALLABLE:
                items.append(lsp.CompletionItem(name, kind=lsp.CompletionItemKind.Function,
                                                detail=f"reduction: {rule}"))
        items += [lsp.CompletionItem(k, kind=lsp.CompletionItemKind.Keyword)
                  for k in sorted(KEYWORDS)]
        return lsp.CompletionList(is_incomplete=False, items=items)

    legend = lsp.SemanticTokensLegend(TOKEN_TYPES, TOKEN_MODIFIERS)

    @server.feature(lsp.TEXT_DOCUMENT_SEMANTIC_TOKENS_FULL, legend)
    async def tokens(ls: CircuitServer, params: lsp.SemanticTokensParams):
        uri = params.text_document.uri
        document = ls.documents.get(uri)
        source = ls.workspace.get_text_document(uri).source
        analysis = document.analysis if document is not None else None
        # In a worker thread: a large file takes a second, which the others need not wait.
        data = await asyncio.to_thread(semantic_tokens, source, analysis, ls.current(uri))
        return lsp.SemanticTokens(data=data)

    return server


def serve() -> None:
    """Run the server on stdin and stdout until the client says `exit`."""
    make_server().start_io()
