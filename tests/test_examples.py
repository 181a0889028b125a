"""Every example circuit compiles, imports, and has gradients that match numerical ones;
the textbook's numbers come out exactly through the installed command;
the training examples reach their accuracies; Rosenbrock agrees with SciPy's."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib

import numpy as np
import pytest

import circuitc
from conftest import CIRCUITS, EXAMPLES, ROOT, run_cli

TRAINING = sorted((ROOT / "examples").glob("*.circ"))


def _numerical_gradient(module, args, output, h=1e-6):
    def f(point):
        value = module.forward(*point)
        return value[output] if len(module.OUTPUTS) > 1 else value
    grads = []
    for k in range(len(args)):
        step = h * max(1.0, abs(args[k]))
        up, down = list(args), list(args)
        up[k] += step
        down[k] -= step
        grads.append((f(up) - f(down)) / (2 * step))
    return grads


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_gradients_match_numerical_ones(path):
    module = circuitc.api.elementwise(circuitc.load(path))  # a bus as its elements
    assert set(module.DEFAULTS) == set(module.INPUTS), "examples give every input a default"
    args = [module.DEFAULTS[name] for name in module.INPUTS]
    for k, out in enumerate(module.OUTPUTS):
        seeds = [float(j == k) for j in range(len(module.OUTPUTS))]
        _, grads = module.backward(*args, *seeds)
        assert grads == pytest.approx(_numerical_gradient(module, args, k), rel=1e-6, abs=1e-9)


def test_there_are_textbook_and_richer_examples():
    names = {p.name for p in EXAMPLES}
    assert {"multiply.circ", "add_multiply.circ", "neuron.circ"} <= names
    assert len(names) >= 5


TEXTBOOK = [
    ("multiply.circ", {"f": -6.0}, {"x": 3.0, "y": -2.0}),
    ("add_multiply.circ", {"f": -12.0}, {"x": -4.0, "y": -4.0, "z": 3.0}),
    ("neuron.circ", {"f": 0.8807970779778823},
     {"a": -0.10499358540350662, "b": 0.31498075621051985, "c": 0.10499358540350662,
      "x": 0.10499358540350662, "y": 0.20998717080701323}),
]


@pytest.mark.parametrize(("name", "outputs", "gradients"), TEXTBOOK)
def test_textbook_numbers_exactly(name, outputs, gradients):
    result = run_cli("eval", CIRCUITS / name, "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["outputs"] == outputs
    assert document["gradients"] == {"f": gradients}


def test_eval_text_output_and_overrides():
    result = run_cli("eval", CIRCUITS / "multiply.circ", "x=4", "y=0.5")
    assert result.returncode == 0
    assert result.stdout == "f = 2.0\n  df/dx = 0.5\n  df/dy = 4.0\n"


def test_eval_several_outputs():
    result = run_cli("eval", CIRCUITS / "svm_loss.circ", "--json")
    document = json.loads(result.stdout)
    assert list(document["outputs"]) == ["loss", "score"]
    assert document["gradients"]["score"]["a"] == 1.2
    assert document["gradients"]["loss"]["alpha"] == 5.0


# -- training examples ------------------------------------------------------------------------


@pytest.mark.parametrize("path", TRAINING, ids=[p.name for p in TRAINING])
def test_training_circuits_pass_verify(path):
    result = run_cli("verify", path, "--fast")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{path}: OK: " in result.stdout


def test_training_examples_reach_their_accuracies():
    """The full schedules of examples/train.py, as documented."""
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "train.py"), "--no-plot"],
                            check=False, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    found = re.findall(r"^(\w+)\.circ: training accuracy ([0-9.]+)%", result.stdout, re.MULTILINE)
    accuracy = {name: float(value) for name, value in found}
    assert list(accuracy) == ["svm", "moons", "mlp", "spiral"]
    assert accuracy["svm"] == 100.0 and accuracy["mlp"] == 100.0
    assert accuracy["moons"] >= 95.0 and accuracy["spiral"] >= 90.0
    # micrograd's demo network, data and schedule: the last line its notebook prints is
    # "step 99 loss 0.010978370135492717, accuracy 100.0%"
    last = re.search(r"^  step 99 loss ([0-9.e-]+), accuracy 100.0%$", result.stdout, re.MULTILINE)
    assert last and float(last[1]) == pytest.approx(0.010978370135492717, rel=1e-9)


# -- Rosenbrock against SciPy ------------------------------------------------------------------


@pytest.mark.parametrize("n", [2, 3, 10])
def test_rosenbrock_agrees_with_scipy(n):
    from scipy.optimize import rosen, rosen_der

    python = circuitc.load(CIRCUITS / "rosenbrock.circ", sizes={"n": n})
    batch = circuitc.load(CIRCUITS / "rosenbrock.circ", target="numpy", sizes={"n": n})
    rng = np.random.default_rng(n)
    points = np.vstack([np.full(n, -1.2), np.ones(n), rng.uniform(-2.0, 2.0, (8, n))])
    for x in points:
        f, (grad,) = python.backward(x)
        assert f == pytest.approx(rosen(x), rel=1e-14, abs=1e-300)
        assert np.array(grad) == pytest.approx(rosen_der(x), rel=1e-13, abs=1e-13)
    f, (grad,) = batch.backward(points)  # the points as a batch: one row each
    assert f == pytest.approx(rosen(points.T), rel=1e-14, abs=1e-300)
    assert grad == pytest.approx(np.array([rosen_der(x) for x in points]), rel=1e-13, abs=1e-13)


def test_rosenbrock_has_a_start_for_eval():
    module = circuitc.load(CIRCUITS / "rosenbrock.circ")
    assert module.SHAPES["x"] == (10,) and module.DEFAULTS["x"] == (-1.2,) * 10
    assert module.forward(module.DEFAULTS["x"]) == pytest.approx(9 * (100 * 2.64**2 + 2.2**2))


def test_the_language_page_shows_mlp_circ_as_it_is():
    page = (ROOT / "docs" / "language.md").read_text(encoding="utf-8")
    text = (ROOT / "examples" / "mlp.circ").read_text(encoding="utf-8")
    assert f"```\n{text}```\n" in page


def test_train_without_numpy_says_how_to_install_it(tmp_path):
    """README's first command installs circuitc alone: train.py then says what it needs."""
    (tmp_path / "numpy.py").write_text("raise ModuleNotFoundError(\"No module named 'numpy'\", "
                                       "name='numpy')\n")
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "train.py"), "svm",
                             "--no-plot"], capture_output=True, text=True, check=False,
                            env={"PYTHONPATH": str(tmp_path), "PATH": ""}, timeout=300)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert "pip install '.[numpy]'" in result.stderr
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    assert [d.split(">")[0] for d in extras["numpy"]] == ["numpy"]
