"""Progress hooks: the compiler names each phase as it starts, for whoever listens.

`phase(name)` costs one context-variable lookup when nobody listens (the default);
`reporting(listener)` makes `listener(name)` hear each phase started in the block,
and `listener(None)` when the compile is over. The phases of a compile, in order:
parse, lower, differentiate, emit, compile(), caching (what a phase includes may
change; names may be added).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_listener: ContextVar[Callable[[str], None] | None] = ContextVar("circuitc_progress",
                                                                  default=None)


def phase(name: str | None) -> None:
    """Say that the phase `name` starts now (and the one before it, if any, has ended);
    None: the compile is over."""
    listener = _listener.get()
    if listener is not None:
        listener(name)


@contextmanager
def reporting(listener: Callable[[str | None], None]) -> Iterator[None]:
    """Call `listener(name)` for each phase started in the block."""
    token = _listener.set(listener)
    try:
        yield
    finally:
        _listener.reset(token)
