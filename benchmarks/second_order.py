"""Second order per call: value, gradient and Hessian of Rosenbrock's function, and
Hessian-vector products against the gradient's cost.

    python benchmarks/second_order.py              # everything, three runs
    python benchmarks/second_order.py --runs 5     # more runs, for the spread

1. Value + gradient + dense Hessian per call of the N-dimensional Rosenbrock function
   (`circuits/rosenbrock.circ`): circuitc's `hessian()` (python target) beside SymPy's
   `lambdify(cse=True)` of `[f, grad, hessian]`, CasADi's SX `Function` of `(f,
   gradient, hessian)`, JAX `jit` of `(f, grad, jax.hessian)` and SciPy's hand-written
   `rosen`, `rosen_der` and `rosen_hess`, at N = 10 and N = 100. Each contender gets
   the point in the form it takes (a tuple of floats, an array) prepared beforehand,
   and returns what it returns (CasADi its `DM`s, JAX its arrays, made ready), and
   every result is checked against circuitc's before anything is timed. CasADi's
   results are sparse; a second CasADi row adds making them dense NumPy arrays.
2. circuitc's compile + load of `rosenbrock.circ` with `hessian=True` at N = 100, in a
   fresh process each time: the time of `circuitc.load` in it, and of the whole process
   (Python's start and the imports included).
3. `hvp` over `backward` (python target): the 2-16-16-1 MLP of docs/language.md's buses
   section and Rosenbrock at N = 100.

Ratios are taken in the same run, in interleaved rounds (the best CPU time per call
of each contender over `ROUNDS` rounds, every contender once per round), and each
measurement is repeated `--runs` times: the tables give the median ratio and the
range over runs. A baseline whose package is missing is reported as such.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import math
import random
import statistics
import subprocess
import sys
import time
import timeit
import types
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from run import machine

import circuitc

ROSENBROCK = ROOT / "circuits" / "rosenbrock.circ"
ROUNDS = 15

MLP = """\
# mlp.circ: micrograd's demo network and its max-margin loss on one point
size n = 16
input x[2], y
input W1[n, 2], b1[n], W2[n, n], b2[n], w3[n], c
h1[i] = relu(sum(W1[i, j] * x[j] for j) + b1[i])
h2[i] = relu(sum(W2[i, j] * h1[j] for j) + b2[i])
score = sum(w3[i] * h2[i] for i) + c
loss = relu(1 - y * score)
output loss, score
"""


def start(n: int) -> list[float]:
    """A point away from the minimum, the same for every contender."""
    rng = random.Random(n)
    return [rng.uniform(-1.5, 1.5) for _ in range(n)]


# -- the contenders: each `make(n)` returns (function, its argument) -------------

def circuitc_hessian(n: int):
    module = circuitc.load(ROSENBROCK, sizes={"n": n}, hessian=True)
    return module.hessian, tuple(start(n))


def sympy_lambdify(n: int):
    import sympy

    xs = sympy.symbols(f"x0:{n}", real=True)
    f = sum(100 * (xs[i + 1] - xs[i] ** 2) ** 2 + (1 - xs[i]) ** 2 for i in range(n - 1))
    grad = [sympy.diff(f, x) for x in xs]
    hessian = sympy.hessian(f, xs).tolist()
    function = sympy.lambdify(xs, [f, grad, hessian], "math", cse=True)
    point = tuple(start(n))
    return (lambda x: function(*x)), point


def casadi_function(n: int):
    import casadi

    x = casadi.SX.sym("x", n)
    f = sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i in range(n - 1))
    hessian, gradient = casadi.hessian(f, x)
    function = casadi.Function("rosenbrock", [x], [f, gradient, hessian])
    return function, casadi.DM(start(n))


def casadi_dense(n: int):
    function, arg = casadi_function(n)
    return (lambda x: [m.full() for m in function(x)]), arg


def jax_jit(n: int):
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    def f(x):
        return jnp.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)

    function = jax.jit(lambda x: (f(x), jax.grad(f)(x), jax.hessian(f)(x)))
    return (lambda x: jax.block_until_ready(function(x))), jnp.array(start(n))


def scipy_rosen(n: int):
    from scipy.optimize import rosen, rosen_der, rosen_hess

    return (lambda x: (rosen(x), rosen_der(x), rosen_hess(x))), np.array(start(n))


CONTENDERS = {"circuitc hessian() (python target)": circuitc_hessian,
              "SymPy lambdify(cse=True)": sympy_lambdify,
              "CasADi SX Function": casadi_function,
              "CasADi SX Function, results made dense (.full())": casadi_dense,
              "JAX jit(f, grad, hessian)": jax_jit,
              "SciPy rosen + rosen_der + rosen_hess": scipy_rosen}
BASELINE = {10: "SymPy lambdify(cse=True)", 100: "CasADi SX Function"}


def dense(result) -> tuple[float, np.ndarray, np.ndarray]:
    """(value, gradient, Hessian) of any contender's result, as NumPy."""
    value, grad, hessian = result
    to = (lambda a: np.array(a.full() if hasattr(a, "full") else a, dtype=float))
    return float(to(value).squeeze()), to(grad).ravel(), to(hessian)


