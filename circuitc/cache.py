"""The compile cache: what `load` and the commands build from a circuit, kept on disk.

An entry holds the generated module's source and its code object (marshalled, as a
`.pyc` holds one, so a hit skips CPython's `compile()`); a second entry holds the
optimized forward graph that `verify` reads (as plain tuples, marshalled), read only
when asked for. An entry is found by a key that hashes everything that determines the result (`key`): the
circuit's text and file name, the target and every compile option, circuitc's
version and the contents of its own code, and Python's implementation and version.

An entry is trusted only if it is whole and is the entry of its key: a magic string,
the format number, the key and a SHA-256 of all of it are checked, and anything else
(corrupted, truncated, from another version) is a miss, rebuilt and replaced.
Entries are written to a temporary file in the same directory and renamed into
place, so a reader sees a whole entry or none. A hit runs the entry's code, so the
directory must be the user's own: it is created private (0700), and one that is
owned by another user or writable by group or others is not used at all (POSIX).
Nothing is unpickled: marshal reads plain values and code objects and runs nothing.

Where: `CIRCUITC_CACHE_DIR`, else the platform's cache directory (`$XDG_CACHE_HOME`
or `~/.cache` on Linux, `~/Library/Caches` on macOS, `%LOCALAPPDATA%` on Windows)
with `circuitc` under it. `CIRCUITC_CACHE=0` turns it off; `CIRCUITC_CACHE_MAX`
bounds its size (bytes, or with a K, M or G suffix; default 1G): after each write the
least recently used entries are removed until it fits.
"""

from __future__ import annotations

import hashlib
import json
import marshal
import os
import shutil
import sys
import tempfile
import types
import warnings
from collections.abc import Callable, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from .errors import Span
from .graph import Graph, Node, Origin
from .progress import phase
from .version import __version__

MAGIC = b"circuitc cache\n"
FORMAT = 2  # the layout of an entry; a change makes old entries misses
SUFFIX = ".entry"
DEFAULT_MAX = 1 << 30

_OFF = ("0", "off", "no", "false")
_enabled: ContextVar[bool] = ContextVar("circuitc_cache_enabled", default=True)


class CacheWarning(UserWarning):
    """The cache could not be used as configured; the work was done without it."""


@contextmanager
def disabled():
    """No reading or writing of the cache in the block (the `--no-cache` option)."""
    token = _enabled.set(False)
    try:
        yield
    finally:
        _enabled.reset(token)


def enabled() -> bool:
    """Whether the cache is used: not turned off by `CIRCUITC_CACHE` or `disabled()`."""
    return _enabled.get() and os.environ.get("CIRCUITC_CACHE", "1").strip().lower() not in _OFF


def directory() -> Path:
    """Where the cache lives (it may not exist yet)."""
    given = os.environ.get("CIRCUITC_CACHE_DIR")
    if given:
        return Path(given).expanduser()
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local"
        return Path(base) / "circuitc" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "circuitc"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "circuitc"


def max_size() -> int:
    """The size bound in bytes, from `CIRCUITC_CACHE_MAX` (`500M`, `2G`, `1000000`)."""
    text = os.environ.get("CIRCUITC_CACHE_MAX", "").strip()
    if not text:
        return DEFAULT_MAX
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    number = text.upper().removesuffix("IB").removesuffix("B")
    scale = units.get(number[-1:], 1)
    try:
        value = int(float(number[:-1] if scale > 1 else number) * scale)
    except (ValueError, OverflowError):  # not a number; nan, inf
        value = -1
    if value < 0:
        _warn(f"CIRCUITC_CACHE_MAX={text!r} is not a size (such as 500M or 2G); "
              f"using {DEFAULT_MAX >> 30}G")
        return DEFAULT_MAX
    return value


# -- the key --------------------------------------------------------------------

_code_hash: str | None = None


def _own_code() -> str:
    """A hash of circuitc's own code (the package and its grammar): an edited compiler
    (an editable install) makes new keys even before its version changes."""
    global _code_hash
    if _code_hash is None:
        from .parse import grammar_text  # where the parser finds it: installed or a checkout

        h = hashlib.sha256(grammar_text().encode("utf-8"))
        package = Path(__file__).parent
        for path in sorted(package.rglob("*.py")):
            h.update(str(path.relative_to(package)).encode() + b"\0")
            h.update(path.read_bytes())
        _code_hash = h.hexdigest()
    return _code_hash


def key(text: str, filename: str, kind: str, options: Mapping[str, object]) -> bytes:
    """The key of what is built of `text` as `kind` (`"module python"`) with `options`
    (every argument of the build besides the text and file name, by name).

    A `TypeError` for an option that is not JSON data (numbers, strings, None, and
    lists and mappings of them): such a build is not cached.
    """
    def unkeyable(value):
        if isinstance(value, tuple | set | frozenset):
            return sorted(value) if isinstance(value, set | frozenset) else list(value)
        raise TypeError(f"cannot key an option of type {type(value).__name__}")
    parts = {"text": text, "filename": filename, "kind": kind, "options": dict(options),
             "format": FORMAT, "circuitc": __version__, "code": _own_code(),
             "python": [sys.implementation.cache_tag, sys.version, marshal.version]}
    canonical = json.dumps(parts, sort_keys=True, default=unkeyable, ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).digest()


