"""Blame: the gate whose derivative rule is wrong, found by checking each gate on its own.

Blame: when a check fails, each gate on the path from the input to the output is
checked at that point on its own, its derivative rule (differentiated as a
one-gate circuit) against numerical derivatives of its `fn`, tried as the main check
tries them (the complex step with its `cfn`, central differences with the default
and each retry step): a gate is blamed only when none agrees, and the first such
gate is named with its `file:line:col`. A gate whose rule or differences are not
finite there (`a * x` at `a = inf`) is outside its domain, and passed over. A module
that disagrees with its `reference` at the point is not blamed on the circuit's
gates: the `Mismatch` is the finding.

The checks of one gate here (`local_partials`, `local_estimates`, and for second order
`local_disagreements`) serve `checks.Checker.blame` and `second.SecondOrderChecker.blame`.
"""

from __future__ import annotations

import math

from ..gates import DOMAIN_ERRORS, GATES, Gate
from ..grad import grad, hessian_graph
from ..graph import Builder, Graph, run
from ..numerics import RETRY_SCALES, default_h, representable
from .checked import complex_apply, side, switch, switching


def local_partials(op: str, args: list[float], const: list[bool]) -> list[float] | None:
    """The partial derivatives a gate's rule gives at `args`, via a one-gate circuit."""
    b = Builder()
    names = [f"u{j}" for j in range(len(args))]
    leaves = [b.const(x) if c else b.add("input", (), name)
              for x, c, name in zip(args, const, names)]
    y = b.add(op, tuple(leaves))
    inputs = tuple(name for name, c in zip(names, const) if not c)
    graph = grad(Graph("<gate>", inputs, {}, tuple(b.nodes), (("y", y),)))
    try:
        values = run(graph, dict(zip(names, args)))
    except DOMAIN_ERRORS:
        return None
    partials = {name: values[node] for name, node in graph.grads}
    return [partials.get(name, 0.0) for name in names]


def agrees(analytic: float, numeric: float, rtol: float, atol: float) -> bool:
    """Whether `analytic` is within `atol + rtol * |numeric|` of `numeric`."""
    return abs(analytic - numeric) <= atol + rtol * abs(numeric)


def local_numeric(gate: Gate, args: list[float], j: int, rule: float, rtol: float,
                   atol: float) -> float | None:
    """The numerical derivative of `gate.fn` in argument `j` at `args`: the first
    estimate of `local_estimates` that agrees with `rule`, else the first (the most
    accurate); None when there is none."""
    first = None
    for estimate in local_estimates(gate, args, j):
        if agrees(rule, estimate, rtol, atol):
            return estimate
        first = estimate if first is None else first
    return first


def local_steps(x: float) -> list[float]:
    """The central-difference steps a gate's local check tries at `x`, in order: the
    default step, each of `RETRY_SCALES` times it and, for `0 < |x| < 1`, the step
    relative to `|x|` alone; each representable at `x`."""
    steps = [default_h(x, "central") * scale for scale in (1.0, *RETRY_SCALES)]
    if 0 < abs(x) < 1:
        steps.append(default_h(1.0, "central") * abs(x))
    return [representable(x, h) for h in steps]


def local_estimates(gate: Gate, args: list[float], j: int):
    """Finite estimates of the derivative of `gate.fn` in argument `j`, retried as the
    main check retries: the complex step with the gate's `cfn`, then central
    differences with the default step, each of `RETRY_SCALES` times it and, for
    `0 < |x| < 1`, the step relative to `|x|` alone. A step that straddles a kink or
    leaves the domain gives none."""
    x = args[j]
    if gate.cfn is not None:
        t = default_h(x, "complex")
        try:
            estimate = gate.cfn(*args[:j], complex(x, t), *args[j + 1:]).imag / t
        except DOMAIN_ERRORS:
            estimate = math.nan
        if math.isfinite(estimate):
            yield estimate
    for h in local_steps(x):
        lo, hi = list(args), list(args)
        lo[j] -= h
        hi[j] += h
        if gate.kink and len({side(switch(p)) for p in (lo, args, hi)}) > 1:
            continue
        try:
            estimate = (gate.fn(*hi) - gate.fn(*lo)) / (2 * h)
        except DOMAIN_ERRORS:
            continue
        if math.isfinite(estimate):
            yield estimate