def check(name: str, expected, got) -> None:
    value, grad, hessian = dense(got)
    assert math.isclose(value, expected[0], rel_tol=1e-12), name
    assert np.allclose(grad, expected[1], rtol=1e-12, atol=1e-9), name
    assert np.allclose(hessian, expected[2], rtol=1e-12, atol=1e-9), name


def per_call(calls: dict, rounds: int = ROUNDS) -> dict[str, float]:
    """CPU seconds per call of each `(function, argument)`: the best of `rounds` rounds,
    every contender once per round. CPU time, not wall time: on a busy machine a
    process that waits for a core is not charged for the wait."""
    numbers = {}
    for name, (function, arg) in calls.items():
        function(arg)  # warm up (and JIT-compile)
        once = _timer(lambda f=function, a=arg: f(a)).timeit(number=1)
        numbers[name] = max(1, int(0.02 / max(1e-7, once)))
    best = dict.fromkeys(calls, math.inf)
    for _ in range(rounds):
        for name, (function, arg) in calls.items():
            t = _timer(lambda f=function, a=arg: f(a)).timeit(number=numbers[name]) / numbers[name]
            best[name] = min(best[name], t)
    return best


def _timer(call) -> timeit.Timer:
    return timeit.Timer(call, timer=time.process_time)


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f}x ({min(values):.2f}-{max(values):.2f})"


def hessians(sizes: list[int], runs: int) -> None:
    print("## Value + gradient + dense Hessian per call, Rosenbrock\n")
    for n in sizes:
        base = BASELINE[n]
        calls, missing, setup = {}, {}, {}
        for name, make in CONTENDERS.items():
            t = time.perf_counter()
            try:
                calls[name] = make(n)
            except ImportError as e:
                missing[name] = f"not installed ({e.name})"
            setup[name] = time.perf_counter() - t
        expected = dense(calls["circuitc hessian() (python target)"][0](
            calls["circuitc hessian() (python target)"][1]))
        for name, (function, arg) in calls.items():
            check(name, expected, function(arg))
        times: dict[str, list[float]] = {name: [] for name in calls}
        for _ in range(runs):
            for name, t in per_call(calls).items():
                times[name].append(t)
        print(f"### N = {n} (ratio: time per call over {base}'s, median and range over {runs} runs)\n")
        print("| contender | per call (best run) | ratio to " + base + " | set-up (s) |")
        print("|---|---|---|---|")
        for name, ts in times.items():
            ratios = [t / b for t, b in zip(ts, times[base], strict=True)]
            print(f"| {name} | {min(ts) * 1e6:.1f} µs | {spread(ratios)} | {setup[name]:.2f} |")
        for name, why in missing.items():
            print(f"| {name} | {why} | | |")
        print()


