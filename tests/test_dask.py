"""circuitc.dask (docs/dask.md): a numpy-target module over Dask arrays and DataFrame columns
gives the in-memory module's numbers, on the threaded scheduler and on a two-process
`LocalCluster` (the module rebuilt on the workers from its source); outputs and per-point
gradients stay lazy Dask arrays chunked as the data, a parameter's gradient is summed over
the partitions; bad chunking, shapes and targets are refused with a message."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import dask
import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from distributed import Client, LocalCluster

import circuitc
import circuitc.dask as cdask
from conftest import CIRCUITS, ROOT, run_cli

MLP_PARAMS = ["W1", "b1", "W2", "b2", "w3", "c"]
BUSES = """\
size n = 3
input x[n], W[n, n], b[n]
h[i] = tanh(sum(W[i, j] * x[j] for j) + b[i])
s = sum(h[i] * h[i] for i)
output h, s
"""


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as local, Client(local, set_as_default=False) as client:
        yield client


@pytest.fixture(params=["threads", "cluster"])
def compute(request):
    """`dask.compute` on the threaded scheduler or on the cluster's two worker processes."""
    scheduler = request.getfixturevalue("cluster") if request.param == "cluster" else "threads"
    return lambda *values: dask.compute(*values, scheduler=scheduler)


def _close(got, want):
    """Equal to 1e-12 relative to the largest magnitude (sums taken in another order)."""
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    assert got.shape == want.shape
    scale = max(1.0, float(np.max(np.abs(want), initial=0.0)))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * scale)


def _mlp_case(n: int):
    rng = np.random.default_rng(7)
    t = rng.uniform(0.0, np.pi, n)
    upper = rng.uniform(size=n) < 0.5
    points = np.where(upper[:, None], np.c_[np.cos(t), np.sin(t)],
                      np.c_[1 - np.cos(t), 0.5 - np.sin(t)]) + rng.normal(0, 0.1, (n, 2))
    labels = np.where(upper, 1.0, -1.0)
    params = {"W1": rng.uniform(-1, 1, (16, 2)), "b1": rng.normal(0, 0.1, 16),
              "W2": rng.uniform(-1, 1, (16, 16)), "b2": rng.normal(0, 0.1, 16),
              "w3": rng.uniform(-1, 1, 16), "c": 0.1}
    return points, labels, params


def test_neuron_over_a_batch_matches_the_numpy_module(compute):
    neuron = circuitc.load(CIRCUITS / "neuron.circ", target="numpy")
    x, y = np.random.default_rng(0).normal(size=(2, 1000))
    lazy = cdask.backward(neuron, 1.0, 2.0, -3.0, da.from_array(x, chunks=300),
                          da.from_array(y, chunks=300))
    f, grads = lazy
    assert isinstance(f, da.Array) and f.chunks == ((300, 300, 300, 100),)
    assert all(isinstance(g, da.Array) for g in grads)
    assert [g.shape for g in grads] == [(), (), (), (1000,), (1000,)]
    (f, grads), = compute(lazy)
    want_f, want_grads = neuron.backward(1.0, 2.0, -3.0, x, y)
    _close(f, want_f)
    for got, want in zip(grads, want_grads):
        _close(got, want)
    forward, = compute(cdask.forward(neuron, 1.0, 2.0, -3.0, da.from_array(x, chunks=300), y=y))
    _close(forward, want_f)


def test_the_documented_example_gathers_only_the_parameters_gradients(monkeypatch):
    """docs/dask.md's first example, at 10^4 points: the data's per-point gradients (as
    large as the data) are not made, and not brought into memory by `dask.compute`."""
    page = (ROOT / "docs" / "dask.md").read_text()
    example = page.split("```python\n", 1)[1].split("```", 1)[0]
    assert example.count("10**8") == 2 and example.count("10**6") == 2
    monkeypatch.chdir(ROOT)
    namespace = {}
    exec(example.replace("10**8", "10**4").replace("10**6", "10**3"), namespace)  # noqa: S102
    grads = namespace["grads"]
    assert [np.shape(g) for g in grads] == [(), (), ()]  # a, b, c: summed over the points
    x, y = dask.compute(namespace["x"], namespace["y"])
    neuron = circuitc.load(CIRCUITS / "neuron.circ", target="numpy", fix=["x", "y"])
    total, want = neuron.backward(1.0, 2.0, -3.0, x, y)
    _close(namespace["total"], total.sum())
    for got, expected in zip(grads, want):
        _close(got, expected)


def test_mlp_on_moons_sums_the_parameter_gradients_over_partitions(compute):
    mlp = circuitc.load(ROOT / "examples" / "mlp.circ", target="numpy", wrt=MLP_PARAMS)
    points, labels, params = _mlp_case(4000)
    seeds = {"d_loss": 1 / 4000, "d_score": 0.0}
    (loss, score), grads = cdask.backward(mlp, x=da.from_array(points, chunks=(700, 1)),
                                          y=da.from_array(labels, chunks=700), **params, **seeds)
    assert [g.shape for g in grads] == [np.shape(params[name]) for name in MLP_PARAMS]
    assert all(g.npartitions == 1 for g in grads)  # summed to one block
    assert loss.chunks == ((700,) * 5 + (500,),)
    (loss, score, total), grads = compute((loss, score, loss.sum()), grads)
    (want_loss, want_score), want_grads = mlp.backward(x=points, y=labels, **params, **seeds)
    _close(loss, want_loss)
    _close(score, want_score)
    _close(total, want_loss.sum())
    for got, want in zip(grads, want_grads):
        _close(got, want)


