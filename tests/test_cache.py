"""The compile cache (`circuitc.cache`) and the progress bar of long compiles.

Commands run as the installed `circuitc` in subprocesses, with `CIRCUITC_CACHE_DIR` a
directory of the test's own; a few tests work on entries in process.
"""

from __future__ import annotations

import io
import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

import circuitc
from circuitc import api, cache
from circuitc.cli.terminal import ProgressLine
from circuitc.progress import phase, reporting
from conftest import CIRCUITS, circuitc_command, run_cli

NEURON = CIRCUITS / "neuron.circ"


@pytest.fixture
def where(tmp_path, monkeypatch) -> Path:
    """A cache directory of the test's own, used in this process as by the commands."""
    path = tmp_path / "cache"
    monkeypatch.setenv("CIRCUITC_CACHE_DIR", str(path))
    monkeypatch.delenv("CIRCUITC_CACHE", raising=False)
    monkeypatch.delenv("CIRCUITC_CACHE_MAX", raising=False)
    token = cache._enabled.set(True)  # conftest turns it off in process
    yield path
    cache._enabled.reset(token)


def entries(where: Path) -> list[Path]:
    return sorted(where.glob("*" + cache.SUFFIX))


def evaluated(*args, env=None) -> dict:
    result = run_cli("eval", "--json", *args, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


# -- hits and misses ---------------------------------------------------------------

def test_the_second_run_reads_the_entry_the_first_wrote(where):
    first = evaluated(NEURON)
    found = entries(where)
    assert len(found) == 2  # the module, and the forward graph verify reads
    inodes = {p: p.stat().st_ino for p in found}
    for p in found:
        os.utime(p, (0, 0))
    assert evaluated(NEURON) == first
    module = next(p for p in found if p.stat().st_mtime > 0)  # read: used just now
    assert module.stat().st_ino == inodes[module]  # and not written again
    assert entries(where) == found


def test_load_takes_the_module_from_the_cache(where, monkeypatch):
    first = circuitc.load(NEURON)
    monkeypatch.setattr(api, "_generate", lambda *a, **k: pytest.fail("compiled again"))
    second = circuitc.load(NEURON)
    assert second is not first and second.backward(*second.DEFAULTS.values()) == \
        first.backward(*first.DEFAULTS.values())
    _, forward = api.load_compiled(NEURON)  # the graph, from its own entry
    assert forward == api.compile_graphs(NEURON.read_text(), str(NEURON))[0]


@pytest.mark.parametrize("options", [
    ["--wrt", "a,b"], ["--fix", "x"], ["--hessian"], ["--target", "numpy"]])
def test_every_option_is_part_of_the_key(where, options):
    evaluated(NEURON)
    before = len(entries(where))
    expected = evaluated(NEURON, *options, env={**os.environ, "CIRCUITC_CACHE": "0"})
    assert evaluated(NEURON, *options) == expected
    assert len(entries(where)) == before + 2


def test_sizes_are_part_of_the_key(where, tmp_path):
    path = tmp_path / "s.circ"
    path.write_text("size n = 2\ninput x[n] = 1\nf = sum(x[i] * x[i] for i)\n")
    assert evaluated(path)["outputs"]["f"] == 2.0
    assert evaluated(path, "-D", "n=3")["outputs"]["f"] == 3.0
    assert evaluated(path)["outputs"]["f"] == 2.0


def test_an_edited_file_is_compiled_again(where, tmp_path):
    path = tmp_path / "m.circ"
    path.write_text("input x = 2\nf = x * x\n")
    assert evaluated(path)["outputs"]["f"] == 4.0
    path.write_text("input x = 2\nf = x * x * x\n")
    assert evaluated(path)["outputs"]["f"] == 8.0


def test_the_file_name_is_part_of_the_key(where, tmp_path):
    """It is in the module (its `__file__`, error messages), so a copy is a new entry."""
    (tmp_path / "copy.circ").write_text(NEURON.read_text())
    assert circuitc.load(tmp_path / "copy.circ").__file__ == f"<circuitc {tmp_path / 'copy.circ'}>"
    assert circuitc.load(NEURON).__file__ == f"<circuitc {NEURON}>"


def test_verify_and_graph_use_the_cache(where):
    for args in (["verify", NEURON], ["graph", NEURON, "--format", "json"]):
        cold = run_cli(*args)
        assert cold.returncode == 0, cold.stderr
        count = len(entries(where))
        assert run_cli(*args).stdout == cold.stdout
        assert len(entries(where)) == count


def test_verify_makes_the_graph_again_when_its_entry_is_gone(where):
    cold = run_cli("verify", NEURON)
    graph_entry = cache._path(where, cache._graph_key(
        cache.key(NEURON.read_text(), str(NEURON), f"module python <circuitc {NEURON}>",
                  _options())))
    graph_entry.unlink()
    assert run_cli("verify", NEURON).stdout == cold.stdout
    assert graph_entry.exists()


def _options(**given) -> dict:
    """The options of a plain `eval`/`verify` of a circuit, as the cache keys them."""
    return {"wrt": None, "sizes": {}, "fix": None, "hessian": False, "jvp": False,
            "elements": False, "seed": 0, "dtype": "float64", **given}


# -- off, and where ------------------------------------------------------------------

@pytest.mark.parametrize("how", ["env", "option"])
def test_the_cache_can_be_turned_off(where, how):
    env = {**os.environ, "CIRCUITC_CACHE": "0"} if how == "env" else None
    result = run_cli("eval", NEURON, *(["--no-cache"] if how == "option" else []), env=env)
    assert result.returncode == 0 and result.stderr == ""
    assert not where.exists() or entries(where) == []


def test_the_default_place_is_the_users_cache_directory(monkeypatch, tmp_path):
    monkeypatch.delenv("CIRCUITC_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    if sys.platform.startswith("linux"):
        assert cache.directory() == tmp_path / "circuitc"
    monkeypatch.setenv("CIRCUITC_CACHE_DIR", "~/elsewhere")
    assert cache.directory() == Path.home() / "elsewhere"


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX permissions")
def test_a_directory_others_can_write_is_not_used(where):
    where.mkdir(mode=0o700)
    where.chmod(0o777)
    result = run_cli("eval", NEURON)
    assert result.returncode == 0
    assert result.stderr == (f"warning: not using the cache directory {str(where)!r}: "
                             "it is writable by other users\n")
    assert entries(where) == []


def test_an_unwritable_directory_is_a_warning_not_an_error(where, tmp_path):
    where.parent.mkdir(exist_ok=True)
    where.write_text("a file, not a directory")
    result = run_cli("eval", NEURON)
    assert result.returncode == 0 and "f = 0.88" in result.stdout
    assert result.stderr.startswith(f"warning: cannot use the cache directory {str(where)!r}")


# -- entries that are not to be trusted ------------------------------------------------

def _corrupt(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 1]) + data[middle + 1:]


@pytest.mark.parametrize("damage", [
    pytest.param(_corrupt, id="a flipped bit"),
    pytest.param(lambda data: data[:len(data) // 2], id="truncated"),
    pytest.param(lambda data: b"", id="empty"),
    pytest.param(lambda data: b"x" + data[1:], id="wrong magic"),
    pytest.param(lambda data: data.replace(
        cache.MAGIC + cache.FORMAT.to_bytes(2, "big"),
        cache.MAGIC + (cache.FORMAT + 1).to_bytes(2, "big"), 1), id="another format"),
])
def test_a_damaged_entry_is_ignored_and_rebuilt(where, damage):
    expected = evaluated(NEURON)
    for path in entries(where):
        path.write_bytes(damage(path.read_bytes()))
    assert evaluated(NEURON) == expected
    assert run_cli("verify", NEURON).returncode == 0
    for path in entries(where):  # each one whole again
        k = bytes.fromhex(path.name.removesuffix(cache.SUFFIX))
        assert cache._decode(path.read_bytes(), k) is not None


def test_an_entry_of_another_key_is_not_trusted(where, tmp_path):
    """A genuine entry under another key's name (copied, or planted) is a miss."""
    other = tmp_path / "other.circ"
    other.write_text("input a = 1, b = 2, c = 3, x = 4, y = 5\nf = a + b + c + x + y\n")
    expected = evaluated(NEURON)
    theirs = {p.name for p in entries(where)}
    evaluated(other)
    planted = [p for p in entries(where) if p.name not in theirs]
    for mine, foreign in zip(sorted(theirs), planted):
        (where / mine).write_bytes(foreign.read_bytes())
    assert evaluated(NEURON) == expected


def test_an_entry_whose_checksum_does_not_match_is_refused(where):
    k = b"k" * 32
    cache.write(k, {"a": b"1"})
    path = cache._path(where, k)
    data = path.read_bytes()
    assert cache.read(k) == {"a": b"1"}
    path.write_bytes(data[:-32] + bytes(32))
    assert cache.read(k) is None


# -- size, eviction, concurrency -------------------------------------------------------

def test_the_least_recently_used_entries_are_evicted(where, monkeypatch):
    monkeypatch.setenv("CIRCUITC_CACHE_MAX", "3K")
    keys = [bytes([n]) * 32 for n in range(5)]
    for n, k in enumerate(keys):
        cache.write(k, {"data": bytes(1000)})
        os.utime(cache._path(where, k), (n, n))
        if n == 2:
            cache.read(keys[0])  # used again: now the most recently used
    remaining = {p.name for p in entries(where)}
    assert sum(p.stat().st_size for p in entries(where)) <= 3 * 1024
    assert cache._path(where, keys[4]).name in remaining  # the one just written
    assert cache._path(where, keys[1]).name not in remaining  # the least recently used


@pytest.mark.parametrize("text, size", [("500M", 500 << 20), ("2G", 2 << 30), ("1GiB", 1 << 30),
                                        ("12345", 12345), ("1.5K", 1536)])
def test_the_size_bound(monkeypatch, text, size):
    monkeypatch.setenv("CIRCUITC_CACHE_MAX", text)
    assert cache.max_size() == size


@pytest.mark.parametrize("text", ["inf", "nan", "-5", "1T", "G"])
def test_what_is_not_a_size_bound(monkeypatch, text):
    monkeypatch.setenv("CIRCUITC_CACHE_MAX", text)
    with pytest.warns(cache.CacheWarning, match="is not a size"):
        assert cache.max_size() == cache.DEFAULT_MAX


def test_a_bad_size_bound_is_a_warning(where):
    result = run_cli("eval", NEURON, env={**os.environ, "CIRCUITC_CACHE_MAX": "lots"})
    assert result.returncode == 0
    assert result.stderr == ("warning: CIRCUITC_CACHE_MAX='lots' is not a size (such as "
                             "500M or 2G); using 1G\n")


def test_cache_info_says_a_bad_size_bound_in_a_line(where):
    result = run_cli("cache", "info", env={**os.environ, "CIRCUITC_CACHE_MAX": "-5"})
    assert result.returncode == 0
    assert result.stderr == ("warning: CIRCUITC_CACHE_MAX='-5' is not a size (such as "
                             "500M or 2G); using 1G\n")
    assert result.stdout.endswith("max size: 1.0 GiB\n")


def test_concurrent_processes_read_and_write_whole_entries(where, tmp_path):
    """Processes compiling the same circuits at once, into an empty cache and then a
    full one, each see a whole entry or none, and leave no temporary file."""
    circuit = _long_circuit(tmp_path, 2000)
    env = {**os.environ, "CIRCUITC_CACHE_DIR": str(where)}
    for _ in range(2):
        processes = [subprocess.Popen([circuitc_command(), "eval", "--json", str(c)], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                     for c in [circuit, NEURON] * 3]
        outputs = [p.communicate(timeout=300) for p in processes]
        assert [p.returncode for p in processes] == [0] * 6, outputs
        assert len({out for out, _ in outputs[0::2]}) == 1
        assert len({out for out, _ in outputs[1::2]}) == 1
    assert len(entries(where)) == 4
    assert [p.name for p in where.iterdir() if p.name.endswith(".tmp")] == []


# -- cache info and clear ----------------------------------------------------------------

def test_cache_info_and_clear(where):
    evaluated(NEURON)
    info = json.loads(run_cli("cache", "info", "--json").stdout)
    assert info["directory"] == str(where) and info["entries"] == 2 and info["enabled"]
    assert info["size"] == sum(p.stat().st_size for p in entries(where))
    assert info["max_size"] == 1 << 30
    text = run_cli("cache", "info").stdout
    assert text.startswith(f"directory: {where}\nentries: 2\nsize: ")
    assert text.endswith("max size: 1.0 GiB\n")
    result = run_cli("cache", "clear")
    assert result.returncode == 0 and result.stdout == f"removed 2 entries from {where}\n"
    assert entries(where) == []


# -- progress ----------------------------------------------------------------------------

def _long_circuit(tmp_path, gates: int = 25_000) -> Path:
    """A circuit of about `gates` gates, which takes seconds to compile."""
    path = tmp_path / f"long{gates}.circ"
    lines = ["input x0 = 0.5"] + [f"x{k} = sin(x{k - 1}) * 0.5 + {k}" for k in range(1, gates // 3)]
    path.write_text("\n".join(lines) + "\n")
    return path


def _run_on_a_terminal(*args) -> tuple[int, str]:
    """Run `circuitc` with its stderr on a pseudo-terminal: its status, and what it wrote there."""
    leader, follower = pty.openpty()
    process = subprocess.Popen([circuitc_command(), *map(str, args)], stdout=subprocess.DEVNULL,
                               stderr=follower)
    os.close(follower)
    written = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the other end closed (Linux)
            break
        if not chunk:
            break
        written += chunk
    os.close(leader)
    return process.wait(timeout=300), written.decode()


def test_a_long_compile_shows_its_progress_on_a_terminal(tmp_path):
    status, written = _run_on_a_terminal("eval", "--no-cache", _long_circuit(tmp_path))
    assert status == 0
    assert "compiling: " in written and "[" in written
    assert written.endswith("\r\x1b[K")  # and erases it


def test_no_progress_when_quiet_or_piped(tmp_path):
    path = _long_circuit(tmp_path)
    status, written = _run_on_a_terminal("eval", "--no-cache", "--quiet", path)
    assert status == 0 and written == ""
    result = run_cli("eval", "--no-cache", path)
    assert result.returncode == 0 and result.stderr == ""


def test_progress_names_each_phase_and_erases_itself():
    stream = io.StringIO()
    progress = ProgressLine(stream)
    progress.DELAY = 0  # drawn at once (the ticking thread is not started here)
    with reporting(progress):
        phase("parse")
        phase("compile()")
        phase(None)
    lines = stream.getvalue().split("\r\x1b[K")
    assert lines[1].startswith("compiling: parse         [------------------------] ")
    assert lines[2].startswith("compiling: compile()     [" + "#" * 14 + "-" * 10 + "] ")
    assert lines[-1] == ""


def test_no_listener_no_progress():
    phase("parse")  # nothing listens: nothing happens
    with reporting(heard := [].append):
        circuitc.compile_source("f = x * y")
    assert heard.__self__ == ["parse", "lower", "differentiate", "emit"]
