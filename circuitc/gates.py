"""The gate table: every primitive circuitc knows, in one place.

Each `Gate` record holds everything the rest of the compiler needs about a
primitive: its arity, how `.circ` source spells it, how to evaluate it on floats
(`fn`, used for constant folding and by the verifier), how to print it in
generated Python (`python`) and in generated NumPy code (`numpy`), and its local
derivative rule (`derivative`).
The parser's name checks, the differentiator, the emitters, the verifier and the
gate list of docs/language.md all read `GATES`; adding a gate means adding one record here.

Derivative rules are written against a small builder `b` whose methods are the
gate names (`b.mul(g, x)`), so the gradient of a circuit is itself a circuit.
A rule receives the incoming adjoint `g`, the gate's output `y` and its inputs,
and returns one adjoint contribution per input (`None` where it is zero). Rules
reuse `y` wherever the textbook does (`sigmoid`: `g*(s*(1-s))`).
"""

from __future__ import annotations

import cmath
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass

# What a gate's `fn` (and its generated Python) raises outside the gate's domain:
# ValueError for `log(-1)`, ZeroDivisionError and OverflowError (ArithmeticErrors).
DOMAIN_ERRORS = (ArithmeticError, ValueError)
# What generated code raises outside a gate's domain, by target: the python target's
# `math` raises as `fn` does; the numpy target runs its gates under `np.errstate(...,
# "raise")`, which raises FloatingPointError (an ArithmeticError), so a ValueError from it
# means arrays whose shapes do not fit (a fault of the code), never a point outside a domain.
# The numba target re-runs a point where a value is not finite in the interpreter, which
# raises as the python target does.
TARGET_DOMAIN_ERRORS = {"python": DOMAIN_ERRORS, "numpy": (ArithmeticError,), "numba": DOMAIN_ERRORS}

# How many operands a gate may take (three: `where` alone). Code that runs for every node
# of a graph spells the operands out instead of looping over them (`graph.renumbered`,
# the Python emitter's `PythonWriter.gate_lines`), so `Gate` refuses any other arity.
ARITIES = (1, 2, 3)

# Precedence levels of generated Python expressions, lowest first.
COND, COMPARE, SUM, PRODUCT, UNARY, POWER, ATOM = range(7)


@dataclass(frozen=True)
class Syntax:
    """How a gate prints in a target language.

    `template` has one `{}` per operand, or numbered fields (`{0}`, `{1}`) when an
    operand appears more than once; an operand whose own precedence is
    below its entry in `operands` is parenthesized. `helper` names a module-level
    function the template calls, which the emitter must include: the function
    itself (python target), or, for the numpy target, whose helpers need a library
    circuitc itself does not import, its name in `circuitc/emit/numpy_helpers.py`.
    """

    template: str
    prec: int
    operands: tuple[int, ...]
    helper: Callable[..., float] | str | None = None


@dataclass(frozen=True)
class Gate:
    name: str
    arity: int
    fn: Callable[..., float]
    python: Syntax
    derivative: Callable[..., tuple]
    derivative_text: str  # the derivative rule in words, for the docs
    numpy: Syntax  # how the `numpy` target prints it: elementwise on arrays
    operator: str | None = None  # how `.circ` writes it as an operator
    callable: bool = False  # whether `.circ` may call it by name
    commutative: bool = False
    kink: bool = False  # piecewise: its derivative jumps where inputs tie or cross 0
    raises: bool = False  # on some floats its Python form raises (`log(-1)`, `1/0`, `exp(1000)`)
    # Whether the gate is complex-analytic: piecewise gates (`relu`, `max`, `step`) are not.
    analytic: bool = True
    # `fn` on complex numbers, for the complex-step derivative. None where there is
    # none: always for a gate that is not `analytic`; for one that is, until written.
    cfn: Callable[..., complex] | None = None
    # How messages and drawings name a gate that `.circ` text never spells (a step of a
    # `max` reduction: 'max'); None for its name.
    spelled: str | None = None
    # Whether a gate of constant operands folds to a constant. A reduction's steps do
    # not: the rule of its last step counts the terms below it (`_last_step_rule`).
    folds: bool = True

    def __post_init__(self):
        if self.arity not in ARITIES:
            raise ValueError(f"gate {self.name!r}: {self.arity} operands; a gate takes "
                             f"{' or '.join(map(str, ARITIES))}")
        if self.cfn is not None and not self.analytic:
            raise ValueError(f"gate {self.name!r} is not analytic: it can have no cfn")

    @property
    def no_complex_step(self) -> str | None:
        """Why the complex step cannot go through this gate, or None when it can."""
        if not self.analytic:
            return "is not complex-analytic"
        return "has no complex implementation (cfn)" if self.cfn is None else None

    @property
    def usage(self) -> str:
        """How `.circ` source writes this gate: "`a ** b`, `pow(a, b)`"."""
        args = ("c", "a", "b") if self.arity == 3 else "ab"[: self.arity]
        forms = [f"{self.name}({', '.join(args)})"] if self.callable else []
        if self.operator:
            forms.insert(0, f"a {self.operator} b" if self.arity == 2 else f"{self.operator}a")
        return ", ".join(f"`{form}`" for form in forms)

    @property
    def label(self) -> str:
        """A short label for drawings and messages: `*` or `sigmoid`."""
        return self.operator or self.spelled or self.name


