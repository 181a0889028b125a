"""The gate graph: a flat, single-assignment, topologically ordered IR.

A `Graph` is a tuple of `Node`s where every node's arguments come before it, plus
the names of the circuit's inputs, its outputs and (after differentiation) the
gradient of each input. Nodes are identified by their index. Besides the gates
of the gate table there are four kinds of leaf: `input` (attr: the input's
name), `seed` (attr: the output whose adjoint it is), `tangent` (attr: the input
whose direction it is, in forward mode) and `const` (attr: the value).

Graphs are only built through a `Builder`, which hash-conses: asking for a node
that already exists returns the existing one, so common subexpressions merge as
the graph is built. For commutative gates the arguments are compared in sorted
order (`x*y` and `y*x` are one node), but a node keeps the order it was written in.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from itertools import product
from typing import NamedTuple

from .errors import CircuitError, Label, Span
from .gates import DOMAIN_ERRORS, GATES
from .guards import guards, holds, lazy, schedule

LEAVES = ("input", "seed", "tangent", "const")


class Origin(NamedTuple):
    """Where a gate comes from: its `.circ` span, how messages name it (`'log'`), the
    chain of `gate` calls it was inlined through (outermost first: each call's span and
    the called gate's name), and the bus element whose definition it computes."""

    span: Span
    label: str
    calls: tuple[tuple[Span, str], ...] = ()
    element: str | None = None

    def describe(self, filename: str) -> str:
        """`g.circ:4:5: in call of 'lg': g.circ:1:14: in 'log'`, the outermost call first
        and the element after the first place (`in call of 'lg' for h1[3]`)."""
        places = [(span, f"call of '{gate}'") for span, gate in self.calls]
        places.append((self.span, self.label))
        for_element = f" for {self.element}" if self.element else ""
        return ": ".join(f"{filename}:{span.line}:{span.column}: in {what}"
                         + (for_element if k == 0 else "")
                         for k, (span, what) in enumerate(places))

    @staticmethod
    def places(described: str, filename: str) -> list[tuple[int, int, str]]:
        """What `describe(filename)` wrote, read back: `(line, column, what)` a place, the
        outermost call first, `what` as written (`call of 'lg' for h1[3]`, `'log'`);
        empty for text it did not write."""
        parts = re.split(re.escape(filename) + r":(\d+):(\d+): in ", described)
        if len(parts) < 4 or parts[0]:
            return []
        found = []
        for k in range(1, len(parts), 3):
            what = parts[k + 2]
            if k + 3 < len(parts):  # places are joined by ": "
                if not what.endswith(": "):
                    return []
                what = what[:-2]
            found.append((int(parts[k]), int(parts[k + 1]), what))
        return found

    def place(self, filename: str) -> str:
        """`g.circ:1:14`, with the calls and element it comes through, innermost call
        first: `g.circ:1:14 (in the call of 'lg' at g.circ:4:5, for h[2])`."""
        notes = [f"in the call of '{gate}' at {filename}:{span.line}:{span.column}"
                 for span, gate in reversed(self.calls)]
        notes += [f"for {self.element}"] if self.element else []
        where = f"{filename}:{self.span.line}:{self.span.column}"
        return f"{where} ({', '.join(notes)})" if notes else where

    def call_labels(self) -> list[Label]:
        """The call sites, as secondary spans of an error at the gate."""
        return [Label(span, f"in this call of '{gate}'") for span, gate in self.calls]

    @property
    def lines(self) -> str:
        """Where the gate comes from, for a comment: `line 4`, or through calls of `gate`
        definitions `line 6, in outer (line 2), in inner (line 1)`."""
        if not self.calls:
            return f"line {self.span.line}"
        inner = [span.line for span, _ in self.calls[1:]] + [self.span.line]
        return f"line {self.calls[0][0].line}, " + ", ".join(
            f"in {gate} (line {line})" for (_, gate), line in zip(self.calls, inner))


class Node(NamedTuple):  # a NamedTuple: a plain tuple underneath, which `new_node` makes
    op: str
    args: tuple[int, ...] = ()
    attr: str | float | None = None
    origin: Origin | None = None
    name: str | None = None  # the `.circ` wire (or adjoint) this node computes, if any


@dataclass(frozen=True)
class Graph:
    filename: str
    inputs: tuple[str, ...]
    defaults: dict[str, float]
    nodes: tuple[Node, ...]
    outputs: tuple[tuple[str, int], ...]
    grads: tuple[tuple[str, int], ...] = ()  # (input name, node) after `grad`
    # (label, node) of what forward mode computed (`grad.jvp`, `grad.hessian`): the
    # outputs' tangents, the Hessian-vector product, or the Hessian's entries.
    tangents: tuple[tuple[str, int], ...] = ()
    # The shape of each bus among the inputs and outputs, whose elements (`x[0]`,
    # `W[1,0]`) the graph has as inputs and outputs of their own; scalars are absent.
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)

    @property
    def roots(self) -> list[int]:
        """The nodes the graph exists to compute."""
        return [n for _, n in (*self.outputs, *self.grads, *self.tangents)]

    def const_value(self, node: int) -> float | None:
        n = self.nodes[node]
        return n.attr if n.op == "const" else None


