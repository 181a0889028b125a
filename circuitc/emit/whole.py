"""The whole-bus form (`indexed.Plan`) -> a NumPy module that computes each bus at once.

The module keeps the numpy target's contract (`emit.numpy`): names, signatures,
batch axes leading and bus axes trailing, gradients summed to their inputs'
shapes, fresh result arrays, domain errors raised under `np.errstate` with the
gate's `.circ` position. What changes is the code: a stage is a few array
operations on whole buses instead of a line per element.

- A map stage is its body's gates, one line each, on arrays whose trailing axes
  are the stage's axes in order: a read is a slice of its bus (`x[..., 1:]`,
  `x[..., ::2]`, `W[..., 3, :]`), its axes moved into the stage's order and `None`
  where the read lacks one of the stage's axes.
- A sum is `np.einsum` of its operands (a contraction); the other reductions are
  the helpers `_fold_max`, `_fold_prod` and `_logsumexp` over trailing axes.
- Reverse mode runs stage by stage: a map's adjoints are its body's gradient graph
  on arrays; an einsum's adjoint for one operand is the einsum of the others with
  the stage's adjoint; a read's adjoint is summed over the stage axes it lacks and
  added into its bus's adjoint at the slice it read (the adjoint of a slice is a
  padded add). The adjoint of an unbatched input read whole by a contraction is
  summed over the batch by the einsum itself (`_unbatched`); an input's adjoint has
  its input's shape throughout, and any other is written in place only once it has
  its bus's full shape (`scatter`). The seeds are summed over the batch axes that
  the inputs lack first (`_seed`), so every adjoint has at most the inputs' batch.

Values agree with the written-out module bit for bit where the operations are the
same; sums (and the adjoints of wires read more than once) add their terms in
another order, so they agree to rounding.
"""

from __future__ import annotations

import re
from collections import Counter

from ..gates import ATOM, GATES
from ..graph import LEAVES, Graph, Origin
from ..indexed import Axis, Plan, Read, Stage, axes_shape, live_reads
from .numpy import ERRSTATE, HELPERS, RESERVED
from .plan import PlanModule, gradient_origin
from .python import LINE, _literal, _tuple

# einsum's names for a stage's axes, in order (`indexed.MAX_AXES` of them).
LETTERS = "ijklmnopqrstuvwxyzabcdefghIJKLMNOPQRSTUVWXYZABCDEFGH"
# An adjoint's value that this function made (not a seed's or an input's array, or a view).
_FRESH = re.compile(r"t\d+$|_contract\(|_sum_to\(|_fold_|_logsumexp_grad\(")
_IDENT = re.compile(r"(?<![.\w])[A-Za-z_]\w*")


def emit(p: Plan, version: str) -> str:
    return _Module(p, version).source()


