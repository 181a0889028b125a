"""The picture of a drawing, shared by dot and Mermaid: its shapes and labelled wires
(`scene_and_title`), gate level or bus level, and the colours and styles of each kind.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

from ..gates import GATES
from ..graph import Graph
from .bus import BusCircuit, BusDrawing, element_values, nested_lists, output_seeds
from .drawing import Drawing

VALUE_COLOR = "#1a7f37"
GRAD_COLOR = "#cf222e"
STYLE = {  # kind -> (fill, stroke)
    "input": ("#ddf4ff", "#0969da"),
    "gate": ("#f6f8fa", "#57606a"),
    "output": ("#fff8c5", "#9a6700"),
    "const": ("#ffffff", "#57606a"),
    "fork": ("#57606a", "#57606a"),
    "copy": ("#ffffff", "#57606a"),
    "wire": ("#f6f8fa", "#57606a"),  # a bus or scalar wire, at bus level
}
NOTE_COLOR = "#57606a"
MARKS = "①②③④"


def short(x: float) -> str:
    """A number for a label: 4 significant digits."""
    return f"{x:.4g}"


class _Shape(NamedTuple):
    id: str
    kind: str  # input, gate, output, const, fork or copy
    label: str
    lines: tuple[tuple[str, str], ...] = ()  # a wire label shown beside the shape
    inner: tuple[tuple[str, str], ...] = ()  # lines inside the shape, below its label
    tooltip: str = ""  # where a gate inlined from a `gate` call comes from, call chain first


class _Wire(NamedTuple):
    tail: str
    head: str
    lines: tuple[tuple[str, str], ...]  # (style, text): a style of `_DOT_LINES`
    mark: str = ""  # ① or ② where operand order matters
    arrow: bool = True


class _Reader(NamedTuple):
    id: str  # the reading shape
    mark: str
    output: str | None  # the output's name, when the reader is an output
    depth: int


class _Scene(NamedTuple):
    shapes: list[_Shape]
    wires: list[_Wire]


# A wire read in several places that lie further than this many gates beyond it is
# drawn as copies beside its readers: long forking wires make Graphviz's layout time
# grow with the square of the circuit's depth, and are hard to follow anyway.
REACH = 4


def _gate_label(g: Graph, node) -> str:
    """The gate's label with its constant operands folded in: `* 2`, `max(0, ·)`."""
    gate = GATES[node.op]
    consts = [g.const_value(a) for a in node.args]
    if all(c is None for c in consts):
        return gate.label
    operands = ["·" if c is None else short(c) for c in consts]
    if gate.operator and gate.arity == 1:
        return gate.operator + operands[0]
    if gate.operator:
        left, right = operands
        return " ".join(x for x in (left if consts[0] is not None else "", gate.operator,
                                    right if consts[1] is not None else "") if x)
    return f"{gate.name}({', '.join(operands)})"


def _scene(d: Drawing) -> _Scene:
    """The shapes and labelled wires of the picture, in a deterministic order."""
    g = d.graph
    shown = [node.op not in ("const", "seed") for node in g.nodes]
    depth = [0] * len(g.nodes)  # gates between the node and the inputs, constants aside
    readers: dict[int, list[_Reader]] = {}
    for i, node in enumerate(g.nodes):
        wires = [k for k, a in enumerate(node.args) if g.nodes[a].op != "const"]
        depth[i] = 1 + max((depth[node.args[k]] for k in wires), default=-1) if node.args else 0
        ordered = node.op in GATES and not GATES[node.op].commutative and len(wires) > 1
        for k in wires:
            mark = MARKS[k] if ordered else ""
            readers.setdefault(node.args[k], []).append(_Reader(f"n{i}", mark, None, depth[i]))
    for k, (name, n) in enumerate(g.outputs):
        shown[n] = True  # a constant is drawn when it is an output
        readers.setdefault(n, []).append(_Reader(f"r{k}", "", name, depth[n] + 1))
    shapes, wires = [], []
    for i, node in enumerate(g.nodes):
        if not shown[i]:
            continue
        kind = node.op if node.op in ("input", "const") else "gate"
        label = _gate_label(g, node) if kind == "gate" else node_label(node)
        origin = node.origin
        tooltip = origin.describe(g.filename) if origin and (origin.calls or origin.element) else ""
        targets = readers.get(i, [])
        lines = _wire_lines(d, i, [r.output for r in targets])
        if len(targets) > 1 and max(r.depth for r in targets) - depth[i] > REACH:
            shapes.append(_Shape(f"n{i}", kind, label, lines, tooltip=tooltip))
            for k, r in enumerate(targets):
                shapes.append(_Shape(f"c{i}_{k}", "copy", node.name or label))
                wires.append(_Wire(f"c{i}_{k}", r.id, (), r.mark))
            continue
        shapes.append(_Shape(f"n{i}", kind, label, tooltip=tooltip))
        if len(targets) == 1:
            wires.append(_Wire(f"n{i}", targets[0].id, lines, targets[0].mark))
        elif targets:
            shapes.append(_Shape(f"j{i}", "fork", ""))
            wires.append(_Wire(f"n{i}", f"j{i}", lines, arrow=False))
            wires.extend(_Wire(f"j{i}", r.id, (), r.mark) for r in targets)
    shapes.extend(_Shape(f"r{k}", "output", name) for k, (name, _) in enumerate(g.outputs))
    return _Scene(shapes, wires)


