"""Modules of the numba target, imported from files.

numba keeps the machine code of a function compiled with `cache=True` beside the file
that defines it (in its `__pycache__`), and finds it again by the file's name, size and
time. So a numba module is written to a file named by a hash of its text, in circuitc's
cache directory (`cache.files()`), once, and imported from there: a second process
imports the same file and loads the machine code instead of compiling it. With the
cache off (`CIRCUITC_CACHE=0`, `--no-cache`) the file goes to a temporary directory
that the process removes when it ends, with what numba kept there.
"""

from __future__ import annotations

import atexit
import hashlib
import importlib.util
import os
import shutil
import sys
import tempfile
import types
from pathlib import Path

from . import cache

INSTALL = "the numba target needs numba: pip install 'circuitc[numba]'"
_scratch: Path | None = None


def available() -> bool:
    """Whether numba is installed (without importing it)."""
    return importlib.util.find_spec("numba") is not None


def require() -> None:
    """A `ModuleNotFoundError` saying how to install numba, where it is not installed."""
    if not available():
        raise ModuleNotFoundError(INSTALL, name="numba")


def load(source: str) -> types.ModuleType:
    """The numba module whose text is `source`, imported from its file (written if need be).

    Each call makes a new module object; the file, and numba's machine code beside it, are
    shared by every load of the same text.
    """
    require()
    digest = hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    name = f"circuitc_numba_{digest}"
    path = _directory() / f"{name}.py"
    if not path.is_file() or path.read_text(encoding="utf-8", errors="surrogatepass") != source:
        _write(path, source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    # numba finds a cached function's module by name when it loads its machine code.
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def _directory() -> Path:
    """`cache.files()`, or a directory of this process's own where there is none."""
    global _scratch
    where = cache.files()
    if where is not None:
        return where
    if _scratch is None:
        _scratch = Path(tempfile.mkdtemp(prefix="circuitc-numba-"))
        atexit.register(shutil.rmtree, _scratch, True)
    return _scratch


def _write(path: Path, source: str) -> None:
    """`source` into `path` at once (a temporary file renamed): another process importing
    it meanwhile reads the whole text or none."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogatepass", newline="\n") as f:
            f.write(source)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
