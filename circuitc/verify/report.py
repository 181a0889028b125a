"""What `verify` finds, and how it is shown: the report's records (`Report`, one
`PointReport` a point, each with its `Check`s, `Blame` and `Mismatch`), the text
table (`report_text`) and the JSON document (`report_dict`).

`circuitc.verify` makes these records; nothing here computes a derivative.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..report import table as _table
from ..report import values as _values

KINK = "at the kink of"  # how the reason of a check skipped at a kink starts


@dataclass
class Check:
    """One gradient judged at one point: d`output`/d`input` (or along a direction)."""

    output: str
    input: str | None  # an input name, or None along a direction (`fast`)
    analytic: float | None = None
    numeric: float | None = None
    h: float | None = None
    verdict: str = "pass"  # pass | fail | skip | domain
    reason: str = ""  # why skipped or outside the domain
    method: str = ""  # the difference actually used
    note: str = ""  # e.g. why the complex step fell back to central differences
    tolerance: float | None = None  # atol + rtol * |numeric|, once judged
    circuit: float | None = None  # what circuitc's module for the circuit gives, if compared
    order: int = 1  # 2: a second derivative, of the gradient's component `of`, along `input`
    of: str | None = None  # that component's input (None along directions: `u·H v`)

    @property
    def key(self):
        """What the check differentiates: an output, or (output, `of`) for a second derivative."""
        return self.output if self.order == 1 else (self.output, self.of)

    @property
    def abs_error(self) -> float | None:
        if self.analytic is None or self.numeric is None:
            return None
        return abs(self.analytic - self.numeric)

    @property
    def rel_error(self) -> float | None:
        err = self.abs_error
        if err is None:
            return None
        return err / abs(self.numeric) if self.numeric else (0.0 if err == 0 else math.inf)

    @property
    def name(self) -> str:
        """`df/dx`, or `df along v` for a random direction; `d2f/dxdy`, or `d2f along u, v`."""
        if self.order == 2:
            return (f"d2{self.output} along u, v" if self.input is None
                    else f"d2{self.output}/d{self.of}d{self.input}")
        return derivative_name(self.output, self.input)

    def as_dict(self) -> dict:
        pair = {"inputs": None if self.input is None else [self.of, self.input]}
        return {"output": self.output, "input": self.input, **(pair if self.order == 2 else {}),
                "analytic": self.analytic,
                "numeric": self.numeric, "h": self.h, "abs_error": self.abs_error,
                "rel_error": self.rel_error, "verdict": self.verdict, "reason": self.reason,
                "tolerance": self.tolerance, "method": self.method, "note": self.note,
                "circuit": self.circuit}



@dataclass
class Blame:
    """The first gate whose local derivative rule disagrees with its numerical derivative."""

    output: str
    input: str
    gate: str  # the gate's label: 'sigmoid'
    where: str  # file:line:col
    argument: int  # which argument of the gate, from 1
    rule: float
    numeric: float
    argument2: int | None = None  # second order: the argument the rule is differentiated in
    derivative: str = ""  # the failed check's name, when not `df/dx`

    def __post_init__(self):
        self.derivative = self.derivative or derivative_name(self.output, self.input)

    @property
    def finding(self) -> str:
        if self.argument2 is not None:
            return (f"the second derivative of {self.gate} at {self.where} (its derivative rule, "
                    f"differentiated) gives {self.rule!r} for its arguments ({self.argument}, "
                    f"{self.argument2}), but the numerical derivative of its derivative rule "
                    f"there is {self.numeric!r}")
        return (f"the derivative rule of {self.gate} at {self.where} gives {self.rule!r} for its "
                f"argument {self.argument}, but its numerical derivative there is "
                f"{self.numeric!r}")

    def __str__(self) -> str:
        return f"{self.derivative}: {self.finding}"

    def as_dict(self) -> dict:
        second = {} if self.argument2 is None else {"argument2": self.argument2}
        return {"output": self.output, "input": self.input, "gate": self.gate,
                "where": self.where, "argument": self.argument, **second, "rule": self.rule,
                "numeric": self.numeric, "message": str(self)}


@dataclass
class Mismatch:
    """Where a module disagrees, at one point, with the module circuitc generates from
    the circuit it claims to come from."""

    circuit: str  # the circuit's file
    outputs: list[str]  # the outputs whose values differ
    derivatives: list[str]  # `df/dx` of each gradient that differs
    variable: str | None = None  # the first wire that differs, as both modules name it: 'd_s'
    adjoint: bool = False  # whether `variable` is an adjoint (else a wire's value)
    module_value: float | None = None
    circuit_value: float | None = None
    module_line: str | None = None  # where the module assigns `variable`: 'edited.py:24'
    circuit_line: str | None = None  # the circuit's line it comes from: 'neuron.circ:5'
    detail: str = ""  # why no wire is named, when none is

    @property
    def wire(self) -> str | None:
        """The circuit's wire `variable` is the value or the adjoint of."""
        if self.variable is None:
            return None
        return self.variable[2:] if self.adjoint else self.variable

    @property
    def finding(self) -> str:
        head = (f"the module disagrees with what circuitc generates from {self.circuit} "
                "(a stale or edited module)")
        if self.variable is None:
            return f"{head}: {self.detail}"
        places = [f" ({place})" if place else "" for place in (self.module_line, self.circuit_line)]
        return (f"{head}: the first wire whose {'adjoint' if self.adjoint else 'value'} differs "
                f"is {self.wire}: {self.variable} = {self.module_value!r} in the module"
                f"{places[0]}, {self.circuit_value!r} from the circuit{places[1]}")

    def as_dict(self) -> dict:
        return {"circuit": self.circuit, "outputs": self.outputs, "derivatives": self.derivatives,
                "wire": self.wire, "variable": self.variable, "adjoint": self.adjoint,
                "module_value": self.module_value, "circuit_value": self.circuit_value,
                "module_line": self.module_line, "circuit_line": self.circuit_line,
                "message": self.finding}


