"""Drawings of a circuit: its gate graph, each wire with its value and gradient.

`circuit(text, filename)` gives the graph to draw: by default the optimized
forward graph, the one `compile` turns into code (its rewrites are few and exact,
so it still reads like the source, and constant subexpressions such as `-2` are
folded into one constant); `optimized=False` gives the graph as written, every
operator of the file a gate. `evaluate(graph, at)` computes every node's value
and gradient; `structure(graph)` leaves them out. The `Drawing` that either
returns is written by `to_dot` (Graphviz text), `to_mermaid` (a Mermaid
flowchart) and `to_json` (the documented schema of `describe`); `render` turns
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
  `a / b`, `a ** b`), the arrows into it are marked ① and ②.
Labels show 4 significant digits; JSON carries every number exactly.
"""

from __future__ import annotations

import html
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from .api import lower_source, normalize
from .errors import CircuitError
from .gates import GATES
from .grad import grad_with_adjoints
from .graph import LEAVES, Builder, Graph, run
from .passes import RULES, live_nodes, optimize
from .report import json_number

FORMATS = ("dot", "svg", "png", "json", "mermaid")
JSON_VERSION = 1
INSTALL_HINT = ("install Graphviz (Debian or Ubuntu: apt-get install graphviz; "
                "macOS: brew install graphviz), or use --format dot, json or mermaid")

VALUE_COLOR = "#1a7f37"
GRAD_COLOR = "#cf222e"
_STYLE = {  # kind -> (fill, stroke)
    "input": ("#ddf4ff", "#0969da"),
    "gate": ("#f6f8fa", "#57606a"),
    "output": ("#fff8c5", "#9a6700"),
    "const": ("#ffffff", "#57606a"),
    "fork": ("#57606a", "#57606a"),
    "copy": ("#ffffff", "#57606a"),
}
_MARKS = "①②③④"


class RenderError(Exception):
    """Graphviz's `dot` program is missing, or failed."""


@dataclass(frozen=True)
class Drawing:
    """A graph to draw and, when evaluated, each node's value and gradient.

    `values[i]` and `grads[i]` belong to `graph.nodes[i]`; a constant's gradient is
    `None` (nothing can change a constant), and so are both of a gate no output
    depends on (it is not evaluated). `at` is the point and `seeds` the
    weight of each output in the function whose gradient is shown.
    """

    graph: Graph
    optimized: bool = True
    at: dict[str, float] | None = None
    seeds: dict[str, float] | None = None
    values: tuple[float, ...] | None = None
    grads: tuple[float | None, ...] | None = None


# -- the graph, its values and gradients ---------------------------------------


def circuit(text: str, filename: str = "<string>", optimized: bool = True,
            sizes: dict[str, int] | None = None) -> Graph:
    """The forward graph of the circuit in `text`: optimized, or as written.

    Either way the file must compile (the optimizer's constant folding included); a
    bad one raises `CircuitError` with the file's name and text attached.
    """
    text = normalize(text)
    try:
        written = lower_source(text, filename, sizes)[0]
        forward = optimize(written)
    except CircuitError as e:
        raise e.attach(filename, text)
    return forward if optimized else written


def structure(graph: Graph, optimized: bool = True) -> Drawing:
    """A drawing of the graph alone, without values or gradients."""
    return Drawing(graph, optimized)


def evaluate(graph: Graph, at: dict[str, float], seeds: dict[str, float] | None = None,
             optimized: bool = True) -> Drawing:
    """A drawing with the value at `at` and the gradient of every node an output
    depends on.

    The gradient is that of `sum(seeds[out] * out)` (every seed 1.0 by default),
    computed by the gradient graph that `grad` builds, evaluated with the gate
    table. A graph as written (not `optimized`) has the values the generated code
    computes (see `_as_compiled`), so that both drawings agree with `eval`. A gate
    no output depends on (a dead wire of the graph as written) is not evaluated, as
    the generated code does not evaluate it: its value and gradient are `None`. A
    gate that fails on its operands (`log(-1)`) raises a `CircuitError` at its
    source span (the caller attaches the file's text).
    """
    seeds = {name: 1.0 for name, _ in graph.outputs} if seeds is None else dict(seeds)
    full, adjoint = grad_with_adjoints(graph)
    values = _run(full, at, seeds, len(graph.nodes), None if optimized else _as_compiled(graph, at))
    grads = tuple(None if node.op == "const" or values[i] is None
                  else values[adjoint[i]] if i in adjoint else 0.0
                  for i, node in enumerate(graph.nodes))
    return Drawing(graph, optimized, dict(at), seeds, tuple(values[:len(graph.nodes)]), grads)