# -- entries --------------------------------------------------------------------

def _usable() -> Path | None:
    """The cache directory, created if need be, or None if it is off or not the user's own."""
    if not enabled():
        return None
    where = directory()
    try:
        where.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = where.stat()
    except OSError as e:
        _warn(f"cannot use the cache directory {str(where)!r}: {e.strerror or e}")
        return None
    if hasattr(os, "getuid") and (st.st_uid != os.getuid() or st.st_mode & 0o022):
        whose = "owned by another user" if st.st_uid != os.getuid() else \
            "writable by other users"
        _warn(f"not using the cache directory {str(where)!r}: it is {whose}")
        return None
    return where


_warned: set[str] = set()


def _warn(message: str) -> None:
    """A `CacheWarning`, once per process for each message."""
    if message not in _warned:
        _warned.add(message)
        warnings.warn(message, CacheWarning, stacklevel=3)


def _path(where: Path, k: bytes) -> Path:
    return where / (k.hex() + SUFFIX)


def read(k: bytes) -> dict[str, bytes] | None:
    """The sections of the entry of key `k`, or None if there is no whole, genuine one."""
    where = _usable()
    if where is None:
        return None
    path = _path(where, k)
    try:
        data = path.read_bytes()
    except OSError:
        return None
    sections = _decode(data, k)
    if sections is not None:
        try:
            os.utime(path)  # used now: the last to be evicted
        except OSError:
            pass
    return sections


def _decode(data: bytes, k: bytes) -> dict[str, bytes] | None:
    head = MAGIC + FORMAT.to_bytes(2, "big") + k
    view = memoryview(data)  # no copies of a large entry
    body, digest = view[len(head):-32], data[-32:]
    if len(data) < len(head) + 32 or not data.startswith(head) \
            or hashlib.sha256(view[:-32]).digest() != digest:
        return None
    try:
        sections = marshal.loads(body)
    except (ValueError, EOFError, TypeError):
        return None
    if not (isinstance(sections, dict) and all(
            isinstance(n, str) and isinstance(v, bytes) for n, v in sections.items())):
        return None
    return sections


