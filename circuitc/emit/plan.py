"""What the two writers of whole-bus code (`emit.whole` for NumPy, `emit.loops` for plain
Python) share: identifiers, the module's constants, and its closing part (`_WHERE`,
`_located`, keyword calls by `.circ` name)."""

from __future__ import annotations

from ..graph import Origin
from ..indexed import Plan
from .python import _BY_CIRC_NAMES, _LOCATED, _WHERE_COMMENT, _strings, _syntax_table


class PlanModule:
    """One module written from a `Plan`. A subclass sets `target` (the gate table's syntax
    it prints) and defines `default`, how a default value is written."""

    target = "python"

    def __init__(self, p: Plan, version: str, reserved: set[str]):
        self.p, self.version = p, version
        self.syntax = _syntax_table(self.target)
        self.ident: dict[str, str] = {}
        self.taken = set(reserved)
        for name in [*p.inputs, *p.outputs]:
            self.claim(name, name)
        for s in p.stages:
            self.claim(s.name, s.name.replace("#", ""))  # a lifted stage: `sum1`, `term2`
        self.lines: list[str] = []
        self.where: list[tuple[int, Origin]] = []  # (line in `lines`, gate) for `_WHERE`
        name = p.filename
        self.shown = name if name.isprintable() else repr(name)  # safe inside a comment

    def claim(self, key: str, wanted: str) -> str:
        """The identifier of `key`: `wanted`, with `_` appended until it is free."""
        if key not in self.ident:
            while wanted in self.taken:
                wanted += "_"
            self.taken.add(wanted)
            self.ident[key] = wanted
        return self.ident[key]

    def adjoint(self, name: str) -> str:
        return self.claim("\N{PARTIAL DIFFERENTIAL}" + name, "d_" + self.ident[name])

    def temporary(self) -> str:
        """A fresh temporary of the function being written (`self.temps` counts them)."""
        self.temps += 1
        while f"t{self.temps}" in self.taken:
            self.temps += 1
        return f"t{self.temps}"

    def default(self, value, shape: tuple[int, ...]) -> str:
        raise NotImplementedError

    def constants(self) -> list[str]:
        """The lines defining `INPUTS`, `OUTPUTS`, `WRT`, `SHAPES`, `DEFAULTS` and, where an
        input is renamed, `RENAMED`."""
        p = self.p
        defaults = [f'"{name}": {self.default(value, p.shapes[name])}'
                    for name, value in p.defaults.items()]
        shapes = ", ".join(f'"{n}": {p.shapes[n]!r}' for n in dict.fromkeys([*p.inputs, *p.outputs]))
        lines = [f"INPUTS = {_strings(p.inputs)}",
                 f"OUTPUTS = {_strings(p.outputs)}",
                 f"WRT = {_strings(p.wrt)}  # the inputs whose gradients backward() returns",
                 "# The shape of each input and output: () for a number.",
                 f"SHAPES = {{{shapes}}}",
                 f"DEFAULTS = {{{', '.join(defaults)}}}"]
        renamed = {n: self.ident[n] for n in p.inputs if self.ident[n] != n}
        if renamed:
            pairs = ", ".join(f'"{n}": "{i}"' for n, i in renamed.items())
            lines.append(f"RENAMED = {{{pairs}}}  # the parameter of each input not spelled as in INPUTS")
        return lines

    def closing(self, head: int) -> list[str]:
        """The module's lines after its helpers: `_WHERE` (its line numbers moved down by
        the `head` lines above the functions) and `_located` where a line can raise, and
        the keyword calls by `.circ` name where an input is renamed."""
        tail = []
        if self.where:
            entries = "".join(f"{line + head} {origin.describe(self.shown)}\n"
                              for line, origin in self.where)
            entries = entries.replace("\\", "\\\\").replace('"', '\\"')
            tail += ["", "", _WHERE_COMMENT, f'_WHERE = """\n{entries}"""', "", "", _LOCATED]
        if any(self.ident[n] != n for n in self.p.inputs):
            tail += ["", "", _BY_CIRC_NAMES, "",
                     "forward = _by_circ_names(forward)", "backward = _by_circ_names(backward)"]
        return tail


def gradient_origin(o: Origin) -> Origin:
    """Where a gradient line comes from: its gate's place, as `grad` labels it."""
    return Origin(o.span, f"the gradient of {o.label}", o.calls, o.element)
