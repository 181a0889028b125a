"""Numerical gradient checking: does `backward` agree with finite differences?

`verify_circuit(module, forward, ...)` compares the gradients the generated module's
`backward` returns with numerical derivatives of its `forward`, at one or more
points, and returns a `Report`: one `Check` per (output, input) and point, each
with a verdict `pass`, `fail`, `skip` (the finite difference straddles a kink)
or `domain` (the circuit, or its finite difference, is undefined there).

Numerical derivatives (`difference`):
- `central`: `(f(x+h) - f(x-h)) / 2h`, error O(h²); the default.
- `forward`: `(f(x+h) - f(x)) / h`, the textbook's, error O(h).
- `complex`: the complex step `Im f(x + ih) / h`, evaluated on the gate graph with
  each gate's `cfn`. It subtracts nothing, so it is exact to rounding (about 1e-15
  relative) and `h` can be tiny. A gate without `cfn` (`relu`, `abs`, `max`, `min`)
  is not complex-analytic: an (output, input) pair whose path goes through one is
  checked by central differences instead, and the check's `note` says so.

Step `h`, unless given: per input, relative to its magnitude,
`eps**(1/3) * max(1, |x|)` (about 6e-6) for central differences, `sqrt(eps) * max(1, |x|)`
(about 1.5e-8) for forward differences, which balance truncation against rounding
error, and `1e-20 * max(|x|, 1e-200)` for the complex step. `h` is then rounded so
that `x + h` is exactly representable (`h = (x + h) - x`).

When a finite difference with the default step fails, or steps outside the domain,
it is tried again with `RETRY_SCALES` times the default step (0.1, 10, 0.01,
0.001) and, for an input with `0 < |x| < 1`, with the step relative to `|x|` alone;
the first that agrees is reported, with a note. One fixed step cannot suit every
circuit: near a pole the curvature wants a smaller one, where the output is large
and its slope small rounding wants a larger one, and near the edge of a domain
(`log(x)` at `x = 1e-6`) only a step smaller than the distance to the edge stays
inside. A real error in a derivative rule is orders of magnitude larger than the
error of any of these steps, so retrying does not hide it. A step given with `h`
is used as given, and never retried. A real step that does not move an input
(`x + h == x`, a given `h` below the input's resolution) measures nothing: the
check is `skip`, saying so, never `fail`. The complex step has no such limit.

Tolerance: a gradient passes when `|analytic - numeric| <= atol + rtol * |numeric|`.
The defaults depend on the difference (`DEFAULT_TOLERANCES`; the README compares
them with other gradient checkers and gives the measurements): (1e-6, 1e-8) for
central differences, whose error on the example circuits and on random ones stayed
below 2.5e-8 relative; (1e-3, 1e-5) for forward differences, below 1.7e-5; (1e-11,
1e-13) for the complex step, below 5.2e-14. A check that falls back from the complex
step to central differences uses the central defaults.

Kinks: a gate with the `kink` flag switches where its input crosses 0 (`relu`,
`abs`) or where its two inputs tie (`max`, `min`). When the points a finite
difference evaluates do not all lie strictly on one side of a kink that the output
depends on, the derivative there is not judged: the check is `skip`, naming the
gate. So `relu(x)` at `x = 0` is skipped, not failed.

Domain: a `ValueError` or `ArithmeticError` (`log(-1)`, `1/0`, overflow) while
evaluating the point, its gradient, or the points of a finite difference, or a
value that is not finite (an output, which puts the whole point outside; an
analytic gradient; a numerical derivative), makes the check `domain`, never `fail`.

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
one-gate circuit) against a central difference of its `fn`; the first gate whose
rule disagrees is named with its `file:line:col`. A gate whose rule or difference
is not finite there (`a * x` at `a = inf`) is outside its domain, and passed over.

Finite differences (`difference`) and the text tables (`circuitc.report`) are shared
with `circuitc step`.
"""

from __future__ import annotations

import math
import random
import sys
from dataclasses import dataclass, field

from .api import gradient_of, outputs_of
from .gates import DOMAIN_ERRORS, GATES, Gate
from .grad import grad
from .graph import Builder, Graph, run
from .report import table as _table
from .report import values as _values

EPS = sys.float_info.epsilon
DIFFERENCES = ("central", "forward", "complex")
# (rtol, atol) by difference; see the module docstring and the README.
DEFAULT_TOLERANCES = {"central": (1e-6, 1e-8), "forward": (1e-3, 1e-5),
                      "complex": (1e-11, 1e-13)}
