"""`verify_hessian`: a module's second derivatives checked, the same checks one level up.

Second order (`verify_hessian`): the same checks, one level up. The function
differentiated is the gradient `backward` returns (seeded on one output at a time), its
derivatives are the module's Hessian (`hessian`, else `hvp` along each unit vector), and a
check is one entry `d2f/dxdy`: the Hessian's (x, y) against the numerical derivative of
the gradient's component x along y. circuitc's `hessian` mirrors its upper triangle, so
only that is checked; other Hessians (from `hvp`, or a foreign module's) in full. The
complex step evaluates the circuit's gradient graph, each output's gradient built on its
own (`grad` of the circuit with that output alone), on complex numbers; its kinks are
those of every gate that switches (`switching`: the kink gates, and `step`, `sign` and
`share`, which only gradients use), and they block the complex step too. `fast`: one
check per output, `u · H v` (`hvp`) against the derivative of `u · gradient` along `v`,
`u` drawn like an input value. Retries, domains and points are first order's. Tolerances
(`SECOND_ORDER_TOLERANCES`; docs/verify.md gives the measurements behind them): (1e-5, 1e-7)
central, (1e-3, 1e-5) forward, (1e-10, 1e-12) complex: a difference of the gradient loses
more digits than one of the function. Blame checks each gate on the
path on its own: its local Hessian (the one-gate circuit's `grad`, differentiated by
`hessian_graph`) against numerical derivatives of its local gradient, retried as first
order's blame retries, skipping steps across a switch of a gate of that gradient.
"""

from __future__ import annotations

import math
import random
from dataclasses import replace

from ..contract import raised
from ..elements import hessian_rows
from ..gates import DOMAIN_ERRORS, GATES
from ..grad import grad
from ..graph import Graph, run
from ..numerics import DIFFERENCES, random_value
from ..report import values as _values
from .blame import local_disagreements
from .checked import Checked, Raised, complex_apply, file_of, finite, pair
from .checks import Checker, Outside, evaluated
from .first import ON_ITS_OWN, note_fallback, off_kinks, points, random_direction
from .report import Blame, Check, PointReport, Report


def verify_hessian(module, forward: Graph | None, given: dict[str, float] | None = None, *,
                   n_points: int = 0, seed: int = 0, difference: str = "central",
                   rtol: float | None = None, atol: float | None = None, h: float | None = None,
                   fast: bool = False, target: str = "python") -> Report:
    """Check `module`'s second derivatives against numerical derivatives of its gradient.

    `module` follows the generated-module contract and has `hessian` or `hvp` (compiled
    with `hessian=True`): its Hessian (`hessian`, else `hvp` along each unit vector) is
    compared, entry by entry, with numerical derivatives of the gradient `backward`
    returns; with `fast`, `u · H v` (`hvp`) with numerical derivatives of `u · gradient`
    along `v`, for random `u` and `v`. `forward`, the circuit's optimized forward graph,
    gives the kinks, the complex step (on its gradient graph) and blame; None checks the
    module on its own. Options as `verify_circuit`; see the module docstring.
    """
    if difference not in DIFFERENCES:
        raise ValueError(f"difference must be one of {', '.join(DIFFERENCES)}")
    if not (hasattr(module, "hessian") or hasattr(module, "hvp")):
        raise ValueError("a module without hessian or hvp has no second derivatives to check")
    circuit = Gradient(module, forward, fast, target)
    checker = SecondOrderChecker(circuit, difference, rtol, atol, h)
    rtol, atol = checker.tolerance(difference)
    rng = random.Random(seed)
    module_file = file_of(module) if circuit.foreign else None
    circuit_file = None if forward is None else forward.filename
    report = Report(module_file or circuit_file, difference, rtol, atol, h, fast, seed, [],
                    module=module_file, circuit=circuit_file, graph=forward is not None,
                    order=2)
    if forward is None:
        report.notes.append(ON_ITS_OWN)
    for label, at in points(circuit, dict(given or {}), dict(getattr(module, "DEFAULTS", {})),
                            n_points, rng):
        direction = None
        if fast:
            direction = random_direction(rng, at, circuit.wrt, h)
            circuit.project({name: random_value(rng) for name in circuit.wrt})
        report.points += off_kinks(checker, label, at, direction, rng, len(report.points) + 1)
    note_fallback(report, checker)
    return report


