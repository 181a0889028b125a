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


class PlaygroundError(Exception):
    """The playground cannot be built or served; the message says why."""


def run(files: list[Path], out: Path | None = None, site: Path | None = None,
        port: int = 8765, browser: bool = True, say: Callable[[str], None] = print) -> None:
    """`circuitc playground`: build the site into `out` and stop there, or serve `site`
    (a built one), or else a site built into a temporary folder, on 127.0.0.1:`port`,
    until interrupted, opening it in the browser if `browser`. The menu holds `files`
    (default: `site.default_circuits` of the current folder). `say` prints a line."""
    from . import site as web

    if site is None:
        circuits = [(str(f), api.read_source(f)) for f in files or web.default_circuits(Path())]
        with tempfile.TemporaryDirectory(prefix="circuitc-playground-") as temporary:
            built = out or Path(temporary)
            say(f"building the playground into {built} ...")
            try:
                size = web.build(built, circuits)
            except web.BuildError as e:
                raise PlaygroundError(str(e)) from None
            say(f"built: {size / 2**20:.1f} MiB, {len(circuits)} circuits in the menu")
            if out is None:
                _serve(web, built, port, browser, say)
        return
    _serve(web, site, port, browser, say)


def _serve(web, site: Path, port: int, browser: bool, say) -> None:
    try:
        httpd = web.server(site, port)
    except (OSError, FileNotFoundError) as e:
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
