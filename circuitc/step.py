"""Hill climbing, the textbook's three ways: move the inputs to raise the first output.

`climb(module, at, method=...)` takes `steps` steps from the point `at` and
returns a `Climb` with the inputs and the output before and after (and the output
after every step). With `minimize=True` it descends instead. Only the inputs of the
module's `WRT` move (all of them, unless it was compiled with `wrt` or `fix`); the
others keep their values.

- `random` (random local search): `tries` times, move every input by
  `tweak * (2*u - 1)`, `u` uniform on [0, 1) from `random.Random(seed)`, drawn
  input by input in `WRT` order; keep the best try. Unlike the textbook's loop,
  the best try is kept only if it improves on the current point, so a random step
  never goes downhill.
- `numerical`: each input's derivative by a finite difference, exactly the
  textbook's `(f(x+h) - f(x)) / h` for `difference="forward"` or
  `(f(x+h) - f(x-h)) / 2h` for `central`, with `h` as given (not rounded) or,
  when not given, the verifier's default step for that input; then every input
  moves by `step_size * derivative`. A given `h` too small to move an input
  (`x + h == x`) raises `StepError`: the difference would be 0.
- `analytic`: the same move with the gradient from `backward` (seed 1 on the
  first output, 0 on the others).
- `newton`: Newton's method, globalized, with the Hessian from the module's `hessian`
  (compile with `hessian=True`): see `_newton_step`. `step_size` is not used: each
  step starts from the full Newton step and halves it until the output improves
  enough (the Armijo condition), so a step never goes the wrong way (one that finds no
  such length stays where it is), and a multiple of the identity is added to an
  indefinite Hessian until it is positive definite.

A domain error or a non-finite value while climbing raises `StepError`.
The finite differences and the text table are the verifier's (`numerics.difference`,
`report.table`).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from .elements import gradient_of, hessian_rows, outputs_of
from .gates import DOMAIN_ERRORS
from .numerics import default_h, difference
from .report import table, values

METHODS = ("analytic", "numerical", "random", "newton")


class StepError(Exception):
    """The climb cannot go on: the circuit or its gradient is undefined at the point it
    reached, or the given `h` does not move an input there."""


@dataclass
class Climb:
    output: str
    method: str
    before: dict[str, float]
    before_output: float
    after: dict[str, float]
    after_output: float
    minimize: bool = False
    history: list[float] = field(default_factory=list)  # the output after each step


class _Objective:
    """The first output of a module, and its gradient, as functions of a point."""

    def __init__(self, module):
        self.module = module

    def value(self, at: dict[str, float]) -> float:
        try:
            out = outputs_of(self.module, self.module.forward(*(at[n] for n in self.module.INPUTS)))
        except DOMAIN_ERRORS as e:
            raise StepError(str(e)) from None
        if not math.isfinite(out[0]):
            raise StepError(f"the output is {out[0]!r} at {_show(at)}")
        return out[0]

    def gradient(self, at: dict[str, float]) -> list[float]:
        try:
            return list(gradient_of(self.module, [at[n] for n in self.module.INPUTS], 0))
        except DOMAIN_ERRORS as e:
            raise StepError(f"the gradient: {e}") from None

    def hessian(self, at: dict[str, float]) -> tuple[list[float], list[list[float]]]:
        """The gradient and the Hessian (rows over `WRT`)."""
        if not hasattr(self.module, "hessian"):
            raise StepError("Newton steps need the Hessian: compile the module with "
                            "hessian=True")
        seeds = [float(k == 0) for k in range(len(self.module.OUTPUTS))]
        try:
            _, grads, h = self.module.hessian(*(at[n] for n in self.module.INPUTS), *seeds)
        except DOMAIN_ERRORS as e:
            raise StepError(f"the Hessian: {e}") from None
        return list(grads), [list(row) for row in hessian_rows(h)]


def _show(at: dict[str, float]) -> str:
    return values(at, limit=None)


def _numerical(f: _Objective, at: dict[str, float], h: float | None, method: str):
    """The derivative along each input of `WRT` by the finite difference `method`, with
    `h` as given."""
    f0 = (f.value(at),) if method == "forward" else None
    grads = []
    for name in f.module.WRT:
        x = at[name]
        step = default_h(x, method) if h is None else h
        if h is not None and x + step == x:
            raise StepError(f"h = {h!r} is below the resolution of {name} = {x!r} "
                            "(x + h == x): give a larger --h")
        (slope,) = difference(lambda point, side: (f.value(point),), at, {name: 1.0}, step,
                              method, f0)
        grads.append(slope)
    return grads


def _random_step(f: _Objective, at, current: float, sign: float, tries: int, tweak: float,
                 rng: random.Random):
    best, best_value = at, current
    for _ in range(tries):
        candidate = {**at, **{name: at[name] + tweak * (rng.random() * 2 - 1)
                              for name in f.module.WRT}}
        try:
            value = f.value(candidate)
        except StepError:  # a try outside the domain is just a bad try
            continue
        if sign * value > sign * best_value:
            best, best_value = candidate, value
    return best


def _newton_step(f: _Objective, at: dict[str, float], value: float, sign: float):
    """One globalized Newton step on `-sign * f` (so that it descends): the Hessian,
    plus the first multiple of the identity in a doubling sequence that makes it
    positive definite (Cholesky with added identity, Nocedal and Wright's algorithm
    3.3), gives the direction; a backtracking (Armijo) line search from the full step
    gives its length, and after 60 halvings without enough decrease the point stays."""
    grads, hessian = f.hessian(at)
    if not all(map(math.isfinite, [*grads, *(h for row in hessian for h in row)])):
        raise StepError(f"the gradient or the Hessian is not finite at {_show(at)}")
    g = [-sign * x for x in grads]
    h = [[-sign * x for x in row] for row in hessian]
    largest = max((abs(h[i][i]) for i in range(len(h))), default=0.0)
    shift, factor = 0.0, _cholesky(h, 0.0)
    while factor is None:
        shift = max(2 * shift, 1e-3 * largest, 1e-12)
        factor = _cholesky(h, shift)
    p = _solve(factor, [-x for x in g])
    slope = sum(a * b for a, b in zip(g, p))
    t, start = 1.0, -sign * value
    for _ in range(60):
        moved = {**at, **{name: at[name] + t * d for name, d in zip(f.module.WRT, p)}}
        try:
            if -sign * f.value(moved) <= start + 1e-4 * t * slope:
                return moved
        except StepError:  # outside the domain: a shorter step
            pass
        t /= 2
    return at


def _cholesky(a: list[list[float]], shift: float) -> list[list[float]] | None:
    """The lower-triangular L with L Lᵀ = a + shift·I, or None if that is not positive
    definite."""
    n = len(a)
    low = [[0.0] * n for _ in range(n)]
    for j in range(n):
        d = a[j][j] + shift - sum(x * x for x in low[j][:j])
        if not d > 0:
            return None
        low[j][j] = math.sqrt(d)
        for i in range(j + 1, n):
            low[i][j] = (a[i][j] - sum(x * y for x, y in zip(low[i][:j], low[j][:j]))) / low[j][j]
    return low


def _solve(low: list[list[float]], b: list[float]) -> list[float]:
    """x with L Lᵀ x = b, by forward and back substitution."""
    n = len(b)
    y = [0.0] * n
    for i in range(n):
        y[i] = (b[i] - sum(low[i][k] * y[k] for k in range(i))) / low[i][i]
    x = [0.0] * n
    for i in range(n - 1, -1, -1):
        x[i] = (y[i] - sum(low[k][i] * x[k] for k in range(i + 1, n))) / low[i][i]
    return x


def climb(module, at: dict[str, float], *, method: str = "analytic", steps: int = 1,
          step_size: float = 0.01, h: float | None = None, difference: str = "central",
          tries: int = 100, tweak: float = 0.01, seed: int = 0,
          minimize: bool = False) -> Climb:
    """Take `steps` steps up (or down) the first output from `at`; see the module docstring."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}")
    f = _Objective(module)
    sign = -1.0 if minimize else 1.0
    rng = random.Random(seed)
    start = dict(at)
    value = f.value(start)
    result = Climb(module.OUTPUTS[0], method, start, value, start, value, minimize)
    for _ in range(steps):
        if method == "random":
            at = _random_step(f, at, value, sign, tries, tweak, rng)
        elif method == "newton":
            at = _newton_step(f, at, value, sign)
        else:
            grads = (f.gradient(at) if method == "analytic"
                     else _numerical(f, at, h, difference))
            if not all(math.isfinite(g) for g in grads):
                raise StepError(f"the gradient is not finite at {_show(at)}")
            at = {**at, **{name: at[name] + sign * step_size * g
                           for name, g in zip(module.WRT, grads)}}
        value = f.value(at)
        result.history.append(value)
    result.after, result.after_output = at, value
    return result


def climb_text(climb: Climb, steps: int, step_size: float) -> str:
    """The inputs and the output before and after, as a small table."""
    way = "down" if climb.minimize else "up"
    what = f"{steps} {climb.method} step{'s' if steps != 1 else ''} {way} {climb.output}"
    if climb.method in ("analytic", "numerical"):
        what += f", step size {step_size!r}"
    rows = [["", "before", "after"]]
    rows += [[name, repr(x), repr(climb.after[name])] for name, x in climb.before.items()]
    change = climb.after_output - climb.before_output
    rows.append([climb.output, repr(climb.before_output),
                 f"{climb.after_output!r}  ({'+' if change >= 0 else ''}{change:.6g})"])
    return "\n".join(line.rstrip() for line in [f"{what}:", *table(rows)])
