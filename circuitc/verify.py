"""Numerical gradient checking: does `backward` agree with finite differences?

`verify_circuit(module, forward, ...)` compares the gradients the generated module's
`backward` returns with numerical derivatives of its `forward`, at one or more
points, and returns a `Report`: one `Check` per (output, input in `WRT`) and point,
each with a verdict `pass`, `fail`, `skip` (the finite difference straddles a kink)
or `domain` (the circuit, or its finite difference, is undefined there).

Any module that follows the generated-module contract can be checked. Without the
circuit's graph (`forward` None) there are no kinks and no blame, and the complex
step evaluates the module's `forward` on complex numbers, if it accepts them
(else central differences, with a note). With a `reference` (the module circuitc
generates from the circuit of `forward`), each point also compares the module with
it: where they differ the report fails and names the first wire whose value or
adjoint differs (`Mismatch`), rather than blaming a gate of the circuit.

Numerical derivatives (`difference`):
- `central`: `(f(x+h) - f(x-h)) / 2h`, error O(h²); the default.
- `forward`: `(f(x+h) - f(x)) / h`, the textbook's, error O(h).
- `complex`: the complex step `Im f(x + ih) / h`, evaluated on the gate graph with
  each gate's `cfn`. It subtracts nothing, so it is exact to rounding (about 1e-15
  relative) and `h` can be tiny. A gate that is not complex-analytic (`relu`, `abs`,
  `max`, `min`), or has no `cfn` yet, blocks it: an (output, input) pair whose path
  goes through one is checked by central differences instead, and the check's `note`
  says which of the two.

Step `h`, unless given: per input, relative to its magnitude,
`eps**(1/3) * max(1, |x|)` (about 6e-6) for central differences, `sqrt(eps) * max(1, |x|)`
(about 1.5e-8) for forward differences, which balance truncation against rounding
error, and `1e-20 * max(|x|, 1e-200)` for the complex step. `h` is then rounded so
that `x + h` is exactly representable (`h = (x + h) - x`).

When a finite difference with the default step fails, or steps outside the domain,
it is tried again with `RETRY_SCALES` times the default step (0.1, 10, 0.01,
0.001), for an input with `0 < |x| < 1` with the step relative to `|x|` alone, and
last with the complex step, where the path allows it (judged with the tolerances of
the difference asked for); the first that agrees is reported, with a note, and a
complex step that disagrees too is reported as the numerical derivative. A foreign
module's failed complex step is retried with central differences: a `forward` that
takes complex numbers need not be complex-analytic. One fixed step cannot suit every
circuit: near a pole the curvature wants a smaller one, where the output is large
and its slope small rounding wants a larger one, and near the edge of a domain
(`log(x)` at `x = 1e-6`) only a step smaller than the distance to the edge stays
inside. A real error in a derivative rule is orders of magnitude larger than the
error of any of these steps, so retrying does not hide it. A step given with `h`
is used as given, and never retried. A real step that does not move an input
(`x + h == x`, a given `h` below the input's resolution) measures nothing: the
check is `skip`, saying so, never `fail`. The complex step has no such limit.

Tolerance: a gradient passes when `|analytic - numeric| <= atol + rtol * |numeric|`.
The defaults depend on the difference (`DEFAULT_TOLERANCES`; docs/verify.md compares
them with other gradient checkers and gives the measurements behind them): (1e-6,
1e-8) for central differences, (1e-3, 1e-5) for forward differences, (1e-11, 1e-13)
for the complex step. A check that falls back from the complex step to central
differences uses the central defaults.

Kinks: a gate with the `kink` flag switches where its input crosses 0 (`relu`,
`abs`) or where its two inputs tie (`max`, `min`). When the points a finite
difference evaluates do not all lie strictly on one side of a kink that the output
depends on, and the kink can show in the difference, the derivative there is not
judged: the check is `skip`, naming the gate. So `relu(x)` at `x = 0` is skipped, not
failed. A kink shows unless the function is smooth there however the gate switches:
switching moves the gate's value by at most `2 |switch|` (`|a - b|` for `max`), so the
output by that times the gate's adjoint (`_Checker.shown`); where this, over the step,
stays below a tenth of the tolerance at every point of the difference, the kink is
passed over. So the `max` that a written-out `logsumexp` subtracts for stability, whose
adjoint is 0 (to rounding), is no kink, whichever way the `max` is folded. When every
check at a point that could be judged was skipped at a kink, a point near it is checked
too: each input moved by `NEARBY` (relative), the first that judges something.

Domain: a `ValueError` or `ArithmeticError` (`log(-1)`, `1/0`, overflow) while
evaluating the point, its gradient, or the points of a finite difference, or a
value that is not finite (an output, which puts the whole point outside; an
analytic gradient; a numerical derivative), makes the check `domain`, never `fail`.
From circuitc's module for the numpy target, only an `ArithmeticError` is a domain
error (`gates.TARGET_DOMAIN_ERRORS`: NumPy's ValueError is a shape error); any other
exception from circuitc's module fails the point, saying what it raised. A run that
judges nothing is not `ok`.

Points: the given values, else the declared defaults, else a drawn value (the
"fixed point"), then `points` random points in which every input not given is
drawn. A drawn value is `s * m`, `s` = -1 or +1 with equal probability, `m` uniform
on [0.5, 2): values of either sign, of order one, never near 0 (where `log`,
`sqrt` and `1/x` have their edges). A drawn point at which the circuit or its
gradient is undefined is drawn again, up to `MAX_DRAWS` times; every draw comes
from one `random.Random(seed)`, so a run is reproducible.

`fast`: instead of one check per input, one per output along a random direction
`v` (`v_i = d_i * max(1, |x_i|)`, `d_i` drawn like an input value, ±[0.5, 2), so that
errors in different inputs cancel with probability 0): the directional derivative
`(f(x + tv) - f(x - tv)) / 2t` (or forward, or complex) against `sum(grad_i * v_i)`,
so a circuit with thousands of inputs costs a few evaluations per point.

Blame: when a check fails, each gate on the path from the input to the output is
checked at that point on its own, its derivative rule (differentiated as a
one-gate circuit) against numerical derivatives of its `fn`, tried as the main check
tries them (the complex step with its `cfn`, central differences with the default
and each retry step): a gate is blamed only when none agrees, and the first such
gate is named with its `file:line:col`. A gate whose rule or differences are not
finite there (`a * x` at `a = inf`) is outside its domain, and passed over. A module
that disagrees with its `reference` at the point is not blamed on the circuit's
gates: the `Mismatch` is the finding.

Second order (`verify_hessian`): the same checks, one level up. The function
differentiated is the gradient `backward` returns (seeded on one output at a time), its
derivatives are the module's Hessian (`hessian`, else `hvp` along each unit vector), and a
check is one entry `d2f/dxdy`: the Hessian's (x, y) against the numerical derivative of
the gradient's component x along y. circuitc's `hessian` mirrors its upper triangle, so
only that is checked; other Hessians (from `hvp`, or a foreign module's) in full. The
complex step evaluates the circuit's gradient graph, each output's gradient built on its
own (`grad` of the circuit with that output alone), on complex numbers; its kinks are
those of every gate that switches (`_switching`: the kink gates, and `step`, `sign` and
`share`, which only gradients use), and they block the complex step too. `fast`: one
check per output, `u · H v` (`hvp`) against the derivative of `u · gradient` along `v`,
`u` drawn like an input value. Retries, domains and points are first order's. Tolerances
(`SECOND_ORDER_TOLERANCES`; docs/verify.md gives the measurements behind them): (1e-5, 1e-7)
central, (1e-3, 1e-5) forward, (1e-10, 1e-12) complex: a difference of the gradient loses
more digits than one of the function. Blame checks each gate on the
path on its own: its local Hessian (the one-gate circuit's `grad`, differentiated by
`hessian_graph`) against numerical derivatives of its local gradient, retried as first
order's blame retries, skipping steps across a switch of a gate of that gradient.

The finite differences and drawn values are `circuitc.numerics`, which `circuitc step`
shares; the report's records, its text and its JSON are `circuitc.verify_report`.
"""

