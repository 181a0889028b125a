"""A module against the module circuitc generates from its circuit (`verify CIRCUIT.circ
--module M.py`): where they differ, the first wire whose value or adjoint differs.
"""

from __future__ import annotations

import dis
import math
import re
import sys

from ..elements import gradient_of, outputs_of
from ..gates import DOMAIN_ERRORS
from ..grad import ADJOINT, grad
from .checked import Checked
from .report import Mismatch, PointReport, derivative_name


def interface_mismatch(module, reference) -> str | None:
    """How `module`'s INPUTS, OUTPUTS or WRT cannot be the circuit's, or None."""
    for attr in ("INPUTS", "OUTPUTS"):
        mine, theirs = tuple(getattr(module, attr)), tuple(getattr(reference, attr))
        if mine != theirs:
            return f"its {attr} are ({', '.join(mine)}), the circuit's ({', '.join(theirs)})"
    return None


def _same(a: float, b: float, rtol: float, atol: float) -> bool:
    """Whether two computations of one value agree: within the tolerance, or both NaN."""
    return a == b or (math.isnan(a) and math.isnan(b)) or abs(a - b) <= atol + rtol * abs(b)


def compare(c: Checked, at: dict[str, float], point: PointReport, direction, rtol: float,
             atol: float) -> Mismatch | None:
    """How the module disagrees with `c.reference` at `at`, or None; fills in each check's
    `circuit` (the reference's gradient, or its inner product with `direction`)."""
    ref, graph = c.reference, c.graph
    args = [at[name] for name in c.inputs]
    found = Mismatch(graph.filename, [], [])
    try:
        values = outputs_of(ref, ref.forward(*args))
        grads = {out: dict(zip(ref.WRT, gradient_of(ref, args, k)))
                 for k, out in enumerate(c.outputs)}
    except DOMAIN_ERRORS as e:
        found.detail = f"circuitc's module for the circuit is undefined here ({e})"
        return found
    for check in point.checks:
        g = grads[check.output]
        check.circuit = (g[check.input] if direction is None
                         else math.fsum(g[n] * w for n, w in direction.items()))
    mine = c.gradients(at)
    found.outputs = [out for out, v in zip(c.outputs, values)
                     if not _same(point.outputs[out], v, rtol, atol)]
    found.derivatives = [derivative_name(out, name) for out in c.outputs
                         for name, g in zip(c.wrt, mine[out])
                         if not _same(g, grads[out][name], rtol, atol)]
    if not (found.outputs or found.derivatives):
        return None
    if found.outputs:
        _locate(found, c, "forward", args, rtol, atol)
    else:
        k = next(k for k, out in enumerate(c.outputs) if any(
            d.startswith(f"d{out}/") for d in found.derivatives))
        _locate(found, c, "backward", args + [float(j == k) for j in range(len(c.outputs))],
                rtol, atol)
    return found


def _locate(found: Mismatch, c: Checked, function: str, args: list[float], rtol: float,
            atol: float) -> None:
    """Name in `found` the first wire whose value or adjoint differs when `function` of the
    module and of the reference run on `args`, in the order the reference computes them.

    A wire is found by its name: both modules name wires after the circuit and adjoints
    `d_<wire>`; numbered temporaries (`t1`) are passed over, as they may number
    differently."""
    mine_fn, ref_fn = getattr(c.module, function), getattr(c.reference, function)
    mine, theirs = _locals_at_return(mine_fn, args), _locals_at_return(ref_fn, args)
    wires = {n.name for n in c.graph.nodes if n.name} | set(c.inputs)
    values = set(c.reference.forward.__code__.co_varnames)  # the wires, not their adjoints
    code = ref_fn.__code__
    common = False
    for name in code.co_varnames[code.co_argcount:]:
        if name not in mine or (re.fullmatch(r"t\d+", name) and name not in wires):
            continue
        try:
            m, r = float(mine[name]), float(theirs[name])
        except (KeyError, TypeError, ValueError):
            continue  # not a number (an exception caught, a helper's result)
        common = True
        if not _same(m, r, rtol, atol):
            found.variable, found.module_value, found.circuit_value = name, m, r
            found.adjoint = name.startswith("d_") and name not in values
            found.module_line = _assigned_at(mine_fn, name)
            found.circuit_line = _circuit_line(c, found.wire, found.adjoint, found.circuit)
            return
    what = "values it returns" if function == "forward" else "gradients it returns"
    found.detail = (f"every wire of the circuit agrees, but the {what} differ" if common else
                    "none of the circuit's wires is found by name in the module, so none "
                    "can be named")


def _locals_at_return(fn, args: list[float]) -> dict:
    """`fn(*args)`'s local variables as it returns (empty for a function without Python
    code, or one that raises)."""
    code = getattr(fn, "__code__", None)
    seen: dict = {}

    def profile(frame, event, arg):
        if event == "return" and frame.f_code is code and not seen:
            seen.update(frame.f_locals)
    before = sys.getprofile()
    sys.setprofile(profile)
    try:
        fn(*args)
    except Exception:  # noqa: BLE001 (its values are compared, its failures reported elsewhere)
        seen.clear()
    finally:
        sys.setprofile(before)
    return seen


def _assigned_at(fn, name: str) -> str | None:
    """`file:line` of the first assignment to the local `name` in `fn`."""
    code = getattr(fn, "__code__", None)
    for instruction in dis.get_instructions(code) if code else ():
        if instruction.opname.startswith("STORE_") and instruction.argval == name:
            return f"{code.co_filename}:{instruction.positions.lineno}"
    return None


def _circuit_line(c: Checked, wire: str, adjoint: bool, circuit: str) -> str | None:
    """`circuit:N` (through `gate` calls `circuit:N, in g (line M)`): where the circuit
    computes `wire`'s value, or its adjoint, taken from the origin of the node that the
    graph (for an adjoint, its gradient graph) names so. That origin is what circuitc's
    emitters write beside the line and record in `_WHERE`, so any module is placed alike,
    whatever its comments say. None where no node is named so (a module that names its
    variables otherwise)."""
    graph = grad(c.graph, c.wrt) if adjoint else c.graph
    name = ADJOINT + wire if adjoint else wire
    origin = next((n.origin for n in graph.nodes if n.name == name and n.origin), None)
    return None if origin is None else f"{circuit}:{origin.lines.removeprefix('line ')}"
