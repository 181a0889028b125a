"""The playground's static site: built from the sources beside this module, and served on
127.0.0.1.

`build(out, circuits)` writes a site that runs circuitc in the browser, with nothing
fetched from anywhere but the site itself at run time:

- the page and its scripts (`web/`: `index.html`, `app.js`, `editor.js`, `worker.js`,
  `style.css`);
- `vendor/`: Pyodide (CPython compiled to WebAssembly) and Graphviz compiled to
  WebAssembly (`@hpcc-js/wasm-graphviz`), copied from `npm ci` of the pinned
  `web/package-lock.json`, run in a temporary folder (npm's own cache makes a second
  build quick and, once filled, offline);
- `python.zip`: the installed circuitc and Lark packages, pure Python, which the page's
  worker unpacks into Pyodide's file system;
- `config.json`: the token rules of `.circ` text (`circuitc.tokens`), which the editor
  highlights with, and the circuits of the menu, by path and text.

`serve(site, port)` serves a built site with Python's own HTTP server, on 127.0.0.1 only.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import tempfile
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import lark

import circuitc

from .. import parse, tokens

SOURCES = Path(__file__).parent / "web"
PAGES = ("index.html", "app.js", "editor.js", "worker.js", "style.css")
# What the page loads of each npm package: node_modules path -> path in the site.
VENDOR = {
    "pyodide/pyodide.mjs": "vendor/pyodide/pyodide.mjs",
    "pyodide/pyodide.asm.mjs": "vendor/pyodide/pyodide.asm.mjs",
    "pyodide/pyodide.asm.wasm": "vendor/pyodide/pyodide.asm.wasm",
    "pyodide/python_stdlib.zip": "vendor/pyodide/python_stdlib.zip",
    "pyodide/pyodide-lock.json": "vendor/pyodide/pyodide-lock.json",
    "@hpcc-js/wasm-graphviz/dist/index.js": "vendor/graphviz.js",
}


class BuildError(Exception):
    """The site cannot be built: npm is missing or failed."""


def default_circuits(folder: Path) -> list[Path]:
    """The menu when no circuits are named: the `.circ` files of `circuits/` and
    `examples/` under `folder` (a clone of circuitc's repository: the tutorial's)."""
    return [*sorted(folder.glob("circuits/*.circ")), *sorted(folder.glob("examples/*.circ"))]


def build(out: Path, circuits: list[tuple[str, str]]) -> int:
    """Write the site into the folder `out` (made if need be; the files the site consists
    of are replaced, nothing else in it is touched), its menu the `(path, text)` pairs of
    `circuits`. Returns the size in bytes of all the folder then holds; `BuildError` if
    npm is missing or fails."""
    npm = shutil.which("npm")
    if npm is None:
        raise BuildError("building the playground needs Node.js's npm, which is not installed "
                         "(not found on PATH): install Node.js 18 or newer (apt-get install "
                         "npm, brew install node)")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="circuitc-playground-npm-") as work:
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(SOURCES / name, Path(work) / name)
        done = subprocess.run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund",
                               "--loglevel=error"], cwd=work, capture_output=True, text=True,
                              check=False)
        if done.returncode != 0:
            raise BuildError(f"npm ci failed (exit {done.returncode}): "
                             + (done.stderr.strip() or done.stdout.strip()))
        for source, target in VENDOR.items():
            (out / target).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(Path(work) / "node_modules" / source, out / target)
    for name in PAGES:
        shutil.copyfile(SOURCES / name, out / name)
    _write_python(out / "python.zip")
    config = {"version": circuitc.__version__, "tokens": tokens.RULES,
              "circuits": [{"path": path, "text": text} for path, text in circuits]}
    (out / "config.json").write_text(json.dumps(config, indent=1), encoding="utf-8")
    return sum(f.stat().st_size for f in out.rglob("*") if f.is_file())


def _write_python(path: Path) -> None:
    """A zip of the circuitc and Lark packages as installed (their Python files and
    data, no bytecode, not the site's sources), with the grammar where the wheel has it."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for package in (circuitc, lark):
            root = Path(package.__file__).parent
            for f in sorted(root.rglob("*")):
                inside = f.relative_to(root)
                if (f.is_file() and "__pycache__" not in inside.parts
                        and not (package is circuitc and inside.parts[:2] == ("playground", "web"))):
                    z.write(f, Path(root.name) / inside)
        if "circuitc/grammar/circuit.lark" not in z.namelist():  # a source checkout
            z.writestr("circuitc/grammar/circuit.lark", parse.grammar_text())


class _Handler(SimpleHTTPRequestHandler):
    """Files of the site, with the types browsers need for modules and WebAssembly, and
    no log line per request."""

    extensions_map: ClassVar[dict] = {**SimpleHTTPRequestHandler.extensions_map, ".js": "text/javascript",
                      ".mjs": "text/javascript", ".wasm": "application/wasm",
                      ".json": "application/json", ".zip": "application/zip"}

    def log_message(self, format, *args) -> None:
        pass


def server(site: Path, port: int, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    """An HTTP server of the built site at `site` on `host`:`port` (0: a free port),
    bound and ready for `serve_forever` (`OSError` if the port is taken)."""
    if not (site / "index.html").is_file():
        raise FileNotFoundError(f"{site} holds no playground site (no index.html): build one "
                                "with circuitc playground --build DIR")
    return ThreadingHTTPServer((host, port), functools.partial(_Handler, directory=str(site)))