from __future__ import annotations

import dis
import math
import random
import re
import sys
from dataclasses import replace

from .api import gradient_of, hessian_rows, outputs_of, raised
from .errors import ModuleError
from .gates import DOMAIN_ERRORS, GATES, TARGET_DOMAIN_ERRORS, Gate
from .grad import ADJOINT, grad, grad_with_adjoints, hessian_graph
from .graph import Builder, Graph, by_bus, run
from .numerics import DIFFERENCES, default_h, difference, random_value, representable, shifted
from .report import values as _values
from .verify_report import (
    KINK,
    Blame,
    Check,
    Mismatch,
    PointReport,
    Report,
    _derivative,
    report_dict,
    report_text,
    summary,
)

# What other code uses: the checks, their records and reports (`verify_report`), and the
# numerics `step` shares (`numerics`).
__all__ = ["DEFAULT_TOLERANCES", "DIFFERENCES", "SECOND_ORDER_TOLERANCES", "Blame", "Check",
           "Mismatch", "PointReport", "Report", "default_h", "difference", "report_dict",
           "report_text", "summary", "verify_circuit", "verify_hessian"]

# (rtol, atol) by difference; see the module docstring and docs/verify.md.
DEFAULT_TOLERANCES = {"central": (1e-6, 1e-8), "forward": (1e-3, 1e-5),
                      "complex": (1e-11, 1e-13)}
MAX_DRAWS = 20
RETRY_SCALES = (0.1, 10.0, 0.01, 0.001)  # other steps tried, relative to the default


def _new_check(key, label: str | None, analytic: float, method: str) -> Check:
    """A check of `key` (an output, or (output, of) for a second derivative) along `label`."""
    if isinstance(key, tuple):
        return Check(key[0], label, analytic, method=method, order=2, of=key[1])
    return Check(key, label, analytic, method=method)


class _Circuit:
    """A module to check, and what the checks know of it besides.

    `forward`, the optimized forward graph of the module's circuit, when known, gives
    the kinks, the non-analytic gates and blame. `reference`, the module circuitc
    generates from that circuit, is given when the module may not be that one (a
    module on disk, checked against its circuit). The module is *foreign* when
    there is no graph or there is a reference: its `forward` is then evaluated on
    complex numbers for the complex step, if it accepts them (the graph otherwise),
    and an exception other than a domain error from it is a `ModuleError`. Otherwise it
    is circuitc's module for `target`, whose domain errors are that target's
    (`TARGET_DOMAIN_ERRORS`), and any other exception from it is `_Raised`.
    """

    def __init__(self, module, forward: Graph | None, reference=None, target: str = "python"):
        self.module = module
        self.graph = forward
        self.reference = reference
        self.foreign = forward is None or reference is not None
        self.domain = DOMAIN_ERRORS if self.foreign else TARGET_DOMAIN_ERRORS[target]
        self.inputs = tuple(module.INPUTS)
        self.wrt = tuple(getattr(module, "WRT", self.inputs))
        self.outputs = tuple(module.OUTPUTS)
        self.refused: str | None = None  # why the module's forward takes no complex numbers
        self.feeds: dict[str, set[int]] = {}
        self.reversed: tuple | None = None  # `leverage`'s graph and adjoints
        self.inputs_of: dict[int, int] = {}
        if forward is None:
            return
        # Nodes each output depends on, and the inputs each kink or non-analytic gate
        # depends on: enough to tell which of those gates lie between an input and an output.
        self.feeds = {out: self._ancestors([n]) for out, n in forward.outputs}
        self._special_gates()

    def _special_gates(self) -> None:
        """`inputs_of`: for each gate of `graph` that switches or blocks the complex step,
        the inputs it depends on (a bit mask over `inputs`, each input's bit in `bit`)."""
        self.bit = {name: 1 << k for k, name in enumerate(self.inputs)}
        masks: list[int] = []
        for n in self.graph.nodes:
            masks.append(self.bit[n.attr] if n.op == "input" else 0)
            for a in n.args:
                masks[-1] |= masks[a]
        self.inputs_of = {i: masks[i] for i, n in enumerate(self.graph.nodes)
                          if n.op in GATES and (_switching(GATES[n.op])
                                                or GATES[n.op].no_complex_step)}

    def _ancestors(self, roots: list[int]) -> set[int]:
        seen, stack = set(roots), list(roots)
        while stack:
            for a in self.graph.nodes[stack.pop()].args:
                if a not in seen:
                    seen.add(a)
                    stack.append(a)
        return seen

    def between(self, names, output: str, want) -> list[int]:
        """Special gates (`want(gate)` true) that depend on any of `names` and feed `output`;
        none without a graph."""
        if self.graph is None:
            return []
        mask = 0
        for name in names:
            mask |= self.bit[name]
        return [i for i, deps in self.inputs_of.items()
                if deps & mask and want(GATES[self.graph.nodes[i].op]) and i in self.feeds[output]]

    def call(self, name: str, *args):
        """`module.<name>(*args)`; an exception that is not one of the module's domain
        errors says what it raised, and where: from a foreign module as a `ModuleError`,
        from circuitc's as `_Raised`, a failure of the point."""
        try:
            return getattr(self.module, name)(*args)
        except self.domain:
            raise
        except Exception as e:  # noqa: BLE001 (the module's own code failed: a message, not our traceback)
            if self.foreign:
                raise self.error(f"its {name} raised {raised(e)}") from None
            raise _Raised(f"the module's {name} raised {raised(e)}") from None

    def error(self, message: str) -> ModuleError:
        return ModuleError(message).attach(_module_file(self.module), "")

    def forward(self, at: dict[str, float]) -> tuple[float, ...]:
        values = outputs_of(self.module, self.call("forward", *(at[name] for name in self.inputs)))
        if self.foreign and len(values) != len(self.outputs):
            raise self.error(f"its forward returned {len(values)} values for "
                             f"{len(self.outputs)} OUTPUTS")
        return values

    def gradients(self, at: dict[str, float]) -> dict[str, tuple[float, ...]]:
        args = [at[name] for name in self.inputs]
        grads = {}
        for k, out in enumerate(self.outputs):
            seeds = [float(j == k) for j in range(len(self.outputs))]
            result = self.call("backward", *args, *seeds)
            grads[out] = _pair(result)[1] if self.foreign else tuple(result[1])
            if self.foreign and len(grads[out]) != len(self.wrt):
                raise self.error(f"its backward did not return (outputs, grads) with "
                                 f"{len(self.wrt)} gradients, one per name in WRT")
        return grads

    def accepts_complex(self, at: dict[str, float]) -> bool:
        """Whether the complex step can be taken: always on a graph; a foreign module's
        `forward` must accept complex numbers (a `TypeError` says it does not, and
        `refused` keeps it)."""
        if not self.foreign or self.refused is not None:
            return self.refused is None
        try:
            self.module.forward(*(complex(at[name], 1e-300) for name in self.inputs))
        except DOMAIN_ERRORS:
            pass  # undefined here: the complex step will say so
        except Exception as e:  # noqa: BLE001 (a TypeError from `math`, most often)
            self.refused = f"the module's forward does not accept complex numbers ({raised(e)})"
        return self.refused is None

    def complex_forward(self, at: dict) -> tuple[complex, ...]:
        if self.foreign:
            values = self.call("forward", *(at[name] for name in self.inputs))
            return outputs_of(self.module, values)
        values = run(self.graph, at, apply=_complex_apply)
        return tuple(values[n] for _, n in self.graph.outputs)

    def defined(self, at: dict[str, float]) -> bool:
        """Whether the outputs and the gradients are defined and finite at `at` (a module
        that raises anything else there is, for the point to report it)."""
        try:
            return _finite(self.forward(at)) and all(
                _finite(g) for g in self.gradients(at).values())
        except DOMAIN_ERRORS:
            return False
        except _Raised:
            return True

    def switches(self, at: dict[str, float], kinks: list[int]) -> list[float]:
        values = run(self.graph, at)
        return [_switch([values[a] for a in self.graph.nodes[k].args]) for k in kinks]

    def quantity(self, key) -> dict[int, float]:
        """What a check of `key` differentiates, as weights of nodes of `graph`: an output."""
        return {dict(self.graph.outputs)[key]: 1.0}

    def leverage(self, at: dict[str, float], key, nodes: list[int]) -> list[float]:
        """How fast the quantity checked for `key` moves with the value of each of `nodes`
        at `at`, what the node depends on held fixed: each node's adjoint, by reverse mode
        over `graph`; `inf` where that is undefined."""
        if self.reversed is None:  # one graph for every key: the roots of all, seeded apart
            roots = tuple({f"\0{n}": n for k in self.outputs for n in self.quantity(k)}.items())
            self.reversed = grad_with_adjoints(replace(self.graph, outputs=roots), ())
        graph, adjoint = self.reversed
        # A gradient graph reads its own seeds too, which are 1 when it is evaluated.
        own = {out for out, _ in self.graph.outputs}
        seeds = {node.attr: float(node.attr in own) for node in graph.nodes if node.op == "seed"}
        seeds.update((f"\0{n}", w) for n, w in self.quantity(key).items())
        try:
            values = run(graph, at, seeds)
        except DOMAIN_ERRORS:
            return [math.inf] * len(nodes)
        return [values[adjoint[k]] if k in adjoint else 0.0 for k in nodes]

    def where(self, node: int) -> tuple[str, str]:
        """The label of a gate node and its `file:line:col`."""
        n = self.graph.nodes[node]
        label = n.origin.label if n.origin else f"'{GATES[n.op].label}'"
        place = n.origin.place(self.graph.filename) if n.origin else self.graph.filename
        return label, place