# Numerically stable helpers. Generated modules copy these functions verbatim,
# so the folding, the verifier and the generated code share one definition.


def _sigmoid(x):
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def _softplus(x):
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


def _csigmoid(z):
    if z.real >= 0:
        return 1.0 / (1.0 + cmath.exp(-z))
    e = cmath.exp(z)
    return e / (1.0 + e)


def _csoftplus(z):
    if z.real > 0:  # softplus(z) = z + softplus(-z) keeps exp from overflowing
        return z + _csoftplus(-z)
    w = cmath.exp(z)
    u = 1.0 + w
    # ln(1 + w) accurate for small w (the complex log1p that cmath lacks).
    return w if u == 1.0 else cmath.log(u) * w / (u - 1.0)


def _clog1p(z):
    # ln|1 + z| as log1p of (1 + z)(1 + conj z) - 1, which cancels nothing for small z.
    return complex(0.5 * math.log1p(z.real * (2.0 + z.real) + z.imag * z.imag),
                   math.atan2(z.imag, 1.0 + z.real))


def _cexpm1(z):
    # e^x cos h - 1 as expm1(x) cos h - 2 sin²(h/2), which cancels nothing for small z.
    return complex(math.expm1(z.real) * math.cos(z.imag) - 2.0 * math.sin(z.imag / 2.0) ** 2,
                   math.exp(z.real) * math.sin(z.imag))


def _step(x):
    return 1.0 if x > 0 else 0.0


def _sign(x):
    return 1.0 if x > 0 else -1.0 if x < 0 else 0.0


def _share(x, y):
    return 1.0 if x > y else 0.5 if x == y else 0.0


def _where(c, a, b):
    return a if c else b


def _step_rule(b, g, y, x1, x2):
    """A step `y = max(x1, x2)` (or `min`) of a max (min) reduction's left fold: the
    adjoint to each operand equal to the result. Through the fold, a term equal to the
    reduction's result gets the whole adjoint of the last step, and every other term 0."""
    return b.mul(g, b.eq(x1, y)), b.mul(g, b.eq(x2, y))


def _last_step_rule(b, g, y, x1, x2):
    """The last step of a max (min) reduction: the adjoint divided by the number of terms
    equal to the result (at least 1: none is where the result is NaN) before the steps
    pass it on, so that the reduction, one n-ary operation, splits it equally among them.
    The terms are found by walking down the fold: its steps never fold (`Gate.folds`)."""
    step = b.node(y).op.replace("_last", "_step")
    terms, acc = [x2], x1
    while b.node(acc).op == step:
        acc, term = b.node(acc).args
        terms.append(term)
    terms.append(acc)
    count = b.eq(terms[-1], y)
    for term in reversed(terms[:-1]):
        count = b.add(count, b.eq(term, y))
    return _step_rule(b, b.div(g, b.max(count, b.const(1.0))), y, x1, x2)


def _div_rule(b, g, y, x1, x2):
    # d/db (a/b) = -a/b**2 = -(g/b) * y: reuses the quotient and the first adjoint.
    ga = b.div(g, x2)
    return ga, b.neg(b.mul(ga, y))


def _gauss(b, x):
    """2/sqrt(pi)·e^(-x²), the derivative of erf."""
    return b.mul(b.const(2.0 / math.sqrt(math.pi)), b.exp(b.neg(b.mul(x, x))))


def _where_rule(b, g, y, c, x1, x2):
    # The adjoint goes to the chosen branch only, itself chosen lazily: `where(c, g, 0)`.
    zero = b.const(0.0)
    return None, b.where(c, g, zero), b.where(c, zero, g)