def write(k: bytes, sections: Mapping[str, bytes]) -> None:
    """Store the entry of key `k` (replacing any), then evict down to `max_size()`."""
    where = _usable()
    if where is None:
        return
    data = MAGIC + FORMAT.to_bytes(2, "big") + k + marshal.dumps(dict(sections))
    data += hashlib.sha256(data).digest()
    path = _path(where, k)
    try:
        fd, tmp = tempfile.mkstemp(dir=where, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as e:
        _warn(f"cannot write to the cache {str(where)!r}: {e.strerror or e}")
        return
    evict(where, max_size(), keep=path)


def entries(where: Path) -> list[tuple[float, int, Path]]:
    """(last used, size, path) of each entry in `where`, least recently used first."""
    found = []
    try:
        scan = list(os.scandir(where))
    except OSError:
        return []
    for e in scan:
        if e.name.endswith(SUFFIX):
            try:
                st = e.stat()
            except OSError:  # removed meanwhile
                continue
            found.append((st.st_mtime, st.st_size, Path(e.path)))
    return sorted(found)


def evict(where: Path, limit: int, keep: Path | None = None) -> None:
    """Remove the least recently used entries until the rest take at most `limit` bytes
    (`keep`, the entry just written, goes last)."""
    found = entries(where)
    total = sum(size for _, size, _ in found)
    for _, size, path in sorted(found, key=lambda e: e[2] == keep):
        if total <= limit:
            break
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        total -= size


def files() -> Path | None:
    """Where modules that must be files are kept (the numba target's: numba writes their
    machine code beside them, in `__pycache__`), created if need be: `numba/` in the cache
    directory; None if the cache is off or not the user's own."""
    where = _usable()
    if where is None:
        return None
    where = where / "numba"
    try:
        where.mkdir(mode=0o700, exist_ok=True)
    except OSError as e:
        _warn(f"cannot use the cache directory {str(where)!r}: {e.strerror or e}")
        return None
    return where


def clear() -> int:
    """Remove every entry (and leftover temporary file), and the numba target's files; how
    many entries there were."""
    where = directory()
    shutil.rmtree(where / "numba", ignore_errors=True)
    removed = 0
    try:
        scan = list(os.scandir(where))
    except OSError:
        return 0
    for e in scan:
        if e.name.endswith(SUFFIX) or (e.name.startswith(".") and e.name.endswith(".tmp")):
            try:
                os.unlink(e.path)
                removed += e.name.endswith(SUFFIX)
            except FileNotFoundError:
                pass
    return removed


# -- what is cached: a module's source and code, and its graphs -------------------

def _plain_graph(g: Graph) -> tuple:
    """`g` as plain tuples, which marshal writes: each distinct origin once."""
    origins: dict[Origin, int] = {}
    nodes = g.nodes
    where = [-1 if n.origin is None else origins.setdefault(n.origin, len(origins))
             for n in nodes]
    table = [(tuple(o.span), o.label, tuple((tuple(s), c) for s, c in o.calls), o.element)
             for o in origins]
    return (g.filename, g.inputs, g.defaults, tuple(n.op for n in nodes),
            tuple(n.args for n in nodes), tuple(n.attr for n in nodes), tuple(where),
            tuple(n.name for n in nodes), g.outputs, g.grads, g.tangents, g.shapes, table)


def _graph(plain: tuple) -> Graph:
    """The graph `_plain_graph` made `plain` of."""
    (filename, inputs, defaults, ops, args, attrs, where, names, outputs, grads, tangents,
     shapes, table) = plain
    origins = [Origin(Span(*span), label, tuple((Span(*s), c) for s, c in calls), element)
               for span, label, calls, element in table]
    origins.append(None)  # index -1
    new = tuple.__new__
    nodes = tuple(new(Node, fields) for fields in
                  zip(ops, args, attrs, [origins[k] for k in where], names))
    return Graph(filename, inputs, defaults, nodes, outputs, grads, tangents, shapes)


class Compiled:
    """A generated module: its `source`, its code objects (a block each), and the optimized
    `forward` graph of the written-out circuit. The graph is read from its own entry when
    first asked for, or made (and stored) where it is not there: a hit, or whole-bus
    code, which is written without it."""

    def __init__(self, source: str, code: tuple[types.CodeType, ...], forward: Graph | None,
                 k: bytes | None = None, graph: Callable[[], Graph] | None = None):
        self.source, self.code = source, code
        self._forward, self._key, self._graph = forward, k, graph

    @property
    def forward(self) -> Graph:
        if self._forward is None:
            sections = (read(_graph_key(self._key)) if self._key is not None else None) or {}
            try:
                self._forward = _graph(marshal.loads(sections["graph"]))
            except (KeyError, ValueError, EOFError, TypeError):  # no entry, or not one
                self._forward = self._graph()
                if self._key is not None:
                    write(_graph_key(self._key), _graph_entry(self._forward))
        return self._forward


def _graph_key(k: bytes) -> bytes:
    """The key of the forward graph of the module of key `k`."""
    return hashlib.sha256(k + b" forward graph").digest()


def _graph_entry(forward: Graph) -> dict[str, bytes]:
    return {"graph": marshal.dumps(_plain_graph(forward))}


def compiled(text: str, filename: str, target: str, options: Mapping[str, object],
             generate: Callable[[], tuple[str, Graph | None, Graph | None]], name: str,
             graph: Callable[[], Graph]) -> Compiled:
    """The module of `text` for `target` with `options` from the cache, or made by
    `generate()` (source, forward graph, gradient graph; the graphs None where the module
    was written without them), compiled under the file name `name`, and stored. `graph()`
    makes the forward graph where neither the cache nor `generate` has it."""
    try:
        k = key(text, filename, f"module {target} {name}", options) if enabled() else None
    except TypeError:
        k = None
    sections = read(k) if k is not None else None
    if sections is not None:
        try:
            code = marshal.loads(sections["code"])
            source = sections["source"].decode("utf-8", "surrogatepass")
        except (KeyError, ValueError, EOFError, TypeError):
            code = None
        if isinstance(code, tuple) and all(isinstance(c, types.CodeType) for c in code):
            return Compiled(source, code, None, k, graph)
    source, forward, _ = generate()
    phase("compile()")
    code = compiled_blocks(source, name)
    if k is not None:
        phase("caching")
        write(k, {"source": source.encode("utf-8", "surrogatepass"), "code": marshal.dumps(code)})
        if forward is not None:
            write(_graph_key(k), _graph_entry(forward))
    phase(None)
    return Compiled(source, code, forward, k, graph)


def compiled_blocks(source: str, filename: str) -> tuple[types.CodeType, ...]:
    """A generated module's `source` compiled one top-level block (the blocks are separated
    by two blank lines) at a time: CPython's `compile()` holds the syntax tree of what it
    compiles, so its memory is that of the largest function, not of the whole module. Each
    block keeps its line numbers, which `_WHERE` and tracebacks use."""
    codes, line = [], 0
    for block in source.split("\n\n\n"):
        codes.append(compile("\n" * line + block, filename, "exec"))
        line += block.count("\n") + 3
    return tuple(codes)


def graph(text: str, filename: str, options: Mapping[str, object],
          build: Callable[[], Graph]) -> Graph:
    """The graph `build()` makes of `text` with `options`, from the cache or made and stored."""
    try:
        k = key(text, filename, "graph", options) if enabled() else None
    except TypeError:
        k = None
    sections = (read(k) if k is not None else None) or {}
    try:
        return _graph(marshal.loads(sections["graph"]))
    except (KeyError, ValueError, EOFError, TypeError):  # no entry, or not one
        pass
    made = build()
    if k is not None:
        phase("caching")
        write(k, _graph_entry(made))
    phase(None)
    return made