def _pair(result) -> tuple:
    """What a foreign `backward` returned, as `(outputs, grads)`; `((), ())` if it is not
    a pair of an output and a sequence."""
    try:
        value, grads = result
        return value, tuple(grads)
    except (TypeError, ValueError):
        return (), ()


def _module_file(module) -> str:
    """The file a module was loaded from, else its name."""
    return getattr(module, "__file__", None) or getattr(module, "__name__", "<module>")


def _complex_apply(gate: Gate, args: list) -> complex | float:
    """Evaluate a gate on complex arguments with its `cfn`.

    A gate without `cfn` only sees complex arguments when its output does not feed
    the output being differentiated (the caller makes sure of that); its real part
    is then good enough.
    """
    if any(type(a) is complex for a in args):
        if gate.cfn is not None:
            return gate.cfn(*args)
        args = [a.real if type(a) is complex else a for a in args]
    return gate.fn(*args)


def _switch(args: list[float]) -> float:
    """Where a kink gate switches: its input crosses 0, or its two inputs tie."""
    return args[0] - args[1] if len(args) == 2 else args[0]


_sign = GATES["sign"].fn  # -1.0, 0.0 or 1.0: which side of a kink a value lies on


def _finite(values) -> bool:
    return all(math.isfinite(v) for v in values)


NOT_FINITE = "the gradient is not finite"  # why a check with such an analytic value is not judged


def _not_finite(check: Check) -> str:
    return NOT_FINITE if check.order == 1 else "the second derivative is not finite"


def _switching(gate: Gate) -> bool:
    """Whether a gate's value or slope jumps somewhere: a kink gate (`relu`, `max`), or a
    piecewise-constant one only gradients use (`step`, `sign`, `share`)."""
    return gate.kink or not gate.analytic


RETRIED = "agrees with h = {:.3g}; the default step does not suit the curvature or the domain here"


class _Outside(Exception):
    """The circuit, or a finite difference of it, is undefined here."""


class _Raised(Exception):
    """circuitc's module raised an exception that is not a domain error (its message says
    which, and where): it failed, whatever its gradients would have been."""


def _call(fn, *args, where: str = ""):
    try:
        result = fn(*args)
    except DOMAIN_ERRORS as e:
        raise _Outside(f"{where}{e}") from None
    return result


