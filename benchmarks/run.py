"""Per-call speed of generated code, and compile time and memory by circuit size.

    python benchmarks/run.py            # everything (about two minutes, 10^6 gates included)
    python benchmarks/run.py --quick    # smaller sizes, fewer repeats

Part 1 times value + full gradient per call for the textbook neuron and a 4-16-1
scalar MLP (tanh hidden layer, sigmoid output: 177 gates, 101 inputs) and prints
each contender's time as a ratio to a hand-tuned straight-line reference written
below, all in the same run: circuitc's `backward` and `forward`, the textbook's
Unit/Gate objects, SymPy `lambdify(cse=True)`, and JAX, PyTorch and CasADi where
they are installed (`pip install '.[bench]'`).

Part 2 compiles random deep DAGs of 10^2 .. 10^6 gates, one size per fresh
process, and prints seconds per phase, microseconds per gate, the growth factor
from the previous size (10 means linear) and the process's peak memory: first
with one gate per line (the worst case), then with eight gates per line, about
as many as a neuron of a layer written on one line.

    python benchmarks/run.py --compile-once 100000 [PER_LINE]   # one compile, its phases
    python benchmarks/run.py --through-api 100000   # one cold load, phases as the API reports them
"""

from __future__ import annotations

import argparse
import importlib.metadata
import math
import os
import platform
import random
import resource
import subprocess
import sys
import time
import timeit
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import circuitc

HIDDEN, FEATURES = 16, 4


# -- the circuits ---------------------------------------------------------------

def mlp_source() -> str:
    """A 4-16-1 MLP as a `.circ` file: tanh hidden units, a sigmoid output."""
    lines = ["input " + ", ".join(f"x{i}" for i in range(FEATURES))]
    for j in range(HIDDEN):
        lines.append(f"input {', '.join(f'w{j}_{i}' for i in range(FEATURES))}")
    lines.append(f"input {', '.join(f'b{j}' for j in range(HIDDEN))}")
    lines.append(f"input {', '.join(f'v{j}' for j in range(HIDDEN))}, c")
    for j in range(HIDDEN):
        terms = " + ".join(f"w{j}_{i}*x{i}" for i in range(FEATURES))
        lines.append(f"h{j} = tanh({terms} + b{j})")
    lines.append(f"f = sigmoid({' + '.join(f'v{j}*h{j}' for j in range(HIDDEN))} + c)")
    return "\n".join(lines) + "\n"


def hand_tuned_mlp(unsafe: bool = False):
    """Straight-line value and gradient, single-use values inlined, written by hand
    (generated here only to save typing 200 lines; it is what a careful person writes)."""
    args = [f"x{i}" for i in range(FEATURES)]
    args += [f"w{j}_{i}" for j in range(HIDDEN) for i in range(FEATURES)] + [f"b{j}" for j in range(HIDDEN)]
    args += [f"v{j}" for j in range(HIDDEN)] + ["c"]
    body = []
    for j in range(HIDDEN):
        terms = " + ".join(f"w{j}_{i}*x{i}" for i in range(FEATURES))
        body.append(f"h{j} = tanh({terms} + b{j})")
    z = " + ".join(f"v{j}*h{j}" for j in range(HIDDEN)) + " + c"
    body.append(f"f = 1.0 / (1.0 + exp(-({z})))" if unsafe else f"f = sigmoid({z})")
    body.append("ds = f * (1.0 - f)")
    for j in range(HIDDEN):
        body.append(f"dz{j} = ds * v{j} * (1.0 - h{j}*h{j})")
    grads = [" + ".join(f"dz{j}*w{j}_{i}" for j in range(HIDDEN)) for i in range(FEATURES)]
    grads += [f"dz{j}*x{i}" for j in range(HIDDEN) for i in range(FEATURES)]
    grads += [f"dz{j}" for j in range(HIDDEN)] + [f"ds*h{j}" for j in range(HIDDEN)] + ["ds"]
    body.append(f"return f, ({', '.join(grads)})")
    source = f"def value_and_grad({', '.join(args)}):\n" + "".join(f"    {line}\n" for line in body)
    namespace = {"tanh": math.tanh, "exp": math.exp, "sigmoid": sigmoid}
    exec(source, namespace)  # noqa: S102
    return namespace["value_and_grad"]