MAX_DRAWS = 20
RETRY_SCALES = (0.1, 10.0, 0.01, 0.001)  # other steps tried, relative to the default


def default_h(x: float, difference: str) -> float:
    """The finite-difference step for an input at `x` (see the module docstring)."""
    if difference == "complex":
        return 1e-20 * max(abs(x), 1e-200)
    scale = EPS ** (1 / 3) if difference == "central" else math.sqrt(EPS)
    return scale * max(1.0, abs(x))


def _representable(x: float, h: float) -> float:
    """`h`, rounded so that `x + h` is exact; `h` itself if that rounds to nothing."""
    return ((x + h) - x) or h


def shifted(at: dict[str, float], v: dict[str, float], t: float) -> dict[str, float]:
    """The point `at + t·v`: each input named in `v` moved by `t * v[name]`, the others kept."""
    return {**at, **{name: at[name] + t * w for name, w in v.items()}}


def difference(f, at: dict[str, float], v: dict[str, float], t: float, method: str,
               f0: tuple[float, ...] | None = None) -> tuple[float, ...]:
    """The finite differences of `f` at `at` along `v`, with the step `t` used as given.

    `f(point, side)` returns a tuple of floats at `point`, which is `at + side·t·v`
    (`side` is 1.0, -1.0, or 0.0 for `at` itself, only for messages); the result has one
    slope per value. `forward`: `(f(at + t·v) - f(at)) / t`, with `f0` as `f(at)` when
    given; `central`: `(f(at + t·v) - f(at - t·v)) / 2t`, `f(at + t·v)` evaluated first.
    """
    f_plus = f(shifted(at, v, t), 1.0)
    if method == "forward":
        f_at = f(at, 0.0) if f0 is None else f0
        return tuple((fp - fa) / t for fp, fa in zip(f_plus, f_at))
    f_minus = f(shifted(at, v, -t), -1.0)
    return tuple((fp - fm) / (2 * t) for fp, fm in zip(f_plus, f_minus))


def draw(rng: random.Random) -> float:
    """One random input value: ±uniform[0.5, 2)."""
    sign = rng.choice((-1.0, 1.0))
    return sign * rng.uniform(0.5, 2.0)


@dataclass
class Check:
    """One gradient judged at one point: d`output`/d`input` (or along a direction)."""

    output: str
    input: str | None  # an input name, or None along a direction (`fast`)
    analytic: float | None = None
    numeric: float | None = None
    h: float | None = None
    verdict: str = "pass"  # pass | fail | skip | domain
    reason: str = ""  # why skipped or outside the domain
    method: str = ""  # the difference actually used
    note: str = ""  # e.g. why the complex step fell back to central differences
    tolerance: float | None = None  # atol + rtol * |numeric|, once judged

    @property
    def abs_error(self) -> float | None:
        if self.analytic is None or self.numeric is None:
            return None
        return abs(self.analytic - self.numeric)

    @property
    def rel_error(self) -> float | None:
        err = self.abs_error
        if err is None:
            return None
        return err / abs(self.numeric) if self.numeric else (0.0 if err == 0 else math.inf)

    @property
    def name(self) -> str:
        """`df/dx`, or `df along v` for a random direction."""
        return _derivative(self.output, self.input)

    def as_dict(self) -> dict:
        return {"output": self.output, "input": self.input, "analytic": self.analytic,
                "numeric": self.numeric, "h": self.h, "abs_error": self.abs_error,
                "rel_error": self.rel_error, "verdict": self.verdict, "reason": self.reason,
                "tolerance": self.tolerance, "method": self.method, "note": self.note}


@dataclass
class Blame:
    """The first gate whose local derivative rule disagrees with its numerical derivative."""

    output: str
    input: str
    gate: str  # the gate's label: 'sigmoid'
    where: str  # file:line:col
    argument: int  # which argument of the gate, from 1
    rule: float
    numeric: float

    @property
    def finding(self) -> str:
        return (f"the derivative rule of {self.gate} at {self.where} gives {self.rule!r} for its "
                f"argument {self.argument}, but its numerical derivative there is "
                f"{self.numeric!r}")

    def __str__(self) -> str:
        return f"{_derivative(self.output, self.input)}: {self.finding}"

    def as_dict(self) -> dict:
        return {"output": self.output, "input": self.input, "gate": self.gate,
                "where": self.where, "argument": self.argument, "rule": self.rule,
                "numeric": self.numeric, "message": str(self)}


