"""Random initial values: `input w = uniform(a, b)` and `normal(mu, sigma)` are drawn
when the circuit is read, seeded (0 unless `seed=`/`--seed` says otherwise), and recorded
in the module's `DEFAULTS`. Their distributions are checked with SciPy's
Kolmogorov-Smirnov test at a fixed seed (so the check is deterministic)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from circuitc.api import compile_source, load_source
from conftest import run_cli

NETWORK = """\
size n = 100, d = 50
input W[n, d] = normal(0, 1 / sqrt(d)), b[n] = uniform(-1, 1), x[d] = 1
input c = normal(2, 0.5)
h[i] = tanh(sum(W[i, j] * x[j] for j) + b[i])
f = c * sum(h[i] for i)
"""


def _defaults(text: str, **options) -> dict[str, np.ndarray]:
    module = load_source(text, "net.circ", **options)
    return {name: np.array(value) for name, value in module.DEFAULTS.items()}


def test_draws_follow_their_distributions():
    d = _defaults(NETWORK, target="numpy")
    assert d["W"].shape == (100, 50) and d["b"].shape == (100,)
    assert stats.kstest(d["W"].ravel(), stats.norm(0, 1 / np.sqrt(50)).cdf).pvalue > 0.01
    assert stats.kstest(d["b"], stats.uniform(-1, 2).cdf).pvalue > 0.01
    assert -1 <= d["b"].min() and d["b"].max() < 1
    assert len(np.unique(d["W"])) == d["W"].size


@pytest.mark.parametrize("options", [
    {"target": "python"}, {"target": "python", "elements": True},
    {"target": "numpy", "elements": True}, {"target": "numpy", "hessian": True, "jvp": True}])
def test_every_target_and_form_records_the_same_values(options):
    want = _defaults(NETWORK, target="numpy")
    got = _defaults(NETWORK, **options)
    assert got.keys() == want.keys()
    for name in want:
        np.testing.assert_array_equal(got[name], want[name])


def test_the_seed_changes_the_values_and_nothing_else_does():
    first, again = _defaults(NETWORK, target="numpy"), _defaults(NETWORK, target="numpy", seed=0)
    other = _defaults(NETWORK, target="numpy", seed=1)
    np.testing.assert_array_equal(first["W"], again["W"])
    assert not np.any(first["W"] == other["W"])
    # An input's values come from its own stream: another input added before it, or the
    # sizes of others, leave them as they were.
    more = _defaults(NETWORK.replace("input c =", "input e = normal(0, 1), c ="), target="numpy")
    assert more["c"] == first["c"]
    np.testing.assert_array_equal(more["W"], first["W"])
    assert compile_source(NETWORK, target="numpy") == compile_source(NETWORK, target="numpy")


def test_a_scalar_circuit_draws_too():
    text = "input a = normal(0, 1), b = uniform(1, 2)\nf = a * b\n"
    d = _defaults(text)
    assert 1 <= d["b"] < 2 and d["a"] != 0
    assert _defaults(text, seed=5)["a"] != d["a"]


def test_the_command_line_takes_the_seed(tmp_path):
    path = tmp_path / "net.circ"
    path.write_text(NETWORK, encoding="utf-8")
    values = {}
    for seed in ("0", "7"):
        result = run_cli("eval", path, "--target", "numpy", "--seed", seed)
        assert result.returncode == 0, result.stderr
        values[seed] = result.stdout.splitlines()[0]
    assert values["0"] != values["7"]
    assert run_cli("eval", path, "--target", "numpy").stdout.splitlines()[0] == values["0"]
    result = run_cli("verify", path, "--target", "numpy", "--fast", "--seed", "7")
    assert result.returncode == 0, result.stdout + result.stderr
    result = run_cli("compile", path, "--seed", "7", "-o", "-")
    assert result.returncode == 0 and "DEFAULTS" in result.stdout