def sigmoid(z):
    """The sigmoid as a careful person writes it: no OverflowError for z < -709."""
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def hand_tuned_neuron(a, b, c, x, y):
    f = sigmoid(a * x + b * y + c)
    ds = f * (1.0 - f)
    return f, (ds * x, ds * y, ds, ds * a, ds * b)


def hand_tuned_neuron_unsafe(a, b, c, x, y):
    f = 1.0 / (1.0 + math.exp(-(a * x + b * y + c)))
    ds = f * (1.0 - f)
    return f, (ds * x, ds * y, ds, ds * a, ds * b)


# -- the textbook's objects (chapter 1 of the Hacker's guide) -------------------

class Unit:
    __slots__ = ("grad", "value")

    def __init__(self, value, grad=0.0):
        self.value, self.grad = value, grad


class MultiplyGate:
    def forward(self, u0, u1):
        self.u0, self.u1 = u0, u1
        self.utop = Unit(u0.value * u1.value)
        return self.utop

    def backward(self):
        self.u0.grad += self.u1.value * self.utop.grad
        self.u1.grad += self.u0.value * self.utop.grad


class AddGate:
    def forward(self, u0, u1):
        self.u0, self.u1 = u0, u1
        self.utop = Unit(u0.value + u1.value)
        return self.utop

    def backward(self):
        self.u0.grad += self.utop.grad
        self.u1.grad += self.utop.grad


class SigmoidGate:
    def forward(self, u0):
        self.u0 = u0
        self.utop = Unit(1.0 / (1.0 + math.exp(-u0.value)))
        return self.utop

    def backward(self):
        s = self.utop.value
        self.u0.grad += s * (1.0 - s) * self.utop.grad


class TanhGate:
    def forward(self, u0):
        self.u0 = u0
        self.utop = Unit(math.tanh(u0.value))
        return self.utop

    def backward(self):
        t = self.utop.value
        self.u0.grad += (1.0 - t * t) * self.utop.grad


def textbook(build):
    """Value and gradient the textbook's way: fresh units, gates forward, then backward."""
    def value_and_grad(*values):
        units = [Unit(v) for v in values]
        gates = []

        def gate(kind, *inputs):
            g = kind()
            gates.append(g)
            return g.forward(*inputs)
        out = build(units, gate)
        out.grad = 1.0
        for g in reversed(gates):
            g.backward()
        return out.value, tuple(u.grad for u in units)
    return value_and_grad


def textbook_neuron(u, gate):
    a, b, c, x, y = u
    ax, by = gate(MultiplyGate, a, x), gate(MultiplyGate, b, y)
    return gate(SigmoidGate, gate(AddGate, gate(AddGate, ax, by), c))


def textbook_mlp(u, gate):
    x, rest = u[:FEATURES], u[FEATURES:]
    w, b, v, c = rest[:HIDDEN * FEATURES], rest[HIDDEN * FEATURES:][:HIDDEN], rest[-HIDDEN - 1:-1], rest[-1]
    hidden = []
    for j in range(HIDDEN):
        s = gate(MultiplyGate, w[j * FEATURES], x[0])
        for i in range(1, FEATURES):
            s = gate(AddGate, s, gate(MultiplyGate, w[j * FEATURES + i], x[i]))
        hidden.append(gate(TanhGate, gate(AddGate, s, b[j])))
    s = gate(MultiplyGate, v[0], hidden[0])
    for j in range(1, HIDDEN):
        s = gate(AddGate, s, gate(MultiplyGate, v[j], hidden[j]))
    return gate(SigmoidGate, gate(AddGate, s, c))


# -- other systems, where installed --------------------------------------------

def sympy_contender(module):
    import sympy

    symbols = [sympy.Symbol(name, real=True) for name in module.INPUTS]
    env = dict(zip(module.INPUTS, symbols))
    env.update(sigmoid=lambda z: 1 / (1 + sympy.exp(-z)), tanh=sympy.tanh)
    text = SOURCES[module.__name__]
    for line in text.splitlines():  # the benchmark circuits are `name = expr` lines
        line = line.split("#")[0]
        if "=" in line and not line.startswith("input"):
            name, expr = (part.strip() for part in line.split("=", 1))
            env[name] = eval(expr, {}, env)
    f = env["f"]
    function = sympy.lambdify(symbols, [f, *(sympy.diff(f, s) for s in symbols)], "math", cse=True)

    def value_and_grad(*values):
        f, *grads = function(*values)
        return f, grads
    return value_and_grad


