"""Source text that the module writers share: literals, tuple displays and line wrapping
(`LINE`), each gate's syntax for a target (`syntax_table`), identifiers for `.circ` names
(`Names`), and the code every module with a `_WHERE` table or a renamed input ends with
(`LOCATED`, `BY_CIRC_NAMES`). Writers: `emit.python` and `emit.numpy` (gate graphs),
`emit.loops` and `emit.whole` (whole-bus plans, through `emit.frame`).
"""

from __future__ import annotations

import ast
import functools
import math

from ..gates import ATOM, GATES, UNARY
from ..grad import ADJOINT, TANGENT
from ..graph import LEAVES, Graph, Origin, bus_of, by_bus

MAX_DEPTH = 12  # of an inlined expression's gates
LINE = 100  # characters; a longer tuple of gradients is written one gradient a line

WHERE_COMMENT = "# The `.circ` position of each line that can raise, after its line number in this module."
LOCATED = '''\
def _located(exc):
    """`exc` again, its message prefixed with the `.circ` position of the failing gate."""
    entry = f"\\n{exc.__traceback__.tb_lineno} "  # how `_WHERE` starts the line's entry
    where = _WHERE.partition(entry)[2].partition("\\n")[0] if entry in _WHERE else "circuit"
    return type(exc)(f"{where}: {exc}")'''

# A module with a renamed input wraps `forward` and `backward` in this, so that keyword
# calls by `.circ` name work for every circuit (`backward(**DEFAULTS)`): the functions'
# own parameters must be identifiers, and `lambda` is none.
BY_CIRC_NAMES = '''\
def _by_circ_names(function):
    """`function`, also taking each renamed input by its `.circ` name as a keyword (`RENAMED`)."""
    def call(*args, **kwargs):
        if kwargs:
            for name in [name for name in RENAMED if name in kwargs]:
                if RENAMED[name] in kwargs:
                    raise TypeError(f"{function.__name__}() got the input {name!r} twice")
                kwargs[RENAMED[name]] = kwargs.pop(name)
        return function(*args, **kwargs)
    call.__name__, call.__qualname__ = function.__name__, function.__qualname__
    call.__doc__, call.__wrapped__ = function.__doc__, function  # `help` shows the parameters
    return call'''


# NumPy functions that compute in float64 whatever their operands' type: a module of
# another dtype casts their results back to it (`syntax_table`).
DOUBLE_ONLY = ("np.float_power",)


def _doubles(template: str) -> bool:
    """Whether the NumPy code `template` may give float64 whatever its operands' type: a
    call of a `DOUBLE_ONLY` function, or an `np.where`, which may choose between constants
    (its own, or the operands `where(c, 0.5, 2)` fills in: NumPy makes Python floats
    float64 when no array has a type for them)."""
    e = ast.parse(template.replace("{", "_").replace("}", "_"), mode="eval").body
    called = ast.unparse(e.func) if isinstance(e, ast.Call) else None
    return called in DOUBLE_ONLY or called == "np.where"


@functools.cache
def syntax_table(target: str, dtype: str = "float64"
                 ) -> dict[str, tuple[str, int, tuple[int, ...], bool] | None]:
    """Per gate, what `PythonWriter.function` reads for each node: the template, precedence and
    operand precedences of its `target` syntax, and whether it can raise; None per leaf. For a
    `dtype` other than float64, NumPy code that gives float64 (`_doubles`) is cast to the
    module's `DTYPE`, so that it does not promote what follows."""
    def template(syntax) -> str:
        cast = target == "numpy" and dtype != "float64" and _doubles(syntax.template)
        return f"np.asarray({syntax.template}, DTYPE)" if cast else syntax.template

    table = {name: (template(getattr(gate, target)), getattr(gate, target).prec,
                    getattr(gate, target).operands, gate.raises) for name, gate in GATES.items()}
    return {**table, **dict.fromkeys(LEAVES)}


def dtype_line(dtype: str) -> str:
    """The line defining a NumPy module's `DTYPE`, the floating-point type it computes in."""
    return f'DTYPE = "{dtype}"  # the floating-point type of the arrays it computes with'