@dataclass
class PointReport:
    label: str
    at: dict[str, float]
    outputs: dict[str, float] | None = None
    domain: str | None = None  # why the whole point is outside the domain
    checks: list[Check] = field(default_factory=list)
    blame: list[Blame] = field(default_factory=list)
    unblamed: list[str] = field(default_factory=list)  # failed checks no gate explains


@dataclass
class Report:
    filename: str
    difference: str
    rtol: float
    atol: float
    h: float | None
    fast: bool
    seed: int
    points: list[PointReport]
    fallback: tuple[float, float] | None = None  # (rtol, atol) of central-difference fallbacks

    def count(self, verdict: str) -> int:
        return sum(c.verdict == verdict for p in self.points for c in p.checks)

    @property
    def ok(self) -> bool:
        """Every judged gradient passed (vacuously true when none was judged)."""
        return self.count("fail") == 0

    @property
    def judged(self) -> int:
        return self.count("pass") + self.count("fail")


class _Circuit:
    """A compiled module and its forward graph, with what the checks need to know of them."""

    def __init__(self, module, forward: Graph):
        self.module = module
        self.graph = forward
        self.inputs = tuple(module.INPUTS)
        self.wrt = tuple(module.WRT)  # the inputs `gradients` differentiates, in its order
        self.outputs = dict(forward.outputs)
        nodes = forward.nodes
        # Nodes each output depends on, and the inputs each kink or non-analytic gate
        # depends on (a bit mask over `inputs`): enough to tell which of those gates
        # lie between an input and an output.
        self.feeds = {out: self._ancestors([n]) for out, n in forward.outputs}
        self.bit = {name: 1 << k for k, name in enumerate(self.inputs)}
        masks: list[int] = []
        for n in nodes:
            masks.append(self.bit[n.attr] if n.op == "input" else 0)
            for a in n.args:
                masks[-1] |= masks[a]
        self.inputs_of = {i: masks[i] for i, n in enumerate(nodes)
                          if n.op in GATES and (GATES[n.op].kink or GATES[n.op].cfn is None)}

    def _ancestors(self, roots: list[int]) -> set[int]:
        seen, stack = set(roots), list(roots)
        while stack:
            for a in self.graph.nodes[stack.pop()].args:
                if a not in seen:
                    seen.add(a)
                    stack.append(a)
        return seen

    def between(self, names, output: str, want) -> list[int]:
        """Special gates (`want(gate)` true) that depend on any of `names` and feed `output`."""
        mask = 0
        for name in names:
            mask |= self.bit[name]
        return [i for i, deps in self.inputs_of.items()
                if deps & mask and want(GATES[self.graph.nodes[i].op]) and i in self.feeds[output]]

    def forward(self, at: dict[str, float]) -> tuple[float, ...]:
        return outputs_of(self.module, self.module.forward(*(at[name] for name in self.inputs)))

    def gradients(self, at: dict[str, float]) -> dict[str, tuple[float, ...]]:
        args = [at[name] for name in self.inputs]
        return {out: gradient_of(self.module, args, k) for k, out in enumerate(self.outputs)}

    def complex_forward(self, at: dict) -> tuple[complex, ...]:
        values = run(self.graph, at, apply=_complex_apply)
        return tuple(values[n] for n in self.outputs.values())

    def switches(self, at: dict[str, float], kinks: list[int]) -> list[float]:
        values = run(self.graph, at)
        return [_switch([values[a] for a in self.graph.nodes[k].args]) for k in kinks]

    def where(self, node: int) -> tuple[str, str]:
        """The label of a gate node and its `file:line:col`."""
        n = self.graph.nodes[node]
        label = n.origin.label if n.origin else f"'{GATES[n.op].label}'"
        place = f"{self.graph.filename}:{n.origin.span}" if n.origin else self.graph.filename
        return label, place


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


def _derivative(output: str, wrt: str | None) -> str:
    return f"d{output} along v" if wrt is None else f"d{output}/d{wrt}"


def _switch(args: list[float]) -> float:
    """Where a kink gate switches: its input crosses 0, or its two inputs tie."""
    return args[0] - args[1] if len(args) == 2 else args[0]


_sign = GATES["sign"].fn  # -1.0, 0.0 or 1.0: which side of a kink a value lies on


def _finite(values) -> bool:
    return all(math.isfinite(v) for v in values)