class _Module(PlanModule):
    target = "numpy"

    def __init__(self, p: Plan, version: str):
        super().__init__(p, version, RESERVED)
        self.helpers: set[str] = {"_float", "_shaped", "_unbroadcast"}
        self.owned = {self.ident[s.name] for s in p.stages}  # names a function may `del`

    def adjoint(self, name: str) -> str:
        ident = super().adjoint(name)
        self.owned.add(ident)
        return ident

    def temporary(self) -> str:
        ident = super().temporary()
        self.owned.add(ident)
        return ident

    # -- lines ----------------------------------------------------------------------

    def line(self, text: str, origin: Origin | None) -> None:
        """A line of a function body, inside its `try` block."""
        comment = f"  # {origin.lines}" if origin else ""
        self.body.append((" " * 12 + text + comment, origin))

    def gates(self, graph: Graph, start: int, texts: dict[int, tuple[str, int]],
              leaf, result: str | None = None) -> None:
        """A line per gate of `graph.nodes[start:]`; `texts` gets each node's text (an
        identifier or a leaf's expression) and precedence; `leaf(node)` gives a leaf's.
        The node of the graph's first output is named `result`."""
        out = graph.outputs[0][1] if graph.outputs and result else None
        for i in range(start, len(graph.nodes)):
            node = graph.nodes[i]
            if node.op == "const":
                texts[i] = _literal(node.attr, "np")
                continue
            if node.op in LEAVES:
                texts[i] = leaf(node)
                continue
            template, _, operands, _ = self.syntax[node.op]
            if GATES[node.op].numpy.helper:
                self.helpers.add(GATES[node.op].numpy.helper)
            args = [t if p >= need else f"({t})"
                    for (t, p), need in zip((texts[a] for a in node.args), operands)]
            ident = result if i == out else self.temporary()
            self.line(f"{ident} = {template.format(*args)}", node.origin)
            texts[i] = (ident, ATOM)

    # -- reads ----------------------------------------------------------------------

    def sliced(self, read: Read) -> str:
        """The elements a read takes, its bus's axes in the bus's order (minus the
        constant ones)."""
        shape = self.p.shapes[read.name]
        parts = []
        for (v, a, c), n in zip(read.index, shape):
            if v is None:
                parts.append(str(c))
                continue
            axis = self.axes[v]
            first, last = a * axis.start + c, a * (axis.stop - 1) + c
            # The ends a slice leaves out: 0 and n going up, n - 1 and -1 going down.
            start, stop = (0, n) if a > 0 else (n - 1, -1)
            after = last + (1 if a > 0 else -1)
            text = f"{'' if first == start else first}:{'' if after == stop else after}"
            parts.append(text + (f":{a}" if a != 1 else ""))
        ident = self.ident[read.name]
        if all(part == ":" for part in parts):
            return ident
        return f"{ident}[..., {', '.join(parts)}]"  # every axis: `...` takes the batch's

    def aligned(self, read: Read, domain: tuple[Axis, ...]) -> tuple[str, int]:
        """A read as an array whose trailing axes are `domain`'s (size 1 where it lacks one)."""
        if read.name is None:
            axis = self.axes[read.index[0][0]]
            k = domain.index(axis)
            text = f"np.arange({axis.start}.0, {axis.stop}.0)"
            nones = ", None" * (len(domain) - k - 1)
            return (f"{text}[:{nones}]" if nones else text), ATOM
        text = self.sliced(read)
        order = [domain.index(self.axes[v]) for v in read.vars]
        if order != sorted(order):
            k = len(order)
            ranks = tuple(sorted(order).index(o) - k for o in order)
            text = f"np.moveaxis({text}, {tuple(range(-k, 0))}, {ranks})"
        if len(order) < len(domain):
            tail = [":" if d in order else "None" for d in range(len(domain))]
            text = f"{text}[..., {', '.join(tail)}]"
        return text, ATOM

    def letters(self, read: Read, domain: tuple[Axis, ...]) -> str:
        return "".join(LETTERS[domain.index(self.axes[v])] for v in read.vars)

    # -- forward ----------------------------------------------------------------------

    def forward_stage(self, s: Stage) -> None:
        self.axes = {a.var: a for a in s.domain}
        name = self.ident[s.name]
        if s.kind == "map":
            texts: dict[int, tuple[str, int]] = {}
            reads = s.reads
            self.gates(s.forward, 0, texts,
                       lambda node: self.aligned(reads[int(node.attr[1:-1])], s.axes), name)
            out = s.forward.outputs[0][1]
            used = {self.axes[v] for r in live_reads(s) for v in r.vars}
            constant = s.forward.nodes[out].op == "const"
            if texts[out][0] != name or used != set(s.axes) or constant:
                text = texts[out][0]
                if used != set(s.axes) or constant:
                    self.helpers.add("_full")
                    text = f"_full({text}, {axes_shape(s.axes)!r})"
                self.line(f"{name} = {text}", s.origin)
            self.values[s.name] = texts
            return
        k = len(s.over)
        if s.kind == "sum":
            operands = self.operands(s)
            spec = ",".join(x for x, _ in operands) + "->..." + LETTERS[:len(s.axes)]
            self.line(f"{name} = {_einsum(spec, [t for _, t in operands])}", s.origin)
            return
        term = self.term(s)
        fold = {"max": "_fold_max", "min": "_fold_max", "prod": "_fold_prod",
                "logsumexp": "_logsumexp"}[s.kind]
        self.helpers.add(fold)
        extra = ", False" if s.kind == "min" else ""
        self.line(f"{name} = {fold}({term}, {k}{extra})", s.origin)

    def operands(self, s: Stage) -> list[tuple[str, str]]:
        """A sum's einsum operands, (subscripts, text): its reads, then a vector of ones
        for each reduced axis no read has (the term counts once per value of it)."""
        domain = s.domain
        operands = [("..." + self.letters(r, domain), self.sliced(r)) for r in s.reads]
        used = {self.axes[v] for r in s.reads for v in r.vars}
        operands += [(LETTERS[domain.index(a)], f"np.ones({a.size})") for a in s.over
                     if a not in used]
        return operands

    def term(self, s: Stage) -> str:
        """The operand of a reduction other than a sum, spread over its whole domain."""
        text, _ = self.aligned(s.reads[0], s.domain)
        if set(s.reads[0].vars) != {a.var for a in s.domain}:
            self.helpers.add("_full")
            text = f"_full({text}, {axes_shape(s.domain)!r})"
        return text

    # -- reverse ------------------------------------------------------------------------

    def backward_stage(self, s: Stage) -> None:
        if s.name not in self.state:
            return  # no adjoint reached it
        self.axes = {a.var: a for a in s.domain}
        d = self.ident_of_adjoint[s.name]
        domain = s.domain
        if s.kind == "map":
            if s.backward is None:
                return
            texts = dict(self.values[s.name])
            reads = s.reads

            self.gates(s.backward, len(s.forward.nodes), texts, lambda node: (d, ATOM))
            for name, node in s.backward.grads:
                if s.backward.nodes[node].op == "const" and s.backward.nodes[node].attr == 0.0:
                    continue
                read = reads[int(name[1:-1])]
                self.scatter(read, texts[node][0], s.axes, s.origin)
            return
        if s.kind == "sum":
            operands = self.operands(s)
            out = "..." + LETTERS[:len(s.axes)]
            for m, r in enumerate(s.reads):
                if r.name not in self.reached:
                    continue
                others = [(d if j == m else t) for j, (_, t) in enumerate(operands)]
                letters = [(out if j == m else x) for j, (x, _) in enumerate(operands)]
                present = set("".join(letters))
                for v in r.vars if len(operands) > 1 else ():
                    # An axis only this operand has: its adjoint is spread along it.
                    letter = LETTERS[domain.index(self.axes[v])]
                    if letter not in present:
                        letters.append(letter)
                        others.append(f"np.ones({self.axes[v].size})")
                spec = ",".join(letters) + "->" + operands[m][0]
                unbatched = None
                if r.name in self.p.inputs and self.whole(r) and len(others) > 1:
                    unbatched = (self.ident[r.name], len(self.p.shapes[r.name]))
                    self.helpers.add("_unbatched")
                g = _einsum(spec, others, unbatched)
                self.scatter(r, g, tuple(self.axes[v] for v in r.vars), s.origin, ordered=True)
            return
        r = s.reads[0]
        if r.name not in self.reached:
            return
        grad = {"max": "_fold_max_grad", "min": "_fold_max_grad",
                "prod": "_fold_prod_grad", "logsumexp": "_logsumexp_grad"}[s.kind]
        self.helpers.add(grad)
        extra = ", False" if s.kind == "min" else ""
        self.scatter(r, f"{grad}({self.term(s)}, {len(s.over)}, {d}{extra})", domain, s.origin)

    def whole(self, r: Read) -> bool:
        """Whether a read takes its whole bus, each axis once, in order."""
        shape = self.p.shapes[r.name]
        if len(r.vars) != len(shape):
            return False
        for (v, a, c), n in zip(r.index, shape):
            axis = self.axes[v]
            if a != 1 or axis.start + c != 0 or axis.size != n:
                return False
        return list(r.vars) == sorted(r.vars, key=lambda v: list(self.axes).index(v))

    def scatter(self, r: Read, g: str, dims: tuple[Axis, ...], origin: Origin,
                ordered: bool = False) -> None:
        """Add `g`, the adjoint of read `r` over the axes `dims`, into its wire's adjoint.
        With `ordered`, `g`'s axes are already the read's, in the read's order.

        An input's adjoint has the input's shape: each contribution is summed over the
        batch axes the input lacks as it is added, so that a gradient a contraction has
        already summed over the batch (`_unbatched`) and per-point ones add up right.
        Any other adjoint is written in place (`+=`, or at the slice a read took) only
        once it is an array of this function's own with the full shape `_shape + bus` (a
        seed has the batch `_shape` too: `_seed`): a contribution may be a seed or a view
        of one, or broadcast (size 1 along an axis, or lacking batch axes that other
        inputs bring)."""
        if r.name is None or r.name not in self.reached:
            return
        at = gradient_origin(origin)
        if not ordered:
            axes = [self.axes[v] for v in r.vars]
            lacking = tuple(m - len(dims) for m, a in enumerate(dims) if a not in axes)
            if lacking:
                self.helpers.add("_sum_to")
                g = f"_sum_to({g}, {axes_shape(dims)!r}, {lacking if len(lacking) > 1 else lacking[0]})"
            kept = [a for a in dims if a in axes]
            order = [kept.index(a) for a in axes]
            if order != sorted(order):
                k = len(order)
                g = f"np.moveaxis({g}, {tuple(o - k for o in order)}, {tuple(range(-k, 0))})"
        target = r.name
        d = self.adjoint(target)
        self.ident_of_adjoint[target] = d
        shape = self.p.shapes[target]
        state = self.state.get(target)
        is_input = target in self.p.inputs
        full = f"{self.ident[target]}.shape" if is_input else f"_shape + {shape!r}"
        if self.whole(r) or not shape:
            # An array this function made for this adjoint, or another's (a seed, a view).
            made = f"made {g}" if _FRESH.match(g) else "shared"
            if is_input:
                g = f"_unbroadcast({g}, {full})"
            if state is None:
                self.line(f"{d} = {g}", at)
                self.state[target] = made
            elif state == "own":
                self.line(f"{d} += {g}", at)
            else:
                self.line(f"{d} = {d} + {g}", at)
                self.state[target] = "own" if is_input else f"made {d}"
            return
        if state != "own":
            self.line(f"{d} = np.zeros({full})" if state is None else
                      f"{d} = {d} + np.zeros({full})", at)
        self.state[target] = "own"
        view = self.sliced(r).replace(self.ident[target], d, 1)
        if is_input:
            self.helpers.add("_add_into")
            self.line(f"_add_into({view}, {g})", at)
        else:
            self.line(f"{view} += {g}", at)

    # -- functions ------------------------------------------------------------------------

    def function(self, name: str, backward: bool) -> None:
        p = self.p
        self.temps = 0
        self.body: list[tuple[str, Origin | None]] = []
        self.axes: dict[str, Axis] = {}
        self.values: dict[str, dict] = {}
        params = [self.ident[n] for n in p.inputs]
        outs = list(p.outputs)
        seeds = [self.adjoint(o) for o in outs]
        head = [f"{name}({', '.join(params + ([s + '=1.0' for s in seeds] if backward else []))})"]
        values_doc = f"({', '.join(outs)})" if len(outs) > 1 else outs[0]
        if backward:
            seed_sum = " + ".join(f"sum({s}*{o})" if p.shapes[o] else f"{s}*{o}"
                                  for s, o in zip(seeds, outs))
            doc = f"Return ({values_doc}, grads), grads[k] = d({seed_sum})/d(WRT[k])."
        else:
            doc = f"Return {values_doc}."
        lines = [f"def {head[0]}:", f'    """{doc}"""']
        if len(params) == 1:
            lines.append(f"    {params[0]} = _float({params[0]})")
        else:
            lines.append(f"    {', '.join(params)} = map(_float, ({', '.join(params)}))")
        batches = []
        for n in p.inputs:
            if p.shapes[n]:
                self.helpers.add("_batch")
                batches.append(f"_batch({self.ident[n]}, {p.shapes[n]!r})")
            else:
                batches.append(f"{self.ident[n]}.shape")
        lines.append(f"    _shape = _batch_shape({', '.join(batches)})")
        self.state: dict[str, str] = {}
        self.ident_of_adjoint: dict[str, str] = {}
        if backward:
            for o, seed in zip(outs, seeds):
                if p.shapes[o]:
                    self.helpers.add("_bus_seeded")
                    lines.append(f"    {seed} = _bus_seeded({seed}, {p.shapes[o]!r}, _shape)")
                else:
                    lines.append(f"    {seed} = _seed({seed}, _shape)")
                self.state[o] = "shared"
                self.ident_of_adjoint[o] = seed
        for s in p.stages:
            self.forward_stage(s)
        if backward:
            self.reached = set(p.wrt) | {s.name for s in p.stages if s.differentiated}
            for s in reversed(p.stages):
                if s.differentiated:
                    self.backward_stage(s)
        results = []
        for o in outs:
            text = self.ident[o]
            copy = ", True" if o in p.inputs or self.aliases(o) else ""
            results.append(f"_shaped({text}, _shape + {p.shapes[o]!r}{copy})" if p.shapes[o]
                           else f"_shaped({text}, _shape{copy})")
        value = ", ".join(results) if len(results) == 1 else _tuple(results)
        if backward:
            grads = []
            sources = Counter(self.state.get(w) for w in p.wrt)
            for w in p.wrt:
                d = self.ident_of_adjoint.get(w)
                if d is None:
                    grads.append(f"_unbroadcast(0.0, {self.ident[w]}.shape)")
                    continue
                # It has the input's shape (`scatter`): a copy where the array may be the
                # caller's or another gradient's.
                state = self.state.get(w)
                if state == "shared" or (state != "own" and sources[state] > 1):
                    self.line(f"{d} = _unbroadcast({d}, {self.ident[w]}.shape, True)", None)
                grads.append(d)
            ret = f"{value}, {_tuple(grads) if grads else '()'}"
            if len(f"    return {ret}") > LINE:
                ret = f"{value}, {_tuple(grads, '    ') if grads else '()'}"
        else:
            ret = value
        lines += ["    try:", f"        with {ERRSTATE}:"]
        for text, origin in self.released(self.body, {*results, *grads} if backward else results):
            lines.append(text)
            if origin is not None:
                self.where.append((len(self.lines) + len(lines) + 2, origin))
        lines += ["    except (ArithmeticError, ValueError) as exc:",
                  "        raise _located(exc) from None",
                  f"    return {ret}"]
        self.lines += ["", ""] + lines

    def released(self, body: list[tuple[str, Origin | None]], returned
                 ) -> list[tuple[str, Origin | None]]:
        """`body` with a `del` after the last use of each array no result needs, as
        hand-written NumPy frees its temporaries: fresh allocations, not arithmetic,
        dominate large buses. Only the function's own names are deleted: temporaries,
        lifted stages and adjoints that are not results."""
        keep = {*self.p.inputs, *self.p.outputs, *(self.adjoint(o) for o in self.p.outputs),
                *(self.adjoint(w) for w in self.p.wrt)}
        keep |= {self.ident[n] for n in keep if n in self.ident}
        keep |= set(_IDENT.findall(" ".join(returned)))
        last: dict[str, int] = {}
        for k, (text, _) in enumerate(body):
            for name in _IDENT.findall(text.split("#")[0]):
                last[name] = k
        dead: dict[int, list[str]] = {}
        own = self.owned
        for name, k in last.items():
            if name in own and name not in keep:
                dead.setdefault(k, []).append(name)
        out = []
        for k, line in enumerate(body):
            out.append(line)
            if k in dead:
                out.append((" " * 12 + f"del {', '.join(sorted(dead[k]))}", None))
        return out

    def aliases(self, o: str) -> bool:
        """Whether output `o`'s array may be another's: a map whose body is a read."""
        for s in self.p.stages:
            if s.name == o and s.kind == "map":
                out = s.forward.outputs[0][1]
                return s.forward.nodes[out].op == "input"
        return False

    # -- the module -------------------------------------------------------------------------

    def default(self, value, shape: tuple[int, ...]) -> str:
        """A default as a literal: a bus of one repeated number as `(v,) * n` nested."""
        if isinstance(value, tuple):
            return repr(value)
        text = _literal(float(value), "np")[0]
        for n in reversed(shape):
            text = f"({text},) * {n}"
        return text

    def source(self) -> str:
        self.function("forward", False)
        self.function("backward", True)
        head = [f"# Generated by circuitc {self.version} from {self.shown} for NumPy; do not edit.",
                '"""A circuit compiled by circuitc for NumPy: forward(inputs), backward(inputs, seeds)."""',
                "", "import numpy as np", "", *self.constants()]
        tail = []
        code = "\n".join(self.lines)
        self.helpers |= {h for h in HELPERS if f"{h}(" in code}
        while True:  # and the helpers they call
            more = {h for h in HELPERS for used in self.helpers if h != used
                    and f"{h}(" in HELPERS[used]} - self.helpers
            if not more:
                break
            self.helpers |= more
        for helper in sorted(self.helpers):
            tail += ["", "", HELPERS[helper]]
        return "\n".join(head + self.lines + tail + self.closing(len(head))) + "\n"


