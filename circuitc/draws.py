"""Random initial values: an input's default `uniform(a, b)` or `normal(mu, sigma)`,
drawn when the circuit is read and written into the module as numbers.

`drawn(statements, sizes, shapes, seed)` replaces each such default by the values drawn
for it: a number for a scalar input, a nested list of the bus's shape (row-major) for a
bus. An input's values come from its own stream, seeded by `seed` and the input's name,
so that adding, removing or reordering other inputs leaves them as they were. The stream
is Python's Mersenne Twister seeded with a string, whose `random()` sequence Python
keeps the same across versions and machines: `uniform` values are the same everywhere;
`normal` values (Box-Muller, from `math.log`, `math.sqrt` and `math.cos`) may differ in
the last bit where the C library's functions do. The module records the values drawn
(`DEFAULTS`), so a compiled module is deterministic either way.
"""

from __future__ import annotations

import math
import random

from .errors import CircuitError
from .gates import CALLABLE
from .lower import evaluate_constant
from .syntax import BusItem, Call, InputDecl, ListLit, Name, Num, Op

DEFAULT_SEED = 0


def _uniform(rng: random.Random, low: float, high: float) -> float:
    return low + (high - low) * rng.random()


def _normal(rng: random.Random, mu: float, sigma: float) -> float:
    u, v = rng.random(), rng.random()  # 1 - u is in (0, 1]: its log is finite
    return mu + sigma * math.sqrt(-2.0 * math.log(1.0 - u)) * math.cos(2.0 * math.pi * v)


# name -> (the draw of one value, its two parameters' names, their check, what it needs)
DRAWS = {
    "uniform": (_uniform, ("low", "high"), lambda low, high: low <= high,
                "low and high must be finite, with low <= high"),
    "normal": (_normal, ("mu", "sigma"), lambda mu, sigma: sigma >= 0,
               "mu and sigma must be finite, with sigma >= 0"),
}


def is_draw(expr) -> bool:
    """Whether `expr` (an input's default) draws random values."""
    return type(expr) is Call and expr.name.id in DRAWS


def drawn(statements: list, sizes: dict[str, int], shapes: dict[str, tuple[int, ...]],
          seed: int = DEFAULT_SEED) -> list:
    """`statements` with every random default replaced by its values (module docstring);
    `sizes` are the sizes' values and `shapes` the bus inputs' shapes."""
    if not any(is_draw(_default(item)) for s in statements if type(s) is InputDecl
               for item in s.items):
        return statements
    out = []
    for s in statements:
        if type(s) is InputDecl:
            s = InputDecl(tuple(_drawn_item(item, sizes, shapes, seed) for item in s.items))
        out.append(s)
    return out


def _default(item):
    return item.default if type(item) is BusItem else item[1]


def _drawn_item(item, sizes, shapes, seed):
    call = _default(item)
    if not is_draw(call):
        return item
    name = item.name if type(item) is BusItem else item[0]
    draw, params, valid, needs = DRAWS[call.name.id]
    if len(call.args) != 2:
        raise CircuitError(f"'{call.name.id}' takes 2 arguments ({', '.join(params)}), "
                           f"got {len(call.args)}", call.span)
    args = [_constant(a, sizes, call.name.id) for a in call.args]
    if not (all(map(math.isfinite, args)) and valid(*args)):
        raise CircuitError(f"{call.name.id}({args[0]!r}, {args[1]!r}): {needs}", call.span)
    rng = random.Random(f"{seed}:{name.id}")
    if type(item) is not BusItem:
        return name, Num(draw(rng, *args), call.span)
    shape = shapes[name.id]
    values = [Num(draw(rng, *args), call.span) for _ in range(math.prod(shape))]
    for n in reversed(shape[1:]):
        values = [ListLit(tuple(values[k:k + n]), call.span) for k in range(0, len(values), n)]
    return item._replace(default=ListLit(tuple(values), call.span))


def _constant(expr, sizes: dict[str, int], draw: str) -> float:
    """The value of a draw's argument: numbers, sizes and built-in gates."""
    def written(e):
        kind = type(e)
        if kind is Num:
            return e
        if kind is Name and e.id in sizes:
            return Num(float(sizes[e.id]), e.span)
        if kind is Op or kind is Call and e.name.id in CALLABLE:
            return e._replace(args=tuple(written(a) for a in e.args))
        what = e.id if kind is Name else e.name.id
        raise CircuitError(f"the arguments of '{draw}' must be constants (numbers, sizes and "
                           f"built-in gates), but one uses '{what}'", e.span)
    return evaluate_constant(written(expr), {})
