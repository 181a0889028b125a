"""What the two printers of whole-bus plans (`emit.whole` for NumPy, `emit.loops` for plain
Python) share: the module's functions and what each returns, identifiers, the module's
constants, and its closing part (`_WHERE`, `_located`, keyword calls by `.circ` name).

A module has `forward` and `backward`, and with `jvp` and `hessian` the functions of
forward mode (`jvp`) and of second order (`hvp`); `functions(plan, ...)` says, for each,
the plan it prints (the forward plan, `ad.vjp` of it, `ad.jvp` of it, `ad.hvp` of it),
its parameters and its results, as buffers of that plan.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..graph import Origin
from ..indexed.ad import hvp, jvp, vjp
from ..indexed.ir import ADJOINT, TANGENT, Plan
from ..indexed.sparsity import band, hessian_pattern
from .text import closing, constants, syntax_table, tuple_display


@dataclass(frozen=True)
class Function:
    name: str
    plan: Plan
    params: tuple[str, ...]  # buffers: the inputs, then directions, then seeds (default 1.0)
    values: tuple[str, ...]  # the outputs
    grads: tuple[tuple[str, str], ...] = ()  # (input, buffer) for each input of WRT
    tangents: tuple[tuple[str, str], ...] = ()  # (output or input, buffer)


def functions(plan: Plan, jvp_too: bool = False, hessian: bool = False) -> list[Function]:
    """The functions of a module of `plan`, in the order they are written."""
    outs = plan.outputs
    backward = vjp(plan)
    seeds = tuple(backward.seeds[o] for o in outs)
    made = [Function("forward", plan, plan.inputs, outs),
            Function("backward", backward, plan.inputs + seeds, outs, backward.grads)]
    if jvp_too:
        tangent = jvp(plan)
        directions = tuple(tangent.directions[n] for n in plan.inputs)
        made.append(Function("jvp", tangent, plan.inputs + directions, outs,
                             tangents=tangent.tangents))
    if hessian:
        second = hvp(plan)
        directions = tuple(second.directions[n] for n in plan.wrt)
        made.append(Function("hvp", second, plan.inputs + directions + seeds, outs, second.grads,
                             tuple(zip(plan.wrt, (b for _, b in second.tangents)))))
    return made


def wanted(name: str) -> str:
    """The identifier a buffer would like: `sum#1` -> `sum1`, `h#ties` -> `h_ties`,
    `∂x` -> `d_x`, `⋅x` -> `v_x`, `⋅∂x` -> `hv_x`."""
    if name.startswith(TANGENT + ADJOINT):
        return "hv_" + wanted(name[2:])
    if name.startswith(ADJOINT):
        return "d_" + wanted(name[1:])
    if name.startswith(TANGENT):
        return "v_" + wanted(name[1:])
    return re.sub(r"\W", "", re.sub(r"#(?=[A-Za-z])", "_", name))


class Frame:
    """One module written from a plan. A subclass sets `target` (the gate table's syntax
    it prints) and defines `default`, how a default value is written."""

    target = "python"

    def __init__(self, plan: Plan, version: str, reserved: set[str]):
        self.p, self.version = plan, version
        self.syntax = syntax_table(self.target)
        self.ident: dict[str, str] = {}
        self.taken = set(reserved)
        for name in [*plan.inputs, *plan.outputs]:
            self.claim(name, name)
        self.lines: list[str] = []
        self.where: list[tuple[int, Origin]] = []  # (line in `lines`, gate) for `_WHERE`
        name = plan.filename
        self.shown = name if name.isprintable() else repr(name)  # safe inside a comment
        self.temps = 0

    def claim(self, key: str, want: str) -> str:
        """The identifier of `key`: `want`, with `_` appended until it is free."""
        if key not in self.ident:
            while want in self.taken:
                want += "_"
            self.taken.add(want)
            self.ident[key] = want
        return self.ident[key]

    def name(self, buffer: str) -> str:
        """The identifier of a buffer."""
        return self.ident.get(buffer) or self.claim(buffer, wanted(buffer))

    def temporary(self) -> str:
        """A fresh temporary of the function being written (`self.temps` counts them)."""
        self.temps += 1
        while f"t{self.temps}" in self.taken:
            self.temps += 1
        return f"t{self.temps}"

    def default(self, value, shape: tuple[int, ...]) -> str:
        raise NotImplementedError

    def constants(self) -> list[str]:
        """The lines defining the module's constants (`text.constants`)."""
        p = self.p
        defaults = {name: self.default(value, p.shape(name)) for name, value in p.defaults.items()}
        shapes = {n: p.shape(n) for n in dict.fromkeys([*p.inputs, *p.outputs])}
        renamed = {n: self.ident[n] for n in p.inputs if self.ident[n] != n}
        return constants(p.inputs, p.outputs, p.wrt, shapes, defaults, renamed)

    def head(self, f: Function) -> list[str]:
        """The `def` line and docstring of `f`; seeds default to 1.0."""
        seeds = f.plan.seeds
        params = [self.name(b) + ("=1.0" if b in seeds.values() else "") for b in f.params]
        outs = self.p.outputs
        values = f"({', '.join(outs)})" if len(outs) > 1 else outs[0]
        seed_sum = " + ".join(f"sum({self.name(ADJOINT + o)}*{o})" if self.p.shape(o)
                              else f"{self.name(ADJOINT + o)}*{o}" for o in outs)
        doc = {"forward": f"Return {values}.",
               "backward": f"Return ({values}, grads), grads[k] = d({seed_sum})/d(WRT[k]).",
               "jvp": f"Return ({values}, tangents): the outputs' derivatives along the "
                      "direction given per input.",
               "hvp": f"Return ({values}, grads, hv), hv = H @ v: the Hessian of {seed_sum} "
                      "times the direction v given per input of WRT."}[f.name]
        return [f"def {f.name}({', '.join(params)}):", f'    """{doc}"""']

    def hessian_constants(self) -> list[str]:
        """`HESSIAN_PIECES` and `HESSIAN_BAND`, what `HESSIAN_PATTERN` is listed from."""
        pieces = hessian_pattern(self.p)
        lines = ["# The places of the Hessian that can be non-zero, row <= column, over the elements of",
                 "# WRT in order (buses row-major): for each piece (sizes, row, column, distinct), the",
                 "# (row, column) at each point p of the box of sizes, each (constant, coefficients)",
                 "# affine in p, but where each pair of a group of distinct is equal.",
                 "# HESSIAN_PATTERN lists them, sorted by column then row, when first asked for.",
                 f"HESSIAN_PIECES = {tuple_display([repr(piece) for piece in pieces], '') if pieces else '()'}",
                 f"HESSIAN_BAND = {band(pieces)!r}  # how far the places lie from the diagonal, if banded"]
        return "\n".join(lines).split("\n")  # a line each, for the line numbers of `_WHERE`

    def hessian_functions(self, dense: bool) -> list[str]:
        """`sparse_hessian` (and with `dense`, `hessian`) over `hvp`, and the module's
        `__getattr__` that lists `HESSIAN_PATTERN`."""
        p = self.p
        params = [self.name(n) for n in p.inputs]
        seeds = [self.name(ADJOINT + o) for o in p.outputs]
        outs = p.outputs
        values = f"({', '.join(outs)})" if len(outs) > 1 else outs[0]
        seed_sum = " + ".join(f"sum({s}*{o})" if p.shape(o) else f"{s}*{o}" for s, o in zip(seeds, outs))
        head = f"({', '.join(params + [s + '=1.0' for s in seeds])}):"
        args = f"hvp, {tuple_display(params)}, {tuple_display(seeds)}"
        sparse_doc = (f"Return ({values}, grads, entries), entries[k] = the entry of the Hessian "
                      f"of {seed_sum} at HESSIAN_PATTERN[k]: one hvp per colour of its columns.")
        dense_doc = (f"Return ({values}, grads, H), the Hessian of {seed_sum} as a tuple of rows "
                     "over the elements of WRT, from sparse_hessian.")
        lines = ["", "", f"def sparse_hessian{head}", f'    """{sparse_doc}"""',
                 f"    return _sparse_hessian({args})"]
        if dense:
            lines += ["", "", f"def hessian{head}", f'    """{dense_doc}"""',
                      f"    return _dense_hessian({args})"]
        lines += ["", "", "def __getattr__(name):",
                  '    """HESSIAN_PATTERN, listed from HESSIAN_PIECES when first asked for."""',
                  '    if name == "HESSIAN_PATTERN":',
                  "        return _hessian_layout()[0]",
                  '    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")']
        return lines

    def closing(self, head: int, names: list[str]) -> list[str]:
        """The module's lines after its helpers (`text.closing`): `_WHERE`, its line numbers
        moved down by the `head` lines above the functions, and the keyword calls by `.circ`
        name of the functions `names`."""
        where = [(line + head, origin) for line, origin in self.where]
        renamed = any(self.ident[n] != n for n in self.p.inputs)
        return closing(where, self.shown, bool(where), renamed, names)
