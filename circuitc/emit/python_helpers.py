"""The helper functions a python-target module may carry: the gates' own (`sigmoid`'s
stable form, ...), `_flat`, which takes a bus argument apart, and `_symmetric`, which fills
`hessian`'s matrix. `emit.python` copies the text of each one a module calls into it
(`HELPER_SOURCES`), so a module imports nothing but `math`.
"""

import inspect

from ..gates import GATES


def _flat(value, shape):
    """The elements of a bus value of `shape` in row-major order: nested lists or tuples
    of that shape, or a NumPy array; a single number stands for every element."""
    if hasattr(value, "tolist"):  # an array: its elements as Python numbers
        value = value.tolist()
    if not isinstance(value, (list, tuple)):
        count = 1
        for n in shape:
            count *= n
        return [value] * count
    rows = [value]
    for n in shape:
        if not all(isinstance(row, (list, tuple)) and len(row) == n for row in rows):
            raise ValueError(f"expected a bus of shape {shape}, got {value!r}")
        rows = [x for row in rows for x in row]
    if any(isinstance(x, (list, tuple)) for x in rows):  # nested deeper than the shape
        raise ValueError(f"expected a bus of shape {shape}, got {value!r}")
    return rows


def _symmetric(entries, pattern, n):
    """The symmetric n-by-n matrix, a tuple of rows, with `entries` at the places of
    `pattern` (row <= column) and at their mirrors, and zeros elsewhere."""
    rows = [[0.0] * n for _ in range(n)]
    for (j, k), h in zip(pattern, entries):
        rows[j][k] = rows[k][j] = h
    return tuple(map(tuple, rows))


# Every helper a module may call, the gates' own (`Gate.python.helper`) and these, by name.
HELPERS = {gate.python.helper.__name__: gate.python.helper
           for gate in GATES.values() if gate.python.helper} | {"_flat": _flat,
                                                               "_symmetric": _symmetric}
# Their text, read once: files on disk may change under a running process (an upgrade),
# and `inspect.getsource` would then return other lines than the loaded function's.
HELPER_SOURCES = {name: inspect.getsource(fn).rstrip() for name, fn in HELPERS.items()}