class _Checker:
    defaults = DEFAULT_TOLERANCES  # (rtol, atol) by method, unless given

    def __init__(self, circuit: _Circuit, difference: str, rtol: float | None,
                 atol: float | None, h: float | None):
        self.c = circuit
        self.difference = difference
        self.rtol, self.atol, self.h = rtol, atol, h

    def tolerance(self, method: str) -> tuple[float, float]:
        """(rtol, atol) for a check by `method`: the given ones, else that method's defaults."""
        rtol, atol = self.defaults[method]
        return (rtol if self.rtol is None else self.rtol, atol if self.atol is None else self.atol)

    # -- one point --------------------------------------------------------------

    def point(self, label: str, at: dict[str, float], direction=None) -> PointReport:
        report = PointReport(label, dict(at))
        try:
            values = _call(self.c.forward, at, where="")
            if not _finite(values):
                raise _Outside(f"not finite: {_values(dict(zip(self.c.outputs, values)))}")
            report.outputs = dict(zip(self.c.outputs, values))
            grads = _call(self.c.gradients, at, where="the gradient: ")
        except _Outside as e:
            report.domain = str(e)
            return report
        if direction is None:
            for i, name in enumerate(self.c.wrt):
                report.checks += self.along(at, {name: 1.0}, name,
                                            {out: g[i] for out, g in grads.items()}, values)
        else:
            analytic = {out: math.fsum(gi * direction[n] for gi, n in zip(g, self.c.wrt))
                        for out, g in grads.items()}
            report.checks += self.along(at, direction, None, analytic, values)
        return report

    def along(self, at, v: dict[str, float], label: str, analytic: dict[str, float],
              values: tuple[float, ...]) -> list[Check]:
        """Checks of each output's derivative at `at` along `v` (an input, or a direction)."""
        checks = [_new_check(key, label, a, self.difference) for key, a in analytic.items()]
        if self.difference == "complex":
            for check in checks:
                why = self.no_complex_step(at, v, check.key)
                if why:
                    check.method = "central"
                    check.note = f"central differences: {why}"
        # A gradient that is not finite is outside the domain, whatever a finite
        # difference says: no step can agree with it.
        for check in checks:
            if not math.isfinite(check.analytic):
                check.verdict, check.reason = "domain", _not_finite(check)
        judged = [c for c in checks if c.verdict == "pass"]
        self.estimate(at, v, label, values, judged, (1.0, False))
        if self.h is None:  # a failure may be the estimate's fault: try others
            for check in judged:
                if check.verdict in ("fail", "domain"):
                    self.retry(at, v, label, values, check)
        return checks

    def no_complex_step(self, at, v, output: str) -> str | None:
        """Why the complex step cannot be taken for `output` along `v`, or None."""
        blocking = self.c.between(v, output, lambda g: g.no_complex_step)
        if blocking:
            gate, place = self.c.where(blocking[0])
            return f"{gate} at {place} {GATES[self.c.graph.nodes[blocking[0]].op].no_complex_step}"
        return None if self.c.accepts_complex(at) else self.c.refused

    def attempts(self, at, v, check: Check):
        """The other estimates a failed check is tried with, in order: (method, scaling)."""
        steps = list(self.other_steps(at, v))
        if check.method != "complex":
            yield from ((check.method, scaling) for scaling in steps)
            if self.no_complex_step(at, v, check.key) is None:
                yield "complex", (1.0, False)
        elif self.c.foreign:  # its forward may take complex numbers and not be analytic
            yield from (("central", scaling) for scaling in [(1.0, False), *steps])

    def retry(self, at, v, label, values, check: Check) -> None:
        """Try `attempts` until one agrees; the check then passes, with a note saying how.

        The complex step tried after real steps is judged with the tolerances of the
        difference asked for, and, being exact to rounding, is reported even when it
        disagrees too."""
        for method, scaling in self.attempts(at, v, check):
            trial = _new_check(check.key, check.input, check.analytic, method)
            self.numeric(at, v, label, method, values, [trial], scaling)
            self.judge(trial, check.method if method == "complex" else method)
            if trial.verdict == "pass" and method == check.method:
                note = RETRIED.format(trial.h)
            elif trial.verdict == "pass" and method == "complex":
                note = ("agrees with the complex step; no real step tried does: rounding or "
                        "curvature defeats finite differences here")
            elif trial.verdict == "pass":
                note = ("the complex step disagrees, central differences agree: the module's "
                        "forward takes complex numbers but is not complex-analytic here")
            elif trial.verdict == "fail" and method == "complex":
                exact = "" if self.c.foreign else ", exact to rounding,"
                note = f"the complex step{exact} disagrees too"
            else:
                continue
            check.numeric, check.h, check.tolerance = trial.numeric, trial.h, trial.tolerance
            check.verdict, check.reason, check.method = trial.verdict, "", method
            check.note = "; ".join(filter(None, (check.note, note)))
            return

    @staticmethod
    def other_steps(at, v):
        """Steps to retry a failed check with: (scale, relative to |x| alone)."""
        yield from ((scale, False) for scale in RETRY_SCALES)
        if len(v) == 1 and 0 < abs(at[next(iter(v))]) < 1:
            yield 1.0, True

    def estimate(self, at, v, label, values, checks: list[Check], scaling) -> None:
        """Fill in each check's `numeric` and `h` (see `numeric` for `scaling`), then judge it."""
        for method in sorted({c.method for c in checks}):
            group = [c for c in checks if c.method == method]
            self.numeric(at, v, label, method, values, group, scaling)
            for check in group:
                self.judge(check)

    def numeric(self, at, v, label, method, values, checks: list[Check], scaling) -> None:
        """Fill in `numeric` and `h` of `checks` (all for outputs using `method`).

        `scaling` is (scale, relative): the step is `scale` times the given or default
        one, or, if `relative`, the default step scaled by `|x|` alone, not `max(1, |x|)`.
        A real step that does not move an input (`x + h == x`) skips the checks.
        """
        scale, relative = scaling
        if len(v) == 1:  # one input: its own step
            (name,) = v
            x = at[name]
            t = (default_h(1.0, method) * abs(x) if relative
                 else self.h if self.h is not None else default_h(x, method))
            t = representable(x, scale * t)
        else:  # a direction already scaled to the inputs: one relative step
            t = scale * (self.h if self.h is not None else default_h(1.0, method))
        index = {out: k for k, out in enumerate(self.c.outputs)}
        for check in checks:
            check.h = t
        label, shift = (label, "h") if label is not None else ("the point", "h·v")
        try:
            if method == "complex":
                point = {n: complex(x, t * v[n]) if n in v else x for n, x in at.items()}
                result = _call(self.c.complex_forward, point, where=f"at {label} + i{shift}: ")
                for check in checks:
                    check.numeric = result[index[check.key]].imag / t
                return
            unmoved = {n: at[n] for n, w in v.items() if at[n] + t * w == at[n]}
            if unmoved:
                for check in checks:
                    check.verdict = "skip"
                    check.reason = (f"h = {t!r} is below the resolution of {_values(unmoved)} "
                                    f"(x + {shift} == x)")
                    if self.h is not None:
                        check.reason += ": give a larger --h"
                return
            plus, minus = shifted(at, v, t), shifted(at, v, -t)
            if self.kinked([plus, at] if method == "forward" else [minus, at, plus], v, checks, t):
                return

            def sample(point, side):
                where = f"at {label} {'+' if side > 0 else '-'} {shift}: "
                return _call(self.c.forward, point, where=where)

            slopes = difference(sample, at, v, t, method, values)
            for check in checks:
                check.numeric = slopes[index[check.key]]
        except _Outside as e:
            for check in checks:
                check.verdict, check.reason = "domain", str(e)

    def kinked(self, samples, v, checks: list[Check], t: float) -> bool:
        """Mark as skipped the checks whose finite difference (of step `t`, at `samples`)
        straddles a kink that can show in what they differentiate (`shown`)."""
        kinks = {c.key: self.c.between(v, c.key, _switching) for c in checks}
        nodes = sorted({k for ks in kinks.values() for k in ks})
        if not nodes:
            return False
        sides = [_call(self.c.switches, s, nodes, where="") for s in samples]
        crossed = {k: [s[j] for s in sides] for j, k in enumerate(nodes)
                   if len({_sign(s[j]) for s in sides}) > 1}
        for check in checks:
            hit = self.shown(samples, check, {k: crossed[k] for k in kinks[check.key]
                                              if k in crossed}, t)
            if hit:
                gate, place = self.c.where(hit[0])
                check.verdict = "skip"
                check.reason = f"{KINK} {gate} ({place})"
        return all(c.verdict == "skip" for c in checks)

    def shown(self, samples, check: Check, crossed: dict[int, list[float]], t: float
              ) -> list[int]:
        """The gates of `crossed` (node: where it switches at each sample) whose switching
        can show in `check`'s finite difference of step `t`.

        A gate that switches changes its value by at most `2 |switch|` (a kink: `abs`,
        `max`) or 2 (a step: `sign`, `share`); the checked quantity then moves by that
        times its leverage on the gate (the gate's adjoint), and the difference by that
        over `t`. Where this stays below a tenth of the check's tolerance at every sample,
        the function is smooth there however the gate switches: the `max` inside a
        written-out `logsumexp`, which only keeps `exp` from overflowing, moves nothing."""
        if not crossed:
            return []
        nodes = list(crossed)
        levers = [self.c.leverage(s, check.key, nodes) for s in samples]
        rtol, atol = self.tolerance(check.method)
        limit = (atol + rtol * abs(check.analytic)) / 10
        shown = []
        for j, k in enumerate(nodes):
            kink = GATES[self.c.graph.nodes[k].op].kink
            jump = max(2 * abs(x) for x in crossed[k]) if kink else 2.0
            if not max(abs(lever[j]) for lever in levers) * jump / t <= limit:
                shown.append(k)
        return shown

    def judge(self, check: Check, tolerance_of: str | None = None) -> None:
        """Pass or fail `check` with the tolerances of `tolerance_of` (default: its method)."""
        if check.verdict != "pass":
            return
        if not math.isfinite(check.analytic):
            check.verdict, check.reason = "domain", _not_finite(check)
            return
        if check.numeric is None or not math.isfinite(check.numeric):
            check.verdict, check.reason = "domain", "the numerical derivative is not finite"
            return
        rtol, atol = self.tolerance(tolerance_of or check.method)
        check.tolerance = atol + rtol * abs(check.numeric)
        if not check.abs_error <= check.tolerance:
            check.verdict = "fail"

    # -- blame ------------------------------------------------------------------

    def blame(self, at: dict[str, float], check: Check) -> Blame | None:
        """The first gate between `check.input` and `check.output` whose rule is wrong at `at`."""
        graph = self.c.graph
        values = run(graph, at)
        feeds = self.c.feeds[check.output]
        # The nodes that depend on the input (along a direction: on any input).
        reach = [n.op != "const" if check.input is None else (n.op, n.attr) == ("input", check.input)
                 for n in graph.nodes]
        for i, node in enumerate(graph.nodes):
            reach[i] = reach[i] or any(reach[a] for a in node.args)
        # A gate's own numerical derivative is judged with the central tolerances, or looser.
        rtol, atol = (max(t, c) for t, c in zip(self.tolerance(self.difference),
                                                DEFAULT_TOLERANCES["central"]))
        for i, node in enumerate(graph.nodes):
            if not (node.op in GATES and reach[i] and i in feeds):
                continue
            args = [values[a] for a in node.args]
            const = [graph.nodes[a].op == "const" for a in node.args]
            rule = _local_partials(node.op, args, const)
            if rule is None:
                continue
            for j, a in enumerate(node.args):
                if const[j] or not reach[a] or not math.isfinite(rule[j]):
                    continue  # outside the gate's domain: nothing to judge
                numeric = _local_numeric(GATES[node.op], args, j, rule[j], rtol, atol)
                if numeric is not None and not _agrees(rule[j], numeric, rtol, atol):
                    gate, place = self.c.where(i)
                    return Blame(check.output, check.input, gate, place, j + 1, rule[j], numeric)
        return None


