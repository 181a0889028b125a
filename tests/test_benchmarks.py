"""The circuits the benchmarks generate measure what they claim to."""

from __future__ import annotations

import importlib.util
import re

import pytest

import circuitc
from conftest import ROOT

# Loaded from its file: with benchmarks/ on sys.path, its dask.py would hide Dask.
_spec = importlib.util.spec_from_file_location("benchmarks_run", ROOT / "benchmarks" / "run.py")
_run = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_run)
random_dag = _run.random_dag


@pytest.mark.parametrize(("gates", "per_line"), [(100, 1), (1_000, 1), (10_000, 1),
                                                 (100_000, 1), (10_000, 8)])
def test_random_dags_depend_on_every_input(gates, per_line):
    """A DAG whose output were constant (10^5 gates of it were, with a gradient of exactly
    0) would time a compiler that simplifies on a circuit of a few gates."""
    text = random_dag(gates, per_line=per_line)
    assert not re.search(r"\b(w\d+) - \1\b", text)  # a constant that a simplifier folds
    module = circuitc.api.load_source(text, "dag.circ")
    _, grads = module.backward(**module.DEFAULTS)
    assert len(module.INPUTS) == 10 and len(grads) == 10
    assert all(abs(g) > 1e-30 for g in grads), grads
