"""The functions every module of the `numpy` target carries, defined once.

The numpy emitter reads each function's source text from this file with `ast`
(without importing it, so emitting NumPy code never needs NumPy) and copies it
verbatim into each generated module that needs it, so these functions may use
nothing but `np` and each other. Gate helpers are the ones a gate's `numpy` syntax
in the gate table names (`_sigmoid`, `_softplus`); the others shape a function's
arguments and results. A gate that plain NumPy calls express needs no helper.

Every gate helper works elementwise on scalars and arrays alike and never warns on
a finite input: both branches of an `np.where` are computed for every element, so
each branch must be safe everywhere (`exp(-|x|)` never overflows).
"""

from __future__ import annotations

import numpy as np


def _sigmoid(x):
    z = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0, z) / (1.0 + z)


def _softplus(x):
    return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))


def _float(x):
    """`x` as a float64 array (complex numbers stay complex)."""
    x = np.asarray(x)
    return x if x.dtype.kind == "c" else x.astype(np.float64, copy=False)


def _seed(seed, shape):
    """A seed as float64 spread over its output's `shape` (a view). The axes it brings that
    the output lacks are summed first: the output is the same along them, so the gradient
    of `sum(d_out * out)` sums the seed there."""
    seed = _float(seed)
    if seed.shape == shape:
        return seed
    lead = seed.ndim - len(shape)
    if lead > 0:
        seed = seed.sum(axis=tuple(range(lead)))
    ones = tuple(k for k in range(seed.ndim)
                 if shape[len(shape) - seed.ndim + k] == 1 and seed.shape[k] != 1)
    return np.broadcast_to(seed.sum(axis=ones, keepdims=True) if ones else seed, shape)


def _shaped(value, shape, copy=False):
    """An output with the broadcast shape of all inputs: a Python number when that is `()`,
    else an array of its own, not `value` when `copy` (`value` is returned elsewhere)."""
    value = np.asarray(value)
    if value.shape != shape:
        value = np.broadcast_to(value, shape).copy()
    elif copy:
        value = value.copy()
    return value.item() if value.ndim == 0 else value


def _unbroadcast(grad, shape, copy=False):
    """The gradient of an input of `shape`: summed over every dimension broadcast added
    (a Python number when `shape` is `()`), a writable array, not `grad` when `copy`."""
    grad = np.asarray(grad)
    if grad.shape != shape:
        lead = grad.ndim - len(shape)
        if lead > 0:
            grad = grad.sum(axis=tuple(range(lead)))
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
    return np.stack(elements, axis=-1).reshape(shape) if elements else np.zeros(shape)


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
    value = np.asarray(value)
    return np.broadcast_to(value, np.broadcast_shapes(value.shape, shape))


def _sum_to(g, shape, axes):
    """`g`, spread over trailing axes of `shape`, summed over `axes` (negative)."""
    return _full(g, shape).sum(axis=axes)


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


def _terms_shaped(w, t, k):
    """Flat terms `w` (one per term of `t`'s last `k` axes, and whatever batch `w` has)
    back in `t`'s last `k` axes."""
    return w.reshape(w.shape[:-1] + t.shape[t.ndim - k:])


def _fold_max(t, k, larger=True):
    """The max (min) over the last `k` axes of `t` as the left fold of the two-argument
    gate computes it: the first largest (smallest) term."""
    flat = _flat_terms(t, k)
    at = np.argmax(flat, axis=-1) if larger else np.argmin(flat, axis=-1)
    return np.take_along_axis(flat, at[..., None], axis=-1)[..., 0]


def _fold_max_grad(t, k, g, larger=True):
    """d(g * max (min) over the last `k` axes of `t`)/d(each term): `g` split equally among
    the terms equal to the result (none where it is NaN)."""
    flat = _flat_terms(t, k)
    tied = flat == _fold_max(t, k, larger)[..., None]
    count = np.maximum(tied.sum(axis=-1, keepdims=True), 1)
    return _terms_shaped(np.asarray(g)[..., None] / count * tied, t, k)


def _fold_prod(t, k):
    """The product over the last `k` axes of `t`, multiplied from the left."""
    return np.multiply.reduce(_flat_terms(t, k), axis=-1)


def _fold_prod_grad(t, k, g):
    """d(g * product over the last `k` axes)/d(each term), as the left fold has it: the
    product of the terms before it and of `g` and the terms after it."""
    flat = _flat_terms(t, k)
    g = np.asarray(g)
    batch = np.broadcast_shapes(g.shape, flat.shape[:-1])
    flat = np.broadcast_to(flat, batch + flat.shape[-1:])
    before = np.cumprod(np.concatenate([np.ones(batch + (1,)), flat[..., :-1]], -1), -1)
    after = np.cumprod(np.concatenate([np.broadcast_to(g, batch)[..., None], flat[..., :0:-1]],
                                      -1), -1)[..., ::-1]
    return _terms_shaped(after * before, t, k)


def _logsumexp(t, k):
    """`m + log(sum(exp(t - m)))` over the last `k` axes, `m` the max: never overflows."""
    m = _fold_max(t, k)
    flat = _flat_terms(t, k)
    return m + np.log(np.exp(flat - m[..., None]).sum(axis=-1))


def _logsumexp_grad(t, k, g):
    """d(g * logsumexp over the last `k` axes)/d(each term): `g` times the softmax."""
    flat = _flat_terms(t, k)
    e = np.exp(flat - _fold_max(t, k)[..., None])
    return _terms_shaped((np.asarray(g) / e.sum(axis=-1))[..., None] * e, t, k)


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
        if both and a.shape[:ra] != b.shape[:rb]:
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
