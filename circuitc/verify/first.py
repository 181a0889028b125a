"""`verify_circuit`: a module's gradients checked at its points, first order.

Points: the given values, else the declared defaults, else a drawn value (the
"fixed point"), then `points` random points in which every input not given is
drawn. A drawn value is `s * m`, `s` = -1 or +1 with equal probability, `m` uniform
on [0.5, 2): values of either sign, of order one, never near 0 (where `log`,
`sqrt` and `1/x` have their edges). A drawn point at which the circuit or its
gradient is undefined is drawn again, up to `MAX_DRAWS` times; every draw comes
from one `random.Random(seed)`, so a run is reproducible.

`fast`: instead of one check per input, one per output along a random direction
`v` (`v_i = d_i * max(1, |x_i|)`, `d_i` drawn like an input value, ±[0.5, 2), so that
errors in different inputs cancel with probability 0): the directional derivative
`(f(x + tv) - f(x - tv)) / 2t` (or forward, or complex) against `sum(grad_i * v_i)`,
so a circuit with thousands of inputs costs a few evaluations per point.
"""

from __future__ import annotations

import random

from ..graph import Graph, by_bus
from ..numerics import DIFFERENCES, random_value, rounded
from .checked import Checked, Raised, file_of
from .checks import Checker
from .compare import compare, interface_mismatch
from .report import KINK, PointReport, Report

MAX_DRAWS = 20


def _draw_point(circuit: Checked, rng: random.Random, fixed: dict[str, float]):
    """A point with the `fixed` values and the rest drawn; redrawn while undefined."""
    for attempt in range(1, MAX_DRAWS + 1):
        at = {name: fixed[name] if name in fixed else random_value(rng) for name in circuit.inputs}
        if len(fixed) == len(at) or circuit.defined(at) or attempt == MAX_DRAWS:
            return at, attempt


def _describe(kind: str, drawn: list[str], attempts: int) -> str:
    parts = [kind]
    if drawn:
        parts.append(f"drawn: {_buses(drawn)}")
    if attempts > 1:
        parts.append(f"{attempts - 1} earlier draw{'s' if attempts > 2 else ''} "
                     "outside the domain")
    return "; ".join(parts)


def _buses(names) -> str:
    """Input elements named by bus, each once (`W1, b1, y`): a value is given, defaulted or
    drawn for a whole bus at a time, and a bus of thousands of elements stays one word."""
    return ", ".join(by_bus(names))


def points(circuit: Checked, given: dict[str, float], defaults: dict[str, float],
           n: int, rng: random.Random):
    """The points to check, as (label, values): the fixed point, then `n` random ones."""
    fixed = {**defaults, **given}
    at, attempts = _draw_point(circuit, rng, fixed)
    at = _rounded(circuit, at)
    missing = [name for name in circuit.inputs if name not in fixed]
    defaulted = set(defaults) - set(given)
    kind = ("the given values and defaults" if given and defaulted
            else "the given values" if given else "the defaults" if defaulted
            else "random" if circuit.inputs else "no inputs")
    yield _describe(kind, missing if fixed else [], attempts if missing else 1), at
    for k in range(n):
        at, attempts = _draw_point(circuit, rng, given)
        at = _rounded(circuit, at)
        kept = f", keeping {_buses(given)}" if given else ""
        yield _describe(f"random point {k + 1}{kept}", [], attempts), at


def _rounded(circuit: Checked, at: dict[str, float]) -> dict[str, float]:
    """The point `at` as the module takes it: each value a number of the type it computes in
    (so that a step `h` moves each input by exactly `h`)."""
    return {name: rounded(x, circuit.dtype) for name, x in at.items()}


ON_ITS_OWN = "checked without its circuit: kinks are not recognised and no gate can be blamed"
COMPARE = " (verify CIRCUIT.circ --module MODULE.py compares a module with its circuit)"


