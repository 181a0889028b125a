"""Training on data with circuitc's numpy target.

Each model is a `.circ` file whose inputs are data (a point and its label) and
parameters. Compiled with `--target numpy` and `wrt` = the parameters, one call of
`backward` on the whole data set gives every parameter's gradient summed over the
points: a bus input takes an array whose leading axes are the batch and whose
trailing axes are the bus (`x` of shape (100, 2) for `input x[2]`), and a
parameter's gradient is summed to the parameter's own shape. With the seed
`d_loss = 1/n` that is the gradient of the mean loss, and gradient descent needs
three lines of NumPy.

1. `svm.circ`: chapter 2 of the textbook, a linear SVM (hinge loss plus L2 on the
   weights) on its 6-point data set `data/svm_toy.csv`, from the textbook's start
   a = 1, b = -2, c = -1; reaches 100% training accuracy.
2. `moons.circ`: a two-layer network (8 tanh units) with the logistic loss, on 300
   points of two interleaved half-moons generated here from a fixed seed;
   reaches at least 95% training accuracy.
3. `mlp.circ`: micrograd's demo, its 2-16-16-1 ReLU network and max-margin loss,
   on its 100 points of scikit-learn's `make_moons(100, noise=0.1)` (generated
   here as scikit-learn does, without it) with its schedule: 100 steps of
   full-batch gradient descent at rate 1.0 - 0.9*k/100, L2 regularization 1e-4
   on every parameter, weights drawn as micrograd draws them (Python's `random`,
   seed 1337) and biases 0; reaches 100% training accuracy.
4. `spiral.circ`: a softmax classifier, 100 ReLU units and the cross-entropy
   loss `logsumexp(s[c] for c) - sum(t[c] * s[c] for c)` with a one-hot label
   `t`, on CS231n's three-armed spiral (3 x 100 points); 200 steps of gradient
   descent with momentum reach at least 90% training accuracy.

    python examples/train.py                  # train all four, plot to docs/training.png
    python examples/train.py mlp spiral       # only these
    python examples/train.py --plot out.png   # elsewhere
    python examples/train.py --no-plot        # no matplotlib needed

It needs NumPy (`pip install '.[numpy]'`), which circuitc itself does not install.
The plot also needs matplotlib (`pip install '.[examples]'` installs both) and shows
each decision boundary with the training points.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

try:
    import numpy as np
except ModuleNotFoundError as e:  # circuitc does not depend on NumPy; the numpy target does
    if e.name != "numpy":
        raise
    sys.exit("examples/train.py needs NumPy, which circuitc itself does not install: "
             "pip install numpy (in a clone of circuitc: pip install '.[numpy]')")

import circuitc

HERE = Path(__file__).resolve().parent
PLOT = HERE.parent / "docs" / "training.png"


@dataclass
class Model:
    """A `.circ` loss compiled for training on `points` (n, 2) with `labels` (n,).

    `feed(points, labels)` gives the circuit's data inputs for any array of points
    (..., 2); `classify(outputs)` the predicted label at each point from the
    outputs by name.
    """

    name: str
    module: object
    points: np.ndarray
    labels: np.ndarray
    params: dict
    feed: Callable[[np.ndarray, np.ndarray], dict]
    classify: Callable[[dict], np.ndarray]


def outputs(model: Model, points: np.ndarray, labels: np.ndarray) -> dict:
    """The module's outputs by name at `points`."""
    module = model.module
    value = module.forward(**{**module.DEFAULTS, **model.feed(points, labels), **model.params})
    return dict(zip(module.OUTPUTS, circuitc.api.outputs_of(module, value)))


def accuracy(model: Model) -> float:
    return float(np.mean(model.classify(outputs(model, model.points, model.labels)) == model.labels))


def descend(model: Model, steps: int, rate: float | Callable[[int], float], momentum: float = 0.0,
            l2: dict[str, float] | None = None, every: int = 0) -> Model:
    """Gradient descent (with momentum) on the mean of the module's first output
    plus `l2[p] * sum(p**2)` for each parameter `p` named in `l2`.

    `rate` is a number or a function of the step (0, 1, ...). With `every`, prints
    the loss and the accuracy at every `every`-th step and the last, before that step's
    update, as micrograd's demo does.
    """
    module, params, l2 = model.module, model.params, l2 or {}
    n = len(model.labels)
    data = {**module.DEFAULTS, **model.feed(model.points, model.labels)}
    seeds = {"d_" + out: (1.0 / n if k == 0 else 0.0) for k, out in enumerate(module.OUTPUTS)}
    velocity = dict.fromkeys(params, 0.0)
    for k in range(steps):
        value, grads = module.backward(**{**data, **params}, **seeds)
        if every and (k % every == 0 or k == steps - 1):
            values = dict(zip(module.OUTPUTS, circuitc.api.outputs_of(module, value)))
            loss = np.mean(values[module.OUTPUTS[0]])
            loss += sum(c * np.sum(np.square(params[p])) for p, c in l2.items())
            right = np.mean(model.classify(values) == model.labels)
            print(f"  step {k} loss {float(loss)}, accuracy {float(right):.1%}")
        step = rate(k) if callable(rate) else rate
        for name, g in zip(module.WRT, grads):
            if name in l2:
                g = g + 2.0 * l2[name] * params[name]
            velocity[name] = momentum * velocity[name] - step * g
            params[name] = params[name] + velocity[name]
    return model


