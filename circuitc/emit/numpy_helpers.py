"""The functions every module of the `numpy` target carries, defined once.

The numpy emitter reads each function's source text from this file with `ast`
(without importing it, so emitting NumPy code never needs NumPy) and copies it
verbatim into each generated module that needs it, so these functions may use
nothing but `np`, each other and the module's constants (`DTYPE`, the name of the
floating-point type it computes in). Gate helpers are the ones a gate's `numpy` syntax
in the gate table names (`_sigmoid`, `_softplus`); the others shape a function's
arguments and results. A gate that plain NumPy calls express needs no helper.

Every gate helper works elementwise on scalars and arrays alike and never warns on
a finite input: both branches of an `np.where` are computed for every element, so
each branch must be safe everywhere (`exp(-|x|)` never overflows). Every helper keeps
its operands' floating-point type: an array it makes is of `DTYPE` (or its operands'
type), and a Python number it is given is one of NumPy's weak scalars, which take the
type of the arrays they meet, or becomes an array of `DTYPE` (`_array`).
"""

from __future__ import annotations

import numpy as np

DTYPE = "float64"  # a generated module defines its own (`emit.text.dtype_line`)


def _sigmoid(x):
    z = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0, z) / (1.0 + z)


def _softplus(x):
    return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))


def _erf(x, complement=False):
    """erf(x), or erfc(x) when `complement`, within a few units in the last place (NumPy
    has no erf): W. J. Cody's rational approximations (Math. Comp. 23, 1969) on three
    ranges of |x|, each computed everywhere on |x| clipped to its range, the right one
    then chosen. Up to 0.46875, erf(x) = x P(x²)/Q(x²); beyond, erfc(|x|) = e^(-x²)
    P(|x|)/Q(|x|) up to 4 and e^(-x²) (1/sqrt(pi) - P(1/x²)/(x² Q(1/x²)))/|x| after, and
    erf, and erfc of a negative x, follow by symmetry: erfc keeps its digits where erf
    rounds to 1. e^(-x²) is e^(-h²) e^(-(|x|-h)(|x|+h)), h being |x| cut to sixteenths,
    whose square is exact, where x² rounded would lose digits of e^(-x²)."""
    a = np.abs(x)
    z = np.minimum(a, 0.46875) ** 2
    inner = (((((0.185777706184603153 * z + 3.16112374387056560) * z + 113.864154151050156) * z
               + 377.485237685302021) * z + 3209.37758913846947)
             / ((((z + 23.6012909523441209) * z + 244.024637934444173) * z
                 + 1282.61652607737228) * z + 2844.23683343917062))
    y = np.clip(a, 0.46875, 30.0)  # erfc is 0 beyond 26.6; 30 keeps x² finite
    m = np.minimum(y, 4.0)
    num, den = 2.15311535474403846e-8 * m, m.copy()  # Horner's rule, in place
    for c, d in ((0.564188496988670089, 15.7449261107098347),
                 (8.88314979438837594, 117.693950891312499),
                 (66.1191906371416295, 537.181101862009858),
                 (298.635138197400131, 1621.38957456669019),
                 (881.952221241769090, 3290.79923573345963),
                 (1712.04761263407058, 4362.61909014324716),
                 (2051.07837782607147, 3439.36767414372164)):
        num += c
        num *= m
        den += d
        den *= m
    middle = (num + 1230.33935479799725) / (den + 1230.33935480374942)
    t = np.maximum(y, 4.0)
    w = 1.0 / (t * t)
    num, den = 0.0163153871373020978 * w, w.copy()
    for p, q in ((0.305326634961232344, 2.56852019228982242),
                 (0.360344899949804439, 1.87295284992346725),
                 (0.125781726111229246, 0.527905102951428412),
                 (0.0160837851487422766, 0.0605183413124413191)):
        num += p
        num *= w
        den += q
        den *= w
    outer = (0.564189583547756287 - w * (num + 0.000658749161529837803)
             / (den + 0.00233520497626869185)) / t
    h = np.trunc(y * 16.0) / 16.0
    tail = np.exp(-h * h) * np.exp(-(y - h) * (y + h)) * np.where(a > 4.0, outer, middle)
    near = a <= 0.46875
    if complement:
        return np.where(near, 1.0 - x * inner, np.where(x < 0, 2.0 - tail, tail))
    return np.where(near, x * inner, np.copysign(1.0 - tail, x))


