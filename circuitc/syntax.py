"""The syntax tree of a `.circ` file: small immutable nodes, each with the `Span` it came
from, which `parse` builds and every later step reads; and walks over expressions.

A statement is an `InputDecl`, `OutputDecl`, `Assign`, `BusAssign`, `SizeDecl` or
`GateDef`; an expression is a `Num`, `Name`, `Op` (an operator, by its gate-table name),
`Call`, `Index` (a bus element) or `Reduce`, and a bus input's default may be a `ListLit`.
The walks use explicit stacks, so nesting depth is limited only by memory.
"""

from __future__ import annotations

from typing import NamedTuple

from .errors import Span

KEYWORDS = frozenset(("input", "output", "gate", "size", "for", "in"))  # no name may be one


class Name(NamedTuple):
    id: str
    span: Span


class Num(NamedTuple):
    value: float
    span: Span


class Op(NamedTuple):
    """An operator application; `gate` is a gate-table name, `span` the operator's."""

    gate: str
    args: tuple
    span: Span


class Call(NamedTuple):
    """A call by name, to a built-in gate or a `gate` definition."""

    name: Name
    args: tuple

    @property
    def span(self) -> Span:
        return self.name.span


class Index(NamedTuple):
    """An element of a bus, `name[args]`; each index is an expression."""

    name: Name
    args: tuple

    @property
    def span(self) -> Span:
        return self.name.span


class Reduce(NamedTuple):
    """`name(body for vars)` or `name(body for vars in range(*bounds))`: a reduction."""

    name: Name
    body: object
    vars: tuple[Name, ...]
    bounds: tuple | None  # the arguments of `range`, or None to infer the range

    @property
    def span(self) -> Span:
        return self.name.span


class ListLit(NamedTuple):
    """A nested list of constants, `[1, -2]`: a bus input's default."""

    items: tuple
    span: Span


class BusItem(NamedTuple):
    """`name[dims]` in an `input` statement, with its default (an expression, a
    `ListLit`, or None)."""

    name: Name
    dims: tuple
    default: object


class InputDecl(NamedTuple):
    items: tuple  # (name, default expression or None) for a scalar, or a `BusItem`


class OutputDecl(NamedTuple):
    names: tuple[Name, ...]


class Assign(NamedTuple):
    target: Name
    expr: object


class BusAssign(NamedTuple):
    """`target[indices] = expr`: a bus defined element by element."""

    target: Name
    indices: tuple[Name, ...]
    expr: object


class SizeDecl(NamedTuple):
    name: Name
    expr: object


class GateDef(NamedTuple):
    name: Name
    params: tuple[Name, ...]
    body: object


# -- walks ---------------------------------------------------------------------------


def _children(e) -> tuple:
    """The operands of an operator, a call or an index (a reduction's are its own scope)."""
    kind = type(e)
    if kind is Op or kind is Call or kind is Index:
        return e.args
    return ()


def postorder(expr):
    """Every subexpression of `expr` after its operands (a reduction's body and
    bounds are not entered: they have scopes of their own)."""
    stack = [(expr, False)]
    while stack:
        e, ready = stack.pop()
        children = _children(e)
        if ready or not children:
            yield e
        else:
            stack.append((e, True))
            stack.extend((c, False) for c in reversed(children))


def walk_all(expr):
    """Every subexpression of `expr`, reductions' bodies and bounds included."""
    stack = [expr]
    while stack:
        e = stack.pop()
        yield e
        if type(e) is Reduce:
            stack.append(e.body)
            stack.extend(e.bounds or ())
        else:
            stack.extend(_children(e))