# -- data -------------------------------------------------------------------------------------


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


def make_moons(n: int, noise: float, rng: np.random.RandomState) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's `make_moons(n, noise=noise, random_state=rng)`: `n` points evenly
    spaced on two half-circles, shuffled, plus Gaussian noise; labels 0 (upper) and 1."""
    upper, lower = n // 2, n - n // 2
    t_upper, t_lower = np.linspace(0, np.pi, upper), np.linspace(0, np.pi, lower)
    points = np.vstack([np.append(np.cos(t_upper), 1 - np.cos(t_lower)),
                        np.append(np.sin(t_upper), 1 - np.sin(t_lower) - 0.5)]).T
    labels = np.hstack([np.zeros(upper), np.ones(lower)])
    order = np.arange(n)
    rng.shuffle(order)
    return points[order] + rng.normal(scale=noise, size=(n, 2)), labels[order]


def spiral(per_class: int, classes: int, rng: np.random.RandomState
           ) -> tuple[np.ndarray, np.ndarray]:
    """CS231n's spiral: `classes` arms of `per_class` points, labels 0, 1, ..."""
    points, labels = np.zeros((per_class * classes, 2)), np.zeros(per_class * classes, dtype=int)
    for j in range(classes):
        arm = slice(per_class * j, per_class * (j + 1))
        r = np.linspace(0.0, 1, per_class)
        t = np.linspace(j * 4, (j + 1) * 4, per_class) + rng.randn(per_class) * 0.2
        points[arm] = np.c_[r * np.sin(t), r * np.cos(t)]
        labels[arm] = j
    return points, labels


# -- the models -------------------------------------------------------------------------------


def sign_of_score(values: dict) -> np.ndarray:
    return np.sign(values["score"])


def train_svm(steps: int = 300) -> Model:
    """The textbook's linear SVM on its toy data, from the textbook's start."""
    points, labels = load_csv(HERE / "data" / "svm_toy.csv")
    module = circuitc.load(HERE / "svm.circ", target="numpy", wrt=["a", "b", "c"])
    model = Model("svm.circ", module, points, labels,
                  {name: module.DEFAULTS[name] for name in ("a", "b", "c")},
                  lambda p, labels: {"x": p[..., 0], "y": p[..., 1], "label": labels},
                  sign_of_score)
    return descend(model, steps, rate=0.1)


def train_moons(n: int = 300, steps: int = 1000, seed: int = 0) -> Model:
    """A two-layer network on two half-moons."""
    points, labels = two_moons(n, noise=0.15, seed=seed)
    module = circuitc.load(HERE / "moons.circ", target="numpy", wrt=["W", "b", "v", "c"])
    # Drawn unit by unit (two weights, a bias, an output weight), then the output bias.
    draws = np.random.default_rng(seed).normal(0.0, 1.0, 4 * 8 + 1)
    units = draws[:-1].reshape(8, 4)
    params = {"W": units[:, :2], "b": units[:, 2], "v": units[:, 3], "c": float(draws[-1])}
    model = Model("moons.circ", module, points, labels, params,
                  lambda p, labels: {"x": p, "label": labels}, sign_of_score)
    return descend(model, steps, rate=0.2, momentum=0.9)


def micrograd_layer(inputs: int, outputs: int) -> tuple[np.ndarray, np.ndarray]:
    """micrograd's `Layer(inputs, outputs)`: weights uniform(-1, 1) from Python's `random`,
    neuron by neuron, and biases 0."""
    weights = [[random.uniform(-1, 1) for _ in range(inputs)] for _ in range(outputs)]
    return np.array(weights), np.zeros(outputs)


def train_mlp(steps: int = 100, every: int = 0) -> Model:
    """micrograd's demo: its network, data, loss and schedule."""
    points, labels = make_moons(100, noise=0.1, rng=np.random.RandomState(1337))
    labels = 2 * labels - 1  # -1 and +1, as the max-margin loss wants
    random.seed(1337)
    (w1, b1), (w2, b2), (w3, c) = (micrograd_layer(*shape) for shape in ((2, 16), (16, 16), (16, 1)))
    params = {"W1": w1, "b1": b1, "W2": w2, "b2": b2, "w3": w3[0], "c": float(c[0])}
    module = circuitc.load(HERE / "mlp.circ", target="numpy", wrt=list(params))
    model = Model("mlp.circ", module, points, labels, params,
                  lambda p, labels: {"x": p, "y": labels}, sign_of_score)
    return descend(model, steps, rate=lambda k: 1.0 - 0.9 * k / 100,
                   l2=dict.fromkeys(params, 1e-4), every=every)


