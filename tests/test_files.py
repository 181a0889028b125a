"""Files: bad source files get one clear line, and `compile -o` never leaves a half-written output.

`tests/test_cli.py` covers a missing file, a directory, a simple non-UTF-8 file, an
empty file, a failed compile and an unwritable output folder; this file adds the
hostile cases: unreadable files (permissions, sockets, paths through a file, names
too long), more undecodable and empty files, huge garbage, an output that is a
directory, a disk that fills up, and Ctrl-C, while compiling or while writing.
"""

from __future__ import annotations

import errno
import os
import random
import resource
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import circuitc
from circuitc import cli
from circuitc.cli import files
from circuitc.errors import CircuitError
from conftest import circuitc_command, run_cli

OLD = "# the previous output, which must survive\n"


def _leftovers(folder: Path) -> list[str]:
    """Temporary files `compile -o` may have left in `folder`."""
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def _one_clear_line(result: subprocess.CompletedProcess, message: str) -> None:
    assert result.returncode == 2, result
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert message in result.stderr, result.stderr


# -- source files that cannot be read -------------------------------------------


def _without_root_privileges() -> list[str]:
    """A command prefix under which file permissions apply, even to root."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]


def test_a_file_without_read_permission(tmp_path):
    circ = tmp_path / "secret.circ"
    circ.write_text("f = x * y\n")
    circ.chmod(0o000)
    for command in ("compile", "eval"):
        result = subprocess.run([*_without_root_privileges(), circuitc_command(), command, circ.name],
                                cwd=tmp_path, capture_output=True, text=True, check=False, timeout=60)
        _one_clear_line(result, "secret.circ: error: cannot read 'secret.circ': Permission denied")
    assert not (tmp_path / "secret.py").exists()


def _socket(d: Path) -> None:
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(d / "x.circ"))
    s.close()


@pytest.mark.parametrize(("setup", "path", "message"), [
    (_socket, "x.circ", "cannot read 'x.circ': No such device or address"),
    (lambda d: (d / "file").write_text("f = x\n"), "file/x.circ", "cannot read 'file/x.circ': Not a directory"),
    (lambda d: (d / "x.circ").symlink_to(d / "gone.circ"), "x.circ", "cannot read 'x.circ': No such file"),
    (lambda d: None, "n" * 300 + ".circ", "File name too long"),
], ids=["socket", "path-through-a-file", "dangling-symlink", "name-too-long"])
def test_unreadable_paths_get_one_clear_line(tmp_path, setup, path, message):
    setup(tmp_path)
    for command in ("compile", "eval"):
        _one_clear_line(run_cli(command, path, cwd=tmp_path), message)


@pytest.mark.parametrize(("data", "message"), [
    (b"\xff\xfef\x00 \x00=\x00 \x00x\x00\n\x00", "1:1: error: not UTF-8: byte 0xff"),  # UTF-16
    (b"f = x\n# \xed\xa0\x80 a surrogate\n", "2:3: error: not UTF-8: byte 0xed"),
    (b"f = x  # caf\xc3\n", "1:13: error: not UTF-8: byte 0xc3"),  # cut in the middle
    (b"f = x\r\ng = \x80\r\n", "2:5: error: not UTF-8: byte 0x80"),
    (b"\xef\xbb\xbf\xef\xbb", "1:1: error: not UTF-8: byte 0xef"),  # the BOM is no column
    (b"\xef\xbb\xbff = x\n\xe9", "2:1: error: not UTF-8: byte 0xe9"),
    (b"f = \xc3\xa9\xe2\x82\xac\x80", "1:7: error: not UTF-8: byte 0x80"),  # characters, not bytes
], ids=["utf-16", "surrogate", "truncated", "crlf", "bom-then-junk", "bom-then-lines", "after-multibyte"])
def test_undecodable_files_name_the_first_bad_byte(tmp_path, data, message):
    (tmp_path / "x.circ").write_bytes(data)
    for command in ("compile", "eval"):
        _one_clear_line(run_cli(command, "x.circ", cwd=tmp_path), "x.circ:" + message)


@pytest.mark.parametrize("data", [b"\xef\xbb\xbf", b"  \n\t\n", b"# only a comment\n", b";;\n;\n",
                                  b"\r\n\r\n", b"\xef\xbb\xbf# BOM and comment\r\n"],
                         ids=["bom", "blank", "comment", "semicolons", "crlf", "bom-comment"])
def test_files_with_nothing_to_compile_are_empty_circuits(tmp_path, data):
    (tmp_path / "x.circ").write_bytes(data)
    for command in ("compile", "eval"):
        result = run_cli(command, "x.circ", cwd=tmp_path)
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert result.stderr.splitlines()[0] == "x.circ:1:1: error: empty circuit: nothing to compile"
    assert not (tmp_path / "x.py").exists()


# -- huge garbage ---------------------------------------------------------------

TEN_MB = 10 * 1024 * 1024


def _garbage(kind: str) -> bytes:
    rnd = random.Random(kind)
    if kind == "random bytes":
        return rnd.randbytes(TEN_MB)
    if kind == "random text":  # printable ASCII and newlines, so it decodes and lexes
        alphabet = bytes(range(32, 127)) + b"\n"
        return rnd.randbytes(TEN_MB).translate(bytes(alphabet[b % len(alphabet)] for b in range(256)))
    if kind == "nul bytes":
        return b"\0" * TEN_MB
    return b"f = x\n" + b"+\n" * (TEN_MB // 2)  # valid lines, then an operator with no operand


@pytest.mark.parametrize(("kind", "where"), [
    ("random bytes", "not UTF-8: byte 0x"),
    ("random text", "garbage.circ:1:"),
    ("nul bytes", "garbage.circ:1:1: error: unexpected character '\\x00'"),
    ("operators", "garbage.circ:2:1: error: unexpected '+'"),
])
def test_ten_megabytes_of_garbage_is_a_clean_error(tmp_path, kind, where):
    """Rejected with an error at the first bad token (how fast: see docs/internals.md)."""
    path = tmp_path / "garbage.circ"
    path.write_bytes(_garbage(kind))
    with pytest.raises(CircuitError) as raised:
        circuitc.compile_file(path)
    assert where in raised.value.render().split("\n")[0]


@pytest.mark.parametrize(("ending", "where"), [
    ("f = x1 +\n", "big.circ:1000:9: error: unexpected end of line; expected an expression"),
    ("f = (x1 +\n  sin(x2\n", "big.circ:1001:6: error: '(' was never closed"),
    ("f = x1 ^ 2; g = $\n", "big.circ:1000:8: error: '^' is not an operator"),
])
def test_a_syntax_error_at_the_end_is_reported_from_where_the_fast_parser_stops(
        monkeypatch, ending, where):
    """The text before the failing statement is valid, and Lark's driver, which reports the
    error, does not read it again (a 1 MB file took twice as long to fail as to compile)."""
    from circuitc import parse

    lark, read = parse._parser(), []

    class Recording:
        def __getattr__(self, name):
            return getattr(lark, name)

        def parse(self, text):
            read.append(text)
            return lark.parse(text)

        def lex(self, text):
            read.append(text)
            return lark.lex(text)
    monkeypatch.setattr(parse, "_parser", Recording)
    text = _big_circuit(3 * 999) + ending
    with pytest.raises(CircuitError) as raised:
        circuitc.compile_source(text, "big.circ")
    assert raised.value.render().split("\n")[0].startswith(where)
    assert read and all(len(part) <= len(ending) for part in read), [len(p) for p in read]


# -- outputs: atomic replacement --------------------------------------------------


def test_an_output_that_is_a_directory_is_left_alone(tmp_path):
    (tmp_path / "m.circ").write_text("f = x * y\n")
    (tmp_path / "out.py").mkdir()
    (tmp_path / "out.py" / "keep").write_text("kept\n")
    result = run_cli("compile", "m.circ", "-o", "out.py", cwd=tmp_path)
    _one_clear_line(result, "error: cannot write 'out.py': Is a directory")
    assert (tmp_path / "out.py" / "keep").read_text() == "kept\n"
    assert _leftovers(tmp_path) == []


def _big_circuit(gates: int) -> str:
    lines = ["input x0 = 0.5"]
    lines += [f"x{i} = sin(x{i - 1}) * 0.5 + {i}" for i in range(1, gates // 3)]
    return "\n".join(lines) + "\n"


def _limit_file_size(limit: int):
    def preexec():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # fail the write with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return preexec


def test_a_full_disk_leaves_the_existing_output_untouched(tmp_path):
    """The file-size limit makes every write past 4 kB fail, as a full disk would."""
    (tmp_path / "big.circ").write_text(_big_circuit(3000))
    (tmp_path / "out.py").write_text(OLD)
    result = subprocess.run([circuitc_command(), "compile", "big.circ", "-o", "out.py"], cwd=tmp_path,
                            capture_output=True, text=True, check=False, timeout=120,
                            preexec_fn=_limit_file_size(4096))
    _one_clear_line(result, "error: cannot write 'out.py': File too large")
    assert (tmp_path / "out.py").read_text() == OLD
    assert _leftovers(tmp_path) == []


def _failing_write(error: BaseException):
    fdopen = os.fdopen

    class Failing:
        def __init__(self, fd, mode):
            self.file = fdopen(fd, mode)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.file.close()

        def write(self, data):
            self.file.write(data[: len(data) // 2])  # half of it reaches the disk first
            self.file.flush()
            raise error
    return Failing


def test_no_space_left_is_one_clear_line(tmp_path, monkeypatch):
    (tmp_path / "m.circ").write_text("f = x * y\n")
    (tmp_path / "m.py").write_text(OLD)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(files.os, "fdopen", _failing_write(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))))
    result = CliRunner().invoke(cli.main, ["compile", "m.circ"])
    assert result.exit_code == 2
    assert result.output == "error: cannot write 'm.py': No space left on device\n"
    assert (tmp_path / "m.py").read_text() == OLD and _leftovers(tmp_path) == []


def test_ctrl_c_while_writing_leaves_the_existing_output_untouched(tmp_path, monkeypatch):
    (tmp_path / "m.circ").write_text("f = x * y\n")
    (tmp_path / "m.py").write_text(OLD)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(files.os, "fdopen", _failing_write(KeyboardInterrupt()))
    result = CliRunner().invoke(cli.main, ["compile", "m.circ"])
    assert result.exit_code == 130 and result.output == "Aborted!\n"
    assert (tmp_path / "m.py").read_text() == OLD and _leftovers(tmp_path) == []


def test_ctrl_c_while_compiling_leaves_the_existing_output_untouched(tmp_path):
    """SIGINT to the real command partway through a large compile.

    Wherever the signal lands, the output is the old file or the whole new module,
    never a part of one, and no temporary file remains.
    """
    (tmp_path / "big.circ").write_text(_big_circuit(60_000))
    (tmp_path / "out.py").write_text(OLD)
    process = subprocess.Popen([circuitc_command(), "compile", "big.circ", "-o", "out.py"], cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)  # past start-up, into the compile
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert "Traceback" not in stderr
    text = (tmp_path / "out.py").read_text()
    if text == OLD:
        # 130 from circuitc; -SIGINT if the signal came before Python's handler was set
        assert (process.returncode, stderr) in ((130, "Aborted!\n"), (-signal.SIGINT, ""))
    else:  # the signal came after the replacement
        assert process.returncode == 0
        assert text == run_cli("compile", "big.circ", "-o", "-", cwd=tmp_path).stdout
    assert _leftovers(tmp_path) == []
    print(f"SIGINT: exit {process.returncode}, output {'kept' if text == OLD else 'replaced'}",
          file=sys.stderr)
