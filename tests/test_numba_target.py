"""The numba target against the python and numpy targets.

Every example circuit and random circuits of the oracles (`test_differential`'s scalar
circuits, `test_buses_oracle`'s bus circuits), at points and on batches:

- a circuit without buses computes the python target's straight-line code, compiled:
  values and gradients bit for bit at a point and at each point of a batch;
- a bus circuit computes the python target's whole-bus loops (`emit.loops`), compiled:
  bit for bit with them wherever no matrix product goes to BLAS (never below
  `_GEMM_FROM` multiplications, so never at these sizes), and to 1e-12 relative with
  the written-out module;
- batches, broadcasting, seeds and directions as the numpy target has them, to 1e-12.

numba compiles each module in seconds, so the random runs are short; for a long run:

    CIRCUITC_NUMBA_EXAMPLES=500 python -m pytest tests/test_numba_target.py
"""

from __future__ import annotations

import importlib.util
import math
import os
import subprocess
import sys
import types

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

if importlib.util.find_spec("numba") is None:  # CI installs it (the `test` extra): it must run there
    if os.environ.get("CI"):
        pytest.fail("numba is not installed, though the test extra installs it", pytrace=False)
    pytest.skip("numba is not installed (pip install 'circuitc[numba]')", allow_module_level=True)

import circuitc
from circuitc import api, numba_modules
from conftest import ROOT, run_cli
from oracle import FORMS
from strategies import bus_circuits, bus_text, random_point, random_seeds, scalar_circuits