def train_spiral(steps: int = 200, every: int = 0) -> Model:
    """A two-layer softmax classifier on CS231n's spiral, initialised as CS231n does
    (weights 0.01 * normal, biases 0), L2 regularization 1e-3 / 2 on the weights."""
    rng = np.random.RandomState(0)
    points, labels = spiral(100, 3, rng)
    hidden = 100
    params = {"W1": 0.01 * rng.randn(2, hidden).T, "b1": np.zeros(hidden),
              "W2": 0.01 * rng.randn(hidden, 3).T, "b2": np.zeros(3)}
    module = circuitc.load(HERE / "spiral.circ", target="numpy", wrt=list(params),
                           sizes={"n": hidden})
    model = Model("spiral.circ", module, points, labels, params,
                  lambda p, labels: {"x": p, "t": np.eye(3)[labels]},
                  lambda values: np.argmax(values["s"], axis=-1))
    return descend(model, steps, rate=1.0, momentum=0.9, l2={"W1": 5e-4, "W2": 5e-4},
                   every=every)


# -- the plot ---------------------------------------------------------------------------------

FILLS = ["#f4c7c3", "#c6dbef", "#c7e9c0"]
COLORS = [("#a50f15", "s"), ("#08519c", "o"), ("#006d2c", "^")]


def plot(path: Path, models: list[Model]) -> None:
    """Each model's decision regions and its training points, side by side (two rows
    for more than two models)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = 1 if len(models) <= 2 else 2
    cols = -(-len(models) // rows)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 4.2 * rows), squeeze=False)
    for ax in axes.flat[len(models):]:
        ax.set_axis_off()
    for ax, model in zip(axes.flat, models):
        x, y = model.points[:, 0], model.points[:, 1]
        pad = 0.5
        gx, gy = np.meshgrid(np.linspace(x.min() - pad, x.max() + pad, 250),
                             np.linspace(y.min() - pad, y.max() + pad, 250))
        # One call classifies the whole grid: points of shape (250, 250, 2).
        grid = np.stack([gx, gy], axis=-1)
        classes = np.unique(model.labels)
        dummy = np.full(gx.shape, classes[0], dtype=model.labels.dtype)
        region = np.searchsorted(classes, model.classify(outputs(model, grid, dummy)))
        levels = np.arange(len(classes) + 1) - 0.5
        ax.contourf(gx, gy, region, levels=levels, colors=FILLS[:len(classes)])
        ax.contour(gx, gy, region, levels=levels[1:-1], colors="k", linewidths=1.0)
        for k, label in enumerate(classes):
            mine = model.labels == label
            color, marker = COLORS[k]
            ax.scatter(x[mine], y[mine], c=color, marker=marker, s=16, edgecolors="white",
                       linewidths=0.4, label=f"label {label:+g}" if len(classes) == 2 else f"class {label}")
        ax.set_title(f"{model.name}: {accuracy(model):.0%} training accuracy")
        ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


TRAIN = {"svm": train_svm, "moons": train_moons, "mlp": train_mlp, "spiral": train_spiral}
EVERY = {"mlp": 10, "spiral": 20}  # how often the longer runs report their progress


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", metavar="MODEL",
                        help=f"Models to train (default: all): {', '.join(TRAIN)}.")
    parser.add_argument("--plot", type=Path, default=PLOT, help=f"PNG to write (default: {PLOT})")
    parser.add_argument("--no-plot", action="store_true", help="Train and report only.")
    args = parser.parse_args()
    unknown = [name for name in args.models if name not in TRAIN]
    if unknown:
        parser.error(f"unknown model {unknown[0]!r}; the models are {', '.join(TRAIN)}")

    trained = []
    for name in args.models or TRAIN:
        print(f"{name}:")
        every = EVERY.get(name)
        model = TRAIN[name](every=every) if every else TRAIN[name]()
        report = f"{model.name}: training accuracy {accuracy(model):.1%} on {len(model.labels)} points"
        if all(np.ndim(v) == 0 for v in model.params.values()):
            report += "; " + ", ".join(f"{k} = {v:.4f}" for k, v in model.params.items())
        print(report)
        trained.append(model)
    if args.no_plot:
        return
    try:
        plot(args.plot, trained)
    except ImportError:
        print("matplotlib is not installed (pip install '.[examples]'): no plot")
        return
    print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
