"""The playground: circuitc in the browser, for learners (`circuitc playground`).

A static site (`site.py` builds and serves it) runs circuitc under Pyodide in a Web
Worker (`session.py` is what the worker calls): an editor for `.circ` text, and at each
edit the circuit's errors, values, gradients, drawing and module, its inputs to edit,
the textbook's three ways uphill, and `verify`'s table. `docs/playground.md` says how
to build and use it.
"""

from __future__ import annotations

import signal
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from .. import api

DEFAULT_PORT = 8765  # the port the tutorial's links to the playground name


class PlaygroundError(Exception):
    """The playground cannot be built or served; the message says why."""


def run(files: list[Path], out: Path | None = None, site: Path | None = None,
        port: int = DEFAULT_PORT, browser: bool = True, say: Callable[[str], None] = print
        ) -> None:
    """`circuitc playground`: build the site into `out` and stop there, or serve `site`
    (a built one), or else a site built into a temporary folder, on 127.0.0.1:`port`,
    until interrupted, opening it in the browser if `browser`. The menu holds `files`
    (default: `site.default_circuits` of the current folder). `say` prints a line."""
    from . import site as web

    if site is not None:
        return _serve(web, site, port, browser, say)
    circuits = [(str(f), api.read_source(f)) for f in files or web.default_circuits(Path())]
    if out is not None:
        return _build(web, out, circuits, say)
    with tempfile.TemporaryDirectory(prefix="circuitc-playground-") as temporary:
        _build(web, Path(temporary), circuits, say)
        _serve(web, Path(temporary), port, browser, say)


def _build(web, out: Path, circuits: list[tuple[str, str]], say) -> None:
    say(f"building the playground into {out} ...")
    try:
        size = web.build(out, circuits)
    except web.BuildError as e:
        raise PlaygroundError(str(e)) from None
    say(f"built: {size / 2**20:.1f} MiB, {len(circuits)} circuits in the menu")


def _serve(web, site: Path, port: int, browser: bool, say) -> None:
    try:
        httpd = web.server(site, port)
    except OSError as e:
        raise PlaygroundError(f"cannot serve the playground on 127.0.0.1:{port}: {e}") from None
    # Stopped by SIGTERM as by Ctrl-C: unwinding, so that a temporary site is removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with httpd:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/"
        say(f"serving the playground at {url} (Ctrl-C to stop)")
        if browser:
            import webbrowser

            webbrowser.open(url)
        httpd.serve_forever()