# (rtol, atol) of second derivatives, by difference; see the module docstring and docs/verify.md.
SECOND_ORDER_TOLERANCES = {"central": (1e-5, 1e-7), "forward": (1e-3, 1e-5),
                           "complex": (1e-10, 1e-12)}


def _unit(k: int, n: int) -> list[float]:
    return [float(j == k) for j in range(n)]


def _dot(u, g) -> float | complex:
    """`sum(u_i * g_i)`, summed exactly (real and imaginary parts apart)."""
    terms = [a * b for a, b in zip(u, g)]
    if any(type(t) is complex for t in terms):
        return complex(math.fsum(t.real for t in terms), math.fsum(t.imag for t in terms))
    return math.fsum(terms)


def _third(result, rows=tuple) -> tuple:
    """The third value a foreign `hessian` or `hvp` returned (as `rows` makes it a
    sequence); `()` if there is none."""
    try:
        _, _, third = result
        return tuple(rows(third))
    except (TypeError, ValueError):
        return ()


class _Lazy(dict):
    """A dict that makes a missing value with `make(key)`, once."""

    def __init__(self, make):
        super().__init__()
        self.make = make

    def __missing__(self, key):
        value = self[key] = self.make(key)
        return value


def _gradient_graph(forward: Graph, wrt: tuple[str, ...]) -> tuple[Graph, dict]:
    """One graph computing each output's gradient on its own (`grad` of the graph with that
    output alone), and the nodes of each: `{(output, input): [node], (output, None): [the
    nodes of every input of wrt]}`."""
    graph, roots = forward, {}
    for out, node in forward.outputs:
        graph = grad(replace(graph, outputs=((out, node),)), wrt)
        for name, n in graph.grads:
            roots[out, name] = [n]
        roots[out, None] = [n for _, n in graph.grads]
    return replace(graph, outputs=forward.outputs, grads=()), roots


