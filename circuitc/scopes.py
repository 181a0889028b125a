"""Names and scopes in a file's statements, as an editor sees them: what each name written
in the file names (`Resolver`), and the names a line being typed would bind
(`bound_by_text`). `circuitc.analysis` builds on it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

from .errors import Span
from .gates import CALLABLE, Gate
from .shapes import REDUCTIONS
from .syntax import (
    KEYWORDS,
    Assign,
    BusAssign,
    BusItem,
    Call,
    GateDef,
    Index,
    InputDecl,
    ListLit,
    Name,
    Op,
    OutputDecl,
    Reduce,
    SizeDecl,
)

# What a name can be: what a statement defines (`input`, `wire`, `bus`, `size`, `gate`),
# what a statement or a reduction binds for itself (`parameter` of a gate, `index`
# variable), and what circuitc defines (`builtin` gate, `reduction`).
KINDS = ("input", "wire", "bus", "size", "gate", "parameter", "index", "builtin", "reduction")

@dataclass(frozen=True, eq=False)
class Symbol:
    """A name and what it is (`KINDS`): `span` is where it is defined (None for what
    circuitc defines), `statement` the statement that defines or binds it (a syntax node
    of `parse`), `rank` a bus's number of indices (0 for a scalar), `implicit` for an
    input that no `input` statement declares, `within` the span of the reduction that
    binds an index variable (None: bound in its whole statement). Symbols compare by
    identity: the index variables `i` of two statements are two symbols."""

    name: str
    kind: str
    span: Span | None = None
    statement: object = None
    rank: int = 0
    implicit: bool = False
    within: Span | None = None

    @property
    def gate(self) -> Gate | None:
        """The gate table's record of a built-in gate (`sigmoid`), or None."""
        return CALLABLE.get(self.name) if self.kind == "builtin" else None


class Occurrence(NamedTuple):
    """A place where a name is written, and the symbol it names; `definition` where it is
    the name a statement defines (or binds)."""

    span: Span
    symbol: Symbol
    definition: bool = False


_BUILTINS = {name: Symbol(name, "builtin") for name in CALLABLE}
_REDUCTIONS = {name: Symbol(name, "reduction") for name in REDUCTIONS}
_DEFINED = {Assign: "wire", BusAssign: "bus", SizeDecl: "size", GateDef: "gate"}


def builtin(name: str) -> Symbol | None:
    """The symbol of the built-in gate or the reduction `name` (`max` is both: the gate)."""
    return _BUILTINS.get(name) or _REDUCTIONS.get(name)


_GATE_HEAD = re.compile(r"\s*gate\s+[A-Za-z_]\w*\s*\(([^)]*)\)\s*=")
_BUS_HEAD = re.compile(r"\s*[A-Za-z_]\w*\s*\[([^\]]*)\]\s*=")
_FOR = re.compile(r"\bfor\s+([A-Za-z_][\w\s,]*)")
_IDENTIFIER = re.compile(r"[A-Za-z_]\w*")


def bound_by_text(before: str) -> list[Symbol]:
    """The parameters and index variables that the text `before` (a line up to a place)
    would bind there if it parsed: a `gate` head's, a bus definition's, a `for`'s."""
    found = []
    for head, kind in ((_GATE_HEAD, "parameter"), (_BUS_HEAD, "index")):
        m = head.match(before)
        if m:
            found += [(name.strip(), kind) for name in m.group(1).split(",")]
    found += [(name.strip(), "index") for m in _FOR.finditer(before)
              for name in m.group(1).split(",")]
    return [Symbol(name, kind) for name, kind in found
            if _IDENTIFIER.fullmatch(name) and name not in KEYWORDS]


def _end(expr) -> tuple[int, int]:
    """Where the last token of `expr` that has a span ends, found without recursion."""
    end, stack = (0, 0), [expr]
    while stack:
        e = stack.pop()
        kind = type(e)
        end = max(end, e.span[2:])
        if kind is Op or kind is Call or kind is Index:
            stack.extend(e.args)
        elif kind is Reduce:
            stack += [e.body, *e.vars, *(e.bounds or ())]
    return end


