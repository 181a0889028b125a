"""Whole-bus plans (`indexed.ir.Plan`) -> a plain Python module that loops over each bus.

The module keeps the python target's contract (`emit.python`): `INPUTS`, `OUTPUTS`,
`WRT`, `SHAPES`, `DEFAULTS`, `RENAMED`, `forward` and `backward` (and `jvp`, `hvp`)
with the same parameters, a bus given as nested lists or tuples, a NumPy array or one
number for every element, bus results as nested tuples, only `math` imported, and
run-time errors re-raised with the gate's `.circ` position (`_WHERE`, `_located`; on a
line inside a loop the element is not named). What changes is the code: the text does
not grow with the sizes of the buses. `api` writes this module for the python target
when a bus or a reduction has more than `api.LOOPS_FROM` elements (below that, the
written-out module runs faster), unless `elements` asks for it written out.

- A bus is a flat list in row-major order (`x = _flat(x, (n,))`); element `x[a, b]` of a
  bus of shape `(n, m)` is `x[a * m + b]`.
- A map is a loop over its domain (nested, in order) whose body is the map's gates, a
  line each where a gate can raise (else written into the expression that uses it).
  A `=` write appends to its list; a `+=` write adds into its list at the element,
  or, where the target is the loops' outer variables and the inner ones are summed,
  into a running value that starts at `-0.0` (which adds nothing, not even a sign), so
  a sum adds its terms left to right as the written-out `t0 + t1 + ...` does.
- A fold is a helper over the list of its terms: `max`, `min` and `math.prod` (left
  folds, as written out), `_logsumexp` (`m + log(sum(exp(t - m)))`), `_prod_except`,
  `_prod_except_tangent`.
- Each map fused with its adjoint or tangent (`indexed.passes.fused`) is one loop:
  Rosenbrock's `backward` is one loop. An adjoint map that runs later recomputes the
  forward gates it needs.

Values agree with the written-out python module bit for bit where the gates and
their order are the same (Rosenbrock's value and gradient do); adjoints of an element
read more than once are added in another order, and the written-out circuit may be
simplified across elements, so in general values and gradients agree to a relative
1e-12 (`tests/test_loops.py`). Every element of a bus is computed, also one that no
output needs and the written-out module leaves out: only such an element's domain
error is raised here and not there.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import replace

from ..gates import ATOM, GATES
from ..graph import Graph, Origin, needed
from ..guards import conditions, written_order
from ..indexed.ir import Access, Fold, Map, Plan, axes_shape, check, covers, identity, pruned
from ..indexed.passes import fused
from . import hessian_helpers
from .frame import Frame, Function, functions
from .python import RESERVED
from .python_helpers import HELPER_SOURCES as PYTHON_HELPER_SOURCES
from .text import LINE, MAX_DEPTH, Blocks, if_headers, literal, nested_display, tuple_display


def _shaped(flat, shape):
    """A bus's elements (row-major) as nested tuples of `shape`."""
    for n in reversed(shape[1:]):
        flat = [tuple(flat[k:k + n]) for k in range(0, len(flat), n)]
    return tuple(flat)


def _logsumexp(terms):
    """`m + log(sum(exp(t - m)))`, `m` the largest term, the sum from the left."""
    m = max(terms)
    total = -0.0
    for t in terms:
        total += math.exp(t - m)
    return m + math.log(total)


def _prod_except(terms):
    """At each term, the product of the others: those before it, from the left, times
    those after it, from the right."""
    n = len(terms)
    before, after = [1.0] * n, [1.0] * n
    for j in range(1, n):
        before[j] = before[j - 1] * terms[j - 1]
        after[n - 1 - j] = after[n - j] * terms[n - j]
    return [b * a for b, a in zip(before, after)]


def _prod_except_tangent(terms, tangents):
    """The derivative of `_prod_except(terms)` along `tangents`: the products before and
    after each term carried with their derivatives."""
    n = len(terms)
    before, after, dbefore, dafter = [1.0] * n, [1.0] * n, [0.0] * n, [0.0] * n
    for j in range(1, n):
        before[j] = before[j - 1] * terms[j - 1]
        dbefore[j] = dbefore[j - 1] * terms[j - 1] + before[j - 1] * tangents[j - 1]
        i = n - 1 - j
        after[i] = after[i + 1] * terms[i + 1]
        dafter[i] = dafter[i + 1] * terms[i + 1] + after[i + 1] * tangents[i + 1]
    return [db * a + b * da for b, a, db, da in zip(before, after, dbefore, dafter)]