def _einsum(spec: str, operands: list[str], unbatched: tuple[str, int] | None = None) -> str:
    """The code of `np.einsum(spec, *operands)`: a sum over trailing axes of one operand
    as `np.sum`, or its spread as `None` axes; two operands by `_contract` (a matrix
    product); more by `np.einsum` with its contraction order optimized. With
    `unbatched` (an input and its rank), the result keeps the batch axes only if that
    input has them (`_unbatched`)."""
    inputs, out = spec.split("->")
    letters = [x.replace("...", "") for x in inputs.split(",")]
    result = out.replace("...", "")
    if len(operands) == 1 and unbatched is None:
        (have,) = letters
        kept = [c for c in have if c in result]
        if kept == [c for c in result if c in have] and set(result) <= set(have):
            axes = tuple(k - len(have) for k, c in enumerate(have) if c not in result)
            if not axes:
                return operands[0]
            return f"{operands[0]}.sum(axis={axes if len(axes) > 1 else axes[0]})"
        if set(have) <= set(result) and [c for c in result if c in have] == list(have):
            spread = ", ".join(":" if c in have else "None" for c in result)
            return f"{operands[0]}[..., {spread}]"
    text = repr(spec) if unbatched is None else f"_unbatched({spec!r}, {unbatched[0]}, {unbatched[1]})"
    if len(operands) == 2:
        return f"_contract({text}, {', '.join(operands)})"
    return f"np.einsum({text}, {', '.join(operands)}, optimize=True)"