EXAMPLES = int(os.environ.get("CIRCUITC_NUMBA_EXAMPLES", "4"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
CIRCUITS = sorted([*(ROOT / "circuits").glob("*.circ"), *(ROOT / "examples").glob("*.circ")])


def load(text: str, target: str = "numba", **options) -> types.ModuleType:
    return api.load_source(text, "c.circ", target, **options)


def loops(text: str, **options) -> types.ModuleType:
    """The python target's whole-bus module (loops at any size)."""
    saved, api.LOOPS_FROM = api.LOOPS_FROM, 0
    try:
        return load(text, "python", **options)
    finally:
        api.LOOPS_FROM = saved


def bits(value) -> list:
    """Every number of a result (nested tuples, arrays, floats), as its bits."""
    if isinstance(value, tuple | list):
        return [b for v in value for b in bits(v)]
    if isinstance(value, np.ndarray):
        return bits(value.tolist())
    assert type(value) is float, value  # numbers come back as Python floats
    return ["nan" if math.isnan(value) else value.hex()]


def numbers(value) -> list[float]:
    if isinstance(value, tuple | list):
        return [x for v in value for x in numbers(v)]
    if isinstance(value, np.ndarray):
        return [float(x) for x in value.reshape(-1)]
    return [float(value)]


def close(got, want, rel: float = 1e-12) -> None:
    """Equal as numbers, or within `rel` of the largest magnitude among them."""
    got, want = numbers(got), numbers(want)
    assert len(got) == len(want)
    scale = max([abs(w) for w in want if math.isfinite(w)] + [1.0])
    for g, w in zip(got, want):
        if math.isnan(w):
            assert math.isnan(g), (got, want)
        else:
            assert g == pytest.approx(w, rel=rel, abs=rel * scale), (got, want)


def outcome(module, name: str, *args):
    try:
        return getattr(module, name)(*args)
    except (ArithmeticError, ValueError) as e:
        return type(e)


def point_of(module, rng) -> list:
    return [float(rng.uniform(0.3, 1.7)) if not module.SHAPES[n] else
            rng.uniform(0.3, 1.7, module.SHAPES[n]) for n in module.INPUTS]


# -- the examples ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", CIRCUITS, ids=lambda p: p.name)
def test_examples_agree_with_the_python_target(path):
    text = path.read_text()
    fast, plain = load(text), load(text, "python")
    reference = loops(text) if any(fast.SHAPES.values()) else plain
    rng = np.random.default_rng(7)
    for _ in range(2):
        args = point_of(fast, rng)
        seeds = [float(s) for s in rng.normal(size=len(fast.OUTPUTS))]
        listed = [a.tolist() if hasattr(a, "tolist") else a for a in args]
        for name, extra in (("forward", ()), ("backward", seeds)):
            got, want = outcome(fast, name, *args, *extra), outcome(reference, name, *listed, *extra)
            if isinstance(want, type):
                assert got is want
                continue
            assert bits(got) == bits(want), name  # the same code, compiled
            close(got, outcome(plain, name, *listed, *extra))


@pytest.mark.parametrize(("path", "sizes"), [("circuits/neuron.circ", None), ("circuits/svm_loss.circ", None),
                                             ("circuits/rosenbrock.circ", None),
                                             ("examples/mlp.circ", {"n": 3})])
def test_second_order_agrees_with_the_python_target(path, sizes):
    text = (ROOT / path).read_text()
    options = {"hessian": True, "jvp": True, "sizes": sizes}
    fast, plain = load(text, **options), load(text, "python", **options)
    reference = loops(text, **options) if any(fast.SHAPES.values()) else plain
    rng = np.random.default_rng(5)
    args = point_of(fast, rng)
    seeds = [float(s) for s in rng.normal(size=len(fast.OUTPUTS))]
    directions = [rng.normal(size=np.shape(a)) if np.shape(a) else float(rng.normal()) for a in args]
    wrt = [directions[fast.INPUTS.index(n)] for n in fast.WRT]

    def listed(values):
        return [v.tolist() if hasattr(v, "tolist") else v for v in values]
    for name, extra in (("jvp", directions), ("hvp", [*wrt, *seeds])):
        got = outcome(fast, name, *args, *extra)
        assert bits(got) == bits(outcome(reference, name, *listed(args), *listed(extra))), name
        close(got, outcome(plain, name, *listed(args), *listed(extra)))
    H = fast.hessian(*args, *seeds)[2]
    close(H, np.array(plain.hessian(*listed(args), *seeds)[2]))
    assert isinstance(H, np.ndarray) and (H == H.T).all()
    if any(fast.SHAPES.values()):
        entries = fast.sparse_hessian(*args, *seeds)[2]
        assert entries.tolist() == [H[j, k] for j, k in fast.HESSIAN_PATTERN.tolist()]
    batch = load(text, "numpy", hessian=True, jvp=True, sizes=sizes)  # a batch of directions
    many = [np.stack([d, 2 * d]) for d in map(np.asarray, wrt)]
    close(fast.hvp(*args, *many, *seeds), batch.hvp(*args, *many, *seeds))


@pytest.mark.parametrize("path", CIRCUITS, ids=lambda p: p.name)
def test_examples_on_a_batch_agree_with_the_numpy_target(path):
    text = path.read_text()
    fast, batch = load(text), load(text, "numpy")
    rng = np.random.default_rng(3)
    points = 5
    # The first input a batch of points, the others one point for all of them.
    args = [rng.uniform(0.3, 1.7, (points, *fast.SHAPES[n]) if k == 0 else fast.SHAPES[n])
            for k, n in enumerate(fast.INPUTS)]
    args = [a if np.shape(a) else float(a) for a in args]
    seeds = [rng.normal(size=(points, *fast.SHAPES[o])) for o in fast.OUTPUTS]
    close(fast.forward(*args), batch.forward(*args))
    value, grads = fast.backward(*args, *seeds)
    close((value, grads), batch.backward(*args, *seeds))
    for name, g in zip(fast.WRT, grads):  # summed over the batch where the input has none
        assert np.shape(g) == np.shape(args[fast.INPUTS.index(name)])


# -- every gate of the table ---------------------------------------------------------------


def every_gate(bus: bool) -> str:
    """A circuit with an output per gate of tests/oracle.py (a new gate's row there adds it),
    each kept in its domain; on numbers, or element by element on buses of 3."""
    if bus:
        lines = ["input x[3] = [0.7, -1.3, 2.1], y[3] = [-0.4, 0.9, 1.6], z[3] = [1, 2, 3]"]
        at, out = ("x[i]", "y[i]", "z[i]"), "g_{}[i]"
    else:
        lines = ["input x = 0.7, y = -1.3, z = 0.2"]
        at, out = ("x", "y", "z"), "g_{}"
    for name, form in FORMS.items():
        lines.append(f"{out.format(name)} = {form.safe.format(*at)}")
    lines.append("output " + ", ".join(f"g_{name}" for name in FORMS))
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("bus", [False, True], ids=["numbers", "buses"])
def test_every_gate_of_the_table_is_the_python_targets_compiled(bus):
    # The numba writers print each gate as the python target does, from the gate table's
    # own spelling: a gate the table gains needs nothing of its own here.
    text = every_gate(bus)
    fast = load(text, hessian=True)
    reference = loops(text, hessian=True) if bus else load(text, "python", hessian=True)
    rng = np.random.default_rng(3)
    for _ in range(2):
        args = point_of(fast, rng)
        listed = [a.tolist() if hasattr(a, "tolist") else a for a in args]
        seeds = [rng.normal(size=fast.SHAPES[o]) if fast.SHAPES[o] else float(rng.normal())
                 for o in fast.OUTPUTS]
        listed_seeds = [s.tolist() if hasattr(s, "tolist") else s for s in seeds]
        for name, extra, listed_extra in (("forward", (), ()), ("backward", seeds, listed_seeds)):
            assert bits(getattr(fast, name)(*args, *extra)) == bits(
                getattr(reference, name)(*listed, *listed_extra)), name
        directions = [rng.normal(size=np.shape(a)) if np.ndim(a) else float(rng.normal()) for a in args]
        listed_directions = [d.tolist() if hasattr(d, "tolist") else d for d in directions]
        close(fast.hvp(*args, *directions, *seeds),
              reference.hvp(*listed, *listed_directions, *listed_seeds))


# -- random circuits of the oracles ---------------------------------------------------


@SETTINGS
@given(scalar_circuits())
def test_random_scalar_circuits_are_the_python_targets_compiled(circuit):
    fast, plain = load(circuit.text), load(circuit.text, "python")
    points = circuit.points[:4]
    seeds = [1.0, -0.5, 2.0][:len(plain.OUTPUTS)]
    for p in points:
        args = [float(v) for v in p]
        for name, extra in (("forward", ()), ("backward", seeds)):
            got, want = outcome(fast, name, *args, *extra), outcome(plain, name, *args, *extra)
            assert (got is want) if isinstance(want, type) else bits(got) == bits(want), circuit.text
    # A batch: each point's numbers are the python target's at that point.
    columns = [np.array(points[:, k]) for k in range(points.shape[1])]
    got = outcome(fast, "backward", *columns, *seeds)
    wants = [outcome(plain, "backward", *map(float, p), *seeds) for p in points]
    if isinstance(got, type):
        assert got in wants, circuit.text
        return
    assert not any(isinstance(w, type) for w in wants), circuit.text
    value, grads = got
    for k, want in enumerate(wants):
        one = lambda v, k=k: float(np.asarray(v).reshape(-1)[k] if np.ndim(v) else v)
        values = [one(v) for v in (value if len(plain.OUTPUTS) > 1 else (value,))]
        assert bits(values) == bits(list(want[0]) if len(plain.OUTPUTS) > 1 else [want[0]]), circuit.text
        # The gradient of an input every point shares is their sum; here each input has
        # a value per point, so its gradient too.
        assert bits([one(g) for g in grads]) == bits(list(want[1])), circuit.text


@SETTINGS
@given(bus_circuits(), st.integers(0, 2**32 - 1))
def test_random_bus_circuits_are_the_python_targets_loops_compiled(c, seed):
    text = bus_text(c)
    try:
        fast = load(text)
    except circuitc.CircuitError:
        with pytest.raises(circuitc.CircuitError):
            load(text, "python")
        return
    # The python target's loops, which run the same gates in the same order (that they
    # are the written-out circuit is tests/test_buses_oracle.py's to check).
    reference = loops(text)
    rng = np.random.default_rng(seed)
    for _ in range(2):
        point, seeds = random_point(c, rng), random_seeds(c, rng)
        args = [np.array(point[n]).reshape(shape) if shape else point[n][0] for n, _, shape in c.inputs]
        listed = [a.tolist() if hasattr(a, "tolist") else a for a in args]
        seed_args = [np.array(seeds[n]).reshape(c.shape(n)) if c.shape(n) else seeds[n][0]
                     for n in c.outputs]
        listed_seeds = [s.tolist() if hasattr(s, "tolist") else s for s in seed_args]
        for name, extra, listed_extra in (("forward", (), ()), ("backward", seed_args, listed_seeds)):
            got = outcome(fast, name, *args, *extra)
            want = outcome(reference, name, *listed, *listed_extra)
            if isinstance(want, type) or isinstance(got, type):
                assert got is want, text
                continue
            assert bits(got) == bits(want), text


# -- batches, threads, errors --------------------------------------------------------------


def test_batches_broadcast_as_in_the_numpy_target():
    text = (ROOT / "circuits" / "neuron.circ").read_text()
    fast, batch = load(text, hessian=True), load(text, "numpy", hessian=True)
    rng = np.random.default_rng(0)
    cases = [  # inputs of batch shapes that broadcast: (3, 1) with (4,), and a seed per point
        ([rng.normal(size=(3, 1)), 2.0, -3.0, rng.normal(size=4), 3.0], [rng.normal(size=(3, 4))]),
        ([1.0, 2.0, -3.0, rng.normal(size=(2, 3)), rng.normal(size=3)], [1.0]),
        ([1, 2, -3, [-1.0, 0.5], 3], [np.array(0.5)]),  # ints and lists
        ([1.0, 2.0, -3.0, np.zeros((0,)), 3.0], [1.0]),  # an empty batch
        ([1.0, 2.0, -3.0, -1.0, 3.0], [rng.normal(size=5)]),  # a batch of seeds only
    ]
    for args, seeds in cases:
        got, want = fast.backward(*args, *seeds), batch.backward(*args, *seeds)
        close(got, want)
        assert [np.shape(g) for g in got[1]] == [np.shape(g) for g in want[1]]
        assert type(got[0]) is type(want[0])  # a Python float for one point
    # A batch of directions at one point: a product per direction.
    directions = np.eye(5)
    close(fast.hvp(1.0, 2.0, -3.0, -1.0, 3.0, *directions), batch.hvp(1.0, 2.0, -3.0, -1.0, 3.0,
                                                                         *directions))


def test_threads_and_chunks_give_the_same_numbers_as_one_thread():
    # A batch from THREADS_FROM points on is computed in CHUNKS chunks (on numba's threads
    # where there are several); the sums over the chunks do not depend on the threads.
    import numba

    text = (ROOT / "circuits" / "neuron.circ").read_text()
    fast = load(text)
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=1000), rng.normal(size=1000)
    whole = fast.backward(1.0, 2.0, -3.0, x, y)
    fast.THREADS_FROM = 100
    threaded = fast.backward(1.0, 2.0, -3.0, x, y)
    saved = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        alone = fast.backward(1.0, 2.0, -3.0, x, y)
    finally:
        numba.set_num_threads(saved)
    assert bits(threaded) == bits(alone)
    close(threaded, whole)
    assert bits(threaded[1][3]) == bits(whole[1][3])  # per point: no sum


def test_a_domain_error_names_the_gate_at_a_point_and_in_a_batch():
    text = "input x = 2, y = 1\nz = log(x) * y\nw = z / y\noutput w\n"
    fast = api.load_source(text, "safe.circ", "numba")
    with pytest.raises(ValueError, match=r"^safe\.circ:2:5: in 'log': math domain error$"):
        fast.backward(-1.0, 1.0)
    with pytest.raises(ZeroDivisionError, match=r"^safe\.circ:3:7: in '/': float division by zero$"):
        fast.forward(2.0, 0.0)
    with pytest.raises(ValueError, match=r"in 'log': math domain error \(at point \(1, 0\) of the batch\)"):
        fast.backward(np.array([[2.0, 3.0], [-1.0, 2.0]]), 1.0)
    # An infinite input is no error where the python target raises none: the numbers stay.
    value, grads = fast.backward(math.inf, 1.0)
    assert value == math.inf and grads[0] == 0.0 and math.isnan(grads[1])
    bus = api.load_source("size n = 3\ninput x[n]\nh[i] = sqrt(x[i]) * 2\nf = sum(h[i] for i)\n",
                          "bus.circ", "numba")
    with pytest.raises(ValueError, match=r"^bus\.circ:3:8: in 'sqrt': math domain error$"):
        bus.backward([1.0, -2.0, 3.0])
    with pytest.raises(ZeroDivisionError, match=r"bus\.circ:3:8: in the gradient of 'sqrt'"):
        bus.backward([1.0, 0.0, 3.0])


def test_the_branch_not_taken_is_neither_computed_nor_checked():
    # The check of the gates that can raise reads a value only a branch computes where the
    # branch is taken, and only there.
    text = "input x\nf = where(x > 0, log(x), 0)\ng = where(x > 0, 0, log(-x))\noutput f, g\n"
    fast = api.load_source(text, "masked.circ", "numba")
    for x in (-1.0, 2.0):
        assert fast.backward(x, 1.0, 1.0) == api.load_source(text, "masked.circ").backward(x, 1.0, 1.0)
    with pytest.raises(ValueError, match=r"^masked\.circ:3:21: in 'log': math domain error$"):
        fast.forward(0.0)  # the branch taken at 0 is log(-0)


def test_the_error_in_the_command_has_its_caret(tmp_path):
    circuit = tmp_path / "safe.circ"
    circuit.write_text("input x = -1\nf = log(x)\n")
    result = run_cli("eval", circuit, "--target", "numba")
    assert result.returncode == 2
    assert result.stderr.splitlines()[:3] == [
        f"{circuit}:2:5: error: in 'log': math domain error", "  f = log(x)", "      ^^^"]


def test_without_numba_the_target_says_how_to_install_it(monkeypatch):
    from click.testing import CliRunner

    from circuitc.cli import main

    monkeypatch.setattr(numba_modules, "available", lambda: False)
    for command in ("compile", "eval", "verify", "step"):
        result = CliRunner().invoke(main, [command, str(ROOT / "circuits" / "neuron.circ"),
                                           "--target", "numba"])
        assert result.exit_code == 2, result.output
        assert "pip install 'circuitc[numba]'" in result.output
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'circuitc\[numba\]'"):
        circuitc.load(ROOT / "circuits" / "neuron.circ", target="numba")


# -- modules on disk, the cache ------------------------------------------------------------


def test_a_second_process_loads_the_machine_code_from_the_cache(tmp_path):
    script = ("import circuitc, sys\n"
              "m = circuitc.load(sys.argv[1], target='numba')\n"
              "m.backward(**m.DEFAULTS)\n"
              "print(sum(m._backward.stats.cache_misses.values()), sum(m._backward.stats.cache_hits.values()))\n")
    env = {**os.environ, "CIRCUITC_CACHE_DIR": str(tmp_path / "cache")}
    runs = [subprocess.run([sys.executable, "-c", script, str(ROOT / "circuits" / "neuron.circ")],
                           capture_output=True, text=True, env=env, check=True).stdout.split()
            for _ in range(2)]
    assert runs[0] == ["1", "0"]  # compiled and kept
    assert runs[1] == ["0", "1"]  # loaded
    kept = list((tmp_path / "cache" / "numba").glob("circuitc_numba_*.py"))
    assert len(kept) == 1 and list((tmp_path / "cache" / "numba" / "__pycache__").glob("*.nbc"))
    assert run_cli("cache", "clear", env=env).returncode == 0
    assert not (tmp_path / "cache" / "numba").exists()


def test_a_compiled_file_is_a_module_to_import(tmp_path):
    out = tmp_path / "rosen_numba.py"
    result = run_cli("compile", ROOT / "circuits" / "rosenbrock.circ", "--target", "numba",
                     "--hessian", "-o", out)
    assert result.returncode == 0, result.stderr
    script = ("import numpy as np, rosen_numba as m\n"
              "f, (g,) = m.backward(np.full(10, -1.2))\n"
              "print(f, g[0], m.hessian(np.full(10, -1.2))[2][0, 0])\n")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         cwd=tmp_path, check=True)
    assert run.stdout.split() == ["6316.2", "-1271.5999999999995", "2210.0"]
    assert subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", str(out)],
                          check=False, capture_output=True, text=True).returncode == 0


