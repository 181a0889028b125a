"""A module to check, and what the checks know of it besides: its circuit's graph (kinks,
the complex step, leverage on a gate), how its functions are called and what they may raise.
"""

from __future__ import annotations

import math
from dataclasses import replace

from ..contract import raised
from ..elements import outputs_of
from ..errors import ModuleError
from ..gates import DOMAIN_ERRORS, GATES, TARGET_DOMAIN_ERRORS, Gate
from ..grad import grad_with_adjoints
from ..graph import Graph, run


class Checked:
    """A module to check, and what the checks know of it besides.

    `forward`, the optimized forward graph of the module's circuit, when known, gives
    the kinks, the non-analytic gates and blame. `reference`, the module circuitc
    generates from that circuit, is given when the module may not be that one (a
    module on disk, checked against its circuit). The module is *foreign* when
    there is no graph or there is a reference: its `forward` is then evaluated on
    complex numbers for the complex step, if it accepts them (the graph otherwise),
    and an exception other than a domain error from it is a `ModuleError`. Otherwise it
    is circuitc's module for `target`, whose domain errors are that target's
    (`TARGET_DOMAIN_ERRORS`), and any other exception from it is `Raised`.
    """

    def __init__(self, module, forward: Graph | None, reference=None, target: str = "python"):
        self.module = module
        self.graph = forward
        self.reference = reference
        self.foreign = forward is None or reference is not None
        self.domain = DOMAIN_ERRORS if self.foreign else TARGET_DOMAIN_ERRORS[target]
        self.inputs = tuple(module.INPUTS)
        self.wrt = tuple(getattr(module, "WRT", self.inputs))
        self.outputs = tuple(module.OUTPUTS)
        # The type it computes in (`DTYPE`, float64 without one): its steps and tolerances.
        self.dtype = getattr(module, "DTYPE", "float64")
        self.refused: str | None = None  # why the module's forward takes no complex numbers
        self.feeds: dict[str, set[int]] = {}
        self.reversed: tuple | None = None  # `leverage`'s graph and adjoints
        self.inputs_of: dict[int, int] = {}
        if forward is None:
            return
        # Nodes each output depends on, and the inputs each kink or non-analytic gate
        # depends on: enough to tell which of those gates lie between an input and an output.
        self.feeds = {out: self._ancestors([n]) for out, n in forward.outputs}
        self._special_gates()

    def _special_gates(self) -> None:
        """`inputs_of`: for each gate of `graph` that switches or blocks the complex step,
        the inputs it depends on (a bit mask over `inputs`, each input's bit in `bit`)."""
        self.bit = {name: 1 << k for k, name in enumerate(self.inputs)}
        masks: list[int] = []
        for n in self.graph.nodes:
            masks.append(self.bit[n.attr] if n.op == "input" else 0)
            for a in n.args:
                masks[-1] |= masks[a]
        self.inputs_of = {i: masks[i] for i, n in enumerate(self.graph.nodes)
                          if n.op in GATES and (switching(GATES[n.op])
                                                or GATES[n.op].no_complex_step)}

    def _ancestors(self, roots: list[int]) -> set[int]:
        seen, stack = set(roots), list(roots)
        while stack:
            for a in self.graph.nodes[stack.pop()].args:
                if a not in seen:
                    seen.add(a)
                    stack.append(a)
        return seen

    def between(self, names, output: str, want) -> list[int]:
        """Special gates (`want(gate)` true) that depend on any of `names` and feed `output`;
        none without a graph."""
        if self.graph is None:
            return []
        mask = 0
        for name in names:
            mask |= self.bit[name]
        return [i for i, deps in self.inputs_of.items()
                if deps & mask and want(GATES[self.graph.nodes[i].op]) and i in self.feeds[output]]

    def call(self, name: str, *args):
        """`module.<name>(*args)`; an exception that is not one of the module's domain
        errors says what it raised, and where: from a foreign module as a `ModuleError`,
        from circuitc's as `Raised`, a failure of the point."""
        try:
            return getattr(self.module, name)(*args)
        except self.domain:
            raise
        except Exception as e:  # noqa: BLE001 (the module's own code failed: a message, not our traceback)
            if self.foreign:
                raise self.error(f"its {name} raised {raised(e)}") from None
            raise Raised(f"the module's {name} raised {raised(e)}") from None

    def error(self, message: str) -> ModuleError:
        return ModuleError(message).attach(file_of(self.module), "")

    def forward(self, at: dict[str, float]) -> tuple[float, ...]:
        values = outputs_of(self.module, self.call("forward", *(at[name] for name in self.inputs)))
        if self.foreign and len(values) != len(self.outputs):
            raise self.error(f"its forward returned {len(values)} values for "
                             f"{len(self.outputs)} OUTPUTS")
        return values

    def gradients(self, at: dict[str, float]) -> dict[str, tuple[float, ...]]:
        args = [at[name] for name in self.inputs]
        grads = {}
        for k, out in enumerate(self.outputs):
            seeds = [float(j == k) for j in range(len(self.outputs))]
            result = self.call("backward", *args, *seeds)
            grads[out] = pair(result)[1] if self.foreign else tuple(result[1])
            if self.foreign and len(grads[out]) != len(self.wrt):
                raise self.error(f"its backward did not return (outputs, grads) with "
                                 f"{len(self.wrt)} gradients, one per name in WRT")
        return grads

    def accepts_complex(self, at: dict[str, float]) -> bool:
        """Whether the complex step can be taken: always on a graph; a foreign module's
        `forward` must accept complex numbers (a `TypeError` says it does not, and
        `refused` keeps it)."""
        if not self.foreign or self.refused is not None:
            return self.refused is None
        try:
            self.module.forward(*(complex(at[name], 1e-300) for name in self.inputs))
        except DOMAIN_ERRORS:
            pass  # undefined here: the complex step will say so
        except Exception as e:  # noqa: BLE001 (a TypeError from `math`, most often)
            self.refused = f"the module's forward does not accept complex numbers ({raised(e)})"
        return self.refused is None

    def complex_forward(self, at: dict) -> tuple[complex, ...]:
        if self.foreign:
            values = self.call("forward", *(at[name] for name in self.inputs))
            return outputs_of(self.module, values)
        values = run(self.graph, at, apply=complex_apply)
        return tuple(values[n] for _, n in self.graph.outputs)

    def defined(self, at: dict[str, float]) -> bool:
        """Whether the outputs and the gradients are defined and finite at `at` (a module
        that raises anything else there is, for the point to report it)."""
        try:
            return finite(self.forward(at)) and all(
                finite(g) for g in self.gradients(at).values())
        except DOMAIN_ERRORS:
            return False
        except Raised:
            return True

    def switches(self, at: dict[str, float], kinks: list[int]) -> list[float]:
        values = run(self.graph, at)
        return [switch([values[a] for a in self.graph.nodes[k].args]) for k in kinks]

    def quantity(self, key) -> dict[int, float]:
        """What a check of `key` differentiates, as weights of nodes of `graph`: an output."""
        return {dict(self.graph.outputs)[key]: 1.0}

    def leverage(self, at: dict[str, float], key, nodes: list[int]) -> list[float]:
        """How fast the quantity checked for `key` moves with the value of each of `nodes`
        at `at`, what the node depends on held fixed: each node's adjoint, by reverse mode
        over `graph`; `inf` where that is undefined."""
        if self.reversed is None:  # one graph for every key: the roots of all, seeded apart
            roots = tuple({f"\0{n}": n for k in self.outputs for n in self.quantity(k)}.items())
            self.reversed = grad_with_adjoints(replace(self.graph, outputs=roots), ())
        graph, adjoint = self.reversed
        # A gradient graph reads its own seeds too, which are 1 when it is evaluated.
        own = {out for out, _ in self.graph.outputs}
        seeds = {node.attr: float(node.attr in own) for node in graph.nodes if node.op == "seed"}
        seeds.update((f"\0{n}", w) for n, w in self.quantity(key).items())
        try:
            values = run(graph, at, seeds, roots=[adjoint[k] for k in nodes if k in adjoint])
        except DOMAIN_ERRORS:
            return [math.inf] * len(nodes)
        return [values[adjoint[k]] if k in adjoint else 0.0 for k in nodes]

    def where(self, node: int) -> tuple[str, str]:
        """The label of a gate node and its `file:line:col`."""
        n = self.graph.nodes[node]
        label = n.origin.label if n.origin else f"'{GATES[n.op].label}'"
        place = n.origin.place(self.graph.filename) if n.origin else self.graph.filename
        return label, place