def verify_circuit(module, forward: Graph | None, given: dict[str, float] | None = None, *,
                   n_points: int = 0, seed: int = 0, difference: str = "central",
                   rtol: float | None = None, atol: float | None = None, h: float | None = None,
                   fast: bool = False, reference=None, target: str = "python") -> Report:
    """Check `module.backward` against numerical derivatives of `module.forward`.

    `module` follows the generated-module contract (`contract.check_module`). `forward` is
    its circuit's optimized forward graph (`compile_graphs(...)[0]`), used for kinks,
    the complex step and blame; None checks the module on its own: no kinks, no blame,
    the complex step only if its `forward` accepts complex numbers. `reference`, with
    `forward`, is the module circuitc generates from that circuit (`load(path)`), for a
    `module` that may not be it: each point then also compares the two, and a
    difference fails, naming the first wire that differs. `given` are values fixed on
    the command line. `target` is the one circuitc compiled `module` for, which says what
    it raises outside its domain (`gates.TARGET_DOMAIN_ERRORS`). See the module docstring
    for every choice made here.
    """
    if difference not in DIFFERENCES:
        raise ValueError(f"difference must be one of {', '.join(DIFFERENCES)}")
    if reference is not None and forward is None:
        raise ValueError("a reference module needs the forward graph of its circuit")
    circuit_file = None if forward is None else forward.filename
    interface = None if reference is None else interface_mismatch(module, reference)
    if interface is not None:  # not comparable: check the module on its own
        forward = reference = None
    circuit = Checked(module, forward, reference, target)
    checker = Checker(circuit, difference, rtol, atol, h)
    rtol, atol = checker.tolerance(difference)
    rng = random.Random(seed)
    module_file = file_of(module) if circuit.foreign else None
    report = Report(module_file or circuit_file, difference, rtol, atol, h, fast, seed, [],
                    module=module_file, circuit=circuit_file, graph=forward is not None,
                    interface=interface)
    if forward is None:
        report.notes.append(ON_ITS_OWN + ("" if interface else COMPARE))
    for label, at in points(circuit, dict(given or {}), dict(getattr(module, "DEFAULTS", {})),
                            n_points, rng):
        direction = random_direction(rng, at, circuit.wrt, h) if fast else None
        report.points += off_kinks(checker, label, at, direction, rng, len(report.points) + 1)
    note_fallback(report, checker)
    return report


def _point(checker: Checker, label: str, at: dict[str, float], direction) -> PointReport:
    """`checker.point`, compared with the circuit's module where there is a reference,
    its failures blamed. A point at which circuitc's module raised an exception that is
    not a domain error (`Raised`) fails with what it raised."""
    c = checker.c
    try:
        point = checker.point(label, at, direction)
    except Raised as e:
        return PointReport(label, dict(at), error=str(e))
    if c.reference is not None and point.outputs is not None:
        point.mismatch = compare(c, at, point, direction, *checker.tolerance(checker.difference))
    if point.mismatch is None:  # a module that is not its circuit's is not blamed on its gates
        _blame(checker, point, at, c.graph is not None)
    return point


# How far a point whose checks all met kinks is moved, relative to each input, in turn.
NEARBY = (1e-3, 1e-2, 1e-1)


def off_kinks(checker: Checker, label: str, at: dict[str, float], direction,
               rng: random.Random, number: int) -> list[PointReport]:
    """The report of point `number`, at `at`; and, when nothing was judged there because
    each check that could be met a kink, the report of a point near it: each input moved
    by `NEARBY[k] * d * max(1, |x|)`, `d` drawn like an input value, for the first `k` at
    which something is judged (else the last)."""
    point = _point(checker, label, at, direction)
    if _judged(point) or not any(c.reason.startswith(KINK) for c in point.checks):
        return [point]
    for scale in NEARBY:
        near = _rounded(checker.c, {name: x + scale * random_value(rng) * max(1.0, abs(x))
                                    for name, x in at.items()})
        moved = _point(checker, f"near point {number}, where every check met a kink", near,
                       direction)
        if _judged(moved):
            break
    return [point, moved]


def _judged(point: PointReport) -> bool:
    """Whether anything was judged at `point`: a check passed or failed, or the point failed."""
    return (point.error is not None or point.mismatch is not None
            or any(c.verdict in ("pass", "fail") for c in point.checks))


def random_direction(rng: random.Random, at: dict[str, float], names, h: float | None
               ) -> dict[str, float]:
    """A random direction for `fast` over `names`, scaled to the inputs unless `h` is given.

    Continuous weights, not just signs: with ±1 two equal and opposite errors (a rule that
    swaps its inputs' adjoints) would cancel half the time."""
    return {name: random_value(rng) * (1.0 if h is not None else max(1.0, abs(at[name])))
            for name in names}


def _blame(checker: Checker, point: PointReport, at: dict[str, float], graph: bool) -> None:
    """Blame each failed check of `point` on a gate (with the circuit's `graph`), or list it
    as unblamed."""
    for check in point.checks:
        if check.verdict == "fail":
            found = checker.blame(at, check) if graph else None
            if found:
                point.blame.append(found)
            else:
                point.unblamed.append(check.name)


def note_fallback(report: Report, checker: Checker) -> None:
    """Record the tolerances of checks that fell back from the complex step, if any did."""
    if report.difference == "complex" and any(c.method == "central" for p in report.points
                                              for c in p.checks):
        report.fallback = checker.tolerance("central")
