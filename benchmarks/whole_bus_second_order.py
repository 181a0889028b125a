"""Second order on whole-bus code: module size and compile time, Hessian-vector products,
sparse Hessians, and a Newton solve, against JAX and CasADi in the same run.

    python benchmarks/whole_bus_second_order.py            # everything (several minutes)
    python benchmarks/whole_bus_second_order.py --quick    # fewer rounds
    python benchmarks/whole_bus_second_order.py hvp chain  # some: size, hvp, sparse, chain

1. `size`: `circuits/rosenbrock.circ` compiled with `hessian=True, jvp=True` for each
   target at n = 10 and n = 10^6 (module sizes), and `circuitc.load` of it at n = 10^6
   in a fresh process with the cache off (CPU seconds of the process: Python's start,
   the imports and the compile).
2. `hvp`: Rosenbrock's Hessian-vector product at N = 10^4 and 10^6, the numpy target's
   `hvp` against JAX `jit` of `jvp(grad(f))` and against the module's own `backward`.
3. `sparse`: Rosenbrock's sparse Hessian (the values at the pattern's places) at N = 1,000
   against a CasADi SX `Function` returning its sparse Hessian, and at N = 10^6 against
   ten `hvp`s.
4. `chain`: a hanging chain of 10^4 springs (`benchmarks/chain.circ`, 19,998 variables:
   ends 10 apart, springs 5% longer than the span shared out, stiffness n and weight
   1/n per node), 20 iterations of SciPy's Newton-CG from the same start (a parabola),
   with `circuitc.objective`'s `hessp` against JAX's `jit` of `fun`, `grad` and
   `jvp(grad)`: total time, and the largest difference between the two runs' iterates.
   (Its Hessian's condition grows as n^2, so each Newton step takes hundreds of CG
   iterations: a full solve takes minutes either way, and 20 steps compare the same
   work.)

Times per call are CPU time (`time.process_time`), ratios taken within a round
(`benchmarks/buses.py`'s `rounds`). JAX runs on the CPU with double precision.
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
CHAIN = HERE / "chain.circ"
FIXED = ["ax", "ay", "bx", "by", "k", "rest", "g"]


def _jax():
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import jax

    jax.config.update("jax_enable_x64", True)
    return jax, jax.numpy


def _rosen(jnp):
    def f(x):
        return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)
    return f


# -- 1. module size and compile time ---------------------------------------------------

def _load_once(target: str, n: int) -> None:
    start = time.process_time()
    import circuitc

    circuitc.load(ROSENBROCK, target, sizes={"n": n}, hessian=True, jvp=True)
    print(time.process_time() - start)


def size(runs: int) -> None:
    import circuitc

    print("### Rosenbrock with hessian=True, jvp=True: module size and compile + load\n")
    print("| target | module at n = 10 | at n = 10^6 | growth | compile + load at 10^6, "
          "fresh process (CPU s, cache off) |")
    print("|---|---|---|---|---|")
    env = {**os.environ, "CIRCUITC_CACHE": "0"}
    for target in ("numpy", "python"):
        small, large = (len(circuitc.compile_file(ROSENBROCK, target, sizes={"n": n}, hessian=True,
                                                  jvp=True).encode()) for n in (10, 10**6))
        times = []
        for _ in range(runs):
            start = os.times()
            subprocess.run([sys.executable, __file__, "--load-once", target], check=True,
                           env=env, capture_output=True)
            end = os.times()
            times.append(end.children_user + end.children_system
                         - start.children_user - start.children_system)
        print(f"| {target} | {small:,} B | {large:,} B | {large / small - 1:+.1%} | "
              f"{min(times):.2f} s (of {runs}: {', '.join(f'{t:.2f}' for t in times)}) |")
    print()


# -- 2. Hessian-vector products -------------------------------------------------------

def hvp(repeat: int) -> None:
    import circuitc

    jax, jnp = _jax()
    f = _rosen(jnp)
    jax_hvp = jax.jit(lambda x, v: jax.jvp(jax.grad(f), (x,), (v,))[1])
    for n in (10**4, 10**6):
        module = circuitc.load(ROSENBROCK, "numpy", sizes={"n": n}, hessian=True)
        rng = np.random.default_rng(1)
        x, v = rng.uniform(-2, 2, n), rng.normal(size=n)
        jx, jv = jnp.asarray(x), jnp.asarray(v)
        np.testing.assert_allclose(module.hvp(x, v)[2][0], np.asarray(jax_hvp(jx, jv)),
                                   rtol=1e-10, atol=1e-8)
        np.testing.assert_allclose(hand_hvp(x, v), np.asarray(jax_hvp(jx, jv)), rtol=1e-10,
                                   atol=1e-8)
        times = rounds(_hvp_contenders(module, jax_hvp, x, v, jx, jv), repeat)
        print(f"### Rosenbrock N = {n:,}: one Hessian-vector product\n")
        table(times, ["circuitc numpy hvp"], "ms")


def hand_hvp(x, v):
    """Rosenbrock's Hessian-vector product written by hand in NumPy, in as few array
    operations as we could: the floor of any NumPy code for it."""
    a, b, va, vb = x[:-1], x[1:], v[:-1], v[1:]
    r = b - a * a
    hv = np.zeros_like(x)
    hv[:-1] = (1200.0 * a * a - 400.0 * b + 2.0) * va - 400.0 * a * vb
    hv[1:] += 200.0 * vb - 400.0 * a * va
    del r
    return hv


def _hvp_contenders(module, jax_hvp, x, v, jx, jv) -> dict:
    return {"circuitc numpy hvp": lambda: module.hvp(x, v),
            "JAX jit jvp(grad(f))": lambda: jax_hvp(jx, jv).block_until_ready(),
            "hand-written NumPy hvp": lambda: hand_hvp(x, v),
            "circuitc numpy backward": lambda: module.backward(x)}


# -- 3. sparse Hessians ------------------------------------------------------------------

def sparse(repeat: int) -> None:
    import casadi

    import circuitc

    n = 1000
    module = circuitc.load(ROSENBROCK, "numpy", sizes={"n": n}, hessian=True)
    x = np.random.default_rng(2).uniform(-2, 2, n)
    s = casadi.SX.sym("x", n)
    objective = casadi.sum1(100 * (s[1:] - s[:-1] ** 2) ** 2 + (1 - s[:-1]) ** 2)
    hess = casadi.Function("H", [s], [casadi.hessian(objective, s)[0]])
    places = module.HESSIAN_PATTERN
    dense = np.asarray(casadi.DM(hess(x)).full())
    np.testing.assert_allclose(module.sparse_hessian(x)[2], dense[places[:, 0], places[:, 1]],
                               rtol=1e-13)
    times = rounds({"circuitc sparse_hessian": lambda: module.sparse_hessian(x),
                    "CasADi SX Function (sparse Hessian)": lambda: hess(x)}, repeat)
    print(f"### Rosenbrock N = {n:,}: the sparse Hessian ({len(places):,} places)\n")
    table(times, ["circuitc sparse_hessian"], "µs")
    n = 10**6
    module = circuitc.load(ROSENBROCK, "numpy", sizes={"n": n}, hessian=True)
    x, v = np.random.default_rng(3).uniform(-2, 2, n), np.ones(n)
    module.sparse_hessian(x)  # the pattern and its colouring, listed once
    times = rounds({"circuitc sparse_hessian": lambda: module.sparse_hessian(x),
                    "ten circuitc hvp": lambda: [module.hvp(x, v) for _ in range(10)]},
                   max(3, repeat // 3))
    print(f"### Rosenbrock N = {n:,}: the sparse Hessian against ten Hessian-vector products\n")
    table(times, ["circuitc sparse_hessian"], "ms")


# -- 4. a Newton solve -------------------------------------------------------------------------

def chain_start(springs: int) -> dict:
    """The start (a parabola) and the constants of the chain of `springs` springs."""
    t = np.linspace(0.0, 1.0, springs + 1)[1:-1]
    return {"x": 10.0 * t, "y": -4.0 * t * (1.0 - t), "k": float(springs),
            "rest": 1.05 * 10.0 / springs, "g": 1.0 / springs}


def jax_chain(springs: int):
    """fun, jac and hessp of `chain.circ`'s energy, in JAX, over the vector (x, y)."""
    jax, jnp = _jax()
    m = springs - 1
    constants = chain_start(springs)
    k, rest, g = constants["k"], constants["rest"], constants["g"]

    def energy(z):
        x, y = z[:m], z[m:]
        s = jnp.sqrt((x[1:] - x[:-1]) ** 2 + (y[1:] - y[:-1]) ** 2)
        first = jnp.sqrt(x[0] ** 2 + y[0] ** 2)
        last = jnp.sqrt((10.0 - x[-1]) ** 2 + y[-1] ** 2)
        stretch = jnp.sum((s - rest) ** 2) + (first - rest) ** 2 + (last - rest) ** 2
        return k / 2.0 * stretch + g * jnp.sum(y)
    fun, jac = jax.jit(energy), jax.jit(jax.grad(energy))
    hvp = jax.jit(lambda z, p: jax.jvp(jax.grad(energy), (z,), (p,))[1])
    return {"fun": lambda z: float(fun(z)), "jac": lambda z: np.asarray(jac(z)),
            "hessp": lambda z, p: np.asarray(hvp(z, p))}