def local_disagreements(op: str, args: tuple[float, ...], const: tuple[bool, ...],
                         rtol: float, atol: float) -> tuple:
    """The entries `(a, b, rule, numeric)` of a gate's local Hessian at `args` (its
    derivative rule differentiated by circuitc: `hessian_graph` of the one-gate circuit's
    `grad`) that disagree with every numerical derivative, along argument `b`, of its local
    gradient's component `a` (`local_second_estimates`); `numeric` is the first, the most
    accurate. Constant arguments are not differentiated."""
    b = Builder()
    names = [f"u{j}" for j in range(len(args))]
    leaves = [b.const(x) if c else b.add("input", (), name)
              for x, c, name in zip(args, const, names)]
    y = b.add(op, tuple(leaves))
    inputs = tuple(name for name, c in zip(names, const) if not c)
    gradient = grad(Graph("<gate>", inputs, {}, tuple(b.nodes), (("y", y),)))
    hessian = hessian_graph(gradient)
    at = dict(zip(names, args))
    try:
        values = run(hessian, at)
    except DOMAIN_ERRORS:
        return ()
    row = [names.index(name) for name, _ in gradient.grads]  # the argument of each component
    entries = dict.fromkeys(((a, c) for a in row for c in row), 0.0)
    for label, node in hessian.tangents:
        j, k = map(int, label.split(","))
        entries[row[j], row[k]] = entries[row[k], row[j]] = values[node]
    component = {names.index(name): node for name, node in gradient.grads}
    found = []
    for (a, c), rule in entries.items():
        if not math.isfinite(rule):
            continue  # outside the gate's domain: nothing to judge
        first = None
        for estimate in local_second_estimates(gradient, at, component[a], names[c]):
            if agrees(rule, estimate, rtol, atol):
                break
            first = estimate if first is None else first
        else:
            if first is not None:
                found.append((a, c, rule, first))
    return tuple(found)


def local_second_estimates(gradient: Graph, at: dict[str, float], node: int, name: str):
    """Finite estimates of the derivative of `node` of a one-gate gradient graph along its
    input `name`, retried as `local_estimates` retries: the complex step where every gate
    of the graph has a `cfn`, then central differences with the default step, each
    of `RETRY_SCALES` times it and, for `0 < |x| < 1`, the step relative to `|x|` alone. A
    step across a switch of one of its gates (`step`, `relu`, ...) or outside the domain
    gives none."""
    x = at[name]
    gates = [i for i, n in enumerate(gradient.nodes) if n.op in GATES]
    switches = [i for i in gates if switching(GATES[gradient.nodes[i].op])]
    if not any(GATES[gradient.nodes[i].op].no_complex_step for i in gates):
        t = default_h(x, "complex")
        try:
            estimate = run(gradient, {**at, name: complex(x, t)}, apply=complex_apply)[node].imag / t
        except DOMAIN_ERRORS:
            estimate = math.nan
        if math.isfinite(estimate):
            yield estimate
    for h in local_steps(x):
        try:
            runs = [run(gradient, {**at, name: x + sign * h}) for sign in (-1.0, 0.0, 1.0)]
        except DOMAIN_ERRORS:
            continue
        if any(len({side(switch([r[a] for a in gradient.nodes[k].args])) for r in runs}) > 1
               for k in switches):
            continue
        estimate = (runs[2][node] - runs[0][node]) / (2 * h)
        if math.isfinite(estimate):
            yield estimate
