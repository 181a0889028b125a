"""Shared test helpers: paths, the installed `circuitc` command, loading circuits, and the
error fixtures' cases. The hypothesis strategies are `strategies.py`'s, each gate's SymPy
form `oracle.py`'s."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import types
from pathlib import Path

import pytest

from circuitc import cache

ROOT = Path(__file__).resolve().parent.parent
CIRCUITS = ROOT / "circuits"
EXAMPLES = sorted(CIRCUITS.glob("*.circ"))

# The commands the tests run use a compile cache of the session's own, so that the suite
# neither reads nor fills the user's (an edited file is a new key, never a stale hit).
os.environ["CIRCUITC_CACHE_DIR"] = tempfile.mkdtemp(prefix="circuitc-test-cache-")
atexit.register(shutil.rmtree, os.environ["CIRCUITC_CACHE_DIR"], ignore_errors=True)


@pytest.fixture(autouse=True)
def _no_cache_in_process():
    """No compile cache for what a test compiles in its own process: tests patch the gate
    table there, which the cache's key (circuitc's code on disk) does not see."""
    with cache.disabled():
        yield


def circuitc_command() -> str:
    """The installed `circuitc` script of the Python running the tests."""
    found = shutil.which("circuitc", path=str(Path(sys.executable).parent)) or shutil.which("circuitc")
    if found is None:
        pytest.fail("the circuitc command is not installed; run: pip install '.[test]'")
    return found


def run_cli(*args, cwd=None, input=None, env=None) -> subprocess.CompletedProcess:
    """Run the installed `circuitc` as a user would; text output, no check.

    `env` replaces the environment (to hide a program from PATH, say).
    """
    return subprocess.run([circuitc_command(), *map(str, args)], check=False, capture_output=True, text=True,
                          cwd=cwd, input=input, env=env, timeout=300)


def load_source(text: str, filename: str = "<test>", target: str = "python") -> types.ModuleType:
    """Compile `.circ` text for `target` and import the module, in memory."""
    import circuitc

    module = types.ModuleType("circuit")
    source = circuitc.compile_source(text, filename, target)
    exec(compile(source, filename + ".py", "exec"), module.__dict__)  # noqa: S102
    return module


def load_second_order(text: str, target: str = "python", **options) -> types.ModuleType:
    """`text` compiled for `target` with `hessian` and `jvp`, imported in memory."""
    import circuitc

    options = {"hessian": True, "jvp": True, **options}
    module = types.ModuleType("second_order")
    source = circuitc.compile_source(text, "random.circ", target, **options)
    exec(compile(source, "random.py", "exec"), module.__dict__)  # noqa: S102
    return module


def error_cases(fixture: str = "errors.txt"):
    """The cases of an error fixture (`tests/fixtures/errors.txt`): `pytest.param(source,
    expected message)`, each with its title as its id."""
    text = (ROOT / "tests" / "fixtures" / fixture).read_text(encoding="utf-8")
    for block in text.split("\n=== ")[1:]:
        title, _, rest = block.partition("\n")
        source, _, expected = rest.partition("---\n")
        yield pytest.param(source, expected.rstrip("\n"), id=title)


@pytest.fixture
def graphviz() -> str:
    """Graphviz's `dot` program. Where it is missing the test is skipped, except in CI
    (`CI` set), where `.ci/run` installs it, so a missing one is a failure."""
    found = shutil.which("dot")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("Graphviz's dot is not installed, though .ci/run installs it")
        pytest.skip("Graphviz's dot is not installed (apt-get install graphviz)")
    return found


@pytest.fixture(scope="session")
def npm() -> str:
    """Node.js's npm, which building the playground needs: skipped where it is missing,
    except in CI (`CI` set), where a missing one is a failure."""
    found = shutil.which("npm")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("npm is not installed, though CI builds the playground with it")
        pytest.skip("npm is not installed (apt-get install npm)")
    return found