NOT_FINITE = "the gradient is not finite"  # why a check with such an analytic value is not judged
KINK = "at the kink of"  # how the reason of a check skipped at a kink starts


class _Outside(Exception):
    """The circuit, or a finite difference of it, is undefined here."""


def _call(fn, *args, where: str = ""):
    try:
        result = fn(*args)
    except DOMAIN_ERRORS as e:
        raise _Outside(f"{where}{e}") from None
    return result


class _Checker:
    def __init__(self, circuit: _Circuit, difference: str, rtol: float | None,
                 atol: float | None, h: float | None):
        self.c = circuit
        self.difference = difference
        self.rtol, self.atol, self.h = rtol, atol, h

    def tolerance(self, method: str) -> tuple[float, float]:
        """(rtol, atol) for a check by `method`: the given ones, else that method's defaults."""
        rtol, atol = DEFAULT_TOLERANCES[method]
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
        checks = [Check(out, label, analytic[out], method=self.difference)
                  for out in self.c.outputs]
        if self.difference == "complex":
            for check in checks:
                blocking = self.c.between(v, check.output, lambda g: g.cfn is None)
                if blocking:
                    gate, place = self.c.where(blocking[0])
                    check.method = "central"
                    check.note = f"central differences: {gate} at {place} is not complex-analytic"
        # A gradient that is not finite is outside the domain, whatever a finite
        # difference says: no step can agree with it.
        for check in checks:
            if not math.isfinite(check.analytic):
                check.verdict, check.reason = "domain", NOT_FINITE
        judged = [c for c in checks if c.verdict == "pass"]
        self.estimate(at, v, label, values, judged, (1.0, False))
        if self.h is None:  # a failure may be the default step's fault: try others
            for scaling in self.other_steps(at, v):
                failed = [c for c in judged
                          if c.verdict in ("fail", "domain") and c.method != "complex"]
                trials = [Check(c.output, c.input, c.analytic, method=c.method) for c in failed]
                self.estimate(at, v, label, values, trials, scaling)
                for check, trial in zip(failed, trials):
                    if trial.verdict == "pass":
                        check.numeric, check.h = trial.numeric, trial.h
                        check.tolerance, check.verdict, check.reason = trial.tolerance, "pass", ""
                        retried = (f"agrees with h = {trial.h:.3g}; the default step does not "
                                   "suit the curvature or the domain here")
                        check.note = "; ".join(filter(None, (check.note, retried)))
        return checks

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
            t = _representable(x, scale * t)
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
                    check.numeric = result[index[check.output]].imag / t
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
            if self.kinked([plus, at] if method == "forward" else [minus, at, plus], v, checks):
                return

            def sample(point, side):
                where = f"at {label} {'+' if side > 0 else '-'} {shift}: "
                return _call(self.c.forward, point, where=where)

            slopes = difference(sample, at, v, t, method, values)
            for check in checks:
                check.numeric = slopes[index[check.output]]
        except _Outside as e:
            for check in checks:
                check.verdict, check.reason = "domain", str(e)

    def kinked(self, samples, v, checks: list[Check]) -> bool:
        """Mark as skipped the checks whose finite difference straddles a kink."""
        kinks = {c.output: self.c.between(v, c.output, lambda g: g.kink) for c in checks}
        nodes = sorted({k for ks in kinks.values() for k in ks})
        if not nodes:
            return False
        sides = [_call(self.c.switches, s, nodes, where="") for s in samples]
        crossed = {k for j, k in enumerate(nodes) if len({_sign(s[j]) for s in sides}) > 1}
        for check in checks:
            hit = [k for k in kinks[check.output] if k in crossed]
            if hit:
                gate, place = self.c.where(hit[0])
                check.verdict = "skip"
                check.reason = f"{KINK} {gate} ({place})"
        return all(c.verdict == "skip" for c in checks)

    def judge(self, check: Check) -> None:
        if check.verdict != "pass":
            return
        if not math.isfinite(check.analytic):
            check.verdict, check.reason = "domain", NOT_FINITE
            return
        if check.numeric is None or not math.isfinite(check.numeric):
            check.verdict, check.reason = "domain", "the numerical derivative is not finite"
            return
        rtol, atol = self.tolerance(check.method)
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
        # A gate's own numerical derivative is a central difference, whatever the check used.
        rtol, atol = (max(t, c) for t, c in zip(self.tolerance(self.difference),
                                                DEFAULT_TOLERANCES["central"]))
        for i, node in enumerate(graph.nodes):
            if not (node.op in GATES and reach[i] and i in feeds):
                continue
            args = [values[a] for a in node.args]
            const = [graph.nodes[a].op == "const" for a in node.args]
            rule = _local_rule(node.op, args, const)
            if rule is None:
                continue
            for j, a in enumerate(node.args):
                if const[j] or not reach[a]:
                    continue
                numeric = _local_numeric(GATES[node.op], args, j)
                if numeric is None or not (math.isfinite(numeric) and math.isfinite(rule[j])):
                    continue  # at a kink or outside the gate's domain: nothing to judge
                if not abs(rule[j] - numeric) <= atol + rtol * abs(numeric):
                    gate, place = self.c.where(i)
                    return Blame(check.output, check.input, gate, place, j + 1, rule[j], numeric)
        return None


