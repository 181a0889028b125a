"""Hill climbing, the textbook's three ways: move the inputs to raise the first output.

`climb(module, at, method=...)` takes `steps` steps from the point `at` and
returns a `Climb` with the inputs and the output before and after (and the output
after every step). With `minimize=True` it descends instead.

- `random` (random local search): `tries` times, move every input by
  `tweak * (2*u - 1)`, `u` uniform on [0, 1) from `random.Random(seed)`, drawn
  input by input in `INPUTS` order; keep the best try. Unlike the textbook's loop,
  the best try is kept only if it improves on the current point, so a random step
  never goes downhill.
- `numerical`: each input's derivative by a finite difference, exactly the
  textbook's `(f(x+h) - f(x)) / h` for `difference="forward"` or
  `(f(x+h) - f(x-h)) / 2h` for `central`, with `h` as given (not rounded) or,
  when not given, the verifier's default step for that input; then every input
  moves by `step_size * derivative`.
- `analytic`: the same move with the gradient from `backward` (seed 1 on the
  first output, 0 on the others).

A domain error or a non-finite value while climbing raises `StepError`.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from .verify import DOMAIN_ERRORS, default_h

METHODS = ("analytic", "numerical", "random")


class StepError(Exception):
    """The climb reached a point where the circuit or its gradient is undefined."""


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
    def __init__(self, module):
        self.module = module
        self.n_outputs = len(module.OUTPUTS)

    def value(self, at: dict[str, float]) -> float:
        try:
            out = self.module.forward(*(at[n] for n in self.module.INPUTS))
        except DOMAIN_ERRORS as e:
            raise StepError(str(e)) from None
        out = out[0] if self.n_outputs > 1 else out
        if not math.isfinite(out):
            raise StepError(f"the output is {out!r} at {_show(at)}")
        return out

    def gradient(self, at: dict[str, float]) -> list[float]:
        seeds = [1.0] + [0.0] * (self.n_outputs - 1)
        try:
            grads = self.module.backward(*(at[n] for n in self.module.INPUTS), *seeds)[1]
        except DOMAIN_ERRORS as e:
            raise StepError(f"the gradient: {e}") from None
        return list(grads)


def _show(at: dict[str, float]) -> str:
    return ", ".join(f"{k} = {v!r}" for k, v in at.items())


def _numerical(f: _Objective, at: dict[str, float], h: float | None, difference: str):
    f0 = f.value(at) if difference == "forward" else None
    grads = []
    for name, x in at.items():
        step = default_h(x, difference) if h is None else h
        f_plus = f.value({**at, name: x + step})
        if difference == "forward":
            grads.append((f_plus - f0) / step)
        else:
            grads.append((f_plus - f.value({**at, name: x - step})) / (2 * step))
    return grads


def _random_step(f: _Objective, at, current: float, sign: float, tries: int, tweak: float,
                 rng: random.Random):
    best, best_value = at, current
    for _ in range(tries):
        candidate = {name: x + tweak * (rng.random() * 2 - 1) for name, x in at.items()}
        try:
            value = f.value(candidate)
        except StepError:  # a try outside the domain is just a bad try
            continue
        if sign * value > sign * best_value:
            best, best_value = candidate, value
    return best


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
        else:
            grads = (f.gradient(at) if method == "analytic"
                     else _numerical(f, at, h, difference))
            if not all(math.isfinite(g) for g in grads):
                raise StepError(f"the gradient is not finite at {_show(at)}")
            at = {name: x + sign * step_size * g for (name, x), g in zip(at.items(), grads)}
        value = f.value(at)
        result.history.append(value)
    result.after, result.after_output = at, value
    return result


def render(climb: Climb, steps: int, step_size: float) -> str:
    """The inputs and the output before and after, as a small table."""
    way = "down" if climb.minimize else "up"
    what = f"{steps} {climb.method} step{'s' if steps != 1 else ''} {way} {climb.output}"
    if climb.method != "random":
        what += f", step size {step_size!r}"
    rows = [["", "before", "after"]]
    rows += [[name, repr(x), repr(climb.after[name])] for name, x in climb.before.items()]
    change = climb.after_output - climb.before_output
    rows.append([climb.output, repr(climb.before_output),
                 f"{climb.after_output!r}  ({'+' if change >= 0 else ''}{change:.6g})"])
    widths = [max(len(r[k]) for r in rows) for k in range(2)]
    lines = [f"{what}:"]
    lines += ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[2] for r in rows]
    return "\n".join(line.rstrip() for line in lines)