HELPERS = {f.__name__: f for f in (_shaped, _logsumexp, _prod_except, _prod_except_tangent)}
HELPER_SOURCES = {**PYTHON_HELPER_SOURCES,
                  **{name: inspect.getsource(f).rstrip() for name, f in HELPERS.items()},
                  **hessian_helpers.HELPER_SOURCES}
# What the functions call, and `iter` and `next`, which earlier loops called, reserved so
# that no circuit name shadows a builtin in them (`tests/whitelist.py` holds them to it).
NAMES = RESERVED | set(HELPERS) | set(hessian_helpers.HELPER_SOURCES) | {"range", "float", "max", "min", "iter", "next", "product",
                                   "sparse_hessian", "HESSIAN_PIECES", "HESSIAN_BAND",
                                   "__getattr__", "globals"}
# Each fold as a call on the list of its terms, and the helper that call needs.
FOLDS = {"max": ("max({})", None), "min": ("min({})", None), "prod": ("math.prod({})", None),
         "logsumexp": ("_logsumexp({})", "_logsumexp"),
         "prod_except": ("_prod_except({})", "_prod_except"),
         "prod_except_tangent": ("_prod_except_tangent({})", "_prod_except_tangent")}


def emit(plan: Plan, version: str, jvp: bool = False, hessian: bool = False) -> str:
    return LoopsWriter(plan, version).source(functions(plan, jvp, hessian))