def _float(x):
    """`x` as an array of `DTYPE`, converted once, where it is not one already (complex
    numbers stay complex)."""
    x = np.asarray(x)
    return x if x.dtype.kind == "c" else x.astype(DTYPE, copy=False)


def _array(value):
    """`value` as an array: a Python number (a constant of the circuit) as one of `DTYPE`."""
    return np.asarray(value, DTYPE) if type(value) in (float, int) else np.asarray(value)


def _seed(seed, shape):
    """A seed as `DTYPE` spread over its output's `shape` (a view, or an array of its own for
    one number). The axes it brings that the output lacks are summed first: the output is
    the same along them, so the gradient of `sum(d_out * out)` sums the seed there."""
    seed = _float(seed)
    if seed.shape == shape:
        return seed
    if not seed.ndim:  # one number for every point: made whole (as broadcast_to would, sooner)
        return np.full(shape, seed)
    lead = seed.ndim - len(shape)
    if lead > 0:
        seed = seed.sum(axis=tuple(range(lead)))
    ones = tuple(k for k in range(seed.ndim)
                 if shape[len(shape) - seed.ndim + k] == 1 and seed.shape[k] != 1)
    return np.broadcast_to(seed.sum(axis=ones, keepdims=True) if ones else seed, shape)


def _shaped(value, shape, copy=False):
    """An output with the broadcast shape of all inputs: a Python number when that is `()`,
    else an array of its own, not `value` when `copy` (`value` is returned elsewhere)."""
    value = _array(value)
    if value.shape != shape:
        value = np.broadcast_to(value, shape).copy()
    elif copy:
        value = value.copy()
    return value.item() if value.ndim == 0 else value


def _unbroadcast(grad, shape, copy=False):
    """The gradient of an input of `shape`: summed over every dimension broadcast added
    (a Python number when `shape` is `()`), a writable array, not `grad` when `copy`."""
    grad = _array(grad)
    if grad.shape != shape:
        lead = grad.ndim - len(shape)
        if lead > 0:
            grad = np.add.reduce(grad, axis=tuple(range(lead)))
        grad = grad.reshape((1,) * (len(shape) - grad.ndim) + grad.shape)
        ones = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
        if ones:
            grad = grad.sum(axis=ones, keepdims=True)
        if grad.shape != shape:
            grad = np.broadcast_to(grad, shape)
    if grad.ndim == 0:
        return grad.item()
    return grad if grad.flags.writeable and not copy else grad.copy()  # never a seed, or a view of one


def _own_axes(directions, points):
    """The batch axes of a batch of directions that the points' batch lacks (a batch of
    directions at each point), the points' axes made 1 and leading ones dropped."""
    rank = max(len(directions), len(points))
    d = (1,) * (rank - len(directions)) + tuple(directions)
    p = (1,) * (rank - len(points)) + tuple(points)
    own = [n if m == 1 else 1 for n, m in zip(d, p)]
    while own and own[0] == 1:
        own.pop(0)
    return tuple(own)


def _elements(x, shape):
    """The elements of a bus input, views in row-major order: `x`'s trailing axes must
    be the bus's `shape`; leading axes are the batch."""
    if x.ndim < len(shape) or x.shape[x.ndim - len(shape):] != shape:
        raise ValueError(f"expected an array whose last axes have shape {shape}, got {x.shape}")
    return [x[(..., *index)] for index in np.ndindex(*shape)]


def _bus_seed(seed, shape):
    """The elements of a bus output's seed: an array like the bus, or one number for
    every element."""
    seed = _float(seed)
    return _elements(np.broadcast_to(seed, shape) if seed.ndim == 0 else seed, shape)


def _stacked(elements, shape):
    """A bus from its elements in row-major order: a fresh array of `shape`, the bus's
    axes last."""
    if not elements:
        return np.zeros(shape, DTYPE)
    return np.stack([_array(e) for e in elements], axis=-1).reshape(shape)  # floats as DTYPE


