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
    """A seed as a float64 array spread over its output's shape (and any more it brings)."""
    seed = _float(seed)
    return np.broadcast_to(seed, np.broadcast_shapes(seed.shape, shape))


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
