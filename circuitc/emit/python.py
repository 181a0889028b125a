"""Gate graphs -> the source text of a plain Python module (SPEC.md section 2).

The module imports nothing but `math`. `forward` and `backward` are straight-line
code: a line per named wire or adjoint, a temporary used once written into the
expression that uses it (see `_Module.inlined`), other temporaries numbered `t1`,
`t2`, ..., each line with a `# file:line` comment.

Names: every `.circ` name keeps its spelling unless it is a Python keyword or a
name the module itself defines (`math`, `forward`, `INPUTS`, `exc`, ...); then
`_` is appended until it is free, so `lambda` becomes `lambda_`. Adjoints are
`d_<wire>` and the seed of output `f` is the argument `d_f`, with the same
underscore rule when a `.circ` name already uses that spelling.

Run-time errors: a gate that can raise (`Gate.raises`) always has a line of its
own, and the body of a function with such a line sits in a `try` whose handler
(free on the normal path) looks up the failing line in `_WHERE` and re-raises the
same exception type with the gate's `.circ` position in front of the message.
"""

from __future__ import annotations

import inspect
import keyword
import math

from ..gates import ATOM, GATES, UNARY, Syntax
from ..grad import ADJOINT
from ..graph import LEAVES, Graph

# The builtins the functions read are reserved too: an input `ValueError` would break
# the exception handler.
MODULE_NAMES = {"math", "forward", "backward", "INPUTS", "OUTPUTS", "DEFAULTS", "WRT",
                "exc", "_WHERE", "_located", "ArithmeticError", "ValueError"}
HELPERS = {gate.python.helper.__name__: gate.python.helper
           for gate in GATES.values() if gate.python.helper}
# Their text, read once: files on disk may change under a running process (an upgrade),
# and `inspect.getsource` would then return other lines than the loaded function's.
HELPER_SOURCES = {name: inspect.getsource(fn).rstrip() for name, fn in HELPERS.items()}
RESERVED = set(keyword.kwlist) | MODULE_NAMES | set(HELPERS)
MAX_DEPTH = 12  # of an inlined expression's gates

_LOCATED = '''\
def _located(exc):
    """`exc` again, its message prefixed with the `.circ` position of the failing gate."""
    where = _WHERE.get(exc.__traceback__.tb_lineno, "circuit")
    return type(exc)(f"{where}: {exc}")'''


class _Names:
    """Identifiers for `.circ` names, adjoints and temporaries, unique in the module."""

    def __init__(self, forward: Graph, backward: Graph, reserved: set[str]):
        self.ident: dict[str, str] = {}
        self.taken = set(reserved)
        wires = [*forward.inputs, *(n.name for g in (forward, backward) for n in g.nodes
                                    if n.name and not n.name.startswith(ADJOINT))]
        for name in wires:  # valid names first, so a rename never takes a valid one's place
            if name not in self.taken:
                self._take(name, name)
        for name in wires:
            self.claim(name, name)
        for out, _ in backward.outputs:
            self.claim(ADJOINT + out, "d_" + out)
        for node in backward.nodes:
            if node.name and node.name.startswith(ADJOINT):
                self.claim(node.name, "d_" + node.name[1:])

    def _take(self, key: str, ident: str) -> str:
        self.ident[key] = ident
        self.taken.add(ident)
        return ident

    def claim(self, key: str, wanted: str) -> str:
        if key in self.ident:
            return self.ident[key]
        while wanted in self.taken:
            wanted += "_"
        return self._take(key, wanted)

    def temporaries(self):
        n = 0
        while True:
            n += 1
            if f"t{n}" not in self.taken:
                yield f"t{n}"


def _literal(value: float, lib: str = "math") -> tuple[str, int]:
    """`value` as source text, and its precedence; `lib` provides `inf` and `nan`."""
    if math.isnan(value):
        return f"{lib}.nan", ATOM
    if math.isinf(value):
        return (f"{lib}.inf", ATOM) if value > 0 else (f"-{lib}.inf", UNARY)
    text = repr(value)
    return text, UNARY if text.startswith("-") else ATOM


