"""Gate graphs -> the source text of a plain Python module (docs/module.md).

The module imports nothing but `math`. `forward` and `backward` are straight-line
code: a line per named wire or adjoint, a temporary used once written into the
expression that uses it (see `PythonWriter.function`), other temporaries numbered `t1`,
`t2`, ..., each line that comes from a gate ending with a `# line N` comment: the
line of the `.circ` file, which the module's header names (not repeated on every
line: that would cost `compile()` time and bytes). A circuit of `LARGE` forward gates or
more has them written once, in `_forward`, which every function calls (the large shape,
docs/module_shape.md).

Run-time errors: a gate that can raise (`Gate.raises`) always has a line of its
own, and the body of a function with such a line sits in a `try` whose handler
(free on the normal path) looks up the failing line in `_WHERE` and re-raises the
same exception type with the gate's `.circ` position in front of the message.
`_WHERE` is one string, a line `<module line> <file>:<line>:<column>: in <gate>`
per line that can raise, which `_located` searches only when an error happens: a
constant, not a dict literal for `compile()` to build code for (benchmarks/RESULTS.md).
"""

from __future__ import annotations

import keyword
import math
from collections.abc import Callable

from ..gates import ATOM, GATES
from ..grad import ADJOINT, TANGENT
from ..graph import LEAVES, Graph, Origin, by_bus, elements
from ..guards import conditions, lazy, written_order
from .python_helpers import HELPER_SOURCES, HELPERS
from .text import (
    LINE,
    MAX_DEPTH,
    Blocks,
    Names,
    closing,
    constants,
    if_headers,
    literal,
    nested_display,
    read_once,
    results,
    syntax_table,
    tuple_display,
    unpack,
    wrapped,
)

# The builtins the functions read are reserved too: an input `ValueError` would break
# the exception handler.
MODULE_NAMES = {"math", "forward", "backward", "jvp", "hvp", "hessian", "INPUTS", "OUTPUTS",
                "DEFAULTS", "WRT", "SHAPES", "HESSIAN_PATTERN", "exc", "_WHERE", "_located",
                "_forward", "ArithmeticError", "ValueError", "RENAMED", "_by_circ_names"}


# `__debug__` is no keyword, but Python refuses to compile an assignment to it.
RESERVED = set(keyword.kwlist) | {"__debug__"} | MODULE_NAMES | set(HELPERS)
ENTRY_POINTS = ("forward", "backward", "jvp", "hvp", "hessian")  # the functions, in order
# Up to this many rows, `hessian` returns its matrix as a tuple display (the code grows
# with the square of the rows); beyond, `_symmetric` fills it from the pattern's entries.
SMALL_HESSIAN = 16
# From this many gates in the forward graph on, a module has the large shape: the forward
# gates are written once, in `_forward`, which the other functions call (see `PythonWriter.source`).
LARGE = 10_000

_LEAF_PREFIX = {"input": "", "seed": ADJOINT, "tangent": TANGENT}  # of a leaf's identifier key


