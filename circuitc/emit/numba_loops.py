"""Whole-bus plans (`indexed.ir.Plan`) -> a numba module that loops over the batch and the
buses (target `numba`, docs/numba.md).

The module has the contract of `emit.numba`'s (the numpy target's, computed by compiled
kernels) and the loops of `emit.loops` (the python target's whole-bus code), compiled:
for each function of `emit.frame.functions`, `_<name>_points` is a kernel over the
points of a range of chunks of a batch (see `numba_helpers`), stage after stage:

- A buffer is a flat array of rows, `<x>_rows`, a row per point in row-major order: an
  input, direction or seed is the caller's (one row for every point where it has no
  batch: its `<x>_each` is false); a result (an output, gradient or tangent) is written
  into the caller's array (a gradient of an input the points share into its chunk's
  row, `<d_x>_each` false); any other buffer is the chunk's own, made before the first
  stage that writes it.
- A map is a loop over the chunk's points around the loops of its domain. At each point
  a bus's row is a view named as the bus (`x = _row(x_rows, 10, point)`), a number's
  value a local, and the body is `emit.loops`'s: a gate a line where it can raise (else
  written into the expression that uses it), a sum over inner variables in a running value that starts at `-0.0`, a
  `+=` target started at `-0.0` where a stage adds to every element (else `0.0`). Each
  value of a gate that can raise is checked (`check`): a point where one is not finite is
  marked in `bad`, and `_run` runs it again in the interpreter to find the error.
- A contraction whose operands are a weight (an input read whole, one row for every
  point) and a row per point, or whose target is the gradient of such a weight, is a
  matrix product by BLAS (`np.dot`) over the chunk's points where the product is large
  enough (`_GEMM_FROM` multiplications), the loops beside it otherwise (and in the
  interpreter, `_BLAS` false): `emit.numba_blas`.
- A fold gathers its terms into an array and calls its helper (`_fold_max`,
  `_logsumexp`, `_prod_except`, ...), the python target's folds.

The entry points at one point of floats, and the Hessians, are `emit.numba_entries`'s.

Values agree with the python target's whole-bus code (`emit.loops`) bit for bit where no
matrix product runs (the same gates in the same order); BLAS sums in its own order.
"""

from __future__ import annotations

import math
from dataclasses import replace

from ..gates import GATES
from ..graph import Origin
from ..indexed.ir import (
    Access,
    Fold,
    Map,
    Plan,
    axes_shape,
    check,
    covers,
    pruned,
)
from ..indexed.passes import fused
from . import loops
from .frame import Frame, Function, functions
from .numba import (
    HELPERS,
    JITTED,
    NUMBA_RESERVED,
    closing,
    copied,
    head,
    needed,
    threads,
    tuning,
    wrapper,
)
from .numba_blas import MatrixProducts
from .numba_entries import EntryPoints
from .text import dtype_line
from .whole import SOURCES as WHOLE_SOURCES

# The numpy target's whole-bus helpers of sparse Hessians (`emit.whole.SOURCES`), which a
# module with `hvp` carries.
HESSIAN_HELPERS = ("_sparse_hessian", "_hessian_layout", "_pattern", "_affine_at", "_colouring",
                   "_array")  # with DTYPE, which they read: numba computes in float64
FOLDS = {"max": "_fold_max", "min": "_fold_min", "prod": "_fold_prod", "logsumexp": "_logsumexp",
         "prod_except": "_prod_except", "prod_except_tangent": "_prod_except_tangent"}
GEMM_FROM = 4096  # multiplications: a smaller contraction costs BLAS more than the loops
RESERVED = NUMBA_RESERVED | loops.NAMES | set(HESSIAN_HELPERS) | {"DTYPE", "rows", "terms", "tangents", "folded", "term",
                                                             "product"}


def emit(plan: Plan, version: str, jvp: bool = False, hessian: bool = False) -> str:
    return NumbaLoopsWriter(plan, version).source(functions(plan, jvp, hessian))


