"""A compiled circuit as an objective for `scipy.optimize.minimize`.

`objective(module)` returns the keyword arguments `minimize` takes, over the
module's `WRT` inputs flattened into one vector (buses in row-major order, in `WRT`
order); the other inputs keep fixed values:

    result = scipy.optimize.minimize(**circuitc.objective(module), method="trust-exact")

The module's functions are called with NumPy arrays, one per input (either target
takes them), so a step costs one call of the module, whatever the sizes of its buses.
Only this function imports NumPy (SciPy needs it anyway), and only when called.
"""

from __future__ import annotations

import math
import types
from collections.abc import Mapping

# How `objective` gives second derivatives: as `hess`, a dense matrix (`hessian`) or a
# `scipy.sparse` matrix (`sparse_hessian`), or as `hessp` (`hvp`).
HESSIANS = ("dense", "sparse", "hvp")


def objective(module: types.ModuleType, at: Mapping[str, object] | None = None,
              output: str | None = None, hessian: str | None = None) -> dict:
    """`fun`, `x0` and `jac` for `scipy.optimize.minimize`, and second derivatives when the
    module has them (compiled with `hessian=True`).

    `at` gives input values by name (a number, or nested lists for a bus), for the
    inputs that stay fixed and for the start `x0`; every other input takes its default.
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
    seeds = [float(j == k) for j in range(len(module.OUTPUTS))]
    wrt = list(getattr(module, "WRT", module.INPUTS))
    sizes = [math.prod(shapes[w]) for w in wrt]
    ends = np.cumsum([0, *sizes])

    def split(v) -> list:
        """A vector over the elements of WRT as one value per input of WRT: an array for a
        bus, a Python float for a number (the python target computes with those)."""
        v = np.asarray(v, dtype=float)
        return [_value(v[a:b].reshape(shapes[w])) for w, a, b in zip(wrt, ends[:-1], ends[1:])]

    def args(x) -> list:
        moved = {**point, **dict(zip(wrt, split(x)))}
        return [_value(moved[n]) for n in module.INPUTS]

    def flat(values) -> np.ndarray:
        return np.concatenate([np.ravel(np.asarray(v, dtype=float)) for v in values] or
                              [np.zeros(0)])

    def fun(x) -> float:
        values = module.forward(*args(x))
        return float(values if len(module.OUTPUTS) == 1 else values[k])

    def jac(x):
        return flat(module.backward(*args(x), *seeds)[1])

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
        kwargs["hessp"] = lambda x, p: flat(module.hvp(*args(x), *split(p), *seeds)[2])
    return kwargs


def _value(array):
    """A bus's array as it is, a number's as a Python float (which `split` may have made)."""
    return array if isinstance(array, float) else array.item() if array.ndim == 0 else array