def _render(syntax: Syntax, operands: list[tuple[str, int]]) -> str:
    parts = [text if prec >= need else f"({text})"
             for (text, prec), need in zip(operands, syntax.operands, strict=True)]
    return syntax.template.format(*parts)


def _tuple(items: list[str]) -> str:
    return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"


def _strings(names) -> str:
    """A tuple of string literals; `.circ` names are identifiers, so they need no escaping."""
    return _tuple([f'"{name}"' for name in names]) if names else "()"


class _Module:
    """Writes one module. Another target subclasses it and overrides the hooks:
    the class attributes, `prologue`, `plan`, `assigned`, `after`, `value`, `gradient`,
    `head` and `helper_source`.
    """

    target = "python"  # which `Syntax` field of the gate table to print
    reserved = RESERVED
    lib = "math"  # the module `inf` and `nan` literals come from
    opening = ("    try:",)  # the lines a function body starts with
    indent = " " * 8  # of each gate's line
    inline = True  # write single-use temporaries into the expression that uses them
    locate_all = False  # list every line in `_WHERE`, not only those whose gate can raise

    def __init__(self, forward: Graph, backward: Graph, version: str):
        self.forward, self.backward, self.version = forward, backward, version
        self.names = _Names(forward, backward, self.reserved)
        self.lines: list[str] = []
        self.where: list[tuple[int, str]] = []
        self.helpers: set[str] = set()
        self.uses_math = False
        name = forward.filename
        self.shown = name if name.isprintable() else repr(name)  # safe inside a comment

    def literal(self, value: float) -> tuple[str, int]:
        text, prec = _literal(value, self.lib)
        self.uses_math |= text.endswith(("inf", "nan"))
        return text, prec

    def function(self, header: str, doc: str, graph: Graph, returns: str) -> None:
        """Emit `def header:` computing every node of `graph`, then `return returns`."""
        temps = self.names.temporaries()
        self.lines += ["", "", f"def {header}:", f'    """{doc}"""', *self.prologue(graph)]
        body = []
        exprs: list[tuple[str, int]] = []
        self.plan(graph)
        inlined = self.inlined(graph)
        first = len(self.where)
        for i, node in enumerate(graph.nodes):
            if node.op == "input":
                exprs.append((self.names.ident[node.attr], ATOM))
            elif node.op == "seed":
                exprs.append((self.names.ident[ADJOINT + node.attr], ATOM))
            elif node.op == "const":
                exprs.append(self.literal(node.attr))
            else:
                gate = GATES[node.op]
                syntax = getattr(gate, self.target)
                if syntax.helper:
                    self.helpers.add(getattr(syntax.helper, "__name__", syntax.helper))
                self.uses_math |= syntax.template.startswith("math.")
                expr = _render(syntax, [exprs[a] for a in node.args])
                if i in inlined:
                    exprs.append((expr, syntax.prec))
                    continue
                ident = self.names.ident[node.name] if node.name else next(temps)
                code = f"{ident} = {self.assigned(i, ident, expr)}"
                if node.origin:
                    span = node.origin.span
                    code += f"  # {self.shown}:{span.line}"
                    if gate.raises or self.locate_all:
                        self.where.append((len(self.lines) + len(self.opening) + len(body) + 1,
                                           f"{self.shown}:{span.line}:{span.column}: in {node.origin.label}"))
                body.append(code)
                exprs.append((ident, ATOM))
                body += self.after(i, exprs)
        located = len(self.where) > first  # a line can raise: catch it to name the gate
        if located:
            self.lines += self.opening
            self.lines += [self.indent + line for line in body]
            self.lines += ["    except (ArithmeticError, ValueError) as exc:",
                           "        raise _located(exc) from None"]
        else:
            self.lines += [" " * (len(self.indent) - 4 * len(self.opening)) + line for line in body]
        self.lines.append(f"    return {returns(exprs)}")

    def prologue(self, graph: Graph) -> list[str]:
        """Lines a function runs before its gates."""
        return []

    def inlined(self, graph: Graph) -> set[int]:
        """The gates written into the expression that uses them instead of a line of their own.

        A gate is inlined when it is a temporary (no `.circ` name; an adjoint counts as
        one unless it is a gradient the function returns), used exactly once,
        and cannot raise (so each line has at most one gate that can, which `_WHERE`
        names). Nesting stays below `MAX_DEPTH`, so CPython's compiler never recurses deeply.
        """
        if not self.inline:
            return set()
        uses = [0] * len(graph.nodes)
        for node in graph.nodes:
            for a in node.args:
                uses[a] += 1
        for root in graph.roots:
            uses[root] += 2
        depth = [0] * len(graph.nodes)
        inlined = set()
        for i, node in enumerate(graph.nodes):
            if node.op in LEAVES:
                continue
            depth[i] = 1 + max((depth[a] for a in node.args if a in inlined), default=0)
            temporary = node.name is None or node.name.startswith(ADJOINT)
            if (uses[i] == 1 and temporary and not GATES[node.op].raises
                    and depth[i] < MAX_DEPTH):
                inlined.add(i)
        return inlined

    def plan(self, graph: Graph) -> None:
        """Look at the graph of a function before its lines are written."""

    def assigned(self, node: int, ident: str, expr: str) -> str:
        """What the line of gate `node` assigns to `ident`, given its expression."""
        return expr

    def after(self, node: int, exprs: list[tuple[str, int]]) -> list[str]:
        """Lines that follow the line of gate `node`; `exprs` holds the nodes so far."""
        return []

    def value(self, text: str) -> str:
        """How a function returns the output computed by `text`."""
        return text

    def gradient(self, text: str, name: str) -> str:
        """How `backward` returns the gradient computed by `text` of the input `name`."""
        return text

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
        """The lines defining `INPUTS`, `OUTPUTS` and `DEFAULTS`."""
        fwd = self.forward
        outs = [out for out, _ in fwd.outputs]
        defaults = ", ".join(f'"{k}": {self.literal(v)[0]}' for k, v in fwd.defaults.items())
        wrt = [name for name, _ in self.backward.grads]
        return [f"INPUTS = {_strings(fwd.inputs)}",
                f"OUTPUTS = {_strings(outs)}",
                f"WRT = {_strings(wrt)}  # the inputs whose gradients backward() returns",
                f"DEFAULTS = {{{defaults}}}"]

    def helper_source(self, name: str) -> str:
        """The definition of the helper function `name`, as the module carries it."""
        return HELPER_SOURCES[name]

    def source(self) -> str:
        fwd, bwd, names = self.forward, self.backward, self.names
        params = [names.ident[name] for name in fwd.inputs]
        seeds = [names.ident[ADJOINT + out] for out, _ in fwd.outputs]
        outs = [out for out, _ in fwd.outputs]
        value = ", ".join(outs)
        values_doc = f"({value})" if len(outs) > 1 else value

        def values(exprs):
            return ", ".join(self.value(exprs[n][0]) for _, n in fwd.outputs)
        self.function(f"forward({', '.join(params)})", f"Return {values_doc}.", fwd, values)

        def both(exprs):
            value = ", ".join(self.value(exprs[n][0]) for _, n in bwd.outputs)
            value = f"({value})" if len(outs) > 1 else value
            grads = [self.gradient(exprs[n][0], name) for name, n in bwd.grads]
            return f"{value}, {_tuple(grads)}"
        seed_sum = " + ".join(f"{s}*{o}" for s, o in zip(seeds, outs))
        self.function(f"backward({', '.join(params + [s + '=1.0' for s in seeds])})",
                      f"Return ({values_doc}, grads), grads[k] = d({seed_sum})/d(WRT[k]).",
                      bwd, both)
        body = self.lines
        head = self.head()
        tail = []
        for helper in sorted(self.helpers):
            tail += ["", "", self.helper_source(helper)]
        if self.where:
            tail += ["", "", "_WHERE = {"]
            tail += [f"    {line + len(head)}: {text!r}," for line, text in self.where]
            tail += ["}", "", "", _LOCATED]
        return "\n".join(head + body + tail) + "\n"


def emit(forward: Graph, backward: Graph, version: str) -> str:
    """The module for a circuit, from its optimized forward graph and gradient graph."""
    return _Module(forward, backward, version).source()
