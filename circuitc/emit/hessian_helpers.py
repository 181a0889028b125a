"""The functions a whole-bus module of the python target carries for its sparse Hessian
(`emit.loops` copies their source into the module, `emit.whole` the colouring). They use nothing but the module's own globals: `INPUTS`, `WRT`,
`SHAPES`, `HESSIAN_PIECES`, `HESSIAN_BAND` and the helpers `_flat`, `_shaped`,
`_symmetric`.

A module's Hessian pattern is kept as pieces (`indexed.sparsity.hessian_pattern`), whose
size does not grow with the buses', and listed when first asked for (`HESSIAN_PATTERN`,
a module attribute made on first use). Its columns are coloured so that no row has two
non-zero columns of one colour (Curtis, Powell and Reid): one Hessian-vector product
along the sum of each colour's unit directions then gives every entry of those columns
at once (`_sparse_hessian`).
"""

from __future__ import annotations

import inspect
from itertools import product


def _pattern(pieces):
    """The places `(row, column)`, row <= column, of the pattern's pieces `(sizes, row,
    column, distinct)` (row and column `(constant, coefficients)` over the parameters of a
    box of `sizes`), sorted by column then row, each once."""
    places = set()
    for sizes, (r0, rows), (c0, columns), distinct in pieces:
        for p in product(*[range(n) for n in sizes]):
            row = r0 + sum(a * x for a, x in zip(rows, p))
            column = c0 + sum(a * x for a, x in zip(columns, p))
            if row <= column and not any(
                    all(a0 + sum(c * x for c, x in zip(a, p)) == b0 + sum(c * x for c, x in zip(b, p))
                        for (a0, a), (b0, b) in group) for group in distinct):
                places.add((row, column))
    return sorted(places, key=lambda place: (place[1], place[0]))


def _colouring(pattern, n, band):
    """A colour for each of `n` columns of a symmetric pattern (its places row <= column)
    such that no row has two non-zero columns of one colour, and how many colours: the
    column's number modulo `2 band + 1` where the pattern lies within `band` of the
    diagonal and that is at most 15 colours, else, column by column, the smallest colour
    no column sharing a row with it has."""
    if band is not None and 2 * band + 1 <= 15:
        return [k % (2 * band + 1) for k in range(n)], min(n, 2 * band + 1)
    rows = [[] for _ in range(n)]  # the non-zero columns of each row
    for j, k in pattern:
        rows[j].append(k)
        if j != k:
            rows[k].append(j)
    colour = [-1] * n
    for k in range(n):
        taken = {colour[c] for j in rows[k] for c in rows[j]}
        c = 0
        while c in taken:
            c += 1
        colour[k] = c
    return colour, max(colour, default=-1) + 1


def _hessian_layout():
    """`HESSIAN_PATTERN` and the colouring of its columns, made once."""
    made = globals().get("_HESSIAN_LAYOUT")
    if made is None:
        pattern = _pattern(HESSIAN_PIECES)  # noqa: F821 (the module's)
        n = sum(_count(SHAPES[name]) for name in WRT)  # noqa: F821
        made = globals()["_HESSIAN_LAYOUT"] = (pattern, *_colouring(pattern, n, HESSIAN_BAND))  # noqa: F821
    return made


def _count(shape):
    count = 1
    for n in shape:
        count *= n
    return count


def _sparse_hessian(hvp, inputs, seeds):
    """`(value, grads, entries)`: the entries of the Hessian at `HESSIAN_PATTERN`'s places,
    from one `hvp` per colour of its columns (at least one: it gives `value` and `grads`)."""
    pattern, colour, colours = _hessian_layout()
    products = []
    for c in range(max(colours, 1)):
        directions, k = [], 0
        for name in WRT:  # noqa: F821
            shape = SHAPES[name]  # noqa: F821
            count = _count(shape)
            v = [1.0 if colour[j] == c else 0.0 for j in range(k, k + count)]
            directions.append(_shaped(v, shape) if shape else v[0])  # noqa: F821
            k += count
        value, grads, hv = hvp(*inputs, *directions, *seeds)
        products.append([x for name, h in zip(WRT, hv) for x in  # noqa: F821
                         (_flat(h, SHAPES[name]) if SHAPES[name] else [h])])  # noqa: F821
    return value, grads, tuple(products[colour[k]][j] for j, k in pattern)


def _dense_hessian(hvp, inputs, seeds):
    """`(value, grads, H)`: the Hessian as a tuple of rows, from `_sparse_hessian`."""
    value, grads, entries = _sparse_hessian(hvp, inputs, seeds)
    pattern, colour, _ = _hessian_layout()
    return value, grads, _symmetric(entries, pattern, len(colour))  # noqa: F821


# Each helper's source, by name, as the writers copy it into a module.
HELPER_SOURCES = {f.__name__: inspect.getsource(f).rstrip() for f in (
    _pattern, _colouring, _hessian_layout, _count, _sparse_hessian, _dense_hessian)}