def _local_partials(op: str, args: list[float], const: list[bool]) -> list[float] | None:
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


def _agrees(analytic: float, numeric: float, rtol: float, atol: float) -> bool:
    return abs(analytic - numeric) <= atol + rtol * abs(numeric)


def _local_numeric(gate: Gate, args: list[float], j: int, rule: float, rtol: float,
                   atol: float) -> float | None:
    """The numerical derivative of `gate.fn` in argument `j` at `args`: the first
    estimate of `_local_estimates` that agrees with `rule`, else the first (the most
    accurate); None when there is none."""
    first = None
    for estimate in _local_estimates(gate, args, j):
        if _agrees(rule, estimate, rtol, atol):
            return estimate
        first = estimate if first is None else first
    return first


def _local_steps(x: float) -> list[float]:
    """The central-difference steps a gate's local check tries at `x`, in order: the
    default step, each of `RETRY_SCALES` times it and, for `0 < |x| < 1`, the step
    relative to `|x|` alone; each representable at `x`."""
    steps = [default_h(x, "central") * scale for scale in (1.0, *RETRY_SCALES)]
    if 0 < abs(x) < 1:
        steps.append(default_h(1.0, "central") * abs(x))
    return [representable(x, h) for h in steps]


def _local_estimates(gate: Gate, args: list[float], j: int):
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
    for h in _local_steps(x):
        lo, hi = list(args), list(args)
        lo[j] -= h
        hi[j] += h
        if gate.kink and len({_sign(_switch(p)) for p in (lo, args, hi)}) > 1:
            continue
        try:
            estimate = (gate.fn(*hi) - gate.fn(*lo)) / (2 * h)
        except DOMAIN_ERRORS:
            continue
        if math.isfinite(estimate):
            yield estimate


def _draw_point(circuit: _Circuit, rng: random.Random, fixed: dict[str, float]):
    """A point with the `fixed` values and the rest drawn; redrawn while undefined."""
    for attempt in range(1, MAX_DRAWS + 1):
        at = {name: fixed[name] if name in fixed else random_value(rng) for name in circuit.inputs}
        if len(fixed) == len(at) or circuit.defined(at) or attempt == MAX_DRAWS:
            return at, attempt


def _describe(kind: str, drawn: list[str], attempts: int) -> str:
    parts = [kind]
    if drawn:
        parts.append(f"drawn: {_buses(drawn)}")
    if attempts > 1:
        parts.append(f"{attempts - 1} earlier draw{'s' if attempts > 2 else ''} "
                     "outside the domain")
    return "; ".join(parts)


def _buses(names) -> str:
    """Input elements named by bus, each once (`W1, b1, y`): a value is given, defaulted or
    drawn for a whole bus at a time, and a bus of thousands of elements stays one word."""
    return ", ".join(by_bus(names))


def points(circuit: _Circuit, given: dict[str, float], defaults: dict[str, float],
           n: int, rng: random.Random):
    """The points to check, as (label, values): the fixed point, then `n` random ones."""
    fixed = {**defaults, **given}
    at, attempts = _draw_point(circuit, rng, fixed)
    missing = [name for name in circuit.inputs if name not in fixed]
    defaulted = set(defaults) - set(given)
    kind = ("the given values and defaults" if given and defaulted
            else "the given values" if given else "the defaults" if defaulted
            else "random" if circuit.inputs else "no inputs")
    yield _describe(kind, missing if fixed else [], attempts if missing else 1), at
    for k in range(n):
        at, attempts = _draw_point(circuit, rng, given)
        kept = f", keeping {_buses(given)}" if given else ""
        yield _describe(f"random point {k + 1}{kept}", [], attempts), at


ON_ITS_OWN = "checked without its circuit: kinks are not recognised and no gate can be blamed"
COMPARE = " (verify CIRCUIT.circ --module MODULE.py compares a module with its circuit)"


def verify_circuit(module, forward: Graph | None, given: dict[str, float] | None = None, *,
                   n_points: int = 0, seed: int = 0, difference: str = "central",
                   rtol: float | None = None, atol: float | None = None, h: float | None = None,
                   fast: bool = False, reference=None, target: str = "python") -> Report:
    """Check `module.backward` against numerical derivatives of `module.forward`.

    `module` follows the generated-module contract (`api.check_module`). `forward` is
    its circuit's optimized forward graph (`compile_graphs(...)[0]`), used for kinks,
    the complex step and blame; None checks the module on its own: no kinks, no blame,
    the complex step only if its `forward` accepts complex numbers. `reference`, with
    `forward`, is the module circuitc generates from that circuit (`load(path)`), for a
    `module` that may not be it: each point then also compares the two, and a
    difference fails, naming the first wire that differs. `given` are values fixed on
    the command line. `target` is the one circuitc compiled `module` for, which says what
    it raises outside its domain (`gates.TARGET_DOMAIN_ERRORS`). See the module docstring
    for every choice made here.
    """
    if difference not in DIFFERENCES:
        raise ValueError(f"difference must be one of {', '.join(DIFFERENCES)}")
    if reference is not None and forward is None:
        raise ValueError("a reference module needs the forward graph of its circuit")
    circuit_file = None if forward is None else forward.filename
    interface = None if reference is None else _interface(module, reference)
    if interface is not None:  # not comparable: check the module on its own
        forward = reference = None
    circuit = _Circuit(module, forward, reference, target)
    checker = _Checker(circuit, difference, rtol, atol, h)
    rtol, atol = checker.tolerance(difference)
    rng = random.Random(seed)
    module_file = _module_file(module) if circuit.foreign else None
    report = Report(module_file or circuit_file, difference, rtol, atol, h, fast, seed, [],
                    module=module_file, circuit=circuit_file, graph=forward is not None,
                    interface=interface)
    if forward is None:
        report.notes.append(ON_ITS_OWN + ("" if interface else COMPARE))
    for label, at in points(circuit, dict(given or {}), dict(getattr(module, "DEFAULTS", {})),
                            n_points, rng):
        direction = _direction(rng, at, circuit.wrt, h) if fast else None
        report.points += _off_kinks(checker, label, at, direction, rng, len(report.points) + 1)
    _fallback(report, checker)
    return report


def _point(checker: _Checker, label: str, at: dict[str, float], direction) -> PointReport:
    """`checker.point`, compared with the circuit's module where there is a reference,
    its failures blamed. A point at which circuitc's module raised an exception that is
    not a domain error (`_Raised`) fails with what it raised."""
    c = checker.c
    try:
        point = checker.point(label, at, direction)
    except _Raised as e:
        return PointReport(label, dict(at), error=str(e))
    if c.reference is not None and point.outputs is not None:
        point.mismatch = _compare(c, at, point, direction, *checker.tolerance(checker.difference))
    if point.mismatch is None:  # a module that is not its circuit's is not blamed on its gates
        _blame(checker, point, at, c.graph is not None)
    return point


# How far a point whose checks all met kinks is moved, relative to each input, in turn.
NEARBY = (1e-3, 1e-2, 1e-1)