def _local_rule(op: str, args: list[float], const: list[bool]) -> list[float] | None:
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


def _local_numeric(gate: Gate, args: list[float], j: int) -> float | None:
    """A central difference of `gate.fn` in argument `j`; None at a kink or domain edge."""
    h = _representable(args[j], default_h(args[j], "central"))
    lo, hi = list(args), list(args)
    lo[j] -= h
    hi[j] += h
    if gate.kink and len({_sign(_switch(p)) for p in (lo, args, hi)}) > 1:
        return None
    try:
        return (gate.fn(*hi) - gate.fn(*lo)) / (2 * h)
    except DOMAIN_ERRORS:
        return None


def _defined(circuit: _Circuit, at: dict[str, float]) -> bool:
    try:
        return _finite(circuit.forward(at)) and all(
            _finite(g) for g in circuit.gradients(at).values())
    except DOMAIN_ERRORS:
        return False


def _draw_point(circuit: _Circuit, rng: random.Random, fixed: dict[str, float]):
    """A point with the `fixed` values and the rest drawn; redrawn while undefined."""
    for attempt in range(1, MAX_DRAWS + 1):
        at = {name: fixed[name] if name in fixed else draw(rng) for name in circuit.inputs}
        if len(fixed) == len(at) or _defined(circuit, at) or attempt == MAX_DRAWS:
            return at, attempt


def _describe(kind: str, drawn: list[str], attempts: int) -> str:
    parts = [kind]
    if drawn:
        parts.append(f"drawn: {', '.join(drawn)}")
    if attempts > 1:
        parts.append(f"{attempts - 1} earlier draw{'s' if attempts > 2 else ''} "
                     "outside the domain")
    return "; ".join(parts)


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
        kept = f", keeping {', '.join(given)}" if given else ""
        yield _describe(f"random point {k + 1}{kept}", [], attempts), at


def verify_circuit(module, forward: Graph, given: dict[str, float] | None = None, *, n_points: int = 0,
           seed: int = 0, difference: str = "central", rtol: float | None = None,
           atol: float | None = None, h: float | None = None, fast: bool = False) -> Report:
    """Check `module.backward` against numerical derivatives of `module.forward`.

    `forward` is the circuit's optimized forward graph (`compile_graphs(...)[0]`),
    used for kinks, the complex step and blame. `given` are values fixed on the
    command line. See the module docstring for every choice made here.
    """
    if difference not in DIFFERENCES:
        raise ValueError(f"difference must be one of {', '.join(DIFFERENCES)}")
    circuit = _Circuit(module, forward)
    checker = _Checker(circuit, difference, rtol, atol, h)
    rtol, atol = checker.tolerance(difference)
    rng = random.Random(seed)
    report = Report(forward.filename, difference, rtol, atol, h, fast, seed, [])
    for label, at in points(circuit, dict(given or {}), dict(module.DEFAULTS), n_points, rng):
        direction = None
        if fast:
            # Continuous weights, not just signs: with ±1 two equal and opposite errors
            # (a rule that swaps its inputs' adjoints) would cancel half the time.
            direction = {name: draw(rng) * (1.0 if h is not None else max(1.0, abs(at[name])))
                         for name in circuit.wrt}
        point = checker.point(label, at, direction)
        for check in point.checks:
            if check.verdict == "fail":
                found = checker.blame(at, check)
                if found:
                    point.blame.append(found)
                else:
                    point.unblamed.append(check.name)
        report.points.append(point)
    if any(c.method != difference for p in report.points for c in p.checks):
        report.fallback = checker.tolerance("central")
    return report


# -- reporting ------------------------------------------------------------------