def _as_compiled(graph: Graph, at: dict[str, float]) -> list[float | None]:
    """The value of each node of `graph` as the generated code computes it: the value of
    the node the optimizer's rules make of it (`None` for a node no output needs).

    The rules are exact where both forms give a number, but not in what can fail:
    `x**2 -> x*x` gives inf where `math.pow` raises.
    """
    live = live_nodes(graph)
    b = Builder((), RULES)
    new = [-1] * len(graph.nodes)
    for i, (op, args, attr, origin, _) in enumerate(graph.nodes):
        if live[i]:
            new[i] = b.add(op, tuple([new[a] for a in args]), attr, origin)
    compiled = b.graph(graph, [(name, new[n]) for name, n in graph.outputs])
    values = _run(compiled, at, {}, len(compiled.nodes))
    return [None if n < 0 else values[n] for n in new]


def _run(graph: Graph, at: dict[str, float], seeds: dict[str, float],
         forward: int, known: list[float | None] | None = None) -> list[float | None]:
    """`run(graph, at, seeds)` for the gates the roots depend on (`None` for the others),
    naming the gate and its span when one fails.

    The operands are quoted for the first `forward` nodes, the circuit's own gates;
    a gradient gate's operands would mean nothing to the reader. `known`, if given,
    holds the values of those first nodes, which are then not computed again.
    """
    gates = (i for i, node in enumerate(graph.nodes) if node.op not in LEAVES)  # `run`'s order
    live = live_nodes(graph)

    def apply(gate, args):
        i = next(gates)
        if not live[i]:
            return None
        if known is not None and i < forward:
            return known[i]
        try:
            return gate.fn(*args)
        except (ArithmeticError, ValueError) as e:
            origin = graph.nodes[i].origin
            what = origin.label if origin else f"'{gate.label}'"
            if i < forward:
                what += " on " + ", ".join(map(repr, args))
            raise CircuitError(f"{what} fails: {e}", origin and origin.span) from None

    return run(graph, at, seeds, apply)


# -- JSON -------------------------------------------------------------------


def _label(node) -> str:
    if node.op == "input":
        return node.attr
    if node.op == "const":
        return _short(node.attr)
    return GATES[node.op].label


def describe(d: Drawing) -> dict:
    """The drawing as plain data; README.md documents the schema (version 1)."""
    g = d.graph
    where = {node.attr: i for i, node in enumerate(g.nodes) if node.op == "input"}
    nodes = []
    for i, node in enumerate(g.nodes):
        span = node.origin.span if node.origin else None
        value = node.attr if node.op == "const" else d.values[i] if d.values else None
        nodes.append({
            "id": i,
            "op": node.op,
            "label": _label(node),
            "name": node.attr if node.op == "input" else node.name,
            "span": span and dict(zip(("line", "column", "end_line", "end_column"), span)),
            "value": json_number(value),
            "grad": json_number(d.grads[i]) if d.grads else None,
        })
    return {
        "version": JSON_VERSION,
        "file": g.filename,
        "graph": "optimized" if d.optimized else "source",
        "inputs": [{"name": name, "node": where.get(name)} for name in g.inputs],
        "outputs": [{"name": name, "node": n} for name, n in g.outputs],
        "at": d.at and {k: json_number(v) for k, v in d.at.items()},
        "seeds": d.seeds and {k: json_number(v) for k, v in d.seeds.items()},
        "nodes": nodes,
        "edges": [{"from": a, "to": i, "arg": k}
                  for i, node in enumerate(g.nodes) for k, a in enumerate(node.args)],
    }


def to_json(d: Drawing) -> str:
    return json.dumps(describe(d), indent=2, ensure_ascii=False) + "\n"


# -- the picture, shared by dot and Mermaid -----------------------------------