def test_dataframe_columns_are_batch_inputs(compute):
    neuron = circuitc.load(CIRCUITS / "neuron.circ", target="numpy")
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"x": rng.normal(size=500), "y": rng.normal(size=500),
                          "w": rng.uniform(size=500) < 0.5})  # a boolean column: 0.0 and 1.0
    ddf = dd.from_pandas(frame, npartitions=4)
    f, grads = cdask.backward(neuron, 1.0, 2.0, -3.0, ddf["x"], ddf["y"], d_f=ddf["w"])
    assert f.dtype == np.float64 and all(g.dtype == np.float64 for g in grads)
    (f, grads), = compute((f, grads))
    want_f, want_grads = neuron.backward(1.0, 2.0, -3.0, frame["x"].to_numpy(),
                                         frame["y"].to_numpy(), frame["w"].to_numpy())
    _close(f, want_f)
    for got, want in zip(grads, want_grads):
        _close(got, want)


def test_a_dataframe_is_a_bus_input_row_by_row(compute):
    moons = circuitc.load(ROOT / "examples" / "moons.circ", target="numpy", wrt=["W", "b", "v", "c"])
    points, labels, _ = _mlp_case(600)
    rng = np.random.default_rng(2)
    params = {"W": rng.normal(size=(8, 2)), "b": rng.normal(size=8), "v": rng.normal(size=8),
              "c": 0.3}
    ddf = dd.from_pandas(pd.DataFrame({"x0": points[:, 0], "x1": points[:, 1], "label": labels}),
                         npartitions=3)
    lazy = cdask.backward(moons, ddf[["x0", "x1"]], ddf["label"], **params, d_score=0.0)
    (loss, _), grads = compute(lazy)[0]
    (want_loss, _), want_grads = moons.backward(points, labels, **params, d_score=0.0)
    _close(loss, want_loss)
    for got, want in zip(grads, want_grads):
        _close(got, want)


def test_bus_outputs_seeds_and_per_point_bus_gradients(compute, tmp_path):
    path = tmp_path / "buses.circ"
    path.write_text(BUSES)
    module = circuitc.load(path, target="numpy")
    rng = np.random.default_rng(3)
    x, W, b = rng.normal(size=(50, 3)), rng.normal(size=(3, 3)), rng.normal(size=3)
    d_h, d_s = rng.normal(size=(50, 3)), rng.normal(size=50)
    # Chunked along the bus too: rechunked into one chunk there.
    lazy = cdask.backward(module, da.from_array(x, chunks=(20, 2)), W, b,
                          d_h=da.from_array(d_h, chunks=(10, 1)), d_s=da.from_array(d_s, chunks=25))
    (h, s), (dx, dW, db) = lazy
    assert h.shape == (50, 3) and h.chunks[1] == (3,) and s.shape == (50,)
    assert dx.shape == (50, 3) and dW.shape == (3, 3) and db.shape == (3,)
    (h, s), grads = compute(lazy)[0]
    (want_h, want_s), want_grads = module.backward(x, W, b, d_h, d_s)
    _close(h, want_h)
    _close(s, want_s)
    for got, want in zip(grads, want_grads):
        _close(got, want)
    # One number seeds a whole bus output; a bus seed is one row for every point.
    (_, grads), = compute(cdask.backward(module, da.from_array(x, chunks=20), W, b,
                                         d_h=d_h[0], d_s=2.0))
    for got, want in zip(grads, module.backward(x, W, b, d_h[0], 2.0)[1]):
        _close(got, want)


def test_scalar_outputs_of_parameters_alone_and_broadcast_batches(compute):
    neuron = circuitc.load(CIRCUITS / "neuron.circ", target="numpy")
    f, grads = cdask.backward(neuron, 1.0, 2.0, -3.0, -1.0, 3.0)
    assert f.shape == () and all(g.shape == () for g in grads)
    (f, grads), = compute((f, grads))
    want_f, want_grads = neuron.backward(1.0, 2.0, -3.0, -1.0, 3.0)
    assert float(f) == want_f and [float(g) for g in grads] == list(want_grads)
    # (n, 1) against (1, m), both chunked: each one's gradient sums over the other's blocks.
    rng = np.random.default_rng(4)
    x, y, a = rng.normal(size=(40, 1)), rng.normal(size=(1, 30)), rng.normal(size=30)
    lazy = cdask.backward(neuron, a, 2.0, -3.0, da.from_array(x, chunks=(15, 1)),
                          da.from_array(y, chunks=(1, 12)))
    assert [g.shape for g in lazy[1]] == [(30,), (), (), (40, 1), (1, 30)]
    (f, grads), = compute(lazy)
    want_f, want_grads = neuron.backward(a, 2.0, -3.0, x, y)
    _close(f, want_f)
    for got, want in zip(grads, want_grads):
        _close(got, want)


