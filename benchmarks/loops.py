"""The python target's whole-bus code (loops) against the written-out module and hand-written
Python: value and gradient (`backward`) of

- the Rosenbrock function (`circuits/rosenbrock.circ`) at N points' dimension, against a
  hand-written pure-Python loop computing f and its gradient, and the written-out module;
- micrograd's demo network (`examples/mlp.circ`) at one point, against the written-out module;
- the threshold: Rosenbrock at small N, loops against written out (`api.LOOPS_FROM`).

Results are checked against each other before timing. Each of `--repeat` rounds runs every
contender once, interleaved; the ratios are of the best times.

    python benchmarks/loops.py [--n 10000] [--repeat 15]
"""

from __future__ import annotations

import argparse
import random
import time
import types
from pathlib import Path

import circuitc
from circuitc import api

ROOT = Path(__file__).resolve().parent.parent


def rosen_by_hand(x):
    """f and its gradient in one loop, as one would write them."""
    n = len(x)
    f = 0.0
    g = [0.0] * n
    for i in range(n - 1):
        xi = x[i]
        a = x[i + 1] - xi * xi
        b = 1.0 - xi
        f += 100.0 * a * a + b * b
        g[i] += -400.0 * a * xi - 2.0 * b
        g[i + 1] += 200.0 * a
    return f, g


def module(path: Path, elements: bool, sizes=None, looped: bool = True):
    saved = api.LOOPS_FROM
    api.LOOPS_FROM = 0 if looped else saved
    try:
        source = circuitc.compile_source(path.read_text(), str(path), sizes=sizes, elements=elements)
    finally:
        api.LOOPS_FROM = saved
    m = types.ModuleType(path.stem)
    exec(compile(source, str(path), "exec"), m.__dict__)  # noqa: S102
    return m


def best(contenders: dict, repeat: int) -> dict:
    times = {name: float("inf") for name in contenders}
    for _ in range(repeat):
        for name, call in contenders.items():
            start = time.perf_counter()
            call()
            times[name] = min(times[name], time.perf_counter() - start)
    return times


def report(title: str, times: dict, base: str) -> None:
    print(title)
    for name, t in times.items():
        print(f"  {name:<22} {t * 1e3:9.3f} ms   {t / times[base]:6.2f}x {base}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    rosen = ROOT / "circuits" / "rosenbrock.circ"
    rng = random.Random(0)

    x = [rng.uniform(-2, 2) for _ in range(args.n)]
    loops = module(rosen, False, {"n": args.n})
    written = module(rosen, True, {"n": args.n})
    f, g = rosen_by_hand(x)
    for m in (loops, written):
        value, (grad,) = m.backward(x)
        assert abs(value - f) <= 1e-9 * abs(f) and all(
            abs(a - b) <= 1e-9 * max(1.0, abs(b)) for a, b in zip(grad, g))
    times = best({"hand-written loop": lambda: rosen_by_hand(x),
                  "loops (whole-bus)": lambda: loops.backward(x),
                  "written out": lambda: written.backward(x)}, args.repeat)
    report(f"Rosenbrock N = {args.n}, value + gradient:", times, "hand-written loop")

    mlp = ROOT / "examples" / "mlp.circ"
    loops, written = module(mlp, False), module(mlp, True)
    shapes = written.SHAPES
    point = []
    for name in written.INPUTS:
        count = 1
        for n in shapes[name]:
            count *= n
        flat = [rng.uniform(-1, 1) for _ in range(count)]
        point.append(api.Elements(written)._nested(flat, [name])[0] if shapes[name] else flat[0])
    assert loops.backward(*point)[0] == written.backward(*point)[0]
    times = best({"written out": lambda: written.backward(*point),
                  "loops (whole-bus)": lambda: loops.backward(*point)}, args.repeat * 20)
    report("mlp.circ (micrograd's demo network), one point, value + gradient:", times, "written out")

    print("Rosenbrock at small N, value + gradient, loops over written out:")
    for n in (8, 64, 256, 1024):
        x = [rng.uniform(-2, 2) for _ in range(n)]
        loops = module(rosen, False, {"n": n})
        written = module(rosen, True, {"n": n})
        times = best({"loops": lambda m=loops, x=x: m.backward(x),
                      "written": lambda m=written, x=x: m.backward(x)},
                     args.repeat * 10)
        print(f"  n = {n:<3} {times['loops'] / times['written']:5.2f}x")


if __name__ == "__main__":
    main()
