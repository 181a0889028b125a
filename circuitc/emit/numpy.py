"""Gate graphs -> the source text of a NumPy module (target `numpy`).

The module has the python target's names, signatures and layout (its writer is
the python emitter's, with the hooks below), imports nothing but `numpy`, and
evaluates every gate with NumPy operations, elementwise. The contract:

- Inputs and seeds may be scalars or arrays (or anything `np.asarray` takes);
  they are converted once, on entry, to the module's `DTYPE` (float64, or float32
  when compiled with `dtype="float32"`; complex ones stay complex), and every array
  the module makes or returns is of that type. They broadcast
  together as NumPy does; incompatible shapes raise NumPy's `ValueError` before
  any gate runs.
- Every output has the broadcast shape of all the inputs, even one that depends
  on only some of them (or none), so a result's shape never depends on what the
  optimizer removed. Seeds do not take part in that shape: each seed broadcasts
  against its output (a batch of seeds on scalar inputs is allowed).
- Each gradient has the shape of its input: the gradient of the sum over all
  elements of `sum(d_out * out)`, so a dimension the input was broadcast along is
  summed (a scalar weight used with a batch of data gets the gradient summed over
  the batch). To make that hold for an output that does not depend on every
  input, `backward` first spreads each seed over the outputs' shape (a view, no
  copy). Returned arrays are the caller's to change: none is an input's or a
  seed's array, or a view of one, and no two are one array (a copy is made
  where a result is an input, or is returned twice).
- Scalars in, scalars out: a value whose shape is `()` (every value, when all
  inputs are scalars; the gradient of a scalar input) is a Python `float`, as
  the python target returns, never a NumPy scalar or a 0-d array.
- Domain errors are errors, as in the python target: gates run under
  `np.errstate(divide, over, invalid = "raise")`, so `log(-1)`, `sqrt(-1)`,
  `1/0`, `0/0`, `exp(1000)` or an overflowing product anywhere in a batch
  raise `FloatingPointError` (an `ArithmeticError`), its message prefixed with
  the failing gate's `.circ` file, line and column. Underflow to zero is not an
  error. The stable helpers (`sigmoid`, `softplus`) never warn on any finite
  input, so large inputs are not domain errors. The exception: what only a branch of
  a `where` needs is computed under `np.errstate(all="ignore")` for the whole batch
  and masked by `np.where`, so the branch not taken raises nothing, and a domain error
  in the branch taken gives nan or inf there, as NumPy does (`NumpyWriter.blocks`).

Layout: one line per gate, never inlined (every gate can raise here), a
`del` line after the last use of each array no result needs (see `plan`), and
the sums of gradients to their inputs' shapes inside the `np.errstate` block
too (see `closing`), so the `return` line computes nothing that can fail.

Names are the python target's, with `np`, `map` and the module's own helpers
(`_float`, `_seed`, `_shaped`, `_unbroadcast`, and the local `_shape`) also reserved:
an input called `np` is the parameter `np_`.
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

from ..grad import ADJOINT, TANGENT
from ..graph import LEAVES, Graph, Origin, bus_of, by_bus, elements
from .python import RESERVED as PYTHON_RESERVED
from .python import PythonWriter
from .text import dtype_line, syntax_table, tuple_display, unpack

_HELPERS_FILE = Path(__file__).with_name("numpy_helpers.py")


def _helper_sources() -> dict[str, str]:
    """Each function of `numpy_helpers.py` by name, as its source text.

    Read from the file, not imported, so that emitting NumPy code never needs NumPy.
    """
    text = _HELPERS_FILE.read_text(encoding="utf-8")
    return {node.name: ast.get_source_segment(text, node)
            for node in ast.parse(text).body if isinstance(node, ast.FunctionDef)}


HELPER_SOURCES = _helper_sources()
ALWAYS = ("_float", "_array", "_seed", "_shaped", "_unbroadcast")  # helpers every module uses
RESERVED = PYTHON_RESERVED | {"np", "DTYPE", "_shape", "_along", "_directions", "map", "sparse_hessian",
                              "HESSIAN_PIECES", "HESSIAN_BAND", "__getattr__", "globals"} | set(HELPER_SOURCES)  # `map`: the prologue calls it
ERRSTATE = 'np.errstate(divide="raise", over="raise", invalid="raise", under="ignore")'
QUIET = 'np.errstate(all="ignore")'  # around what only a branch of a `where` needs


class NumpyWriter(PythonWriter):
    """Writes one NumPy module: the python writer with the hooks of the numpy target."""

    target = "numpy"
    reserved = RESERVED
    lib = "np"
    opening = ("    try:", f"        with {ERRSTATE}:")
    indent = " " * 12
    # Under ERRSTATE every arithmetic gate can raise (an overflowing product, inf - inf),
    # so each gate keeps a line of its own, and every line is in `_WHERE`: an error
    # always names its one gate.
    inline = False
    locate_all = True
    guard_all = True  # summing a gradient to its input's shape can overflow too

    schedules = False  # index order, which `prepare`'s `del` lines follow

    def blocks(self, guard, exprs) -> tuple[str, ...]:
        """A node only a branch of a `where` needs is computed for the whole batch, with
        floating-point errors ignored (`log(-1)` is nan where the branch is not taken), and
        `np.where` chooses: masked, never an error or a warning from the branch not taken."""
        return (f"with {QUIET}:",) if guard else ()

    def __init__(self, forward: Graph, backward: Graph, version: str, dtype: str = "float64",
                 **extras: Graph | None):
        super().__init__(forward, backward, version, **extras)
        self.dtype = dtype
        self.syntax = syntax_table(self.target, dtype)
        self.helpers.update(ALWAYS)
        self.release: dict[int, list[int]] = {}  # gate -> the nodes dead after its line
        self.reduce: dict[int, str] = {}  # gate -> the input whose final gradient it is
        self.reduced: set[str] = set()  # identifiers already summed to their input's shape
        # ("grad" or "hv", input) -> the identifier of its returned gradient or product
        self.final: dict[tuple[str, str], str] = {}
        self.returned: set[str] = set()  # identifiers whose array the caller may already hold

    def prepare(self, graph: Graph, keep) -> None:
        """Free each array as soon as it is dead, as hand-written NumPy would.

        A gate's value that no output or gradient needs is deleted after its last
        use, and a gradient that nothing else uses is summed to its input's shape on
        the line that computes it, so a batch never holds more full-size arrays
        than it must (fresh allocations, not arithmetic, dominate large batches).
        Only identifiers that name a single node are deleted: an adjoint that
        accumulates into its output's seed shares the seed's identifier.
        """
        nodes = graph.nodes
        roots = {*graph.roots, *keep}
        last: dict[int, int] = {}
        for i, node in enumerate(nodes):
            for a in node.args:
                last[a] = i
        names = Counter(node.name for node in nodes if node.name)
        unique = {i for i, node in enumerate(nodes)
                  if node.op not in LEAVES and (node.name is None or names[node.name] == 1)}
        self.release = {}
        for i in sorted(unique - roots):
            if i in last:
                self.release.setdefault(last[i], []).append(i)
        grads = Counter(n for _, n in graph.grads)
        outputs = {n for _, n in graph.outputs}
        self.reduce = {n: name for name, n in graph.grads
                       if n in unique and n not in last and n not in outputs and grads[n] == 1}
        self.reduced = set()  # this function's: `backward`'s `d_a` may be `hvp`'s too

    def assigned(self, node: int, ident: str, expr: str) -> str:
        if node not in self.reduce:
            return expr
        self.reduced.add(ident)
        return f"_unbroadcast({expr}, {self.names.ident[self.reduce[node]]}.shape)"

    def after(self, node: int, exprs: list[tuple[str, int, int]]) -> list[str]:
        dead = self.release.get(node)
        return [f"del {', '.join(exprs[n][0] for n in dead)}"] if dead else []

    def function(self, header, doc, graph, returns, buses=(), keep=(), shared=None):
        # The caller holds the inputs' arrays (`_float` copies none of `DTYPE` already),
        # and the directions'.
        ident = self.names.ident
        self.returned = {ident[name] for name in graph.inputs}
        self.returned |= {ident[node.name] for node in graph.nodes if node.op == "tangent"}
        return super().function(header, doc, graph, returns, buses, keep, shared)

    def closing(self, graph: Graph, exprs: list[tuple[str, int, int]]) -> list[tuple[str, Origin | None]]:
        """Sum each gradient (and Hessian-vector product) not yet summed to its input's
        shape, under `ERRSTATE` like the gates (the sum can overflow), into an array of its
        own: a node that is the result for two inputs is copied for the second, so no two
        results are one array."""
        lines = []
        results = [("grad", pair) for pair in graph.grads]
        if graph is self.hvp:
            results += [("hv", pair) for pair in graph.tangents]
        uses = Counter(exprs[node][0] for _, (_, node) in results)
        for kind, (name, node) in results:
            text = exprs[node][0]
            if kind == "grad" and text in self.reduced:
                self.final[kind, name] = text
                continue
            ident = self.names.adjoint(ADJOINT + name) if kind == "grad" else self.names.claim(
                f"{TANGENT}{ADJOINT}{name}", f"hv_{name}")
            if ident == text and uses[text] > 1:  # another input's result still reads it
                ident = self.names.claim(f"{ADJOINT}{name} summed", ident)
            copy = ", True" if text in self.returned else ""
            self.returned.add(text)
            lines.append((f"{ident} = _unbroadcast({text}, {self.summed_to(kind, name)}{copy})",
                          graph.nodes[node].origin))
            self.final[kind, name] = ident
        return lines

    def summed_to(self, kind: str, name: str) -> str:
        """The shape a gradient of input (or bus) `name` is summed to, its input's; or a
        Hessian-vector product's: its input's broadcast with the batch axes that only the
        directions have, so that a batch of directions at one point gives a product per
        direction, while a direction per point gives, for an input the points share, the
        sum of their products, as its gradient is summed."""
        ident, shape = self.names.ident, self.forward.shapes.get(name)
        if kind == "grad":
            return f"{ident[name]}.shape"
        batch = "_directions" if shape is None else f"_directions + {shape!r}"
        return f"np.broadcast_shapes({ident[name]}.shape, {batch})"

    def prologue(self, graph: Graph, buses) -> list[str]:
        """Make every input (and direction) an array and take each bus apart into its
        elements (views), find the outputs' shape, spread the seeds over it."""
        ident = self.names.ident
        inputs = [ident[name] for name in by_bus(graph.inputs)]
        inputs += [ident[node.name] for node in graph.nodes if node.op == "tangent"
                   and bus_of(node.attr) == node.attr]
        inputs += [ident[key] for key, _ in buses if key.startswith(TANGENT)]
        seeds = [ident[node.name] for node in graph.nodes if node.op == "seed"]
        lines = []
        if len(inputs) == 1:
            lines.append(f"    {inputs[0]} = _float({inputs[0]})")
        elif inputs:
            lines.append(f"    {', '.join(inputs)} = map(_float, ({', '.join(inputs)}))")
        for key, shape in buses:
            split = "_bus_seed" if key.startswith(ADJOINT) else "_elements"
            self.helpers.add(split)
            lines += unpack([ident[e] for e in elements(key, shape)],
                             f"{split}({ident[key]}, {shape!r})")
        # The outputs' batch: the inputs', and in `jvp` every direction's too, used or not
        # (the value and its tangents alike); `hvp`'s value and gradient are `backward`'s.
        shapes = [f"{ident[name]}.shape" for name in graph.inputs]
        if graph is self.jvp:
            buses_of = self.forward.shapes
            self.helpers.add("_batch")
            shapes += [f"_batch(_float({ident[TANGENT + name]}), {buses_of[name]!r})"
                       if name in buses_of else f"np.shape({ident[TANGENT + name]})"
                       for name in by_bus(graph.inputs)]
        lines.append(f"    _shape = np.broadcast_shapes({', '.join(shapes)})")
        if graph is self.hvp:
            shapes = self.forward.shapes
            batches = [f"_batch({ident[TANGENT + name]}, {shapes[name]!r})" if name in shapes
                       else f"np.shape({ident[TANGENT + name]})"
                       for name in by_bus(n for n, _ in self.backward.grads)]
            self.helpers.update(("_batch", "_own_axes"))
            lines.append(f"    _directions = _own_axes(np.broadcast_shapes({', '.join(batches)}), "
                         "_shape)")
        lines += [f"    {seed} = _seed({seed}, _shape)" for seed in seeds]
        return lines

    def value(self, text: str) -> str:
        """A copy where the array is an input's or another output's."""
        copy = ", True" if text in self.returned else ""
        self.returned.add(text)
        return f"_shaped({text}, _shape{copy})"

    def gradient(self, text: str, name: str) -> str:
        return self.final["grad", name]  # see `closing`

    def product(self, text: str, name: str) -> str:
        return self.final["hv", name]

    def bus_value(self, texts: list[str], shape: tuple[int, ...]) -> str:
        self.helpers.add("_stacked")
        return f"_stacked({tuple_display(texts)}, _shape + {shape!r})"

    def bus_gradient(self, texts: list[str], bus: str, shape: tuple[int, ...]) -> str:
        self.helpers.add("_stacked")
        return f"_stacked({tuple_display(texts)}, {self.summed_to('grad', bus)})"

    def bus_product(self, texts: list[str], bus: str, shape: tuple[int, ...]) -> str:
        self.helpers.add("_stacked")
        return f"_stacked({tuple_display(texts)}, {self.summed_to('hv', bus)})"

    def head(self) -> list[str]:
        return [f"# Generated by circuitc {self.version} from {self.shown} for NumPy; do not edit.",
                '"""A circuit compiled by circuitc for NumPy: forward(inputs), backward(inputs, seeds)."""',
                "",
                "import numpy as np",
                "",
                dtype_line(self.dtype),
                *self.constants()]

    def helper_source(self, name: str) -> str:
        return HELPER_SOURCES[name]


def emit(forward: Graph, backward: Graph, version: str, dtype: str = "float64",
         **extras: Graph | None) -> str:
    """The NumPy module for a circuit, from its optimized forward graph and gradient graph,
    computing in `dtype` ("float64" or "float32"); `jvp` and `hvp`, the graphs of those
    functions, add them (`hessian` is python only)."""
    if extras.get("hessian") is not None:
        raise ValueError("the numpy target has no dense hessian; it has hvp")
    return NumpyWriter(forward, backward, version, dtype, **extras).source()
