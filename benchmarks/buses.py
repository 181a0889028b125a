"""Bus circuits: training micrograd's demo network, Rosenbrock's value and gradient,
and the compile time of a bus circuit of about 10^5 gates.

    python benchmarks/buses.py                  # all three (a few minutes)
    python benchmarks/buses.py --quick          # fewer rounds, n = 2000 for the compile
    python benchmarks/buses.py mlp rosenbrock   # some of them: mlp, rosenbrock, compile

The contenders micrograd, SymPy and SciPy come with `pip install '.[bench]'`; a
missing one is left out.

1. `mlp`: one training step of micrograd's demo (a 2-16-16-1 ReLU network, the
   max-margin loss averaged over 100 two-moons points plus 1e-4 times the sum of
   the squared parameters, full batch, plain gradient descent): forward, backward
   over the batch and the parameter update. Contenders: `mlp.circ` (one point's
   loss, buses) compiled for the numpy target with the batch as leading axes; the
   same file compiled for the python target and called once per point; micrograd
   itself (`pip install micrograd==0.1.0`); and hand-written NumPy (matrix
   products, backpropagation by hand). The L2 term is not in the circuit: its
   gradient `2e-4 * p` is added in NumPy by the training loop. Every
   contender takes three steps from the same start first, and must agree.
2. `rosenbrock`: value and gradient of the Rosenbrock function of 100 variables,
   python target (`rosenbrock.circ`, one bus), against the same function written
   out as 100 scalar inputs, SymPy `lambdify(cse=True)` of the expression and its
   gradient, and `scipy.optimize.rosen` + `rosen_der` on a NumPy array.
3. `compile`: `circuitc.load("rosenbrock.circ", sizes={"n": 20000})` (180,000
   forward gates) in a fresh process per run, and in other fresh processes the
   time of each phase: parse, expand (`circuitc.buses.expand`), lower, optimize and
   differentiate, emit, CPython's compile(). Wall time and this process's CPU time:
   on a busy machine the wall time also counts waiting for a core.

Times per call are this process's CPU time (`time.process_time`), not wall time: on a
shared machine the wall time also counts the time spent waiting for a core, which
varies from round to round by more than the differences measured here. Ratios are
taken within a round (a round runs every contender in turn, so a change of load hits
all alike): the median over rounds, and the lowest and highest.

    python benchmarks/buses.py --load-once N       # child: one load(), its seconds
    python benchmarks/buses.py --phases-once N     # child: one compile, its phases
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

# The network of the examples when they have it, else the same text kept here.
MLP = next(p for p in (ROOT / "examples" / "mlp.circ", HERE / "mlp.circ") if p.exists())
ROSENBROCK = HERE / "rosenbrock.circ"
PARAMETERS = ("W1", "b1", "W2", "b2", "w3", "c")
ALPHA = 1e-4  # the weight of the L2 term
RATE = 0.05  # the learning rate: small, so that thousands of timed steps stay finite


# -- timing ----------------------------------------------------------------------

def rounds(contenders: dict, repeat: int, least: float = 0.02) -> dict[str, np.ndarray]:
    """CPU seconds per call of each contender in each of `repeat` rounds. A contender
    is called often enough per round to take `least` seconds; a round calls each in turn.
    Before each turn the collector frees what the previous one left (untimed): micrograd
    leaves a cyclic graph of Value objects per step, whose collection would otherwise
    fall into the next contender's time."""
    calls = {}
    for name, fn in contenders.items():
        start = time.process_time()
        fn()
        calls[name] = max(1, math.ceil(least / max(1e-6, time.process_time() - start)))
    result = {name: np.empty(repeat) for name in contenders}
    for r in range(repeat):
        for name, fn in contenders.items():
            gc.collect()
            start = time.process_time()
            for _ in range(calls[name]):
                fn()
            result[name][r] = (time.process_time() - start) / calls[name]
    return result


def table(times: dict[str, np.ndarray], ours: list[str], unit: str = "ms") -> None:
    """Each contender's best and median time, then each of `ours` over each other one."""
    scale = {"ms": 1e3, "µs": 1e6}[unit]
    print("| contender | best | median |")
    print("|---|---|---|")
    for name, t in times.items():
        print(f"| {name} | {t.min() * scale:.2f} {unit} | {np.median(t) * scale:.2f} {unit} |")
    print("\n| ratio | median of rounds | lowest - highest |")
    print("|---|---|---|")
    for mine in ours:
        for name, t in times.items():
            if name not in ours:
                r = times[mine] / t
                print(f"| {mine} / {name} | {np.median(r):.3g}x | {r.min():.3g}x - {r.max():.3g}x |")
    print()


# -- 1. micrograd's demo network ---------------------------------------------------