# -- whole-bus code (`emit.whole`) ------------------------------------------------------


def _batch(x, shape):
    """The batch shape of a bus input: `x`'s leading axes; its trailing axes must be
    the bus's `shape`."""
    if x.ndim < len(shape) or x.shape[x.ndim - len(shape):] != shape:
        raise ValueError(f"expected an array whose last axes have shape {shape}, got {x.shape}")
    return x.shape[:x.ndim - len(shape)]


def _batch_shape(*shapes):
    """The broadcast shape of the inputs' batch shapes (`np.broadcast_shapes`, quickly
    where each is the longest or `()`)."""
    longest = max(shapes, key=len)
    if all(s == longest or not s for s in shapes):
        return longest
    return np.broadcast_shapes(*shapes)


def _bus_seeded(seed, shape, batch):
    """A bus output's seed, an array like the bus or one number for every element, spread
    over the batch and the bus as `_seed` spreads it."""
    seed = _float(seed)
    if seed.ndim:
        _batch(seed, shape)
    return _seed(seed, batch + shape)


def _full(value, shape):
    """`value` spread over trailing axes of `shape` (a view)."""
    value = _array(value)
    return np.broadcast_to(value, np.broadcast_shapes(value.shape, shape))


def _add_into(view, g):
    """Add `g` into `view`, a slice of an input's adjoint, summed over the batch axes
    that the input lacks (as `_unbroadcast`)."""
    view += _unbroadcast(g, view.shape)


def _unbatched(spec, x, rank):
    """An `einsum` spec whose result keeps the batch axes `...` only if `x`, a bus of
    `rank` axes, has any: the gradient of an unbatched input is summed over the batch
    by the contraction itself."""
    return spec if x.ndim > rank else spec.replace("->...", "->")


def _flat_terms(t, k):
    """`t` with its last `k` axes (the terms of a reduction) made one, in row-major order."""
    n = 1
    for size in t.shape[t.ndim - k:]:
        n *= size
    return t.reshape(t.shape[:t.ndim - k] + (n,))


def _fold_max(t, k, larger=True):
    """The max (min) over the last `k` axes of `t` as the left fold of the two-argument
    gate computes it: the first largest (smallest) term."""
    flat = _flat_terms(t, k)
    at = np.argmax(flat, axis=-1) if larger else np.argmin(flat, axis=-1)
    return np.take_along_axis(flat, at[..., None], axis=-1)[..., 0]


def _fold_prod(t, k):
    """The product over the last `k` axes of `t`, multiplied from the left."""
    return np.multiply.reduce(_flat_terms(t, k), axis=-1)


def _prod_except(t, k):
    """At each term of the last `k` axes of `t`, the product of the other terms: of those
    before it, from the left, times those after it, from the right."""
    flat = _flat_terms(t, k)
    ones = np.ones(flat.shape[:-1] + (1,), flat.dtype)
    before = np.cumprod(np.concatenate([ones, flat[..., :-1]], -1), -1)
    after = np.cumprod(np.concatenate([ones, flat[..., :0:-1]], -1), -1)[..., ::-1]
    return (before * after).reshape(t.shape)


def _prod_except_tangent(t, dt, k):
    """The derivative of `_prod_except(t, k)` along `dt`: at each term, the sum over each
    other term of its `dt` times the product of the terms but those two (the products
    before and after each term, carried with their derivatives, a term at a time)."""
    t, dt = np.broadcast_arrays(t, dt)
    flat, dflat = _flat_terms(t, k), _flat_terms(dt, k)
    n = flat.shape[-1]
    before, dbefore = np.ones(flat.shape, flat.dtype), np.zeros(flat.shape, flat.dtype)
    after, dafter = np.ones(flat.shape, flat.dtype), np.zeros(flat.shape, flat.dtype)
    for j in range(1, n):
        before[..., j] = before[..., j - 1] * flat[..., j - 1]
        dbefore[..., j] = dbefore[..., j - 1] * flat[..., j - 1] + before[..., j - 1] * dflat[..., j - 1]
        i = n - 1 - j
        after[..., i] = after[..., i + 1] * flat[..., i + 1]
        dafter[..., i] = dafter[..., i + 1] * flat[..., i + 1] + after[..., i + 1] * dflat[..., i + 1]
    return (dbefore * after + before * dafter).reshape(t.shape)