def jax_contender(module):
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    n = len(module.INPUTS)

    def f(*args):
        if module.__name__ == "neuron":
            a, b, c, x, y = args
            return jax.nn.sigmoid(a * x + b * y + c)
        x, rest = args[:FEATURES], args[FEATURES:]
        h = [jnp.tanh(sum(rest[j * FEATURES + i] * x[i] for i in range(FEATURES)) + rest[HIDDEN * FEATURES + j])
             for j in range(HIDDEN)]
        return jax.nn.sigmoid(sum(args[-HIDDEN - 1 + j] * h[j] for j in range(HIDDEN)) + args[-1])
    return jax.jit(jax.value_and_grad(f, argnums=tuple(range(n))))


def torch_contender(module):
    import torch

    torch.set_default_dtype(torch.float64)

    def value_and_grad(*values):
        t = [torch.tensor(v, requires_grad=True) for v in values]
        if module.__name__ == "neuron":
            a, b, c, x, y = t
            f = torch.sigmoid(a * x + b * y + c)
        else:
            x, rest = t[:FEATURES], t[FEATURES:]
            h = [torch.tanh(sum(rest[j * FEATURES + i] * x[i] for i in range(FEATURES))
                            + rest[HIDDEN * FEATURES + j]) for j in range(HIDDEN)]
            f = torch.sigmoid(sum(t[-HIDDEN - 1 + j] * h[j] for j in range(HIDDEN)) + t[-1])
        f.backward()
        return f.item(), tuple(v.grad.item() for v in t)
    return value_and_grad


def casadi_contender(module):
    import casadi

    xs = [casadi.SX.sym(name) for name in module.INPUTS]
    if module.__name__ == "neuron":
        a, b, c, x, y = xs
        f = 1 / (1 + casadi.exp(-(a * x + b * y + c)))
    else:
        x, rest = xs[:FEATURES], xs[FEATURES:]
        h = [casadi.tanh(sum(rest[j * FEATURES + i] * x[i] for i in range(FEATURES))
                         + rest[HIDDEN * FEATURES + j]) for j in range(HIDDEN)]
        f = 1 / (1 + casadi.exp(-(sum(xs[-HIDDEN - 1 + j] * h[j] for j in range(HIDDEN)) + xs[-1])))
    v = casadi.vertcat(*xs)
    function = casadi.Function("f", [v], [f, casadi.gradient(f, v)])

    def value_and_grad(*values):
        f, grads = function(values)
        return float(f), [float(g) for g in grads.full().ravel()]
    return value_and_grad


SOURCES = {"neuron": (ROOT / "circuits" / "neuron.circ").read_text(), "mlp": mlp_source()}
CONTENDERS = {"SymPy lambdify(cse=True)": sympy_contender, "JAX jit(value_and_grad)": jax_contender,
              "PyTorch scalar tensors": torch_contender, "CasADi SX Function": casadi_contender}


def per_call(functions: dict, args, rounds: int) -> dict[str, float]:
    """Seconds per call of each function: the best of `rounds` rounds, taken in turn so
    that every contender sees the same machine (a busy one slows them all alike)."""
    numbers = {}
    for name, function in functions.items():
        function(*args)  # warm up (and JIT-compile)
        numbers[name] = max(1, int(0.01 / max(1e-7, timeit.timeit(lambda f=function: f(*args), number=1))))
    best = dict.fromkeys(functions, math.inf)
    for _ in range(rounds):
        for name, function in functions.items():
            t = timeit.timeit(lambda f=function: f(*args), number=numbers[name]) / numbers[name]
            best[name] = min(best[name], t)
    return best


def check_same(name, expected, got):
    value, grads = got
    assert math.isclose(float(value), expected[0], rel_tol=1e-9), name
    assert all(math.isclose(float(g), e, rel_tol=1e-6, abs_tol=1e-12) for g, e in zip(grads, expected[1])), name