class Gradient(Checked):
    """A module's gradient seen as a module to check: its outputs are the gradient's
    components, keyed `(output, input)`, whose derivatives are the Hessian's entries. After
    `project(u)` it has one output per module output instead, `u · gradient`, keyed
    `(output, None)`, whose derivative along `v` is `u · H v`.

    `f` is the module as first order sees it (its forward graph gives blame its gates).
    With the circuit, `graph` is its gradient graph, each output's gradient made on its
    own (so that one output's kinks are not another's): the complex step evaluates it on
    complex numbers, and its switching gates (kinks, and `step`, `sign` and `share`) are the
    gradient's kinks.
    """

    def __init__(self, module, forward: Graph | None, fast: bool = False, target: str = "python"):
        self.f = Checked(module, forward, target=target)
        self.module, self.foreign, self.reference = module, self.f.foreign, None
        self.domain, self.reversed, self.dtype = self.f.domain, None, self.f.dtype
        self.inputs, self.wrt, self.names = self.f.inputs, self.f.wrt, self.f.outputs
        self.outputs = tuple((out, name) for out in self.names for name in self.wrt)
        self.fast = fast
        self.u: dict[str, float] | None = None
        self.refused = None
        self.graph, self.feeds, self.inputs_of = None, {}, {}
        if forward is None:
            return
        self.graph, self.roots = _gradient_graph(forward, self.wrt)
        self.feeds = _Lazy(lambda key: self._ancestors(self.roots[key]))
        self._special_gates()

    def project(self, u: dict[str, float]) -> None:
        """From now on check `u · gradient` of each output."""
        self.u = u
        self.outputs = tuple((out, None) for out in self.names)

    def quantity(self, key) -> dict[int, float]:
        """The gradient's component `key`; after `project`, `u · gradient` of an output."""
        if key[1] is not None:
            return {self.roots[key][0]: 1.0}
        weights: dict[int, float] = {}
        for node, name in zip(self.roots[key], self.wrt):  # two components may be one node
            weights[node] = weights.get(node, 0.0) + self.u[name]
        return weights

    def _components(self, grads: dict[str, tuple]) -> tuple:
        """The values of `outputs`, from each output's gradient over `wrt`."""
        if self.u is not None:
            u = [self.u[name] for name in self.wrt]
            return tuple(_dot(u, grads[out]) for out in self.names)
        return tuple(g for out in self.names for g in grads[out])

    def values(self, at: dict[str, float]) -> tuple[float, ...]:
        """The module's outputs."""
        return self.f.forward(at)

    def forward(self, at: dict[str, float]) -> tuple[float, ...]:
        return self._components(self.f.gradients(at))

    def complex_forward(self, at: dict) -> tuple[complex, ...]:
        if self.foreign:
            args = [at[name] for name in self.inputs]
            return self._components({
                out: pair(self.call("backward", *args, *_unit(k, len(self.names))))[1]
                for k, out in enumerate(self.names)})
        values = run(self.graph, at, apply=complex_apply)
        return self._components({out: [values[n] for n in self.roots[out, None]]
                                 for out in self.names})

    def accepts_complex(self, at: dict[str, float]) -> bool:
        if not self.foreign or self.refused is not None:
            return self.refused is None
        try:
            self.module.backward(*(complex(at[name], 1e-300) for name in self.inputs),
                                 *_unit(0, len(self.names)))
        except DOMAIN_ERRORS:
            pass  # undefined here: the complex step will say so
        except Exception as e:  # noqa: BLE001 (a TypeError from `math`, most often)
            self.refused = f"the module's backward does not accept complex numbers ({raised(e)})"
        return self.refused is None

    def hessian(self, at: dict[str, float], k: int) -> tuple[tuple[float, ...], ...]:
        """The Hessian of output `k` over `wrt`: the module's `hessian`, else its `hvp`
        along each unit vector, a column each."""
        n = len(self.wrt)
        if not hasattr(self.module, "hessian"):
            columns = [self.hvp(at, {m: float(m == name) for m in self.wrt}, k)
                       for name in self.wrt]
            return tuple(tuple(column[i] for column in columns) for i in range(n))
        rows = _third(self.call("hessian", *(at[name] for name in self.inputs),
                                *_unit(k, len(self.names))), hessian_rows)
        rows = tuple(tuple(row) if isinstance(row, tuple | list) else () for row in rows)
        if len(rows) != n or any(len(row) != n for row in rows):
            raise self.error(f"its hessian did not return (outputs, grads, H) with H {n}×{n}, "
                             "a row and a column per name in WRT")
        return rows

    def hvp(self, at: dict[str, float], v: dict[str, float], k: int) -> tuple[float, ...]:
        """The Hessian of output `k` times `v`: the module's `hvp`, else from its `hessian`."""
        if not hasattr(self.module, "hvp"):
            return tuple(_dot([v[name] for name in self.wrt], row) for row in self.hessian(at, k))
        hv = _third(self.call("hvp", *(at[name] for name in self.inputs),
                              *(v[name] for name in self.wrt), *_unit(k, len(self.names))))
        if len(hv) != len(self.wrt):
            raise self.error(f"its hvp did not return (outputs, grads, hv) with "
                             f"{len(self.wrt)} products, one per name in WRT")
        return hv

    def defined(self, at: dict[str, float]) -> bool:
        """Whether the outputs, the gradients and the second derivatives are defined and
        finite at `at` (with `fast`, the Hessian times a vector of ones)."""
        ones = dict.fromkeys(self.wrt, 1.0)
        try:
            return self.f.defined(at) and all(
                finite(self.hvp(at, ones, k)) if self.fast
                else all(finite(row) for row in self.hessian(at, k))
                for k in range(len(self.names)))
        except DOMAIN_ERRORS:
            return False
        except Raised:
            return True