def _short(x: float) -> str:
    """A number for a label: 4 significant digits."""
    return f"{x:.4g}"


class _Shape(NamedTuple):
    id: str
    kind: str  # input, gate, output, const, fork or copy
    label: str
    lines: tuple[tuple[str, str], ...] = ()  # a wire label shown beside the shape


class _Wire(NamedTuple):
    tail: str
    head: str
    lines: tuple[tuple[str, str], ...]  # (style, text): style is name, value or grad
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
    operands = ["·" if c is None else _short(c) for c in consts]
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
            mark = _MARKS[k] if ordered else ""
            readers.setdefault(node.args[k], []).append(_Reader(f"n{i}", mark, None, depth[i]))
    for k, (name, n) in enumerate(g.outputs):
        shown[n] = True  # a constant is drawn when it is an output
        readers.setdefault(n, []).append(_Reader(f"r{k}", "", name, depth[n] + 1))
    shapes, wires = [], []
    for i, node in enumerate(g.nodes):
        if not shown[i]:
            continue
        kind = node.op if node.op in ("input", "const") else "gate"
        label = _gate_label(g, node) if kind == "gate" else _label(node)
        targets = readers.get(i, [])
        lines = _wire_lines(d, i, [r.output for r in targets])
        if len(targets) > 1 and max(r.depth for r in targets) - depth[i] > REACH:
            shapes.append(_Shape(f"n{i}", kind, label, lines))
            for k, r in enumerate(targets):
                shapes.append(_Shape(f"c{i}_{k}", "copy", node.name or label))
                wires.append(_Wire(f"c{i}_{k}", r.id, (), r.mark))
            continue
        shapes.append(_Shape(f"n{i}", kind, label))
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
    if d.values is not None and d.values[i] is not None:
        lines.append(("value", _short(d.values[i])))
        if d.grads[i] is not None:
            lines.append(("grad", _short(d.grads[i])))
    return tuple(lines)


def _target(d: Drawing) -> str:
    """The function whose gradient is drawn: `f`, or `loss + score`, or `2·f`."""
    terms = [name if s == 1.0 else f"{_short(s)}·{name}"
             for name, s in d.seeds.items() if s != 0.0]
    return " + ".join(terms) or "0"


# -- Graphviz dot -------------------------------------------------------------

_FONT = "Helvetica,Arial,sans-serif"
_DOT_SHAPES = {
    "input": 'shape=ellipse, style=filled',
    "gate": 'shape=box, style="rounded,filled", margin="0.12,0.06"',
    "output": 'shape=ellipse, style=filled, peripheries=2',
    "const": 'shape=box, style="dashed,filled"',
    "fork": 'shape=point, width=0.07, style=filled',
    "copy": 'shape=ellipse, style="dashed,filled", fontsize=11, margin="0.04,0.02"',
}


def _dot_line(style: str, text: str) -> str:
    text = html.escape(text)
    if style == "name":
        return f"<i>{text}</i>"
    color = VALUE_COLOR if style == "value" else GRAD_COLOR
    return f'<font color="{color}">{text}</font>'


def to_dot(d: Drawing) -> str:
    """Graphviz source for the drawing: left to right, values green, gradients red."""
    scene = _scene(d)
    title = html.escape(Path(d.graph.filename).name)
    if d.values is not None:
        title += (f'    <font color="{VALUE_COLOR}">value</font>'
                  f'    <font color="{GRAD_COLOR}">gradient of {html.escape(_target(d))}</font>')
    out = [
        "digraph circuit {",
        (f'  graph [rankdir=LR, fontname="{_FONT}", fontsize=11, nodesep=0.3, ranksep=0.45, '
         f"forcelabels=true, labelloc=b, label=<{title}>];"),
        f'  node [fontname="{_FONT}", fontsize=13, penwidth=1.2];',
        f'  edge [fontname="{_FONT}", fontsize=11, arrowsize=0.7, color="#57606a"];',
    ]
    for shape in scene.shapes:
        fill, stroke = _STYLE[shape.kind]
        label = "" if shape.kind == "fork" else f"label=<{html.escape(shape.label)}>, "
        look = _DOT_SHAPES[shape.kind]
        if shape.kind == "gate" and len(shape.label) <= 2:  # `*`, `+`, `**`: a round gate
            look = "shape=circle, style=filled, width=0.4, fontsize=15"
        if shape.lines:
            look += ", xlabel=<" + "<br/>".join(_dot_line(*line) for line in shape.lines) + ">"
        out.append(f'  {shape.id} [{label}{look}, fillcolor="{fill}", color="{stroke}"];')
    for wire in scene.wires:
        attrs = []
        if wire.lines:
            attrs.append("label=<" + "<br/>".join(_dot_line(*line) for line in wire.lines) + ">")
        if wire.mark:  # the first operand enters from above, the second from below
            port = "nw" if wire.mark == _MARKS[0] else "sw"
            attrs.append(f'headlabel=<{wire.mark}>, headport={port}, labeldistance=1.6, '
                         'labelangle=-40, labelfontsize=10')
        if not wire.arrow:
            attrs.append("arrowhead=none")
        out.append(f"  {wire.tail} -> {wire.head}" + (f" [{', '.join(attrs)}]" if attrs else "")
                   + ";")
    out.append("}")
    return "\n".join(out) + "\n"