_COMMUTATIVE = frozenset(name for name, gate in GATES.items() if gate.commutative)


def _key(op: str, args: tuple[int, ...], attr):
    """What identifies a node for hash-consing."""
    if op == "const":  # 0.0 == -0.0 but they are different constants; nan != nan
        return op, repr(attr)
    if op in _COMMUTATIVE and args[0] > args[1]:
        return op, (args[1], args[0]), attr
    return op, args, attr


new_node = tuple.__new__  # `new_node(Node, fields)` skips NamedTuple's Python-level __new__


class Builder:
    """Appends nodes to a graph under construction, reusing identical ones.

    `rewrites` rewrite gates as they are added (the optimizer's, in `passes`): a rewrite
    `rewrite(b, op, args, origin)` returns the node that stands for `op(args)`, or None
    to leave it to the next rewrite and, after the last, to be added as it is.
    """

    def __init__(self, nodes=(), rewrites=()):
        self.nodes: list[Node] = list(nodes)
        self._index: dict[tuple, int] = {_key(node.op, node.args, node.attr): i
                                         for i, node in enumerate(self.nodes)}
        self.rewrites = rewrites
        self._cannot_raise: dict[int, bool] = {}  # see `cannot_raise`

    def add(self, op: str, args: tuple[int, ...] = (), attr=None, origin: Origin | None = None,
            name: str | None = None) -> int:
        """The node `op(args)`, appended unless it exists; `name` names it if it has no name."""
        if args:
            for rewrite in self.rewrites:
                found = rewrite(self, op, args, origin)
                if found is not None:
                    if name is not None:
                        self.name(found, name)
                    return found
        if op == "const":
            name = None
        nodes = self.nodes
        new = len(nodes)
        found = self._index.setdefault(_key(op, args, attr), new)
        if found == new:
            nodes.append(new_node(Node, (op, args, attr, origin, name)))
        elif name is not None:
            self.name(found, name)
        return found

    def cannot_raise(self, node: int) -> bool:
        """Whether computing `node` never raises: no gate it depends on, itself included,
        can (`Gate.raises`). Remembered per node, so that all the questions a builder is
        asked together look at each node once."""
        known, nodes = self._cannot_raise, self.nodes
        stack = [node]
        while stack:
            top = stack[-1]
            if top in known:
                stack.pop()
                continue
            op, args = nodes[top].op, nodes[top].args
            if op in LEAVES or not GATES[op].raises:
                unknown = [a for a in args if a not in known]
                if unknown:
                    stack += unknown
                    continue
                known[top] = all(known[a] for a in args)
            else:
                known[top] = False
            stack.pop()
        return known[node]

    def const(self, value: float) -> int:
        return self.add("const", (), float(value))

    def const_value(self, node: int) -> float | None:
        n = self.nodes[node]
        return n.attr if n.op == "const" else None

    def is_const(self, node: int) -> bool:
        return self.nodes[node].op == "const"

    def name(self, node: int, name: str) -> None:
        """Give `node` a name, unless it already has one (the first name wins)."""
        n = self.nodes[node]
        if n.name is None and n.op != "const":
            self.nodes[node] = new_node(Node, (n.op, n.args, n.attr, n.origin, name))

    def graph(self, like: Graph, outputs, grads=(), tangents=()) -> Graph:
        return replace(like, nodes=tuple(self.nodes), outputs=tuple(outputs), grads=tuple(grads),
                       tangents=tuple(tangents))


