"""How long Graphviz's `dot` takes to lay out circuitc's drawings, by shape and size.

Three shapes of circuit, each at growing sizes: a chain (`w_i = sin(w_{i-1}) * 0.5`),
a wide sum (`f = x0*y0 + x1*y1 + ...`) and a one-hidden-layer network (`h_j =
tanh(sum_i W_ji * x_i)`, `f = sum_j v_j * h_j`, written out as scalars). For each, the
drawing `circuitc graph` makes (values included) is counted (nodes, edges, the most
edges out of one node) and handed to `dot -Tsvg`; the table gives dot's CPU
time (a busy machine slows wall time, not this much), or `> T` where it ran past the
timeout. What `circuitc graph` refuses to hand to `dot` without --force
(`draw.too_big_to_lay_out`) is marked.

    python benchmarks/drawing_size.py [--timeout 60] [--quick]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from circuitc import draw


def chain(n: int) -> str:
    return "input x = 0.5\nw0 = sin(x)\n" + "".join(f"w{i} = sin(w{i - 1}) * 0.5\n" for i in range(1, n))


def wide_sum(n: int) -> str:
    names = [f"x{i} = 0.{i % 10}, y{i} = 1.{i % 10}" for i in range(n)]
    return f"input {', '.join(names)}\nf = {' + '.join(f'x{i} * y{i}' for i in range(n))}\n"


def network(width: int, features: int = 4) -> str:
    xs = [f"x{i}" for i in range(features)]
    lines = ["input " + ", ".join(f"{x} = 0.5" for x in xs)]
    for j in range(width):
        lines.append("input " + ", ".join(f"W{j}_{i} = 0.1" for i in range(features)) + f", v{j} = 0.2")
        lines.append(f"h{j} = tanh({' + '.join(f'W{j}_{i} * x{i}' for i in range(features))})")
    lines.append(f"f = {' + '.join(f'v{j} * h{j}' for j in range(width))}")
    return "\n".join(lines) + "\n"


SHAPES = {"chain": (chain, [250, 500, 1000, 2000, 4000]),
          "wide sum": (wide_sum, [100, 250, 500, 1000, 2500]),
          "network, 4 inputs": (network, [10, 25, 30, 35, 50])}


def layout_seconds(dot: str, timeout: float) -> float | None:
    """CPU seconds of `dot -Tsvg` on `dot`; None past `timeout` (wall) seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        subprocess.run(["dot", "-Tsvg", "-o", "/dev/null"], input=dot, text=True, check=True,
                       timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--quick", action="store_true", help="the first three sizes only")
    args = parser.parse_args()
    print("| shape | size | nodes | edges | most edges out of a node | dot -Tsvg CPU | refused |")
    print("|---|---|---|---|---|---|---|")
    for shape, (make, sizes) in SHAPES.items():
        for size in sizes[:3] if args.quick else sizes:
            graph = draw.circuit(make(size), f"{shape}.circ")
            dot = draw.to_dot(draw.evaluate(graph, graph.defaults))
            nodes, edges, fan_out = draw.dot_size(dot)
            seconds = layout_seconds(dot, args.timeout)
            shown = f"> {args.timeout:.0f} s" if seconds is None else f"{seconds:.2f} s"
            refused = "yes" if draw.too_big_to_lay_out(dot) else ""
            print(f"| {shape} | {size:,} | {nodes:,} | {edges:,} | {fan_out} | {shown} | {refused} |",
                  flush=True)


if __name__ == "__main__":
    main()