def two_moons(n: int = 100, noise: float = 0.1, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """`n` points as scikit-learn's `make_moons(n, noise=0.1)` makes them, labels -1
    (upper moon) and +1 (lower), as micrograd's demo has them."""
    rng = np.random.default_rng(seed)
    upper, lower = n // 2, n - n // 2
    t, s = np.linspace(0, np.pi, upper), np.linspace(0, np.pi, lower)
    points = np.concatenate([np.stack([np.cos(t), np.sin(t)], 1),
                             np.stack([1 - np.cos(s), 1 - np.sin(s) - 0.5], 1)])
    return points + rng.normal(0.0, noise, points.shape), np.repeat([-1.0, 1.0], [upper, lower])


def initial_parameters(seed: int = 2) -> list:
    """micrograd's initialization: weights uniform in [-1, 1], biases 0."""
    rng = np.random.default_rng(seed)
    return [rng.uniform(-1, 1, (16, 2)), np.zeros(16), rng.uniform(-1, 1, (16, 16)), np.zeros(16),
            rng.uniform(-1, 1, 16), np.float64(0.0)]


def _descend(params: list, grads) -> float:
    """Gradient descent on `params` in place (the L2 term's gradient added); returns
    the L2 term at the start."""
    l2 = ALPHA * sum(float(np.sum(p * p)) for p in params)
    for k, (p, g) in enumerate(zip(params, grads)):
        params[k] = p - RATE * (g + 2 * ALPHA * p)
    return l2


def circuitc_numpy(X, Y, params):
    """`mlp.circ`, numpy target: one call of `backward` on the whole batch."""
    import circuitc

    module = circuitc.load(MLP, target="numpy", wrt=PARAMETERS)
    params = list(params)

    def step():
        (loss, _), grads = module.backward(X, Y, *params, 1.0 / len(Y), 0.0)
        return float(np.mean(loss)) + _descend(params, grads)
    return step, params


def circuitc_python(X, Y, params):
    """`mlp.circ`, python target: one call of `backward` per point, the gradients
    summed in NumPy."""
    import circuitc

    module = circuitc.load(MLP, target="python", wrt=PARAMETERS)
    points = list(zip(X.tolist(), Y.tolist()))
    seed = 1.0 / len(points)
    params = list(params)

    def step():
        args = [p.tolist() for p in params]
        total, grads = 0.0, []
        for x, y in points:
            (loss, _), g = module.backward(x, y, *args, seed, 0.0)
            total += loss
            grads.append(g)
        return total * seed + _descend(params, [np.sum(g, axis=0) for g in zip(*grads)])
    return step, params


def hand_written_numpy(X, Y, params):
    """The network in matrix products, backpropagated by hand."""
    params = list(params)
    n = len(Y)

    def step():
        W1, b1, W2, b2, w3, c = params
        z1 = X @ W1.T + b1
        h1 = np.maximum(z1, 0.0)
        z2 = h1 @ W2.T + b2
        h2 = np.maximum(z2, 0.0)
        margin = 1.0 - Y * (h2 @ w3 + c)
        d_score = np.where(margin > 0, -Y / n, 0.0)
        d_z2 = np.outer(d_score, w3) * (z2 > 0)
        d_z1 = (d_z2 @ W2) * (z1 > 0)
        grads = (d_z1.T @ X, d_z1.sum(0), d_z2.T @ h1, d_z2.sum(0), d_score @ h2, d_score.sum())
        return float(np.maximum(margin, 0.0).mean()) + _descend(params, grads)
    return step, params


def micrograd_demo(X, Y, params):
    """micrograd's `MLP(2, [16, 16, 1])` and the demo's loss and update (the data as
    Python floats, which micrograd handles faster than NumPy scalars)."""
    from micrograd.engine import Value
    from micrograd.nn import MLP as Network

    model = Network(2, [16, 16, 1])
    W1, b1, W2, b2, w3, c = params
    for layer, (W, b) in zip(model.layers, ((W1, b1), (W2, b2), ([w3], [c]))):
        for neuron, row, bias in zip(layer.neurons, W, b):
            for weight, value in zip(neuron.w, row):
                weight.data = float(value)
            neuron.b.data = float(bias)
    xs, ys = X.tolist(), Y.tolist()

    def step():
        inputs = [list(map(Value, xrow)) for xrow in xs]
        scores = list(map(model, inputs))
        losses = [(1 + -yi * scorei).relu() for yi, scorei in zip(ys, scores)]
        data_loss = sum(losses) * (1.0 / len(losses))
        reg_loss = ALPHA * sum(p * p for p in model.parameters())
        total_loss = data_loss + reg_loss
        model.zero_grad()
        total_loss.backward()
        for p in model.parameters():
            p.data -= RATE * p.grad
        return total_loss.data

    def current() -> list:
        def weights(layer):
            return np.array([[w.data for w in neuron.w] for neuron in layer.neurons])

        def biases(layer):
            return np.array([neuron.b.data for neuron in layer.neurons])
        first, second, last = model.layers
        return [weights(first), biases(first), weights(second), biases(second), weights(last)[0],
                biases(last)[0]]
    return step, current


MLP_CONTENDERS = {"circuitc numpy target, batch as leading axes": circuitc_numpy,
                  "circuitc python target, a call per point": circuitc_python,
                  "micrograd 0.1.0": micrograd_demo,
                  "hand-written NumPy": hand_written_numpy}


def mlp(repeat: int) -> None:
    X, Y = two_moons()
    start = initial_parameters()
    steps, losses, finals = {}, {}, {}
    for name, make in MLP_CONTENDERS.items():
        try:
            step, params = make(X, Y, start)
        except ImportError as e:
            print(f"({name}: {e.name} is not installed)\n")
            continue
        losses[name] = [step() for _ in range(3)]
        finals[name] = params() if callable(params) else params
        steps[name] = step
    first = next(iter(losses))
    for name, three in losses.items():  # the same three steps, to rounding
        np.testing.assert_allclose(three, losses[first], rtol=1e-9, err_msg=name)
        for p, q in zip(finals[name], finals[first]):
            np.testing.assert_allclose(p, q, rtol=1e-9, atol=1e-12, err_msg=name)
    print("### micrograd's demo network: one training step (2-16-16-1, 100 points, full batch)\n")
    print(f"Forward, backward over the batch and the update; loss after three steps "
          f"{losses[first][-1]:.6f} for every contender.\n")
    times = rounds(steps, repeat)
    table(times, [n for n in times if n.startswith("circuitc")])


# -- 2. Rosenbrock, 100 variables, python target ------------------------------------

def rosenbrock_scalars(n: int) -> str:
    """The Rosenbrock function of `n` scalar inputs, written out as one expression."""
    terms = " + ".join(f"100*(x{i + 1} - x{i}**2)**2 + (1 - x{i})**2" for i in range(n - 1))
    return f"input {', '.join(f'x{i}' for i in range(n))}\nf = {terms}\noutput f\n"


def rosenbrock(repeat: int, n: int = 100) -> None:
    import circuitc

    x = np.random.default_rng(3).uniform(-2, 2, n)
    values = x.tolist()
    bus = circuitc.load(ROSENBROCK, sizes={"n": n})
    scalars = {}
    exec(circuitc.compile_source(rosenbrock_scalars(n), "scalars"), scalars)  # noqa: S102
    # name -> (the call, what it returned as (value, gradient))
    contenders = {"circuitc python target, x a bus (a list)":
                  (lambda: bus.backward(values), lambda r: (r[0], r[1][0])),
                  "circuitc python target, 100 scalar inputs":
                  (lambda: scalars["backward"](*values), lambda r: r)}
    try:
        import sympy

        xs = sympy.symbols(f"x0:{n}", real=True)
        f = sum(100 * (xs[i + 1] - xs[i] ** 2) ** 2 + (1 - xs[i]) ** 2 for i in range(n - 1))
        lambdified = sympy.lambdify([xs], [f, *(sympy.diff(f, v) for v in xs)], "math", cse=True)
        contenders["SymPy lambdify(cse=True)"] = (lambda: lambdified(values), lambda r: (r[0], r[1:]))
    except ImportError:
        print("(SymPy is not installed)\n")
    try:
        from scipy.optimize import rosen, rosen_der

        contenders["scipy.optimize rosen + rosen_der (NumPy array)"] = (
            lambda: (rosen(x), rosen_der(x)), lambda r: r)
    except ImportError:
        print("(SciPy is not installed)\n")

    value, (gradient,) = bus.backward(values)
    for name, (fn, unpack) in contenders.items():
        f, g = unpack(fn())
        np.testing.assert_allclose(f, value, rtol=1e-12, err_msg=name)
        np.testing.assert_allclose(g, gradient, rtol=1e-9, atol=1e-9, err_msg=name)
    print(f"### Rosenbrock, {n} variables: value and gradient per call\n")
    times = rounds({name: fn for name, (fn, _) in contenders.items()}, repeat)
    table(times, [next(iter(contenders))], unit="µs")


# -- 3. compile and load a large bus circuit ----------------------------------------

def _load_once(n: int) -> None:
    """Child process: the seconds of `import circuitc` and of one `load()`."""
    wall, cpu = time.perf_counter(), time.process_time()
    import circuitc

    imported = time.perf_counter() - wall
    wall, cpu = time.perf_counter(), time.process_time()
    circuitc.load(ROSENBROCK, sizes={"n": n})
    print(json.dumps({"import": imported, "wall": time.perf_counter() - wall,
                      "cpu": time.process_time() - cpu}))


def _phases_once(n: int) -> None:
    """Child process: the seconds of each phase of `circuitc.load`, done one by one as
    `circuitc.api` does them (checked against `compile_source` at a small size first)."""
    import circuitc
    from circuitc.api import differentiate, read_source
    from circuitc.buses import expand
    from circuitc.emit.python import emit
    from circuitc.graph import by_bus
    from circuitc.lower import lower
    from circuitc.parse import parse

    def lower_all(statements, buses):  # as lower_source does
        graph = lower(statements, str(ROSENBROCK))
        io = {*by_bus(graph.inputs), *by_bus(name for name, _ in graph.outputs)}
        return replace(graph, shapes={k: v for k, v in buses.shapes.items() if k in io})

    def timed(phase, fn, *args):
        wall, cpu = time.perf_counter(), time.process_time()
        value = fn(*args)
        times[phase] = (time.perf_counter() - wall, time.process_time() - cpu)
        return value

    text = read_source(ROSENBROCK)
    for size in (10, n):
        times = {}
        gc.disable()  # as circuitc.api does, up to the module's source
        tree = timed("parse", parse, text)
        statements, buses = timed("expand", expand, tree, {"n": size})
        graph = timed("lower", lower_all, statements, buses)
        graphs = timed("optimize + differentiate", differentiate, graph)
        source = timed("emit", emit, *graphs, circuitc.__version__)
        gc.enable()
        timed("compile()", compile, source, str(ROSENBROCK), "exec")
        if size != n:
            assert source == circuitc.compile_file(ROSENBROCK, sizes={"n": size}), "phases drifted"
    print(json.dumps({"phases": times, "gates": [len(g.nodes) for g in graphs],
                      "megabytes": len(source) / 1e6}))


def _children(flag: str, n: int, runs: int) -> list[dict]:
    return [json.loads(subprocess.run([sys.executable, __file__, flag, str(n)], capture_output=True,
                                      text=True, check=True).stdout) for _ in range(runs)]


def _spread(values: list[float]) -> str:
    return f"{min(values):.3f} - {max(values):.3f} s" if len(values) > 1 else f"{values[0]:.3f} s"


def compile_time(n: int, runs: int) -> None:
    loads = _children("--load-once", n, runs)
    phases = _children("--phases-once", n, runs)
    forward, backward = phases[0]["gates"]
    print(f"### Compile and load rosenbrock.circ with n = {n:,} (fresh process per run, {runs} runs)\n")
    print(f"{forward:,} forward gates, {backward:,} in the gradient graph, a "
          f"{phases[0]['megabytes']:.1f} MB module.\n")
    print("| | wall | CPU |")
    print("|---|---|---|")
    print(f"| `circuitc.load(...)` | {_spread([r['wall'] for r in loads])} | "
          f"{_spread([r['cpu'] for r in loads])} |")
    print(f"| `import circuitc` (before it) | {_spread([r['import'] for r in loads])} | |")
    for phase in phases[0]["phases"]:
        print(f"| {phase} | {_spread([r['phases'][phase][0] for r in phases])} | "
              f"{_spread([r['phases'][phase][1] for r in phases])} |")
    print(f"| all phases | {_spread([sum(w for w, _ in r['phases'].values()) for r in phases])} | "
          f"{_spread([sum(c for _, c in r['phases'].values()) for r in phases])} |\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("parts", nargs="*", metavar="PART",
                        help="mlp, rosenbrock or compile (default: all three)")
    parser.add_argument("--quick", action="store_true", help="fewer rounds, a smaller compile")
    parser.add_argument("--load-once", type=int, metavar="N", help=argparse.SUPPRESS)
    parser.add_argument("--phases-once", type=int, metavar="N", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load_once:
        return _load_once(args.load_once)
    if args.phases_once:
        return _phases_once(args.phases_once)
    parts = args.parts or ["mlp", "rosenbrock", "compile"]
    if not set(parts) <= {"mlp", "rosenbrock", "compile"}:
        parser.error(f"unknown part: {', '.join(sorted(set(parts) - {'mlp', 'rosenbrock', 'compile'}))}")
    from run import machine

    machine(("numpy", "scipy", "sympy", "micrograd", "lark"))
    if "mlp" in parts:
        mlp(repeat=3 if args.quick else 10)
    if "rosenbrock" in parts:
        rosenbrock(repeat=5 if args.quick else 20)
    if "compile" in parts:
        compile_time(2_000 if args.quick else 20_000, runs=1 if args.quick else 3)


if __name__ == "__main__":
    main()