class PythonWriter:
    """Writes one module. Another target (`emit.numpy`) subclasses it and overrides the
    hooks: the class attributes, `function`, `prologue`, `prepare`, `blocks`, `value`,
    `gradient`, `product`, `bus_value`, `bus_gradient`, `bus_product`, `head` and
    `helper_source`, and may define `assigned`, `after` and `closing`.
    """

    target = "python"  # which `Syntax` field of the gate table to print
    reserved = RESERVED
    lib = "math"  # the module `inf` and `nan` literals come from
    opening = ("    try:",)  # the lines a function body starts with
    # The lines that end a body in `opening`, when a line can raise.
    handler = ("    except (ArithmeticError, ValueError) as exc:", "        raise _located(exc) from None")
    indent = " " * 8  # of each gate's line
    inline = True  # write single-use temporaries into the expression that uses them
    schedules = True  # write a circuit with `where` in `guards.written_order`'s order
    locate_all = False  # list every line in `_WHERE`, not only those whose gate can raise
    guard_all = False  # run every body in the `try` (and `opening`), not only one that can raise

    def __init__(self, forward: Graph, backward: Graph, version: str, jvp: Graph | None = None,
                 hvp: Graph | None = None, hessian: Graph | None = None):
        self.forward, self.backward, self.version = forward, backward, version
        self.jvp, self.hvp, self.hessian = jvp, hvp, hessian
        extras = [g for g in (jvp, hvp, hessian) if g is not None]
        self.names = Names(forward, backward, self.reserved, extras)
        self.lines: list[str] = []
        self.where: list[tuple[int, Origin]] = []  # (line of the module, gate) for `_WHERE`
        self.guarded = False  # whether a function has the `try` that calls `_located`
        self.helpers: set[str] = set()
        self.uses_math = False
        self.syntax = syntax_table(self.target)
        name = forward.filename
        self.shown = name if name.isprintable() else repr(name)  # safe inside a comment

    def literal(self, value: float) -> tuple[str, int]:
        text, prec = literal(value, self.lib)
        self.uses_math |= text.endswith(("inf", "nan"))
        return text, prec

    def function(self, header: str, doc: str, graph: Graph, returns, buses=(), keep=(),
                 shared=None) -> list[tuple[str, int, int]]:
        """Write `def header:` computing every node of `graph`, then `return returns(exprs)`;
        return `exprs` (see `gate_lines`).

        `buses` are the bus parameters (`name` of an input, `ADJOINT + output` of a seed,
        `TANGENT + input` of a direction) that the prologue takes apart, with their shapes.
        `keep` are nodes that `returns` reads besides the roots (never inlined). `shared`,
        in a module of the large shape, is `(exprs, lines)`: the entries of the first nodes
        of `graph`, which `_forward` computes, and the lines after the prologue that call it.
        The gates' lines go inside a `try` whose handler names the failing gate
        (`_located`) when a line can raise; otherwise the `try` is taken out again.
        """
        done, calls = shared or ((), ())
        self.lines += ["", "", f"def {header}:", f'    """{doc}"""', *self.prologue(graph, buses), *calls]
        self.prepare(graph, keep)
        opening, entries = len(self.lines), len(self.where)
        self.lines += self.opening
        exprs = self.gate_lines(graph, keep, done)
        if self.closing:
            for line, origin in self.closing(graph, exprs):
                self.write(line, origin)
        if len(self.where) > entries or (self.guard_all and len(self.lines) > opening + len(self.opening)):
            self.guarded = True
            self.lines += self.handler
        else:  # nothing can raise, so no line of this function is in `_WHERE`
            del self.lines[opening:opening + len(self.opening)]
            cut = 4 * len(self.opening)
            self.lines[opening:] = [line[cut:] for line in self.lines[opening:]]
        self.lines += f"    return {returns(exprs)}".split("\n")  # a line an element
        return exprs

    def write(self, line: str, origin: Origin | None) -> None:
        """Write `line` into the `try` block; with `origin`, the gate whose value it
        computes, also its `.circ` line as a comment and its entry in `_WHERE`."""
        if origin:
            self.lines.append(f"{self.indent}{line}  # {origin.lines}")
            self.where.append((len(self.lines), origin))
        else:
            self.lines.append(self.indent + line)

    def leaf(self, op: str, attr) -> tuple[str, int, int]:
        """The entry in `exprs` of a leaf: its identifier, or a constant's literal."""
        if op == "const":
            return (*self.literal(attr), 0)
        return self.names.ident[_LEAF_PREFIX[op] + attr], ATOM, 0

    def gate_lines(self, graph: Graph, keep=(), done=()) -> list[tuple[str, int, int]]:
        """Write the lines of the gates of `graph` inside the `try` block, recording each
        that can raise in `_WHERE` as it is written, and return `exprs`: per node, the
        text that reads its value, its precedence, and how many inlined gates the text nests.
        `done` are the entries of the first nodes, computed elsewhere; `keep`, nodes never
        inlined.

        One pass over the nodes renders each gate's expression from its operands'
        entries in `exprs`, then either keeps it as the gate's entry (the gate is
        inlined) or writes it on a line of its own and enters the line's name. A gate is
        inlined when it is a temporary (no `.circ` name; an adjoint counts as one), read
        by exactly one expression (a gate's, or the `return`'s: a gradient that no gate
        reads is computed where the function returns it, as a person would write it),
        cannot raise (so each line has at most one gate that can, which `_WHERE` names),
        and nests fewer than `MAX_DEPTH` gates, so CPython's compiler never recurses deeply.
        """
        once = self.used_once(graph, keep)
        syntax, ident, where, locate_all = self.syntax, self.names.ident, self.where, self.locate_all
        temps, adjoint, assigned, after = self.names.temporaries(), self.names.adjoint, self.assigned, self.after
        lines, indent = self.lines, self.indent
        nodes = graph.nodes
        exprs: list[tuple[str, int, int]] = [*done, *[("", 0, 0)] * (len(nodes) - len(done))]
        guard, order = written_order(nodes, [*graph.roots, *keep], len(done), self.schedules)
        for c in conditions(guard):  # never inlined: their blocks' headers read them too
            once[c] = False
        blocks = Blocks(indent)
        for i in order:
            op, args, attr, origin, name = nodes[i]
            gate = syntax[op]
            if gate is None:
                exprs[i] = self.leaf(op, attr)
                continue
            template, prec, needs, raises = gate
            # Every gate has one, two or three operands (`tests/test_gates.py` checks):
            # spelled out, not a loop over the operands, as this runs for every gate.
            text, p, depth = exprs[args[0]]
            text = text if p >= needs[0] else f"({text})"
            if len(args) == 1:
                expr = template.format(text)
            else:
                text2, p2, depth2 = exprs[args[1]]
                text2 = text2 if p2 >= needs[1] else f"({text2})"
                depth = max(depth, depth2)
                if len(args) == 2:
                    expr = template.format(text, text2)
                else:
                    text3, p3, depth3 = exprs[args[2]]
                    expr = template.format(text, text2, text3 if p3 >= needs[2] else f"({text3})")
                    depth = max(depth, depth3)
            depth += 1
            if (once[i] and not raises and depth < MAX_DEPTH
                    and (name is None or name.startswith(ADJOINT))):
                exprs[i] = (expr, prec, depth)
                continue
            if guard is not None:  # the line goes in the blocks of its guard
                lines += blocks.enter(self.blocks(guard[i], exprs))
            pad = blocks.pad
            if name is None:
                lhs = next(temps)
            else:
                lhs = ident[name] if name in ident else adjoint(name)
            if assigned:
                expr = assigned(i, lhs, expr)
            if origin:
                lines.append(f"{pad}{lhs} = {expr}  # "
                             + (origin.lines if origin.calls else f"line {origin.span.line}"))
                if raises or locate_all:
                    where.append((len(lines), origin))
            else:
                lines.append(f"{pad}{lhs} = {expr}")
            exprs[i] = (lhs, ATOM, 0)
            if after:
                lines += [pad + line for line in after(i, exprs)]
        return exprs

    def blocks(self, guard, exprs) -> tuple[str, ...]:
        """The headers of the blocks a line under `guard` goes in (`text.if_headers`). The
        `where` itself reads its branches as `a if c else b`, which is lazy too."""
        return if_headers(guard, exprs)

    def note_gates(self, graph: Graph) -> None:
        """Record the helpers and the `math` module that the gates of `graph` need (a
        constant `inf` or `nan` needs `math` too)."""
        ops = {node.op for node in graph.nodes}
        for op in ops - set(LEAVES):
            syntax = getattr(GATES[op], self.target)
            if syntax.helper:
                self.helpers.add(getattr(syntax.helper, "__name__", syntax.helper))
            self.uses_math |= syntax.template.startswith("math.")
        if "const" in ops:
            self.uses_math |= not all(math.isfinite(node.attr) for node in graph.nodes
                                      if node.op == "const")

    def prologue(self, graph: Graph, buses) -> list[str]:
        """Lines a function runs before its gates: each bus parameter taken apart into
        its elements."""
        ident, lines = self.names.ident, []
        for key, shape in buses:
            self.helpers.add("_flat")
            lines += unpack([ident[e] for e in elements(key, shape)],
                             f"_flat({ident[key]}, {shape!r})")
        return lines

    def parameters(self, prefix: str, names) -> tuple[list[str], list]:
        """The parameters for `names` (inputs or outputs, a bus once) under `prefix`
        (`ADJOINT` for seeds, `TANGENT` for directions), and the buses among them."""
        shapes, ident = self.forward.shapes, self.names.ident
        names = list(by_bus(names))
        return ([ident[prefix + name] for name in names],
                [(prefix + name, shapes[name]) for name in names if name in shapes])

    def used_once(self, graph: Graph, keep=()) -> list[bool]:
        """`text.read_once`: whether `function` may inline each node; never, when the target
        does not inline. A small Hessian's entries off the diagonal are returned twice."""
        if not self.inline:
            return [False] * len(graph.nodes)
        return read_once(graph, keep, graph is self.hessian and len(graph.grads) <= SMALL_HESSIAN)

    def prepare(self, graph: Graph, keep) -> None:
        """Look at the graph of a function before its lines are written (`keep`: the nodes
        its `return` reads besides the roots)."""

    # Optional hooks, None when a target has nothing to add (then not called at all):
    # assigned(node, ident, expr) -> what the line of gate `node` assigns to `ident`;
    # after(node, exprs) -> the lines that follow the line of gate `node`, `exprs`
    # holding the nodes so far;
    # closing(graph, exprs) -> the lines, each with the gate it names in `_WHERE` (or None),
    # that follow the last gate's, inside the `try`.
    assigned: Callable[[int, str, str], str] | None = None
    after: Callable[[int, list[tuple[str, int, int]]], list[str]] | None = None
    closing: Callable[[Graph, list[tuple[str, int, int]]], list[tuple[str, Origin | None]]] | None = None

    def value(self, text: str) -> str:
        """How a function returns the output computed by `text`."""
        return text

    def gradient(self, text: str, name: str) -> str:
        """How `backward` returns the gradient computed by `text` of the input `name`."""
        return text

    def product(self, text: str, name: str) -> str:
        """How `hvp` returns the Hessian-vector product computed by `text` for the input
        `name`."""
        return self.gradient(text, name)

    def bus_value(self, texts: list[str], shape: tuple[int, ...]) -> str:
        """How a function returns a bus output of `shape`, its elements' values `texts`."""
        return nested_display(texts, shape)

    def bus_gradient(self, texts: list[str], bus: str, shape: tuple[int, ...]) -> str:
        """How `backward` returns the gradient of the bus input `bus`, its elements'
        gradients `texts`."""
        return nested_display(texts, shape)

    def bus_product(self, texts: list[str], bus: str, shape: tuple[int, ...]) -> str:
        """How `hvp` returns the Hessian-vector product for the bus input `bus`, its
        elements' products `texts`."""
        return self.bus_gradient(texts, bus, shape)

    def head(self) -> list[str]:
        """The module's lines above the functions."""
        constants = self.constants()  # first: a default of inf or nan needs `math`
        head = [f"# Generated by circuitc {self.version} from {self.shown}; do not edit.",
                '"""A circuit compiled by circuitc: forward(inputs) and backward(inputs, seeds)."""',
                ""]
        if self.uses_math or any("math." in HELPER_SOURCES[h] for h in self.helpers):
            head += ["import math", ""]
        return head + constants

    def constants(self) -> list[str]:
        """The lines defining the module's constants (`text.constants`)."""
        fwd = self.forward
        inputs = by_bus(fwd.inputs)
        outs = list(by_bus(out for out, _ in fwd.outputs))
        defaults = {}
        for bus, names in inputs.items():
            if names[0] in fwd.defaults:
                texts = [self.literal(fwd.defaults[name])[0] for name in names]
                shape = fwd.shapes.get(bus)
                defaults[bus] = texts[0] if shape is None else nested_display(texts, shape)
        wrt = list(by_bus(name for name, _ in self.backward.grads))
        shapes = {name: fwd.shapes.get(name, ()) for name in dict.fromkeys([*inputs, *outs])}
        return constants(inputs, outs, wrt, shapes, defaults, self.renamed(), self.pattern())

    def pattern(self) -> list[str]:
        """The lines defining `HESSIAN_PATTERN`, when the module has `hessian`."""
        if self.hessian is None:
            return []
        pairs = [f"({label.replace(',', ', ')})" for label, _ in self.hessian.tangents]
        text = tuple_display(pairs) if pairs else "()"
        return ["# The (row, column) places, row <= column, where the Hessian may not be 0.",
                f"HESSIAN_PATTERN = {text if len(text) <= LINE else tuple_display(pairs, '')}"]

    def renamed(self) -> dict[str, str]:
        """The parameter of each input whose `.circ` name is not an identifier it may have."""
        ident = self.names.ident
        return {name: ident[name] for name in by_bus(self.forward.inputs) if ident[name] != name}

    def helper_source(self, name: str) -> str:
        """The definition of the helper function `name`, as the module carries it."""
        return HELPER_SOURCES[name]

    def shared_forward(self, params: list[str], buses, value) -> tuple[list, list[str]]:
        """Write `_forward`, which computes the forward graph's gates for every function of
        a module of the large shape, and return `shared` for `function`: the entries of the
        forward graph's nodes, and the lines that call `_forward` and unpack what it returns.

        `_forward(inputs)` returns `(value, wires)`: `value` what `forward` returns (the
        result of `value(exprs)`), `wires` the values of the forward gates that the other
        functions read, each under the identifier it has in them.
        """
        nodes = self.forward.nodes
        n = len(nodes)
        read = set()
        for graph in (self.backward, self.jvp, self.hvp, self.hessian):
            if graph is not None:
                read.update(a for node in graph.nodes[n:] for a in node.args if a < n)
                read.update(root for root in graph.roots if root < n)
        keep = sorted(k for k in read if nodes[k].op not in LEAVES)

        def returns(exprs) -> str:
            wires = [exprs[k][0] for k in keep]
            line = f"{value(exprs)}, {tuple_display(wires) if wires else '()'}"
            return line if len(f"    return {line}") <= LINE else f"{value(exprs)}, {wrapped(wires)}"
        exprs = self.function(f"_forward({', '.join(params)})",
                              "Return (value, wires): what forward returns, and the wires "
                              "the other functions read.", self.forward, returns, buses, keep)
        wires = [exprs[k][0] for k in keep]
        self.names.taken.update(wires)  # the other functions' temporaries take other names
        call = f"_forward({', '.join(params)})"
        return exprs[:n], unpack(wires, f"{call}[1]") if wires else [f"    {call}"]

    def source(self) -> str:
        """The module's text.

        A module whose forward graph has fewer than `LARGE` gates has a line per gate of the
        forward graph in `forward` and again in each function that needs the forward values
        (`backward`, ...), as a person writes a small function. From `LARGE` gates on (the
        large shape), those lines are written once, in `_forward`; `forward` returns what it
        computes and the other functions start by calling it, so that CPython compiles each
        forward gate once.
        """
        fwd, bwd = self.forward, self.backward
        params, inputs = self.parameters("", fwd.inputs)
        outs = list(by_bus(out for out, _ in fwd.outputs))
        seeds, seed_buses = self.parameters(ADJOINT, outs)
        seeded = params + [s + "=1.0" for s in seeds]
        value = ", ".join(outs)
        values_doc = f"({value})" if len(outs) > 1 else value

        def outputs(graph, exprs, pairs=None):
            return results(graph, exprs, graph.outputs if pairs is None else pairs,
                                 lambda text, name: self.value(text),
                                 lambda texts, bus, shape: self.bus_value(texts, shape))

        def values(texts: list[str]) -> str:
            return ", ".join(texts) if len(texts) == 1 else f"({', '.join(texts)})"

        def with_value(graph, exprs, *groups) -> str:
            """`value, group, ...`: each group a tuple of texts, written one item a line
            when the `return` would not fit on a line (a str is written as it is)."""
            value = values(outputs(graph, exprs))
            line = ", ".join([value, *(g if isinstance(g, str) else tuple_display(g) for g in groups)])
            if len(f"    return {line}") <= LINE:
                return line
            return ", ".join([value, *(g if isinstance(g, str) else tuple_display(g, "    ")
                                       for g in groups)])

        def grads(graph, exprs, pairs=None) -> list[str]:
            return results(graph, exprs, graph.grads if pairs is None else pairs,
                                 self.gradient, self.bus_gradient)

        # The head first, so that each line's number is known as it is written: what it
        # depends on (`math`, for a gate, a constant or a default) is known from the graphs.
        # The helpers a function asks for as it is written (`_flat`, `_symmetric`) need no `math`.
        for graph in (fwd, bwd, self.jvp, self.hvp, self.hessian):
            if graph is not None:
                self.note_gates(graph)
        self.lines = "\n".join(self.head()).split("\n")  # a line an element, as `write` counts
        shared = None
        # With `where`, the small shape: `_forward` cannot return what a branch left unset.
        if sum(node.op not in LEAVES for node in fwd.nodes) < LARGE or lazy(fwd.nodes):
            self.function(f"forward({', '.join(params)})", f"Return {values_doc}.", fwd,
                          lambda exprs: ", ".join(outputs(fwd, exprs)), inputs)
        else:  # the large shape
            shared = self.shared_forward(params, inputs, lambda exprs: values(outputs(fwd, exprs)))
            self.lines += ["", "", f"def forward({', '.join(params)}):", f'    """Return {values_doc}."""',
                           f"    return _forward({', '.join(params)})[0]"]
        seed_sum = " + ".join(f"sum({s}*{o})" if o in fwd.shapes else f"{s}*{o}"
                              for s, o in zip(seeds, outs))
        self.function(f"backward({', '.join(seeded)})",
                      f"Return ({values_doc}, grads), grads[k] = d({seed_sum})/d(WRT[k]).",
                      bwd, lambda exprs: with_value(bwd, exprs, grads(bwd, exprs)),
                      inputs + seed_buses, shared=shared)
        if self.jvp is not None:
            tangents, tangent_buses = self.parameters(TANGENT, fwd.inputs)
            self.function(f"jvp({', '.join(params + tangents)})",
                          f"Return ({values_doc}, tangents): the outputs' derivatives along "
                          "the direction given per input.", self.jvp,
                          lambda exprs: with_value(self.jvp, exprs, values(
                              outputs(self.jvp, exprs, self.jvp.tangents))),
                          inputs + tangent_buses, shared=shared)
        if self.hvp is not None:
            wrt = [name for name, _ in bwd.grads]
            directions, direction_buses = self.parameters(TANGENT, wrt)
            self.function(f"hvp({', '.join(params + directions + [s + '=1.0' for s in seeds])})",
                          f"Return ({values_doc}, grads, hv), hv = H @ v: the Hessian of "
                          f"{seed_sum} times the direction v given per input of WRT.",
                          self.hvp, lambda exprs: with_value(
                              self.hvp, exprs, grads(self.hvp, exprs),
                              results(self.hvp, exprs, self.hvp.tangents, self.product,
                                           self.bus_product)),
                          inputs + direction_buses + seed_buses, shared=shared)
        if self.hessian is not None:
            n = len(bwd.grads)

            def dense(exprs) -> str:
                entries = [exprs[node][0] for _, node in self.hessian.tangents]
                if n <= SMALL_HESSIAN:  # a display of its rows (see SMALL_HESSIAN)
                    at = dict(zip((label for label, _ in self.hessian.tangents), entries))
                    rows = [at.get(f"{min(j, k)},{max(j, k)}", "0.0")
                            for j in range(n) for k in range(n)]
                    matrix = nested_display(rows, (n, n), "    ") if n else "()"
                else:
                    self.helpers.add("_symmetric")
                    matrix = f"_symmetric({tuple_display(entries, '    ')}, HESSIAN_PATTERN, {n})"
                return with_value(self.hessian, exprs, grads(self.hessian, exprs), matrix)
            self.function(f"hessian({', '.join(seeded)})",
                          f"Return ({values_doc}, grads, H): H the Hessian of {seed_sum}, rows "
                          "and columns the elements of WRT in order.", self.hessian, dense,
                          inputs + seed_buses, shared=shared)
        tail = []
        for helper in sorted(self.helpers):
            tail += ["", "", self.helper_source(helper)]
        tail += closing(self.where, self.shown, self.guarded, bool(self.renamed()),
                        [name for name in ENTRY_POINTS
                         if name in ("forward", "backward") or getattr(self, name) is not None])
        return "\n".join(self.lines + tail) + "\n"


def emit(forward: Graph, backward: Graph, version: str, **extras: Graph | None) -> str:
    """The module for a circuit, from its optimized forward graph and gradient graph;
    `jvp`, `hvp` and `hessian`, the graphs of those functions, add them."""
    return PythonWriter(forward, backward, version, **extras).source()
