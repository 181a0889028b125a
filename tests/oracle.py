"""Each gate's meaning, written here apart from circuitc's gate table: the one list a new
gate joins for the tests that hold circuitc against SymPy (tests/test_sympy_oracle.py,
tests/test_differential.py, tests/test_second_order.py, tests/test_second_order_gates.py)
and the gates the random bus circuits draw (tests/strategies.py).

`GATES[name]` is a `Form`: the gate's arity, its value as SymPy of its operands (`sympy`),
the gate alone as `.circ` text over `{0}` and `{1}` (`bare`), the gate with its operands
kept inside its domain (`safe`: `log(1 + {0}*{0})`, so that a random circuit is defined
everywhere), and, for a gate with a kink, the expression of its operands that is 0 there
(`kink`). `relu`, `abs`, `max` and `min` have SymPy forms without Piecewise or Heaviside
(`abs(a) = sqrt(a**2)`), exact away from their kinks. `MORE` are forms of gates the compiler
rewrites (integer powers: `x**2 -> x*x`). `Form.build` is SymPy's expression of `safe`,
read from the text itself, so a template and its SymPy form cannot disagree.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import NamedTuple

import sympy


def _abs(a):
    return sympy.sqrt(a**2)


_RELATIONS = {"<": sympy.Lt, "<=": sympy.Le, ">": sympy.Gt, ">=": sympy.Ge, "==": sympy.Eq,
              "!=": sympy.Ne}
# A comparison of two operands in a `safe` template, which `Form.build` evaluates as
# `_compare(symbol, a, b)` (Python's own `a < b` on SymPy gives a relation, not a number).
_COMPARISON = re.compile(r"(\w+) (<=|>=|==|!=|<|>) (\w+)")


def _compare(symbol, a, b):
    """A comparison as SymPy: 1 where it holds, else 0."""
    return sympy.Piecewise((1, _RELATIONS[symbol](a, b)), (0, True))


def _where(c, a, b):
    """`where(c, a, b)` as SymPy: `a` where `c` is nonzero, else `b`."""
    return sympy.Piecewise((a, sympy.Ne(c, 0)), (b, True))


def _comparison(symbol: str) -> Form:
    return Form(2, lambda a, b: _compare(symbol, a, b), f"{{0}} {symbol} {{1}}",
                f"({{0}} {symbol} {{1}})", lambda a, b: a - b)


class Form(NamedTuple):
    arity: int
    sympy: Callable
    bare: str
    safe: str
    kink: Callable | None = None
    # `safe` as SymPy should read it, where it needs telling that a value is real: the
    # same function wherever `safe` is defined (`log(abs(u))` for `log(u)` where u > 0).
    real: str | None = None

    def build(self, *args):
        """SymPy's expression of `safe` (or `real`) applied to `args`."""
        names = {f"_{k}": a for k, a in enumerate(args)}
        text = _COMPARISON.sub(r"_compare('\2', \1, \3)", (self.real or self.safe).format(*names))
        return eval(text, {"__builtins__": {}, "_compare": _compare, **_NAMESPACE}, names)


GATES = {
    "add": Form(2, lambda a, b: a + b, "{0} + {1}", "{0} + {1}"),
    "sub": Form(2, lambda a, b: a - b, "{0} - {1}", "{0} - {1}"),
    "mul": Form(2, lambda a, b: a * b, "{0} * {1}", "{0} * {1}"),
    "div": Form(2, lambda a, b: a / b, "{0} / {1}", "{0} / (1 + {1}*{1})"),
    "neg": Form(1, lambda a: -a, "-{0}", "-{0}"),
    "sigmoid": Form(1, lambda a: 1 / (1 + sympy.exp(-a)), "sigmoid({0})", "sigmoid({0})"),
    "tanh": Form(1, sympy.tanh, "tanh({0})", "tanh({0})"),
    "relu": Form(1, lambda a: (a + _abs(a)) / 2, "relu({0})", "relu({0})", lambda a: a),
    "softplus": Form(1, lambda a: sympy.log(1 + sympy.exp(a)), "softplus({0})", "softplus({0})"),
    "exp": Form(1, sympy.exp, "exp({0})", "exp(tanh({0}))"),
    "log": Form(1, sympy.log, "log({0})", "log(1 + {0}*{0})"),
    "log1p": Form(1, lambda a: sympy.log(1 + a), "log1p({0})", "log1p({0}*{0})"),
    "expm1": Form(1, lambda a: sympy.exp(a) - 1, "expm1({0})", "expm1(tanh({0}))"),
    "erf": Form(1, sympy.erf, "erf({0})", "erf({0})"),
    "erfc": Form(1, sympy.erfc, "erfc({0})", "erfc({0})"),
    "sqrt": Form(1, sympy.sqrt, "sqrt({0})", "sqrt(1 + {0}*{0})"),
    "sin": Form(1, sympy.sin, "sin({0})", "sin({0})"),
    "cos": Form(1, sympy.cos, "cos({0})", "cos({0})"),
    "tan": Form(1, sympy.tan, "tan({0})", "tan(atan({0}) / 2)"),
    "atan": Form(1, sympy.atan, "atan({0})", "atan({0})"),
    "abs": Form(1, _abs, "abs({0})", "abs({0})", lambda a: a),
    "max": Form(2, lambda a, b: (a + b + _abs(a - b)) / 2, "max({0}, {1})", "max({0}, {1})",
                lambda a, b: a - b),
    "min": Form(2, lambda a, b: (a + b - _abs(a - b)) / 2, "min({0}, {1})", "min({0}, {1})",
                lambda a, b: a - b),
    "pow": Form(2, lambda a, b: a**b, "{0} ** {1}", "(1 + {0}*{0}) ** tanh({1})"),
    **{name: _comparison(symbol) for name, symbol in (
        ("lt", "<"), ("le", "<="), ("gt", ">"), ("ge", ">="), ("eq", "=="), ("ne", "!="))},
    # Kept in its domain by `where` itself: `log` of a negative number where it is not taken.
    "where": Form(3, _where, "where({0}, {1}, {2})", "where({0} > {1}, log({0} - {1}), {2})",
                  lambda a, b, c: a - b, "where({0} > {1}, log(abs({0} - {1})), {2})"),
}
MORE = {
    "square": Form(1, lambda a: a**2, "{0} ** 2", "{0}**2"),
    "cube": Form(1, lambda a: a**3, "pow({0}, 3)", "pow({0}, 3)"),
    "inverse": Form(1, lambda a: 1 / a, "{0} ** -1", "(1 + {0}*{0}) ** -1"),
}
FORMS = {**GATES, **MORE}
# For `sympy.lambdify`: SymPy cannot always tell that a `where`'s branch is real (`log(|u|)`
# may be -oo), and differentiates `Abs` of it with `re` and `im`; at the real points the
# tests evaluate, where the branch is finite, those are the value itself and 0.
REAL = {"re": lambda v: v, "im": lambda v: 0.0}
# What a `safe` template's calls mean to `Form.build`.
_NAMESPACE = {name: form.sympy for name, form in GATES.items()}