def _off_kinks(checker: _Checker, label: str, at: dict[str, float], direction,
               rng: random.Random, number: int) -> list[PointReport]:
    """The report of point `number`, at `at`; and, when nothing was judged there because
    each check that could be met a kink, the report of a point near it: each input moved
    by `NEARBY[k] * d * max(1, |x|)`, `d` drawn like an input value, for the first `k` at
    which something is judged (else the last)."""
    point = _point(checker, label, at, direction)
    if _judged(point) or not any(c.reason.startswith(KINK) for c in point.checks):
        return [point]
    for scale in NEARBY:
        near = {name: x + scale * random_value(rng) * max(1.0, abs(x)) for name, x in at.items()}
        moved = _point(checker, f"near point {number}, where every check met a kink", near,
                       direction)
        if _judged(moved):
            break
    return [point, moved]


def _judged(point: PointReport) -> bool:
    """Whether anything was judged at `point`: a check passed or failed, or the point failed."""
    return (point.error is not None or point.mismatch is not None
            or any(c.verdict in ("pass", "fail") for c in point.checks))


def _direction(rng: random.Random, at: dict[str, float], names, h: float | None
               ) -> dict[str, float]:
    """A random direction for `fast` over `names`, scaled to the inputs unless `h` is given.

    Continuous weights, not just signs: with ±1 two equal and opposite errors (a rule that
    swaps its inputs' adjoints) would cancel half the time."""
    return {name: random_value(rng) * (1.0 if h is not None else max(1.0, abs(at[name])))
            for name in names}


def _blame(checker: _Checker, point: PointReport, at: dict[str, float], graph: bool) -> None:
    """Blame each failed check of `point` on a gate (with the circuit's `graph`), or list it
    as unblamed."""
    for check in point.checks:
        if check.verdict == "fail":
            found = checker.blame(at, check) if graph else None
            if found:
                point.blame.append(found)
            else:
                point.unblamed.append(check.name)


def _fallback(report: Report, checker: _Checker) -> None:
    """Record the tolerances of checks that fell back from the complex step, if any did."""
    if report.difference == "complex" and any(c.method == "central" for p in report.points
                                              for c in p.checks):
        report.fallback = checker.tolerance("central")


# -- second order -----------------------------------------------------------------

def verify_hessian(module, forward: Graph | None, given: dict[str, float] | None = None, *,
                   n_points: int = 0, seed: int = 0, difference: str = "central",
                   rtol: float | None = None, atol: float | None = None, h: float | None = None,
                   fast: bool = False, target: str = "python") -> Report:
    """Check `module`'s second derivatives against numerical derivatives of its gradient.

    `module` follows the generated-module contract and has `hessian` or `hvp` (compiled
    with `hessian=True`): its Hessian (`hessian`, else `hvp` along each unit vector) is
    compared, entry by entry, with numerical derivatives of the gradient `backward`
    returns; with `fast`, `u · H v` (`hvp`) with numerical derivatives of `u · gradient`
    along `v`, for random `u` and `v`. `forward`, the circuit's optimized forward graph,
    gives the kinks, the complex step (on its gradient graph) and blame; None checks the
    module on its own. Options as `verify_circuit`; see the module docstring.
    """
    if difference not in DIFFERENCES:
        raise ValueError(f"difference must be one of {', '.join(DIFFERENCES)}")
    if not (hasattr(module, "hessian") or hasattr(module, "hvp")):
        raise ValueError("a module without hessian or hvp has no second derivatives to check")
    circuit = _Gradient(module, forward, fast, target)
    checker = _SecondOrder(circuit, difference, rtol, atol, h)
    rtol, atol = checker.tolerance(difference)
    rng = random.Random(seed)
    module_file = _module_file(module) if circuit.foreign else None
    circuit_file = None if forward is None else forward.filename
    report = Report(module_file or circuit_file, difference, rtol, atol, h, fast, seed, [],
                    module=module_file, circuit=circuit_file, graph=forward is not None,
                    order=2)
    if forward is None:
        report.notes.append(ON_ITS_OWN)
    for label, at in points(circuit, dict(given or {}), dict(getattr(module, "DEFAULTS", {})),
                            n_points, rng):
        direction = None
        if fast:
            direction = _direction(rng, at, circuit.wrt, h)
            circuit.project({name: random_value(rng) for name in circuit.wrt})
        report.points += _off_kinks(checker, label, at, direction, rng, len(report.points) + 1)
    _fallback(report, checker)
    return report


# (rtol, atol) of second derivatives, by difference; see the module docstring and docs/verify.md.
SECOND_ORDER_TOLERANCES = {"central": (1e-5, 1e-7), "forward": (1e-3, 1e-5),
                           "complex": (1e-10, 1e-12)}


def _unit(k: int, n: int) -> list[float]:
    return [float(j == k) for j in range(n)]


def _dot(u, g) -> float | complex:
    """`sum(u_i * g_i)`, summed exactly (real and imaginary parts apart)."""
    terms = [a * b for a, b in zip(u, g)]
    if any(type(t) is complex for t in terms):
        return complex(math.fsum(t.real for t in terms), math.fsum(t.imag for t in terms))
    return math.fsum(terms)


def _third(result, rows=tuple) -> tuple:
    """The third value a foreign `hessian` or `hvp` returned (as `rows` makes it a
    sequence); `()` if there is none."""
    try:
        _, _, third = result
        return tuple(rows(third))
    except (TypeError, ValueError):
        return ()


class _Lazy(dict):
    """A dict that makes a missing value with `make(key)`, once."""

    def __init__(self, make):
        super().__init__()
        self.make = make

    def __missing__(self, key):
        value = self[key] = self.make(key)
        return value


def _gradient_graph(forward: Graph, wrt: tuple[str, ...]) -> tuple[Graph, dict]:
    """One graph computing each output's gradient on its own (`grad` of the graph with that
    output alone), and the nodes of each: `{(output, input): [node], (output, None): [the
    nodes of every input of wrt]}`."""
    graph, roots = forward, {}
    for out, node in forward.outputs:
        graph = grad(replace(graph, outputs=((out, node),)), wrt)
        for name, n in graph.grads:
            roots[out, name] = [n]
        roots[out, None] = [n for _, n in graph.grads]
    return replace(graph, outputs=forward.outputs, grads=()), roots


