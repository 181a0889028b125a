"""Derivatives of plans, as plan-to-plan transformations with one rule per stage kind.

`vjp(plan)` is reverse mode: the plan with stages appended that carry the outputs'
adjoints (their seeds, `∂out`) back to the inputs of `WRT`, stage by stage in reverse
order. `jvp(plan, inputs)` is forward mode: after each stage, the stages that carry
the inputs' tangents (their directions, `⋅x`) through it. `hvp(plan)` is forward mode
over reverse mode (JAX's `jvp(grad(f))`), as `grad.hvp_graph` is for a scalar graph.

The rules (`_VJP`, `_JVP`), each linear in the adjoint or tangent it carries:

- a map: its body differentiated by the scalar `grad` (reverse) or `grad.directional`
  (forward), whose seeds are the adjoints of its writes read where it wrote them, and
  whose gradients are added into the adjoints of its reads where it read them (the
  transpose of a gather is a scatter-add; of a sum, a broadcast). A contraction's
  body is a product, whose gradient is a product: the transpose of a contraction is a
  contraction, with no rule of its own.
- a fold: its derivative at each term is a weight (`max`, `min`: the share of each term
  equal to the result, ties splitting equally; `logsumexp`: `exp(t - y)`, the softmax;
  `prod`: the product of the other terms, `prod_except`), and the adjoint of a term is
  the weight times the result's adjoint; the tangent of the result, the sum of the
  weights times the terms' tangents. `prod_except`'s own tangent is a fold of its own
  (`prod_except_tangent`), which has no derivative: third order is not supported.

Every body made here is optimized as `grad` builds (folded and simplified), and reads
only what it uses.
"""

from __future__ import annotations

from dataclasses import replace

from ..grad import directional, grad
from ..graph import Builder, Graph, Origin
from ..passes import GRADIENT_REWRITES
from .ir import (
    ADJOINT,
    TANGENT,
    Access,
    Buffer,
    Fold,
    Map,
    Plan,
    PlanError,
    Write,
    axes_shape,
    body_of,
    identity,
    leaves_of,
)


def vjp(plan: Plan) -> Plan:
    """Reverse mode: `plan` with the stages of the gradient of `sum(∂out * out)` appended,
    `seeds` naming each output's seed and `grads` the adjoint of each input of `WRT`."""
    t = _Transform(plan)
    reached = set(plan.wrt)  # the buffers that depend on an input of WRT
    for s in plan.stages:
        if any(a.name in reached for a in s.reads):
            reached |= {w.target.name for w in s.writes}
    seeds = {}
    for o in plan.outputs:
        seeds[o] = t.derivative(ADJOINT, o, "seed")
        t.started.add(seeds[o])
    t.reached = reached
    t.stages = list(plan.stages)
    for s in reversed(plan.stages):
        if any(t.adjoint_of(w.target.name) for w in s.writes) and any(
                a.name in reached for a in s.reads):
            t.apply(_VJP[s.kind], s)
    grads = tuple((w, t.adjoint(w) if ADJOINT + w in t.started else t.zero(w)) for w in plan.wrt)
    return replace(plan, buffers=t.buffers, stages=tuple(t.stages), grads=grads,
                   seeds={**plan.seeds, **seeds})


def jvp(plan: Plan, inputs=None, roots=None) -> Plan:
    """Forward mode: `plan` with, after each stage, the stages carrying the tangents of
    `inputs` (default: every input) through it; `directions` names each input's
    direction and `tangents` the tangent of each buffer of `roots` (default: the
    outputs), labelled by the buffer."""
    t = _Transform(plan)
    directions = {}
    for name in plan.inputs if inputs is None else inputs:
        directions[name] = t.derivative(TANGENT, name, "direction")
        t.started.add(directions[name])
    for s in plan.stages:
        t.stages.append(s)
        if any(a.name is not None and TANGENT + a.name in t.started for a in s.reads):
            t.apply(_JVP[s.kind], s)
    tangents = tuple((name, TANGENT + name if TANGENT + name in t.started else t.zero(name, TANGENT))
                     for name in (plan.outputs if roots is None else roots))
    return replace(plan, buffers=t.buffers, stages=tuple(t.stages), tangents=tangents,
                   directions={**plan.directions, **directions})


def hvp(plan: Plan) -> Plan:
    """The Hessian-vector product: `jvp` over `vjp(plan)` along a direction per input of
    `WRT`; `tangents` names `H v` for each of those inputs, `grads` the gradient."""
    backward = vjp(plan)
    return jvp(backward, plan.wrt, [b for _, b in backward.grads])