def chain(runs: int, springs: int = 10_000) -> None:
    from scipy.optimize import minimize

    import circuitc

    module = circuitc.load(CHAIN, "numpy", sizes={"n": springs}, hessian=True, fix=FIXED)
    start = chain_start(springs)
    ours = circuitc.objective(module, at=start, hessian="hvp")
    theirs = {**jax_chain(springs), "x0": ours["x0"]}
    moved = {**theirs, "x0": np.nextafter(ours["x0"], np.inf)}  # one ulp up

    def solve(problem):
        path = []
        begin = time.process_time()
        result = minimize(**problem, method="Newton-CG", callback=lambda z: path.append(z.copy()),
                          options={"xtol": 1e-10, "maxiter": 20})
        return time.process_time() - begin, result, path
    solve(theirs)  # JAX compiles here, once
    contenders = {"circuitc objective (numpy hvp)": ours, "JAX jit": theirs}
    times = {name: [] for name in contenders}
    for _ in range(runs):  # interleaved
        for name, problem in contenders.items():
            times[name].append(solve(problem)[0])
    _, a, path_a = solve(ours)
    _, b, path_b = solve(theirs)
    _, _, path_c = solve(moved)
    print(f"### A hanging chain of {springs:,} springs ({2 * (springs - 1):,} variables): "
          "20 iterations of SciPy's Newton-CG\n")
    print("| contender | CPU s per solve (best, median of runs) | iterations | "
          "Hessian-vector products | energy |")
    print("|---|---|---|---|---|")
    for name, result in (("circuitc objective (numpy hvp)", a), ("JAX jit", b)):
        t = np.array(times[name])
        print(f"| {name} | {t.min():.3f}, {np.median(t):.3f} | {result.nit} | {result.nhev} | "
              f"{result.fun:.15g} |")
    ratio = np.array(times["circuitc objective (numpy hvp)"]) / np.array(times["JAX jit"])
    best = min(times["circuitc objective (numpy hvp)"]) / min(times["JAX jit"])
    print(f"\ncircuitc / JAX: best {best:.3g}x, median of paired runs {np.median(ratio):.3g}x "
          f"({ratio.min():.3g}x - {ratio.max():.3g}x over {runs} runs).\n")

    def apart(p, q) -> str:
        return ", ".join(f"{k + 1}: {float(np.abs(x - y).max()):.1e}"
                         for k, (x, y) in enumerate(zip(p, q)) if k in (0, 1, 4, 9, 19))
    print("Iterates apart (largest difference of a coordinate) after iterations 1, 2, 5, 10, 20: "
          f"circuitc against JAX {apart(path_a, path_b)}; JAX against JAX from a start moved by "
          f"one ulp {apart(path_b, path_c)}.\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("parts", nargs="*", default=["size", "hvp", "sparse", "chain"])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--load-once", metavar="TARGET")
    args = parser.parse_args()
    if args.load_once:
        _load_once(args.load_once, 10**6)
        return
    from run import machine

    machine(("numpy", "scipy", "jax", "casadi"))
    repeat = 5 if args.quick else 15
    for part in args.parts:
        {"size": lambda: size(2 if args.quick else 3), "hvp": lambda: hvp(repeat),
         "sparse": lambda: sparse(repeat), "chain": lambda: chain(3 if args.quick else 7)}[part]()


if __name__ == "__main__":
    main()
