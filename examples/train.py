"""Training on data with circuitc's numpy target.

Two models, each a `.circ` file whose inputs are data (a point and its label) and
parameters. Compiled with `--target numpy` and `wrt` = the parameters, one call of
`backward` on the whole data set gives every parameter's gradient summed over the
points (a scalar parameter broadcast against a batch gets the batch's sum); with
the seed `d_loss = 1/n` that is the gradient of the mean loss. Gradient descent
then needs three lines of NumPy.

1. `svm.circ`: chapter 2 of the textbook, a linear SVM (hinge loss plus L2 on the
   weights) on its 6-point data set `data/svm_toy.csv`, from the textbook's start
   a = 1, b = -2, c = -1; reaches 100% training accuracy.
2. `moons.circ`: a two-layer network (8 tanh units) with the logistic loss, on 300
   points of two interleaved half-moons generated here from a fixed seed;
   reaches at least 95% training accuracy.

    python examples/train.py                  # train both, plot to docs/training.png
    python examples/train.py --plot out.png   # elsewhere
    python examples/train.py --no-plot        # no matplotlib needed

The plot (needs matplotlib: `pip install '.[examples]'`) shows both decision
boundaries with the training points.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

import circuitc

HERE = Path(__file__).resolve().parent
PLOT = HERE.parent / "docs" / "training.png"
DATA = ("x", "y", "label")


def load_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Points (n, 2) and labels (n,) from a `x0,x1,label` file."""
    with path.open(encoding="utf-8", newline="") as f:
        rows = [[float(v) for v in row] for row in list(csv.reader(f))[1:]]
    table = np.array(rows)
    return table[:, :2], table[:, 2]


def two_moons(n: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`n` points on two interleaved half-circles, labels +1 (upper) and -1 (lower)."""
    rng = np.random.default_rng(seed)
    t = rng.uniform(0.0, np.pi, n)
    upper = np.arange(n) < n // 2
    points = np.where(upper[:, None],
                      np.stack([np.cos(t), np.sin(t)], axis=1),
                      np.stack([1.0 - np.cos(t), 0.5 - np.sin(t)], axis=1))
    return points + rng.normal(0.0, noise, (n, 2)), np.where(upper, 1.0, -1.0)


def descend(module, data: dict, params: dict, steps: int, rate: float,
            momentum: float = 0.0) -> dict:
    """Gradient descent (with momentum) on the mean of the module's first output.

    Inputs neither in `data` nor in `params` take their declared defaults.
    """
    n = len(data["label"])
    seeds = {"d_" + out: (1.0 / n if k == 0 else 0.0) for k, out in enumerate(module.OUTPUTS)}
    velocity = dict.fromkeys(params, 0.0)
    for _ in range(steps):
        _, grads = module.backward(**{**module.DEFAULTS, **data, **params}, **seeds)
        for name, g in zip(module.WRT, grads):
            velocity[name] = momentum * velocity[name] - rate * g
            params[name] += velocity[name]
    return params


def score(module, data: dict, params: dict) -> np.ndarray:
    """The `score` output at every point of `data`."""
    values = module.forward(**{**module.DEFAULTS, **data, **params})
    return values[module.OUTPUTS.index("score")]


def accuracy(module, data: dict, params: dict) -> float:
    return float(np.mean(np.sign(score(module, data, params)) == data["label"]))


def train_svm(steps: int = 300):
    """The textbook's linear SVM on its toy data: (module, data, params)."""
    points, labels = load_csv(HERE / "data" / "svm_toy.csv")
    module = circuitc.load(HERE / "svm.circ", target="numpy", wrt=["a", "b", "c"])
    data = {"x": points[:, 0], "y": points[:, 1], "label": labels}
    params = {name: module.DEFAULTS[name] for name in ("a", "b", "c")}
    return module, data, descend(module, data, params, steps, rate=0.1)


def train_moons(n: int = 300, steps: int = 1000, seed: int = 0):
    """A two-layer network on two half-moons: (module, data, params)."""
    points, labels = two_moons(n, noise=0.15, seed=seed)
    data = {"x1": points[:, 0], "x2": points[:, 1], "label": labels}
    inputs = circuitc.load(HERE / "moons.circ").INPUTS  # to name the parameters: all but data
    module = circuitc.load(HERE / "moons.circ", target="numpy",
                           wrt=[name for name in inputs if name not in data])
    rng = np.random.default_rng(seed)
    params = {name: float(rng.normal(0.0, 1.0)) for name in module.WRT}
    return module, data, descend(module, data, params, steps, rate=0.2, momentum=0.9)


def plot(path: Path, models: list[tuple[str, object, dict, dict, tuple[str, str]]]) -> None:
    """Each model's decision boundary (score = 0) and its training points, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(models), figsize=(5 * len(models), 4.2))
    for ax, (title, module, data, params, (xn, yn)) in zip(axes, models, strict=True):
        x, y, labels = data[xn], data[yn], data["label"]
        pad = 0.5
        gx, gy = np.meshgrid(np.linspace(x.min() - pad, x.max() + pad, 300),
                             np.linspace(y.min() - pad, y.max() + pad, 300))
        # One call scores the whole grid: the (300, 300) grid broadcasts against scalars.
        grid = score(module, {xn: gx, yn: gy, "label": 1.0}, params)
        ax.contourf(gx, gy, grid, levels=[-np.inf, 0.0, np.inf], colors=["#f4c7c3", "#c6dbef"])
        ax.contour(gx, gy, grid, levels=[0.0], colors="k", linewidths=1.0)
        for label, color, marker in ((1.0, "#08519c", "o"), (-1.0, "#a50f15", "s")):
            mine = labels == label
            ax.scatter(x[mine], y[mine], c=color, marker=marker, s=18, edgecolors="white",
                       linewidths=0.4, label=f"label {label:+.0f}")
        ax.set_title(f"{title}: {accuracy(module, data, params):.0%} training accuracy")
        ax.set_xlabel(xn)
        ax.set_ylabel(yn)
        ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plot", type=Path, default=PLOT, help=f"PNG to write (default: {PLOT})")
    parser.add_argument("--no-plot", action="store_true", help="Train and report only.")
    args = parser.parse_args()

    svm = train_svm()
    print(f"svm.circ: training accuracy {accuracy(*svm):.1%} on {len(svm[1]['label'])} points; "
          + ", ".join(f"{k} = {v:.4f}" for k, v in svm[2].items()))
    moons = train_moons()
    print(f"moons.circ: training accuracy {accuracy(*moons):.1%} on {len(moons[1]['label'])} points")
    if args.no_plot:
        return
    try:
        plot(args.plot, [("svm.circ", *svm, ("x", "y")), ("moons.circ", *moons, ("x1", "x2"))])
    except ImportError:
        print("matplotlib is not installed (pip install '.[examples]'): no plot")
        return
    print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