def needed(nodes, roots, done: int = 0) -> list[bool]:
    """For each of `nodes`, whether a node of `roots` depends on it (a root on itself); the
    first `done` nodes are taken to be needed without looking."""
    need = [True] * done + [False] * (len(nodes) - done)
    for root in roots:
        need[root] = True
    for i in range(len(nodes) - 1, done - 1, -1):
        if need[i]:
            for a in nodes[i].args:
                need[a] = True
    return need


def renumbered(args: tuple[int, ...], new) -> tuple[int, ...]:
    """A node's arguments mapped through `new` (old node -> new node), as a pass that
    rebuilds a graph renumbers them: the one, two or three operands of a gate
    spelled out, none for a leaf (`gates.ARITIES`)."""
    if len(args) == 2:
        return new[args[0]], new[args[1]]
    return (new[args[0]],) if len(args) == 1 else () if not args else (
        new[args[0]], new[args[1]], new[args[2]])


def element(bus: str, index) -> str:
    """The name of an element of a bus: `x[3]`, `W[3,1]` (no `.circ` name has a `[`)."""
    return f"{bus}[{','.join(map(str, index))}]"


def elements(bus: str, shape: tuple[int, ...]) -> list[str]:
    """The names of a bus's elements, in row-major order; a scalar's (shape `()`) own name."""
    return [element(bus, i) for i in product(*map(range, shape))] if shape else [bus]


def bus_of(name: str) -> str:
    """The bus an element belongs to (`W` for `W[3,1]`); a scalar's own name."""
    return name.partition("[")[0]


def by_bus(names) -> dict[str, list[str]]:
    """`names` grouped by the bus each belongs to, in order of first appearance:
    `{"x": ["x[0]", "x[1]"], "y": ["y"]}`."""
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(bus_of(name), []).append(name)
    return groups


def fold_constant(op: str, values, origin: Origin | None) -> float:
    """`op` applied to constant operands with the gate table's `fn`; outside the gate's
    domain (`log(-1.0)`, `1/0`), a `CircuitError` at the gate's span."""
    try:
        return float(GATES[op].fn(*values))
    except DOMAIN_ERRORS as exc:
        label = origin.label if origin else f"'{op}'"
        raise CircuitError(f"{label} fails on constant operands {tuple(values)}: {exc}",
                           origin and origin.span, labels=origin.call_labels() if origin else ()
                           ) from None


class GraphError(Exception):
    """A graph breaks an invariant of the IR: a bug in whatever built it, never bad input
    (so not a `CircuitError`: the CLI lets it through with its traceback)."""