def pair(result) -> tuple:
    """What a foreign `backward` returned, as `(outputs, grads)`; `((), ())` if it is not
    a pair of an output and a sequence."""
    try:
        value, grads = result
        return value, tuple(grads)
    except (TypeError, ValueError):
        return (), ()


def file_of(module) -> str:
    """The file a module was loaded from, else its name."""
    return getattr(module, "__file__", None) or getattr(module, "__name__", "<module>")


def complex_apply(gate: Gate, args: list, node: int | None = None) -> complex | float:
    """Evaluate a gate on complex arguments with its `cfn` (`graph.run`'s `apply`: `node`,
    the gate's index, is not needed).

    A gate without `cfn` only sees complex arguments when its output does not feed
    the output being differentiated (the caller makes sure of that); its real part
    is then good enough.
    """
    if any(type(a) is complex for a in args):
        if gate.cfn is not None:
            return gate.cfn(*args)
        args = [a.real if type(a) is complex else a for a in args]
    return gate.fn(*args)


def switch(args: list[float]) -> float:
    """Where a kink gate switches: its input crosses 0, or its two inputs tie."""
    return args[0] - args[1] if len(args) == 2 else args[0]


side = GATES["sign"].fn  # -1.0, 0.0 or 1.0: which side of a kink a value lies on


def finite(values) -> bool:
    """Whether every one of `values` is a finite number."""
    return all(math.isfinite(v) for v in values)


def switching(gate: Gate) -> bool:
    """Whether a gate's value or slope jumps somewhere: a kink gate (`relu`, `max`), or a
    piecewise-constant one only gradients use (`step`, `sign`, `share`)."""
    return gate.kink or not gate.analytic


class Raised(Exception):
    """circuitc's module raised an exception that is not a domain error (its message says
    which, and where): it failed, whatever its gradients would have been."""
