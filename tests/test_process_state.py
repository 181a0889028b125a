"""What circuitc does to the process it runs in: the garbage collector it pauses while
compiling and the profile function it sets while comparing a module with its circuit come
back as they were, whatever happens in between; the one thing it leaves, `linecache`'s
entry for a module run from memory, is one entry per module name."""

from __future__ import annotations

import gc
import linecache
import sys
import types

import pytest

import circuitc
from circuitc import api
from circuitc import parse as parse_module
from circuitc.errors import CircuitError
from circuitc.verify import verify_circuit

NEURON = "input x = 2, w = -3, b = 1\nf = sigmoid(w * x + b)\n"


@pytest.fixture
def collector():
    """The collector's state before the test, restored after it."""
    enabled = gc.isenabled()
    yield
    (gc.enable if enabled else gc.disable)()


@pytest.mark.parametrize("text", [NEURON, "input x\nf = x +\n", "input x\nf = log(-1)\n"],
                         ids=["compiled", "syntax error", "folding error"])
def test_compiling_leaves_the_collector_as_it_found_it(collector, text):
    for enabled in (True, False):
        (gc.enable if enabled else gc.disable)()
        try:
            circuitc.compile_source(text, "c.circ")
        except CircuitError:
            pass
        assert gc.isenabled() is enabled


def test_circuits_are_parsed_with_the_collector_paused(collector, monkeypatch):
    seen = []
    parsed = parse_module._parsed.__wrapped__

    def parse_seen(text):
        seen.append(gc.isenabled())
        return parsed(text)
    monkeypatch.setattr(parse_module, "_parsed", parse_seen)
    gc.enable()
    circuitc.compile_source(NEURON, "n.circ")
    api.load_source(NEURON, "n.circ")  # through the compile cache's path
    api.compile_graphs(NEURON, "n.circ")
    assert seen == [False] * 3 and gc.isenabled()


def test_comparing_a_module_with_its_circuit_restores_the_profile_function():
    reference, forward = api.load_compiled_source(NEURON, "n.circ")
    source = circuitc.compile_source(NEURON, "n.circ")
    assert source.count("d_b = d_f * (f * (1.0 - f))") == 1
    edited = types.ModuleType("edited")
    exec(source.replace("d_b = d_f * (f * (1.0 - f))", "d_b = d_f * f"), edited.__dict__)  # noqa: S102
    calls = []

    def profile(frame, event, arg):
        calls.append(event)
    sys.setprofile(profile)
    try:
        report = verify_circuit(edited, forward, reference=reference)
        mine = sys.getprofile()
    finally:
        sys.setprofile(None)
    assert mine is profile and calls  # it was ours again, and heard the calls after
    assert not report.ok and report.points[0].mismatch.variable == "d_b"


def test_a_module_run_from_memory_has_one_line_cache_entry_per_name():
    first = api.load_source(NEURON, "same.circ")
    second = api.load_source(NEURON.replace("sigmoid", "tanh"), "same.circ")
    entries = [name for name in linecache.cache if name == "<circuitc same.circ>"]
    assert entries == [first.__file__] == [second.__file__]
    lines = linecache.getlines(second.__file__)
    assert any("math.tanh" in line for line in lines)
    assert not any("sigmoid" in line for line in lines)
