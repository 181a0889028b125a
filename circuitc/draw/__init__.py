"""Drawings of a circuit: its gate graph, each wire with its value and gradient.

`circuit(text, filename)` gives the graph to draw: by default the optimized
forward graph, the one `compile` turns into code (its rewrites are few and exact,
so it still reads like the source, and constant subexpressions such as `-2` are
folded into one constant); `optimized=False` gives the graph as written, every
operator of the file a gate. `with_values(graph, at)` computes every node's value
and gradient; `structure(graph)` leaves them out. The `Drawing` that either
returns is written by `to_dot` (Graphviz text), `to_mermaid` (a Mermaid
flowchart) and `to_json` (the documented schema of `describe`); `run_graphviz` turns
dot text into SVG or PNG with Graphviz's own `dot` program.

What the pictures show (dot and Mermaid alike), left to right:
- inputs (blue ellipses), gates (grey rounded boxes labelled with the gate table's
  `label`: `*`, `+`, `sigmoid`), outputs (yellow double ellipses), and constants
  (dashed boxes) only where a constant is itself an output: every other constant
  is folded into the label of the gate that reads it (`* 2`, `1 -`, `max(0, ·)`);
- every wire labelled with its `.circ` name when it has one (in italics), its
  value (green) and its gradient (red): the gradient of the sum of the outputs,
  each weighted by its seed (1.0 unless told otherwise, as in `backward`);
- a wire that feeds several gates forks at a small dot, after its label, so each
  wire's value and gradient (the sum of what its branches send back) appear once;
  but when its readers lie more than `REACH` gates further on, it is drawn as a
  dashed copy beside each reader instead, its label beside the original;
- where the order of a gate's operands matters and two wires feed it (`a - b`,
  `a / b`, `a ** b`, three for `where`), the arrows into it are marked ①, ② (and ③).
Labels show 4 significant digits; JSON carries every number exactly.

A circuit with buses is drawn at bus level instead (`bus_circuit`, then
`bus_structure` or `bus_with_values`, giving a `BusDrawing` that the same three
writers take): one node per input and per defined bus or scalar wire, labelled
with its name and shape (`W1 [16, 2]`) and, for a wire, its defining expression;
one arrow per wire read, labelled with the accesses (`W1[i,j]`) and the
reductions around them (`sum over j`). A node's values and gradients are shown
inside it: a scalar's as one number, a bus's as its elements when it has at most
`LISTED` of them (`[1, -2]`), else as their range (`min -0.5, max 1.2`). The
written-out circuit supplies the numbers (it is the reference semantics), and its
gate-level drawing stays available.

The package, a module a job: `drawing` (the gate graph and its values), `bus` (the bus
view), `scene` (the picture both dot and Mermaid write), `dot`, `mermaid` and `document`
(JSON), one module per format; here, the formats by name (`written`) and the Graphviz
process. The `.circ` text of a wire's definition is `circuitc.unparse.expression_text`.
"""

from __future__ import annotations

import shutil
import subprocess

from .bus import (
    Access,
    BusCircuit,
    BusDrawing,
    BusNode,
    Reduction,
    bus_circuit,
    bus_structure,
    bus_with_values,
)
from .document import JSON_VERSION, describe, to_json
from .dot import to_dot
from .drawing import Drawing, circuit, structure, with_values
from .mermaid import to_mermaid
from .scene import EXPR_WIDTH, GRAD_COLOR, LISTED, NOTE_COLOR, REACH, VALUE_COLOR

__all__ = ["EXPR_WIDTH", "FORMATS", "GRAD_COLOR", "INSTALL_HINT", "JSON_VERSION", "LISTED",
           "MAX_LAYOUT_FAN_OUT", "MAX_LAYOUT_NODES", "NOTE_COLOR", "REACH", "SUFFIXES",
           "VALUE_COLOR", "Access", "BusCircuit", "BusDrawing", "BusNode", "Drawing",
           "GraphvizError", "Reduction", "bus_circuit", "bus_structure", "bus_with_values",
           "circuit", "describe", "dot_size", "run_graphviz", "structure", "to_dot", "to_json",
           "to_mermaid", "too_big_to_lay_out", "with_values", "written"]


FORMATS = ("dot", "svg", "png", "json", "mermaid")
SUFFIXES = {".dot": "dot", ".gv": "dot", ".svg": "svg", ".png": "png", ".json": "json",
            ".mmd": "mermaid", ".mermaid": "mermaid"}  # a file's format, by its suffix


INSTALL_HINT = ("install Graphviz (Debian or Ubuntu: apt-get install graphviz; "
                "macOS: brew install graphviz), or use --format dot, json or mermaid")


class GraphvizError(Exception):
    """Graphviz's `dot` program is missing, or failed."""


# `circuitc graph` hands a drawing to Graphviz's `dot` without --force only within these
# limits, past which `dot` takes more than seconds to lay it out: its time grows faster than
# the nodes, and jumps when one node has many arrows out (a wire read by many gates forks
# at a node) (benchmarks/RESULTS.md, "Drawing size").
MAX_LAYOUT_NODES = 1500
MAX_LAYOUT_FAN_OUT = 20


def dot_size(dot: str) -> tuple[int, int, int]:
    """The nodes and edges of dot text as `to_dot` writes it (a statement a line), and the
    most edges out of one node."""
    nodes = edges = 0
    out: dict[str, int] = {}
    for line in dot.splitlines():
        if line.startswith("  ") and " -> " in line:
            edges += 1
            tail = line[2:].split(" -> ", 1)[0]
            out[tail] = out.get(tail, 0) + 1
        elif line.startswith("  ") and not line.startswith(("  graph ", "  node ", "  edge ")):
            nodes += 1
    return nodes, edges, max(out.values(), default=0)


def too_big_to_lay_out(dot: str) -> str | None:
    """Why Graphviz's `dot` would take more than seconds to lay out `dot` (as `to_dot`
    writes it), or None."""
    nodes, _, fan_out = dot_size(dot)
    if nodes > MAX_LAYOUT_NODES:
        return f"the drawing has {nodes:,} nodes (at most {MAX_LAYOUT_NODES:,})"
    if fan_out > MAX_LAYOUT_FAN_OUT:
        return (f"a node of the drawing has {fan_out:,} arrows out, a wire read by as many "
                f"gates (at most {MAX_LAYOUT_FAN_OUT:,})")
    return None


def run_graphviz(dot: str, fmt: str) -> bytes:
    """`dot` text rendered by Graphviz as `fmt` (`svg` or `png`); `GraphvizError` if it cannot."""
    program = shutil.which("dot")
    if program is None:
        raise GraphvizError(f"--format {fmt} needs Graphviz's 'dot' program, which is not "
                          f"installed (not found on PATH): {INSTALL_HINT}")
    done = subprocess.run([program, f"-T{fmt}"], input=dot.encode("utf-8"), capture_output=True,
                          check=False)
    if done.returncode != 0:
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GraphvizError(f"Graphviz 'dot' failed (exit {done.returncode})"
                          + (f": {detail[0]}" if detail else ""))
    return done.stdout


def written(d: Drawing | BusDrawing, fmt: str) -> str | bytes:
    """`d` in the format `fmt` (one of `FORMATS`): text, or the bytes Graphviz renders for
    svg and png (`GraphvizError` if it cannot)."""
    if fmt == "json":
        return to_json(d)
    if fmt == "mermaid":
        return to_mermaid(d)
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; the formats are {', '.join(FORMATS)}")
    dot = to_dot(d)
    return dot if fmt == "dot" else run_graphviz(dot, fmt)
