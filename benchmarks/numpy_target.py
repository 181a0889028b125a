"""Value and gradient of `circuits/neuron.circ` over 10^6 points: the numpy target
against hand-written NumPy doing the same work, and against JAX's
`jit(value_and_grad)` on the CPU when JAX is installed (`pip install '.[bench]'`).

The weights `a, b, c` are scalars and the data `x, y` are arrays of N points, so
the gradients of the weights are sums over the batch and those of the data are
arrays. Every contender computes in float64 and its results are checked against
the generated module's before anything is timed. Each of `--repeat`
rounds runs every contender once. The ratios are the generated code's time over
each contender's (below 1: the generated code is faster): of the best times, and
the median over rounds of the ratio within a round, which a busy machine disturbs
least.

    python benchmarks/numpy_target.py [--n 1000000] [--repeat 20]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import circuitc

NEURON = Path(__file__).resolve().parent.parent / "circuits" / "neuron.circ"


def hand_written(a, b, c, x, y):
    """What one would write by hand: the same stable sigmoid, gradients summed for the weights."""
    s = a * x + b * y + c
    z = np.exp(-np.abs(s))
    f = np.where(s >= 0, 1.0, z) / (1.0 + z)
    ds = f * (1.0 - f)
    return f, (np.sum(ds * x), np.sum(ds * y), np.sum(ds), ds * a, ds * b)


def hand_tuned(a, b, c, x, y):
    """Hand-written with the reductions as dot products (no temporary for ds*x)."""
    s = a * x + b * y + c
    z = np.exp(-np.abs(s))
    f = np.where(s >= 0, 1.0, z) / (1.0 + z)
    ds = f * (1.0 - f)
    return f, (ds @ x, ds @ y, np.sum(ds), ds * a, ds * b)


def jax_contender():
    """`jit(value_and_grad)` of the neuron's summed output, the per-point values as aux."""
    try:
        import jax
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy

    def total(a, b, c, x, y):
        f = jax.nn.sigmoid(a * x + b * y + c)
        return jnp.sum(f), f

    step = jax.jit(jax.value_and_grad(total, argnums=(0, 1, 2, 3, 4), has_aux=True))

    def run(a, b, c, x, y):
        (_, f), grads = step(a, b, c, x, y)
        jax.block_until_ready((f, grads))
        return f, grads

    return run


def times(contenders: dict, args, repeat: int) -> dict[str, np.ndarray]:
    """Each contender's time in each round; a round runs every contender once, so a
    change of load on the machine hits all of them alike."""
    result = {name: np.empty(repeat) for name in contenders}
    for r in range(repeat):
        for name, fn in contenders.items():
            start = time.perf_counter()
            fn(*args)
            result[name][r] = time.perf_counter() - start
    return result


def check(reference, result, name: str) -> None:
    value, grads = reference
    other_value, other_grads = result
    np.testing.assert_allclose(np.asarray(other_value), value, rtol=1e-12, err_msg=name)
    for g, h in zip(grads, other_grads, strict=True):
        np.testing.assert_allclose(np.asarray(h), g, rtol=1e-9, atol=1e-12, err_msg=name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="points per batch")
    parser.add_argument("--repeat", type=int, default=20, help="timed runs per contender")
    args = parser.parse_args()

    module = circuitc.load(NEURON, target="numpy")
    rng = np.random.default_rng(0)
    point = (1.0, 2.0, -3.0, rng.normal(size=args.n), rng.normal(size=args.n))
    contenders = {"circuitc numpy target": module.backward,
                  "hand-written NumPy": hand_written,
                  "hand-written NumPy, dot products": hand_tuned}
    jax_run = jax_contender()
    if jax_run is not None:
        contenders["JAX jit(value_and_grad), CPU"] = jax_run

    reference = module.backward(*point)
    for name, fn in contenders.items():
        check(reference, fn(*point), name)  # also warms up (and compiles, for JAX)
    timed = times(contenders, point, args.repeat)
    ours = timed["circuitc numpy target"]
    print(f"neuron.circ, value and gradient, {args.n:,} points, {args.repeat} rounds")
    print(f"  {'':34} {'best':>8}      circuitc/this: best/best  median of rounds")
    for name, seconds in timed.items():
        print(f"  {name:34} {seconds.min() * 1e3:8.2f} ms   {ours.min() / seconds.min():14.2f}x"
              f"  {np.median(ours / seconds):16.2f}x")
    if jax_run is None:
        print("  (JAX is not installed: pip install '.[bench]')")


if __name__ == "__main__":
    main()
