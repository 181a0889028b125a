"""Integer-affine index expressions: what an index or a size may be in a `.circ` file.

An affine form is a dict `{variable: coefficient}`, the key `""` holding the constant:
`2*i + n - 1` with `n = 5` is `{"i": 2, "": 4}`. `affine(expr, sizes, scope)` makes one
from an expression of integers, sizes and the index variables in `scope`, with `+`, `-`,
`*` by a constant and `//` of constants, and raises `CircuitError` at anything else;
`value_at(form, env)` evaluates one; `index_text` writes `a*v + c` back as text.
"""

from __future__ import annotations

from collections.abc import Mapping

from .errors import CircuitError
from .syntax import Name, Num, Op, postorder

_AFFINE = "an index or size must be an integer expression: integers, sizes and index variables " \
          "with + - * //"


def affine(expr, sizes: Mapping[str, int], scope=()) -> dict:
    """The affine form of an integer expression; `scope` holds the index variables."""
    values: list[dict] = []
    for e in postorder(expr):
        kind = type(e)
        if kind is Num:
            if not e.value.is_integer():
                raise CircuitError(f"{e.value!r} is not an integer; {_AFFINE}", e.span)
            values.append({"": int(e.value)})
        elif kind is Name:
            if e.id in scope:
                values.append({e.id: 1, "": 0})
            elif e.id in sizes:
                values.append({"": sizes[e.id]})
            else:
                raise CircuitError(f"'{e.id}' is not a size or an index variable; {_AFFINE}",
                                   e.span)
        elif kind is Op and e.gate in ("add", "sub", "neg", "mul", "floordiv"):
            args = values[len(values) - len(e.args):]
            del values[len(values) - len(e.args):]
            values.append({k: v for k, v in _combine(e, args).items() if v or not k})
        else:
            raise CircuitError(_AFFINE, e.span)
    return values.pop()


def _combine(e: Op, args: list[dict]) -> dict:
    if e.gate == "neg":
        return {k: -v for k, v in args[0].items()}
    a, b = args
    if e.gate in ("add", "sub"):
        sign = 1 if e.gate == "add" else -1
        out = dict(a)
        for k, v in b.items():
            out[k] = out.get(k, 0) + sign * v
        return out
    constant = [len(x) == 1 for x in args]
    if e.gate == "mul" and (constant[0] or constant[1]):
        factor, form = (a[""], b) if constant[0] else (b[""], a)
        return {k: factor * v for k, v in form.items()}
    if e.gate == "floordiv" and all(constant):
        if b[""] == 0:
            raise CircuitError("integer division by zero", e.span)
        return {"": a[""] // b[""]}
    raise CircuitError("an index must be affine: multiply and divide index variables only by "
                       "constants", e.span)


def value_at(form: dict, env: Mapping[str, int]) -> int:
    """The value of `form` where each variable has its value in `env`."""
    value = 0
    for k, v in form.items():  # a loop, not sum(): this runs for every element written out
        value += v * env[k] if k else v
    return value


def index_text(v: str, a: int, c: int) -> str:
    """`a*v + c` as written: `i`, `i + 1`, `2*i - 1`."""
    term = v if a == 1 else f"-{v}" if a == -1 else f"{a}*{v}"
    return term if c == 0 else f"{term} + {c}" if c > 0 else f"{term} - {-c}"
