"""Syntax tree -> `.circ` text: `expression_text(expr)` writes an expression back so that
it parses to the same tree, as drawings label a wire with its definition.
"""

from __future__ import annotations

from .gates import GATES
from .syntax import Call, Index, Name, Num, Reduce

_PRECEDENCE = {"lt": 0, "le": 0, "gt": 0, "ge": 0, "eq": 0, "ne": 0,
               "add": 1, "sub": 1, "mul": 2, "div": 2, "floordiv": 2, "neg": 3, "pow": 4}
_ATOM = 5


def expression_text(expr) -> str:
    """`expr` as `.circ` text that parses back to it: parentheses only where the
    tree needs them, operators spaced (`a * b + c`), indices compact (`W[i,j+1]`)."""
    done: list[tuple[str, int]] = []  # (text, precedence)
    stack = [(expr, False, False)]  # (expression, inside an index, operands done)
    while stack:
        e, compact, ready = stack.pop()
        kind = type(e)
        if kind is Num:
            v = e.value
            done.append((str(int(v)) if v.is_integer() and abs(v) < 1e16 else repr(v), _ATOM))
            continue
        if kind is Name:
            done.append((e.id, _ATOM))
            continue
        operands = (e.body, *(e.bounds or ())) if kind is Reduce else e.args
        if not ready:
            stack.append((e, compact, True))
            stack.extend((a, compact or kind is Index, False) for a in reversed(operands))
            continue
        args = done[len(done) - len(operands):]
        del done[len(done) - len(operands):]
        done.append(_joined(e, args, compact))
    return done.pop()[0]


def _joined(e, args: list[tuple[str, int]], compact: bool) -> tuple[str, int]:
    """The text of `e` from its operands' texts and precedences."""
    kind = type(e)
    texts = [t for t, _ in args]
    if kind is Index:
        return f"{e.name.id}[{','.join(texts)}]", _ATOM
    if kind is Call:
        return f"{e.name.id}({', '.join(texts)})", _ATOM
    if kind is Reduce:
        bounds = f" in range({', '.join(texts[1:])})" if e.bounds is not None else ""
        return f"{e.name.id}({texts[0]} for {', '.join(v.id for v in e.vars)}{bounds})", _ATOM
    p = _PRECEDENCE[e.gate]

    def grouped(k: int, tighter: bool) -> str:
        text, q = args[k]
        return f"({text})" if q < p or (q == p and tighter) else text
    if e.gate == "neg":
        return "-" + grouped(0, False), p
    symbol = GATES[e.gate].operator if e.gate in GATES else "//"
    if e.gate == "pow":  # `atom ** unary`: a sign may follow `**` unparenthesised
        left = grouped(0, True)
        right = args[1][0] if args[1][1] >= _PRECEDENCE["neg"] else f"({args[1][0]})"
    else:  # left-associative; a comparison does not chain: `(a < b) < c`
        left, right = grouped(0, p == 0), grouped(1, True)
    return (f"{left}{symbol}{right}" if compact else f"{left} {symbol} {right}"), p