class SecondOrderChecker(Checker):
    """`Checker` on a module's gradient (`Gradient`), with points and blame of its own."""

    defaults = SECOND_ORDER_TOLERANCES

    def __init__(self, circuit: Gradient, *options):
        super().__init__(circuit, *options)
        # circuitc's own `hessian` mirrors its upper triangle: the lower one is not checked.
        self.symmetric = not circuit.foreign and hasattr(circuit.module, "hessian")
        self.local: dict[tuple, tuple] = {}  # (op, args, const) -> `local_disagreements`

    def point(self, label: str, at: dict[str, float], direction=None) -> PointReport:
        c = self.c
        report = PointReport(label, dict(at))
        outputs = range(len(c.names))
        try:
            values = evaluated(c.values, at, where="")
            if not finite(values):
                raise Outside(f"not finite: {_values(dict(zip(c.names, values)))}")
            report.outputs = dict(zip(c.names, values))
            grads = evaluated(c.forward, at, where="the gradient: ")
            if not finite(grads):
                raise Outside("the gradient is not finite")
            if direction is None:
                hessians = [evaluated(c.hessian, at, k, where="the Hessian: ") for k in outputs]
            else:
                products = [evaluated(c.hvp, at, direction, k, where="the Hessian times v: ")
                            for k in outputs]
        except Outside as e:
            report.domain = str(e)
            return report
        if direction is not None:
            u = [c.u[name] for name in c.wrt]
            analytic = {(out, None): _dot(u, products[k]) for k, out in enumerate(c.names)}
            report.checks += self.along(at, direction, None, analytic, grads)
            return report
        for j, name in enumerate(c.wrt):
            analytic = {(out, row): hessians[k][i][j] for k, out in enumerate(c.names)
                        for i, row in enumerate(c.wrt) if i <= j or not self.symmetric}
            report.checks += self.along(at, {name: 1.0}, name, analytic, grads)
        place = {key: n for n, key in enumerate(c.outputs)}
        report.checks.sort(key=lambda check: (place[check.key], c.wrt.index(check.input)))
        return report

    def blame(self, at: dict[str, float], check: Check) -> Blame | None:
        """The first gate between the check's inputs and its output whose second
        derivative (its rule, differentiated) is wrong at `at`."""
        f = self.c.f
        graph = f.graph
        values = run(graph, at)
        feeds = f.feeds[check.output]
        sources = {check.of, check.input} - {None}  # none along directions: every input
        reach = [n.op == "input" and n.attr in sources if sources else n.op != "const"
                 for n in graph.nodes]
        for i, node in enumerate(graph.nodes):
            reach[i] = reach[i] or any(reach[a] for a in node.args)
        rtol, atol = (max(t, c) for t, c in zip(self.tolerance(self.difference),
                                                self.defaults["central"]))
        for i, node in enumerate(graph.nodes):
            if not (node.op in GATES and reach[i] and i in feeds):
                continue
            key = (node.op, tuple(values[a] for a in node.args),
                   tuple(graph.nodes[a].op == "const" for a in node.args))
            if key not in self.local:
                self.local[key] = local_disagreements(*key, rtol, atol)
            for a, b, rule, numeric in self.local[key]:
                if reach[node.args[a]] or reach[node.args[b]]:
                    gate, place = f.where(i)
                    return Blame(check.output, check.input, gate, place, a + 1, rule, numeric,
                                 argument2=b + 1, derivative=check.name)
        return None