def _comparison(name: str, symbol: str, fn, ufunc: str) -> Gate:
    """A comparison: 1.0 where it holds, else 0.0; its derivative is 0 but where its
    operands tie, where it jumps (a kink, for `verify`). Written as a conditional, not as
    `float(a < b)`: numba has no `float` of a bool."""
    return Gate(name, 2, lambda x, y: 1.0 if fn(x, y) else 0.0,
                Syntax(f"(1.0 if {{}} {symbol} {{}} else 0.0)", ATOM, (SUM, SUM)),
                lambda b, g, y, x1, x2: (None, None), "0 (it jumps where a = b)",
                operator=symbol, kink=True, analytic=False,
                numpy=Syntax(f"np.where(np.{ufunc}({{0}}, {{1}}), 1.0, 0.0)", ATOM, (COND, COND)))


def _infix(symbol: str, prec: int) -> Syntax:
    return Syntax("{} " + symbol + " {}", prec, (prec, prec + 1))


def _call(name: str, arity: int = 1, helper=None) -> Syntax:
    args = ", ".join(["{}"] * arity)
    return Syntax(f"{name}({args})", ATOM, (COND,) * arity, helper)


_TABLE = [
    Gate("add", 2, operator.add, _infix("+", SUM),
         lambda b, g, y, x1, x2: (g, g),
         "1, 1", operator="+", commutative=True, cfn=operator.add,
         numpy=_infix("+", SUM)),
    Gate("sub", 2, operator.sub, _infix("-", SUM),
         lambda b, g, y, x1, x2: (g, b.neg(g)),
         "1, -1", operator="-", cfn=operator.sub,
         numpy=_infix("-", SUM)),
    Gate("mul", 2, operator.mul, _infix("*", PRODUCT),
         lambda b, g, y, x1, x2: (b.mul(g, x2), b.mul(g, x1)),
         "b, a", operator="*", commutative=True, cfn=operator.mul,
         numpy=_infix("*", PRODUCT)),
    Gate("div", 2, operator.truediv, _infix("/", PRODUCT), _div_rule,
         "1/b, -a/b²", operator="/", cfn=operator.truediv,
         numpy=_infix("/", PRODUCT), raises=True),
    Gate("neg", 1, operator.neg, Syntax("-{}", UNARY, (UNARY,)),
         lambda b, g, y, x: (b.neg(g),),
         "-1", operator="-", cfn=operator.neg,
         numpy=Syntax("-{}", UNARY, (UNARY,))),
    Gate("pow", 2, math.pow, _call("math.pow", 2),
         lambda b, g, y, x1, x2: (
             # a**0 is 1 for every a: 0·a^-1 would raise at a = 0 for nothing.
             None if b.const_value(x2) == 0.0
             else b.mul(g, b.mul(x2, b.pow(x1, b.sub(x2, b.const(1.0))))),
             None if b.is_const(x2) else b.mul(g, b.mul(y, b.log(x1)))),
         "b·a^(b-1), none when b is the constant 0; a^b·ln a only when b is not a constant",
         operator="**", callable=True, cfn=operator.pow,
         # C's pow, as `math.pow`: `np.power` takes sqrt for an exponent 0.5, which
         # gives -0.0 at -0.0 and nan at -inf where pow gives 0.0 and inf.
         numpy=_call("np.float_power", 2), raises=True),
    Gate("sigmoid", 1, _sigmoid, _call("_sigmoid", helper=_sigmoid),
         lambda b, g, y, x: (b.mul(g, b.mul(y, b.sub(b.const(1.0), y))),),
         "s(1-s), reusing s", callable=True, cfn=_csigmoid,
         numpy=_call("_sigmoid", helper="_sigmoid")),
    Gate("tanh", 1, math.tanh, _call("math.tanh"),
         lambda b, g, y, x: (b.mul(g, b.sub(b.const(1.0), b.mul(y, y))),),
         "1-t², reusing t", callable=True, cfn=cmath.tanh,
         numpy=_call("np.tanh")),
    # relu, max and min are Python's `max` and `min` in both targets: the first argument
    # unless the other is strictly larger (smaller), so relu(-0.0) is -0.0, max(0.0, -0.0)
    # 0.0, max(-0.0, 0.0) -0.0 and max(1, nan) 1.0. NumPy's maximum and minimum propagate
    # nan and leave which zero they return unspecified, so the numpy target compares.
    Gate("relu", 1, lambda x: max(x, 0.0), Syntax("max({}, 0.0)", ATOM, (COND,)),
         lambda b, g, y, x: (b.mul(g, b.step(x)),),
         "1 if a > 0 else 0", callable=True, kink=True, analytic=False,
         numpy=Syntax("np.where(np.less({0}, 0.0), 0.0, {0})", ATOM, (COND,))),
    Gate("softplus", 1, _softplus, _call("_softplus", helper=_softplus),
         lambda b, g, y, x: (b.mul(g, b.sigmoid(x)),),
         "sigmoid(a)", callable=True, cfn=_csoftplus,
         numpy=_call("_softplus", helper="_softplus")),
    Gate("exp", 1, math.exp, _call("math.exp"),
         lambda b, g, y, x: (b.mul(g, y),),
         "e^a, reusing the output", callable=True, cfn=cmath.exp,
         numpy=_call("np.exp"), raises=True),
    Gate("log", 1, math.log, _call("math.log"),
         lambda b, g, y, x: (b.div(g, x),),
         "1/a", callable=True, cfn=cmath.log,
         numpy=_call("np.log"), raises=True),
    # log1p and expm1 keep the digits of a small input that 1 + a and e^a - 1 lose.
    Gate("log1p", 1, math.log1p, _call("math.log1p"),
         lambda b, g, y, x: (b.div(g, b.add(b.const(1.0), x)),),
         "1/(1+a)", callable=True, cfn=_clog1p,
         numpy=_call("np.log1p"), raises=True),
    # e^a, not 1 + y, which loses e^a's digits as a falls below 0 and is 0 below -37.5.
    Gate("expm1", 1, math.expm1, _call("math.expm1"),
         lambda b, g, y, x: (b.mul(g, b.exp(x)),),
         "e^a", callable=True, cfn=_cexpm1,
         numpy=_call("np.expm1"), raises=True),
    # erfc(a) = 1 - erf(a) but keeps its digits for large a, where erf(a) rounds to 1.
    # NumPy has no erf: the numpy target's helpers compute both (`numpy_helpers._erf`).
    Gate("erf", 1, math.erf, _call("math.erf"),
         lambda b, g, y, x: (b.mul(g, _gauss(b, x)),),
         "2/sqrt(pi)·e^(-a²)", callable=True,
         numpy=_call("_erf", helper="_erf")),
    Gate("erfc", 1, math.erfc, _call("math.erfc"),
         lambda b, g, y, x: (b.neg(b.mul(g, _gauss(b, x))),),
         "-2/sqrt(pi)·e^(-a²)", callable=True,
         numpy=Syntax("_erf({}, complement=True)", ATOM, (COND,), "_erf")),
    Gate("sqrt", 1, math.sqrt, _call("math.sqrt"),
         lambda b, g, y, x: (b.div(g, b.mul(b.const(2.0), y)),),
         "1/(2·sqrt a), reusing the output", callable=True, cfn=cmath.sqrt,
         numpy=_call("np.sqrt"), raises=True),
    Gate("sin", 1, math.sin, _call("math.sin"),
         lambda b, g, y, x: (b.mul(g, b.cos(x)),),
         "cos a", callable=True, cfn=cmath.sin,
         numpy=_call("np.sin"), raises=True),
    Gate("cos", 1, math.cos, _call("math.cos"),
         lambda b, g, y, x: (b.neg(b.mul(g, b.sin(x))),),
         "-sin a", callable=True, cfn=cmath.cos,
         numpy=_call("np.cos"), raises=True),
    Gate("tan", 1, math.tan, _call("math.tan"),
         lambda b, g, y, x: (b.mul(g, b.add(b.const(1.0), b.mul(y, y))),),
         "1+tan² a, reusing the output", callable=True, cfn=cmath.tan,
         numpy=_call("np.tan"), raises=True),
    Gate("atan", 1, math.atan, _call("math.atan"),
         lambda b, g, y, x: (b.div(g, b.add(b.const(1.0), b.mul(x, x))),),
         "1/(1+a²)", callable=True, cfn=cmath.atan,
         numpy=_call("np.arctan")),
    Gate("abs", 1, abs, _call("abs"),
         lambda b, g, y, x: (b.mul(g, b.sign(x)),),
         "sign(a), 0 at 0", callable=True, kink=True, analytic=False,
         numpy=_call("np.abs")),
    Gate("max", 2, max, _call("max", 2),
         lambda b, g, y, x1, x2: (b.mul(g, b.share(x1, x2)), b.mul(g, b.share(x2, x1))),
         "to the larger input; at a tie each gets half",
         callable=True, kink=True,  # not commutative: max(0.0, -0.0) is 0.0, max(-0.0, 0.0) -0.0
         analytic=False,
         numpy=Syntax("np.where(np.greater({1}, {0}), {1}, {0})", ATOM, (COND, COND))),
    Gate("min", 2, min, _call("min", 2),
         lambda b, g, y, x1, x2: (b.mul(g, b.share(x2, x1)), b.mul(g, b.share(x1, x2))),
         "to the smaller input; at a tie each gets half",
         callable=True, kink=True,  # not commutative, as max
         analytic=False,
         numpy=Syntax("np.where(np.less({1}, {0}), {1}, {0})", ATOM, (COND, COND))),
    # The left fold of a `max` or `min` reduction (`buses`): printed as the two-argument
    # gates, whose value it has, but with the reduction's tie rule (equal shares).
    *(Gate(f"{kind}_{part}", 2, fn, _call(kind, 2), rule,
           f"a step of a '{kind}' reduction: the adjoint to each operand equal to the result"
           + ("; its last step first divides it by the number of terms equal to the result"
              if part == "last" else ""),
           kink=True, analytic=False, numpy=numpy, spelled=kind, folds=False)
      for kind, fn, numpy in (
          ("max", max, Syntax("np.where(np.greater({1}, {0}), {1}, {0})", ATOM, (COND, COND))),
          ("min", min, Syntax("np.where(np.less({1}, {0}), {1}, {0})", ATOM, (COND, COND))))
      for part, rule in (("step", _step_rule), ("last", _last_step_rule))),
    # Piecewise-constant gates that only derivative rules use; their own
    # derivative is zero wherever it exists.
    Gate("step", 1, _step, _call("_step", helper=_step),
         lambda b, g, y, x: (None,), "0", analytic=False,
         numpy=Syntax("np.where(np.greater({}, 0.0), 1.0, 0.0)", ATOM, (COND,))),
    Gate("sign", 1, _sign, _call("_sign", helper=_sign),
         lambda b, g, y, x: (None,), "0", analytic=False,
         numpy=_call("np.sign")),
    Gate("share", 2, _share, _call("_share", 2, helper=_share),
         lambda b, g, y, x1, x2: (None, None), "0", analytic=False,
         numpy=Syntax("np.where(np.greater({0}, {1}), 1.0, np.where(np.equal({0}, {1}), 0.5, 0.0))",
                      ATOM, (COND, COND))),
]

