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
  value a local, and the body is `emit.loops`'s: a gate a line where it can raise (else written into the expression
  that uses it), a sum over inner variables in a running value that starts at `-0.0`, a
  `+=` target started at `-0.0` where a stage adds to every element (else `0.0`). Each
  value of a gate that can raise is checked (`check`): a point where one is not finite is
  marked in `bad`, and `_run` runs it again in the interpreter to find the error.
- A contraction whose operands are a weight (an input read whole, one row for every
  point) and a row per point, or whose target is the gradient of such a weight, is a
  matrix product by BLAS (`np.dot`) over the chunk's points where the product is large
  enough (`_GEMM_FROM` multiplications), the loops beside it otherwise (and in the
  interpreter, `_BLAS` false).
- A fold gathers its terms into an array and calls its helper (`_fold_max`,
  `_logsumexp`, `_prod_except`, ...), the python target's folds.

Values agree with the python target's whole-bus code (`emit.loops`) bit for bit where no
matrix product runs (the same gates in the same order); BLAS sums in its own order.
"""

from __future__ import annotations

import math
from dataclasses import replace

from ..gates import GATES
from ..graph import Origin
from ..indexed.ir import (
    ADJOINT,
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
    copied,
    head,
    needed,
    signature,
    threads,
    tuning,
    wrapper,
)
from .numpy import HELPERS as NUMPY_HELPERS
from .python import _BY_CIRC_NAMES, _WHERE_COMMENT, LINE, _tuple

# The numpy target's helpers of sparse Hessians, which a module with `hvp` carries.
HESSIAN_HELPERS = ("_sparse_hessian", "_hessian_layout", "_pattern", "_affine_at", "_colouring")
FOLDS = {"max": "_fold_max", "min": "_fold_min", "prod": "_fold_prod", "logsumexp": "_logsumexp",
         "prod_except": "_prod_except", "prod_except_tangent": "_prod_except_tangent"}
GEMM_FROM = 4096  # multiplications: a smaller contraction costs BLAS more than the loops
RESERVED = NUMBA_RESERVED | loops.NAMES | set(HESSIAN_HELPERS) | {"rows", "terms", "tangents", "folded", "term",
                                                             "product"}


def emit(plan: Plan, version: str, jvp: bool = False, hessian: bool = False) -> str:
    return _Module(plan, version).source(functions(plan, jvp, hessian))


class _Module(loops._Module):
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
        coefficients: dict[str, int] = {}
        constant, stride = 0, 1
        for (v, a, c), n in zip(reversed(access.index), reversed(shape)):
            if v is not None:
                coefficients[v] = coefficients.get(v, 0) + a * stride
            constant += c * stride
            stride *= n
        parts = [self.var(v) if k == 1 else f"{k} * {self.var(v)}"
                 for v, k in reversed(coefficients.items()) if k]
        if constant or not parts:
            parts.append(str(constant))
        return f"{self.name(access.name)}[{' + '.join(parts)}]".replace("+ -", "- ")

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
        """The loops of map `m` computing its writes `chosen` (see `loops._Module.map`)."""
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
        """`loops._Module.outer`, but a `+=` into a gradient an input's points may share (a
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

    # -- contractions by BLAS -------------------------------------------------------------

    def contractions(self, m: Map) -> dict[int, tuple[str, list[str], int, str]]:
        """The writes of `m` that are matrix products: per write, the line computing it, the
        conditions it needs at run time, and its multiplications per point."""
        if len(m.domain) != 2 or any(a.start for a in m.domain):
            return {}
        found = {}
        for k, ((_, node), w) in enumerate(zip(m.body.outputs, m.writes)):
            made = self.product(m, node, w)
            if made is not None:
                found[k] = made
        return found

    def whole(self, access: Access, m: Map) -> bool:
        """Whether `access` takes its whole buffer, a variable an axis, each once."""
        if access.name is None:
            return False
        axes = {a.var: a for a in m.domain}
        shape = self.f.plan.shape(access.name)
        if len(access.vars) != len(shape):
            return False
        return all(v is not None and a == 1 and c == 0 and axes[v].size == n
                   for (v, a, c), n in zip(access.index, shape))

    def product(self, m: Map, node: int, w) -> tuple[str, list[str], int, str] | None:
        """Write `w` of value `node` as a matrix product, where it is one (see the module
        docstring): the line adding it into its target, the conditions it needs, its
        multiplications per point, the product itself; or None."""
        nodes = m.body.nodes
        if not w.add or nodes[node].op != "mul":
            return None
        reads = []
        for a in nodes[node].args:
            if nodes[a].op != "input":
                return None
            reads.append(m.reads[int(nodes[a].attr[1:-1])])
        if not all(self.whole(r, m) for r in reads) or not self.whole(w.target, m):
            return None
        plan = self.f.plan
        rows = "(stop - start)"
        n = {a.var: a.size for a in m.domain}
        weights = [r for r in reads if len(r.vars) == 2 and plan.buffers[r.name].role == "input"]
        vectors = [r for r in reads if len(r.vars) == 1]
        target = w.target
        if len(target.vars) == 1 and len(weights) == 1 and len(vectors) == 1:
            (t,), (s,) = target.vars, vectors[0].vars
            weight = weights[0]
            if s == t or set(weight.vars) != {s, t}:
                return None
            ns, nt = n[s], n[t]
            matrix = self.rows(weight.name)
            matrix = (f"{matrix}.reshape(({ns}, {nt}))" if weight.vars == (s, t)
                      else f"{matrix}.reshape(({nt}, {ns})).T")
            operand, more = self.chunk_rows(vectors[0].name, ns)
            out, also = self.chunk_rows(target.name, nt, write=True)
            if operand is None or out is None:
                return None
            how = "_put" if w in self.outer(m)[1] else "_add"
            self.helpers.add(how)
            product = f"np.dot({operand}.reshape(({rows}, {ns})), {matrix})"
            return (f"{how}({out}, 0, {product})", [f"len({self.rows(weight.name)}) == {ns * nt}", *more, *also],
                    ns * nt, product)
        weight = target.name[1:] if target.name.startswith(ADJOINT) else None
        if len(target.vars) == 2 and len(vectors) == 2 and weight in plan.inputs and target.name in self.shared:
            t1, t2 = target.vars
            by_var = {r.vars[0]: r for r in vectors}
            if set(by_var) != {t1, t2}:
                return None
            first, more1 = self.chunk_rows(by_var[t1].name, n[t1])
            second, more2 = self.chunk_rows(by_var[t2].name, n[t2])
            if first is None or second is None:
                return None
            self.helpers.add("_add")
            product = f"np.dot({first}.reshape(({rows}, {n[t1]})).T, {second}.reshape(({rows}, {n[t2]})))"
            return (f"_add({self.rows(target.name)}, chunk * {n[t1] * n[t2]}, {product})",
                    [f"len({self.rows(weight)}) == {n[t1] * n[t2]}", *more1, *more2], n[t1] * n[t2], product)
        return None

    def chunk_rows(self, name: str, size: int, write: bool = False) -> tuple[str | None, list[str]]:
        """The rows of the chunk's points of a one-axis buffer, its array or a slice of it,
        and the conditions for there being a row per point; None where there may not be."""
        kind = self.storage(name)
        rows = self.rows(name)
        if kind == "local":
            return rows, []
        if kind == "input":
            if write:
                return None, []
            return f"{rows}[start * {size}:stop * {size}]", [f"({self.each(name)} or B == 1)"]
        return f"{rows}[start * {size}:stop * {size}]", [self.each(name)] if name in self.shared else []

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

    def entry(self, f: Function, arrays, starts: list[str], checked: bool) -> None:
        """`_<name>`: the compiled entry point at one point of floats and float64 arrays. The
        numbers among its arguments and results are one array's elements, `numbers`, which
        is made at once (an array each would cost more than the kernel at small sizes)."""
        p = f.plan
        types, args, numbers, given = [], [], [], []
        for b in f.params:
            shape = p.shape(b)
            ident = self.name(b)
            if not shape:
                types.append("float64")
                args.append(f"numbers[{len(numbers)}:{len(numbers) + 1}]")
                given.append(f"    numbers[{len(numbers)}] = {ident}")
                numbers.append(ident)
            else:
                types.append(f"float64[{', '.join([':'] * (len(shape) - 1) + ['::1'])}]")
                args.append(ident if len(shape) == 1 else f"{ident}.reshape({math.prod(shape)})")
        lines = ["", "", f"@numba.njit({signature(types)}, cache=True, error_model=\"numpy\")",
                 f"def _{f.name}({', '.join(self.name(b) for b in f.params)}):",
                 f'    """{f.name} at one point of floats and float64 arrays, compiled'
                 + ('; FloatingPointError where a gate\'s value is not finite."""' if checked else '."""'),
                 "    B = np.int64(1)  # not the literal 1, for which numba compiles the kernel again"]
        made, values = [], {}
        for (b, rows), start in zip(arrays, starts):
            size = math.prod(p.shape(b))
            ident = self.name(b) if rows == self.result_of.get(b) else rows
            if not p.shape(b):
                values[b] = f"numbers[{len(numbers)}]"
                made.append(f"numbers[{len(numbers)}:{len(numbers) + 1}]")
                if start != "None":
                    given.append(f"    numbers[{len(numbers)}] = {start}")
                numbers.append(ident)
                continue
            made.append(ident)
            values[b] = ident if len(p.shape(b)) == 1 else f"{ident}.reshape({p.shape(b)!r})"
            new = {"None": f"np.empty({size})", "0.0": f"np.zeros({size})"}.get(start, f"_full({size}, -0.0)")
            lines.append(f"    {ident} = {new}")
        if numbers:
            lines.append(f"    numbers = np.empty({len(numbers)})  # {', '.join(numbers)}")
            lines += given
        if checked:
            lines.append("    bad = np.zeros(1, np.bool_)")
        names = args + made + (["bad"] if checked else [])
        call = f"    _{f.name}_points(B, B, B - B, B, {', '.join(names)})"
        if len(call) > LINE:
            call = f"    _{f.name}_points(\n        B, B, B - B, B,\n" + "".join(
                f"        {a},\n" for a in names) + "    )"
        lines += call.split("\n")
        if checked:
            lines += ["    if bad[0]:", '        raise FloatingPointError("not finite")']

        values = [values[b] for b, _ in arrays]
        n = len(f.values)
        k = n + len(f.grads)
        groups: list = [values[0] if n == 1 else values[:n]]
        if f.name in ("backward", "hvp"):
            groups.append(values[n:k])
        if f.name == "jvp":
            groups.append(values[n] if len(values) == n + 1 else values[n:])
        if f.name == "hvp":
            groups.append(values[k:])
        ret = "    return " + ", ".join(g if isinstance(g, str) else _tuple(g) if g else "()"
                                     for g in groups)
        if len(ret) > LINE:
            ret = "    return " + ", ".join(g if isinstance(g, str) else _tuple(g, "    ") if g else "()"
                                         for g in groups)
        lines += ret.split("\n")
        self.lines += lines

    def hessians(self) -> list[str]:
        """`hessian` and `sparse_hessian`, each compiled at one point of floats and float64
        arrays (`_hessian_at`, `_sparse_hessian_at`) from `_hvp_colours`, the `hvp` kernel
        along the sum of each colour's unit directions, and otherwise (a batch, other
        types) from `hvp` by `_dense_hessian` and `_sparse_hessian`; and the module's
        `__getattr__` that lists `HESSIAN_PATTERN`."""
        f, arrays, starts, checked = self.products
        p = f.plan
        n = sum(math.prod(p.shape(b)) for b in p.wrt)
        inputs = [self.name(b) for b in p.inputs]
        seeds = [self.name(p.seeds[o]) for o in p.outputs]
        types, args, numbers, given = [], [], [], []

        def number(value: str) -> str:
            given.append(f"    numbers[{len(numbers)}] = {value}")
            numbers.append(value)
            return f"numbers[{len(numbers) - 1}:{len(numbers)}]"
        for b in p.inputs + tuple(p.seeds[o] for o in p.outputs):
            shape, ident = p.shape(b), self.name(b)
            types.append(f"float64[{', '.join([':'] * (len(shape) - 1) + ['::1'])}]" if shape else "float64")
            args.append(number(ident) if not shape else
                        ident if len(shape) == 1 else f"{ident}.reshape({math.prod(shape)})")
        directions = []
        lines = ["", "", "@_jit",
                 f"def _hvp_colours({', '.join(inputs + seeds)}, colour, count):",
                 ('    """hvp at one point along the sum of each colour\'s unit directions: the value, '
                 'the\n    gradient, and the products, a row per colour over the elements of WRT."""'),
                 "    B = np.int64(count)",
                 "    one = np.int64(1)  # not the literal 1, for which numba compiles the kernel again"]
        k = 0
        for name in p.wrt:
            size = math.prod(p.shape(name))
            direction = self.name(p.directions[name])
            directions.append(direction)
            lines += [f"    {direction} = np.zeros(count * {size})",
                      f"    for k in range({size}):",
                      f"        {direction}[colour[{f'{k} + ' if k else ''}k] * {size} + k] = 1.0"]
            k += size
        made, values = [], {}
        for (b, rows), start in zip(arrays, starts):
            size = math.prod(p.shape(b))
            ident = self.name(b) if rows == self.result_of.get(b) else rows
            made.append(ident)
            new = "np.empty" if start == "None" else "np.zeros"
            count = "count" if size == 1 else f"count * {size}"
            lines.append(f"    {ident} = {new}({count})" if start != "-0.0" else
                         f"    {ident} = _full({count}, -0.0)")
            values[b] = (ident, p.shape(b))
        if numbers:
            lines.append(f"    numbers = np.empty({len(numbers)})  # {', '.join(numbers)}")
            lines += given
        lines += ["    bad = np.zeros(count, np.bool_)"] if checked else []
        names = args[:len(inputs)] + directions + args[len(inputs):] + made + (["bad"] if checked else [])
        lines += ["    _hvp_points(", "        B, one, one - one, one,",
                  *(f"        {a}," for a in names), "    )"]
        if checked:
            lines += ["    if bad.any():", '        raise FloatingPointError("not finite")']
        lines.append(f"    products = np.empty((count, {n}))")
        k = 0
        for (name, b) in f.tangents:
            ident, shape = values[b]
            size = math.prod(shape)
            lines.append(f"    products[:, {k}:{k + size}] = {ident}.reshape((count, {size}))")
            k += size

        def value(b: str) -> str:
            ident, shape = values[b]
            size = math.prod(shape)
            return f"{ident}[0]" if not shape else f"{ident}[:{size}]" if len(shape) == 1 else \
                f"{ident}[:{size}].reshape({shape!r})"
        outs = [value(b) for b in f.values]
        grads = [value(b) for _, b in f.grads]
        ret = f"    return {outs[0] if len(outs) == 1 else _tuple(outs)}, {_tuple(grads) if grads else '()'}, products"
        lines += ret.split("\n") if len(ret) <= LINE else [
            (f"    return {outs[0] if len(outs) == 1 else _tuple(outs, '    ')}, "
            f"{_tuple(grads, '    ') if grads else '()'}, products")]
        signature_types = signature(types + ["int64[:, ::1]", "int64[::1]", "int64"])
        params = ", ".join(inputs + seeds)
        for entry, doc, result in (
                ("_hessian_at", "the Hessian as an array", [
                    f"    H = np.zeros(({n}, {n}))",
                    "    for at in range(len(pattern)):",
                    "        j, k = pattern[at, 0], pattern[at, 1]",
                    "        H[j, k] = H[k, j] = products[colour[k], j]",
                    "    return value, grads, H"]),
                ("_sparse_hessian_at", "its entries at the places of HESSIAN_PATTERN", [
                    "    entries = np.empty(len(pattern))",
                    "    for at in range(len(pattern)):",
                    "        entries[at] = products[colour[pattern[at, 1]], pattern[at, 0]]",
                    "    return value, grads, entries"])):
            lines += ["", "", f'@numba.njit({signature_types}, cache=True, error_model="numpy")',
                      f"def {entry}({params}, pattern, colour, count):",
                      f'    """(value, grads, {doc}) at one point of floats and float64 arrays, compiled."""',
                      f"    value, grads, products = _hvp_colours({params}, colour, count)",
                      *result]
        seed_sum = " + ".join(f"sum({s}*{o})" if p.shape(o) else f"{s}*{o}" for s, o in zip(seeds, p.outputs))
        outs_doc = f"({', '.join(p.outputs)})" if len(p.outputs) > 1 else p.outputs[0]
        head = f"({', '.join(inputs + [s + '=1.0' for s in seeds])}):"
        for name, entry, helper, doc in (
                ("sparse_hessian", "_sparse_hessian_at", "_sparse_hessian",
                 (f"Return ({outs_doc}, grads, entries), entries[k] = the entry of the Hessian of "
                 f"{seed_sum} at HESSIAN_PATTERN[k]: one hvp per colour of its columns.")),
                ("hessian", "_hessian_at", "_dense_hessian",
                 (f"Return ({outs_doc}, grads, H), the Hessian of {seed_sum} as an array over the "
                 "elements of WRT, from sparse_hessian."))):
            lines += ["", "", f"def {name}{head}", f'    """{doc}"""',
                      "    pattern, colour, count = _hessian_layout()",
                      "    try:",
                      f"        return {entry}({params}, pattern, colour, max(count, 1))",
                      "    except (TypeError, FloatingPointError):  # arrays, other types; a value not finite",
                      f"        return {helper}(hvp, {_tuple(inputs)}, {_tuple(seeds)})"]
        lines += ["", "", "def __getattr__(name):",
                  '    """HESSIAN_PATTERN, listed from HESSIAN_PIECES when first asked for."""',
                  '    if name == "HESSIAN_PATTERN":',
                  "        return _hessian_layout()[0]",
                  '    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")']
        return lines

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
                tail += ["", "", copied(NUMPY_HELPERS[h])]
        constants = self.constants() + (self.hessian_constants() if hessian else [])
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
        if self.where:
            entries = "".join(f"{line + len(top)} {origin.describe(self.shown)}\n"
                              for line, origin in self.where)
            entries = entries.replace("\\", "\\\\").replace('"', '\\"')
            tail += ["", "", _WHERE_COMMENT, f'_WHERE = """\n{entries}"""']
        else:
            tail += ["", "", '_WHERE = ""  # no line can raise']
        names = [f.name for f in made] + (["sparse_hessian", "hessian"] if hessian else [])
        if any(self.ident[n] != n for n in self.p.inputs):
            tail += ["", "", _BY_CIRC_NAMES, ""]
            tail += [f"{name} = _by_circ_names({name})" for name in names]
        return "\n".join(top + self.lines + tail) + "\n"
