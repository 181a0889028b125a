"""Plain-text pieces shared by the reports of `verify` and `step`."""

from __future__ import annotations

SHOWN_INPUTS = 8  # a point with more values than this is abbreviated by `values`


def values(named: dict[str, float], limit: int | None = SHOWN_INPUTS) -> str:
    """`a = 1.0, b = 2.0`, each value as `repr` prints it (exact).

    With more than `limit` values (`None`: no limit), the first `limit - 2` are
    shown, then `... (N more)` counting the values left out, then the last one.
    """
    items = [f"{name} = {v!r}" for name, v in named.items()]
    if limit is not None and len(items) > limit:
        shown = items[: limit - 2]
        hidden = len(items) - len(shown) - 1
        items = [*shown, f"... ({hidden} more)", items[-1]]
    return ", ".join(items)


def table(rows: list[list[str]]) -> list[str]:
    """`rows` (the first one the header) as lines indented by two spaces, columns
    left-aligned two spaces apart; the last column is not padded."""
    widths = [max(len(row[k]) for row in rows) for k in range(len(rows[0]) - 1)]
    return ["  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1]
            for row in rows]