_VERDICTS = {"pass": "ok", "fail": "FAIL", "skip": "skipped", "domain": "outside the domain"}


def _error(x: float | None) -> str:
    return "" if x is None else f"{x:.1e}"


def _method(report: Report) -> str:
    h = "h relative to each input" if report.h is None else f"h = {report.h!r}"
    along = ", along one random direction per point" if report.fast else ""
    return (f"{report.difference} differences" if report.difference != "complex"
            else "complex step") + f" ({h}{along}), rtol {report.rtol:g}, atol {report.atol:g}" + (
        "" if report.fallback is None else
        f" (central-difference fallbacks: rtol {report.fallback[0]:g}, atol {report.fallback[1]:g})")


def summary(report: Report) -> str:
    """One line: the verdict, the counts, and how the numerical derivatives were taken."""
    n_points = len(report.points)
    counts = [f"{report.count('pass')} passed", f"{report.count('fail')} failed"]
    skipped = [c for p in report.points for c in p.checks if c.verdict == "skip"]
    kinks = sum(c.reason.startswith(KINK) for c in skipped)
    if kinks:
        counts.append(f"{kinks} skipped at kinks")
    if len(skipped) > kinks:
        counts.append(f"{len(skipped) - kinks} skipped with h below an input's resolution")
    if report.count("domain") or any(p.domain for p in report.points):
        outside = report.count("domain") + sum(p.domain is not None for p in report.points)
        counts.append(f"{outside} outside the domain")
    verdict = "OK" if report.ok else "FAILED"
    return (f"{report.filename}: {verdict}: {', '.join(counts)} "
            f"at {n_points} point{'s' if n_points != 1 else ''}; {_method(report)}")


def render(report: Report) -> str:
    """The report as text: a table per point, notes and blame under it, then the summary."""
    lines = []
    for k, point in enumerate(report.points, 1):
        lines.append(f"point {k} ({point.label})" + (f": {_values(point.at)}" if point.at else ""))
        if point.domain is not None:
            lines += [f"  outside the domain: {point.domain}", ""]
            continue
        lines.append(f"  {_values(point.outputs)}")
        if not point.checks:
            lines += ["  (no inputs: nothing to differentiate)", ""]
            continue
        rows = [["gradient", "analytic", "numeric", "abs err", "rel err", "verdict"]]
        for c in point.checks:
            verdict = _VERDICTS[c.verdict] + (f": {c.reason}" if c.reason else "")
            rows.append([c.name, "" if c.analytic is None else repr(c.analytic),
                         "" if c.numeric is None else repr(c.numeric),
                         _error(c.abs_error), _error(c.rel_error), verdict])
        lines += _table(rows)
        notes: dict[str, list[str]] = {}
        for c in point.checks:
            if c.note:
                notes.setdefault(c.note, []).append(c.name)
        lines += [f"  note: {', '.join(names)}: {note}" for note, names in notes.items()]
        blamed: dict[str, list[str]] = {}
        for b in point.blame:
            blamed.setdefault(b.finding, []).append(_derivative(b.output, b.input))
        lines += [f"  blame: {', '.join(names)}: {finding}" for finding, names in blamed.items()]
        if point.unblamed:
            lines.append(f"  blame: {', '.join(point.unblamed)}: no gate's derivative rule "
                         "disagrees with its own numerical derivative here, so the numerical "
                         "derivative may be inaccurate (try a smaller --h, or --difference "
                         "complex)")
        lines.append("")
    lines.append(summary(report))
    return "\n".join(lines)


def as_dict(report: Report) -> dict:
    """The report as one JSON-ready document (floats may still be inf or nan)."""
    return {
        "ok": report.ok, "file": report.filename, "difference": report.difference,
        "rtol": report.rtol, "atol": report.atol, "h": report.h, "fast": report.fast,
        "fallback_tolerance": report.fallback and dict(zip(("rtol", "atol"), report.fallback)),
        "seed": report.seed,
        "summary": {"passed": report.count("pass"), "failed": report.count("fail"),
                    "skipped": report.count("skip"), "outside_domain": report.count("domain"),
                    "points_outside_domain": sum(p.domain is not None for p in report.points)},
        "points": [{"label": p.label, "inputs": p.at, "outputs": p.outputs,
                    "outside_domain": p.domain, "checks": [c.as_dict() for c in p.checks],
                    "blame": [b.as_dict() for b in p.blame], "unblamed": p.unblamed}
                   for p in report.points],
    }
