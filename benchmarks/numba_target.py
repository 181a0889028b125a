"""The numba target against a hand-written numba loop, JAX, CasADi and hand-written NumPy:
the targets of its issue, side by side in one run.

    python benchmarks/numba_target.py              # every part (ten minutes or so)
    python benchmarks/numba_target.py --quick      # fewer rounds
    python benchmarks/numba_target.py rosenbrock   # some: rosenbrock neuron hessian hvp
                                                   #       micrograd softmax load

1. `rosenbrock`: value and gradient of `circuits/rosenbrock.circ` at N = 10, 10^4 and
   10^6 (`backward`, x a float64 array), against a hand-written numba loop (the loop of
   `benchmarks/whole_bus.py`'s `hand_loop`, compiled), the same loop with a seed (what
   `backward` computes: the gradient of `d_f * f`), JAX's `jit(value_and_grad)` and, at
   N = 10 and 10^4, CasADi's SX `Function` of (f, gradient) (at 10^6 its symbolic graph
   takes minutes to build).
2. `neuron`: `neuron.circ`'s `backward` at a point of floats against a hand-written
   numba function (the same stable sigmoid).
3. `hessian`: value, gradient and dense Hessian of Rosenbrock at N = 100 (`hessian`)
   against CasADi's SX `Function` of (f, gradient, Hessian), which returns the Hessian
   sparse, and JAX's `jit` of (f, grad, hessian).
4. `hvp`: Rosenbrock's `hvp` at N = 10^4 and 10^6 against JAX's `jit(jvp(grad(f)))`.
5. `micrograd`: one training step of micrograd's demo network (`examples/mlp.circ`, 100
   points, `benchmarks/buses.py`'s step) against hand-written NumPy.
6. `softmax`: one training step of the 784-128-10 network over 10^4 points
   (`benchmarks/softmax.circ`, `benchmarks/whole_bus.py`'s step) against hand-written NumPy.
7. `check`: the cost of the check for values that are not finite: `backward` of a
   circuit whose gates can raise (`log`, `sqrt`, `/`), against the same module with its
   checks taken out of the text (`unchecked`), at a point of floats (written out) and on
   buses of 10^4 and 10^6 (whole-bus kernels).
8. `load`: loading `examples/mlp.circ` with `--hessian`, in a fresh process each: the
   first time (empty cache: numba compiles), and the second (numba's cache warm);
   against the floor, a process that imports numba and loads one cached function.

One thread each: numba's threads, BLAS's and XLA's are set to one before anything is
imported (CPU time is the measure, as in the other benchmarks: `buses.rounds`, the
ratios taken within a round). Every contender's numbers are checked against the
others' first.
"""

from __future__ import annotations

import os

for _name in ("NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import argparse
import math
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from buses import rounds

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ROSENBROCK = ROOT / "circuits" / "rosenbrock.circ"
NEURON = ROOT / "circuits" / "neuron.circ"
MLP = ROOT / "examples" / "mlp.circ"
PARTS = ("rosenbrock", "neuron", "hessian", "hvp", "micrograd", "softmax", "check", "load")
SUMMARY: list[tuple[str, str, float, str]] = []  # (target, contender, ratio, limit)


def ratios(times: dict, ours: str, against: str, target: str, limit: str, unit: str = "µs") -> None:
    """The table of one comparison: each contender's best and median time, and the median
    (and range) of the per-round ratio of `ours` to every other; `against`'s ratio is the
    target's, kept for the summary."""
    scale = {"ms": 1e3, "µs": 1e6}[unit]
    print("| contender | best | median | ratio to " + against + " (median, range) |")
    print("|---|---|---|---|")
    for name, t in times.items():
        r = t / times[against]
        print(f"| {name} | {t.min() * scale:.3g} {unit} | {np.median(t) * scale:.3g} {unit} | "
              f"{np.median(r):.3g}x ({r.min():.3g}-{r.max():.3g}) |")
    print()
    SUMMARY.append((target, f"{ours} / {against}", float(np.median(times[ours] / times[against])), limit))


def _jax():
    import jax

    jax.config.update("jax_enable_x64", True)
    return jax, jax.numpy


def _rosen(jnp):
    def f(x):
        return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)
    return f


# -- hand-written numba ----------------------------------------------------------------------