@dataclass
class PointReport:
    label: str
    at: dict[str, float]
    outputs: dict[str, float] | None = None
    domain: str | None = None  # why the whole point is outside the domain
    error: str | None = None  # what circuitc's module raised here that is no domain error
    checks: list[Check] = field(default_factory=list)
    blame: list[Blame] = field(default_factory=list)
    unblamed: list[str] = field(default_factory=list)  # failed checks no gate explains
    mismatch: Mismatch | None = None  # how the module disagrees with its circuit here


@dataclass
class Report:
    filename: str
    difference: str
    rtol: float
    atol: float
    h: float | None
    fast: bool
    seed: int
    points: list[PointReport]
    fallback: tuple[float, float] | None = None  # (rtol, atol) of central-difference fallbacks
    module: str | None = None  # the module checked, when it is not one compiled here
    circuit: str | None = None  # the circuit whose graph the checks used, or compared with
    graph: bool = True  # whether the circuit's graph was used: kinks and blame need it
    interface: str | None = None  # how the module's names differ from its circuit's
    notes: list[str] = field(default_factory=list)
    order: int = 1  # 2: second derivatives (`verify_hessian`)

    def count(self, verdict: str) -> int:
        return sum(c.verdict == verdict for p in self.points for c in p.checks)

    @property
    def mismatches(self) -> int:
        """Points at which the module disagrees with its circuit."""
        return sum(p.mismatch is not None for p in self.points)

    @property
    def errors(self) -> int:
        """Points at which the module raised an exception that is not a domain error."""
        return sum(p.error is not None for p in self.points)

    @property
    def failed(self) -> bool:
        """A judged gradient failed, the module raised at a point an exception that is not
        a domain error, or it disagrees with its circuit (or cannot come from it)."""
        return bool(self.count("fail") or self.errors or self.interface is not None
                    or self.mismatches)

    @property
    def ok(self) -> bool:
        """Nothing failed, and something was judged: a run that judged nothing (every
        check skipped or outside the domain, or none to make) verified nothing."""
        return self.judged > 0 and not self.failed

    @property
    def judged(self) -> int:
        return self.count("pass") + self.count("fail")



def derivative_name(output: str, wrt: str | None) -> str:
    """`df/dx`, or `df along v` for a derivative along a direction."""
    return f"d{output} along v" if wrt is None else f"d{output}/d{wrt}"



# -- reporting ------------------------------------------------------------------

_VERDICTS = {"pass": "ok", "fail": "FAIL", "skip": "skipped", "domain": "outside the domain"}


def _error(x: float | None) -> str:
    return "" if x is None else f"{x:.1e}"


def _method(report: Report) -> str:
    h = "h relative to each input" if report.h is None else f"h = {report.h!r}"
    along = ("" if not report.fast else ", along one random direction per point"
             if report.order == 1 else ", u·Hv along random directions u, v per point")
    of = "" if report.order == 1 else " of the gradient"
    return (f"{report.difference} differences" if report.difference != "complex"
            else "complex step") + f"{of} ({h}{along}), rtol {report.rtol:g}, atol {report.atol:g}" + (
        "" if report.fallback is None else
        f" (central-difference fallbacks: rtol {report.fallback[0]:g}, atol {report.fallback[1]:g})")


def summary(report: Report) -> str:
    """One line: the verdict, the counts, and how the numerical derivatives were taken."""
    n_points = len(report.points)
    counts = [f"{report.count('pass')} passed", f"{report.count('fail')} failed"]
    skipped = [c for p in report.points for c in p.checks if c.verdict == "skip"]
    kinks = sum(c.reason.startswith(KINK) for c in skipped)
    if kinks:
        counts.append(f"{kinks} skipped at kinks")
    if len(skipped) > kinks:
        counts.append(f"{len(skipped) - kinks} skipped with h below an input's resolution")
    if report.count("domain") or any(p.domain for p in report.points):
        outside = report.count("domain") + sum(p.domain is not None for p in report.points)
        counts.append(f"{outside} outside the domain")
    if report.errors:
        counts.append(f"{report.errors} error{'s' if report.errors != 1 else ''}")
    verdict = "FAILED" if report.failed else "OK" if report.ok else "NOTHING JUDGED"
    against = ""
    if report.module and report.graph:  # compared with its circuit
        m = report.mismatches
        against = (f"; disagrees with {report.circuit} at {m} point{'s' if m != 1 else ''}" if m
                   else f"; agrees with {report.circuit}")
    return (f"{report.filename}: {verdict}: {', '.join(counts)} "
            f"at {n_points} point{'s' if n_points != 1 else ''}{against}; {_method(report)}")


