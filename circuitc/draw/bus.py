"""The bus-level view of a circuit with buses (`bus_circuit`): one node per input and per
defined bus or scalar wire, one arrow per wire read, with the written-out circuit that
supplies the numbers (its reference semantics).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import NamedTuple

from ..buses import Buses, written_out
from ..errors import Span
from ..front import read
from ..graph import Graph, by_bus, elements
from ..lower import lower
from ..syntax import (
    Assign,
    BusAssign,
    BusItem,
    Call,
    Index,
    InputDecl,
    Name,
    Op,
    OutputDecl,
    Reduce,
)
from ..unparse import expression_text
from .drawing import Drawing, structure, with_values


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
    source = read(text, filename, sizes)
    with source.errors():
        written, buses = written_out(source.statements, source.analysis)
        if not buses.shapes:
            return None
        return _bus_circuit(source.statements, written, buses, filename)


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


def bus_structure(c: BusCircuit) -> BusDrawing:
    """A bus-level drawing without values or gradients."""
    return BusDrawing(c, structure(c.graph, optimized=False))


def bus_with_values(c: BusCircuit, at: dict[str, float], seeds: dict[str, float] | None = None
                    ) -> BusDrawing:
    """A bus-level drawing with values and gradients: `with_values` of the written-out
    graph, at `at` and with `seeds` given element by element (`x[0]`)."""
    return BusDrawing(c, with_values(c.graph, at, seeds, optimized=False))


def output_seeds(d: BusDrawing) -> dict[str, float]:
    """Each output's seed, an output's elements all having the same one."""
    c, seeds = d.circuit, d.drawing.seeds
    return {name: next((seeds[e] for e in elements(name, c.nodes[k].shape)), 1.0)
            for name, k in c.outputs}


def element_values(node: BusNode, which) -> list | None:
    """The values (`which` is `Drawing.values`) or gradients of a node's elements,
    None without values."""
    return None if which is None else [which[i] for i in node.elements]


def nested_lists(flat: list, shape: tuple[int, ...]):
    """Row-major `flat` as nested lists of `shape` (a scalar as itself)."""
    if not shape:
        return flat[0]
    for d in range(len(shape) - 1, 0, -1):
        n = shape[d]
        flat = [flat[k * n:(k + 1) * n] for k in range(math.prod(shape[:d]))]
    return flat
