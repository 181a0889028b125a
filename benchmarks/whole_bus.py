"""Whole-bus code: Rosenbrock at N = 10,000, a 784-128-10 softmax network over 10,000
points, and compiling a circuit whose bus has 10^6 elements.

    python benchmarks/whole_bus.py                 # all three (a few minutes)
    python benchmarks/whole_bus.py --quick         # fewer rounds
    python benchmarks/whole_bus.py rosenbrock      # some: rosenbrock, softmax, float32, tanh, compile

(micrograd's demo network, the third target of whole-bus code, is `python
benchmarks/buses.py mlp`: circuitc's numpy target against hand-written NumPy.)

1. `rosenbrock`: value and gradient of Rosenbrock's function of 10,000 variables
   (`circuits/rosenbrock.circ`, `-D n=10000`): the numpy target against SciPy's `rosen`
   + `rosen_der`, and the python target (a list) against a hand-written pure-Python loop.
2. `softmax`: one training step of `benchmarks/softmax.circ` (784-128-10, ReLU, softmax
   cross-entropy) over 10,000 synthetic points of MNIST's shape, full batch: forward,
   backward and the update. Against the same network written by hand in NumPy, and
   PyTorch on the CPU where it is installed. All must agree on the loss after a step.
   `float32`: the same step, the module compiled with `dtype="float32"` (and the data and
   weights float32) against the float64 module, in the same rounds; the losses must
   agree to float32's precision.
3. `tanh`: one training step of `benchmarks/tanh.circ` (64-32-10, tanh, softmax
   cross-entropy) over a batch of 64 points: the per-call cost of a small batch, against
   the same network written by hand in NumPy.
4. `compile`: `circuitc.load` of Rosenbrock with n = 10^6 for each target, in a fresh
   process each, and the module's size against n = 10.

Times per call are CPU time (`time.process_time`), ratios taken within a round, as in
`benchmarks/buses.py`, whose `rounds` and `table` this uses. PyTorch uses its own
threads; its CPU time counts all of them.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from buses import rounds, table

HERE = Path(__file__).resolve().parent
ROSENBROCK = HERE.parent / "circuits" / "rosenbrock.circ"
SOFTMAX = HERE / "softmax.circ"


# -- 1. Rosenbrock ----------------------------------------------------------------------

def hand_loop(x: list) -> tuple[float, list]:
    """Rosenbrock's value and gradient in plain Python, as one would write it."""
    n = len(x)
    f, g = 0.0, [0.0] * n
    for i in range(n - 1):
        a = x[i + 1] - x[i] * x[i]
        b = 1.0 - x[i]
        f += 100.0 * a * a + b * b
        g[i] += -400.0 * a * x[i] - 2.0 * b
        g[i + 1] += 200.0 * a
    return f, g


def rosenbrock(repeat: int, n: int = 10_000) -> None:
    from scipy.optimize import rosen, rosen_der

    import circuitc

    x = np.random.default_rng(3).uniform(-2, 2, n)
    values = x.tolist()
    fast = circuitc.load(ROSENBROCK, "numpy", sizes={"n": n})
    plain = circuitc.load(ROSENBROCK, "python", sizes={"n": n})
    contenders = {
        "circuitc numpy target": (lambda: fast.backward(x), lambda r: (r[0], r[1][0])),
        "scipy.optimize rosen + rosen_der": (lambda: (rosen(x), rosen_der(x)), lambda r: r),
        "circuitc python target": (lambda: plain.backward(values), lambda r: (r[0], r[1][0])),
        "hand-written Python loop": (lambda: hand_loop(values), lambda r: r),
    }
    want_f, want_g = rosen(x), rosen_der(x)
    for name, (fn, unpack) in contenders.items():
        f, g = unpack(fn())
        np.testing.assert_allclose(f, want_f, rtol=1e-12, err_msg=name)
        np.testing.assert_allclose(g, want_g, rtol=1e-9, atol=1e-9, err_msg=name)
    print(f"### Rosenbrock, {n:,} variables: value and gradient per call\n")
    calls = {name: fn for name, (fn, _) in contenders.items()}
    numpy_times = rounds({k: calls[k] for k in list(calls)[:2]}, repeat)
    table(numpy_times, ["circuitc numpy target"], unit="µs")
    python_times = rounds({k: calls[k] for k in list(calls)[2:]}, repeat)
    table(python_times, ["circuitc python target"], unit="ms")


# -- 2. a softmax network of MNIST's shape ---------------------------------------------

RATE = 0.1


