"""Minimize the 10-dimensional Rosenbrock function with SciPy, through circuitc and
through SciPy's own hand-written derivatives, and compare the iterates.

    python examples/rosenbrock.py

`circuits/rosenbrock.circ` compiled with `hessian=True` gives `hessian()`;
`circuitc.objective` turns the module into `minimize`'s `fun`, `x0`, `jac` and `hess`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.optimize import minimize, rosen, rosen_der, rosen_hess

import circuitc

CIRCUIT = Path(__file__).resolve().parent.parent / "circuits" / "rosenbrock.circ"


def iterates(method: str, **problem) -> tuple[np.ndarray, list[np.ndarray]]:
    """The solution `minimize` finds with `method`, and every iterate on the way."""
    path: list[np.ndarray] = []
    result = minimize(**problem, method=method, callback=lambda xk, *_: path.append(xk.copy()))
    return result.x, path


def compare(method: str, n: int = 10) -> float:
    """The largest difference between the iterates of circuitc's and SciPy's derivatives."""
    module = circuitc.load(CIRCUIT, sizes={"n": n}, hessian=True)
    start = np.full(n, -1.2)
    ours, our_path = iterates(method, **circuitc.objective(module, at={"x": start}))
    _, their_path = iterates(method, fun=rosen, x0=start, jac=rosen_der, hess=rosen_hess)
    assert len(our_path) == len(their_path), (len(our_path), len(their_path))
    gap = max(float(np.abs(a - b).max()) for a, b in zip(our_path, their_path))
    print(f"{method:12} {len(our_path):3} iterations, solution {np.round(ours, 8)}, "
          f"largest difference between the iterates {gap:.1e}")
    return gap


if __name__ == "__main__":
    for method in ("trust-exact", "Newton-CG"):
        compare(method)
