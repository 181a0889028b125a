"""Pieces shared by the reports of `eval`, `verify`, `step` and `graph`."""

from __future__ import annotations

import math

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


def json_number(x: float | None):
    """JSON has no inf or nan: they become the strings Python's `float()` reads back."""
    return x if x is None or math.isfinite(x) else repr(x)


def json_safe(obj):
    """`obj` with every float passed through `json_number`, for `json.dumps`."""
    if isinstance(obj, float):
        return json_number(obj)
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    return obj


_NON_FINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}


def json_floats(obj):
    """`obj` read from JSON with the strings `json_number` writes (`"inf"`, `"-inf"`,
    `"nan"`) as the floats they stand for, so that what `eval --json` prints reads back."""
    if isinstance(obj, str):
        return _NON_FINITE.get(obj, obj)
    if isinstance(obj, dict):
        return {k: json_floats(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [json_floats(v) for v in obj]
    return obj
