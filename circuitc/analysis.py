"""A `.circ` file as an editor sees it: its errors and warnings, what each name is, where
it is defined and used, and, for a file that compiles, each wire's value and gradient at
the defaults and the code circuitc writes for its derivative.

`analyze(text, filename)` never raises for a bad file: the `Analysis` it returns holds
the file's errors (the ones the commands report, in source order) and whatever could
still be resolved. A statement with a syntax error is left out and the rest is read
as usual (`parse.parse_recovering`), so a file being typed keeps its names; the checks
past parsing (names, buses, constant folding) are made only for a file without syntax
errors, and the warnings only for a file without errors, as the commands make them.
Spans count lines and characters (code points) from 1, as `CircuitError`s do
(`errors.Span`).

What needs the compiled circuit is computed when first asked for (or by `evaluate`),
and only for a file without errors: `value` (the wire's value and each output's gradient
with respect to it, at the defaults, as `circuitc graph --source` draws them) and
`derivative` (the text circuitc's `backward` computes the gradient by, as `circuitc
compile --elements` writes it).
`circuitc lsp` (`circuitc.lsp`) serves all of this to editors; docs/editors.md.
"""

from __future__ import annotations

import bisect
from dataclasses import replace
from functools import cached_property
from typing import NamedTuple

from .buses import expand
from .errors import CircuitError, CircuitWarning, Span
from .front import collector_paused, normalize
from .gates import CALLABLE, GATES
from .graph import by_bus
from .lint import lint
from .lower import lower_with_wires
from .parse import parse_recovering
from .passes import dce, live_nodes, optimize
from .scopes import KINDS, Occurrence, Resolver, Symbol, bound_by_text, builtin
from .syntax import (
    Assign,
    BusAssign,
    Call,
    GateDef,
    Index,
    InputDecl,
    Name,
    Op,
    Reduce,
)

# How each reduction passes the gradient back to its terms, in words (the gates' own rules
# are `Gate.derivative_text`).
REDUCTION_RULES = {
    "sum": "each term gets the whole gradient",
    "prod": "each term gets the gradient times the product of the other terms",
    "max": "the terms equal to the result share the gradient equally",
    "min": "the terms equal to the result share the gradient equally",
    "logsumexp": "each term gets the gradient times its softmax weight",
    "mean": "each term gets the gradient divided by the number of terms",
}


class Value(NamedTuple):
    """A wire's (or an input's, or an element's) value at the defaults, and the gradient of
    each output (a bus output: the sum of its elements) with respect to it; None where
    unknown (an input without a default, a wire no output depends on)."""

    value: float | None
    gradients: dict[str, float | None]


class Derivative(NamedTuple):
    """How the generated `backward` computes the gradient of a wire or an input: `text`,
    what it reads the gradient by where it uses it (`d_s`, or an expression written in
    its place: `d_s * x`), and `line`, the line that assigns it (`d_s = d_f * (f * (1.0 -
    f))`), or None (an inlined expression, or an output's seed, the parameter `d_f`)."""

    text: str
    line: str | None


def analyze(text: str, filename: str = "<string>") -> Analysis:
    """The analysis of the circuit `text` (`filename` names it in messages)."""
    with collector_paused():
        return Analysis(text, filename)