class _Gradient(_Circuit):
    """A module's gradient seen as a module to check: its outputs are the gradient's
    components, keyed `(output, input)`, whose derivatives are the Hessian's entries. After
    `project(u)` it has one output per module output instead, `u · gradient`, keyed
    `(output, None)`, whose derivative along `v` is `u · H v`.

    `f` is the module as first order sees it (its forward graph gives blame its gates).
    With the circuit, `graph` is its gradient graph, each output's gradient made on its
    own (so that one output's kinks are not another's): the complex step evaluates it on
    complex numbers, and its switching gates (kinks, and `step`, `sign` and `share`) are the
    gradient's kinks.
    """

    def __init__(self, module, forward: Graph | None, fast: bool = False, target: str = "python"):
        self.f = _Circuit(module, forward, target=target)
        self.module, self.foreign, self.reference = module, self.f.foreign, None
        self.domain, self.reversed = self.f.domain, None
        self.inputs, self.wrt, self.names = self.f.inputs, self.f.wrt, self.f.outputs
        self.outputs = tuple((out, name) for out in self.names for name in self.wrt)
        self.fast = fast
        self.u: dict[str, float] | None = None
        self.refused = None
        self.graph, self.feeds, self.inputs_of = None, {}, {}
        if forward is None:
            return
        self.graph, self.roots = _gradient_graph(forward, self.wrt)
        self.feeds = _Lazy(lambda key: self._ancestors(self.roots[key]))
        self._special_gates()

    def project(self, u: dict[str, float]) -> None:
        """From now on check `u · gradient` of each output."""
        self.u = u
        self.outputs = tuple((out, None) for out in self.names)

    def quantity(self, key) -> dict[int, float]:
        """The gradient's component `key`; after `project`, `u · gradient` of an output."""
        if key[1] is not None:
            return {self.roots[key][0]: 1.0}
        weights: dict[int, float] = {}
        for node, name in zip(self.roots[key], self.wrt):  # two components may be one node
            weights[node] = weights.get(node, 0.0) + self.u[name]
        return weights

    def _components(self, grads: dict[str, tuple]) -> tuple:
        """The values of `outputs`, from each output's gradient over `wrt`."""
        if self.u is not None:
            u = [self.u[name] for name in self.wrt]
            return tuple(_dot(u, grads[out]) for out in self.names)
        return tuple(g for out in self.names for g in grads[out])

    def values(self, at: dict[str, float]) -> tuple[float, ...]:
        """The module's outputs."""
        return self.f.forward(at)

    def forward(self, at: dict[str, float]) -> tuple[float, ...]:
        return self._components(self.f.gradients(at))

    def complex_forward(self, at: dict) -> tuple[complex, ...]:
        if self.foreign:
            args = [at[name] for name in self.inputs]
            return self._components({
                out: _pair(self.call("backward", *args, *_unit(k, len(self.names))))[1]
                for k, out in enumerate(self.names)})
        values = run(self.graph, at, apply=_complex_apply)
        return self._components({out: [values[n] for n in self.roots[out, None]]
                                 for out in self.names})

    def accepts_complex(self, at: dict[str, float]) -> bool:
        if not self.foreign or self.refused is not None:
            return self.refused is None
        try:
            self.module.backward(*(complex(at[name], 1e-300) for name in self.inputs),
                                 *_unit(0, len(self.names)))
        except DOMAIN_ERRORS:
            pass  # undefined here: the complex step will say so
        except Exception as e:  # noqa: BLE001 (a TypeError from `math`, most often)
            self.refused = f"the module's backward does not accept complex numbers ({raised(e)})"
        return self.refused is None

    def hessian(self, at: dict[str, float], k: int) -> tuple[tuple[float, ...], ...]:
        """The Hessian of output `k` over `wrt`: the module's `hessian`, else its `hvp`
        along each unit vector, a column each."""
        n = len(self.wrt)
        if not hasattr(self.module, "hessian"):
            columns = [self.hvp(at, {m: float(m == name) for m in self.wrt}, k)
                       for name in self.wrt]
            return tuple(tuple(column[i] for column in columns) for i in range(n))
        rows = _third(self.call("hessian", *(at[name] for name in self.inputs),
                                *_unit(k, len(self.names))), hessian_rows)
        rows = tuple(tuple(row) if isinstance(row, tuple | list) else () for row in rows)
        if len(rows) != n or any(len(row) != n for row in rows):
            raise self.error(f"its hessian did not return (outputs, grads, H) with H {n}×{n}, "
                             "a row and a column per name in WRT")
        return rows

    def hvp(self, at: dict[str, float], v: dict[str, float], k: int) -> tuple[float, ...]:
        """The Hessian of output `k` times `v`: the module's `hvp`, else from its `hessian`."""
        if not hasattr(self.module, "hvp"):
            return tuple(_dot([v[name] for name in self.wrt], row) for row in self.hessian(at, k))
        hv = _third(self.call("hvp", *(at[name] for name in self.inputs),
                              *(v[name] for name in self.wrt), *_unit(k, len(self.names))))
        if len(hv) != len(self.wrt):
            raise self.error(f"its hvp did not return (outputs, grads, hv) with "
                             f"{len(self.wrt)} products, one per name in WRT")
        return hv

    def defined(self, at: dict[str, float]) -> bool:
        """Whether the outputs, the gradients and the second derivatives are defined and
        finite at `at` (with `fast`, the Hessian times a vector of ones)."""
        ones = dict.fromkeys(self.wrt, 1.0)
        try:
            return self.f.defined(at) and all(
                _finite(self.hvp(at, ones, k)) if self.fast
                else all(_finite(row) for row in self.hessian(at, k))
                for k in range(len(self.names)))
        except DOMAIN_ERRORS:
            return False
        except _Raised:
            return True


class _SecondOrder(_Checker):
    """`_Checker` on a module's gradient (`_Gradient`), with points and blame of its own."""

    defaults = SECOND_ORDER_TOLERANCES

    def __init__(self, circuit: _Gradient, *options):
        super().__init__(circuit, *options)
        # circuitc's own `hessian` mirrors its upper triangle: the lower one is not checked.
        self.symmetric = not circuit.foreign and hasattr(circuit.module, "hessian")
        self.local: dict[tuple, tuple] = {}  # (op, args, const) -> `_local_disagreements`

    def point(self, label: str, at: dict[str, float], direction=None) -> PointReport:
        c = self.c
        report = PointReport(label, dict(at))
        outputs = range(len(c.names))
        try:
            values = _call(c.values, at, where="")
            if not _finite(values):
                raise _Outside(f"not finite: {_values(dict(zip(c.names, values)))}")
            report.outputs = dict(zip(c.names, values))
            grads = _call(c.forward, at, where="the gradient: ")
            if not _finite(grads):
                raise _Outside("the gradient is not finite")
            if direction is None:
                hessians = [_call(c.hessian, at, k, where="the Hessian: ") for k in outputs]
            else:
                products = [_call(c.hvp, at, direction, k, where="the Hessian times v: ")
                            for k in outputs]
        except _Outside as e:
            report.domain = str(e)
            return report
        if direction is not None:
            u = [c.u[name] for name in c.wrt]
            analytic = {(out, None): _dot(u, products[k]) for k, out in enumerate(c.names)}
            report.checks += self.along(at, direction, None, analytic, grads)
            return report
        for j, name in enumerate(c.wrt):
            analytic = {(out, row): hessians[k][i][j] for k, out in enumerate(c.names)
                        for i, row in enumerate(c.wrt) if i <= j or not self.symmetric}
            report.checks += self.along(at, {name: 1.0}, name, analytic, grads)
        place = {key: n for n, key in enumerate(c.outputs)}
        report.checks.sort(key=lambda check: (place[check.key], c.wrt.index(check.input)))
        return report

    def blame(self, at: dict[str, float], check: Check) -> Blame | None:
        """The first gate between the check's inputs and its output whose second
        derivative (its rule, differentiated) is wrong at `at`."""
        f = self.c.f
        graph = f.graph
        values = run(graph, at)
        feeds = f.feeds[check.output]
        sources = {check.of, check.input} - {None}  # none along directions: every input
        reach = [n.op == "input" and n.attr in sources if sources else n.op != "const"
                 for n in graph.nodes]
        for i, node in enumerate(graph.nodes):
            reach[i] = reach[i] or any(reach[a] for a in node.args)
        rtol, atol = (max(t, c) for t, c in zip(self.tolerance(self.difference),
                                                self.defaults["central"]))
        for i, node in enumerate(graph.nodes):
            if not (node.op in GATES and reach[i] and i in feeds):
                continue
            key = (node.op, tuple(values[a] for a in node.args),
                   tuple(graph.nodes[a].op == "const" for a in node.args))
            if key not in self.local:
                self.local[key] = _local_disagreements(*key, rtol, atol)
            for a, b, rule, numeric in self.local[key]:
                if reach[node.args[a]] or reach[node.args[b]]:
                    gate, place = f.where(i)
                    return Blame(check.output, check.input, gate, place, a + 1, rule, numeric,
                                 argument2=b + 1, derivative=check.name)
        return None


