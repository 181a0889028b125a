"""Finite differences and drawn input values: the numerics the verifier and
`circuitc step` share.

Numerical derivatives (`difference`):
- `central`: `(f(x+h) - f(x-h)) / 2h`, error O(h²); the default.
- `forward`: `(f(x+h) - f(x)) / h`, the textbook's, error O(h).
- `complex`: the complex step `Im f(x + ih) / h`, which subtracts nothing, so it is
  exact to rounding and `h` can be tiny; the caller evaluates `f` on complex numbers.

Step `h`, unless given (`default_h`): per input, relative to its magnitude,
`eps**(1/3) * max(1, |x|)` for central differences, `sqrt(eps) * max(1, |x|)` for
forward differences, which balance truncation against rounding error, and
`1e-20 * max(|x|, 1e-200)` for the complex step; `eps` is the machine epsilon of the
type the module computes in (`EPSILONS`: 2.2e-16 for float64, 1.2e-7 for float32).
`representable` rounds a step so that `x + h` is exactly representable in that type
(`h = (x + h) - x`).

A drawn value (`random_value`) is `s * m`, `s` = -1 or +1 with equal probability, `m`
uniform on [0.5, 2): of either sign, of order one, never near 0 (where `log`,
`sqrt` and `1/x` have their edges).
"""

from __future__ import annotations

import math
import random
import struct
import sys

EPS = sys.float_info.epsilon
# The machine epsilon of each floating-point type a module may compute in (its `DTYPE`).
EPSILONS = {"float64": EPS, "float32": 2.0 ** -23}
DIFFERENCES = ("central", "forward", "complex")


# The steps a failed check is tried again with, relative to the default (`circuitc.verify`).
RETRY_SCALES = (0.1, 10.0, 0.01, 0.001)


def default_h(x: float, difference: str, dtype: str = "float64") -> float:
    """The finite-difference step for an input at `x` of a module computing in `dtype` (see
    the module docstring: `eps` is that type's)."""
    if difference == "complex":
        return 1e-20 * max(abs(x), 1e-200)
    eps = EPSILONS[dtype]
    scale = eps ** (1 / 3) if difference == "central" else math.sqrt(eps)
    return scale * max(1.0, abs(x))


def rounded(x: float, dtype: str = "float64") -> float:
    """`x` as the nearest number of `dtype`, as a module computing in it takes `x`."""
    if dtype == "float64" or not math.isfinite(x):
        return x
    try:
        return struct.unpack("f", struct.pack("f", x))[0]
    except OverflowError:  # beyond float32's largest number
        return math.copysign(math.inf, x)


def representable(x: float, h: float, dtype: str = "float64") -> float:
    """`h`, rounded so that `x + h` is exact in `dtype` (`x` is); `h` itself if that rounds
    to nothing."""
    return (rounded(x + h, dtype) - x) or h


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


def random_value(rng: random.Random) -> float:
    """One random input value: ±uniform[0.5, 2)."""
    sign = rng.choice((-1.0, 1.0))
    return sign * rng.uniform(0.5, 2.0)