# A fresh process that imports circuitc, loads the circuit and prints the seconds and
# the CPU seconds of the load alone (the CPU time moves less on a busy machine).
_CHILD = """
import sys, time
import circuitc
wall, cpu = time.perf_counter(), time.process_time()
module = circuitc.load(sys.argv[1], sizes={"n": int(sys.argv[2])}, hessian=True)
print(time.perf_counter() - wall, time.process_time() - cpu, len(module.HESSIAN_PATTERN))
"""


def compile_time(n: int, runs: int) -> None:
    print(f"## Compile + load, Rosenbrock N = {n} with hessian=True, a fresh process each\n")
    print("| | median | range |")
    print("|---|---|---|")
    numbers: dict[str, list[float]] = {"circuitc.load, wall": [], "circuitc.load, CPU": [],
                                       "the whole process (Python, imports, load), wall": []}
    for _ in range(max(runs, 5)):
        t = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", _CHILD, str(ROSENBROCK), str(n)],
                             capture_output=True, text=True, check=True).stdout.split()
        numbers["the whole process (Python, imports, load), wall"].append(time.perf_counter() - t)
        numbers["circuitc.load, wall"].append(float(out[0]))
        numbers["circuitc.load, CPU"].append(float(out[1]))
        assert int(out[2]) == 2 * n - 1
    for name, values in numbers.items():
        print(f"| {name} | {statistics.median(values):.3f} s | {min(values):.3f}-{max(values):.3f} s |")
    print()


def _mlp_point(module) -> tuple[list, list]:
    """Inputs (buses as nested lists) and a direction, where no relu sits at its kink."""
    rng = random.Random(1)

    def value(shape):
        if not shape:
            return rng.uniform(-1, 1)
        return [value(shape[1:]) for _ in range(shape[0])]
    args = [value(tuple(module.SHAPES[name])) for name in module.INPUTS]
    args[module.INPUTS.index("y")] = 1.0
    direction = [value(tuple(module.SHAPES[name])) for name in module.WRT]
    return args, direction


def hvp_cost(runs: int) -> None:
    print("## hvp over backward per call (python target; ratio median and range over "
          f"{runs} runs)\n")
    print("| circuit | backward | hvp | hvp / backward | forward / backward |")
    print("|---|---|---|---|---|")
    mlp = types.ModuleType("mlp")
    exec(circuitc.compile_source(MLP, "mlp.circ", hessian=True), mlp.__dict__)  # noqa: S102
    args, direction = _mlp_point(mlp)
    rosen = circuitc.load(ROSENBROCK, sizes={"n": 100}, hessian=True)
    x = tuple(start(100))
    v = tuple(random.Random(2).uniform(-1, 1) for _ in range(100))
    cases = {
        "MLP, n = 16 (340 inputs)": {
            "backward": (lambda a: mlp.backward(*a), args),
            "hvp": (lambda a: mlp.hvp(*a, *direction), args),
            "forward": (lambda a: mlp.forward(*a), args)},
        "Rosenbrock, N = 100": {
            "backward": (rosen.backward, x),
            "hvp": (lambda a: rosen.hvp(a, v), x),
            "forward": (rosen.forward, x)},
    }
    for name, calls in cases.items():
        ratios, forward, best = [], [], dict.fromkeys(calls, math.inf)
        for _ in range(runs):
            t = per_call(calls)
            ratios.append(t["hvp"] / t["backward"])
            forward.append(t["forward"] / t["backward"])
            best = {k: min(best[k], t[k]) for k in best}
        print(f"| {name} | {best['backward'] * 1e6:.1f} µs | {best['hvp'] * 1e6:.1f} µs | "
              f"{spread(ratios)} | {spread(forward)} |")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="repeat each measurement (spread)")
    args = parser.parse_args()
    machine()
    try:
        print(f"SciPy {importlib.metadata.version('scipy')}, NumPy {np.__version__}.\n")
    except importlib.metadata.PackageNotFoundError:
        print(f"NumPy {np.__version__}; SciPy not installed.\n")
    hessians([10, 100], args.runs)
    compile_time(100, args.runs)
    hvp_cost(args.runs)


if __name__ == "__main__":
    main()
