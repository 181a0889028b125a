"""The IR checks itself: `graph.check` raises `GraphError`, under `python -O` too."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import pytest

import circuitc
from circuitc.graph import GraphError, Node, check


def _graph():
    return circuitc.api.lower_source("input x, y\nf = x * y\noutput f\n", "<test>")[0]


@pytest.mark.parametrize(("broken", "message"), [
    (lambda g: replace(g, nodes=(*g.nodes, Node("mul", (0, 5)))), "node 3 is not after its arguments"),
    (lambda g: replace(g, nodes=(*g.nodes, Node("frobnicate", (0, 1)))), "node 3: unknown op 'frobnicate'"),
    (lambda g: replace(g, nodes=(*g.nodes, Node("neg", (0, 1)))), "node 3: neg takes 1 arguments"),
    (lambda g: replace(g, nodes=(*g.nodes, Node("const", (), 1))), "node 3: a constant that is not a float"),
    (lambda g: replace(g, outputs=(("f", 7),)), "a root is no node: 7"),
    (lambda g: replace(g, inputs=("x", "y", "x")), "an input named twice"),
])
def test_a_broken_graph_raises_graph_error(broken, message):
    check(_graph())
    with pytest.raises(GraphError, match=message):
        check(broken(_graph()))


def test_check_raises_under_python_O():
    """An `assert` would vanish under `-O`; the check must not."""
    code = ("import circuitc.api as a, dataclasses as d; from circuitc.graph import check, GraphError\n"
            "g = a.lower_source('input x\\nf = x\\noutput f\\n', '<t>')[0]\n"
            "try:\n    check(d.replace(g, outputs=(('f', 9),)))\n"
            "except GraphError as e:\n    print('raised', e)\n")
    done = subprocess.run([sys.executable, "-O", "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout == "raised a root is no node: 9\n"