class LoopsWriter(Frame):
    """Writes one plain-Python module of loops from a whole-bus plan."""

    target = "python"

    def __init__(self, plan: Plan, version: str):
        super().__init__(plan, version, NAMES)
        self.helpers: set[str] = {"_flat"}
        self.uses_math = False

    def line(self, text: str, origin: Origin | None = None, raises: bool = False) -> None:
        """A line of the function body at the current depth of loops; with `raises`, one
        that `_WHERE` names `origin` for."""
        if origin is not None:
            text += "  # " + (origin.lines if origin.calls else f"line {origin.span.line}")
        self.body.append((" " * (8 + 4 * self.depth) + text, origin))
        if raises:
            self.raising.append((len(self.body) - 1, origin))

    def var(self, v: str) -> str:
        return self.claim("@" + v, v)

    def loops(self, axes) -> None:
        for a in axes:
            bounds = f"{a.start}, {a.stop}" if a.start else f"{a.stop}"
            self.line(f"for {self.var(a.var)} in range({bounds}):")
            self.depth += 1

    # -- reads ------------------------------------------------------------------------

    def element(self, access: Access) -> str:
        """The element an access takes at the loops' current point."""
        if access.name is None:
            return f"float({self.var(access.index[0][0])})"
        ident = self.name(access.name)
        shape = self.f.plan.shape(access.name)
        return f"{ident}[{self.flat(access, shape)}]" if shape else ident

    def flat(self, access: Access, shape: tuple[int, ...]) -> str:
        """The position of `access`'s element in its bus of `shape` laid out flat (row-major)
        at the loops' current point, as an index expression."""
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
        return " + ".join(parts).replace("+ -", "- ")

    # -- gates ------------------------------------------------------------------------

    def gates(self, graph: Graph, reads, roots: list[int]) -> dict[int, tuple[str, int, int]]:
        """Lines computing what `roots` need of `graph`, and each node's (text, precedence,
        depth). A node used once that cannot raise is written into the expression that
        uses it."""
        nodes = graph.nodes
        alive = needed(nodes, roots)
        uses = [0] * len(nodes)
        for i in roots:
            uses[i] += 1
        for i, node in enumerate(nodes):
            if alive[i]:
                for a in node.args:
                    uses[a] += 1
        texts: dict[int, tuple[str, int, int]] = {}
        # What only a branch of a `where` needs is written in `if` blocks on its conditions,
        # each condition first (`guards.schedule`), and `where` as `a if c else b`: lazy.
        guard, order = written_order(nodes, roots)
        for c in conditions(guard):
            uses[c] += 1  # the blocks' headers read it too: never inlined
        blocks = Blocks("")
        for i in order:
            node = nodes[i]
            if not alive[i]:
                continue
            if node.op == "const":
                text, prec = literal(node.attr)
                self.uses_math |= text.endswith(("inf", "nan"))
                texts[i] = (text, prec, 0)
                continue
            if node.op == "input":
                texts[i] = (self.element(reads[int(node.attr[1:-1])]), ATOM, 0)
                continue
            template, prec, needs, raises = self.syntax[node.op]
            gate = GATES[node.op].python
            if gate.helper:
                self.helpers.add(gate.helper.__name__)
            self.uses_math |= gate.template.startswith("math.")
            args, depth = [], 0
            for a, need in zip(node.args, needs):
                t, p, d = texts[a]
                args.append(t if p >= need else f"({t})")
                depth = max(depth, d)
            expr = template.format(*args)
            if uses[i] == 1 and not raises and depth + 1 < MAX_DEPTH:
                texts[i] = (expr, prec, depth + 1)
                continue
            ident = self.temporary()
            if guard is not None:
                for header in blocks.enter(if_headers(guard[i], texts)):
                    self.line(header)
            self.line(f"{blocks.pad}{ident} = {expr}", node.origin, raises)
            texts[i] = (ident, ATOM, 0)
        return texts

    # -- stages ---------------------------------------------------------------------------

    def stage(self, s) -> None:
        if isinstance(s, Map):
            self.map(s)
        else:
            self.fold(s)

    def map(self, m: Map) -> None:
        """The loops of map `m`. A target written whole, each element once, in the order of
        the loops (`outer`), is a list appended to, summed over the inner variables in a
        running value that starts at `-0.0`; every other target is a list written at its
        element, a `+=` target's started at zeros."""
        domain = m.domain
        writes = list(zip((n for _, n in m.body.outputs), m.writes))
        depth, outer = self.outer(m)
        running = {}
        for _, w in writes:
            name, ident = w.target.name, self.name(w.target.name)
            shape = self.f.plan.shape(name)
            if w in outer:
                if shape:
                    self.line(f"{ident} = []")
                    if w.add and depth < len(domain):
                        running[name] = self.claim(f"#acc{len(running)}",
                                                   f"acc{len(running) or ''}")
                elif w.add:
                    self.line(f"{ident} = -0.0")
            elif w.add:
                self.start(name)
            else:
                self.line(f"{ident} = [0.0] * {math.prod(shape)}")
        self.loops(domain[:depth])
        for acc in running.values():
            self.line(f"{acc} = -0.0")
        self.loops(domain[depth:])
        texts = self.gates(m.body, m.reads, [n for n, _ in writes])
        for node, w in writes:
            value, name = texts[node][0], w.target.name
            ident = self.name(name)
            if w not in outer:
                self.line(f"{self.element(w.target)} {'+=' if w.add else '='} {value}", m.origin)
            elif name in running:
                self.line(f"{running[name]} += {value}")
            elif w.add and not self.f.plan.shape(name):
                self.line(f"{ident} += {value}")
            elif domain:
                self.line(f"{ident}.append({value})")
            elif value != ident:
                self.line(f"{ident} = {value}")
        self.depth -= len(domain) - depth
        for name, acc in running.items():
            self.line(f"{self.name(name)}.append({acc})")
        self.depth -= depth

    def outer(self, m: Map) -> tuple[int, list]:
        """How many of the outer variables of `m`'s loops its appended targets have, and the
        writes that append: each a `=` write, or a `+=` into a sum no other stage adds to,
        at those variables in order."""
        depth, outer = None, []
        for w in m.writes:
            name = w.target.name
            rank = len(self.f.plan.shape(name))
            axes = m.domain[:rank]
            whole = w.target == identity(name, axes) and axes_shape(axes) == self.f.plan.shape(name)
            if not whole or depth not in (None, rank) or not w.add and rank < len(m.domain):
                continue  # (a `=` write over fewer variables is written at its element)
            if w.add and (self.contributions[name] != 1 or self.f.plan.buffers[name].role != "sum"):
                continue
            depth = rank
            outer.append(w)
        return (len(m.domain) if depth is None else depth), outer

    def start(self, name: str) -> None:
        """Start the list (or number) of a `+=` target at zero before its first contribution:
        at -0.0, which adds nothing, not even a sign, where a stage adds to every element;
        else at 0.0, which an element nothing adds to keeps, as written out."""
        if name in self.started:
            return
        self.started.add(name)
        shape = self.f.plan.shape(name)
        if self.f.plan.buffers[name].role == "seed":
            return  # the caller's seed, already a list of its own or a number
        zero = "-0.0" if name in self.covered else "0.0"
        ident = self.name(name)
        self.line(f"{ident} = [{zero}] * {math.prod(shape)}" if shape else f"{ident} = {zero}")

    def fold(self, f: Fold) -> None:
        target = self.name(f.target.name)
        kept = f.kept
        whole = f.kind.startswith("prod_except")
        if kept or whole:
            self.line(f"{target} = []")
        self.loops(kept)
        loops = " ".join(f"for {self.var(a.var)} in range({f'{a.start}, ' if a.start else ''}{a.stop})"
                         for a in f.domain[len(kept):])
        template, helper = FOLDS[f.kind]
        call = template.format(", ".join(f"[{self.element(t)} {loops}]" for t in f.terms))
        if helper:
            self.helpers.add(helper)
        self.uses_math |= f.kind in ("prod", "logsumexp")
        how = "extend" if whole else "append" if kept else None
        self.line(f"{target}.{how}({call})" if how else f"{target} = {call}", f.origin, True)
        self.depth -= len(kept)

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
        self.started: set[str] = set()
        self.contributions: dict[str, int] = {}
        self.covered: set[str] = set()  # buffers a stage adds to at every element
        for s in p.stages:
            for w in s.writes:
                self.contributions[w.target.name] = self.contributions.get(w.target.name, 0) + 1
                if covers(s.domain, w.target, p.shape(w.target.name)):
                    self.covered.add(w.target.name)
        lines = self.head(f)
        for b in f.params:
            shape = p.shape(b)
            if shape:
                lines.append(f"    {self.name(b)} = _flat({self.name(b)}, {shape!r})")
        for s in p.stages:
            self.stage(s)
        ret = self.results(f)
        top = len(self.lines) + len(lines) + 4  # the module line of the body's first line
        if self.raising:
            lines.append("    try:")
            lines += [text for text, _ in self.body]
            lines += ["    except (ArithmeticError, ValueError) as exc:",
                      "        raise _located(exc) from None"]
            self.where += [(top + k, origin) for k, origin in self.raising]
        else:
            lines += [text[4:] for text, _ in self.body]
        lines.append(f"    return {ret}")
        self.lines += ["", ""] + lines

    def results(self, f: Function) -> str:
        p = f.plan

        def value(b: str) -> str:
            shape = p.shape(b)
            written = b in self.started or any(w.target.name == b for s in p.stages for w in s.writes)
            if not written and p.buffers[b].role == "sum":
                text = f"[0.0] * {math.prod(shape)}" if shape else "0.0"
            else:
                text = self.name(b)
            if shape:
                self.helpers.add("_shaped")
                text = f"_shaped({text}, {shape!r})"
            return text

        values = [value(o) for o in f.values]
        groups = [values[0] if len(values) == 1 else tuple_display(values)]
        if f.name in ("backward", "hvp"):
            groups.append([value(b) for _, b in f.grads])
        if f.name == "jvp":
            tangents = [value(b) for _, b in f.tangents]
            groups.append(tangents[0] if len(tangents) == 1 else tuple_display(tangents))
        if f.name == "hvp":
            groups.append([value(b) for _, b in f.tangents])
        flat = ", ".join(g if isinstance(g, str) else tuple_display(g) if g else "()" for g in groups)
        if len(f"    return {flat}") <= LINE:
            return flat
        return ", ".join(g if isinstance(g, str) else tuple_display(g, "    ") if g else "()"
                         for g in groups)

    # -- the module -------------------------------------------------------------------------

    def default(self, value, shape) -> str:
        """A default as a literal: a bus of one repeated number as `(v,) * n` nested."""
        if isinstance(value, tuple):
            flat = list(value)
            for _ in shape[1:]:
                flat = [x for row in flat for x in row]
            return nested_display([self.literal(float(v)) for v in flat], shape)
        text = self.literal(float(value))
        for n in reversed(shape):
            text = f"({text},) * {n}"
        return text

    def literal(self, value: float) -> str:
        text = literal(value)[0]
        self.uses_math |= text.endswith(("inf", "nan"))
        return text

    def source(self, made: list[Function]) -> str:
        for f in made:
            self.function(f)
        hessian = any(f.name == "hvp" for f in made)
        names = [f.name for f in made]
        if hessian:
            self.lines += self.hessian_functions(dense=True)
            self.helpers |= {"_sparse_hessian", "_dense_hessian", "_hessian_layout", "_pattern",
                             "_colouring", "_count", "_symmetric", "_shaped"}
            names += ["sparse_hessian", "hessian"]
        constants = self.constants() + (self.hessian_constants() if hessian else [])
        head = [f"# Generated by circuitc {self.version} from {self.shown}; do not edit.",
                '"""A circuit compiled by circuitc: forward(inputs) and backward(inputs, seeds)."""',
                ""]
        if self.uses_math or any("math." in HELPER_SOURCES[h] for h in self.helpers):
            head += ["import math", ""]
        if hessian:
            head += ["from itertools import product", ""]
        head += constants
        tail = []
        for helper in sorted(self.helpers):
            tail += ["", "", HELPER_SOURCES[helper]]
        return "\n".join(head + self.lines + tail + self.closing(len(head), names)) + "\n"
