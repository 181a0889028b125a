"""One gradient of `examples/moons.circ`'s mean loss over 10^7 two-moons points: the numpy
target in memory against `circuitc.dask` reading the points from Parquet files, on Dask's
threaded scheduler and on a local `dask.distributed` cluster of two worker processes (as
configured by default, and with `MALLOC_MMAP_THRESHOLD_` in the workers' environment).

The points are written once as Parquet files of `--chunk` points (examples/out_of_core.py).
Each contender runs in a fresh process, computes the mean loss, the accuracy and the four
parameter gradients (checked against the in-memory module's to 1e-12 relative) `--repeat`
times, and reports its best wall time, its best CPU time (all threads; for the cluster, the
client's plus the workers'), which a loaded machine disturbs less, and its peak resident
memory (Linux's VmHWM; for the cluster, the client's plus each worker's and nanny's). The
in-memory contender's time is the `backward` call alone, the data already in memory; the
Dask contenders' time is a whole training step's work: building the graph, reading every
file, the module on each partition, the tree sum.

    python benchmarks/dask.py [--points 10000000] [--chunk 1000000] [--repeat 3] [--dir DIR]
                              [--only numpy,dask-threads,...]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parent / "examples"
CONTENDERS = ("numpy", "dask-threads", "dask-cluster", "dask-cluster-mmap")
# The workers' environment for `dask-cluster-mmap`: glibc serves blocks under 32 MiB (a
# 10^6-point array is 8 MB) from the heap, not each from a fresh `mmap` (docs/dask.md).
MMAP = {"MALLOC_MMAP_THRESHOLD_": 32 * 2**20}
# Run as a script, this file would be `dask` itself to `import dask`: not its folder first.
if sys.path and Path(sys.path[0]).resolve() == HERE:
    del sys.path[0]


def _peak_megabytes() -> float:
    """This process's peak resident memory (VmHWM starts afresh at exec; ru_maxrss would
    also count the parent that forked the process)."""
    try:
        status = Path("/proc/self/status").read_text()
        return int(status.split("VmHWM:")[1].split()[0]) / 1024
    except (OSError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _setup(directory: Path):
    """The module, its parameters (train.py's start), and the number of points."""
    import pyarrow.parquet as pq

    import circuitc

    moons = circuitc.load(EXAMPLES / "moons.circ", target="numpy", wrt=["W", "b", "v", "c"])
    draws = np.random.default_rng(0).normal(0.0, 1.0, 4 * 8 + 1)
    units = draws[:-1].reshape(8, 4)
    params = {"W": units[:, :2], "b": units[:, 2], "v": units[:, 3], "c": float(draws[-1])}
    n = sum(pq.ParquetFile(p).metadata.num_rows for p in directory.glob("*.parquet"))
    return moons, params, n


def _in_memory(directory: Path, repeat: int) -> tuple[list[tuple], list]:
    import pyarrow.parquet as pq

    moons, params, n = _setup(directory)
    table = pq.read_table(sorted(directory.glob("*.parquet")))
    x = np.stack([table["x0"].to_numpy(), table["x1"].to_numpy()], axis=1)
    label = table["label"].to_numpy()
    del table
    times = []
    for _ in range(repeat):
        start, cpu = time.perf_counter(), time.process_time()
        (loss, score), grads = moons.backward(x, label, **params, d_loss=1.0 / n, d_score=0.0)
        result = [loss.sum() / n, np.mean(score * label > 0), *grads]
        times.append((time.perf_counter() - start, time.process_time() - cpu))
        del loss, score
    return times, result


def _dask(directory: Path, repeat: int, scheduler, client=None) -> tuple[list[tuple], list]:
    import dask
    import dask.dataframe as dd

    import circuitc.dask

    moons, params, n = _setup(directory)
    def workers_cpu() -> float:
        return sum(client.run(time.process_time).values()) if client else 0.0

    times = []
    for _ in range(repeat):
        before = workers_cpu()
        start, cpu = time.perf_counter(), time.process_time()
        data = dd.read_parquet(directory, columns=["x0", "x1", "label"]).to_dask_array()
        x, label = data[:, :2], data[:, 2]
        (loss, score), grads = circuitc.dask.backward(moons, x, label, **params,
                                                      d_loss=1.0 / n, d_score=0.0)
        mean, right, grads = dask.compute(loss.sum() / n, (score * label > 0).mean(), grads,
                                          scheduler=scheduler)
        times.append((time.perf_counter() - start, time.process_time() - cpu
                      + workers_cpu() - before))
    return times, [mean, right, *grads]


def _child(which: str, directory: Path, repeat: int) -> None:
    """Run one contender in this (fresh) process; print its times, memory and results."""
    if which.startswith("dask-cluster"):
        import dask
        from distributed import Client, LocalCluster

        environ = dask.config.get("distributed.nanny.pre-spawn-environ")
        if which == "dask-cluster-mmap":
            environ = {**environ, **MMAP}
        with (dask.config.set({"distributed.nanny.pre-spawn-environ": environ}),
              LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address=None) as cluster, Client(cluster) as client):
            times, result = _dask(directory, repeat, client, client)
            workers = sum(client.run(_peak_megabytes).values())
            nannies = sum(client.run(_peak_megabytes, nanny=True).values())
        peak = _peak_megabytes() + workers + nannies
    elif which == "numpy":
        times, result = _in_memory(directory, repeat)
        peak = _peak_megabytes()
    else:
        times, result = _dask(directory, repeat, "threads")
        peak = _peak_megabytes()
    print(json.dumps({"times": times, "peak": peak,
                      "result": [np.asarray(r).tolist() for r in result]}))