def hand_written():
    """The hand-written numba functions, compiled (numba's own cache off: a fresh compile)."""
    import numba

    @numba.njit
    def rosen(x):
        n = x.shape[0]
        f = 0.0
        g = np.zeros(n)
        for i in range(n - 1):
            a = x[i + 1] - x[i] * x[i]
            b = 1.0 - x[i]
            f += 100.0 * a * a + b * b
            g[i] += -400.0 * a * x[i] - 2.0 * b
            g[i + 1] += 200.0 * a
        return f, g

    @numba.njit
    def rosen_seeded(x, d_f):
        n = x.shape[0]
        f = 0.0
        g = np.zeros(n)
        for i in range(n - 1):
            a = x[i + 1] - x[i] * x[i]
            b = 1.0 - x[i]
            f += 100.0 * a * a + b * b
            g[i] += d_f * (-400.0 * a * x[i] - 2.0 * b)
            g[i + 1] += d_f * (200.0 * a)
        return f, g

    @numba.njit
    def neuron(a, b, c, x, y):
        s = a * x + b * y + c
        if s >= 0:
            f = 1.0 / (1.0 + math.exp(-s))
        else:
            z = math.exp(s)
            f = z / (1.0 + z)
        d_s = f * (1.0 - f)
        return f, (d_s * x, d_s * y, d_s, d_s * a, d_s * b)
    return rosen, rosen_seeded, neuron


# -- 1. Rosenbrock, value and gradient ---------------------------------------------------------

def rosenbrock(repeat: int) -> None:
    rosen, rosen_seeded, _ = hand_written()
    jax, jnp = _jax()
    value_and_grad = jax.jit(jax.value_and_grad(_rosen(jnp)))
    for n in (10, 10**4, 10**6):
        _rosenbrock_at(n, repeat, rosen, rosen_seeded, jax, jnp, value_and_grad)


def _casadi_rosenbrock(n: int):
    """CasADi's SX `Function` of Rosenbrock's value and gradient at N = n, called on a DM."""
    import casadi

    s = casadi.SX.sym("x", n)
    f = casadi.sum1(100 * (s[1:] - s[:-1] ** 2) ** 2 + (1 - s[:-1]) ** 2)
    return casadi.Function("rosenbrock", [s], [f, casadi.gradient(f, s)])


