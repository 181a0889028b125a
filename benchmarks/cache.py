"""Cold and warm `circuitc.load` and commands of a generated circuit, through the compile cache.

    python benchmarks/cache.py             # 10^5 gates, one gate per line
    python benchmarks/cache.py 10000       # another size

Each step runs in a fresh process (as a command would), with `CIRCUITC_CACHE_DIR` a
new temporary directory: `circuitc.load` twice (cold: compiles and writes the entry;
warm: reads it), then `circuitc eval` twice (a key of its own: the command passes its
options explicitly) and `circuitc verify`, which reads eval's entries (the module and
the forward graph). Wall time and CPU time (user + system) of the process, and for the
loads the wall and CPU time inside `circuitc.load`. The circuit is `benchmarks/run.py`'s random
deep DAG.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import random_dag

LOAD = ("import sys, time, circuitc; t, c = time.perf_counter(), time.process_time(); "
        "circuitc.load(sys.argv[1]); "
        "print(time.perf_counter() - t, time.process_time() - c)")


def timed(command: list[str], env: dict) -> tuple[float, float, str]:
    """Wall and CPU seconds of `command` in a fresh process, and its stdout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    out = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("gates", type=int, nargs="?", default=100_000)
    args = parser.parse_args()
    circuitc = str(Path(sys.executable).parent / "circuitc")
    with tempfile.TemporaryDirectory() as tmp:
        circuit = Path(tmp) / "dag.circ"
        circuit.write_text(random_dag(args.gates))
        where = Path(tmp) / "cache"
        env = {**os.environ, "CIRCUITC_CACHE_DIR": str(where)}
        print(f"{args.gates:,} gates, one per line; seconds, each step in a fresh process; "
              f"load average {os.getloadavg()[0]:.1f}\n")
        print("| step | wall | CPU | inside circuitc.load: wall, CPU | cache size after |")
        print("|---|---|---|---|---|")
        steps = [("load, cold", [sys.executable, "-c", LOAD, str(circuit)]),
                 ("load, warm", [sys.executable, "-c", LOAD, str(circuit)]),
                 ("eval, cold", [circuitc, "eval", str(circuit)]),
                 ("eval, warm", [circuitc, "eval", str(circuit)]),
                 ("verify, warm", [circuitc, "verify", str(circuit)])]
        for name, command in steps:
            wall, cpu, out = timed(command, env)
            inside = ", ".join(f"{float(x):.2f}" for x in out.split()) if command[1] == "-c" else ""
            size = sum(f.stat().st_size for f in where.iterdir())
            print(f"| {name} | {wall:.2f} | {cpu:.2f} | {inside} | {size / 2**20:.0f} MiB |")
        print(f"\nload average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
