"""Reading FILE (`-` is standard input) and writing a command's output: a regular file
replaced all at once, a FIFO or a character device written through, never the source.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
import tempfile
from pathlib import Path

import click

from ..front import decode_source, read_source
from .terminal import fail

STDIN = "<stdin>"


def read_file(file: Path) -> tuple[str, str]:
    """FILE's text and the name messages give it: `-` is standard input, `<stdin>`."""
    if str(file) == "-":
        return decode_source(sys.stdin.buffer.read(), STDIN), STDIN
    return read_source(file), str(file)


def write_file(path: Path, data: bytes) -> None:
    """Write `data` to the file at `path`, following symlinks: a regular file (or a new
    one) is replaced all at once, so that a failure leaves the old file untouched; a FIFO
    or a character device (`/dev/null`, a terminal) is written through, as the shell's
    `>` would, and stays what it is. Anything else is an `OSError` saying what it is."""
    real = Path(os.path.realpath(path))
    try:
        mode = real.stat().st_mode
    except FileNotFoundError:
        mode = None
    if mode is None or stat.S_ISREG(mode):
        _write_atomically(real, data)
    elif stat.S_ISFIFO(mode) or stat.S_ISCHR(mode):
        with open(real, "wb") as f:
            f.write(data)
    elif stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR))
    else:
        raise OSError("not a regular file, a FIFO or a character device")


def _write_atomically(path: Path, data: bytes) -> None:
    """Replace the regular file `path` (or make it) with `data` all at once."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def check_output(file: Path, target: Path | None) -> None:
    """Exit with status 2 where writing `target` would overwrite the source `file`."""
    if target is not None and str(file) != "-" and target.resolve() == file.resolve():
        fail(f"error: the output {str(target)!r} would overwrite the source file")


def write_output(target: Path | None, data: str | bytes) -> None:
    """`data` (text as UTF-8) to the file `target` (`write_file`), or to stdout when
    `target` is None."""
    if target is None:
        if isinstance(data, bytes):
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
        else:
            click.echo(data, nl=False)
        return
    try:
        write_file(target, data.encode("utf-8") if isinstance(data, str) else data)
    except OSError as e:
        fail(f"error: cannot write {str(target)!r}: {e.strerror or e}")
