"""Logistic regression on scikit-learn's breast-cancer data set, trained through
`circuitc.objective(..., data=...)` with SciPy's L-BFGS, against scikit-learn's own
`LogisticRegression` at the same regularisation.

    python examples/logistic_regression.py

`examples/logistic.circ` writes the loss of one point; `data=` makes the objective its
mean over the 569 points, computed by one call of the numpy-target module a step.
scikit-learn minimizes `C * sum(losses) + |w|^2 / 2`, which is `C * points` times the
mean of `loss` with `alpha = 1 / (C * points)`: the same minimum.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.optimize import minimize
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

import circuitc

CIRCUIT = Path(__file__).resolve().parent / "logistic.circ"


def train(X: np.ndarray, y: np.ndarray, C: float = 1.0) -> tuple[np.ndarray, float]:
    """The weights and bias minimizing the regularised mean loss, by L-BFGS."""
    module = circuitc.load(CIRCUIT, target="numpy", sizes={"d": X.shape[1]},
                           wrt=["w", "b"])
    problem = circuitc.objective(module, at={"alpha": 1 / (C * len(y))},
                                 data={"x": X, "y": y})
    result = minimize(**problem, method="L-BFGS-B", options={"ftol": 0, "gtol": 1e-10, "maxiter": 10_000})
    assert result.success, result.message
    return result.x[:-1], result.x[-1]


def main() -> dict:
    X, y = load_breast_cancer(return_X_y=True)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    w, b = train(X, y)
    ours = float(np.mean((X @ w + b > 0) == y))
    theirs = LogisticRegression(C=1.0, solver="newton-cholesky", tol=1e-12).fit(X, y)
    gap = float(np.abs(np.append(w, b) - np.append(theirs.coef_, theirs.intercept_)).max())
    print(f"training accuracy: circuitc {ours:.4f}, scikit-learn {theirs.score(X, y):.4f}; "
          f"largest difference between the weights {gap:.1e}")
    return {"ours": ours, "theirs": float(theirs.score(X, y)), "gap": gap}


if __name__ == "__main__":
    main()
