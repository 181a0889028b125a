"""The functions a module of the `numba` target carries, defined once.

The numba emitters (`emit.numba`, `emit.numba_loops`) read each function's source text
from this file with `ast` (without importing it, so writing a numba module never needs
numba) and copy it, decorators included, into each module that needs it. They may use
only `math`, `np`, `numba`, the module's `_jit` (numba's `njit`, the module's options)
and its constants (`INPUTS`, `OUTPUTS`, `WRT`, `SHAPES`, `CHUNKS`, `THREADS_FROM`,
`_WHERE`, ...), and each other.

A module's functions are thin Python wrappers over compiled kernels. A kernel of a function
(`_backward_points`) computes the points of a range of chunks of a batch of `B` points:
every argument a flat float64 array, a bus a row per point in row-major order (or one
row for every point), the results written into flat arrays of the caller's (a row per
point, or for the gradient of an input every point shares, a row per chunk, summed
afterwards). `_run` is the way in for any arguments: it checks and lays them out, runs
the kernel (on numba's threads from `THREADS_FROM` points), sums, shapes and returns the
results as the numpy target does. A point of floats and float64 arrays takes a faster
way, the compiled entry point (`_backward`) the wrappers try first.

Errors: kernels compute with IEEE arithmetic, where `log(-1)` is NaN and `1/0` infinite,
and mark each point where a value they write is not finite. There, and only there, `_run`
runs the same kernel again in the interpreter, on lists of Python floats
(`_interpreted`), where `math` raises as in the python target; an error it raises is
re-raised with the gate's `.circ` position (`_located`). A point whose values are
infinite or NaN without an error (an input `inf`) keeps the compiled results.
"""

from __future__ import annotations

import math

import numba
import numpy as np

_jit = numba.njit(cache=True, nogil=True, error_model="numpy")


# -- compiled helpers of the kernels ------------------------------------------------------


@_jit
def _new(n):
    return np.empty(n)


@_jit
def _full(n, value):
    return np.full(n, value)


@_jit
def _row(rows, size, k):
    """Row `k` of `rows`, rows of `size` numbers: a view."""
    return rows[k * size:(k + 1) * size]


@_jit
def _put(a, lo, values):
    """`a[lo:]` set to the elements of the matrix `values`, row-major."""
    rows, columns = values.shape
    for r in range(rows):
        for c in range(columns):
            a[lo + r * columns + c] = values[r, c]


@_jit
def _add(a, lo, values):
    """The elements of the matrix `values`, row-major, added into `a[lo:]`."""
    rows, columns = values.shape
    for r in range(rows):
        for c in range(columns):
            a[lo + r * columns + c] += values[r, c]


@_jit
def _check(values):
    """0.0 where every number of the tuple `values` is finite, else NaN."""
    total = 0.0
    for v in values:
        total += v - v
    return total


@_jit
def _fold_max(terms):
    """The first largest of `terms`, as the left fold of `max` gives it."""
    m = terms[0]
    for k in range(1, len(terms)):
        m = max(m, terms[k])
    return m


@_jit
def _fold_min(terms):
    """The first smallest of `terms`, as the left fold of `min` gives it."""
    m = terms[0]
    for k in range(1, len(terms)):
        m = min(m, terms[k])
    return m


@_jit
def _fold_prod(terms):
    """The product of `terms`, from the left."""
    total = 1.0
    for t in terms:
        total *= t
    return total


@_jit
def _logsumexp(terms):
    """`m + log(sum(exp(t - m)))`, `m` the largest term, the sum from the left."""
    m = _fold_max(terms)
    total = -0.0
    for t in terms:
        total += math.exp(t - m)
    return m + math.log(total)


@_jit
def _prod_except(terms, out):
    """`out[k]`, at each term, the product of the others: those before it, from the
    left, times those after it, from the right."""
    n = len(terms)
    before, after = _full(n, 1.0), _full(n, 1.0)
    for j in range(1, n):
        before[j] = before[j - 1] * terms[j - 1]
        after[n - 1 - j] = after[n - j] * terms[n - j]
    for k in range(n):
        out[k] = before[k] * after[k]