def _rosenbrock_at(n: int, repeat: int, rosen, rosen_seeded, jax, jnp, value_and_grad) -> None:
    import circuitc

    module = circuitc.load(ROSENBROCK, "numba", sizes={"n": n})
    x = np.random.default_rng(3).uniform(-2, 2, n)
    jx = jnp.array(x)
    contenders = {
        "hand-written numba loop": lambda: rosen(x),
        "the same with a seed": lambda: rosen_seeded(x, 1.0),
        "circuitc numba backward": lambda: module.backward(x),
        "JAX jit(value_and_grad)": lambda: jax.block_until_ready(value_and_grad(jx)),
    }
    if n <= 10**4:
        import casadi

        function, dx = _casadi_rosenbrock(n), casadi.DM(x)
        contenders["CasADi SX Function (f, gradient)"] = lambda: function(dx)
        np.testing.assert_allclose(np.asarray(function(dx)[1].full()).reshape(-1), rosen(x)[1],
                                   rtol=1e-9, atol=1e-9)
    want = rosen(x)
    # Each contender compiled before `rounds` times its first call, which sets its calls
    # per round: the seeded loop is first called here.
    np.testing.assert_allclose(rosen_seeded(x, 1.0)[1], want[1], rtol=1e-15)
    for name, (value, grad) in (("circuitc", (module.backward(x)[0], module.backward(x)[1][0])),
                                ("JAX", value_and_grad(jx))):
        np.testing.assert_allclose(float(value), want[0], rtol=1e-12, err_msg=name)
        np.testing.assert_allclose(np.asarray(grad), want[1], rtol=1e-9, atol=1e-9, err_msg=name)
    print(f"### Rosenbrock, value and gradient, N = {n:,}\n")
    times = rounds(contenders, repeat if n < 10**6 else max(3, repeat // 3),
                   least=0.05 if n < 10**6 else 0.3)
    ratios(times, "circuitc numba backward", "hand-written numba loop",
           f"Rosenbrock value+gradient, N = {n:,}", "1.2x", "µs" if n < 10**6 else "ms")


# -- 2. the neuron at a point ------------------------------------------------------------------

def neuron(repeat: int) -> None:
    import circuitc

    _, _, hand = hand_written()
    module = circuitc.load(NEURON, "numba")
    args = (1.0, 2.0, -3.0, -1.0, 3.0)
    assert module.backward(*args) == hand(*args)
    python = circuitc.load(NEURON)
    print("### neuron.circ: value and gradient at a point of floats\n")
    times = rounds({"hand-written numba function": lambda: hand(*args),
                    "circuitc numba backward": lambda: module.backward(*args),
                    "circuitc python backward": lambda: python.backward(*args)}, repeat)
    ratios(times, "circuitc numba backward", "hand-written numba function",
           "neuron.circ backward, a point", "1.2x")


# -- 3. the dense Hessian at N = 100 -------------------------------------------------------------

def hessian(repeat: int) -> None:
    import casadi

    import circuitc

    n = 100
    module = circuitc.load(ROSENBROCK, "numba", sizes={"n": n}, hessian=True)
    s = casadi.SX.sym("x", n)
    f = casadi.sum1(100 * (s[1:] - s[:-1] ** 2) ** 2 + (1 - s[:-1]) ** 2)
    h, g = casadi.hessian(f, s)
    function = casadi.Function("rosenbrock", [s], [f, g, h])
    jax, jnp = _jax()
    rosen = _rosen(jnp)
    jitted = jax.jit(lambda x: (rosen(x), jax.grad(rosen)(x), jax.hessian(rosen)(x)))
    x = np.random.default_rng(5).uniform(-2, 2, n)
    dx, jx = casadi.DM(x), jnp.array(x)
    H = module.hessian(x)[2]
    np.testing.assert_allclose(H, np.asarray(function(dx)[2].full()), rtol=1e-12)
    np.testing.assert_allclose(H, np.asarray(jitted(jx)[2]), rtol=1e-12)
    print("### Rosenbrock, N = 100: value, gradient and Hessian\n")
    print(f"CasADi's Hessian is sparse ({function(dx)[2].nnz()} non-zeros); circuitc's `hessian` "
          f"is dense, `sparse_hessian` its {len(module.HESSIAN_PATTERN)} entries of the upper "
          "triangle.\n")
    times = rounds({"CasADi SX Function (sparse)": lambda: function(dx),
                    "circuitc numba hessian (dense)": lambda: module.hessian(x),
                    "circuitc numba sparse_hessian": lambda: module.sparse_hessian(x),
                    "JAX jit(f, grad, hessian)": lambda: jax.block_until_ready(jitted(jx))}, repeat)
    ratios(times, "circuitc numba hessian (dense)", "CasADi SX Function (sparse)",
           "Rosenbrock value+gradient+dense Hessian, N = 100", "0.5x")


# -- 4. hvp at N = 10^4 and 10^6 ----------------------------------------------------------------

def hvp(repeat: int) -> None:
    for n in (10**4, 10**6):
        _hvp_at(n, repeat)


def _hvp_at(n: int, repeat: int) -> None:
    import circuitc

    module = circuitc.load(ROSENBROCK, "numba", sizes={"n": n}, hessian=True)
    jax, jnp = _jax()
    f = _rosen(jnp)
    jax_hvp = jax.jit(lambda x, v: jax.jvp(jax.grad(f), (x,), (v,))[1])
    everything = jax.jit(lambda x, v: (f(x), *jax.jvp(jax.grad(f), (x,), (v,))))
    rng = np.random.default_rng(9)
    x, v = rng.uniform(-2, 2, n), rng.normal(size=n)
    jx, jv = jnp.array(x), jnp.array(v)
    np.testing.assert_allclose(module.hvp(x, v)[2][0], np.asarray(jax_hvp(jx, jv)), rtol=1e-9, atol=1e-6)
    print(f"### Rosenbrock, N = {n:,}: Hessian-vector product\n")
    print("circuitc's `hvp` returns the value and the gradient with the product; JAX's "
          "`jvp(grad(f))` the gradient and the product, and XLA leaves out what is not returned.\n")
    times = rounds({"JAX jit jvp(grad(f)), the product": lambda: jax_hvp(jx, jv).block_until_ready(),
                    "JAX jit (f, jvp(grad(f))): value, gradient, product":
                        lambda: jax.block_until_ready(everything(jx, jv)),
                    "circuitc numba hvp": lambda: module.hvp(x, v)},
                   repeat if n < 10**6 else max(3, repeat // 3), least=0.05 if n < 10**6 else 0.3)
    ratios(times, "circuitc numba hvp", "JAX jit jvp(grad(f)), the product",
           f"Rosenbrock hvp, N = {n:,}", "1.0x", "µs" if n < 10**6 else "ms")
    SUMMARY.append((f"Rosenbrock hvp, N = {n:,}, the same results", "circuitc numba hvp / JAX (f, grad, hv)",
                    float(np.median(times["circuitc numba hvp"]
                                    / times["JAX jit (f, jvp(grad(f))): value, gradient, product"])),
                    "1.0x"))


# -- 5. and 6. training steps -----------------------------------------------------------------

def micrograd(repeat: int) -> None:
    from buses import PARAMETERS, _descend, hand_written_numpy, initial_parameters, two_moons

    import circuitc

    X, Y = two_moons()
    start = initial_parameters()
    module = circuitc.load(MLP, "numba", wrt=PARAMETERS)
    params = list(start)

    def step():
        (loss, _), grads = module.backward(X, Y, *params, 1.0 / len(Y), 0.0)
        return float(np.mean(loss)) + _descend(params, grads)
    hand, _ = hand_written_numpy(X, Y, start)
    np.testing.assert_allclose([step() for _ in range(3)], [hand() for _ in range(3)], rtol=1e-9)
    print("### micrograd's demo network: one training step (2-16-16-1, 100 points, full batch)\n")
    times = rounds({"hand-written NumPy": hand, "circuitc numba": step}, repeat)
    ratios(times, "circuitc numba", "hand-written NumPy", "micrograd demo, one step", "1.0x")


def softmax(repeat: int) -> None:
    from whole_bus import RATE, SOFTMAX, numpy_step, softmax_data

    import circuitc

    X, T, params = softmax_data()
    module = circuitc.load(SOFTMAX, "numba", wrt=["W1", "b1", "W2", "b2"])
    mine = [p.copy() for p in params]

    def step():
        loss, grads = module.backward(X, T, *mine, 1.0 / len(X))
        for p, g in zip(mine, grads):
            p -= RATE * g
        return float(np.mean(loss))
    hand = numpy_step(X, T, params)
    np.testing.assert_allclose([step() for _ in range(2)], [hand() for _ in range(2)], rtol=1e-9)
    print("### The 784-128-10 softmax network: one training step over 10,000 points\n")
    times = rounds({"hand-written NumPy": hand, "circuitc numba": step}, max(3, repeat // 3), least=0.3)
    ratios(times, "circuitc numba", "hand-written NumPy", "784-128-10 over 10^4 points, one step",
           "1.2x", "ms")


# -- 7. the check for values that are not finite ------------------------------------------------

CHECKED = {
    "written out, a point of floats": "input x, y, z\nf = log(1 + x*x) + sqrt(2 + y) / (1 + z*z)\noutput f\n",
    "whole-bus": ("size n = 10\ninput x[n]\nf = sum(log(1 + x[i]*x[i]) + sqrt(2 + x[i]) / (1 + x[i]*x[i]) for i)\n"
                  "output f\n"),
}


def unchecked(source: str) -> str:
    """A numba module's text without its checks: `_check` returns 0.0 at once, a kernel's
    `check +=` lines are `pass`."""
    import re

    if "def _check(values):" in source:
        start = source.index("def _check(values):")
        end = source.index("\n\n\n", start)
        source = source[:start] + 'def _check(values):\n    """0.0."""\n    return 0.0' + source[end:]
    return re.sub(r"^( *)check \+= .*$", r"\1pass", source, flags=re.MULTILINE)


def check(repeat: int) -> None:
    import circuitc
    from circuitc import numba_modules

    for what, n in (("written out, a point of floats", None), ("whole-bus", 10**4), ("whole-bus", 10**6)):
        text, sizes = CHECKED[what], {"n": n} if n else None
        source = circuitc.compile_source(text, "checked.circ", "numba", sizes=sizes)
        assert "_check(" in source or "check += " in source
        module, bare = numba_modules.load(source), numba_modules.load(unchecked(source))
        x = np.random.default_rng(4).uniform(-1, 1, n) if n else None
        args = (x,) if n else (0.5, 1.5, -0.25)
        assert module.backward(*args)[0] == bare.backward(*args)[0]
        print(f"### The check for values that are not finite: backward, {what}"
              f"{f', N = {n:,}' if n else ''}\n")
        times = rounds({"without the check": lambda bare=bare, args=args: bare.backward(*args),
                        "circuitc numba backward": lambda m=module, args=args: m.backward(*args)},
                       repeat if n != 10**6 else max(3, repeat // 3), least=0.05 if n != 10**6 else 0.3)
        ratios(times, "circuitc numba backward", "without the check",
               f"the check's cost, {what}{f', N = {n:,}' if n else ''}", "(small)",
               "ms" if n == 10**6 else "µs")


# -- 8. loading --------------------------------------------------------------------------------

LOAD = """
import time
start = time.process_time(); wall = time.perf_counter()
import numpy as np
import circuitc
imported = time.process_time()
m = circuitc.load({path!r}, target="numba", hessian=True)
loaded = time.process_time()
m.backward(*[np.full(m.SHAPES[n], 0.5) for n in m.INPUTS])
print(imported - start, loaded - imported, time.process_time() - loaded, time.process_time() - start,
      time.perf_counter() - wall)
"""

def load(runs: int) -> None:
    where = Path(tempfile.mkdtemp(prefix="circuitc-bench-"))
    env = {**os.environ, "CIRCUITC_CACHE_DIR": str(where / "cache")}

    def run(code: str) -> list[float]:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                             check=True, cwd=where).stdout
        return [float(x) for x in out.split()]
    try:
        floor_file = where / "floor.py"
        floor_file.write_text('import numba\n\n\n@numba.njit("(float64,)", cache=True)\ndef f(x):\n'
                              "    return x\n")
        floor = "\n".join(["import time", "start = time.process_time(); wall = time.perf_counter()",
                           "import sys", f"sys.path.insert(0, {str(where)!r})", "import floor",
                           "floor.f(1.0)",
                           "print(time.process_time() - start, time.perf_counter() - wall)"])
        run(floor)  # numba compiles the one function, once
        floors = [run(floor) for _ in range(runs)]
        first = []
        for _ in range(runs):
            shutil.rmtree(where / "cache", ignore_errors=True)
            first.append(run(LOAD.format(path=str(MLP))))
        second = [run(LOAD.format(path=str(MLP))) for _ in range(runs)]
    finally:
        shutil.rmtree(where, ignore_errors=True)

    def span(values) -> str:
        return f"{min(values):.2f}-{max(values):.2f}" if len(values) > 1 else f"{values[0]:.2f}"
    print("### Loading examples/mlp.circ (--hessian) for numba, a fresh process each\n")
    print("CPU seconds: importing circuitc (and NumPy), `circuitc.load`, the first call of "
          "`backward`; and the whole process's wall time.\n")
    print("| | import | load | first call | all (CPU) | all (wall) |")
    print("|---|---|---|---|---|---|")
    for name, rows in (("first load (empty cache: numba compiles)", first),
                       ("second load (numba's cache warm)", second)):
        columns = list(zip(*rows))
        print(f"| {name} | " + " | ".join(span(c) for c in columns) + " |")
    columns = list(zip(*floors))
    print(f"| the floor: import numba, load one cached function | | | | {span(columns[0])} | "
          f"{span(columns[1])} |\n")
    SUMMARY.append(("load examples/mlp.circ --hessian, second time", "CPU seconds",
                    float(np.median([r[3] for r in second])), "0.5 s"))
    SUMMARY.append(("load examples/mlp.circ --hessian, first time", "CPU seconds",
                    float(np.median([r[3] for r in first])), "(report)"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("parts", nargs="*", metavar="PART", help=f"some of {', '.join(PARTS)}")
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    args = parser.parse_args()
    parts = args.parts or list(PARTS)
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown part: {', '.join(sorted(unknown))}")
    from run import machine

    machine(("numba", "llvmlite", "numpy", "scipy", "jax", "casadi"))
    repeat = 5 if args.quick else 15
    started = time.perf_counter()
    for part in parts:
        globals()[part](repeat if part != "load" else (1 if args.quick else 3))
    print("### The targets\n")
    print("| target | ratio | measured | limit |")
    print("|---|---|---|---|")
    for target, what, value, limit in SUMMARY:
        print(f"| {target} | {what} | {value:.3g}{'' if 'seconds' in what else 'x'} | {limit} |")
    print(f"\n({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
