"""Whole-bus plans (`indexed.ir.Plan`) -> a NumPy module that computes each bus at once.

The module keeps the numpy target's contract (`emit.numpy`): names, signatures,
batch axes leading and bus axes trailing, gradients summed to their inputs' shapes,
fresh result arrays, domain errors raised under `np.errstate` with the gate's `.circ`
position. What changes is the code: a stage is a few array operations on whole buses
instead of a line per element. The printer decides nothing about derivatives: reverse
and forward mode are stages of the plans it is given (`emit.frame.functions`).

- In a map over a domain, every array's trailing axes are the domain's variables in
  order, of size 1 where the value does not vary along one: a read is a slice of its
  buffer (`x[..., 1:]`, `x[..., ::2]`, `W[..., 3, :]`), its axes moved into the
  domain's order, with `None` where the read lacks a variable. A body's gates are a
  line each.
- A `+=` write whose value is a product of reads is a contraction, `_contract` (one
  matrix product) or `np.einsum` of the reads' slices; any other `+=` write sums its
  value over the variables its target lacks. The adjoint of an input read whole,
  which the module sums over the batch in the end, is summed over it by the
  contraction itself when the input has no batch (`_unbatched`).
- A write adds into its buffer's slice (`d_x[..., 1:] += ...`: the adjoint of a slice
  is a padded add) or, when it covers the whole buffer, binds or adds to it. An array
  is updated in place only where this function made it with the buffer's full shape,
  batch included; otherwise a sum makes a new one. Each array is deleted after its
  last use, as hand-written NumPy frees its temporaries.
- Folds are the helpers `_fold_max`, `_fold_prod`, `_logsumexp`, `_prod_except` and
  `_prod_except_tangent` over trailing axes.

Values agree with the written-out module bit for bit where the operations are the
same; sums (and the adjoints of wires read more than once) add their terms in
another order, so they agree to rounding.
"""

from __future__ import annotations

import ast
import math
from dataclasses import replace

from ..gates import ATOM, GATES
from ..graph import Origin, needed
from ..guards import written_order
from ..indexed.ir import (
    Access,
    Fold,
    Map,
    Plan,
    axes_shape,
    check,
    is_residual,
    node_vars,
    pruned,
)
from ..indexed.passes import fused, with_residuals
from . import hessian_helpers
from .frame import Frame, Function, functions
from .numpy import ERRSTATE, HELPER_SOURCES, QUIET, RESERVED
from .text import LINE, dtype_line, literal, syntax_table, tuple_display

# einsum's names for a stage's variables, in domain order.
LETTERS = "ijklmnopqrstuvwxyzabcdefghIJKLMNOPQRSTUVWXYZABCDEFGH"
FOLD_HELPERS = {"max": "_fold_max", "min": "_fold_max", "prod": "_fold_prod",
                "logsumexp": "_logsumexp", "prod_except": "_prod_except",
                "prod_except_tangent": "_prod_except_tangent"}


# The helpers a module may carry: `numpy_helpers.py`'s, and the colouring of a Hessian's
# columns, which needs no NumPy (`hessian_helpers`).
SOURCES = {**HELPER_SOURCES, "_colouring": hessian_helpers.HELPER_SOURCES["_colouring"]}