@_jit
def _prod_except_tangent(terms, tangents, out):
    """`out[k]`, the derivative of `_prod_except(terms)` along `tangents`: the products
    before and after each term carried with their derivatives."""
    n = len(terms)
    before, after, dbefore, dafter = _full(n, 1.0), _full(n, 1.0), _full(n, 0.0), _full(n, 0.0)
    for j in range(1, n):
        before[j] = before[j - 1] * terms[j - 1]
        dbefore[j] = dbefore[j - 1] * terms[j - 1] + before[j - 1] * tangents[j - 1]
        i = n - 1 - j
        after[i] = after[i + 1] * terms[i + 1]
        dafter[i] = dafter[i + 1] * terms[i + 1] + after[i + 1] * tangents[i + 1]
    for k in range(n):
        out[k] = dbefore[k] * after[k] + before[k] * dafter[k]


# -- the way in: arguments, batches, threads, results ---------------------------------------


def _float(x):
    """`x` as a float64 array (itself where it is one)."""
    if type(x) is np.ndarray and x.dtype.char == "d":
        return x
    x = np.asarray(x)
    if x.dtype.kind == "c":
        raise TypeError("the numba target computes with float64 numbers, not complex ones")
    return x.astype(np.float64, copy=False)


def _batch_shape(shapes):
    """The broadcast shape of batch shapes (`np.broadcast_shapes`, quickly where each is
    the longest or `()`)."""
    longest = max(shapes, key=len, default=())
    if all(s == longest or not s for s in shapes):
        return longest
    return np.broadcast_shapes(*shapes)


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


def _rows(x, batch, shape, run):
    """`x` (batch `batch`, then `shape`) as a kernel reads it over the batch `run`: flat,
    contiguous, one row for every point where it has no batch, else a row per point;
    writable, as numba compiles a kernel again for read-only arrays."""
    if batch and batch != run:
        x = np.broadcast_to(x, run + shape)
    if not (x.flags.c_contiguous and x.flags.writeable):
        x = np.array(x, order="C")
    return x.reshape(-1)


def _seeded(seed, batch, shape):
    """A seed of an output of `shape` over the points' `batch`, and its own batch (`batch`,
    or `()` for one seed for every point): its axes the output lacks summed first (the
    output is the same along them, so the gradient of `sum(d_out * out)` sums the seed
    there), as the numpy target spreads it."""
    if type(seed) is float or type(seed) is int:  # one number for every point and element
        return np.full(math.prod(shape), float(seed)) if shape else np.array((float(seed),)), ()
    seed = _float(seed)
    full = batch + shape
    lead = seed.ndim - len(full)
    if lead > 0:
        seed = seed.sum(axis=tuple(range(lead)))
    ones = tuple(k for k in range(seed.ndim)
                 if full[len(full) - seed.ndim + k] == 1 and seed.shape[k] != 1)
    if ones:
        seed = seed.sum(axis=ones, keepdims=True)
    if any(n != 1 for n in seed.shape[:max(seed.ndim - len(shape), 0)]):
        return np.broadcast_to(seed, full), batch
    return np.broadcast_to(seed.reshape(seed.shape[max(seed.ndim - len(shape), 0):]), shape), ()


def _unbroadcast(grad, shape):
    """A gradient summed to the shape of its input: over every axis broadcasting added."""
    if grad.shape != shape:
        lead = grad.ndim - len(shape)
        if lead > 0:
            grad = np.add.reduce(grad, axis=tuple(range(lead)))
        ones = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
        if ones:
            grad = grad.sum(axis=ones, keepdims=True)
    return grad