def test_a_module_from_a_compiled_file_works_on_the_workers(compute, tmp_path):
    out = tmp_path / "neuron_np.py"
    assert run_cli("compile", CIRCUITS / "neuron.circ", "--target", "numpy", "-o", out).returncode == 0
    spec = importlib.util.spec_from_file_location("neuron_np", out)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    x = np.linspace(-2, 2, 101)
    f, = compute(cdask.forward(module, 1.0, 2.0, -3.0, da.from_array(x, chunks=25), 3.0))
    _close(f, module.forward(1.0, 2.0, -3.0, x, 3.0))


def test_domain_errors_reach_the_caller_with_their_place(compute, tmp_path):
    path = tmp_path / "log.circ"
    path.write_text("input x\nf = log(x)\noutput f\n")
    module = circuitc.load(path, target="numpy")
    x = da.from_array(np.array([1.0, 2.0, 0.0, 3.0]), chunks=2)
    with pytest.raises(FloatingPointError, match=r"log.circ:2:5: in 'log'"):
        compute(cdask.forward(module, x))


def test_refusals_say_why():
    neuron = circuitc.load(CIRCUITS / "neuron.circ", target="numpy")
    x = da.ones(10, chunks=5)
    with pytest.raises(TypeError, match="target='numpy'"):
        cdask.forward(circuitc.load(CIRCUITS / "neuron.circ"), 1.0, 2.0, -3.0, x, 3.0)
    with pytest.raises(TypeError, match="missing a required argument: 'y'"):
        cdask.forward(neuron, 1.0, 2.0, -3.0, x)
    with pytest.raises(ValueError, match=r"d_f: a seed of shape \(3,\) does not broadcast to "
                                         r"its output's shape \(10,\)"):
        cdask.backward(neuron, 1.0, 2.0, -3.0, x, 3.0, d_f=np.ones(3))
    mlp = circuitc.load(ROOT / "examples" / "mlp.circ", target="numpy")
    _, _, params = _mlp_case(1)
    with pytest.raises(ValueError, match=r"x: expected an array whose last axes have shape "
                                         r"\(2,\), got \(10, 3\)"):
        cdask.forward(mlp, da.ones((10, 3)), x, **params)


def test_the_module_source_is_one_key_of_the_graph():
    neuron = circuitc.load(CIRCUITS / "neuron.circ", target="numpy")
    f = cdask.forward(neuron, 1.0, 2.0, -3.0, da.ones(100, chunks=10), 3.0)
    graph = dict(f.__dask_graph__())
    sources = [k for k, v in graph.items() if isinstance(k, str) and "INPUTS" in str(v)]
    assert len(sources) == 1


def test_out_of_core_example_trains_from_parquet(tmp_path):
    run = subprocess.run([sys.executable, str(ROOT / "examples" / "out_of_core.py"),
                          "--points", "8000", "--chunk", "2000", "--dir", str(tmp_path), "--steps", "20"],
                         capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr
    assert len(list(tmp_path.glob("*.parquet"))) == 4
    accuracy = float(run.stdout.strip().splitlines()[-1].rpartition(" ")[2].rstrip("%"))
    assert accuracy >= 85.0, run.stdout


def test_columns_of_one_parquet_read_are_read_once_in_the_same_partitions(compute, tmp_path):
    # Read alone, one column of these files is cut into fewer partitions than two columns
    # are (Dask fuses small reads): put side by side first, they are read together.
    points, labels, _ = _mlp_case(1200)
    for i in range(6):
        rows = slice(200 * i, 200 * (i + 1))
        pd.DataFrame({"x0": points[rows, 0], "x1": points[rows, 1], "label": labels[rows]}
                     ).to_parquet(tmp_path / f"part-{i}.parquet")
    frame = dd.read_parquet(tmp_path)
    moons = circuitc.load(ROOT / "examples" / "moons.circ", target="numpy", wrt=["W", "b", "v", "c"])
    params = {"W": np.ones((8, 2)), "b": np.zeros(8), "v": np.ones(8), "c": 0.0}
    lazy = cdask.backward(moons, frame[["x0", "x1"]], frame["label"], **params,
                          d_loss=frame["label"] * 0.5)
    keys = [k for k in dict(lazy[1][0].__dask_graph__()) if isinstance(k, tuple)]
    assert len({k[0] for k in keys if "read" in k[0]}) == 1  # one read of each file
    assert len([k for k in keys if k[0].startswith("run-")]) == 6  # one call per file
    ((loss, _), grads), = compute(lazy)
    (want_loss, _), want_grads = moons.backward(points, labels, **params, d_loss=labels * 0.5)
    _close(loss, want_loss)
    for got, want in zip(grads, want_grads):
        _close(got, want)
