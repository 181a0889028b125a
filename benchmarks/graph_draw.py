"""Time to draw deep circuits: circuitc's own writing, and Graphviz's layout.

The circuit is a chain of N steps `w_i = sin(w_{i-1}) * x`, 2 gates a step, with
the input `x` read by every step: the shape that makes one forking wire span the
whole picture. circuitc draws such a wire as a copy beside each reader (see
`circuitc.draw.REACH`); this prints, per size, the seconds to evaluate and write
dot, Mermaid and JSON, and the seconds Graphviz's `dot -Tsvg` needs to lay it out.

    python benchmarks/graph_draw.py [--steps 10 100 1000] [--timeout 300]
"""

from __future__ import annotations

import argparse
import subprocess
import time

from circuitc import draw


def chain(steps: int) -> str:
    return "input x = 0.5\nw0 = x * 2\n" + "".join(
        f"w{i} = sin(w{i - 1}) * x\n" for i in range(1, steps))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args()
    print(f"{'steps':>6} {'nodes':>6} {'compile s':>10} {'evaluate s':>11} {'write s':>8} "
          f"{'dot -Tsvg s':>12}")
    for steps in args.steps:
        t0 = time.perf_counter()
        graph = draw.circuit(chain(steps), "chain.circ")
        t1 = time.perf_counter()
        drawing = draw.with_values(graph, graph.defaults)
        t2 = time.perf_counter()
        dot = draw.to_dot(drawing)
        draw.to_mermaid(drawing)
        draw.to_json(drawing)
        t3 = time.perf_counter()
        try:
            subprocess.run(["dot", "-Tsvg", "-o", "/dev/null"], input=dot, text=True, check=True,
                           timeout=args.timeout)
            layout = f"{time.perf_counter() - t3:12.2f}"
        except subprocess.TimeoutExpired:
            layout = f"{'> ' + str(args.timeout):>12}"
        print(f"{steps:6d} {len(graph.nodes):6d} {t1 - t0:10.3f} {t2 - t1:11.3f} {t3 - t2:8.3f} "
              f"{layout}")


if __name__ == "__main__":
    main()
