"""Training on more points than fit in memory, through `circuitc.dask`.

Writes 10^7 points of two interleaved half-moons (examples/train.py's `two_moons`, one
seed per file) as Parquet files, `--chunk` points per file, never holding more than one
file's points; then trains `moons.circ` (8 tanh units, logistic loss) on all of them with
full-batch gradient descent with momentum. Each step is one pass over the files: Dask reads
them partition by partition, the module runs on each partition, and the parameters'
gradients are summed across partitions, so memory is bounded by the partition size (times
the number of partitions in flight), not by the number of points.

    python examples/out_of_core.py                      # 10^7 points, in a temporary directory
    python examples/out_of_core.py --points 100000      # a smaller run
    python examples/out_of_core.py --dir data/moons     # keep the files there
    python examples/out_of_core.py --workers 2          # on a local dask.distributed cluster

Needs `pip install 'circuitc[dask]'`. Prints the mean loss and the training accuracy of
each step, the last line `accuracy XX.X%`.
"""

from __future__ import annotations

import argparse
import tempfile
from contextlib import ExitStack
from pathlib import Path

import dask
import dask.dataframe as dd
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from train import two_moons

import circuitc
import circuitc.dask

HERE = Path(__file__).resolve().parent


def write_points(directory: Path, points: int, chunk: int) -> None:
    """`points` labelled two-moons points as Parquet files of `chunk` rows each (columns x0,
    x1, label), one file in memory at a time."""
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("part-*.parquet"):
        old.unlink()
    for i, start in enumerate(range(0, points, chunk)):
        xy, label = two_moons(min(chunk, points - start), noise=0.15, seed=i)
        table = pa.table({"x0": xy[:, 0], "x1": xy[:, 1], "label": label})
        pq.write_table(table, directory / f"part-{i:05d}.parquet")


def train(directory: Path, steps: int, rate: float, momentum: float) -> float:
    """Gradient descent on the mean loss over the points in `directory`'s Parquet files;
    the last step's training accuracy."""
    moons = circuitc.load(HERE / "moons.circ", target="numpy", wrt=["W", "b", "v", "c"])
    draws = np.random.default_rng(0).normal(0.0, 1.0, 4 * 8 + 1)  # as train.py draws them
    units = draws[:-1].reshape(8, 4)
    params = {"W": units[:, :2], "b": units[:, 2], "v": units[:, 3], "c": float(draws[-1])}
    velocity = dict.fromkeys(params, 0.0)
    # One array of the three columns, so that each step reads each file once; a point is a
    # row of it (x0, x1 the bus `x`), its label the last column.
    data = dd.read_parquet(directory, columns=["x0", "x1", "label"]).to_dask_array()
    n = sum(pq.ParquetFile(path).metadata.num_rows for path in directory.glob("*.parquet"))
    x, label = data[:, :2], data[:, 2]
    for k in range(steps):
        (loss, score), grads = circuitc.dask.backward(moons, x, label, **params,
                                                      d_loss=1.0 / n, d_score=0.0)
        mean, right, grads = dask.compute(loss.sum() / n, (score * label > 0).mean(), grads)
        print(f"step {k} loss {float(mean):.6f} accuracy {float(right):.1%}")
        for name, g in zip(moons.WRT, grads):
            velocity[name] = momentum * velocity[name] - rate * g
            params[name] = params[name] + velocity[name]
    return float(right)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n\n")[0])
    parser.add_argument("--points", type=int, default=10_000_000, help="default: 10^7")
    parser.add_argument("--chunk", type=int, default=1_000_000, help="points per file")
    parser.add_argument("--dir", type=Path, help="where to write the files (default: a "
                        "temporary directory, removed at the end)")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--rate", type=float, default=1.0)
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--workers", type=int, default=0, help="run on a local dask.distributed "
                        "cluster of this many worker processes (default: Dask's threads)")
    args = parser.parse_args()
    with ExitStack() as stack:
        directory = args.dir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        if args.workers:
            from distributed import Client, LocalCluster
            cluster = stack.enter_context(LocalCluster(
                n_workers=args.workers, threads_per_worker=1, processes=True,
                host="127.0.0.1", dashboard_address=None))
            stack.enter_context(Client(cluster))
        write_points(directory, args.points, min(args.chunk, args.points))
        right = train(directory, args.steps, args.rate, args.momentum)
    print(f"accuracy {right:.1%}")


if __name__ == "__main__":
    main()
