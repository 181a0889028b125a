"""The front end reads a circuit once: compiling parses it and analyses its buses once,
whichever back end writes the module and whether or not the written-out graphs are made
beside whole-bus code (`circuitc.front`)."""

from __future__ import annotations

import pytest

import circuitc
from circuitc import api, front, shapes
from circuitc import parse as parse_module
from circuitc.errors import CircuitError

SCALAR = "input x = 0.5, y = 2\nf = sigmoid(x * y) + x\n"
BUSES = "size n = 3\ninput x[n] = 0.5, W[n, n] = 0.1\nh[i] = tanh(sum(W[i, j] * x[j] for j))\nf = sum(h[i] for i)\n"
LARGE = BUSES.replace("size n = 3", "size n = 40")  # 1,600 weights: loops in the python target


@pytest.fixture
def counted(monkeypatch):
    """The number of times the text was parsed (the parser's memo of the last text left
    out) and a file analysed, so far."""
    counts = {"parse": 0, "analysis": 0}
    parsed = parse_module._parsed.__wrapped__

    def parse_counted(text):
        counts["parse"] += 1
        return parsed(text)

    made = shapes.Analysis.__init__

    def analyzed(self, *args):
        counts["analysis"] += 1
        made(self, *args)
    monkeypatch.setattr(parse_module, "_parsed", parse_counted)
    monkeypatch.setattr(shapes.Analysis, "__init__", analyzed)
    return counts


COMPILES = [
    ("scalar, python", SCALAR, {}),
    ("scalar, numpy", SCALAR, {"target": "numpy"}),
    ("written out, python", BUSES, {}),
    ("loops, python", LARGE, {}),
    ("whole-bus, numpy", BUSES, {"target": "numpy"}),
    ("whole-bus, numpy, second order", BUSES, {"target": "numpy", "hessian": True, "jvp": True}),
    ("elements, numpy", BUSES, {"target": "numpy", "elements": True}),
]


@pytest.mark.parametrize(("text", "options"), [c[1:] for c in COMPILES], ids=[c[0] for c in COMPILES])
def test_compiling_reads_the_circuit_once(counted, text, options):
    circuitc.compile_source(text, "c.circ", **options)
    assert counted == {"parse": 1, "analysis": int(text != SCALAR)}


@pytest.mark.parametrize(("text", "options"), [c[1:] for c in COMPILES], ids=[c[0] for c in COMPILES])
def test_a_module_and_its_written_out_graph_read_the_circuit_once(counted, text, options):
    module, forward = api.load_compiled_source(text, "c.circ", **options)
    assert forward.outputs and module.OUTPUTS == ("f",)
    assert counted == {"parse": 1, "analysis": int(text != SCALAR)}


def test_the_source_is_what_both_back_ends_read():
    source = front.read("size n = 2\r\ninput x[n]\r\nf = sum(x[i] for i)\r\n", "s.circ", {"n": 3})
    assert source.text == "size n = 2\ninput x[n]\nf = sum(x[i] for i)\n"
    assert source.analysis.buses.shapes == {"x": (3,)}
    assert front.read("input x\nf = x\n").analysis is None  # nothing to analyse


def test_an_error_in_the_analysis_carries_the_file():
    with pytest.raises(CircuitError) as raised:
        front.read("size n = 2\ninput x[n]\nf = x[2]\n", "bad.circ")
    assert raised.value.render().startswith("bad.circ:3:7: error: index 2 is out of range")
