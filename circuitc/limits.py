"""How large a bus or a reduction may be, checked where shapes and ranges are known, and
shapes as messages write them."""

from __future__ import annotations

from .errors import CircuitError
from .syntax import Name, Reduce

# A bus (an input or a definition) has at most this many elements, and a reduction at most
# this many terms. A bus of this size takes 80 MB as an array of 64-bit floats, and the
# commands that see every element (eval, verify, step, graph) take about a minute on it;
# a larger size is refused at once, where it would take many minutes or all the memory
# (docs/language.md).
MAX_ELEMENTS = 10**7


def _count(ranges) -> int:
    """The number of bindings of variables over `ranges` (no `len`, which is limited to
    what fits in a C `ssize_t`)."""
    count = 1
    for r in ranges:
        count *= max(0, r.stop - r.start)
    return count


def check_bus(name: Name, shape: tuple[int, ...]) -> None:
    """A `CircuitError` at `name` if a bus of `shape` would have more than `MAX_ELEMENTS`."""
    count = _count(range(n) for n in shape)
    if count > MAX_ELEMENTS:
        raise CircuitError(
            f"'{name.id}' {shape_text(shape)} would have {count:,} elements "
            f"({_bytes(8 * count)} as 64-bit floats); a bus has at most {MAX_ELEMENTS:,} "
            f"({_bytes(8 * MAX_ELEMENTS)})", name.span)


def check_terms(r: Reduce, ranges: list[range]) -> None:
    """A `CircuitError` at `r` if it would have more than `MAX_ELEMENTS` terms over its
    variables' `ranges` (one per variable)."""
    count = _count(ranges)
    if count > MAX_ELEMENTS:
        raise CircuitError(f"'{r.name.id}' over {', '.join(v.id for v in r.vars)} would have "
                           f"{count:,} terms; a reduction has at most {MAX_ELEMENTS:,}", r.span)


def _bytes(n: int) -> str:
    """`80 MB`, `8 GB`: a number of bytes, in decimal units."""
    return f"{n / 1e6:,.0f} MB" if n < 10**9 else f"{n / 1e9:,.0f} GB"


def dimension_text(d: int, shape) -> str:
    """` (dimension 2)` for a bus of rank above 1, nothing for a vector."""
    return "" if len(shape) == 1 else f" (dimension {d + 1})"


def shape_text(shape) -> str:
    """`[3, 2]`: a shape as messages write it."""
    return f"[{', '.join(map(str, shape))}]"