class Analysis:
    """A `.circ` text analyzed (see the module docstring).

    `text` is the text as the compiler reads it (`front.normalize`) and `lines` its lines;
    `errors` and `warnings` are `CircuitError`s and `CircuitWarning`s with the file's
    name and text attached; `statements` the statements that parsed; `symbols` the names
    the file defines (inputs, wires, buses, sizes, gates), the first definition of each;
    `occurrences` every name written that resolves, in source order.
    """

    def __init__(self, text: str, filename: str = "<string>"):
        self.text, self.filename = normalize(text), filename
        self.lines = self.text.split("\n")
        self.statements, syntax = parse_recovering(self.text)
        self.errors: list[CircuitError] = [e.attach(filename, self.text) for e in syntax]
        self.warnings: list[CircuitWarning] = []
        resolved = Resolver(self.statements)
        self.symbols: dict[str, Symbol] = resolved.symbols
        self.occurrences: list[Occurrence] = resolved.found
        self._starts = [o.span[:2] for o in self.occurrences]
        self._extents = resolved.extents  # (span, statement), in source order
        self._extent_starts = [span[:2] for span, _ in self._extents]
        self._extent_of = {id(statement): span for span, statement in self._extents}
        self._written = None  # (graph as written, the node of each name), once compiled
        self._forward = None  # the optimized graph, once compiled
        self._sizes: dict[str, int] = {}
        if not self.errors:
            self._check()

    def _check(self) -> None:
        """The checks past parsing, then the warnings of a file that passes them: what the
        commands print (a warning about a file with errors can contradict them: `output f`
        of a file that defines no `f` is an input for `lint`, and never defined for `lower`)."""
        try:
            statements, buses = expand(self.statements)
            self._sizes = buses.sizes
            graph, nodes = lower_with_wires(statements, self.filename)
            # The shapes of the buses among the inputs and outputs, as `api.lower_source` has them.
            io = {*by_bus(graph.inputs), *by_bus(name for name, _ in graph.outputs)}
            graph = replace(graph, shapes={k: v for k, v in buses.shapes.items() if k in io})
            self._forward = optimize(graph)  # constant folding can fail: `log(-1)`
        except CircuitError as e:
            self.errors = [x.attach(self.filename, self.text) for x in getattr(e, "errors", [e])]
        else:
            self._written = graph, nodes
            self.warnings = [w.attach(self.filename, self.text) for w in lint(self.statements)]

    @property
    def compiled(self) -> bool:
        """Whether the file compiles: whether `value` and `derivative` can answer."""
        return self._written is not None

    # -- names ----------------------------------------------------------------

    def at(self, line: int, column: int) -> Occurrence | None:
        """The name written at `line`, `column` (its end included, so that the place just
        after a name finds it), or None."""
        k = bisect.bisect_right(self._starts, (line, column)) - 1
        if k >= 0:
            span = self.occurrences[k].span
            if span.end_line == line and column <= span.end_column:
                return self.occurrences[k]
        return None

    def definition(self, name: str) -> Span | None:
        """Where the input, wire, bus, size or gate `name` is defined (an implicit input:
        where it is first used), or None."""
        symbol = self.symbols.get(name)
        return symbol.span if symbol else None

    def references(self, symbol: Symbol, definition: bool = True) -> list[Span]:
        """Every place `symbol` is written, in source order; with `definition`, the place
        that defines it too."""
        return [o.span for o in self.occurrences
                if o.symbol is symbol and (definition or not o.definition)]

    def visible(self, line: int, column: int) -> list[Symbol]:
        """The names the file defines that an expression at `line`, `column` may use: in a
        `gate` body its parameters and the gates; elsewhere the inputs, wires, buses,
        sizes and gates, and the index variables bound there. Where the text does not
        parse, what the line up to there would bind if it did."""
        statement = self.statement_at(line, column)
        if statement is None:
            before = self.lines[line - 1][:column - 1] if line <= len(self.lines) else ""
            return [*self.symbols.values(), *bound_by_text(before)]
        local = [o.symbol for o in self.occurrences if o.definition and o.symbol.statement
                 is statement and o.symbol.kind in ("parameter", "index")
                 and (o.symbol.within is None or _holds(o.symbol.within, line, column))]
        if type(statement) is GateDef:
            return [*local, *(s for s in self.symbols.values() if s.kind == "gate")]
        return [*self.symbols.values(), *local]

    def statement_at(self, line: int, column: int):
        """The statement (that parsed) whose text holds `line`, `column`, or None."""
        k = bisect.bisect_right(self._extent_starts, (line, column)) - 1
        if k >= 0 and _holds(self._extents[k][0], line, column):
            return self._extents[k][1]
        return None

    def formula(self, symbol: Symbol) -> str | None:
        """The text of the statement that defines `symbol` (`s = a*x + b*y + c`; for an
        input, its `input` statement), comments left out; None for what circuitc defines
        and implicit inputs."""
        span = self._extent_of.get(id(symbol.statement))
        if span is None:
            return None
        lines = self.lines[span.line - 1:span.end_line]
        first = lines[0][:span.column - 1]
        if type(symbol.statement) is InputDecl:  # from its keyword
            lines[0] = lines[0][first.rfind("input"):]
        else:
            lines[0] = lines[0][span.column - 1:]
        text = "\n".join(line.split("#", 1)[0].rstrip() for line in lines)
        end = span.end_line
        while text.count("(") > text.count(")") and end < len(self.lines):  # ')' on a line of its own
            text += "\n" + self.lines[end].split("#", 1)[0].rstrip()
            end += 1
        return text.split(";", 1)[0].strip()

    def rule(self, symbol: Symbol) -> str | None:
        """The local derivative of the gate a wire's or a bus's expression ends in, in
        words (`'+': 1, 1`; from the gate table), or None for other names."""
        kind = type(symbol.statement)
        expr = symbol.statement.expr if symbol.kind in ("wire", "bus") and kind in (
            Assign, BusAssign) else None
        kind = type(expr)
        if kind is Op:
            gate = GATES[expr.gate]
            return f"'{gate.label}': {gate.derivative_text}"
        if kind is Call:
            name = expr.name.id
            if name in CALLABLE:
                return f"'{name}': {CALLABLE[name].derivative_text}"
            return f"'{name}': the derivative of its body, inlined at the call"
        if kind is Reduce:
            return f"'{expr.name.id}': {REDUCTION_RULES[expr.name.id]}"
        if kind is Name or kind is Index:
            return "a copy: 1"
        return None

    def elements(self, symbol: Symbol) -> list[str]:
        """The names `value` and `derivative` take for `symbol`: a bus's elements (`h[0]`,
        `h[1]`, ...; the first alone for a bus no output depends on), a scalar's own name."""
        if symbol.rank:
            prefix = symbol.name + "["
            return [name for name in self._written[1] if name.startswith(prefix)] \
                if self.compiled else []
        return [symbol.name]

    # -- values and derivatives -----------------------------------------------

    def size(self, name: str) -> int | None:
        """The value of the size `name`, where its buses could be written out."""
        return self._sizes.get(name)

    def value(self, name: str) -> Value | None:
        """The value at the defaults of the input or wire `name` (or bus element `x[2]`),
        and each output's gradient with respect to it; None for a file that does not
        compile or a name it does not define. A gate that fails at the defaults
        (`log(-1)`) raises its `CircuitError`, with the file's text attached."""
        if not self.compiled or name not in self._written[1]:
            return None
        node = self._written[1][name]
        values, gradients = self._values
        return Value(values[node], {out: grads[node] for out, grads in gradients.items()})

    def evaluate(self) -> None:
        """Compute now what `value` and `derivative` read, which they otherwise compute
        when first asked (a gate that fails at the defaults is left for `value` to raise)."""
        if self.compiled:
            self._derivatives  # noqa: B018 (a cached property: computed here, kept)
            try:
                self._values  # noqa: B018
            except CircuitError:
                pass

    @cached_property
    def _values(self) -> tuple[tuple, dict[str, tuple]]:
        """Every node's value at the defaults, and each output's gradient per node, as
        `circuitc graph --source` draws them (the graph as written, computed as the
        generated code computes it)."""
        from .draw import with_values  # the drawing's evaluation, needed only here

        graph, _ = self._written
        at = {name: graph.defaults.get(name) for name in graph.inputs}
        values, gradients = (), {}
        try:
            for out, members in by_bus(name for name, _ in graph.outputs).items():
                seeds = {name: float(name in members) for name, _ in graph.outputs}
                drawing = with_values(graph, at, seeds, optimized=False)
                values, gradients[out] = drawing.values, drawing.grads
        except CircuitError as e:
            raise e.attach(self.filename, self.text) from None
        return values, gradients

    def derivative(self, name: str) -> Derivative | None:
        """How the generated `backward` computes the gradient with respect to the input or
        wire `name` (or bus element `h[0]`); None for a file that does not compile, a
        name it does not define, a wire no output depends on, or one the optimizer made
        into another (`t = x*1` is `x`, and has its gradient)."""
        return self._derivatives.get(name) if self.compiled else None

    @cached_property
    def _derivatives(self) -> dict[str, Derivative]:
        """`derivative` of every name: the gradient graph that `api.differentiate` makes,
        with the adjoint of each node of the optimized graph, and the python target's text
        for each (`emit.adjoints`)."""
        from .emit.adjoints import adjoint_texts
        from .grad import grad_with_adjoints

        forward = self._forward
        full, adjoint = grad_with_adjoints(forward)
        done = len(forward.nodes)
        live = live_nodes(full, done)
        backward = dce(full, done)
        # `dce` keeps the live nodes in order: the k-th live node of `full` is node k.
        renumbered = {old: k for k, old in enumerate(i for i in range(len(live)) if live[i])}
        texts = adjoint_texts(forward, backward)
        # A name's node in the optimized graph is the one its node as written is named by
        # there (a wire that computes what an earlier one does has the earlier one's name).
        optimized = {}
        for i, node in enumerate(forward.nodes):
            if node.name is not None:
                optimized.setdefault(node.name, i)
        graph, nodes = self._written
        found = {}
        for name, node in nodes.items():
            i = optimized.get(graph.nodes[node].name)
            if i is not None:
                k = renumbered.get(adjoint.get(i, -1))
                found[name] = Derivative("0.0", None) if k is None else Derivative(*texts[k])
        return found


def _holds(span: Span, line: int, column: int) -> bool:
    """Whether `line`, `column` is in `span`, its end included."""
    return span[:2] <= (line, column) <= span[2:]


__all__ = ["KINDS", "REDUCTION_RULES", "Analysis", "Derivative", "Occurrence", "Symbol",
           "Value", "analyze", "builtin"]