class _Transform:
    """A plan being extended: its buffers and stages (the plan's own, for `jvp`)."""

    def __init__(self, plan: Plan):
        self.plan = plan
        self.buffers = dict(plan.buffers)
        self.stages: list = []
        self.made: list = []  # stages `derived` made for the rule being applied
        self.started: set[str] = set()  # adjoints and tangents with a contribution
        self.reached: set[str] = set()

    def apply(self, rule, stage) -> None:
        """Append the stages of `rule` for `stage`, after those it had `derived` make."""
        made = rule(self, stage)
        self.stages += self.made + made
        self.made = []

    def buffer(self, name: str, shape, role: str) -> str:
        if name not in self.buffers:
            self.buffers[name] = Buffer(name, shape, role)
        return name

    def derivative(self, prefix: str, name: str, role: str) -> str:
        """The adjoint (`prefix` ADJOINT) or tangent (TANGENT) buffer of `name`."""
        kind = "adjoint" if prefix == ADJOINT else "tangent"
        b = self.buffers[name]
        if prefix + name not in self.buffers:
            self.buffers[prefix + name] = Buffer(prefix + name, b.shape, role, kind, name)
        return prefix + name

    def adjoint_of(self, name: str) -> bool:
        """Whether buffer `name`'s adjoint has a contribution."""
        return ADJOINT + name in self.started

    def adjoint(self, name: str) -> str:
        """The adjoint buffer of `name`, which the caller adds to."""
        self.started.add(ADJOINT + name)
        return self.derivative(ADJOINT, name, "sum")

    def tangent(self, name: str, role: str) -> str:
        """The tangent buffer of `name`, which the caller writes."""
        self.started.add(TANGENT + name)
        return self.derivative(TANGENT, name, role)

    def zero(self, name: str, prefix: str = ADJOINT) -> str:
        """A buffer of zeros shaped like `name`: its derivative where nothing reaches it."""
        return self.derivative(prefix, name, "sum")

    def derived(self, name: str, axes, role: str, stage_of) -> str:
        """Buffer `name` over `axes`, a weight of a fold that both modes use: made by the
        stage `stage_of(name)`, unless a stage before has made it (forward mode over reverse
        mode, `hvp`, makes a weight again where reverse mode makes it later)."""
        made = {w.target.name for s in (*self.stages, *self.made) for w in s.writes}
        if name in made:
            return name
        stem, k = name, 1
        while name in self.buffers:
            k += 1
            name = f"{stem}{k}"
        self.buffer(name, axes_shape(axes), role)
        self.made.append(stage_of(name))
        return name


# -- bodies ---------------------------------------------------------------------------


def _formula(origin: Origin, reads: tuple[Access, ...], fn, filename: str) -> tuple[Graph, tuple]:
    """A body computing `fn(b, *inputs)` of `reads` (b: a builder whose methods are gates)."""
    from ..grad import GateBuilder

    b = Builder((), GRADIENT_REWRITES)
    gates = GateBuilder(b)
    gates.origin = origin
    leaves = [b.add("input", (), f"[{k}]") for k in range(len(reads))]
    out = fn(gates, *leaves)
    graph = Graph(filename, tuple(f"[{k}]" for k in range(len(reads))), {}, tuple(b.nodes),
                  (("0", out),))
    return body_of(graph, graph.outputs, {n: reads[k] for k, n in enumerate(leaves)})


def _is_zero(graph: Graph, node: int) -> bool:
    n = graph.nodes[node]
    return n.op == "const" and n.attr == 0.0


def _origin(o: Origin, what: str) -> Origin:
    return Origin(o.span, f"the {what} of {o.label}", o.calls, o.element)


# -- reverse mode ---------------------------------------------------------------------


def _map_vjp(t: _Transform, m: Map) -> list:
    outs = [(j, w) for j, w in enumerate(m.writes) if t.adjoint_of(w.target.name)]
    wrt = tuple(f"[{k}]" for k, a in enumerate(m.reads) if a.name in t.reached)
    forward = replace(m.body, outputs=tuple((str(j), m.body.outputs[j][1]) for j, _ in outs),
                      grads=(), tangents=())
    g = grad(forward, wrt)
    leaves = leaves_of(g, m.reads)
    seeds = {str(j): w.target for j, w in outs}
    for i, node in enumerate(g.nodes):
        if node.op == "seed":
            target = seeds[node.attr]
            leaves[i] = Access(ADJOINT + target.name, target.index)
    outputs, writes = [], []
    for name, node in g.grads:
        if not _is_zero(g, node):
            read = m.reads[int(name[1:-1])]
            writes.append(Write(Access(t.adjoint(read.name), read.index), True))
            outputs.append((name, node))
    if not writes:
        return []
    body, reads = body_of(g, outputs, leaves)
    return [Map(m.domain, reads, body, tuple(writes), _origin(m.origin, "gradient"))]


