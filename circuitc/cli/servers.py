"""The commands that start a server: `circuitc lsp`, the language server editors start,
and `circuitc playground`, the site that runs circuitc in the browser."""

from __future__ import annotations

from pathlib import Path

import click

from ..playground import DEFAULT_PORT
from .terminal import Command, fail


@click.command()
@click.option("--stdio", is_flag=True, help="Talk over stdin and stdout: the default, and the "
                                            "only way; accepted for editors that pass it.")
def lsp(stdio: bool):
    """Run the language server for .circ files, over stdin and stdout.

    Editors start it themselves (docs/editors.md); it needs pygls: pip install 'circuitc[lsp]'.
    """
    try:
        from ..lsp import serve
    except ModuleNotFoundError as e:
        if e.name not in ("pygls", "lsprotocol", "pygments"):
            raise
        fail(f"error: circuitc lsp needs {e.name}: pip install 'circuitc[lsp]'")
    serve()


@click.command(cls=Command)
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--build", "out", metavar="DIR", type=click.Path(file_okay=False, path_type=Path),
              help="Write the static site into DIR (for any static host) and stop.")
@click.option("--site", metavar="DIR", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Serve the site built into DIR by --build instead of building one.")
@click.option("--port", type=click.IntRange(0, 65535), default=DEFAULT_PORT, show_default=True,
              help="The port on 127.0.0.1 (0: a free one).")
@click.option("--no-browser", is_flag=True, help="Print the address; open no browser.")
def playground(files: tuple[Path, ...], out: Path | None, site: Path | None, port: int,
               no_browser: bool):
    """Serve the playground on 127.0.0.1 and open it: circuitc in the browser.

    The menu holds FILES (default: circuits/*.circ and examples/*.circ of the current
    folder). Building the site needs Node.js's npm (docs/playground.md).
    """
    from .. import playground as web

    if site and (out or files):
        raise click.UsageError("--site serves a site as built: give no FILES and no --build")
    try:
        web.run(list(files), out, site, port, browser=not no_browser, say=click.echo)
    except web.PlaygroundError as e:
        fail(f"error: {e}")