class NumbaLoopsWriter(MatrixProducts, EntryPoints, loops.LoopsWriter):
    """Writes one numba module of compiled kernels from a whole-bus plan."""

    target = "python"  # the gates print as in the python target

    def __init__(self, plan: Plan, version: str):
        Frame.__init__(self, plan, version, RESERVED)
        self.helpers: set[str] = {"_run", "_new", "_full", "_row"}
        self.uses_math = True

    # -- storage ------------------------------------------------------------------------

    def storage(self, name: str) -> str:
        """Where a buffer of the function being written lives: `input` (the caller's array,
        a row per point or one for all), `result` (the caller's array of a result),
        `local` (the chunk's own)."""
        if name in self.result_of:
            return "result"
        role = self.f.plan.buffers[name].role
        if role in ("input", "direction") or role == "seed" and name not in self.written:
            return "input"
        return "local"

    def rows(self, name: str) -> str:
        """The kernel's array of a buffer's rows, all points' (or the chunk's own)."""
        if name in self.result_of:
            return self.result_of[name]
        return self.claim(f"{name} rows", f"{self.name(name)}_rows")

    def each(self, name: str) -> str:
        """The flag of a caller's array: whether it has a row per point (else one row, for
        every point; or, a gradient of an input the points share, one per chunk)."""
        return self.claim(f"{name} each", f"{self.name(name)}_each")

    def point_row(self, name: str) -> tuple[str, bool]:
        """The index of the current point's row in a buffer's array, and whether that is the
        whole array instead where its flag says so (an input every point shares)."""
        kind = self.storage(name)
        if kind == "local":
            return "point - start", False
        if kind == "input":
            return "point", True
        if name in self.shared:
            return f"point if {self.each(name)} else chunk", False
        return "point", False

    def view(self, name: str) -> str:
        """The current point's row of a bus as a view, or a number's value."""
        rows, size = self.rows(name), math.prod(self.f.plan.shape(name))
        row, whole = self.point_row(name)
        if not self.f.plan.shape(name):
            return f"{rows}[{row}] if {self.each(name)} else {rows}[0]" if whole else f"{rows}[{row}]"
        if whole:
            return f"_row({rows}, {size}, {row}) if {self.each(name)} else {rows}"
        return f"_row({rows}, {size}, {row})"

    def element(self, access: Access) -> str:
        """The element an access takes at the loops' current point: of the point's row of its
        bus (a view, named as the bus), or a number's value (or its place, where written)."""
        if access.name is None:
            return f"float({self.var(access.index[0][0])})"
        shape = self.f.plan.shape(access.name)
        if not shape:
            if access.name in self.targets:
                return f"{self.rows(access.name)}[{self.point_row(access.name)[0]}]"
            return self.name(access.name)
        return f"{self.name(access.name)}[{self.flat(access, shape)}]"

    # -- lines --------------------------------------------------------------------------

    def point_loop(self, reads, targets) -> None:
        """`for point in range(start, stop):` and, there, the point's row of each bus the
        stage reads or writes (`reads`, `targets`: buffer names) and the value of each number
        it reads."""
        self.line("for point in range(start, stop):")
        self.depth += 1
        self.targets = set(targets)
        for name in dict.fromkeys([*reads, *targets]):
            if name is not None and (self.f.plan.shape(name) or name not in self.targets):
                self.line(f"{self.name(name)} = {self.view(name)}")

    def checked(self, texts, graph) -> None:
        """Add the values of the gates of `graph` that can raise to `check`."""
        raising = [texts[i][0] for i in sorted(texts) if graph.nodes[i].op not in ("input", "const")
                   and GATES[graph.nodes[i].op].raises]
        if raising:
            self.line("check += " + " + ".join(f"({t} - {t})" for t in raising))

    # -- stages -------------------------------------------------------------------------

    def stage(self, s) -> None:
        if isinstance(s, Fold):
            self.make(s.target.name)
        super().stage(s)

    def map(self, m: Map) -> None:
        """A map's loops; where writes are matrix products (`contractions`), BLAS's products
        instead when they pay, and the loops otherwise. A product that is its target's only
        contribution becomes that buffer (no copy, no zeros)."""
        gemms = self.contractions(m)
        targets = [w.target.name for w in m.writes]
        if not gemms:
            for name in targets:
                self.make(name)
            return self.map_loops(m, list(range(len(m.writes))))
        self.blas = True
        bound = {k for k, g in gemms.items() if self.storage(targets[k]) == "local"
                 and targets[k] not in self.made and self.contributions[targets[k]] == 1}
        for k, name in enumerate(targets):
            if k not in bound:
                self.make(name)
        conditions = " and ".join(dict.fromkeys(c for g in gemms.values() for c in g[1]))
        work = max(g[2] for g in gemms.values())
        self.line(f"if _BLAS and {conditions} and (stop - start) * {work} >= _GEMM_FROM:")
        self.depth += 1
        for k, (text, _, _, product) in gemms.items():
            if k in bound:
                self.line(f"{self.rows(targets[k])} = {product}.reshape(-1)", m.origin)
            else:
                self.line(text, m.origin)
        rest = [k for k in range(len(m.writes)) if k not in gemms]
        if rest:
            self.map_loops(m, rest)
        self.depth -= 1
        self.line("else:")
        self.depth += 1
        for k in sorted(bound):
            self.make(targets[k], again=True)
        self.map_loops(m, list(range(len(m.writes))))
        self.depth -= 1

    def make(self, name: str, again: bool = False) -> None:
        """The chunk's own array of buffer `name`, before the first stage that writes it:
        started at zero where stages add to it, a copy of the caller's seed where stages
        add to that. `again`: in another branch, where it was made too."""
        if self.storage(name) != "local" or name in self.made and not again:
            return
        self.made.add(name)
        b = self.f.plan.buffers[name]
        size = math.prod(b.shape)
        count = f"(stop - start) * {size}" if size != 1 else "stop - start"
        rows = self.rows(name)
        if b.role == "seed":  # the caller's seed, which stages add to: a copy
            given, each = self.param(name), self.each(name)
            self.line(f"{rows} = _new({count})")
            self.line("for point in range(start, stop):")
            if b.shape:
                self.line(f"    _row({rows}, {size}, point - start)[:] = "
                          f"_row({given}, {size}, point) if {each} else {given}")
            else:
                self.line(f"    {rows}[point - start] = {given}[point] if {each} else {given}[0]")
        elif self.adds(name):
            self.line(f"{rows} = _full({count}, {'-0.0' if name in self.covered else '0.0'})")
        else:
            self.line(f"{rows} = _new({count})")

    def map_loops(self, m: Map, chosen: list[int]) -> None:
        """The loops of map `m` computing its writes `chosen` (see `loops.LoopsWriter.map`)."""
        domain = m.domain
        writes = [(m.body.outputs[k][1], m.writes[k]) for k in chosen]
        depth, outer = self.outer(m)
        outer = [w for w in outer if m.writes.index(w) in chosen]
        self.point_loop([a.name for a in m.reads], [w.target.name for _, w in writes])
        raising = any(GATES[n.op].raises for n in m.body.nodes if n.op not in ("input", "const"))
        if raising:
            self.line("check = 0.0")
        running = {}
        for _, w in writes:
            if w in outer and w.add and depth < len(domain):
                running[w.target.name] = self.claim(f"#acc{len(running)}", f"acc{len(running) or ''}")
        self.loops(domain[:depth])
        for acc in running.values():
            self.line(f"{acc} = -0.0")
        self.loops(domain[depth:])
        texts = self.gates(m.body, m.reads, [n for n, _ in writes])
        for node, w in writes:
            value, name = texts[node][0], w.target.name
            if name in running:
                self.line(f"{running[name]} += {value}")
            else:  # an element an outer write assigns once, or a `+=` into a started buffer
                op = "+=" if w.add and w not in outer else "="
                self.line(f"{self.element(w.target)} {op} {value}", m.origin)
        if raising:
            self.checked(texts, m.body)
        self.depth -= len(domain) - depth
        for node, w in writes:
            if w.target.name in running:
                self.line(f"{self.element(w.target)} = {running[w.target.name]}")
        self.depth -= depth
        if raising:
            self.line("if check != 0.0:")
            self.line("    bad[point] = True")
        self.depth -= 1

    def outer(self, m: Map) -> tuple[int, list]:
        """`loops.LoopsWriter.outer`, but a `+=` into a gradient an input's points may share (a
        row per chunk) is never assigned: it adds."""
        depth, outer = super().outer(m)
        return depth, [w for w in outer if not (w.add and w.target.name in self.shared)]

    def fold(self, f: Fold) -> None:
        """Each fold's terms gathered into `terms` (row-major over the folded variables),
        then its helper; `prod_except` and its tangent write a value per term back."""
        kept, folded = f.kept, f.domain[len(f.kept):]
        count = math.prod(axes_shape(folded))
        helper = FOLDS[f.kind]
        self.helpers.add(helper)
        tangents = f.kind == "prod_except_tangent"
        parts, stride = [], 1
        for a in reversed(folded):
            term = self.var(a.var) if not a.start else f"({self.var(a.var)} - {a.start})"
            parts.append(term if stride == 1 else f"{stride} * {term}")
            stride *= a.size
        term = " + ".join(reversed(parts))
        self.line(f"terms = _new({count})")
        if tangents:
            self.line(f"tangents = _new({count})")
        if f.kind.startswith("prod_except"):
            self.line(f"folded = _new({count})")
        self.point_loop([t.name for t in f.terms], [f.target.name])
        self.loops(kept)
        self.loops(folded)
        self.line(f"terms[{term}] = {self.element(f.terms[0])}")
        if tangents:
            self.line(f"tangents[{term}] = {self.element(f.terms[1])}")
        self.depth -= len(folded)
        if not f.kind.startswith("prod_except"):
            self.line(f"{self.element(f.target)} = {helper}(terms)", f.origin)
        else:
            self.line(f"{helper}(terms, {'tangents, ' if tangents else ''}folded)", f.origin)
            self.loops(folded)
            self.line(f"{self.element(f.target)} = folded[{term}]")
            self.depth -= len(folded)
        self.depth -= len(kept) + 1

    # -- functions ------------------------------------------------------------------------

    def function(self, f: Function) -> None:
        roots = [*f.values, *(b for _, b in f.grads), *(b for _, b in f.tangents)]
        p = fused(pruned(f.plan, roots))
        check(p)
        f = self.f = replace(f, plan=p)
        self.temps = 0
        self.depth = 0
        self.body: list[tuple[str, Origin | None]] = []
        self.raising: list[tuple[int, Origin]] = []
        self.contributions: dict[str, int] = {}
        self.covered: set[str] = set()
        self.written: set[str] = set()
        self.targets: set[str] = set()
        self.blas = False  # whether a stage is a matrix product by BLAS
        for s in p.stages:
            for w in s.writes:
                name = w.target.name
                self.written.add(name)
                self.contributions[name] = self.contributions.get(name, 0) + 1
                if covers(s.domain, w.target, p.shape(name)):
                    self.covered.add(name)
        # The results, in `_run`'s order: outputs, gradients, tangents; a gradient (and in
        # `hvp` a product) of an input the points may share has a row per chunk.
        results = [*f.values, *(b for _, b in f.grads), *(b for _, b in f.tangents)]
        self.shared = {b for _, b in f.grads} | ({b for _, b in f.tangents} if f.name == "hvp" else set())
        self.result_of: dict[str, str] = {}
        arrays = []  # (buffer, the kernel's array)
        for b in results:
            if p.buffers[b].role in ("input", "direction", "seed") or b in self.result_of:
                arrays.append((b, self.claim(f"{b} result {len(arrays)}", f"{self.name(b)}_out_rows")))
                continue
            self.result_of[b] = self.claim(f"{b} rows", f"{self.name(b)}_rows")
            arrays.append((b, self.result_of[b]))
        self.line("for chunk in range(first, last):")
        self.depth += 1
        self.line("start, stop = chunk * B // chunks, (chunk + 1) * B // chunks")
        self.made: set[str] = set()  # the chunk's own arrays made so far
        for s in p.stages:
            self.stage(s)
        for b, rows in arrays:
            if rows != self.result_of.get(b):  # a result that is a caller's array: copied
                self.point_loop([b], [])
                size = math.prod(p.shape(b))
                view = f"_row({rows}, {size}, point)[:]" if p.shape(b) else f"{rows}[point]"
                self.line(f"{view} = {self.name(b)}")
                self.depth -= 1
        checked = bool(self.raising)
        params = [self.param(b) for b in f.params] + [rows for _, rows in arrays] + (["bad"] if checked else [])
        lines = ["", "", "@_jit", f"def _{f.name}_points(B, chunks, first, last, {', '.join(params)}):",
                 f'    """{f.name} at the points of chunks first..last-1 of a batch of B (see `_run`)."""']
        for b in f.params:
            size = math.prod(p.shape(b))
            lines.append(f"    {self.each(b)} = len({self.param(b)}) > {size}  # a row per point")
        for b, rows in arrays:
            if b in self.shared and rows == self.result_of.get(b):
                size = math.prod(p.shape(b))
                lines.append(f"    {self.each(b)} = len({rows}) == B{f' * {size}' if size != 1 else ''}"
                             "  # else a row per chunk")
        top = len(self.lines) + len(lines) + 1  # the module line of the body's first line, less the head
        lines += [text for text, _ in self.body]
        self.where += [(top + k, origin) for k, origin in self.raising]
        self.lines += lines
        starts = [self.start(b, rows) for b, rows in arrays]
        self.entry(f, arrays, starts, checked)
        if f.name == "hvp":
            self.products = (f, arrays, starts, checked)  # for the Hessian's (`hessians`)
        self.lines += threads(f.name, params, [(start, start) for start in starts], checked,
                              self.blas)
        self.lines += self.wrapper(f)

    def param(self, name: str) -> str:
        """The kernel's array of an input, direction or seed: its rows, but for a seed that
        stages add to, whose rows are the chunk's own, a copy."""
        if self.storage(name) == "local":
            return self.claim(f"{name} given", f"{self.name(name)}_given")
        return self.rows(name)

    def start(self, name: str, rows: str) -> str:
        """What the rows of a result hold before the kernel runs (`None`: it assigns them)."""
        if rows != self.result_of.get(name) or name in self.written and not self.adds(name):
            return "None"
        return "-0.0" if name in self.covered else "0.0"

    def line(self, text: str, origin: Origin | None = None, raises: bool = False) -> None:
        """A line of the kernel's body, inside its loop over the chunks at depth 0."""
        if origin is not None:
            text += "  # " + (origin.lines if origin.calls else f"line {origin.span.line}")
        self.body.append((" " * (4 + 4 * self.depth) + text, origin))
        if raises:
            self.raising.append((len(self.body) - 1, origin))

    def adds(self, name: str) -> bool:
        """Whether a stage adds into buffer `name` with `+=` (no running value that assigns
        it), so that it must start at zero."""
        for s in self.f.plan.stages:
            if isinstance(s, Map):
                outer = self.outer(s)[1]
                if any(w.add and w.target.name == name and w not in outer for w in s.writes):
                    return True
        return False

    def wrapper(self, f: Function) -> list[str]:
        """The entry point `<name>` itself: the compiled `_<name>`, else `_run`."""
        inputs = [self.name(b) for b in self.p.inputs]
        extras = [self.name(b) for b in f.params[len(inputs):]]
        return ["", "", *self.head(f), *wrapper(f.name, inputs, extras, True)]

    def work(self, plan: Plan) -> int:
        """About how many operations a point of `plan` costs."""
        total = 0
        for s in plan.stages:
            size = math.prod(axes_shape(s.domain))
            total += size * (len(s.body.nodes) if isinstance(s, Map) else 1)
        return total

    def source(self, made: list[Function]) -> str:
        for f in made:
            self.function(f)
        hessian = any(f.name == "hvp" for f in made)
        tail = []
        if hessian:
            self.lines += self.hessians()
            self.helpers.add("_dense_hessian")
            for h in HESSIAN_HELPERS:
                tail += ["", "", copied(WHOLE_SOURCES[h])]
        constants = self.constants() + (self.hessian_constants() + [dtype_line("float64")]
                                         if hessian else [])
        top = [*head(self.shown, self.version), *constants, *tuning(self.work(made[1].plan)),
               "_BLAS = True  # contractions as matrix products (not in the interpreter: `_interpreted`)",
               f"_GEMM_FROM = {GEMM_FROM}  # multiplications: a smaller product is computed in loops"]
        helpers = needed(self.helpers)
        for h in helpers:
            if h in JITTED:
                top += ["", "", *HELPERS[h].split("\n")]
        for h in helpers:
            if h not in JITTED:
                tail += ["", "", HELPERS[h]]
        where = [(line + len(top), origin) for line, origin in self.where]
        names = [f.name for f in made] + (["sparse_hessian", "hessian"] if hessian else [])
        tail += closing(where, self.shown, any(self.ident[n] != n for n in self.p.inputs), names)
        return "\n".join(top + self.lines + tail) + "\n"