def _wire_lines(d: Drawing, i: int, readers: list[str | None]) -> tuple:
    """Node `i`'s wire label: its name (unless its ends show it), value and gradient.

    `readers` has one entry per reader: the output's name for an output, else None.
    """
    node = d.graph.nodes[i]
    lines = []
    if node.op != "input" and node.name and readers != [node.name]:
        lines.append(("name", node.name))
    if d.values is not None:  # each where it is known
        lines += [(style, short(x[i])) for style, x in (("value", d.values), ("grad", d.grads))
                  if x[i] is not None]
    return tuple(lines)


def drawn_function(d: Drawing | BusDrawing) -> str:
    """The function whose gradient is drawn: `f`, or `loss + score`, or `2·f`."""
    seeds = output_seeds(d) if isinstance(d, BusDrawing) else d.seeds
    terms = [name if s == 1.0 else f"{short(s)}·{name}"
             for name, s in seeds.items() if s != 0.0]
    return " + ".join(terms) or "0"


# A bus with at most this many elements shows them all; a larger one, their range.
LISTED = 4


def _summary(values: list, shape: tuple[int, ...]) -> str | None:
    """A bus's values for a label: `[1, -2]`, `all 0.5`, or `min -0.5, max 1.2`; a
    scalar's as one number; None when none has a value."""
    known = [v for v in values if v is not None]
    if not known:
        return None
    if not shape:
        return short(known[0])
    if len(values) <= LISTED:
        shown = [None if v is None else short(v) for v in values]
        return str(nested_lists(shown, shape)).replace("'", "")
    numbers = [v for v in known if not math.isnan(v)]
    nan = ", nan" if len(numbers) < len(known) else ""
    if not numbers:
        return "all nan"
    lo, hi = short(min(numbers)), short(max(numbers))
    if lo == hi and len(numbers) == len(values):
        return f"all {lo}"
    return f"min {lo}, max {hi}{nan}"


def _bus_title(c: BusCircuit) -> str:
    """The file's name, and the sizes it was drawn with: `mlp.circ  (n = 16)`."""
    title = Path(c.graph.filename).name
    if c.sizes:
        title += "  (" + ", ".join(f"{k} = {v}" for k, v in c.sizes.items()) + ")"
    return title


# An expression longer than this is cut short in pictures (JSON has it whole).
EXPR_WIDTH = 48


def _bus_scene(d: BusDrawing) -> _Scene:
    """One shape per node, with its definition, values and gradients inside; one
    arrow per wire read, with its accesses and their reductions."""
    c, values, grads = d.circuit, d.drawing.values, d.drawing.grads
    shapes = []
    for k, node in enumerate(c.nodes):
        inner = []
        if node.expr is not None:
            expr = node.expr
            inner.append(("expr", expr if len(expr) <= EXPR_WIDTH
                          else expr[:EXPR_WIDTH - 1] + "…"))
        for style, which in (("value", values), ("grad", grads)):
            numbers = element_values(node, which)
            text = numbers and _summary(numbers, node.shape)
            if text:
                inner.append((style, text))
        shapes.append(_Shape(f"n{k}", node.kind, node.label, inner=tuple(inner)))
    reads: dict[tuple[int, int], dict[tuple[str, str], None]] = {}
    for a in c.accesses:
        note = ", ".join(map(str, a.reductions))
        plain = a.text == c.nodes[a.source].name and not note
        reads.setdefault((a.source, a.target), {})["" if plain else a.text, note] = None
    wires = []
    for (source, target), texts in reads.items():
        lines: list[tuple[str, str]] = []
        for note in dict.fromkeys(n for _, n in texts):
            shown = [t for t, n in texts if n == note and t]
            if shown:
                lines.append(("access", ", ".join(shown)))
            if note:
                lines.append(("note", note))
        wires.append(_Wire(f"n{source}", f"n{target}", tuple(lines)))
    for k, (name, node) in enumerate(c.outputs):
        shapes.append(_Shape(f"r{k}", "output", name))
        wires.append(_Wire(f"n{node}", f"r{k}", ()))
    return _Scene(shapes, wires)


def scene_and_title(d: Drawing | BusDrawing) -> tuple[_Scene, str]:
    """The picture of `d`, gate level or bus level, and its title."""
    if isinstance(d, BusDrawing):
        return _bus_scene(d), _bus_title(d.circuit)
    return _scene(d), Path(d.graph.filename).name


def values_of(d: Drawing | BusDrawing):
    """The values of `d`'s nodes, None for a drawing of the structure alone."""
    return (d.drawing if isinstance(d, BusDrawing) else d).values


def node_label(node) -> str:
    """The label of a leaf or gate node: an input's name, a constant's value, a gate's label."""
    if node.op == "input":
        return node.attr
    if node.op == "const":
        return short(node.attr)
    return GATES[node.op].label