def softmax_data(n: int = 10_000, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(0.0, 1.0, (n, 784))
    T = np.eye(10)[rng.integers(0, 10, n)]
    params = [rng.normal(0, 0.05, (128, 784)), np.zeros(128), rng.normal(0, 0.1, (10, 128)),
              np.zeros(10)]
    return X, T, params


def circuitc_step(X, T, params, dtype: str = "float64"):
    import circuitc

    module = circuitc.load(SOFTMAX, "numpy", wrt=["W1", "b1", "W2", "b2"], dtype=dtype)
    X, T = X.astype(dtype), T.astype(dtype)  # the data set, kept as the module computes
    params = [p.astype(dtype) for p in params]

    def step():
        loss, grads = module.backward(X, T, *params, 1.0 / len(X))
        for p, g in zip(params, grads):
            p -= RATE * g
        return float(np.mean(loss))
    return step


def numpy_step(X, T, params):
    params = [p.copy() for p in params]
    n = len(X)

    def step():
        W1, b1, W2, b2 = params
        z1 = X @ W1.T + b1
        a = np.maximum(z1, 0.0)
        s = a @ W2.T + b2
        m = s.max(axis=1, keepdims=True)
        e = np.exp(s - m)
        total = e.sum(axis=1)
        loss = m[:, 0] + np.log(total) - (T * s).sum(axis=1)
        d_s = (e / total[:, None] - T) / n
        d_z1 = (d_s @ W2) * (z1 > 0)
        grads = (d_z1.T @ X, d_z1.sum(axis=0), d_s.T @ a, d_s.sum(axis=0))
        for p, g in zip(params, grads):
            p -= RATE * g
        return float(loss.mean())
    return step


def torch_step(X, T, params):
    import torch

    X, T = torch.from_numpy(X), torch.from_numpy(T)
    weights = [torch.from_numpy(p.copy()).requires_grad_() for p in params]

    def step():
        W1, b1, W2, b2 = weights
        s = torch.relu(X @ W1.T + b1) @ W2.T + b2
        loss = (torch.logsumexp(s, dim=1) - (T * s).sum(dim=1)).mean()
        for w in weights:
            w.grad = None
        loss.backward()
        with torch.no_grad():
            for w in weights:
                w -= RATE * w.grad
        return float(loss)
    return step


def softmax(repeat: int) -> None:
    X, T, params = softmax_data()
    contenders = {"circuitc numpy target": circuitc_step(X, T, params),
                  "hand-written NumPy": numpy_step(X, T, params)}
    try:
        contenders["PyTorch (CPU)"] = torch_step(X, T, params)
    except ImportError:
        print("(PyTorch is not installed)\n")
    losses = {name: [fn() for _ in range(2)] for name, fn in contenders.items()}
    first = next(iter(losses.values()))
    for name, got in losses.items():
        np.testing.assert_allclose(got, first, rtol=1e-9, err_msg=name)
    print("### A 784-128-10 softmax network: one training step over 10,000 points\n")
    print(f"Loss after two steps {first[1]:.6f} for every contender.\n")
    table(rounds(contenders, repeat, least=0.3), ["circuitc numpy target"])


def float32(repeat: int) -> None:
    """The softmax network's training step, its float32 module against its float64 one
    (data and weights of each module's type, converted once before the rounds)."""
    X, T, params = softmax_data()
    contenders = {"float64 module": circuitc_step(X, T, params),
                  "float32 module": circuitc_step(X, T, params, "float32")}
    losses = {name: [fn() for _ in range(2)] for name, fn in contenders.items()}
    # float32 rounds each of the 10,000 losses to about 6e-8 of itself; their mean agrees
    # with float64's to a few float32 epsilons.
    np.testing.assert_allclose(losses["float32 module"], losses["float64 module"], rtol=1e-5)
    print("### The softmax network in float32: one training step over 10,000 points\n")
    print(f"Loss after two steps {losses['float64 module'][1]:.6f} (float64), "
          f"{losses['float32 module'][1]:.6f} (float32).\n")
    table(rounds(contenders, repeat, least=0.3), ["float64 module"])


# -- 3. a small batch -----------------------------------------------------------------------

TANH = HERE / "tanh.circ"


def tanh_data(n: int = 64, seed: int = 1):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1.0, 1.0, (n, 64))
    T = np.eye(10)[rng.integers(0, 10, n)]
    params = [rng.normal(0, 0.2, (32, 64)), np.zeros(32), rng.normal(0, 0.3, (10, 32)), np.zeros(10)]
    return X, T, params