def _logsumexp(t, k):
    """`m + log(sum(exp(t - m)))` over the last `k` axes, `m` the max: never overflows.
    (Any term as large as the max is the same `m`: the fold's first largest need not be
    found.)"""
    flat = _flat_terms(t, k)
    m = flat.max(axis=-1)
    return m + np.log(np.exp(flat - m[..., None]).sum(axis=-1))


def _contract(spec, a, b):
    """`np.einsum(spec, a, b)`, where `spec` writes each operand as `...` (its batch axes)
    and a letter per trailing axis: one matrix product where it can be (see
    `_contraction`), planned once per spec and operand ranks."""
    plans = _contract.__dict__.setdefault("plans", {})
    key = (spec, a.ndim, b.ndim)
    plan = plans.get(key)
    if plan is None:
        plan = plans[key] = _contraction(spec, a.ndim, b.ndim)
    return plan(a, b)


def _contraction(spec, na, nb):
    """How `_contract` computes `spec` for operands of `na` and `nb` axes: a letter of
    one operand only that the result lacks is summed first; then, when every letter
    the two share is summed and at most one operand has batch axes (or both have the
    same ones and the result sums them), one `@` of the operands laid out as matrices;
    otherwise `np.einsum`."""
    inputs, out = spec.split("->")
    la, lb = (x.replace("...", "") for x in inputs.split(","))
    keep, lo = out.startswith("..."), out.replace("...", "")
    ra, rb = na - len(la), nb - len(lb)  # batch ranks
    alone_a = tuple(k - len(la) for k, c in enumerate(la) if c not in lb and c not in lo)
    alone_b = tuple(k - len(lb) for k, c in enumerate(lb) if c not in la and c not in lo)
    la = "".join(c for c in la if c in lb or c in lo)
    lb = "".join(c for c in lb if c in la or c in lo)

    def summed(a, b):
        return (a.sum(axis=alone_a) if alone_a else a), (b.sum(axis=alone_b) if alone_b else b)

    shared = [c for c in la if c in lb]
    reduced = f"...{la},...{lb}->{out}"
    if keep and not shared:  # a product with broadcasting, which einsum does at once
        return lambda a, b: np.einsum(reduced, *summed(a, b))
    if any(c in lo for c in shared) or (ra and rb and keep) or (bool(ra) != bool(rb) and not keep):
        return lambda a, b: np.einsum(reduced, *summed(a, b), optimize=True)
    swap = rb and not ra
    if swap:
        la, lb, ra, rb = lb, la, rb, ra
    both = ra and rb  # the batch is summed too
    free_a = [c for c in la if c not in shared]
    free_b = [c for c in lb if c not in shared]
    batch = list(range(ra))
    pa = ([] if both else batch) + [ra + la.index(c) for c in free_a] + \
        (batch if both else []) + [ra + la.index(c) for c in shared]
    pb = list(range(rb)) + [rb + lb.index(c) for c in shared] + [rb + lb.index(c) for c in free_b]
    letters = free_a + free_b
    order = tuple(len(letters) - len(lo) + letters.index(c) for c in lo) if letters != list(lo) \
        else None
    ta = pa if pa != sorted(pa) else None
    tb = pb if pb != sorted(pb) else None
    # Operands that are already matrices (or vectors) once transposed need no reshape.
    direct = len(pa) <= 2 and len(pb) <= 2 and len(shared) + bool(both) == 1 and ra <= 1

    def plan(a, b):
        if alone_a or alone_b:
            a, b = summed(a, b)
        if swap:
            a, b = b, a
        if both and a.shape[:ra] != b.shape[:rb] or not (a.size and b.size):  # or empty
            return np.einsum(reduced, *((b, a) if swap else (a, b)), optimize=True)
        lead = () if both else a.shape[:ra]
        if direct:
            result = (a.transpose(ta) if ta else a) @ (b.transpose(tb) if tb else b)
        else:
            fa = tuple(a.shape[ra + la.index(c)] for c in free_a)
            fb = tuple(b.shape[rb + lb.index(c)] for c in free_b)
            k = 1
            for n in pa[len(lead) + len(fa):]:
                k *= a.shape[n]
            a = (a.transpose(ta) if ta else a).reshape(-1, k)
            result = (a @ (b.transpose(tb) if tb else b).reshape(k, -1)).reshape(lead + fa + fb)
        if order is not None:
            result = np.moveaxis(result, [len(lead) + o for o in order],
                                 range(len(lead), len(lead) + len(lo)))
        return result
    return plan