def _calls() -> dict[str, set[str]]:
    """Each helper and the helpers it calls, from their syntax trees."""
    calls = {}
    for name, source in SOURCES.items():
        called = {n.func.id for n in ast.walk(ast.parse(source))
                  if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
        calls[name] = called & set(SOURCES) - {name}
    return calls


CALLS = _calls()


def emit(plan: Plan, version: str, jvp: bool = False, hessian: bool = False,
         dtype: str = "float64") -> str:
    """The NumPy module of `plan`, computing in `dtype` ("float64" or "float32")."""
    return WholeBusWriter(plan, version, dtype).source(functions(plan, jvp, hessian))


class _State:
    """What the function being written knows of a buffer's array: whether it made it
    (and no other name holds it), and the batch it has whole, with the buffer's whole
    shape (`_shape` or `_along`, the batch of an `hvp`'s tangents; None where unknown):
    any contribution can be added into such an array in place."""

    def __init__(self, owned: bool, full: str | None, root: str):
        self.owned, self.full, self.root = owned, full, root


class WholeBusWriter(Frame):
    """Writes one NumPy module from a whole-bus plan (see the module docstring)."""

    target = "numpy"

    def __init__(self, plan: Plan, version: str, dtype: str = "float64"):
        super().__init__(plan, version, RESERVED)
        self.dtype = dtype
        self.syntax = syntax_table(self.target, dtype)
        self.helpers: set[str] = {"_float", "_shaped", "_unbroadcast", "_batch_shape"}

    # -- lines ------------------------------------------------------------------------

    def line(self, text: str, origin: Origin | None) -> None:
        """A line of a function body, inside its `try` block, after the `del` of the arrays
        released since the last line."""
        self.flush()
        comment = f"  # {origin.lines}" if origin else ""
        self.body.append((" " * 12 + text + comment, origin))

    def release(self, names) -> None:
        """`del` the arrays `names` (with the others released before the next line)."""
        self.released |= set(names)

    def flush(self) -> None:
        if self.released:
            self.body.append((" " * 12 + f"del {', '.join(sorted(self.released))}", None))
            self.released = set()

    def helper(self, name: str) -> str:
        self.helpers.add(name)
        return name

    # -- reads --------------------------------------------------------------------------

    def sliced(self, read: Access) -> str:
        """The elements a read takes, its buffer's axes in the buffer's order (minus the
        constant ones)."""
        shape = self.f.plan.shape(read.name)
        parts = []
        for (v, a, c), n in zip(read.index, shape):
            if v is None:
                parts.append(str(c))
                continue
            axis = self.axes[v]
            first, last = a * axis.start + c, a * (axis.stop - 1) + c
            if a > 0:
                text = f"{first or ''}:{'' if last + 1 == n else last + 1}"
            else:  # backwards: an empty stop is the first element, an empty start the last
                text = f"{first}:{'' if last == 0 else last - 1}"
            parts.append(text + (f":{a}" if a != 1 else ""))
        ident = self.name(read.name)
        if all(part == ":" for part in parts):
            return ident
        return f"{ident}[..., {', '.join(parts)}]"  # every axis: `...` takes the batch's

    def aligned(self, read: Access) -> str:
        """A read as an array whose trailing axes are the domain's (size 1 where it lacks one)."""
        domain = self.domain
        if read.name is None:  # an axis per domain variable, as every value has
            k = domain.index(self.axes[read.index[0][0]])
            if len(domain) == 1:
                return self.arange(read)
            return f"{self.arange(read)}[{', '.join(':' if d == k else 'None' for d in range(len(domain)))}]"
        text = self.sliced(read)
        order = [domain.index(self.axes[v]) for v in read.vars]
        if order != sorted(order):
            k = len(order)
            ranks = tuple(sorted(order).index(o) - k for o in order)
            text = f"np.moveaxis({text}, {tuple(range(-k, 0))}, {ranks})"
        if len(order) < len(domain):
            tail = [":" if d in order else "None" for d in range(len(domain))]
            text = f"{text}[..., {', '.join(tail)}]"
        return text

    def arange(self, read: Access) -> str:
        """The values of an index variable, as a vector."""
        axis = self.axes[read.index[0][0]]
        return f"np.arange({axis.start}.0, {axis.stop}.0, dtype=DTYPE)"

    def letters(self, read: Access) -> str:
        if read.name is None:
            return LETTERS[self.domain.index(self.axes[read.index[0][0]])]
        return "".join(LETTERS[self.domain.index(self.axes[v])] for v in read.vars)

    def whole(self, access: Access) -> bool:
        """Whether an access takes its whole buffer, each axis once, in domain order."""
        shape = self.f.plan.shape(access.name)
        if len(access.vars) != len(shape):
            return False
        for (v, a, c), n in zip(access.index, shape):
            axis = self.axes[v]
            if a != 1 or axis.start + c != 0 or axis.size != n:
                return False
        order = [self.domain.index(self.axes[v]) for v in access.vars]
        return order == sorted(order)

    # -- stages ---------------------------------------------------------------------------

    def stage(self, s) -> None:
        self.domain = s.domain
        self.axes = {a.var: a for a in s.domain}
        if isinstance(s, Map):
            self.map(s)
        else:
            self.fold(s)

    def map(self, m: Map) -> None:
        varies = node_vars(m)
        self.bound: dict[int, str] = {}  # a body node -> the buffer its array was bound to
        nodes = m.body.nodes
        full = self.depends_on_full(m)
        writes = list(zip((n for _, n in m.body.outputs), m.writes))
        contracted = {j: self.factors(m, node, w) for j, (node, w) in enumerate(writes)}
        roots = [node for j, (node, _) in enumerate(writes) if contracted[j] is None]
        # A define whose value is a gate used nowhere else is named as its target.
        uses = [0] * len(nodes)
        for node in nodes:
            for a in node.args:
                uses[a] += 1
        for node in roots:
            uses[node] += 1
        named = {node: self.name(w.target.name) for node, w in writes
                 if not w.add and uses[node] == 1 and nodes[node].args
                 and varies[node] == frozenset(a.var for a in m.domain)}
        texts = self.gates(m, roots, named)
        for j, (node, w) in enumerate(writes):
            if contracted[j] is not None:
                self.contract(m, w, *contracted[j], full[node])
            elif w.add:
                self.add(m, w, node, texts[node], varies[node], full[node])
            else:
                self.define(m, w, node, texts[node], varies[node], named.get(node))

    def gates(self, m: Map, roots: list[int], named: dict[int, str]) -> dict[int, tuple[str, int]]:
        """A line per gate `roots` need; each node's text and precedence. Temporaries are
        deleted after their last use."""
        nodes = m.body.nodes
        alive = needed(nodes, roots)
        last = {}
        for i, node in enumerate(nodes):
            if alive[i]:
                for a in node.args:
                    last[a] = i
        texts: dict[int, tuple[str, int]] = {}
        temporaries = {}
        # What only a branch of a `where` needs is computed for every element with errors
        # ignored, and masked (`NumpyWriter.blocks`). A residual another map reads is no
        # root: it is read only where its branch is taken.
        guard, _ = written_order(nodes, [n for (_, n), w in zip(m.body.outputs, m.writes)
                                         if not is_residual(w.target.name)], scheduled=False)
        for i, node in enumerate(nodes):
            if not alive[i]:
                continue
            if node.op == "const":
                texts[i] = literal(node.attr, "np")
                continue
            if node.op == "input":
                texts[i] = self.aligned(m.reads[int(node.attr[1:-1])]), ATOM
                continue
            template, _, operands, _ = self.syntax[node.op]
            if GATES[node.op].numpy.helper:
                self.helper(GATES[node.op].numpy.helper)
            args = [t if p >= need else f"({t})"
                    for (t, p), need in zip((texts[a] for a in node.args), operands)]
            ident = named.get(i) or self.temporary()
            quiet = guard is not None and bool(guard[i])
            if quiet:
                self.line(f"with {QUIET}:", None)
            self.line(f"{'    ' * quiet}{ident} = {template.format(*args)}", node.origin)
            texts[i] = (ident, ATOM)
            if i not in named:
                temporaries[i] = ident
            dead = [temporaries.pop(a) for a in dict.fromkeys(node.args)
                    if last.get(a) == i and a in temporaries and a not in roots]
            if dead:
                self.release(dead)
        self.dead_after_stage = [t for i, t in temporaries.items()]
        return texts

    def depends_on_full(self, m: Map) -> list[frozenset[str]]:
        """For each body node, the batches (`_shape`, `_along`) it has whole because it
        depends on a read of an array that has (a seed, a direction, or one made of them)."""
        out: list[frozenset[str]] = []
        for node in m.body.nodes:
            if node.op == "input":
                read = m.reads[int(node.attr[1:-1])]
                full = read.name is not None and self.state_of(read.name).full
                out.append(frozenset([full] if full else ()))
            else:
                out.append(frozenset().union(*(out[a] for a in node.args)))
        return out

    def batch_of(self, name: str) -> str:
        """The batch a buffer's array has at most (`batches`): an `hvp`'s tangent has the
        directions' too."""
        tangent = self.f.plan.buffers[name].derivative == "tangent"
        return "_along" if self.f.name == "hvp" and tangent else "_shape"

    def factors(self, m: Map, node: int, w) -> tuple[float, list[int]] | None:
        """A `+=` write's value as (a constant, the body's input nodes it multiplies), where it
        is such a product and a contraction pays: it sums over a variable, or it is the
        adjoint of an input read whole (which the contraction sums over the batch)."""
        if not w.add:
            return None
        nodes = m.body.nodes
        constant, leaves, stack = 1.0, [], [node]
        while stack:
            i = stack.pop()
            if nodes[i].op == "mul":
                stack += nodes[i].args
            elif nodes[i].op == "input":
                leaves.append(i)
            elif nodes[i].op == "const":
                constant *= nodes[i].attr
            else:
                return None
        if not leaves:
            return None
        have = {v for i in leaves for v in m.reads[int(nodes[i].attr[1:-1])].vars}
        target = set(w.target.vars)
        if not target <= have:
            return None
        if have - target or self.batch_summed(w.target) and len(leaves) > 1:
            return constant, sorted(leaves)
        return None

    def batch_summed(self, target: Access) -> bool:
        """Whether `target` is an input's adjoint written whole: summed over the batch where
        the input has none."""
        return self.gradient_of(target.name) is not None and self.whole(target)

    def contract(self, m: Map, w, constant: float, leaves: list[int], full) -> None:
        """`target += product of reads`, summed over the variables the target lacks."""
        reads = [m.reads[int(m.body.nodes[i].attr[1:-1])] for i in leaves]
        operands = [("..." + self.letters(r), self.sliced(r)) if r.name is not None
                    else (self.letters(r), self.arange(r)) for r in reads]
        out = "".join(LETTERS[self.domain.index(self.axes[v])] for v in w.target.vars)
        spec = ",".join(x for x, _ in operands) + "->..." + out
        unbatched = None
        if self.batch_summed(w.target) and len(operands) > 1:
            name = self.gradient_of(w.target.name)
            unbatched = (self.name(name), len(self.f.plan.shape(name)))
            self.helper("_unbatched")
        g = _einsum(spec, [t for _, t in operands], unbatched)
        conditional = False
        if g.startswith("_contract("):
            self.helper("_contract")
            planned = self.planned(reads, operands, out, unbatched)
            if planned is not None:
                conditional = planned[1] != "True"
                g = f"{planned[0]} if {planned[1]} else {g}" if conditional else planned[0]
        have = {c for x, _ in operands for c in x}
        constant *= math.prod(a.size for k, a in enumerate(self.domain)
                              if LETTERS[k] not in have and a.var not in w.target.vars)
        if constant != 1.0:
            g = f"{literal(constant, 'np')[0]} * {f'({g})' if conditional else g}"
        elif conditional and self.contributions[w.target.name] > 1:
            g = f"({g})"  # an operand of `+`
        self.accumulate(w.target, g, m.origin, fresh=True, covers=True, full=full)

    def planned(self, reads, operands, out: str, unbatched) -> tuple[str, str] | None:
        """A two-operand contraction as one matrix product planned now, and the condition it
        holds under (a weight without batch axes; for a weight's gradient, two operands
        with one batch), for the usual shapes of a layer: `x @ W.T`, `d @ W`, `h @ w`, and
        a weight's gradient summed over the batch, `d.reshape(-1, n).T @ x.reshape(-1, m)`
        (or `(x.reshape(-1, m).T @ d.reshape(-1, n)).T` where n < m: faster by a factor of
        2 to 6 at 10,000 points, measured with OpenBLAS).
        None where `_contract` must plan at run time."""
        (la, a), (lb, b) = ((x.replace("...", ""), t) for x, t in operands)
        if any(r.name is None for r in reads):
            return None
        shared = set(la) & set(lb)
        if unbatched is not None and not shared:  # a weight's gradient: summed over the batch
            if out not in (la + lb, lb + la) or len(la) > 1 or len(lb) > 1 or not out:
                return None
            (l1, t1), (l2, t2) = ((la, a), (lb, b)) if out == la + lb else ((lb, b), (la, a))
            same = f"{t1}.shape{'[:-1]' if l1 else ''} == {t2}.shape{'[:-1]' if l2 else ''}"
            condition = f"{unbatched[0]}.ndim == {unbatched[1]} and {same}"
            n1, n2 = (self.axes[self.var_of(x)].size if x else 0 for x in (l1, l2))
            if not l1:  # a number per point times a vector per point
                return f"{t1}.reshape({t1}.size) @ {_rows(t2, n2)}", condition
            if not l2:
                return f"{t2}.reshape({t2}.size) @ {_rows(t1, n1)}", condition
            if n1 < n2:  # BLAS is several times faster making the longer side the rows
                return f"({_rows(t2, n2)}.T @ {_rows(t1, n1)}).T", condition
            return f"{_rows(t1, n1)}.T @ {_rows(t2, n2)}", condition
        if la == lb and la.startswith(out) and la != out:  # products summed over trailing axes
            k = len(la) - len(out)
            axes = tuple(range(-k, 0))
            return f"({a} * {b}).sum(axis={axes if k > 1 else -1})", "True"
        if len(shared) != 1 or shared & set(out):
            return None
        # The weight: the operand that is an input read whole, the one with more letters.
        order = sorted(((len(x), k) for k, x in enumerate((la, lb))
                        if self.is_input_whole(reads[k])), reverse=True)
        if not order:
            return None
        k = order[0][1]
        (lm, m), (lv, v) = ((la, a), (lb, b))[::1 if k == 0 else -1]
        (c,) = shared
        free_v, free_m = lv.replace(c, ""), lm.replace(c, "")
        if lv != free_v + c or out != free_v + free_m or len(lm) > 2 or len(free_v) > 1:
            return None
        weight = m if lm == c + free_m else f"{m}.T"
        condition = f"{m}.ndim == {len(lm)}"
        if unbatched is not None and unbatched[0] == m:
            return None  # the weight is the input whose gradient this is: no rank suits both
        if unbatched is not None:  # a batched input's gradient keeps the batch
            condition += f" and {unbatched[0]}.ndim > {unbatched[1]}"
        return f"{v} @ {weight}", condition

    def var_of(self, letter: str) -> str:
        return self.domain[LETTERS.index(letter)].var

    def is_input_whole(self, read: Access) -> bool:
        return read.name in self.f.plan.inputs and self.whole(read)

    def add(self, m: Map, w, node: int, text: tuple[str, int], varies, full) -> None:
        """`target += value`, summed over the variables the target lacks."""
        g = text[0]
        domain = self.domain
        lacking = [k for k, a in enumerate(domain) if a.var not in w.target.vars]
        factor = math.prod(domain[k].size for k in lacking if domain[k].var not in varies)
        op = m.body.nodes[node].op
        if op == "const":
            g = literal(m.body.nodes[node].attr * factor, "np")[0]
            self.accumulate(w.target, g, m.origin, covers=False, full=frozenset())
            return
        if lacking:
            axes = tuple(k - len(domain) for k in lacking)
            g = f"{g}.sum(axis={axes if len(axes) > 1 else axes[0]})"
        if factor != 1:
            g = f"{factor}.0 * {g}"
        kept = [a.var for a in domain if a.var in w.target.vars]
        g = self.ordered(g, kept, w.target.vars)
        fresh = bool(lacking) or op != "input"
        root = None if fresh else self.state_of(m.reads[int(m.body.nodes[node].attr[1:-1])].name).root
        itself = not lacking and factor == 1 and kept == list(w.target.vars)  # `g` is the node's
        if itself and fresh and node in self.bound:  # one array, two buffers: neither owns it
            fresh, root = False, self.bound[node]
            self.states[root].owned = False
        if self.accumulate(w.target, g, m.origin, fresh, set(w.target.vars) <= varies, full,
                           root) and itself:
            self.bound.setdefault(node, w.target.name)

    def ordered(self, g: str, have: list[str], want: tuple[str, ...]) -> str:
        """`g`, whose trailing axes are the variables `have`, with its axes in `want`'s order."""
        if list(want) == have:
            return g
        k = len(have)
        return f"np.moveaxis({g}, {tuple(have.index(v) - k for v in want)}, {tuple(range(-k, 0))})"

    def define(self, m: Map, w, node: int, text: tuple[str, int], varies, named) -> None:
        """`target = value`: over the domain, or over the variables it varies along."""
        target = w.target
        ident = self.name(target.name)
        shape = self.f.plan.shape(target.name)
        op = m.body.nodes[node].op
        if node in self.bound:  # one array, two buffers: neither owns it
            self.line(f"{ident} = {self.name(self.bound[node])}", m.origin)
            self.states[self.bound[node]].owned = False
            self.states[target.name] = _State(False, None, self.bound[node])
            return
        if named:
            self.states[target.name] = _State(True, None, target.name)
        elif len(target.vars) < len(m.domain) and op != "const":
            index = ", ".join(":" if a.var in target.vars else "0" for a in m.domain)
            self.line(f"{ident} = {text[0]}[..., {index}]", m.origin)
            self.states[target.name] = _State(op != "input", None, target.name)
        elif op == "const" or varies != frozenset(target.vars):
            self.line(f"{ident} = {self.helper('_full')}({text[0]}, {shape!r})", m.origin)
            self.states[target.name] = _State(False, None, target.name)
        elif op == "input" and m.reads[int(m.body.nodes[node].attr[1:-1])].name is not None:
            read = m.reads[int(m.body.nodes[node].attr[1:-1])]
            self.line(f"{ident} = {text[0]}", m.origin)
            self.states[target.name] = _State(False, None, self.state_of(read.name).root)
        else:
            self.line(f"{ident} = {text[0]}", m.origin)
            self.states[target.name] = _State(True, None, target.name)
        self.bound.setdefault(node, target.name)

    def accumulate(self, target: Access, g: str, origin: Origin, fresh: bool = False,
                   covers: bool = True, full=frozenset(), root: str | None = None) -> bool:
        """Add `g`, whose trailing axes are `target`'s variables in its order, into the
        buffer at `target`. `fresh`: `g` is an array of its own (else a view of `root`'s);
        `covers`: it varies along every variable (else it has size 1 along some, or is a
        number); `full`: the batches it has whole. True where the buffer is now `g` itself.

        An array is written in place (`+=`, or at the slice a read took) only once it is
        one of this function's own with the buffer's whole shape, batch included. An
        input's adjoint has the input's shape: each contribution is summed to it as it is
        added (`_unbroadcast`), so that one a contraction summed over the batch already
        (`_unbatched`) and per-point ones add up; an adjoint with one contribution, which
        covers it, is summed once, as it is returned."""
        name = target.name
        ident = self.name(name)
        shape = self.f.plan.shape(name)
        state = self.states.get(name) or (self.state_of(name) if self.f.plan.buffers[name].role
                                          == "seed" else None)
        whole = self.whole(target) or not shape
        owner = self.gradient_of(name) if self.contributions[name] > 1 or not whole else None
        batch = f"{self.name(owner)}.shape" if owner else self.batch_of(name)
        full = batch if owner or batch in full else None
        if whole:
            if owner:
                g = f"{self.helper('_unbroadcast')}({g}, {batch})"
                covers = True
            if state is None and covers:
                self.line(f"{ident} = {g}", origin)
                self.states[name] = _State(fresh, full if fresh else None, name if fresh else root)
                return True
            if state is None:
                self.line(f"{ident} = {self.helper('_full')}({g}, {shape!r})", origin)
                self.states[name] = _State(False, None, name)
            elif state.owned and state.full == batch:
                self.line(f"{ident} += {g}", origin)
            else:
                self.line(f"{ident} = {ident} + {g}", origin)
                self.states[name] = _State(True, full or state.full, name)
            return False
        zeros = batch if owner else f"{batch} + {shape!r}"
        if state is None:
            self.line(f"{ident} = np.zeros({zeros}, DTYPE)", origin)
        elif not (state.owned and state.full == batch):
            self.line(f"{ident} = {ident} + np.zeros({zeros}, DTYPE)", origin)
        self.states[name] = _State(True, batch, name)
        view = f"{ident}{self.sliced(target)[len(ident):]}"
        if owner:
            self.line(f"{self.helper('_add_into')}({view}, {g})", origin)
        else:
            self.line(f"{view} += {g}", origin)
        return False

    def gradient_of(self, name: str) -> str | None:
        """The input whose adjoint buffer `name` is, if it is one."""
        b = self.f.plan.buffers[name]
        return b.of if b.derivative == "adjoint" and b.of in self.f.plan.inputs else None

    def state_of(self, name: str) -> _State:
        state = self.states.get(name)
        if state is None:  # an input's, a seed's or a direction's: the caller's
            role = self.f.plan.buffers[name].role
            state = _State(False, self.batch_of(name) if role in ("seed", "direction") else None,
                           name)
        return state

    def fold(self, f: Fold) -> None:
        k = f.over
        terms = []
        for term in f.terms:
            text = self.aligned(term)
            if set(term.vars) != {a.var for a in f.domain}:
                text = f"{self.helper('_full')}({text}, {axes_shape(f.domain)!r})"
            terms.append(text)
        helper = self.helper(FOLD_HELPERS[f.kind])
        extra = ", False" if f.kind == "min" else ""
        ident = self.name(f.target.name)
        self.line(f"{ident} = {helper}({', '.join(terms)}, {k}{extra})", f.origin)
        self.states[f.target.name] = _State(True, None, f.target.name)

    # -- functions ------------------------------------------------------------------------

    def function(self, f: Function) -> None:
        roots = [*f.values, *(b for _, b in f.grads), *(b for _, b in f.tangents)]
        p = with_residuals(fused(pruned(f.plan, roots)))
        check(p)
        f = self.f = replace(f, plan=p)
        self.temps = 0
        self.body: list[tuple[str, Origin | None]] = []
        self.states: dict[str, _State] = {}
        self.released: set[str] = set()
        lines = self.head(f)
        params = [self.name(b) for b in f.params]
        if len(params) == 1:
            lines.append(f"    {params[0]} = _float({params[0]})")
        else:
            lines.append(f"    {', '.join(params)} = map(_float, ({', '.join(params)}))")
        lines += self.batches(f)
        stages = p.stages
        self.contributions = {}
        for s in stages:
            for w in s.writes:
                self.contributions[w.target.name] = self.contributions.get(w.target.name, 0) + 1
        last = {}
        for k, s in enumerate(stages):
            for a in s.reads:
                if a.name is not None:
                    last[a.name] = k
        keep = set(roots) | set(f.params)
        for k, s in enumerate(stages):
            self.dead_after_stage = []
            self.stage(s)
            dead = [self.name(b) for b, j in last.items() if j == k and b not in keep]
            dead += self.dead_after_stage
            if dead:
                self.release(dead)
        results = self.results(f)
        lines += ["    try:", f"        with {ERRSTATE}:"]
        for text, origin in self.body:
            lines.append(text)
            if origin is not None:
                self.where.append((len(self.lines) + len(lines) + 2, origin))
        lines += ["    except (ArithmeticError, ValueError) as exc:",
                  "        raise _located(exc) from None",
                  f"    return {results}"]
        self.lines += ["", ""] + lines

    def batches(self, f: Function) -> list[str]:
        """The lines finding the batch: `_shape`, the inputs' (and in `jvp` the directions'
        too, the value and its tangents alike), over which seeds and directions are spread
        (`_seed`: a seed's axes its output lacks are summed). In `hvp`, whose value and
        gradient are `backward`'s, directions are spread over `_along`, with their own batch
        axes too (the tangents have it), which `_directions` names: a batch of directions at
        a point gives a product per direction."""
        p = f.plan

        def batch(b: str) -> str:
            shape = p.shape(b)
            return f"{self.helper('_batch')}({self.name(b)}, {shape!r})" if shape else \
                f"{self.name(b)}.shape"

        moving = [b for b in f.params if p.buffers[b].role == "direction"]
        points = [b for b in f.params if p.buffers[b].role == "input"]
        seeds = [b for b in f.params if p.buffers[b].role == "seed"]
        lines = [f"    _shape = _batch_shape({', '.join(map(batch, points + moving if f.name == 'jvp' else points))})"]
        if f.name == "hvp":
            lines += [f"    _along = _batch_shape(_shape, {', '.join(map(batch, moving))})",
                      f"    _directions = {self.helper('_own_axes')}(_along, _shape)"]
        for b in (*seeds, *moving):
            shape, over = p.shape(b), self.batch_of(b)
            spread = (f"{self.helper('_bus_seeded')}({self.name(b)}, {shape!r}, {over})" if shape
                      else f"{self.helper('_seed')}({self.name(b)}, {over})")
            lines.append(f"    {self.name(b)} = {spread}")
        return lines

    def results(self, f: Function) -> str:
        """The `return` expression; the lines summing gradients and Hessian-vector products
        to their inputs' shapes are written into the body (they can overflow)."""
        p = f.plan
        roots: dict[str, int] = {}  # an array -> how many results hold it
        for b in [*f.values, *(b for _, b in f.grads), *(b for _, b in f.tangents)]:
            root = self.state_of(b).root
            roots[root] = roots.get(root, 0) + 1

        def copy(b: str) -> str:
            state = self.state_of(b)
            return ", True" if not state.owned or roots[state.root] > 1 else ""

        def written(b: str) -> bool:
            return b in self.states or p.buffers[b].role != "sum"

        def shaped(b: str) -> str:
            shape = p.shape(b)
            extra = f" + {shape!r}" if shape else ""
            if not written(b):
                return f"_shaped(0.0, _shape{extra})"
            return f"_shaped({self.name(b)}, _shape{extra}{copy(b)})"

        def summed(name: str, b: str, kind: str = "grad") -> str:
            """`b` summed to input `name`'s shape (and for `hv`, the directions' own axes)."""
            to = f"{self.name(name)}.shape"
            if kind == "hv":
                shape = p.shape(name)
                to = f"np.broadcast_shapes({to}, _directions{f' + {shape!r}' if shape else ''})"
            if not written(b):
                return f"_unbroadcast(0.0, {to})"
            ident = self.name(b)
            self.line(f"{ident} = _unbroadcast({ident}, {to}{copy(b)})", None)
            return ident

        values = [shaped(o) for o in f.values]
        groups = [values[0] if len(values) == 1 else tuple_display(values)]
        if f.name in ("backward", "hvp"):
            groups.append([summed(name, b) for name, b in f.grads])
        if f.name == "jvp":
            tangents = [shaped(b) for _, b in f.tangents]
            groups.append(tangents[0] if len(tangents) == 1 else tuple_display(tangents))
        if f.name == "hvp":
            groups.append([summed(name, b, "hv") for name, b in f.tangents])
        flat = ", ".join(g if isinstance(g, str) else tuple_display(g) if g else "()" for g in groups)
        if len(f"    return {flat}") <= LINE:
            return flat
        return ", ".join(g if isinstance(g, str) else tuple_display(g, "    ") if g else "()"
                         for g in groups)

    # -- the module -------------------------------------------------------------------------

    def default(self, value, shape: tuple[int, ...]) -> str:
        """A default as a literal: a bus of one repeated number as `(v,) * n` nested."""
        if isinstance(value, tuple):
            return repr(value)
        text = literal(float(value), "np")[0]
        for n in reversed(shape):
            text = f"({text},) * {n}"
        return text

    def source(self, made: list[Function]) -> str:
        for f in made:
            self.function(f)
        hessian = any(f.name == "hvp" for f in made)
        names = [f.name for f in made]
        if hessian:
            self.lines += self.hessian_functions(dense=False)
            self.helpers.add("_sparse_hessian")
            names.append("sparse_hessian")
        head = [f"# Generated by circuitc {self.version} from {self.shown} for NumPy; do not edit.",
                '"""A circuit compiled by circuitc for NumPy: forward(inputs), backward(inputs, seeds)."""',
                "", "import numpy as np", "", dtype_line(self.dtype), *self.constants(),
                *(self.hessian_constants() if hessian else ())]
        needed, todo = set(), list(self.helpers)
        while todo:
            h = todo.pop()
            if h not in needed:
                needed.add(h)
                todo += CALLS[h]
        tail = []
        for helper in sorted(needed):
            tail += ["", "", SOURCES[helper]]
        return "\n".join(head + self.lines + tail + self.closing(len(head), names)) + "\n"


def _rows(text: str, size: int) -> str:
    """An operand whose last axis has `size` elements as a matrix, a row per point."""
    return f"{text}.reshape({text}.size // {size}, {size})"


def _einsum(spec: str, operands: list[str], unbatched: tuple[str, int] | None = None) -> str:
    """The code of `np.einsum(spec, *operands)`: a sum over trailing axes of one operand
    as `.sum`, or its spread as `None` axes; two operands by `_contract` (a matrix
    product); more by `np.einsum` with its contraction order optimized. With
    `unbatched` (an input and its rank), the result keeps the batch axes only if that
    input has them (`_unbatched`)."""
    inputs, out = spec.split("->")
    letters = [x.replace("...", "") for x in inputs.split(",")]
    result = out.replace("...", "")
    if len(operands) == 1 and unbatched is None and inputs.startswith("..."):
        (have,) = letters
        kept = [c for c in have if c in result]
        if kept == [c for c in result if c in have] and set(result) <= set(have):
            axes = tuple(k - len(have) for k, c in enumerate(have) if c not in result)
            if not axes:
                return operands[0]
            return f"{operands[0]}.sum(axis={axes if len(axes) > 1 else axes[0]})"
    text = repr(spec) if unbatched is None else f"_unbatched({spec!r}, {unbatched[0]}, {unbatched[1]})"
    if len(operands) == 2:
        return f"_contract({text}, {', '.join(operands)})"
    return f"np.einsum({text}, {', '.join(operands)}, optimize=True)"