def _check(result: list, want: list) -> None:
    for got, expected in zip(result, want):
        got, expected = np.asarray(got), np.asarray(expected)
        scale = max(1.0, float(np.max(np.abs(expected))))
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12 * scale)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n\n")[0])
    parser.add_argument("--points", type=int, default=10_000_000)
    parser.add_argument("--chunk", type=int, default=1_000_000, help="points per file")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path, help="reuse (or write) the Parquet files here")
    parser.add_argument("--only", help="these contenders (comma-separated, numpy first)")
    parser.add_argument("--child", choices=CONTENDERS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.dir, args.repeat)
        return
    with tempfile.TemporaryDirectory() as scratch:
        directory = args.dir or Path(scratch)
        sys.path.insert(0, str(EXAMPLES))
        from out_of_core import write_points

        if not sorted(directory.glob("part-*.parquet")) or not args.dir:
            write_points(directory, args.points, min(args.chunk, args.points))
        contenders = args.only.split(",") if args.only else CONTENDERS
        runs = {}
        for which in contenders:
            out = subprocess.run([sys.executable, __file__, "--child", which, "--dir",
                                  str(directory), "--repeat", str(args.repeat)],
                                 capture_output=True, text=True, check=True)
            runs[which] = json.loads(out.stdout.strip().splitlines()[-1])
    for which in contenders[1:]:
        _check(runs[which]["result"], runs["numpy"]["result"])
    base = [min(t[i] for t in runs["numpy"]["times"]) for i in (0, 1)]
    print(f"{args.points:,} points, {args.chunk:,} per Parquet file; best of {args.repeat}\n")
    print("| contender | time per gradient | ratio | CPU time | ratio | peak memory |")
    print("|---|---|---|---|---|---|")
    for which in contenders:
        wall, cpu = (min(t[i] for t in runs[which]["times"]) for i in (0, 1))
        print(f"| {which} | {wall:.2f} s | {wall / base[0]:.2f}x | {cpu:.2f} s | "
              f"{cpu / base[1]:.2f}x | {runs[which]['peak']:,.0f} MB |")


if __name__ == "__main__":
    main()