def _run(function, inputs, extras=()):
    """`function` (a dict: its `kind`, `kernel`, `threads` and the rest the module's `_NAME`
    says) at `inputs` (`INPUTS` order) and `extras` (the seeds; for `jvp` a direction per
    input; for `hvp` a direction per input of `WRT`, then the seeds): any values NumPy
    takes, batches as leading axes, the results as the numpy target returns them."""
    kind = function["kind"]
    shapes, vshapes, outs, wrt, sizes = function.get("layout") or _layout(function)
    xs, batches = [], []
    for x, shape in zip((*inputs, *extras[:len(vshapes)]), shapes + vshapes):
        if type(x) is not np.ndarray or x.dtype.char != "d":
            x = _float(x)
        lead = x.ndim - len(shape)
        if lead < 0 or x.shape[lead:] != shape:
            raise ValueError(f"expected an array whose last axes have shape {shape}, got {x.shape}")
        xs.append(x)
        batches.append(x.shape[:lead])
    n_in = len(inputs)
    points = _batch_shape(batches if kind == "jvp" else batches[:n_in])
    globals()[function["batched"]] = bool(points)  # whether the next call tries the entry point
    run = _batch_shape([points, *batches[n_in:]])
    own = _own_axes(run, points) if kind == "hvp" else ()  # a batch of directions at each point
    if kind == "hessian" and points:
        raise ValueError(f"hessian is of one point; the inputs have batch axes {points} "
                         "(hvp takes batches)")
    args = []
    for x, batch, shape in zip(xs, batches, shapes + vshapes):
        if batch and batch != run or not (x.flags.c_contiguous and x.flags.writeable):
            x = _rows(x, batch, shape, run)
        args.append(x.reshape(-1))
    for seed, shape in zip(extras[len(vshapes):], outs):
        seed, batch = _seeded(seed, points, shape)
        args.append(_rows(seed, batch, shape, run))
    B = math.prod(run)
    # Chunks for numba's threads, but for a kernel whose matrix products BLAS computes on
    # threads of its own (products of a chunk's points each are slower than one).
    threaded = function["threads"] is not None and B >= THREADS_FROM  # noqa: F821
    chunks = min(B, CHUNKS) if threaded else 1  # noqa: F821
    # Each result: its shape, and whether it has a row per point (else a row per chunk,
    # summed: the gradient of an input every point shares).
    results = [(shape, True) for shape in outs]
    if kind in ("backward", "hvp", "hessian"):
        results += [(shapes[k], bool(batches[k])) for k in wrt]
    if kind == "jvp":
        results += [(shape, True) for shape in outs]
    if kind == "hvp":
        results += [(shapes[k], bool(batches[k] or batches[n_in + j] or own)) for j, k in enumerate(wrt)]
    if kind == "hessian":
        results.append(((len(function["pattern"]),), True))
    arrays = [_started((B if each else chunks) * math.prod(shape), start[0 if each else 1] if B else 0.0)
              for (shape, each), start in zip(results, function["starts"])]
    bad = [np.zeros(B, np.bool_)] if function["checked"] else []
    if B and chunks > 1 and numba.get_num_threads() > 1:
        function["threads"](B, chunks, *args, *arrays, *bad)
    elif B:
        function["kernel"](B, chunks, 0, chunks, *args, *arrays, *bad)
    if bad and bad[0].any():
        _rerun(function, args, sizes, [math.prod(shape) for shape, _ in results], bad[0], run)
    made = []
    for (shape, each), a in zip(results, arrays):
        if not each and chunks > 1:
            a = np.add.reduce(a.reshape(chunks, -1), axis=0)
        target = run + shape if each else shape
        made.append(a.reshape(target) if target else a.item(0))
    n = len(outs)
    value = made[0] if n == 1 else tuple(made[:n])
    if kind == "forward":
        return value
    if kind == "jvp":
        return value, made[n] if n == 1 else tuple(made[n:])
    grads = tuple(_summed(g, xs[k].shape) for g, k in zip(made[n:n + len(wrt)], wrt))
    if kind == "backward":
        return value, grads
    if kind == "hessian":
        size = sum(math.prod(shapes[k]) for k in wrt)
        H = np.zeros((size, size))
        for (j, k), h in zip(function["pattern"], made[-1].tolist()):
            H[j, k] = H[k, j] = h
        return value, grads, H
    hv = tuple(_summed(h, np.broadcast_shapes(xs[k].shape, own + shapes[k]))
               for h, k in zip(made[n + len(wrt):], wrt))
    if own:  # the value and gradient at the points, not along each direction
        value, grads = _run(function["backward"], inputs, extras[len(vshapes):])
    return value, grads, hv


