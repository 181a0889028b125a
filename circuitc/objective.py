"""A compiled circuit as an objective for `scipy.optimize.minimize`.

`objective(module)` returns the keyword arguments `minimize` takes, over the
module's `WRT` inputs flattened into one vector (buses in row-major order, in `WRT`
order); the other inputs keep fixed values:

    result = scipy.optimize.minimize(**circuitc.objective(module), method="trust-exact")

Only this function imports NumPy (SciPy needs it anyway), and only when called.
"""

from __future__ import annotations

import types
from collections.abc import Mapping

from .api import elementwise
from .graph import elements


def objective(module: types.ModuleType, at: Mapping[str, object] | None = None,
              output: str | None = None) -> dict:
    """`fun`, `x0` and `jac` for `scipy.optimize.minimize`, and `hess` or `hessp` when the
    module has them (compiled with `hessian=True`: the python target's `hessian` gives
    `hess`, the numpy target's `hvp` gives `hessp`).

    `at` gives input values by name (a number, or nested lists for a bus), for the
    inputs that stay fixed and for the start `x0`; every other input takes its default.
    `output` is the output to minimize, by default the first.
    """
    import numpy as np

    flat = elementwise(module)
    point = dict(flat.DEFAULTS)
    for name, value in (at or {}).items():
        if name not in module.INPUTS:
            raise ValueError(f"no input named {name!r} (inputs: {', '.join(module.INPUTS)})")
        shape = tuple(getattr(module, "SHAPES", {}).get(name, ()))
        values = np.broadcast_to(np.asarray(value, dtype=float), shape).ravel().tolist()
        point.update(zip(elements(name, shape), values))
    missing = [name for name in flat.INPUTS if name not in point]
    if missing:
        raise ValueError(f"no value for input {', '.join(missing)}: give it in `at`")
    names = module.OUTPUTS if output is None else (output,)
    if names[0] not in module.OUTPUTS:
        raise ValueError(f"no output named {output!r} (outputs: {', '.join(module.OUTPUTS)})")
    if getattr(module, "SHAPES", {}).get(names[0]):
        raise ValueError(f"the output {names[0]!r} is a bus; minimize a number (an output that "
                         "sums or reduces it)")
    k = flat.OUTPUTS.index(elements(names[0], tuple(getattr(module, "SHAPES", {}).get(names[0],
                                                                                     ())))[0])
    seeds = [float(j == k) for j in range(len(flat.OUTPUTS))]
    wrt = list(flat.WRT)

    def args(x) -> list:
        moved = {**point, **dict(zip(wrt, np.asarray(x, dtype=float).tolist()))}
        return [moved[name] for name in flat.INPUTS]

    def fun(x) -> float:
        values = flat.forward(*args(x))
        return float(values if len(flat.OUTPUTS) == 1 else values[k])

    def jac(x):
        return np.array(flat.backward(*args(x), *seeds)[1], dtype=float)

    kwargs = {"fun": fun, "x0": np.array([point[name] for name in wrt], dtype=float), "jac": jac}
    if hasattr(module, "hessian"):
        kwargs["hess"] = lambda x: np.array(flat.hessian(*args(x), *seeds)[2], dtype=float)
    elif hasattr(module, "hvp"):
        kwargs["hessp"] = lambda x, p: np.array(
            flat.hvp(*args(x), *np.asarray(p, dtype=float).tolist(), *seeds)[2], dtype=float)
    return kwargs