def test_modules_are_deterministic_and_pass_ruff(tmp_path):
    for k, path in enumerate(CIRCUITS):
        text = path.read_text()
        source = circuitc.compile_source(text, path.name, "numba", hessian=True, jvp=True)
        assert source == circuitc.compile_source(text, path.name, "numba", hessian=True, jvp=True)
        (tmp_path / f"m{k}.py").write_text(source)
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", str(tmp_path)],
                            check=False, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_a_large_written_out_circuit_is_refused_with_a_message():
    from circuitc.emit import numba as numba_emit

    text = "input x\n" + "".join(f"w{k} = sin(w{k - 1} * x)\n" if k else "w0 = x\n"
                                 for k in range(numba_emit.MAX_GATES // 3)) + "output w" \
        + str(numba_emit.MAX_GATES // 3 - 1) + "\n"
    with pytest.raises(circuitc.CircuitError, match="the numba target compiles circuits of fewer"):
        circuitc.compile_source(text, "big.circ", "numba")


# -- names, and what uses modules ----------------------------------------------------------


def test_hostile_names_are_renamed_and_behave():
    # The kernels' own names, the module's, builtins: as inputs, wires and outputs.
    names = ["B", "chunks", "first", "last", "chunk", "start", "stop", "point", "bad", "check",
             "values", "numbers", "np", "numba", "math", "_jit", "_run", "float", "len", "range",
             "x_rows", "d_x", "lambda", "_backward_points", "THREADS_FROM", "k", "products"]
    text = f"input {', '.join(names)}\n" + "f = " + " + ".join(
        f"{n} * {names[(k + 1) % len(names)]}" for k, n in enumerate(names)) + "\noutput f\n"
    fast, plain = api.load_source(text, "h.circ", "numba"), api.load_source(text, "h.circ")
    args = [1.0 + k / 10 for k in range(len(names))]
    assert bits(fast.backward(*args)) == bits(plain.backward(*args))
    by_name = dict(zip(names, args))
    assert bits(fast.backward(**by_name)) == bits(plain.backward(**by_name))
    bus = f"size n = 3\ninput {', '.join(n + '[n]' for n in names[:12])}\n" + "f = sum(" + " + ".join(
        f"{n}[i] * {names[(k + 1) % 12]}[i]" for k, n in enumerate(names[:12])) + " for i)\n"
    fast, plain = api.load_source(bus, "h.circ", "numba"), loops(bus)
    args = [np.linspace(1, 2, 3) + k for k in range(12)]
    assert bits(fast.backward(*args)) == bits(plain.backward(*[a.tolist() for a in args]))


def test_verify_step_objective_and_the_notebook_take_numba_modules():
    optimize = pytest.importorskip("scipy.optimize")
    rosenbrock = ROOT / "circuits" / "rosenbrock.circ"
    for args in (["verify", rosenbrock, "--order", "2"], ["verify", ROOT / "examples" / "mlp.circ",
                                                          "-D", "n=3", "--points", "1"]):
        result = run_cli(*args, "--target", "numba")
        assert result.returncode == 0, result.stdout + result.stderr
    result = run_cli("step", rosenbrock, "-D", "n=2", "x=[-1.2,1]", "--method", "newton",
                     "--minimize", "--steps", "22", "--target", "numba")
    assert result.returncode == 0 and "  x[0]  -1.2                1.0" in result.stdout, result.stdout
    module = circuitc.load(rosenbrock, target="numba", hessian=True)
    for hessian, method in (("dense", "trust-exact"), ("sparse", "trust-constr"), ("hvp", "Newton-CG")):
        found = optimize.minimize(**circuitc.objective(module, hessian=hessian), method=method)
        assert found.x == pytest.approx(np.ones(10), abs=1e-3), hessian
    c = circuitc.circuit(ROOT / "circuits" / "neuron.circ", target="numba")
    assert c.verify().ok and c.gradient()["gradients"]["f"]["x"] == 0.10499358540350662