def _unblamed(report: Report, check: Check) -> str:
    """Why no gate is blamed for the failed `check`."""
    if not report.graph:
        return "checked without its circuit, so no gate can be blamed"
    none = ("no gate's derivative rule disagrees with its own numerical derivative here"
            if report.order == 1 else "no gate's second derivative (its derivative rule, "
            "differentiated) disagrees with the numerical derivative of its rule here")
    if check.method == "complex" and report.module is None:  # the graph's complex step
        what = "gradient" if report.order == 1 else "Hessian"
        return (f"{none}, yet the complex step, exact to rounding, disagrees with the {what}: "
                "the rules are combined wrongly")
    also = ", or --difference complex" if report.difference != "complex" else ""
    return f"{none}, so the numerical derivative may be inaccurate (try a smaller --h{also})"


def report_text(report: Report) -> str:
    """The report as text: a table per point, notes and blame under it, then the summary."""
    lines = []
    for k, point in enumerate(report.points, 1):
        lines.append(f"point {k} ({point.label})" + (f": {_values(point.at)}" if point.at else ""))
        if point.domain is not None:
            lines += [f"  outside the domain: {point.domain}", ""]
            continue
        if point.error is not None:
            lines += [f"  FAILED: {point.error}", ""]
            continue
        lines.append(f"  {_values(point.outputs)}")
        if not point.checks:
            nothing = "WRT is empty" if point.at else "no inputs"
            lines += [f"  ({nothing}: nothing to differentiate)", ""]
            continue
        compared = report.module is not None and report.graph
        rows = [["gradient" if report.order == 1 else "second derivative", "analytic", "numeric", *["circuit"] * compared, "abs err",
                 "rel err", "verdict"]]
        for c in point.checks:
            verdict = _VERDICTS[c.verdict] + (f": {c.reason}" if c.reason else "")
            circuit = ["" if c.circuit is None else repr(c.circuit)] * compared
            rows.append([c.name, "" if c.analytic is None else repr(c.analytic),
                         "" if c.numeric is None else repr(c.numeric), *circuit,
                         _error(c.abs_error), _error(c.rel_error), verdict])
        lines += _table(rows)
        notes: dict[str, list[str]] = {}
        for c in point.checks:
            if c.note:
                notes.setdefault(c.note, []).append(c.name)
        lines += [f"  note: {', '.join(names)}: {note}" for note, names in notes.items()]
        blamed: dict[str, list[str]] = {}
        for b in point.blame:
            blamed.setdefault(b.finding, []).append(b.derivative)
        lines += [f"  blame: {', '.join(names)}: {finding}" for finding, names in blamed.items()]
        if point.mismatch is not None:
            m = point.mismatch
            lines.append(f"  blame: {', '.join(m.derivatives or m.outputs)}: {m.finding}")
        unblamed: dict[str, list[str]] = {}
        for c in point.checks:
            if c.name in point.unblamed:
                unblamed.setdefault(_unblamed(report, c), []).append(c.name)
        lines += [f"  blame: {', '.join(names)}: {why}" for why, names in unblamed.items()]
        lines.append("")
    if report.interface is not None:
        lines.append(f"{report.module} cannot come from {report.circuit}: {report.interface}")
    lines += [f"note: {note}" for note in report.notes]
    lines.append(summary(report))
    return "\n".join(lines)


def report_dict(report: Report) -> dict:
    """The report as one JSON-ready document (floats may still be inf or nan)."""
    return {
        "ok": report.ok, "file": report.filename, "module": report.module,
        "circuit": report.circuit, "circuit_mismatch": report.interface, "notes": report.notes,
        "order": report.order, "difference": report.difference,
        "rtol": report.rtol, "atol": report.atol, "h": report.h, "fast": report.fast,
        "fallback_tolerance": report.fallback and dict(zip(("rtol", "atol"), report.fallback)),
        "seed": report.seed,
        "summary": {"passed": report.count("pass"), "failed": report.count("fail"),
                    "skipped": report.count("skip"), "outside_domain": report.count("domain"),
                    "points_outside_domain": sum(p.domain is not None for p in report.points),
                    "points_with_errors": report.errors,
                    "points_disagreeing_with_circuit": report.mismatches},
        "points": [{"label": p.label, "inputs": p.at, "outputs": p.outputs,
                    "outside_domain": p.domain, "error": p.error,
                    "checks": [c.as_dict() for c in p.checks],
                    "blame": [b.as_dict() for b in p.blame], "unblamed": p.unblamed,
                    "circuit_mismatch": p.mismatch and p.mismatch.as_dict()}
                   for p in report.points],
    }
