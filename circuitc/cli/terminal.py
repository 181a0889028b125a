"""What the command shows on a terminal besides its output: errors and their exit status
(`fail`, and `Command`, the class of every command), colour (`colored`), warnings as
`warning:` lines (`warnings_shown`), and the progress line of a long compile
(`ProgressLine`).
"""

from __future__ import annotations

import os
import sys
import threading
import time
import warnings
from contextlib import ExitStack, contextmanager
from typing import ClassVar

import click

from .. import cache
from ..errors import CircuitError
from ..progress import reporting


def fail(message: str):
    """Print `message` on stderr and exit with status 2 (bad usage or a bad file)."""
    click.echo(message, err=True)
    sys.exit(2)


@contextmanager
def warnings_shown():
    """Warnings (the cache's) shown as `warning: ...` lines on stderr, each time."""
    with warnings.catch_warnings():
        warnings.simplefilter("always", cache.CacheWarning)
        warnings.showwarning = _show_warning
        yield


def _show_warning(message, category, filename, lineno, file=None, line=None):
    click.echo(f"warning: {message}", err=True)


class ProgressLine:
    """The phase of a long compile and a bar of the work done, on one line of a terminal.

    Nothing is drawn until the compile has taken `DELAY` seconds; then the line is
    redrawn at each phase and every `TICK` seconds, and erased at the end. The bar
    counts each phase as its share of a typical compile (`SHARES`).
    """

    DELAY, TICK, WIDTH = 1.0, 0.2, 24
    # Each phase's share of the time of a large compile (benchmarks/RESULTS.md).
    SHARES: ClassVar = {"parse": 19, "lower": 7, "differentiate": 13, "emit": 20,
                        "compile()": 35, "caching": 6}

    def __init__(self, stream):
        self.stream, self.phase, self.start = stream, None, time.monotonic()
        self.shown, self.lock, self.stop = False, threading.Lock(), threading.Event()

    def __enter__(self):
        self.thread = threading.Thread(target=self._tick, daemon=True)
        self.thread.start()
        return self

    def __call__(self, phase: str | None) -> None:
        with self.lock:
            self.phase = phase
            if phase is None:
                self._erase()
            elif self.shown or time.monotonic() - self.start >= self.DELAY:
                self._draw()

    def _tick(self) -> None:
        if self.stop.wait(self.DELAY):
            return
        while True:
            with self.lock:
                if self.phase is not None:
                    self._draw()
            if self.stop.wait(self.TICK):
                return

    def _draw(self) -> None:
        names = list(self.SHARES)
        done = sum(self.SHARES[p] for p in names[:names.index(self.phase)]) \
            if self.phase in self.SHARES else 0
        filled = self.WIDTH * done // sum(self.SHARES.values())
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        self.stream.write(f"\r\x1b[Kcompiling: {self.phase:<13} [{bar}] "
                          f"{time.monotonic() - self.start:.0f}s")
        self.stream.flush()
        self.shown = True

    def _erase(self) -> None:
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.shown = False

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()
        self._erase()


def colored(stream) -> bool:
    """Whether messages to `stream` are coloured: on a terminal, unless `NO_COLOR` is set
    (https://no-color.org) or the terminal is dumb."""
    return (stream.isatty() and not os.environ.get("NO_COLOR")
            and os.environ.get("TERM") != "dumb")


class Command(click.Command):
    """Turn a `CircuitError` into its message and exit status 2, Ctrl-C into status 130.

    Ctrl-C is not click's usual status 1, which here means that a verification failed;
    130 is what shells report for a command stopped by SIGINT. Every command also takes
    --no-cache and --quiet, and shows a long compile's progress on a terminal and the
    circuit's warnings (the commands' `warn`).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.params += [
            click.Option(["--no-cache"], is_flag=True, expose_value=False, callback=_meta,
                         help="Neither read nor write the compile cache (see circuitc cache)."),
            click.Option(["-q", "--quiet"], is_flag=True, expose_value=False, callback=_meta,
                         help="Show no warnings about the circuit, and no progress bar for a "
                              "long compile.")]

    def invoke(self, ctx):
        try:
            with ExitStack() as stack:
                stack.enter_context(warnings_shown())
                if ctx.meta.get("no_cache"):
                    stack.enter_context(cache.disabled())
                if not ctx.meta.get("quiet") and sys.stderr.isatty():
                    stack.enter_context(reporting(stack.enter_context(ProgressLine(sys.stderr))))
                return super().invoke(ctx)
        except CircuitError as e:
            fail(e.render(color=colored(sys.stderr)))
        except KeyboardInterrupt:
            click.echo("Aborted!", err=True)
            sys.exit(130)


def _meta(ctx, param, value):
    ctx.meta[param.name] = value
