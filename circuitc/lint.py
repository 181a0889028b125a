"""Warnings: what a circuit says that compiles but is likely not what was meant.

`lint(statements)` looks at a parsed file (statements, before buses are written out)
and returns a `CircuitWarning` for each of:

- an output that is an input (`output x` for `input x`): the input's own value, passed
  through, and a gradient of 1 with respect to itself;
- a wire or bus that no output depends on (`needed`): computed, then thrown away.

`needed(statements)` is also how the written-out form knows which buses to write out
in full (`buses.expand`).
"""

from __future__ import annotations

from .errors import CircuitWarning, Label
from .syntax import Assign, BusAssign, BusItem, Call, Index, InputDecl, Name, Op, OutputDecl, Reduce


def outputs(statements: list) -> list[Name]:
    """The outputs: the names of the `output` statements, else the last assigned wire's."""
    declared = [name for s in statements if type(s) is OutputDecl for name in s.names]
    if declared:
        return declared
    return [s.target for s in statements if type(s) in (Assign, BusAssign)][-1:]


def _reads(expr) -> set[str]:
    """The names `expr` reads (wires, inputs, sizes and index variables alike), reductions'
    bodies and bounds included."""
    found, stack = set(), [expr]
    while stack:
        e = stack.pop()
        kind = type(e)
        if kind is Name:
            found.add(e.id)
        elif kind is Index:
            found.add(e.name.id)
            stack.extend(e.args)
        elif kind is Reduce:
            stack.append(e.body)
            stack.extend(e.bounds or ())
        elif kind is Op or kind is Call:
            stack.extend(e.args)
    return found


def needed(statements: list) -> set[str]:
    """The wires and buses some output depends on (the outputs among them)."""
    defined = {s.target.id: s.expr for s in statements if type(s) in (Assign, BusAssign)}
    live, stack = set(), [name.id for name in outputs(statements)]
    while stack:
        name = stack.pop()
        if name in live or name not in defined:
            continue
        live.add(name)
        stack.extend(_reads(defined[name]))
    return live


def lint(statements: list) -> list[CircuitWarning]:
    """The warnings of a parsed file, in source order."""
    found = []
    declared = [item.name if type(item) is BusItem else item[0]
                for s in statements if type(s) is InputDecl for item in s.items]
    inputs = {name.id: name for name in declared}
    assigned = {s.target.id for s in statements if type(s) in (Assign, BusAssign)}
    for name in (n for s in statements if type(s) is OutputDecl for n in s.names):
        # Without `input` statements, a name read and never assigned is an input.
        if name.id in inputs or not declared and name.id not in assigned:
            found.append(CircuitWarning(
                f"output '{name.id}' is an input: it is the input's own value, passed "
                "through unchanged", name.span,
                labels=[Label(inputs[name.id].span, "declared as an input here")]
                if name.id in inputs else ()))
    live = needed(statements)
    for s in statements:
        if type(s) in (Assign, BusAssign) and s.target.id not in live:
            what = "bus" if type(s) is BusAssign else "wire"
            found.append(CircuitWarning(f"{what} '{s.target.id}' is not used: no output "
                                        "depends on it", s.target.span))
    return sorted(found, key=lambda w: w.span)