def tanh_circuitc_step(X, T, params):
    import circuitc

    module = circuitc.load(TANH, "numpy", wrt=["W1", "b1", "W2", "b2"])
    params = [p.copy() for p in params]
    seed = 1.0 / len(X)

    def step():
        loss, grads = module.backward(X, T, *params, seed)
        for p, g in zip(params, grads):
            p -= RATE * g
        return float(np.mean(loss))
    return step


def tanh_numpy_step(X, T, params):
    params = [p.copy() for p in params]
    n = len(X)

    def step():
        W1, b1, W2, b2 = params
        a = np.tanh(X @ W1.T + b1)
        s = a @ W2.T + b2
        m = s.max(axis=1, keepdims=True)
        e = np.exp(s - m)
        total = e.sum(axis=1)
        loss = m[:, 0] + np.log(total) - (T * s).sum(axis=1)
        d_s = (e / total[:, None] - T) / n
        d_z1 = (d_s @ W2) * (1.0 - a * a)
        grads = (d_z1.T @ X, d_z1.sum(axis=0), d_s.T @ a, d_s.sum(axis=0))
        for p, g in zip(params, grads):
            p -= RATE * g
        return float(loss.mean())
    return step


def tanh(repeat: int) -> None:
    X, T, params = tanh_data()
    contenders = {"circuitc numpy target": tanh_circuitc_step(X, T, params),
                  "hand-written NumPy": tanh_numpy_step(X, T, params)}
    losses = {name: [fn() for _ in range(3)] for name, fn in contenders.items()}
    first = next(iter(losses.values()))
    for name, got in losses.items():
        np.testing.assert_allclose(got, first, rtol=1e-12, err_msg=name)
    print("### A 64-32-10 tanh network, softmax cross-entropy: one training step, 64 points\n")
    print(f"Loss after three steps {first[2]:.6f} for every contender.\n")
    table(rounds(contenders, repeat), ["circuitc numpy target"], "µs")


# -- 4. compile and load 10^6 elements -----------------------------------------------------

def _load_once(target: str, n: int) -> None:
    """The CPU seconds of importing circuitc and loading Rosenbrock with `n` variables
    (on a busy machine, wall time also counts waiting for a core)."""
    start = time.process_time()
    import circuitc

    circuitc.load(ROSENBROCK, target, sizes={"n": n})
    print(time.process_time() - start)


def compile_time(runs: int) -> None:
    import circuitc

    print("### Compile and load Rosenbrock with n = 10^6, a fresh process each\n")
    print("Cache off. Module sizes at n = 1,000 (the python target writes buses of up to 256")
    print("elements out, element by element) and n = 10^6.\n")
    print("| target | CPU seconds (import of circuitc included) | module bytes, n = 1,000 | "
          "n = 10^6 |")
    print("|---|---|---|---|")
    env = {**os.environ, "CIRCUITC_CACHE": "0"}
    for target in ("numpy", "python"):
        seconds = [float(subprocess.run([sys.executable, __file__, "--load-once", target,
                                         str(10**6)], check=True, capture_output=True,
                                        text=True, env=env).stdout) for _ in range(runs)]
        sizes = [len(circuitc.compile_file(ROSENBROCK, target, sizes={"n": n}))
                 for n in (1000, 10**6)]
        print(f"| {target} | {min(seconds):.2f} - {max(seconds):.2f} | {sizes[0]:,} | "
              f"{sizes[1]:,} |")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("parts", nargs="*", metavar="PART",
                        help="rosenbrock, softmax, float32, tanh or compile (default: all)")
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    parser.add_argument("--load-once", nargs=2, metavar=("TARGET", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load_once:
        return _load_once(args.load_once[0], int(args.load_once[1]))
    parts = args.parts or ["rosenbrock", "softmax", "float32", "tanh", "compile"]
    unknown = set(parts) - {"rosenbrock", "softmax", "float32", "tanh", "compile"}
    if unknown:
        parser.error(f"unknown part: {', '.join(sorted(unknown))}")
    from run import machine

    machine(("numpy", "scipy", "torch"))
    if "rosenbrock" in parts:
        rosenbrock(repeat=5 if args.quick else 15)
    if "softmax" in parts:
        softmax(repeat=3 if args.quick else 7)
    if "float32" in parts:
        float32(repeat=3 if args.quick else 7)
    if "tanh" in parts:
        tanh(repeat=5 if args.quick else 15)
    if "compile" in parts:
        compile_time(runs=1 if args.quick else 3)


if __name__ == "__main__":
    main()