# -- sparse Hessians (`emit.frame`: `sparse_hessian`) -----------------------------------


def _pattern(pieces):
    """The places `(row, column)`, row <= column, of the pattern's pieces `(sizes, row,
    column, distinct)` (row and column `(constant, coefficients)` over the parameters of a
    box of `sizes`), as an array of rows `(row, column)`, sorted by column then row, each
    once."""
    found = [np.zeros((0, 2), np.int64)]
    for sizes, (r0, rows), (c0, columns), distinct in pieces:
        grid = (np.indices(sizes, dtype=np.int64).reshape(len(sizes), -1) if sizes
                else np.zeros((0, 1), np.int64))
        row, column = _affine_at(r0, rows, grid), _affine_at(c0, columns, grid)
        keep = row <= column
        for group in distinct:
            equal = np.ones(row.shape, bool)
            for a, b in group:
                equal &= _affine_at(*a, grid) == _affine_at(*b, grid)
            keep &= ~equal
        found.append(np.stack([column[keep], row[keep]], axis=1))
    return np.unique(np.concatenate(found), axis=0)[:, ::-1].copy()


def _affine_at(constant, coefficients, grid):
    """`constant + coefficients . p` at each point `p` of `grid` (its columns)."""
    return constant + np.asarray(coefficients, dtype=np.int64) @ grid


def _hessian_layout():
    """`HESSIAN_PATTERN` and the colouring of its columns, made once."""
    made = globals().get("_HESSIAN_LAYOUT")
    if made is None:
        pattern = _pattern(HESSIAN_PIECES)  # noqa: F821 (the module's)
        n = sum(int(np.prod(SHAPES[name])) for name in WRT)  # noqa: F821
        colour, count = _colouring(pattern.tolist(), n, HESSIAN_BAND)  # noqa: F821 (emit.hessian_helpers's)
        made = globals()["_HESSIAN_LAYOUT"] = (pattern, np.asarray(colour, dtype=np.int64), count)
    return made


def _sparse_hessian(hvp, inputs, seeds):
    """`(value, grads, entries)`: the entries of the Hessian of the sum over the batch at
    `HESSIAN_PATTERN`'s places, from one `hvp` along a batch of directions, one per colour
    of its columns (at least one: it gives `value` and `grads`). Each input of WRT is one
    point (no batch axes)."""
    pattern, colour, colours = _hessian_layout()
    batches = []
    for name, x in zip(INPUTS, inputs):  # noqa: F821
        rank = len(SHAPES[name])  # noqa: F821
        batches.append(np.shape(x)[:np.ndim(x) - rank])
        if batches[-1] and name in WRT:  # noqa: F821
            raise ValueError(f"the Hessian is with respect to one point of each input of WRT; "
                             f"{name!r} has batch axes {batches[-1]}")
    batch = np.broadcast_shapes(*batches)
    count = max(colours, 1)
    directions, k = [], 0
    for name in WRT:  # noqa: F821
        shape = tuple(SHAPES[name])  # noqa: F821
        n = int(np.prod(shape))
        unit = np.arange(count)[:, None] == colour[None, k:k + n]
        directions.append(unit.astype(DTYPE).reshape((count,) + (1,) * len(batch) + shape))
        k += n
    value, grads, hv = hvp(*inputs, *directions, *seeds)
    flat = np.concatenate([np.reshape(_array(h), (count, -1)) for h in hv]
                          or [np.zeros((count, 0), DTYPE)], axis=1)
    return value, grads, flat[colour[pattern[:, 1]], pattern[:, 0]]