class Names:
    """Identifiers for `.circ` names, adjoints and temporaries, unique in the module, as the
    python and numpy targets write them.

    Names: every `.circ` name keeps its spelling unless it is a Python keyword,
    `__debug__` (which Python will not let a program assign) or a name the module
    itself defines (`math`, `forward`, `INPUTS`, `exc`, ...); then `_` is appended
    until it is free, so `lambda` becomes `lambda_`. Adjoints are `d_<wire>` and the
    seed of output `f` is the argument `d_f`, with the same underscore rule when a
    `.circ` name already uses that spelling.
    """

    def __init__(self, forward: Graph, backward: Graph, reserved: set[str], extras=()):
        # Every name once, in the order it first appears, a bus before its elements;
        # adjoints get their identifiers from `adjoint`, when a line is written for them.
        names = dict.fromkeys([*by_bus(forward.inputs), *forward.inputs,
                               *(n.name for g in (forward, backward, *extras) for n in g.nodes)])
        names.pop(None, None)
        wires = [name for name in names if not name.startswith((ADJOINT, TANGENT))]
        # Valid names first, so a rename never takes a valid one's place.
        self.ident: dict[str, str] = {name: name for name in wires
                                      if name not in reserved and "[" not in name}
        self.taken = set(reserved) | self.ident.keys()
        for name in wires:
            if name not in self.ident:
                self.claim(name, name)
        outputs = [out for out, _ in backward.outputs]
        for out in [*by_bus(outputs), *outputs]:
            self.adjoint(ADJOINT + out)
        if extras:  # the directions of `jvp` and `hvp`: `v_<input>`
            for name in [*by_bus(forward.inputs), *forward.inputs]:
                self.claim(TANGENT + name, "v_" + name)

    def adjoint(self, name: str) -> str:
        """The identifier of the adjoint `name` (`d_x` for `∂x`), claimed when first asked
        for: an adjoint written into the expression that uses it never needs one."""
        return self.claim(name, "d_" + name[1:])

    def claim(self, key: str, wanted: str) -> str:
        """The identifier of `key`: `wanted`, with `_` appended until it is free; an
        element's brackets and commas become `_` (`W[3,1]` is `W_3_1`)."""
        ident = self.ident.get(key)
        if ident is None:
            if "[" in wanted:
                wanted = wanted.replace("[", "_").replace(",", "_").replace("]", "")
            while wanted in self.taken:
                wanted += "_"
            ident = self.ident[key] = wanted
            self.taken.add(wanted)
        return ident

    def temporaries(self):
        n = 0
        while True:
            n += 1
            if f"t{n}" not in self.taken:
                yield f"t{n}"


def literal(value: float, lib: str = "math") -> tuple[str, int]:
    """`value` as source text, and its precedence; `lib` provides `inf` and `nan`."""
    if math.isnan(value):
        return f"{lib}.nan", ATOM
    if math.isinf(value):
        return (f"{lib}.inf", ATOM) if value > 0 else (f"-{lib}.inf", UNARY)
    text = repr(value)
    return text, UNARY if text.startswith("-") else ATOM


def tuple_display(items: list[str], indent: str | None = None) -> str:
    """A tuple display of `items`; with `indent`, one item a line, the closing
    parenthesis indented by `indent`."""
    if indent is not None:
        return "(\n" + "".join(f"{indent}    {item},\n" for item in items) + indent + ")"
    return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"


def tuple_sum(items: list[str], indent: str | None = None, most: int = 30) -> str:
    """A tuple of `items` as a sum of displays of at most `most` items each: CPython builds
    a longer display through a list (`LIST_TO_TUPLE`), which numba cannot follow where an
    item branches (`a if c else b`)."""
    return " + ".join(tuple_display(items[k:k + most], indent)
                      for k in range(0, len(items), most)) or "()"


def nested_display(items: list[str], shape: tuple[int, ...], indent: str = " " * 8) -> str:
    """A nested tuple display of `items` (in row-major order) of `shape`; a display
    longer than a line has a row a line, the closing parenthesis indented by `indent`."""
    for n in reversed(shape[1:]):
        items = [tuple_display(items[k:k + n]) for k in range(0, len(items), n)] if n else []
    if not items:
        return "()"
    text = tuple_display(items)
    return text if len(text) <= LINE else tuple_display(items, indent)


def wrapped(idents: list[str]) -> str:
    """A tuple display of `idents` over as many lines as the line length needs, the
    closing parenthesis indented by four spaces."""
    rows, row = [], " " * 7
    for ident in idents:
        if len(row) + len(ident) + 2 > LINE:
            rows.append(row)
            row = " " * 7
        row += f" {ident},"
    return "(\n" + "".join(f"{r}\n" for r in [*rows, row]) + "    )"


def unpack(idents: list[str], value: str) -> list[str]:
    """Lines assigning the elements of `value` to `idents`, wrapped to the line length."""
    line = f"    {', '.join(idents)}{',' if len(idents) == 1 else ''} = {value}"
    if len(line) <= LINE:
        return [line]
    return [*f"    {wrapped(idents)} = {value}".split("\n")]


def strings(names) -> str:
    """A tuple of string literals; `.circ` names are identifiers, so they need no escaping."""
    return tuple_display([f'"{name}"' for name in names]) if names else "()"


