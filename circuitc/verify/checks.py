"""Checking the derivatives of a module at one point against numerical derivatives: the
checks of first order (`Checker`), which second order's (`second.SecondOrderChecker`) extend.

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
it is tried again with `numerics.RETRY_SCALES` times the default step (0.1, 10, 0.01,
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
output by that times the gate's adjoint (`Checker.shown`); where this, over the step,
stays below a tenth of the tolerance at every point of the difference, the kink is
passed over. So the `max` that a written-out `logsumexp` subtracts for stability, whose
adjoint is 0 (to rounding), is no kink, whichever way the `max` is folded. When every
check at a point that could be judged was skipped at a kink, a point near it is checked
too: each input moved by `first.NEARBY` (relative), the first that judges something.

Domain: a `ValueError` or `ArithmeticError` (`log(-1)`, `1/0`, overflow) while
evaluating the point, its gradient, or the points of a finite difference, or a
value that is not finite (an output, which puts the whole point outside; an
analytic gradient; a numerical derivative), makes the check `domain`, never `fail`.
From circuitc's module for the numpy target, only an `ArithmeticError` is a domain
error (`gates.TARGET_DOMAIN_ERRORS`: NumPy's ValueError is a shape error); any other
exception from circuitc's module fails the point, saying what it raised. A run that
judges nothing is not `ok`.
"""

from __future__ import annotations

import math

from ..gates import DOMAIN_ERRORS, GATES
from ..graph import run
from ..numerics import RETRY_SCALES, default_h, difference, representable, shifted
from ..report import values as _values
from .blame import agrees, local_numeric, local_partials
from .checked import Checked, finite, side, switching
from .report import KINK, Blame, Check, PointReport

# (rtol, atol) by difference; see the module docstring and docs/verify.md.
DEFAULT_TOLERANCES = {"central": (1e-6, 1e-8), "forward": (1e-3, 1e-5),
                      "complex": (1e-11, 1e-13)}
# A float32 module's, first and second order alike: its finite differences err by about
# eps^(2/3) = 2.4e-5 (central) and sqrt(eps) = 3.5e-4 (forward) times the output's scale,
# and its derivatives are rounded to float32; the complex step, taken on the circuit's
# graph in float64, leaves only that rounding. Measured worst errors: docs/verify.md.
FLOAT32_TOLERANCES = {"central": (5e-3, 5e-3), "forward": (1e-1, 1e-1), "complex": (1e-4, 1e-4)}


def new_check(key, label: str | None, analytic: float, method: str) -> Check:
    """A check of `key` (an output, or (output, of) for a second derivative) along `label`."""
    if isinstance(key, tuple):
        return Check(key[0], label, analytic, method=method, order=2, of=key[1])
    return Check(key, label, analytic, method=method)


NOT_FINITE = "the gradient is not finite"  # why a check with such an analytic value is not judged


def not_finite(check: Check) -> str:
    """Why `check`, whose analytic value is not finite, is not judged."""
    return NOT_FINITE if check.order == 1 else "the second derivative is not finite"


RETRIED = "agrees with h = {:.3g}; the default step does not suit the curvature or the domain here"


class Outside(Exception):
    """The circuit, or a finite difference of it, is undefined here."""


def evaluated(fn, *args, where: str = ""):
    """`fn(*args)`; a domain error becomes `Outside`, its message after `where`."""
    try:
        result = fn(*args)
    except DOMAIN_ERRORS as e:
        raise Outside(f"{where}{e}") from None
    return result


class Checker:
    """The first-order checks of one module (`checked.Checked`) with one difference, tolerances
    and step (None: the defaults): `point` checks every derivative at a point, `blame`
    finds the gate a failed check comes from."""

    defaults = DEFAULT_TOLERANCES  # (rtol, atol) by method, unless given
    float32_defaults = FLOAT32_TOLERANCES  # those of a module that computes in float32

    def __init__(self, circuit: Checked, difference: str, rtol: float | None,
                 atol: float | None, h: float | None):
        self.c = circuit
        self.difference = difference
        self.rtol, self.atol, self.h = rtol, atol, h

    def tolerance(self, method: str) -> tuple[float, float]:
        """(rtol, atol) for a check by `method`: the given ones, else that method's defaults
        for the type the module computes in."""
        table = self.float32_defaults if self.c.dtype == "float32" else self.defaults
        rtol, atol = table[method]
        return (rtol if self.rtol is None else self.rtol, atol if self.atol is None else self.atol)

    # -- one point --------------------------------------------------------------

    def point(self, label: str, at: dict[str, float], direction=None) -> PointReport:
        report = PointReport(label, dict(at))
        try:
            values = evaluated(self.c.forward, at, where="")
            if not finite(values):
                raise Outside(f"not finite: {_values(dict(zip(self.c.outputs, values)))}")
            report.outputs = dict(zip(self.c.outputs, values))
            grads = evaluated(self.c.gradients, at, where="the gradient: ")
        except Outside as e:
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
        checks = [new_check(key, label, a, self.difference) for key, a in analytic.items()]
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
                check.verdict, check.reason = "domain", not_finite(check)
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
            trial = new_check(check.key, check.input, check.analytic, method)
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
            dtype = self.c.dtype
            t = (default_h(1.0, method, dtype) * abs(x) if relative
                 else self.h if self.h is not None else default_h(x, method, dtype))
            t = representable(x, scale * t, dtype)
        else:  # a direction already scaled to the inputs: one relative step
            t = scale * (self.h if self.h is not None else default_h(1.0, method, self.c.dtype))
        index = {out: k for k, out in enumerate(self.c.outputs)}
        for check in checks:
            check.h = t
        label, shift = (label, "h") if label is not None else ("the point", "h·v")
        try:
            if method == "complex":
                point = {n: complex(x, t * v[n]) if n in v else x for n, x in at.items()}
                result = evaluated(self.c.complex_forward, point, where=f"at {label} + i{shift}: ")
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
                return evaluated(self.c.forward, point, where=where)

            slopes = difference(sample, at, v, t, method, values)
            for check in checks:
                check.numeric = slopes[index[check.key]]
        except Outside as e:
            for check in checks:
                check.verdict, check.reason = "domain", str(e)

    def kinked(self, samples, v, checks: list[Check], t: float) -> bool:
        """Mark as skipped the checks whose finite difference (of step `t`, at `samples`)
        straddles a kink that can show in what they differentiate (`shown`)."""
        kinks = {c.key: self.c.between(v, c.key, switching) for c in checks}
        nodes = sorted({k for ks in kinks.values() for k in ks})
        if not nodes:
            return False
        sides = [evaluated(self.c.switches, s, nodes, where="") for s in samples]
        crossed = {k: [s[j] for s in sides] for j, k in enumerate(nodes)
                   if len({side(s[j]) for s in sides}) > 1}
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
            check.verdict, check.reason = "domain", not_finite(check)
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
            rule = local_partials(node.op, args, const)
            if rule is None:
                continue
            for j, a in enumerate(node.args):
                if const[j] or not reach[a] or not math.isfinite(rule[j]):
                    continue  # outside the gate's domain: nothing to judge
                numeric = local_numeric(GATES[node.op], args, j, rule[j], rtol, atol)
                if numeric is not None and not agrees(rule[j], numeric, rtol, atol):
                    gate, place = self.c.where(i)
                    return Blame(check.output, check.input, gate, place, j + 1, rule[j], numeric)
        return None