def render(dot: str, fmt: str) -> bytes:
    """`dot` text rendered by Graphviz as `fmt` (`svg` or `png`); `RenderError` if it cannot."""
    program = shutil.which("dot")
    if program is None:
        raise RenderError(f"--format {fmt} needs Graphviz's 'dot' program, which is not "
                          f"installed (not found on PATH): {INSTALL_HINT}")
    done = subprocess.run([program, f"-T{fmt}"], input=dot.encode("utf-8"), capture_output=True,
                          check=False)
    if done.returncode != 0:
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise RenderError(f"Graphviz 'dot' failed (exit {done.returncode})"
                          + (f": {detail[0]}" if detail else ""))
    return done.stdout


# -- Mermaid ------------------------------------------------------------------

_MERMAID_SHAPES = {  # kind -> (open, close) around the quoted label
    "input": ("([", "])"),
    "gate": ("(", ")"),
    "output": ("(((", ")))"),
    "const": ("[/", "/]"),
    "fork": ("((", "))"),
    "copy": ("([", "])"),
}
_MERMAID_WORDS = {"name": "{}", "value": "value {}", "grad": "grad {}"}
# Mermaid reads `#code;` as a character entity inside quoted labels; these keep
# quotes, entities, HTML and markdown-string backticks in a label literal.
_MERMAID_ESCAPES = {"#": "#35;", '"': "#quot;", "&": "#amp;", "<": "#lt;", ">": "#gt;",
                    "`": "#96;", "\n": " ", "\r": " "}


def _mermaid_text(text: str) -> str:
    return "".join(_MERMAID_ESCAPES.get(c, c) for c in text)


def _mermaid_lines(lines) -> list[str]:
    return [_mermaid_text(_MERMAID_WORDS[style].format(text)) for style, text in lines]


def to_mermaid(d: Drawing) -> str:
    """A Mermaid flowchart of the drawing, for Markdown files on code-hosting sites.

    Mermaid cannot colour parts of a label, so a wire's lines are spelt out:
    its name, `value 0.8808`, `grad -0.105`.
    """
    scene = _scene(d)
    out = ["flowchart LR"]
    for shape in scene.shapes:
        left, right = _MERMAID_SHAPES[shape.kind]
        label = "<br/>".join([_mermaid_text(shape.label) or " "] + _mermaid_lines(shape.lines))
        out.append(f'  {shape.id}{left}"{label}"{right}:::{shape.kind}')
    for wire in scene.wires:
        lines = _mermaid_lines(wire.lines)
        if wire.mark:
            lines.insert(0, wire.mark)
        arrow = "-->" if wire.arrow else "---"
        label = f'|"{"<br/>".join(lines)}"|' if lines else ""
        out.append(f"  {wire.tail} {arrow}{label} {wire.head}")
    used = {shape.kind for shape in scene.shapes}
    for kind, (fill, stroke) in _STYLE.items():
        if kind in used:
            dashes = ",stroke-dasharray:4 3" if kind == "copy" else ""
            out.append(f"  classDef {kind} fill:{fill},stroke:{stroke},color:#1f2328{dashes}")
    return "\n".join(out) + "\n"
