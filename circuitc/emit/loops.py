"""The whole-bus form (`indexed.Plan`) -> a plain Python module that loops over each bus.

The module keeps the python target's contract (`emit.python`): `INPUTS`, `OUTPUTS`,
`WRT`, `SHAPES`, `DEFAULTS`, `RENAMED`, `forward` and `backward` with the same
parameters, a bus given as nested lists or tuples, a NumPy array or one number for
every element, bus results as nested tuples, only `math` imported, and run-time
errors re-raised with the gate's `.circ` position (`_WHERE`, `_located`; on a line
inside a loop the element is not named). What changes is the code: the text does not
grow with the sizes of the buses. `api` writes this module for the python target when
a bus or a reduction has more than `api.LOOPS_FROM` elements (256: below that, the
written-out module runs faster), unless `elements`, `hessian` or `jvp` is asked for.

- A bus is a flat list in row-major order (`x = _flat(x, (n,))`); element
  `x[a, b]` of a bus of shape `(n, m)` is `x[a * m + b]`.
- A map stage is a loop over its axes (nested, in order) whose body is the map's
  gates, a line each where a gate can raise, appending each element to its list.
- A sum is a loop accumulating from `-0.0` (which adds nothing, not even a sign), so
  the terms are added left to right as the written-out `t0 + t1 + ...` adds them;
  `max`, `min` and `prod` are Python's `max`, `min` and `math.prod` of the terms (the
  same left folds), `logsumexp` the helper `_logsumexp`, `m + log(sum(exp(t - m)))`
  as written out.
- Reverse mode runs stage by stage, backwards: a map's loop recomputes its body and
  adds the adjoint of each read into its bus's adjoint list (`d_x[i + 1] += ...`);
  a sum's adjoint for one factor is the stage's adjoint times the other factors;
  the other reductions' adjoints come from helpers (`_fold_grads`: prod's as the
  written-out left fold has it, max's and min's split equally among the terms equal to
  the result; `_logsumexp_grads`: the softmax). An adjoint starts at `-0.0` where its
  stage adds to every element, else at `0.0` (`start_adjoints`).
- A map whose adjoint is a scalar output's seed at every element (the terms of the sum
  that is the output, `f = sum(... for i)`; `fusible`) is known before the map runs:
  in `backward` its forward and reverse loops are one loop, which adds up that sum too.

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

from ..gates import ATOM, GATES
from ..graph import LEAVES, Graph, Origin
from ..indexed import Axis, Plan, Read, Stage, axes_shape
from .plan import PlanModule, gradient_origin
from .python import (
    HELPER_SOURCES,
    LINE,
    MAX_DEPTH,
    RESERVED,
    _literal,
    _nested,
    _tuple,
)


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


def _fold_grads(kind, terms, g):
    """d(g * the reduction `kind` (max, min, prod) of `terms`)/d(each term): for prod, the
    product of the terms before it and of `g` and the terms after it, as the left fold
    has it; for max and min, `g` split equally among the terms equal to the result."""
    if kind == "prod":
        grads = [0.0] * len(terms)
        before = 1.0
        for k, t in enumerate(terms):
            grads[k] = before
            before = before * t
        for k in range(len(terms) - 1, -1, -1):
            grads[k] = g * grads[k]
            g = g * terms[k]
        return grads
    m = max(terms) if kind == "max" else min(terms)
    count = 0
    for t in terms:
        count += t == m
    share = g / max(count, 1)
    return [share * (t == m) for t in terms]


def _logsumexp_grads(terms, g):
    """d(g * logsumexp(terms))/d(each term): `g` times the softmax."""
    m = max(terms)
    e = [math.exp(t - m) for t in terms]
    total = -0.0
    for x in e:
        total += x
    share = g / total
    return [share * x for x in e]


HELPERS = {f.__name__: f for f in (_shaped, _logsumexp, _fold_grads, _logsumexp_grads)}
SOURCES = {**HELPER_SOURCES, **{name: inspect.getsource(f).rstrip() for name, f in HELPERS.items()}}
# The builtins the functions call: no `.circ` name (an input `range`, an index variable
# `min`) may shadow them.
NAMES = RESERVED | set(HELPERS) | {"range", "float", "max", "min", "iter", "next"}
FOLDS = {"max": "max({})", "min": "min({})", "prod": "math.prod({})", "logsumexp": "_logsumexp({})"}


def emit(p: Plan, version: str) -> str:
    return _Module(p, version).source()


class _Module(PlanModule):
    target = "python"

    def __init__(self, p: Plan, version: str):
        super().__init__(p, version, NAMES)
        self.helpers: set[str] = {"_flat"}
        self.uses_math = False
        for s in p.stages:
            for a in s.domain:
                self.claim("@" + a.var, a.var)
        for word in ("acc", "grads"):  # the names of a reduction's running value and adjoints
            self.claim("#" + word, word)

    def line(self, text: str, origin: Origin | None = None) -> None:
        """A line of the function body at the current depth of loops."""
        if origin is not None:
            text += "  # " + (origin.lines if origin.calls else f"line {origin.span.line}")
        self.body.append((" " * (8 + 4 * self.depth) + text, origin))

    def loops(self, axes: tuple[Axis, ...]) -> None:
        for a in axes:
            bounds = f"{a.start}, {a.stop}" if a.start else f"{a.stop}"
            self.line(f"for {self.ident['@' + a.var]} in range({bounds}):")
            self.depth += 1

    # -- reads ------------------------------------------------------------------------

    def element(self, name: str, index) -> str:
        """Element `index` ((variable, coefficient, constant) per dimension) of `name`."""
        ident = self.ident[name]
        shape = self.p.shapes[name]
        if not shape:
            return ident
        coefficients: dict[str, int] = {}
        constant, stride = 0, 1
        for (v, a, c), n in zip(reversed(index), reversed(shape)):
            if v is not None:
                coefficients[v] = coefficients.get(v, 0) + a * stride
            constant += c * stride
            stride *= n
        parts = [self.ident["@" + v] if k == 1 else f"{k} * {self.ident['@' + v]}"
                 for v, k in reversed(coefficients.items()) if k]
        if constant or not parts:
            parts.append(str(constant))
        return f"{ident}[{' + '.join(parts)}]".replace("+ -", "- ")

    def read(self, r: Read) -> str:
        if r.name is None:
            return f"float({self.ident['@' + r.index[0][0]]})"
        return self.element(r.name, r.index)

    def own(self, s: Stage) -> str:
        """The element of stage `s` its loops are at."""
        return self.element(s.name, tuple((a.var, 1, -a.start) for a in s.axes))

    # -- gates ------------------------------------------------------------------------

    def gates(self, graph: Graph, nodes: list[int], texts: dict[int, tuple[str, int, int]],
              leaf, roots: list[int]) -> None:
        """Lines computing `nodes` of `graph` (in order) into `texts` (text, precedence,
        depth); `leaf(node)` gives a leaf's text; `roots` are the nodes that lines after
        these read, once per use. A node used once that cannot raise is written into the
        expression that uses it."""
        uses = dict.fromkeys(nodes, 0)
        for i in roots:
            uses[i] += 1
        for i in nodes:
            for a in graph.nodes[i].args:
                if a in uses:
                    uses[a] += 1
        for i in nodes:
            node = graph.nodes[i]
            if node.op == "const":
                text, prec = _literal(node.attr)
                self.uses_math |= text.endswith(("inf", "nan"))
                texts[i] = (text, prec, 0)
                continue
            if node.op in LEAVES:
                texts[i] = (leaf(node), ATOM, 0)
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
            self.line(f"{ident} = {expr}", node.origin)
            if raises:
                self.where_lines.append((len(self.body) - 1, node.origin))
            texts[i] = (ident, ATOM, 0)

    def raising(self, origin: Origin) -> None:
        """The line just written can raise (a helper or a fold): `_WHERE` names `origin`."""
        self.where_lines.append((len(self.body) - 1, origin))

    # -- forward ----------------------------------------------------------------------

    def forward_stage(self, s: Stage, fused: str | None = None) -> None:
        """The loops computing stage `s`; with `fused` (the text of its adjoint at an
        element), its reverse loop too."""
        name = self.ident[s.name]
        total = self.absorbed.get(s.name)
        if total is not None:  # the sum of its elements, added up as they are made
            self.line(f"{self.ident[total]} = -0.0")
        elif s.axes:
            self.line(f"{name} = []")
        if s.kind == "map":
            if fused is not None:
                self.start_adjoints(s)
            self.loops(s.axes)
            texts: dict[int, tuple[str, int, int]] = {}
            graph = s.backward if fused is not None else s.forward
            out = s.forward.outputs[0][1]
            nodes = list(range(len(s.forward.nodes)))
            if fused is not None:
                nodes += [i for i in self.live(graph, self.grad_nodes(s)) if i >= len(s.forward.nodes)]
            roots = [out] + (self.grad_nodes(s) if fused is not None else [])
            self.gates(graph, nodes, texts, self.leaf(s, fused), roots)
            value = texts[out][0]
            if total is not None:
                self.line(f"{self.ident[total]} += {value}", self.stage(total).origin)
            elif s.axes:
                self.line(f"{name}.append({value})")
            elif value != name:
                self.line(f"{name} = {value}")
            if fused is not None:
                self.scatter_grads(s, texts)
            self.depth -= len(s.axes)
            return
        self.loops(s.axes)
        result = self.ident["#acc"] if s.axes else name
        if s.kind == "sum":
            self.line(f"{result} = -0.0")
            self.loops(s.over)
            self.line(f"{result} += {self.product(s.reads)}", s.origin)
            self.depth -= len(s.over)
        else:
            self.line(f"{result} = {FOLDS[s.kind].format(self.terms(s))}", s.origin)
            self.raising(s.origin)
            if s.kind == "logsumexp":
                self.helpers.add("_logsumexp")
            self.uses_math |= s.kind in ("prod", "logsumexp")
        if s.axes:
            self.line(f"{name}.append({result})")
        self.depth -= len(s.axes)

    def product(self, reads) -> str:
        return " * ".join(self.read(r) for r in reads) if reads else "1.0"

    def terms(self, s: Stage) -> str:
        """The list of a reduction's terms at the current element of its axes."""
        loops = " ".join(f"for {self.ident['@' + a.var]} in range("
                         f"{f'{a.start}, ' if a.start else ''}{a.stop})" for a in s.over)
        return f"[{self.read(s.reads[0])} {loops}]"

    def leaf(self, s: Stage, adjoint: str | None):
        def text(node) -> str:
            if node.op == "input":
                return self.read(s.reads[int(node.attr[1:-1])])
            return adjoint  # the seed
        return text

    @staticmethod
    def live(graph: Graph, roots: list[int]) -> list[int]:
        """The nodes `roots` need, in order."""
        live = [False] * len(graph.nodes)
        for n in roots:
            live[n] = True
        for i in range(len(graph.nodes) - 1, -1, -1):
            if live[i]:
                for a in graph.nodes[i].args:
                    live[a] = True
        return [i for i, x in enumerate(live) if x]

    # -- reverse ------------------------------------------------------------------------

    def start_adjoints(self, s: Stage) -> None:
        """Start the adjoint of each wire that stage `s` adds to, if not yet started: at
        -0.0, which adds nothing, not even a sign (the adjoint of `x / inf` for `x > 0` is
        -0.0, as written out), where `s` adds to every element (a number, or a bus it reads
        whole); else at 0.0, which an element that nothing adds to keeps."""
        reads = self.contributing(s)
        for name in dict.fromkeys(r.name for r in reads):
            if name in self.started:
                continue
            self.started.add(name)
            shape = self.p.shapes[name]
            whole = not shape or any(r.name == name and self.covers(s, r) for r in reads)
            zero = "-0.0" if whole else "0.0"
            self.line(f"{self.adjoint(name)} = [{zero}] * {math.prod(shape)}" if shape else
                      f"{self.adjoint(name)} = {zero}")

    def covers(self, s: Stage, r: Read) -> bool:
        """Whether read `r` of stage `s` takes every element of its bus, each once."""
        axes = {a.var: a for a in s.domain}
        variables = [v for v, _, _ in r.index]
        return None not in variables and len(set(variables)) == len(variables) and all(
            a == 1 and axes[v].start + c == 0 and axes[v].size == n
            for (v, a, c), n in zip(r.index, self.p.shapes[r.name]))

    def reads_reached(self, s: Stage) -> list[Read]:
        """The reads of `s` whose adjoints its reverse loop adds to (a fused stage's own
        loop has added its adjoint's contributions)."""
        return [r for r in s.reads if r.name in self.reached and r.name not in self.fused]

    def contributing(self, s: Stage) -> list[Read]:
        """The reads of `s` whose adjoints it adds something to: of a map, those whose
        gradient is not the constant 0."""
        if s.kind != "map":
            return self.reads_reached(s)
        nodes = self.grad_nodes(s)
        return [s.reads[int(name[1:-1])] for name, node in s.backward.grads if node in nodes]

    def stage(self, name: str) -> Stage:
        return next(s for s in self.p.stages if s.name == name)

    def backward_stage(self, s: Stage) -> None:
        if s.name not in self.started:
            return  # no adjoint reached it
        if s.kind == "map" and (s.backward is None or not self.grad_nodes(s)) or \
                not self.reads_reached(s):
            return  # no adjoint to add: a map whose gradients are all 0 (`c(x[i])` for a constant `c`)
        self.start_adjoints(s)
        d = self.element(s.name, tuple((a.var, 1, -a.start) for a in s.axes)).replace(
            self.ident[s.name], self.adjoint(s.name), 1)
        if s.kind == "map":
            self.loops(s.axes)
            texts: dict[int, tuple[str, int, int]] = {}
            self.gates(s.backward, self.live(s.backward, self.grad_nodes(s)), texts, self.leaf(s, d), self.grad_nodes(s))
            self.scatter_grads(s, texts)
            self.depth -= len(s.axes)
            return
        self.loops(s.axes)
        at = gradient_origin(s.origin)
        if s.kind == "sum":
            self.loops(s.over)
            for m, r in enumerate(s.reads):
                if r in self.reads_reached(s):
                    others = [d] + [self.read(q) for j, q in enumerate(s.reads) if j != m]
                    self.line(f"{self.element(r.name, r.index)} += {' * '.join(others)}"
                              .replace(self.ident[r.name], self.adjoint(r.name), 1), at)
            self.depth -= len(s.over)
        else:
            grads = self.ident["#grads"]
            if s.kind == "logsumexp":
                self.helpers.add("_logsumexp_grads")
                call = f"_logsumexp_grads({self.terms(s)}, {d})"
                self.uses_math = True
            else:
                self.helpers.add("_fold_grads")
                call = f"_fold_grads({s.kind!r}, {self.terms(s)}, {d})"
            self.line(f"{grads} = iter({call})", at)
            self.raising(at)
            self.loops(s.over)
            r = s.reads[0]
            self.line(f"{self.element(r.name, r.index).replace(self.ident[r.name], self.adjoint(r.name), 1)}"
                      f" += next({grads})")
            self.depth -= len(s.over)
        self.depth -= len(s.axes)

    def grad_nodes(self, s: Stage) -> list[int]:
        """The nodes of map `s`'s gradient graph that `scatter_grads` adds somewhere."""
        reads = self.reads_reached(s)
        return [node for name, node in s.backward.grads if s.reads[int(name[1:-1])] in reads
                and not (s.backward.nodes[node].op == "const" and s.backward.nodes[node].attr == 0.0)]

    def scatter_grads(self, s: Stage, texts) -> None:
        """Add the adjoint of each read of map `s` into its wire's adjoint."""
        for name, node in s.backward.grads:
            r = s.reads[int(name[1:-1])]
            if r not in self.reads_reached(s):
                continue
            if s.backward.nodes[node].op == "const" and s.backward.nodes[node].attr == 0.0:
                continue
            target = self.element(r.name, r.index).replace(self.ident[r.name], self.adjoint(r.name), 1)
            self.line(f"{target} += {texts[node][0]}", gradient_origin(s.origin))

    # -- fusing -------------------------------------------------------------------------

    def fusible(self) -> tuple[dict[str, str], dict[str, str]]:
        """The map stages whose adjoint is known before they run, each with the output
        whose seed is that adjoint at every element; and the sums folded into such a
        stage's loop, by the stage's name.

        A stage's adjoint is an output's seed when the output is a number that nothing
        reads, or when the stage's only reader is a stage with no axes whose adjoint is
        that seed and which passes it on unchanged: a sum with the stage as its only
        operand, read whole in its own order, or a map whose gradient for the stage (a
        number) is its seed.
        """
        readers: dict[str, list[tuple[Stage, int]]] = {}
        for s in self.p.stages:
            for k, r in enumerate(s.reads):
                if r.name is not None:
                    readers.setdefault(r.name, []).append((s, k))
        known = {o: o for o in self.p.outputs if o not in readers and not self.p.shapes[o]}
        absorbed = {}
        for s in reversed(self.p.stages):
            users = readers.get(s.name, [])
            if s.name in self.p.outputs or len(users) != 1 or not s.differentiated:
                continue
            user, k = users[0]
            if user.name not in known or user.axes:
                continue
            if user.kind == "sum" and len(user.reads) == 1:
                whole = tuple((a.var, 1, -a.start) for a in user.over)
                if user.reads[0].index == whole and axes_shape(user.over) == self.p.shapes[s.name]:
                    known[s.name] = known[user.name]
                    if s.kind == "map":
                        absorbed[s.name] = user.name
            elif user.kind == "map" and user.backward is not None and not s.axes:
                node = dict(user.backward.grads).get(f"[{k}]")
                if node is not None and user.backward.nodes[node].op == "seed":
                    known[s.name] = known[user.name]
        stages = {s.name: s for s in self.p.stages}
        fused = {name: root for name, root in known.items()
                 if name not in self.p.outputs and stages[name].kind == "map"}
        return fused, {name: total for name, total in absorbed.items() if name in fused}

    # -- functions ------------------------------------------------------------------------

    def function(self, name: str, backward: bool) -> None:
        p = self.p
        self.temps = 0
        self.depth = 0
        self.body: list[tuple[str, Origin | None]] = []
        self.where_lines: list[tuple[int, Origin]] = []
        params = [self.ident[n] for n in p.inputs]
        outs = list(p.outputs)
        seeds = [self.adjoint(o) for o in outs]
        head = f"{name}({', '.join(params + ([s + '=1.0' for s in seeds] if backward else []))})"
        values_doc = f"({', '.join(outs)})" if len(outs) > 1 else outs[0]
        if backward:
            seed_sum = " + ".join(f"sum({s}*{o})" if p.shapes[o] else f"{s}*{o}"
                                  for s, o in zip(seeds, outs))
            doc = f"Return ({values_doc}, grads), grads[k] = d({seed_sum})/d(WRT[k])."
        else:
            doc = f"Return {values_doc}."
        lines = [f"def {head}:", f'    """{doc}"""']
        for n in p.inputs:
            if p.shapes[n]:
                lines.append(f"    {self.ident[n]} = _flat({self.ident[n]}, {p.shapes[n]!r})")
        if backward:
            for o, seed in zip(outs, seeds):
                if p.shapes[o]:
                    lines.append(f"    {seed} = _flat({seed}, {p.shapes[o]!r})")
        self.started = set(outs) if backward else set()
        self.fused, self.absorbed = {}, {}
        self.fused, self.absorbed = self.fusible() if backward else ({}, {})
        self.reached = set(p.wrt)  # the wires whose adjoints the reverse loops add to
        for s in p.stages:
            if s.differentiated and (s.kind != "map" or s.backward is not None) and any(
                    r.name in self.reached and r.name not in self.fused for r in s.reads):
                self.reached.add(s.name)
        folded = set(self.absorbed.values())
        for s in p.stages:
            if s.name in self.fused:
                self.forward_stage(s, self.adjoint(self.fused[s.name]))
            elif s.name not in folded:
                self.forward_stage(s)
        if backward:
            for s in reversed(p.stages):
                if s.differentiated and s.name not in self.fused:
                    self.backward_stage(s)
        results = []
        for o in outs:
            text = self.ident[o]
            if p.shapes[o]:
                self.helpers.add("_shaped")
                text = f"_shaped({text}, {p.shapes[o]!r})"
            results.append(text)
        value = ", ".join(results) if len(results) == 1 else _tuple(results)
        if backward:
            grads = []
            for w in p.wrt:
                shape = p.shapes[w]
                if w not in self.started:
                    text = f"[0.0] * {math.prod(shape)}" if shape else "0.0"
                else:
                    text = self.adjoint(w)
                if shape:
                    self.helpers.add("_shaped")
                    text = f"_shaped({text}, {shape!r})"
                grads.append(text)
            ret = f"{value}, {_tuple(grads) if grads else '()'}"
            if len(f"    return {ret}") > LINE:
                ret = f"{value}, {_tuple(grads, '    ') if grads else '()'}"
        else:
            ret = value
        top = len(self.lines) + len(lines) + 4  # the module line of the body's first line, head aside
        if self.where_lines:
            lines.append("    try:")
            for text, _ in self.body:
                lines.append(text)
            lines += ["    except (ArithmeticError, ValueError) as exc:",
                      "        raise _located(exc) from None"]
            self.where += [(top + k, origin) for k, origin in self.where_lines]
        else:
            lines += [text[4:] for text, _ in self.body]
        lines.append(f"    return {ret}")
        self.lines += ["", ""] + lines

    # -- the module -------------------------------------------------------------------------

    def default(self, value, shape) -> str:
        """A default as a literal: a bus of one repeated number as `(v,) * n` nested."""
        if isinstance(value, tuple):
            flat = list(value)
            for _ in shape[1:]:
                flat = [x for row in flat for x in row]
            texts = [self.literal(float(v)) for v in flat]
            return _nested(texts, shape)
        text = self.literal(float(value))
        for n in reversed(shape):
            text = f"({text},) * {n}"
        return text

    def literal(self, value: float) -> str:
        text = _literal(value)[0]
        self.uses_math |= text.endswith(("inf", "nan"))
        return text

    def source(self) -> str:
        self.function("forward", False)
        self.function("backward", True)
        constants = self.constants()
        head = [f"# Generated by circuitc {self.version} from {self.shown}; do not edit.",
                '"""A circuit compiled by circuitc: forward(inputs) and backward(inputs, seeds)."""',
                ""]
        if self.uses_math or any("math." in SOURCES[h] for h in self.helpers):
            head += ["import math", ""]
        head += constants
        tail = []
        for helper in sorted(self.helpers):
            tail += ["", "", SOURCES[helper]]
        return "\n".join(head + self.lines + tail + self.closing(len(head))) + "\n"
