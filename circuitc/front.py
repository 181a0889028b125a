"""The front end: a `.circ` file read, parsed and analysed once, for every back end.

`read(text, filename, sizes)` normalizes the text (`normalize`), parses it (`parse`) and,
for a file with sizes or buses, analyses it (`shapes.analyze`: names, sizes, shapes,
index ranges). The `Source` it returns is what both back ends take: the written-out one
(`buses.written_out`, then `lower`) and the whole-bus one (`indexed.planner.plan`), so
that compiling a file parses and analyses it once whichever back end writes its module,
and the other (the written-out graphs that `verify` reads beside whole-bus code) reads
the same `Source`. Every `CircuitError` raised reading it, or later in `Source.errors()`,
carries the file's name and text, so that it renders with its source line.

Reading files: `read_source` (a path) and `decode_source` (bytes, from standard input)
give text as the compiler reads it; `source_errors` attaches a file's name and text to the
errors of a block.
"""

from __future__ import annotations

import codecs
import gc
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .errors import CircuitError, Span
from .parse import parse
from .progress import phase
from .shapes import Analysis, analyze


@dataclass(frozen=True)
class Source:
    """A circuit as the front end read it: its normalized `text` and `filename`, the
    `sizes` given (`-D`), its parsed `statements` and their `analysis` (None for a file
    without sizes or buses). Nothing here is changed after reading."""

    text: str
    filename: str
    sizes: dict[str, int]
    statements: list
    analysis: Analysis | None

    @contextmanager
    def errors(self) -> Iterator[None]:
        """A `CircuitError` raised in the block leaves it with the file's name and text."""
        try:
            yield
        except CircuitError as e:
            raise e.attach(self.filename, self.text)


def read(text: str, filename: str = "<string>", sizes: Mapping[str, int] | None = None
         ) -> Source:
    """`text` parsed and analysed (see the module docstring), or its first error."""
    with collector_paused(), source_errors(text, filename) as normalized:
        phase("parse")
        statements = parse(normalized)
        return Source(normalized, filename, dict(sizes or {}), statements,
                      analyze(statements, sizes))


def read_source(path: str | Path) -> str:
    """The text of a `.circ` file: UTF-8, an optional BOM, `\\r\\n` line ends accepted."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise CircuitError(f"cannot read {str(path)!r}: {e.strerror or e}").attach(str(path), "") from None
    return decode_source(data, str(path))


def decode_source(data: bytes, filename: str) -> str:
    """The text of `.circ` source bytes, as `read_source` reads a file; `filename` names
    them in the error for bytes that are not UTF-8."""
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        text = data[bom:].decode("utf-8")
    except UnicodeDecodeError as e:
        start = bom + e.start  # in `data`, BOM included
        line_start = data.rfind(b"\n", 0, start) + 1
        line = data.count(b"\n", 0, start) + 1
        # Columns count characters, as editors do; what precedes the bad byte decodes.
        column = len(data[max(line_start, bom):start].decode("utf-8")) + 1
        raise CircuitError(f"not UTF-8: byte 0x{data[start]:02x}",
                           Span(line, column, line, column + 1)).attach(filename, "") from None
    return normalize(text)


def normalize(text: str) -> str:
    """Source text as the compiler reads it: no byte-order mark, `\n` line ends."""
    return text.removeprefix("\ufeff").replace("\r\n", "\n")



@contextmanager
def source_errors(text: str, filename: str):
    """Yields `text` as the compiler reads it (`normalize`); a `CircuitError` raised in
    the block leaves it with `filename` and that text attached, so that it prints
    with its source line."""
    text = normalize(text)
    try:
        yield text
    except CircuitError as e:
        raise e.attach(filename, text)


@contextmanager
def collector_paused() -> Iterator[None]:
    """The garbage collector paused for the block, and as it was after it: the compiler
    makes millions of small objects and no cyclic garbage, so a collection would look at
    them all and find nothing (benchmarks/RESULTS.md). `read` parses in it; the API runs
    the later steps of a compile in it too."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()