def constants(inputs, outputs, wrt, shapes: dict[str, tuple[int, ...]], defaults: dict[str, str],
              renamed: dict[str, str], more: list[str] = ()) -> list[str]:
    """The lines defining a module's `INPUTS`, `OUTPUTS`, `WRT`, `SHAPES` and `DEFAULTS` (each
    default's text given), then the lines `more` (`HESSIAN_PATTERN`), then `RENAMED` where an
    input's parameter is not spelled as in `INPUTS` (`renamed`: name -> parameter)."""
    shapes_shown = ", ".join(f'"{name}": {shape!r}' for name, shape in shapes.items())
    defaults_shown = ", ".join(f'"{name}": {text}' for name, text in defaults.items())
    lines = [f"INPUTS = {strings(inputs)}",
             f"OUTPUTS = {strings(outputs)}",
             f"WRT = {strings(wrt)}  # the inputs whose gradients backward() returns",
             "# The shape of each input and output: () for a number.",
             f"SHAPES = {{{shapes_shown}}}",
             f"DEFAULTS = {{{defaults_shown}}}",
             *more]
    if renamed:
        pairs = ", ".join(f'"{name}": "{ident}"' for name, ident in renamed.items())
        lines.append(f"RENAMED = {{{pairs}}}  # the parameter of each input not spelled as in INPUTS")
    return lines


def where_text(where: list[tuple[int, Origin]], shown: str) -> str:
    """The text of `_WHERE`: a line `<module line> <file>:<line>:<column>: in <gate>` per
    entry of `where`; `shown` is the `.circ` file's name as it is shown (its `repr` where it
    is not printable, so an entry never spans lines); backslashes and quotes are escaped,
    so the string literal stays one."""
    text = "".join(f"{line} {origin.describe(shown)}\n" for line, origin in where)
    return text.replace("\\", "\\\\").replace('"', '\\"')


def closing(where: list[tuple[int, Origin]], shown: str, located: bool, renamed: bool,
            functions: list[str]) -> list[str]:
    """A module's last lines: where a function handles errors (`located`), `_WHERE` and
    `_located` (`where`: the module's line and the gate of each line that can raise); where
    an input is `renamed`, `_by_circ_names` around each of `functions` (`where_text`)."""
    tail = []
    if located:
        tail += ["", "", WHERE_COMMENT, f'_WHERE = """\n{where_text(where, shown)}"""', "", "", LOCATED]
    if renamed:
        tail += ["", "", BY_CIRC_NAMES, ""]
        tail += [f"{name} = _by_circ_names({name})" for name in functions]
    return tail


def if_headers(guard, exprs) -> tuple[str, ...]:
    """The headers of the blocks a line of a node under `guard` is written in, outermost
    first: an `if c:` (or `if not c:`) per condition (each in `exprs` as (text, ...)), so
    that a branch of a `where` not taken computes nothing."""
    return tuple(f"if {exprs[c][0]}:" if branch else f"if not {exprs[c][0]}:"
                 for c, branch in guard)


class Blocks:
    """The nested blocks (`if c:`, `with ...:`) that a function's lines are written in, as
    headers under `indent`; `pad` is the indent of a line inside the innermost."""

    def __init__(self, indent: str):
        self.indent, self.pad = indent, indent
        self.opened: tuple[str, ...] = ()

    def enter(self, wanted: tuple[str, ...]) -> list[str]:
        """The header lines that open the blocks of `wanted` (their headers, outermost
        first), after leaving those open now that it does not share: a block is left by
        writing the next line with less indent, so it is only ever opened for a line."""
        opened, k = self.opened, 0
        while k < len(opened) and k < len(wanted) and opened[k] == wanted[k]:
            k += 1
        self.opened, self.pad = wanted, self.indent + "    " * len(wanted)
        return [f"{self.indent}{'    ' * j}{wanted[j]}" for j in range(k, len(wanted))]


def results(graph: Graph, exprs, pairs, one, whole) -> list[str]:
    """What a function returns for `pairs` ((name, node) of outputs or gradients):
    per scalar `one(text, name)`, per bus `whole(texts, bus, shape)`."""
    groups: dict[str, list[tuple[str, int]]] = {}
    for name, node in pairs:
        groups.setdefault(bus_of(name), []).append((name, node))
    shapes, result = graph.shapes, []
    for bus, members in groups.items():
        texts = [one(exprs[node][0], name) for name, node in members]
        result.append(whole(texts, bus, shapes[bus]) if bus in shapes else texts[0])
    return result


def read_once(graph: Graph, keep=(), mirrored: bool = False) -> list[bool]:
    """Per node, whether exactly one expression reads it: one gate, or, for a root that no
    gate reads, the function's `return` (the root's place in it); a node of `keep` is read
    by the `return` too, and with `mirrored` an entry of the Hessian off its diagonal
    twice (the matrix's display holds it and its mirror)."""
    nodes = graph.nodes
    uses = [0] * len(nodes)
    for node in nodes:
        for a in node.args:
            uses[a] += 1
    for root in [*graph.roots, *keep]:
        uses[root] += 1
    if mirrored:
        for label, node in graph.tangents:
            row, column = label.split(",")
            uses[node] += row != column
    return [n == 1 for n in uses]