# Comparisons, `a < b` and so on: `eq` is also the rule gate of a reduction's steps.
_TABLE += [_comparison(name, symbol, fn, ufunc) for name, symbol, fn, ufunc in (
    ("lt", "<", operator.lt, "less"), ("le", "<=", operator.le, "less_equal"),
    ("gt", ">", operator.gt, "greater"), ("ge", ">=", operator.ge, "greater_equal"),
    ("eq", "==", operator.eq, "equal"), ("ne", "!=", operator.ne, "not_equal"))]
# `where(c, a, b)`: `a` where `c` is nonzero (nan too), else `b`. Only the branch taken is
# computed: code generators and `graph.run` evaluate the nodes only one branch needs under
# that branch's condition (`circuitc/guards.py`), and `grad` keeps their adjoints lazy too.
_TABLE.append(Gate(
    "where", 3, _where, Syntax("{1} if {0} else {2}", COND, (COMPARE, COMPARE, COND)),
    _where_rule, "0 to c; to a where c is nonzero, else to b; the other branch is not computed",
    callable=True, kink=True, analytic=False,
    numpy=Syntax("np.where({0}, {1}, {2})", ATOM, (COND, COND, COND))))

GATES: dict[str, Gate] = {gate.name: gate for gate in _TABLE}

# How `.circ` source names gates: `sigmoid(x)` and `pow(a, b)` by call.
CALLABLE: dict[str, Gate] = {gate.name: gate for gate in _TABLE if gate.callable}


def markdown_table() -> str:
    """The table of gates and their derivative rules in docs/language.md, made from `GATES`."""
    rows = [f"| {g.usage} | {g.derivative_text} |" for g in GATES.values() if g.usage]
    return "\n".join(["| gate | local derivative(s) |", "|---|---|", *rows])