def speed(rounds: int) -> None:
    print("## Per call, value and full gradient; ratio to the hand-tuned reference\n")
    print("| contender | neuron | ratio | 4-16-1 MLP | ratio |")
    print("|---|---|---|---|---|")
    rows: dict[str, list[str]] = {}
    for name, text in SOURCES.items():
        module = types.ModuleType(name)
        exec(circuitc.compile_source(text, name), module.__dict__)  # noqa: S102
        rng = random.Random(0)
        args = [rng.uniform(-1, 1) for _ in module.INPUTS]
        reference = hand_tuned_neuron if name == "neuron" else hand_tuned_mlp()
        expected = reference(*args)
        unsafe = hand_tuned_neuron_unsafe if name == "neuron" else hand_tuned_mlp(unsafe=True)
        contenders = {"hand-tuned straight-line Python": reference,
                      "the same with an unstable 1/(1+exp(-z)) sigmoid": unsafe,
                      "circuitc backward (value + gradient)": module.backward,
                      "circuitc forward (value only)": module.forward,
                      "textbook Unit/Gate objects": textbook(textbook_neuron if name == "neuron"
                                                             else textbook_mlp)}
        for contender, make in CONTENDERS.items():
            try:
                contenders[contender] = make(module)
            except ImportError:
                rows.setdefault(contender, []).extend(["not installed", ""])
        for contender, function in contenders.items():
            if contender != "circuitc forward (value only)":
                check_same(contender, expected, function(*args))
        times = per_call(contenders, args, rounds)
        base = times["hand-tuned straight-line Python"]
        for contender, t in times.items():
            rows.setdefault(contender, []).extend([f"{t * 1e6:.2f} µs", f"{t / base:.2f}x"])
    for contender, cells in sorted(rows.items(), key=lambda row: row[1][0] == "not installed"):
        print(f"| {contender} | {' | '.join(cells)} |")
    ratio = [float(c[:-1]) for c in rows["circuitc backward (value + gradient)"][1::2]]
    forward = [float(c[:-1]) for c in rows["circuitc forward (value only)"][1::2]]
    print(f"\nvalue + gradient / forward alone: neuron {ratio[0] / forward[0]:.2f}x, "
          f"MLP {ratio[1] / forward[1]:.2f}x\n")


# -- compile time and memory ----------------------------------------------------

def random_dag(gates: int, seed: int = 1, per_line: int = 1) -> str:
    """A deep random DAG, every gate live: each line computes `per_line` gates, the first
    reading the wire before it (so the depth is the size) and, for binary gates, another
    recent wire or an input: each input in turn for the first ten, then one time in 8.
    One gate per line is the worst case for the compiler: every gate is a statement to
    parse and a named wire with a line of its own in the generated code.

    The output depends on every input: inputs are read all along the DAG, not only by its
    first lines (through 10^5 gates a gradient underflows to 0), and no gate reads one
    wire twice as `w - w`, a constant that a compiler which simplifies would fold, and
    everything after it. tests/test_benchmarks.py checks that no input's gradient is 0
    at the sizes measured."""
    rng = random.Random(seed)
    inputs = [f"x{i}" for i in range(10)]
    names = list(inputs)
    lines = ["input " + ", ".join(f"{n} = {rng.uniform(-1, 1):.3f}" for n in names)]
    ops = ["{} * {}", "{} + {}", "{} - {}", "tanh({})", "sigmoid({})", "0.5 * {}", "sin({})"]
    reads = 0  # of inputs by binary gates

    def other() -> str:
        nonlocal reads
        if reads < len(inputs) or rng.random() < 1 / 8:
            reads += 1
            return inputs[reads % len(inputs)]
        return rng.choice(names[-20:-1])
    for k in range(0, gates, per_line):
        expr = names[-1]
        for _ in range(min(per_line, gates - k)):
            op = rng.choice(ops)
            others = [other() for _ in range(op.count("{}") - 1)]
            expr = op.format(f"({expr})" if " " in expr and not op[0].isalpha() else expr, *others)
        lines.append(f"w{len(names) - 10} = {expr}")
        names.append(f"w{len(names) - 10}")
    return "\n".join(lines) + "\n"


