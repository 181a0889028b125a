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
  `a / b`, `a ** b`), the arrows into it are marked ① and ②.
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
"""

from __future__ import annotations

import html
import json
import math
import shutil
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple

from .api import source_errors, written_graph
from .buses import Buses, expand
from .errors import CircuitError, Span
from .gates import GATES
from .grad import grad_with_adjoints
from .graph import LEAVES, Builder, Graph, by_bus, elements, run
from .lower import lower
from .parse import (
    Assign,
    BusAssign,
    BusItem,
    Call,
    Index,
    InputDecl,
    Name,
    Num,
    Op,
    OutputDecl,
    Reduce,
    parse,
)
from .passes import REWRITES, live_nodes, optimize
from .report import json_number

FORMATS = ("dot", "svg", "png", "json", "mermaid")
SUFFIXES = {".dot": "dot", ".gv": "dot", ".svg": "svg", ".png": "png", ".json": "json",
            ".mmd": "mermaid", ".mermaid": "mermaid"}  # a file's format, by its suffix
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
    "wire": ("#f6f8fa", "#57606a"),  # a bus or scalar wire, at bus level
}
NOTE_COLOR = "#57606a"
_MARKS = "①②③④"


class GraphvizError(Exception):
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
    with written_graph(text, filename, sizes) as (written, _):
        forward = optimize(written)
    return forward if optimized else written


def structure(graph: Graph, optimized: bool = True) -> Drawing:
    """A drawing of the graph alone, without values or gradients."""
    return Drawing(graph, optimized)


def with_values(graph: Graph, at: dict[str, float | None], seeds: dict[str, float] | None = None,
                optimized: bool = True) -> Drawing:
    """A drawing with the value at `at` and the gradient of every node an output
    depends on, where they are known.

    The gradient is that of `sum(seeds[out] * out)` (every seed 1.0 by default),
    computed by the gradient graph that `grad` builds, evaluated with the gate
    table. A graph as written (not `optimized`) has the values the generated code
    computes (see `_as_compiled`), so that both drawings agree with `eval`. A gate
    no output depends on (a dead wire of the graph as written) is not evaluated, as
    the generated code does not evaluate it: its value and gradient are `None`. A
    gate that fails on its operands (`log(-1)`) raises a `CircuitError` at its
    source span (the caller attaches the file's text). An input whose value in `at` is
    `None` (none given, no default) has none, nor has anything computed from it: a
    value or a gradient that needs it is `None` (`f = w*x` without `x`: `w`'s gradient
    is unknown, `x`'s is `w`).
    """
    seeds = {name: 1.0 for name, _ in graph.outputs} if seeds is None else dict(seeds)
    full, adjoint = grad_with_adjoints(graph)
    values = _run(full, at, seeds, len(graph.nodes), None if optimized else _as_compiled(graph, at))
    live = live_nodes(graph)
    grads = tuple(None if node.op == "const" or not live[i]
                  else values[adjoint[i]] if i in adjoint else 0.0
                  for i, node in enumerate(graph.nodes))
    return Drawing(graph, optimized, dict(at), seeds, tuple(values[:len(graph.nodes)]), grads)


def _as_compiled(graph: Graph, at: dict[str, float]) -> list[float | None]:
    """The value of each node of `graph` as the generated code computes it: the value of
    the node the optimizer's rewrites make of it (`None` for a node no output needs).

    The rewrites are exact where both forms give a number, but not in what can fail:
    `x**2 -> x*x` gives inf where `math.pow` raises.
    """
    live = live_nodes(graph)
    b = Builder((), REWRITES)
    new = [-1] * len(graph.nodes)
    for i, (op, args, attr, origin, _) in enumerate(graph.nodes):
        if live[i]:
            new[i] = b.add(op, tuple([new[a] for a in args]), attr, origin)
    compiled = b.graph(graph, [(name, new[n]) for name, n in graph.outputs])
    values = _run(compiled, at, {}, len(compiled.nodes))
    return [None if n < 0 else values[n] for n in new]


def _run(graph: Graph, at: dict[str, float], seeds: dict[str, float],
         forward: int, known: list[float | None] | None = None) -> list[float | None]:
    """`run(graph, at, seeds)` for the gates the roots depend on (`None` for the others,
    and for a gate that reads a `None`), naming the gate and its span when one fails.

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
        if None in args:  # it reads a value not known: an input without one
            return None
        try:
            return gate.fn(*args)
        except (ArithmeticError, ValueError) as e:
            origin = graph.nodes[i].origin
            what = origin.label if origin else f"'{gate.label}'"
            if i < forward:
                what += " on " + ", ".join(map(repr, args))
            raise CircuitError(f"{what} fails: {e}", origin and origin.span,
                               labels=origin.call_labels() if origin else ()) from None

    return run(graph, at, seeds, apply)


# -- buses ----------------------------------------------------------------------


class BusNode(NamedTuple):
    """An input, or a wire defined by a statement (a bus or a scalar), at bus level."""

    kind: str  # "input" or "wire"
    name: str
    shape: tuple[int, ...]  # () for a scalar
    elements: tuple[int, ...]  # its elements' nodes in the written-out graph, row-major
    expr: str | None  # a wire's defining expression, as `.circ` text
    span: Span | None  # a wire's name in its statement

    @property
    def label(self) -> str:
        return f"{self.name} [{', '.join(map(str, self.shape))}]" if self.shape else self.name


class Reduction(NamedTuple):
    """A reduction around an access: `sum(... for j)`, or `... for j in range(1, n)`."""

    op: str
    over: tuple[str, ...]
    range: str | None  # `range(1, n)` when given, None when inferred

    def __str__(self) -> str:
        return f"{self.op} over {', '.join(self.over)}" + (f" in {self.range}" if self.range
                                                            else "")


class Access(NamedTuple):
    """Node `source` read by the statement that defines node `target`, as `text`
    (`W1[i,j]`, or a scalar's name) inside `reductions`, outermost first."""

    source: int
    target: int
    text: str
    reductions: tuple[Reduction, ...]


@dataclass(frozen=True)
class BusCircuit:
    """A circuit with buses, seen bus by bus, and the written-out circuit it means.

    `graph` is the written-out circuit as lowered (not optimized), whose nodes hold
    every element's value; `nodes` lists the inputs (in declaration order) and then
    the wires (in statement order); `accesses` lists each statement's reads in
    source order; `outputs` names each output's node in `nodes`.
    """

    graph: Graph
    sizes: dict[str, int]
    nodes: tuple[BusNode, ...]
    accesses: tuple[Access, ...]
    outputs: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class BusDrawing:
    """A `BusCircuit` to draw and `drawing`, its written-out graph's values and gradients."""

    circuit: BusCircuit
    drawing: Drawing


def bus_circuit(text: str, filename: str = "<string>", sizes: dict[str, int] | None = None
                ) -> BusCircuit | None:
    """The bus-level view of the circuit in `text`, or None when it has no bus.

    A bad file raises `CircuitError` with the file's name and text attached, as
    `circuit` does.
    """
    if "[" not in text:  # every bus is declared, defined or read with brackets
        return None
    with source_errors(text, filename) as source:
        statements = parse(source)
        written, buses = expand(statements, sizes)
        if not buses.shapes:
            return None
        return _bus_circuit(statements, written, buses, filename)


def _bus_circuit(statements: list, written: list, buses: Buses, filename: str) -> BusCircuit:
    """The view of a file's `statements`, given what `expand` makes of them."""
    real = [name for name, _ in lower(written, filename).outputs]
    # Lowered again with every wire an output after the real ones, to find each
    # element's node: hash-consing may have given a node another wire's name.
    named = {s.target.id: s.target for s in written if type(s) is Assign}
    for s in written:
        if type(s) is InputDecl:
            named.update((name.id, name) for name, _ in s.items)
    wanted = list(dict.fromkeys([*real, *(s.target.id for s in written if type(s) is Assign)]))
    full = lower([s for s in written if type(s) is not OutputDecl]
                 + [OutputDecl(tuple(named[name] for name in wanted))], filename)
    node_of = {node.attr: i for i, node in enumerate(full.nodes) if node.op == "input"}
    node_of.update(full.outputs)
    io = {*by_bus(full.inputs), *by_bus(real)}
    graph = replace(full, outputs=full.outputs[:len(real)],
                    shapes={k: v for k, v in buses.shapes.items() if k in io})

    inputs = list(dict.fromkeys([*_declared_inputs(statements), *by_bus(graph.inputs)]))
    nodes = []
    for name in inputs:
        shape = buses.shapes.get(name, ())
        nodes.append(BusNode("input", name, shape, _nodes_of(name, shape, node_of), None, None))
    where = {name: k for k, name in enumerate(inputs)}
    wires = [s for s in statements if type(s) in (Assign, BusAssign)]
    for s in wires:
        shape = buses.shapes.get(s.target.id, ())
        where[s.target.id] = len(nodes)
        nodes.append(BusNode("wire", s.target.id, shape, _nodes_of(s.target.id, shape, node_of),
                             expression_text(s.expr), s.target.span))
    accesses = [Access(where[name], where[s.target.id], text, reductions)
                for s in wires for name, text, reductions in _reads(s.expr, where)]
    outputs = tuple((name, where[name]) for name in by_bus(real))
    return BusCircuit(graph, dict(buses.sizes), tuple(nodes), tuple(accesses), outputs)


def _declared_inputs(statements: list) -> list[str]:
    """The inputs in declaration order (a bus of no element included)."""
    return [item.name.id if type(item) is BusItem else item[0].id
            for s in statements if type(s) is InputDecl for item in s.items]


def _nodes_of(name: str, shape: tuple[int, ...], node_of: dict[str, int]) -> tuple[int, ...]:
    """The nodes of a bus's elements: all of them, but for a bus no output depends on,
    whose first element alone is written out (`buses.expand`) and has no value."""
    return tuple(node_of[e] for e in elements(name, shape) if e in node_of)


def _reads(expr, nodes: dict[str, int]):
    """`(name, text, reductions)` for each read of a wire or input in `expr`, in
    source order; index expressions and ranges read sizes and index variables only."""
    stack = [(expr, ())]
    while stack:
        e, around = stack.pop()
        kind = type(e)
        if kind is Index:
            yield e.name.id, expression_text(e), around
        elif kind is Name:
            if e.id in nodes:
                yield e.id, e.id, around
        elif kind is Reduce:
            given = e.bounds and expression_text(Call(Name("range", e.name.span), e.bounds))
            reduction = Reduction(e.name.id, tuple(v.id for v in e.vars), given or None)
            stack.append((e.body, (*around, reduction)))
        elif kind is Op or kind is Call:
            stack.extend((a, around) for a in reversed(e.args))


_PRECEDENCE = {"add": 1, "sub": 1, "mul": 2, "div": 2, "floordiv": 2, "neg": 3, "pow": 4}
_ATOM = 5


def expression_text(expr) -> str:
    """`expr` as `.circ` text that parses back to it: parentheses only where the
    tree needs them, operators spaced (`a * b + c`), indices compact (`W[i,j+1]`)."""
    done: list[tuple[str, int]] = []  # (text, precedence)
    stack = [(expr, False, False)]  # (expression, inside an index, operands done)
    while stack:
        e, compact, ready = stack.pop()
        kind = type(e)
        if kind is Num:
            v = e.value
            done.append((str(int(v)) if v.is_integer() and abs(v) < 1e16 else repr(v), _ATOM))
            continue
        if kind is Name:
            done.append((e.id, _ATOM))
            continue
        operands = (e.body, *(e.bounds or ())) if kind is Reduce else e.args
        if not ready:
            stack.append((e, compact, True))
            stack.extend((a, compact or kind is Index, False) for a in reversed(operands))
            continue
        args = done[len(done) - len(operands):]
        del done[len(done) - len(operands):]
        done.append(_joined(e, args, compact))
    return done.pop()[0]


def _joined(e, args: list[tuple[str, int]], compact: bool) -> tuple[str, int]:
    """The text of `e` from its operands' texts and precedences."""
    kind = type(e)
    texts = [t for t, _ in args]
    if kind is Index:
        return f"{e.name.id}[{','.join(texts)}]", _ATOM
    if kind is Call:
        return f"{e.name.id}({', '.join(texts)})", _ATOM
    if kind is Reduce:
        bounds = f" in range({', '.join(texts[1:])})" if e.bounds is not None else ""
        return f"{e.name.id}({texts[0]} for {', '.join(v.id for v in e.vars)}{bounds})", _ATOM
    p = _PRECEDENCE[e.gate]

    def grouped(k: int, tighter: bool) -> str:
        text, q = args[k]
        return f"({text})" if q < p or (q == p and tighter) else text
    if e.gate == "neg":
        return "-" + grouped(0, False), p
    symbol = GATES[e.gate].operator if e.gate in GATES else "//"
    if e.gate == "pow":  # `atom ** unary`: a sign may follow `**` unparenthesised
        left = grouped(0, True)
        right = args[1][0] if args[1][1] >= _PRECEDENCE["neg"] else f"({args[1][0]})"
    else:  # left-associative
        left, right = grouped(0, False), grouped(1, True)
    return (f"{left}{symbol}{right}" if compact else f"{left} {symbol} {right}"), p


def bus_structure(c: BusCircuit) -> BusDrawing:
    """A bus-level drawing without values or gradients."""
    return BusDrawing(c, structure(c.graph, optimized=False))


def bus_with_values(c: BusCircuit, at: dict[str, float], seeds: dict[str, float] | None = None
                    ) -> BusDrawing:
    """A bus-level drawing with values and gradients: `with_values` of the written-out
    graph, at `at` and with `seeds` given element by element (`x[0]`)."""
    return BusDrawing(c, with_values(c.graph, at, seeds, optimized=False))


def _output_seeds(d: BusDrawing) -> dict[str, float]:
    """Each output's seed, an output's elements all having the same one."""
    c, seeds = d.circuit, d.drawing.seeds
    return {name: next((seeds[e] for e in elements(name, c.nodes[k].shape)), 1.0)
            for name, k in c.outputs}


def _bus_values(node: BusNode, which) -> list | None:
    """The values (`which` is `Drawing.values`) or gradients of a node's elements,
    None without values."""
    return None if which is None else [which[i] for i in node.elements]


def _nested(flat: list, shape: tuple[int, ...]):
    """Row-major `flat` as nested lists of `shape` (a scalar as itself)."""
    if not shape:
        return flat[0]
    for d in range(len(shape) - 1, 0, -1):
        n = shape[d]
        flat = [flat[k * n:(k + 1) * n] for k in range(math.prod(shape[:d]))]
    return flat


# A bus with at most this many elements shows them all; a larger one, their range.
LISTED = 4


def _summary(values: list, shape: tuple[int, ...]) -> str | None:
    """A bus's values for a label: `[1, -2]`, `all 0.5`, or `min -0.5, max 1.2`; a
    scalar's as one number; None when none has a value."""
    known = [v for v in values if v is not None]
    if not known:
        return None
    if not shape:
        return _short(known[0])
    if len(values) <= LISTED:
        shown = [None if v is None else _short(v) for v in values]
        return str(_nested(shown, shape)).replace("'", "")
    numbers = [v for v in known if not math.isnan(v)]
    nan = ", nan" if len(numbers) < len(known) else ""
    if not numbers:
        return "all nan"
    lo, hi = _short(min(numbers)), _short(max(numbers))
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
            numbers = _bus_values(node, which)
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


def _scene_and_title(d: Drawing | BusDrawing) -> tuple[_Scene, str]:
    if isinstance(d, BusDrawing):
        return _bus_scene(d), _bus_title(d.circuit)
    return _scene(d), Path(d.graph.filename).name


def _values_of(d: Drawing | BusDrawing):
    return (d.drawing if isinstance(d, BusDrawing) else d).values


def _describe_buses(d: BusDrawing) -> dict:
    """A bus-level drawing as plain data (docs/drawing.md documents the schema)."""
    c, values, grads = d.circuit, d.drawing.values, d.drawing.grads

    def exact(numbers: list | None, shape):
        if numbers is None or numbers and all(x is None for x in numbers):
            return None  # without values, or not evaluated (no output depends on it)
        return _nested([json_number(x) for x in numbers], shape)
    nodes = []
    for k, node in enumerate(c.nodes):
        nodes.append({
            "id": k,
            "kind": node.kind,
            "name": node.name,
            "shape": list(node.shape),
            "label": node.label,
            "expr": node.expr,
            "span": node.span and dict(zip(("line", "column", "end_line", "end_column"),
                                           node.span)),
            "value": exact(_bus_values(node, values), node.shape),
            "grad": exact(_bus_values(node, grads), node.shape),
        })
    at = d.drawing.at
    inputs = [(k, node) for k, node in enumerate(c.nodes) if node.kind == "input"]
    return {
        "version": JSON_VERSION,
        "level": "bus",
        "file": c.graph.filename,
        "sizes": dict(c.sizes),
        "inputs": [{"name": node.name, "node": k} for k, node in inputs],
        "outputs": [{"name": name, "node": k} for name, k in c.outputs],
        "at": at and {node.name: _nested([json_number(at[e]) for e in
                                          elements(node.name, node.shape)], node.shape)
                      for _, node in inputs},
        "seeds": d.drawing.seeds and {k: json_number(v) for k, v in _output_seeds(d).items()},
        "nodes": nodes,
        "edges": [{"from": a.source, "to": a.target, "access": a.text,
                   "reductions": [{"op": r.op, "over": list(r.over), "range": r.range}
                                  for r in a.reductions]}
                  for a in c.accesses],
    }


# -- JSON -------------------------------------------------------------------


def _label(node) -> str:
    if node.op == "input":
        return node.attr
    if node.op == "const":
        return _short(node.attr)
    return GATES[node.op].label


def describe(d: Drawing | BusDrawing) -> dict:
    """The drawing as plain data; docs/drawing.md documents the schema (version 1)."""
    if isinstance(d, BusDrawing):
        return _describe_buses(d)
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
            "calls": [{"gate": gate, **dict(zip(("line", "column", "end_line", "end_column"), at))}
                      for at, gate in node.origin.calls] if node.origin else [],
            "element": node.origin.element if node.origin else None,
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


def to_json(d: Drawing | BusDrawing) -> str:
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
        lines += [(style, _short(x[i])) for style, x in (("value", d.values), ("grad", d.grads))
                  if x[i] is not None]
    return tuple(lines)


def _target(d: Drawing | BusDrawing) -> str:
    """The function whose gradient is drawn: `f`, or `loss + score`, or `2·f`."""
    seeds = _output_seeds(d) if isinstance(d, BusDrawing) else d.seeds
    terms = [name if s == 1.0 else f"{_short(s)}·{name}"
             for name, s in seeds.items() if s != 0.0]
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
    "wire": 'shape=box, style="rounded,filled", margin="0.12,0.06"',
}


_DOT_LINES = {  # a label line's style -> its Graphviz markup
    "name": "<i>{}</i>",  # a wire's .circ name
    "value": f'<font color="{VALUE_COLOR}">{{}}</font>',
    "grad": f'<font color="{GRAD_COLOR}">{{}}</font>',
    "expr": f'<font color="{NOTE_COLOR}" point-size="11">{{}}</font>',  # a wire's definition
    "access": "{}",  # how a wire is read: `W1[i,j]`
    "note": f'<font color="{NOTE_COLOR}"><i>{{}}</i></font>',  # `sum over j`
}


def _dot_line(style: str, text: str) -> str:
    return _DOT_LINES[style].format(html.escape(text))


def _dot_string(text: str) -> str:
    """`text` inside a double-quoted Graphviz string: quotes and backslashes escaped."""
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


def to_dot(d: Drawing | BusDrawing) -> str:
    """Graphviz source for the drawing: left to right, values green, gradients red."""
    scene, title = _scene_and_title(d)
    title = html.escape(title)
    if _values_of(d) is not None:
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
        if shape.inner:
            label = (f"label=<{html.escape(shape.label)}<br/>"
                     + "<br/>".join(_dot_line(*line) for line in shape.inner) + ">, ")
        look = _DOT_SHAPES[shape.kind]
        if shape.kind == "gate" and len(shape.label) <= 2:  # `*`, `+`, `**`: a round gate
            look = "shape=circle, style=filled, width=0.4, fontsize=15"
        if shape.lines:
            look += ", xlabel=<" + "<br/>".join(_dot_line(*line) for line in shape.lines) + ">"
        if shape.tooltip:
            look += f', tooltip="{_dot_string(shape.tooltip)}"'
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


# -- Mermaid ------------------------------------------------------------------

_MERMAID_SHAPES = {  # kind -> (open, close) around the quoted label
    "input": ("([", "])"),
    "gate": ("(", ")"),
    "output": ("(((", ")))"),
    "const": ("[/", "/]"),
    "fork": ("((", "))"),
    "copy": ("([", "])"),
    "wire": ("(", ")"),
}
_MERMAID_WORDS = {"name": "{}", "value": "value {}", "grad": "grad {}", "expr": "{}",
                  "access": "{}", "note": "{}"}
# Mermaid reads `#code;` as a character entity inside quoted labels; these keep
# quotes, entities, HTML and markdown-string backticks in a label literal.
_MERMAID_ESCAPES = {"#": "#35;", '"': "#quot;", "&": "#amp;", "<": "#lt;", ">": "#gt;",
                    "`": "#96;", "\n": " ", "\r": " "}


def _mermaid_text(text: str) -> str:
    return "".join(_MERMAID_ESCAPES.get(c, c) for c in text)


def _mermaid_lines(lines) -> list[str]:
    return [_mermaid_text(_MERMAID_WORDS[style].format(text)) for style, text in lines]


def to_mermaid(d: Drawing | BusDrawing) -> str:
    """A Mermaid flowchart of the drawing, for Markdown files on code-hosting sites.

    Mermaid cannot colour parts of a label, so a wire's lines are spelt out:
    its name, `value 0.8808`, `grad -0.105`.
    """
    scene = _scene_and_title(d)[0]
    out = ["flowchart LR"]
    for shape in scene.shapes:
        left, right = _MERMAID_SHAPES[shape.kind]
        label = "<br/>".join([_mermaid_text(shape.label) or " "] + _mermaid_lines(shape.inner)
                             + _mermaid_lines(shape.lines))
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
