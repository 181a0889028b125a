"""A compiled circuit as an objective for `scipy.optimize.minimize`.

`objective(module)` returns the keyword arguments `minimize` takes, over the
module's `WRT` inputs flattened into one vector (buses in row-major order, in `WRT`
order); the other inputs keep fixed values:

    result = scipy.optimize.minimize(**circuitc.objective(module), method="trust-exact")

The module's functions are called with NumPy arrays, one per input (either target
takes them), so a step costs one call of the module, whatever the sizes of its buses.
With `data=`, inputs given a batch of points are a data set the objective averages (or
sums) over. `gradients(module, **inputs)` gives one output's gradient by input name.

SciPy works in float64. A module that computes in float32 (`DTYPE`) is given SciPy's
point as float64 arrays, which it converts on entry, and its value and derivatives are
returned to SciPy as float64; a data set is converted to float32 once, not at each step.
Only these functions import NumPy (SciPy needs it anyway), and only when called.
"""

from __future__ import annotations

import math
import types
from collections.abc import Mapping

# How `objective` gives second derivatives: as `hess`, a dense matrix (`hessian`) or a
# `scipy.sparse` matrix (`sparse_hessian`), or as `hessp` (`hvp`).
HESSIANS = ("dense", "sparse", "hvp")


def objective(module: types.ModuleType, at: Mapping[str, object] | None = None,
              output: str | None = None, hessian: str | None = None,
              data: Mapping[str, object] | None = None, over: str = "mean") -> dict:
    """`fun`, `x0` and `jac` for `scipy.optimize.minimize`, and second derivatives when the
    module has them (compiled with `hessian=True`).

    `at` gives input values by name (a number, or nested lists for a bus), for the
    inputs that stay fixed and for the start `x0`; every other input takes its default.
    `data` gives inputs a batch of points each (one leading axis, the same length for
    all: the rows of a data set), for a numpy-target module: the objective is then the
    `over` ("mean", the default, or "sum") of the output over the points, and so are its
    derivatives, from one call of the module a step. Inputs given as data are not
    moved (compile with `fix=` them, so their gradients are not computed).
    `output` is the output to minimize, by default the first. `hessian` chooses how
    second derivatives are given: `"dense"`, `hess` returning an array (the module's
    `hessian`, the python target's); `"sparse"`, `hess` returning a `scipy.sparse` CSR
    matrix (`sparse_hessian`, whole-bus modules'), for the methods that take one
    (`trust-constr`, `Newton-CG`); `"hvp"`, `hessp` (Newton-CG, trust-krylov, trust-ncg).
    By default: dense where the module has `hessian`, else `hvp` where it has `hvp`.
    """
    import numpy as np

    shapes = {name: tuple(getattr(module, "SHAPES", {}).get(name, ())) for name in
              (*module.INPUTS, *module.OUTPUTS)}
    point = {name: np.asarray(value, dtype=float) for name, value in
             getattr(module, "DEFAULTS", {}).items()}
    for name, value in (at or {}).items():
        if name not in module.INPUTS:
            raise ValueError(f"no input named {name!r} (inputs: {', '.join(module.INPUTS)})")
        point[name] = np.broadcast_to(np.asarray(value, dtype=float), shapes[name])
    weight = _data(module, data or {}, shapes, point, over, getattr(module, "DTYPE", "float64"))
    missing = [name for name in module.INPUTS if name not in point]
    if missing:
        raise ValueError(f"no value for input {', '.join(missing)}: give it in `at`")
    name = module.OUTPUTS[0] if output is None else output
    if name not in module.OUTPUTS:
        raise ValueError(f"no output named {output!r} (outputs: {', '.join(module.OUTPUTS)})")
    if shapes[name]:
        raise ValueError(f"the output {name!r} is a bus; minimize a number (an output that "
                         "sums or reduces it)")
    k = module.OUTPUTS.index(name)
    seeds = [weight * (j == k) for j in range(len(module.OUTPUTS))]
    wrt = [w for w in getattr(module, "WRT", module.INPUTS) if w not in (data or {})]
    moved = [j for j, w in enumerate(getattr(module, "WRT", module.INPUTS)) if w in wrt]
    sizes = [math.prod(shapes[w]) for w in wrt]
    ends = np.cumsum([0, *sizes])

    def split(v) -> list:
        """A vector over the elements of WRT as one value per input of WRT: an array for a
        bus, a Python float for a number (the python target computes with those)."""
        v = np.asarray(v, dtype=float)
        return [_value(v[a:b].reshape(shapes[w])) for w, a, b in zip(wrt, ends[:-1], ends[1:])]

    def args(x) -> list:
        given = {**point, **dict(zip(wrt, split(x)))}
        return [_value(given[n]) for n in module.INPUTS]

    def flat(values) -> np.ndarray:
        return np.concatenate([np.ravel(np.asarray(v, dtype=float)) for v in values] or
                              [np.zeros(0)])

    def fun(x) -> float:
        values = module.forward(*args(x))
        return float(weight * np.sum(values if len(module.OUTPUTS) == 1 else values[k]))

    def jac(x):
        grads = module.backward(*args(x), *seeds)[1]
        return flat([grads[j] for j in moved])

    kwargs = {"fun": fun, "x0": flat([point[w] for w in wrt]), "jac": jac}
    if hessian is None:
        hessian = "dense" if hasattr(module, "hessian") else "hvp" if hasattr(module, "hvp") \
            else None
    if hessian is None:
        return kwargs
    needs = {"dense": "hessian", "sparse": "sparse_hessian", "hvp": "hvp"}.get(hessian)
    if needs is None:
        raise ValueError(f"hessian must be one of {', '.join(HESSIANS)}")
    if not hasattr(module, needs):
        raise ValueError(f"hessian={hessian!r} needs the module's {needs}: compile it with "
                         "hessian=True" + (" (whole-bus code: a circuit with buses)"
                                           if hessian == "sparse" else ""))
    if hessian == "dense":
        n = int(ends[-1])
        kwargs["hess"] = lambda x: np.asarray(module.hessian(*args(x), *seeds)[2],
                                              dtype=float).reshape(n, n)
    elif hessian == "sparse":
        from scipy.sparse import csr_matrix

        places = np.asarray(module.HESSIAN_PATTERN, dtype=np.int64).reshape(-1, 2)
        rows, columns = places[:, 0], places[:, 1]
        off = rows != columns
        both = (np.concatenate([rows, columns[off]]), np.concatenate([columns, rows[off]]))
        n = int(ends[-1])

        def hess(x):
            entries = np.asarray(module.sparse_hessian(*args(x), *seeds)[2], dtype=float)
            return csr_matrix((np.concatenate([entries, entries[off]]), both), shape=(n, n))
        kwargs["hess"] = hess
    else:
        def hessp(x, p):
            given = dict(zip(wrt, split(p)))
            directions = [given.get(w, 0.0) for w in getattr(module, "WRT", module.INPUTS)]
            hv = module.hvp(*args(x), *directions, *seeds)[2]
            return flat([hv[j] for j in moved])
        kwargs["hessp"] = hessp
    return kwargs