def _peak_megabytes() -> float:
    """This process's peak resident memory. Linux's VmHWM starts afresh at exec, whereas
    ru_maxrss would also count the parent that forked this process."""
    try:
        status = Path("/proc/self/status").read_text()
        return int(status.split("VmHWM:")[1].split()[0]) / 1024
    except (OSError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _compile_once(gates: int, per_line: int = 1) -> None:
    """Child process: time each phase of compiling one random DAG; print one line."""
    import gc

    from circuitc.api import differentiate
    from circuitc.cache import compiled_blocks
    from circuitc.emit.python import emit
    from circuitc.lower import lower
    from circuitc.parse import parse

    value = random_dag(gates, per_line=per_line)
    times = {}
    start = t = time.perf_counter()
    gc.disable()  # as circuitc.compile_graphs does
    for phase, step in (("parse", parse), ("lower", lambda tree: lower(tree, "dag")),
                        ("differentiate", differentiate),
                        ("emit", lambda graphs: emit(*graphs, "bench")),
                        ("compile()", lambda source: compiled_blocks(source, "dag"))):
        value = step(value)
        now = time.perf_counter()
        times[phase], t = now - t, now
    gc.enable()
    peak = _peak_megabytes()
    phases = " ".join(f"{p}={s:.3f}" for p, s in times.items())
    print(f"{time.perf_counter() - start:.4f} {peak:.0f} {phases}")


def _through_api(gates: int, per_line: int = 1) -> None:
    """One cold `circuitc.api.load_source` of a random DAG (the cache off), each phase's wall
    time as the API's progress hooks report it (from the start to the first report apart),
    and how often the text was parsed and analysed."""
    from circuitc import cache, shapes
    from circuitc import parse as parse_module
    from circuitc.progress import reporting

    text = random_dag(gates, per_line=per_line)
    made = shapes.Analysis.__init__
    analyses = []

    def counted(self, *args):
        analyses.append(1)
        made(self, *args)
    shapes.Analysis.__init__ = counted
    times: dict[str, float] = {}
    last = ["(before any phase)", time.perf_counter()]

    def heard(name):
        now = time.perf_counter()
        times[last[0]] = times.get(last[0], 0.0) + now - last[1]
        last[0], last[1] = name, now
    start = last[1]
    with cache.disabled(), reporting(heard):
        circuitc.api.load_source(text, "dag.circ")
    total = time.perf_counter() - start
    reads = parse_module._parsed.cache_info()
    phases = ", ".join(f"{name} {s:.2f}" for name, s in times.items() if s >= 0.005)
    print(f"{gates:,} gates: {total:.2f} s ({phases}); parsed {reads.misses}, "
          f"analysed {len(analyses)}")


def scaling(sizes: list[int], per_line: int = 1) -> None:
    print(f"## Compile time by size (random deep DAG, {per_line} gate{'s' * (per_line > 1)} per line, "
          "fresh process per size)\n")
    print("| gates | total | µs/gate | growth vs previous size | peak memory | phases (s) |")
    print("|---|---|---|---|---|---|")
    previous = None
    for n in sizes:
        out = subprocess.run([sys.executable, __file__, "--compile-once", str(n), str(per_line)],
                             capture_output=True, text=True, check=True).stdout.split()
        total, peak, phases = float(out[0]), float(out[1]), " ".join(out[2:])
        growth = f"{total / previous:.1f}x" if previous else ""
        print(f"| {n:,} | {total:.3f} s | {total / n * 1e6:.1f} | {growth} | {peak:,.0f} MB | {phases} |")
        previous = total
    print()


def machine(packages=("sympy", "jax", "torch", "casadi", "lark")) -> None:
    """What the numbers were measured on, with the versions of `packages` installed."""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor() or platform.machine()
    versions = [f"Python {platform.python_version()}", f"circuitc {circuitc.__version__}"]
    for package in packages:
        try:
            versions.append(f"{package} {importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    print(f"Measured {time.strftime('%Y-%m-%d')} on {cpu}, {os.cpu_count()} cores, "
          f"{platform.system()} {platform.release()}; {', '.join(versions)}.\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer repeats")
    parser.add_argument("--compile-once", type=int, nargs="+", metavar=("GATES", "PER_LINE"),
                        help="time one compile in this process and print its phases")
    parser.add_argument("--through-api", type=int, nargs="+", metavar=("GATES", "PER_LINE"),
                        help="one cold load through the API, its phases as the API reports them")
    args = parser.parse_args()
    if args.compile_once:
        return _compile_once(*args.compile_once[:2])
    if args.through_api:
        return _through_api(*args.through_api[:2])
    machine()
    speed(rounds=5 if args.quick else 20)
    scaling([100, 1_000, 10_000] if args.quick else [100, 1_000, 10_000, 100_000, 1_000_000])
    scaling([10_000] if args.quick else [10_000, 100_000, 1_000_000], per_line=8)


if __name__ == "__main__":
    main()