def _local_disagreements(op: str, args: tuple[float, ...], const: tuple[bool, ...],
                         rtol: float, atol: float) -> tuple:
    """The entries `(a, b, rule, numeric)` of a gate's local Hessian at `args` (its
    derivative rule differentiated by circuitc: `hessian_graph` of the one-gate circuit's
    `grad`) that disagree with every numerical derivative, along argument `b`, of its local
    gradient's component `a` (`_local_second_estimates`); `numeric` is the first, the most
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
        for estimate in _local_second_estimates(gradient, at, component[a], names[c]):
            if _agrees(rule, estimate, rtol, atol):
                break
            first = estimate if first is None else first
        else:
            if first is not None:
                found.append((a, c, rule, first))
    return tuple(found)


def _local_second_estimates(gradient: Graph, at: dict[str, float], node: int, name: str):
    """Finite estimates of the derivative of `node` of a one-gate gradient graph along its
    input `name`, retried as `_local_estimates` retries: the complex step where every gate
    of the graph has a `cfn`, then central differences with the default step, each
    of `RETRY_SCALES` times it and, for `0 < |x| < 1`, the step relative to `|x|` alone. A
    step across a switch of one of its gates (`step`, `relu`, ...) or outside the domain
    gives none."""
    x = at[name]
    gates = [i for i, n in enumerate(gradient.nodes) if n.op in GATES]
    switching = [i for i in gates if _switching(GATES[gradient.nodes[i].op])]
    if not any(GATES[gradient.nodes[i].op].no_complex_step for i in gates):
        t = default_h(x, "complex")
        try:
            estimate = run(gradient, {**at, name: complex(x, t)}, apply=_complex_apply)[node].imag / t
        except DOMAIN_ERRORS:
            estimate = math.nan
        if math.isfinite(estimate):
            yield estimate
    for h in _local_steps(x):
        try:
            runs = [run(gradient, {**at, name: x + side * h}) for side in (-1.0, 0.0, 1.0)]
        except DOMAIN_ERRORS:
            continue
        if any(len({_sign(_switch([r[a] for a in gradient.nodes[k].args])) for r in runs}) > 1
               for k in switching):
            continue
        estimate = (runs[2][node] - runs[0][node]) / (2 * h)
        if math.isfinite(estimate):
            yield estimate


# -- a module against the module circuitc generates from its circuit ---------------

def _interface(module, reference) -> str | None:
    """How `module`'s INPUTS, OUTPUTS or WRT cannot be the circuit's, or None."""
    for attr in ("INPUTS", "OUTPUTS"):
        mine, theirs = tuple(getattr(module, attr)), tuple(getattr(reference, attr))
        if mine != theirs:
            return f"its {attr} are ({', '.join(mine)}), the circuit's ({', '.join(theirs)})"
    return None


def _same(a: float, b: float, rtol: float, atol: float) -> bool:
    """Whether two computations of one value agree: within the tolerance, or both NaN."""
    return a == b or (math.isnan(a) and math.isnan(b)) or abs(a - b) <= atol + rtol * abs(b)


def _compare(c: _Circuit, at: dict[str, float], point: PointReport, direction, rtol: float,
             atol: float) -> Mismatch | None:
    """How the module disagrees with `c.reference` at `at`, or None; fills in each check's
    `circuit` (the reference's gradient, or its inner product with `direction`)."""
    ref, graph = c.reference, c.graph
    args = [at[name] for name in c.inputs]
    found = Mismatch(graph.filename, [], [])
    try:
        values = outputs_of(ref, ref.forward(*args))
        grads = {out: dict(zip(ref.WRT, gradient_of(ref, args, k)))
                 for k, out in enumerate(c.outputs)}
    except DOMAIN_ERRORS as e:
        found.detail = f"circuitc's module for the circuit is undefined here ({e})"
        return found
    for check in point.checks:
        g = grads[check.output]
        check.circuit = (g[check.input] if direction is None
                         else math.fsum(g[n] * w for n, w in direction.items()))
    mine = c.gradients(at)
    found.outputs = [out for out, v in zip(c.outputs, values)
                     if not _same(point.outputs[out], v, rtol, atol)]
    found.derivatives = [_derivative(out, name) for out in c.outputs
                         for name, g in zip(c.wrt, mine[out])
                         if not _same(g, grads[out][name], rtol, atol)]
    if not (found.outputs or found.derivatives):
        return None
    if found.outputs:
        _locate(found, c, "forward", args, rtol, atol)
    else:
        k = next(k for k, out in enumerate(c.outputs) if any(
            d.startswith(f"d{out}/") for d in found.derivatives))
        _locate(found, c, "backward", args + [float(j == k) for j in range(len(c.outputs))],
                rtol, atol)
    return found


def _locate(found: Mismatch, c: _Circuit, function: str, args: list[float], rtol: float,
            atol: float) -> None:
    """Name in `found` the first wire whose value or adjoint differs when `function` of the
    module and of the reference run on `args`, in the order the reference computes them.

    A wire is found by its name: both modules name wires after the circuit and adjoints
    `d_<wire>`; numbered temporaries (`t1`) are passed over, as they may number
    differently."""
    mine_fn, ref_fn = getattr(c.module, function), getattr(c.reference, function)
    mine, theirs = _locals_at_return(mine_fn, args), _locals_at_return(ref_fn, args)
    wires = {n.name for n in c.graph.nodes if n.name} | set(c.inputs)
    values = set(c.reference.forward.__code__.co_varnames)  # the wires, not their adjoints
    code = ref_fn.__code__
    common = False
    for name in code.co_varnames[code.co_argcount:]:
        if name not in mine or (re.fullmatch(r"t\d+", name) and name not in wires):
            continue
        try:
            m, r = float(mine[name]), float(theirs[name])
        except (KeyError, TypeError, ValueError):
            continue  # not a number (an exception caught, a helper's result)
        common = True
        if not _same(m, r, rtol, atol):
            found.variable, found.module_value, found.circuit_value = name, m, r
            found.adjoint = name.startswith("d_") and name not in values
            found.module_line = _assigned_at(mine_fn, name)
            found.circuit_line = _circuit_line(c, found.wire, found.adjoint, found.circuit)
            return
    what = "values it returns" if function == "forward" else "gradients it returns"
    found.detail = (f"every wire of the circuit agrees, but the {what} differ" if common else
                    "none of the circuit's wires is found by name in the module, so none "
                    "can be named")


def _locals_at_return(fn, args: list[float]) -> dict:
    """`fn(*args)`'s local variables as it returns (empty for a function without Python
    code, or one that raises)."""
    code = getattr(fn, "__code__", None)
    seen: dict = {}

    def profile(frame, event, arg):
        if event == "return" and frame.f_code is code and not seen:
            seen.update(frame.f_locals)
    before = sys.getprofile()
    sys.setprofile(profile)
    try:
        fn(*args)
    except Exception:  # noqa: BLE001 (its values are compared, its failures reported elsewhere)
        seen.clear()
    finally:
        sys.setprofile(before)
    return seen


def _assigned_at(fn, name: str) -> str | None:
    """`file:line` of the first assignment to the local `name` in `fn`."""
    code = getattr(fn, "__code__", None)
    for instruction in dis.get_instructions(code) if code else ():
        if instruction.opname.startswith("STORE_") and instruction.argval == name:
            return f"{code.co_filename}:{instruction.positions.lineno}"
    return None


def _circuit_line(c: _Circuit, wire: str, adjoint: bool, circuit: str) -> str | None:
    """`circuit:N` (through `gate` calls `circuit:N, in g (line M)`): where the circuit
    computes `wire`'s value, or its adjoint, taken from the origin of the node that the
    graph (for an adjoint, its gradient graph) names so. That origin is what circuitc's
    emitters write beside the line and record in `_WHERE`, so any module is placed alike,
    whatever its comments say. None where no node is named so (a module that names its
    variables otherwise)."""
    graph = grad(c.graph, c.wrt) if adjoint else c.graph
    name = ADJOINT + wire if adjoint else wire
    origin = next((n.origin for n in graph.nodes if n.name == name and n.origin), None)
    return None if origin is None else f"{circuit}:{origin.lines.removeprefix('line ')}"