def _data(module, data: Mapping[str, object], shapes: dict, point: dict, over: str,
          dtype: str) -> float:
    """Put the points of `data` into `point`, checked, as arrays of `dtype` (the module's,
    so that it converts none at each step); the weight of each point's output in the
    objective (1/N for the mean of N points, 1 for the sum)."""
    import numpy as np

    if over not in ("mean", "sum"):
        raise ValueError(f"over must be 'mean' or 'sum', not {over!r}")
    if not data:
        return 1.0
    if "np" not in vars(module):  # the numpy target's modules import NumPy as np
        raise ValueError("data= needs a module of the numpy target, which takes a batch of "
                         "points at once: load it with target='numpy'")
    lengths = {}
    for name, value in data.items():
        if name not in module.INPUTS:
            raise ValueError(f"no input named {name!r} (inputs: {', '.join(module.INPUTS)})")
        array = np.asarray(value, dtype=dtype)
        if array.shape[1:] != shapes[name]:
            raise ValueError(f"data for {name!r} has shape {array.shape}: expected (points,) + "
                             f"{shapes[name]}, a point a row")
        lengths[name] = len(array)
        point[name] = array
    if len(set(lengths.values())) > 1:
        raise ValueError("data inputs have different numbers of points: "
                         + ", ".join(f"{n} {k}" for n, k in lengths.items()))
    return 1.0 / next(iter(lengths.values())) if over == "mean" else 1.0


def _value(array):
    """A bus's array as it is, a number's as a Python float (which `split` may have made)."""
    return array if isinstance(array, float) else array.item() if array.ndim == 0 else array


def gradients(module: types.ModuleType, output: str | None = None, **inputs) -> dict:
    """The gradient of `output` (by default the first output; a bus output's, of the sum of
    its elements) with respect to each input of the module's `WRT`, by name:
    `{"W1": ..., "b1": ...}`. Inputs are given by their `.circ` names; the others take
    their defaults."""
    name = module.OUTPUTS[0] if output is None else output
    if name not in module.OUTPUTS:
        raise ValueError(f"no output named {output!r} (outputs: {', '.join(module.OUTPUTS)})")
    unknown = [n for n in inputs if n not in module.INPUTS]
    if unknown:
        raise ValueError(f"no input named {unknown[0]!r} (inputs: {', '.join(module.INPUTS)})")
    given = {**getattr(module, "DEFAULTS", {}), **inputs}
    missing = [n for n in module.INPUTS if n not in given]
    if missing:
        raise ValueError(f"no value for input {', '.join(missing)}: give it by name")
    seeds = [float(o == name) for o in module.OUTPUTS]
    grads = module.backward(*(given[n] for n in module.INPUTS), *seeds)[1]
    return dict(zip(getattr(module, "WRT", module.INPUTS), grads))