def check(graph: Graph) -> None:
    """Raise `GraphError` naming the first broken invariant of the IR; tests run it after
    every transformation."""
    def require(ok: bool, why: str) -> None:
        if not ok:
            raise GraphError(why)

    seen_inputs = set()
    for i, node in enumerate(graph.nodes):
        if node.op in LEAVES:
            require(not node.args, f"node {i}: a {node.op} leaf has arguments: {node}")
        else:
            require(node.op in GATES, f"node {i}: unknown op {node.op!r}")
            require(len(node.args) == GATES[node.op].arity,
                    f"node {i}: {node.op} takes {GATES[node.op].arity} arguments: {node}")
        require(all(0 <= a < i for a in node.args), f"node {i} is not after its arguments")
        if node.op == "input":
            require(node.attr in graph.inputs and node.attr not in seen_inputs,
                    f"node {i}: input {node.attr!r} is not in inputs, or is there twice")
            seen_inputs.add(node.attr)
        if node.op == "seed":
            require(node.attr in dict(graph.outputs), f"node {i}: seed of no output: {node}")
        if node.op == "tangent":
            require(node.attr in graph.inputs, f"node {i}: tangent of no input: {node}")
        if node.op == "const":
            require(isinstance(node.attr, float), f"node {i}: a constant that is not a float: {node}")
    for n in graph.roots:
        require(0 <= n < len(graph.nodes), f"a root is no node: {n}")
    require(all(name in graph.inputs for name, _ in graph.grads),
            f"a gradient of no input: {graph.grads}")
    require(set(graph.defaults) <= set(graph.inputs), "a default of no input")
    require(len(set(graph.inputs)) == len(graph.inputs), "an input named twice")


def run(graph: Graph, at: dict[str, float], seeds: dict[str, float] | None = None,
        apply=None, missing: float | None = math.nan, roots=None) -> list[float]:
    """The value of every node of `graph`, computed with the gate table's `fn`s.

    `at` gives each input's value, `seeds` each output's seed (default 1.0). This
    is the reference semantics that generated code must agree with; it is slow,
    and meant for the verifier, drawings and tests. `apply(gate, args, node)`, if given,
    evaluates each gate instead of `gate.fn(*args)` (the verifier's complex step; `node`
    is the gate's index, which a drawing reads).
    A node that only the branch of a `where` not taken needs is not computed: its value
    is `missing` (`guards`). Nor, given `roots`, is a node that neither they nor the
    graph's own roots need (`grad` leaves unused gates behind, whose uses would otherwise
    count: a branch's `log(x)` times a constant's adjoint).
    """
    if lazy(graph.nodes):
        return _run_lazily(graph, at, seeds, apply, missing, roots)
    values: list[float] = []
    for i, node in enumerate(graph.nodes):
        if node.op == "input":
            values.append(at[node.attr])
        elif node.op == "seed":
            values.append(1.0 if seeds is None else seeds[node.attr])
        elif node.op == "const":
            values.append(node.attr)
        else:
            args = [values[a] for a in node.args]
            gate = GATES[node.op]
            values.append(gate.fn(*args) if apply is None else apply(gate, args, i))
    return values


def _leaf(node: Node, at, seeds) -> float:
    if node.op == "input":
        return at[node.attr]
    if node.op == "seed":
        return 1.0 if seeds is None else seeds[node.attr]
    return node.attr


def _run_lazily(graph: Graph, at, seeds, apply, missing, roots) -> list:
    """`run` of a graph with `where` gates: each node in `schedule` order, where its guard holds."""
    nodes = graph.nodes
    guard = guards(nodes, [*graph.roots, *(roots or ())], sinks=roots is None)
    values: list = [missing] * len(nodes)
    for i in schedule(nodes, guard):
        node = nodes[i]
        if guard[i] is None:
            continue
        if node.op in LEAVES:
            values[i] = _leaf(node, at, seeds)
        elif holds(guard[i], values):
            args = [values[a] for a in node.args]
            gate = GATES[node.op]
            values[i] = gate.fn(*args) if apply is None else apply(gate, args, i)
    return values


def dump(graph: Graph) -> str:
    """The graph as text, one node a line (`%2 = mul %0 %1`), then its roots.

    Names and source positions are left out, so two graphs that compute the same
    thing the same way dump the same: tests compare passes' results this way.
    """
    lines = []
    for i, node in enumerate(graph.nodes):
        operands = [repr(node.attr)] if node.op == "const" else [str(node.attr)] if node.attr else []
        operands += [f"%{a}" for a in node.args]
        lines.append(f"%{i} = {node.op} {' '.join(operands)}")
    lines += [f"output {name} = %{n}" for name, n in graph.outputs]
    lines += [f"grad {name} = %{n}" for name, n in graph.grads]
    return "\n".join(lines)