def _fold_vjp(t: _Transform, f: Fold) -> list:
    term, y = f.terms[0], f.target
    if term.name not in t.reached:
        return []
    weight = _weight(t, f)
    adjoint = Access(ADJOINT + y.name, y.index)
    origin = _origin(f.origin, "gradient")
    body, reads = _formula(origin, (*weight[0], adjoint),
                           lambda b, *r: b.mul(weight[1](b, *r[:-1]), r[-1]), t.plan.filename)
    target = Access(t.adjoint(term.name), term.index)
    return [Map(f.domain, reads, body, (Write(target, True),), origin)]


def _weight(t: _Transform, f: Fold):
    """The derivative of fold `f` at each term, as (reads, fn(b, *reads)) of a body over
    its domain; what it reads is made by `t.derived`."""
    term, y = f.terms[0], f.target
    if f.kind in ("max", "min"):
        def share(b, r, m):  # 1/2 where the term is the result, else 0
            return b.share(r, m) if f.kind == "max" else b.share(m, r)
        def ties(name):
            body, reads = _formula(f.origin, (term, y), share, t.plan.filename)
            return Map(f.domain, reads, body, (Write(identity(name, f.kept), True),), f.origin)
        count = t.derived(f"{y.name}#ties", f.kept, "sum", ties)
        # A NaN result ties with no term: its count stays 0, and no term gets a share.
        return (term, y, identity(count, f.kept)), lambda b, r, m, c: b.div(
            share(b, r, m), b.max(c, b.const(0.5)))
    if f.kind == "logsumexp":
        return (term, y), lambda b, r, m: b.exp(b.sub(r, m))
    if f.kind == "prod":
        others = t.derived(f"{y.name}#others", f.domain, "value", lambda name: Fold(
            "prod_except", f.domain, f.over, (term,), identity(name, f.domain), f.origin))
        return (identity(others, f.domain),), lambda b, p: p
    raise PlanError(f"no derivative of a {f.kind} fold")


_VJP = {"map": _map_vjp, **dict.fromkeys(("max", "min", "prod", "logsumexp"), _fold_vjp)}


# -- forward mode ---------------------------------------------------------------------


def _map_jvp(t: _Transform, m: Map) -> list:
    moving = [f"[{k}]" for k, a in enumerate(m.reads)
              if a.name is not None and TANGENT + a.name in t.started]
    forward = replace(m.body, outputs=tuple((str(j), n) for j, (_, n) in enumerate(m.body.outputs)),
                      grads=(), tangents=())
    d = directional(forward, moving, forward.outputs)
    leaves = leaves_of(d, m.reads)
    for i, node in enumerate(d.nodes):
        if node.op == "tangent":
            read = m.reads[int(node.attr[1:-1])]
            leaves[i] = Access(TANGENT + read.name, read.index)
    outputs, writes = [], []
    for (label, node), w in zip(d.tangents, m.writes):
        if not _is_zero(d, node):
            role = "sum" if w.add else "value"
            writes.append(Write(Access(t.tangent(w.target.name, role), w.target.index), w.add))
            outputs.append((label, node))
    if not writes:
        return []
    body, reads = body_of(d, outputs, leaves)
    return [Map(m.domain, reads, body, tuple(writes), _origin(m.origin, "tangent"))]


def _fold_jvp(t: _Transform, f: Fold) -> list:
    term, y = f.terms[0], f.target
    if TANGENT + term.name not in t.started:
        return []
    origin = _origin(f.origin, "tangent")
    tangent = Access(TANGENT + term.name, term.index)
    if f.kind == "prod_except":
        target = identity(t.tangent(y.name, "value"), f.domain)
        return [Fold("prod_except_tangent", f.domain, f.over, (term, tangent), target, origin)]
    if f.kind == "prod_except_tangent":
        raise PlanError("the derivative of a product's second derivative (third order)")
    weight = _weight(t, f)
    body, reads = _formula(origin, (*weight[0], tangent),
                           lambda b, *r: b.mul(weight[1](b, *r[:-1]), r[-1]), t.plan.filename)
    target = identity(t.tangent(y.name, "sum"), f.kept)
    return [Map(f.domain, reads, body, (Write(target, True),), origin)]


_JVP = {"map": _map_jvp, **dict.fromkeys(
    ("max", "min", "prod", "logsumexp", "prod_except", "prod_except_tangent"), _fold_jvp)}
