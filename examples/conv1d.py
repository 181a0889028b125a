"""Learning a convolution filter: the 5-tap filter and bias that map noisy signals to their
filtered versions, trained through `circuitc.objective(..., data=...)` with SciPy's L-BFGS,
against the least-squares solution NumPy computes from the signals' sliding windows.

    python examples/conv1d.py

`examples/conv1d.circ` writes the squared error of one signal; `data=` makes the
objective its mean over the 200 signals. The loss is quadratic in the filter and bias, so
its minimum is the linear least-squares fit of the windows to the targets, which
`np.linalg.lstsq` finds directly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.optimize import minimize

import circuitc

CIRCUIT = Path(__file__).resolve().parent / "conv1d.circ"
FILTER, BIAS = np.array([0.25, -1.0, 1.5, -1.0, 0.25]), 0.1


def signals(count: int = 200, n: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`count` random signals of `n` samples, and each filtered by FILTER, BIAS plus noise."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(count, n))
    windows = np.lib.stride_tricks.sliding_window_view(X, len(FILTER), axis=1)
    T = windows @ FILTER + BIAS + 0.01 * rng.normal(size=windows.shape[:2])
    return X, T


def train(X: np.ndarray, T: np.ndarray) -> np.ndarray:
    """The filter and bias (one array, bias last) minimizing the mean loss, by L-BFGS."""
    module = circuitc.load(CIRCUIT, target="numpy", wrt=["w", "b"])
    problem = circuitc.objective(module, data={"x": X, "t": T})
    result = minimize(**problem, method="L-BFGS-B",
                      options={"ftol": 0, "gtol": 1e-12, "maxiter": 10_000})
    assert result.success, result.message
    return result.x


def least_squares(X: np.ndarray, T: np.ndarray) -> np.ndarray:
    """The same minimum from NumPy's least squares over every window of every signal."""
    windows = np.lib.stride_tricks.sliding_window_view(X, len(FILTER), axis=1)
    A = np.concatenate([windows.reshape(-1, len(FILTER)), np.ones((windows[..., 0].size, 1))],
                       axis=1)
    return np.linalg.lstsq(A, T.reshape(-1), rcond=None)[0]


def main() -> dict:
    X, T = signals()
    ours, theirs = train(X, T), least_squares(X, T)
    gap = float(np.abs(ours - theirs).max())
    print(f"filter {np.round(ours[:-1], 3)}, bias {ours[-1]:.3f}; "
          f"largest difference from least squares {gap:.1e}")
    return {"ours": ours, "theirs": theirs, "gap": gap}


if __name__ == "__main__":
    main()