class Resolver:
    """What each name written in a file's statements names: `symbols` (the names the
    file defines), `found` (every resolved name, as `Occurrence`s in source order) and
    `extents` (each statement's span, from its first name to its last token's end)."""

    def __init__(self, statements: list):
        self.symbols: dict[str, Symbol] = {}
        self.found: list[Occurrence] = []
        self.extents: list[tuple[Span, object]] = []
        self.implicit = not any(type(s) is InputDecl for s in statements)
        for statement in statements:
            self._define(statement)
        # Outputs last: an output names an implicit input only where a wire reads it.
        for statement in sorted(statements, key=lambda s: type(s) is OutputDecl):
            self._resolve(statement)
        self.found.sort(key=lambda o: o.span)
        self.extents.sort(key=lambda e: e[0])

    def _define(self, s) -> None:
        """Record the names statement `s` defines (the first definition of a name wins)."""
        kind = type(s)
        if kind is InputDecl:
            for item in s.items:
                if type(item) is BusItem:
                    self._add(Symbol(item.name.id, "input", item.name.span, s, len(item.dims)))
                else:
                    self._add(Symbol(item[0].id, "input", item[0].span, s))
        elif kind in _DEFINED:
            target = s.name if kind in (SizeDecl, GateDef) else s.target
            rank = len(s.indices) if kind is BusAssign else 0
            self._add(Symbol(target.id, _DEFINED[kind], target.span, s, rank))

    def _add(self, symbol: Symbol) -> None:
        symbol = self.symbols.setdefault(symbol.name, symbol)
        self.found.append(Occurrence(symbol.span, symbol, True))

    def _resolve(self, s) -> None:
        """Record every name statement `s` uses, and its extent."""
        kind = type(s)
        if kind is InputDecl:
            heads = [item.name if type(item) is BusItem else item[0] for item in s.items]
            exprs = [x for item in s.items for x in ((*item.dims, item.default)
                                                   if type(item) is BusItem else (item[1],))]
            scope, gate_body = {}, False
        elif kind is OutputDecl:
            heads, exprs, scope, gate_body = list(s.names), [], {}, False
            for name in s.names:
                symbol = self.symbols.get(name.id)
                if symbol is not None and symbol.kind != "gate":
                    self.found.append(Occurrence(name.span, symbol))
        elif kind is GateDef:
            heads, exprs, gate_body = [s.name, *s.params], [s.body], True
            scope = self._bind(s, s.params, "parameter", {})
        elif kind is BusAssign:
            heads, exprs, gate_body = [s.target, *s.indices], [s.expr], False
            scope = self._bind(s, s.indices, "index", {})
        else:  # Assign, SizeDecl
            heads = [s.target if kind is Assign else s.name]
            exprs, scope, gate_body = [s.expr], {}, False
        end = max([name.span[2:] for name in heads] + [self._walk(s, exprs, scope, gate_body)])
        self.extents.append((Span(*heads[0].span[:2], *end), s))

    def _bind(self, s, names, kind: str, scope: dict, within: Span | None = None) -> dict:
        """`scope` with `names` (of statement `s`) bound as new symbols of `kind`, bound
        `within` a reduction or (None) in the whole statement."""
        scope = dict(scope)
        for name in names:
            symbol = scope[name.id] = Symbol(name.id, kind, name.span, s, within=within)
            self.found.append(Occurrence(name.span, symbol, True))
        return scope

    def _walk(self, s, exprs: list, scope: dict, gate_body: bool) -> tuple[int, int]:
        """Resolve the names of `exprs` (of statement `s`) with the local symbols `scope`,
        without recursion; return the end of the last of their tokens."""
        stack = [(e, scope) for e in reversed(exprs) if e is not None]
        end = (0, 0)
        while stack:
            e, scope = stack.pop()
            kind = type(e)
            end = max(end, e.span[2:])
            if kind is Name:
                self._use(e, scope, gate_body)
            elif kind is Op:
                stack += [(a, scope) for a in reversed(e.args)]
            elif kind is ListLit:
                stack += [(a, scope) for a in reversed(e.items)]
            elif kind is Call:
                gate = self.symbols.get(e.name.id)
                symbol = gate if gate and gate.kind == "gate" else _BUILTINS.get(e.name.id)
                if symbol is not None:
                    self.found.append(Occurrence(e.name.span, symbol))
                stack += [(a, scope) for a in reversed(e.args)]
            elif kind is Index:
                self._use(e.name, scope, gate_body)
                stack += [(a, scope) for a in reversed(e.args)]
            elif kind is Reduce:
                self.found.append(Occurrence(e.name.span, _REDUCTIONS[e.name.id]))
                within = Span(*e.span[:2], *_end(e))
                inner = self._bind(s, e.vars, "index", scope, within)
                end = max(end, within[2:])
                stack += [(e.body, inner), *((b, scope) for b in reversed(e.bounds or ()))]
        return end

    def _use(self, name: Name, scope: dict, gate_body: bool) -> None:
        """Record the use of `name`: a local symbol, else (outside a gate's body) a name
        the file defines, else (in a file without `input` statements) a new implicit input."""
        symbol = scope.get(name.id)
        if symbol is None and not gate_body:
            symbol = self.symbols.get(name.id)
            if symbol is not None and symbol.kind == "gate":
                return  # a gate used as a number: an error, not a reference
            if symbol is None and self.implicit and name.id not in CALLABLE:
                symbol = self.symbols[name.id] = Symbol(name.id, "input", name.span,
                                                        implicit=True)
                self.found.append(Occurrence(name.span, symbol, True))
                return
        if symbol is not None:
            self.found.append(Occurrence(name.span, symbol))

