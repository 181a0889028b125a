"""Cold and warm `circuitc.load` of a generated circuit, through the compile cache.

    python benchmarks/cache.py             # 10^5 gates, one gate per line
    python benchmarks/cache.py 10000 3     # another size; rounds of cold + warm loads

Each load runs in a fresh process (as a command would), with `CIRCUITC_CACHE_DIR` a
new temporary directory: the first load of a round compiles and writes the entry
(cold), the second reads it (warm). The circuit is `benchmarks/run.py`'s random deep
DAG. Also times a warm `circuitc verify` and `circuitc eval`, which read the same entry.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import random_dag

LOAD = "import sys, time, circuitc; t = time.perf_counter(); circuitc.load(sys.argv[1]); " \
       "print(time.perf_counter() - t)"


def timed(command: list[str], env: dict) -> float:
    """Wall time of `command` in a fresh process (interpreter start-up included)."""
    t = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True)
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("gates", type=int, nargs="?", default=100_000)
    parser.add_argument("rounds", type=int, nargs="?", default=2)
    args = parser.parse_args()
    circuitc = str(Path(sys.executable).parent / "circuitc")
    with tempfile.TemporaryDirectory() as tmp:
        circuit = Path(tmp) / "dag.circ"
        circuit.write_text(random_dag(args.gates))
        print(f"{args.gates:,} gates, one per line; seconds, each in a fresh process\n")
        print("| round | load cold | load warm (in load) | load warm (process) "
              "| eval warm | verify warm | entry |")
        print("|---|---|---|---|---|---|---|")
        for k in range(args.rounds):
            env = {**os.environ, "CIRCUITC_CACHE_DIR": str(Path(tmp) / f"cache{k}")}
            cold = timed([sys.executable, "-c", LOAD, str(circuit)], env)
            t = time.perf_counter()
            inner = subprocess.run([sys.executable, "-c", LOAD, str(circuit)], env=env,
                                   check=True, capture_output=True, text=True).stdout
            warm = time.perf_counter() - t
            ev = timed([circuitc, "eval", str(circuit)], env)
            ver = timed([circuitc, "verify", str(circuit)], env)
            size = sum(f.stat().st_size for f in (Path(tmp) / f"cache{k}").iterdir())
            print(f"| {k + 1} | {cold:.2f} | {float(inner):.2f} | {warm:.2f} | {ev:.2f} "
                  f"| {ver:.2f} | {size / 2**20:.0f} MiB |")


if __name__ == "__main__":
    main()