def _layout(function):
    """What `_run` reads of the module for `function`, made once: the shapes of the inputs,
    of the directions, of the outputs, the place of each input of `WRT` among the inputs,
    and the sizes of the kernel's arguments' rows."""
    kind = function["kind"]
    moving = INPUTS if kind == "jvp" else WRT if kind == "hvp" else ()  # noqa: F821
    shapes = [tuple(SHAPES[name]) for name in INPUTS]  # noqa: F821
    vshapes = [tuple(SHAPES[name]) for name in moving]  # noqa: F821
    outs = [tuple(SHAPES[name]) for name in OUTPUTS]  # noqa: F821
    sizes = [math.prod(shape) for shape in shapes + vshapes + outs]
    function["layout"] = layout = (shapes, vshapes, outs, [INPUTS.index(name) for name in WRT], sizes)  # noqa: F821
    return layout


def _summed(grad, shape):
    """A gradient (a float for a number) summed to its input's `shape` (`_unbroadcast`)."""
    if type(grad) is float or grad.shape == shape:
        return grad
    grad = _unbroadcast(grad, shape)
    return grad.item() if grad.ndim == 0 else grad


def _started(n, start):
    """`n` numbers that hold `start` (0.0 or -0.0), or anything (None: the kernel assigns them)."""
    if start is None:
        return np.empty(n)
    if math.copysign(1.0, start) > 0:
        return np.zeros(n)
    made = np.empty(n)
    made.fill(-0.0)
    return made


def _rerun(function, args, sizes, results, bad, run):
    """Run `function`'s kernel in the interpreter (`_interpreted`) at each point `bad`
    marks, in order, on its own: `args` the kernel's inputs as laid out (`sizes`, their
    rows'), fresh results of rows `results`. The first error one raises is raised again,
    with the gate that raised it (`_located`) and the point."""
    interpreted = _interpreted(function["kernel"])
    for point in np.flatnonzero(bad).tolist():
        mine = [np.array((a[point * n:(point + 1) * n] if a.size > n else a).tolist(), dtype=object)
                for a, n in zip(args, sizes)]
        made = [_objects_full(n, 0.0 if start[0] is None else start[0])
                for n, start in zip(results, function["starts"])]
        try:
            interpreted(1, 1, 0, 1, *mine, *made, np.zeros(1, np.bool_))
        except (ArithmeticError, ValueError) as exc:
            raise _located(exc, np.unravel_index(point, run) if run else None) from None


def _objects_new(n):
    return np.full(n, 0.0, dtype=object)


def _objects_full(n, value):
    return np.full(n, value, dtype=object)


def _interpreted(kernel):
    """`kernel` as the interpreter runs it: its Python function, and that of every compiled
    function it calls, on arrays of Python floats (`_new` and `_full` make them: arrays of
    objects) and without BLAS (`_BLAS`: products are the loops beside them). The same code
    then computes as the python target does, where `math` and division raise."""
    names = dict(globals())
    for name, value in globals().items():
        f = getattr(value, "py_func", None)
        if f is not None:
            names[name] = type(f)(f.__code__, names, f.__name__, f.__defaults__)
    names.update(_new=_objects_new, _full=_objects_full, _BLAS=False)
    return names[kernel.py_func.__name__]


def _located(exc, point=None):
    """`exc` again, its message prefixed with the `.circ` position of the failing gate: the
    last line of the traceback that `_WHERE` lists (and the point of a batch)."""
    where, tb = "circuit", exc.__traceback__
    while tb is not None:
        entry = f"\n{tb.tb_lineno} "  # how `_WHERE` starts the line's entry
        if tb.tb_frame.f_globals.get("_WHERE") is _WHERE and entry in _WHERE:  # noqa: F821
            where = _WHERE.partition(entry)[2].partition("\n")[0]  # noqa: F821
        tb = tb.tb_next
    at = "" if point is None else f" (at point {tuple(int(k) for k in point)} of the batch)"
    return type(exc)(f"{where}: {exc}{at}")


def _dense_hessian(hvp, inputs, seeds):
    """`(value, grads, H)`: the Hessian as an array, from `_sparse_hessian`."""
    value, grads, entries = _sparse_hessian(hvp, inputs, seeds)  # noqa: F821
    pattern, colour, _ = _hessian_layout()  # noqa: F821
    H = np.zeros((len(colour), len(colour)))
    H[pattern[:, 0], pattern[:, 1]] = entries
    H[pattern[:, 1], pattern[:, 0]] = entries
    return value, grads, H
