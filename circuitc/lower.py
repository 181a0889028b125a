"""Syntax tree -> gate graph: names, scopes, gate inlining, and the checks on them.

`lower(statements, filename)` resolves every name of a parsed `.circ` file and
builds its `Graph`: one input node per input (in declaration order), one gate
node per operator or built-in call, `gate` definitions inlined at each call.
Every semantic error of the language is found here, as a `CircuitError` at the
offending span. The checks go on past an error wherever what follows stays
meaningful, and all the errors found are raised together, in source order (see
`errors.collected`); an error that only follows from an earlier one (a second
use of the same unknown name, say) is not repeated.

Expressions are walked with explicit stacks, never by recursion, so nesting depth
is limited only by memory.
"""

from __future__ import annotations

from itertools import pairwise

from .errors import CircuitError, Label, Span, collected, did_you_mean
from .gates import CALLABLE, GATES
from .graph import Builder, Graph, Origin, fold_constant
from .syntax import Assign, Call, GateDef, InputDecl, Name, Num, Op, OutputDecl


def walk(expr):
    """Every subexpression of `expr`, in source order (pre-order, left to right)."""
    stack = [expr]
    while stack:
        e = stack.pop()
        yield e
        if type(e) in (Op, Call):
            stack.extend(reversed(e.args))


def lower(statements: list, filename: str) -> Graph:
    return _Lowering(statements).graph(filename)[0]


def lower_with_wires(statements: list, filename: str) -> tuple[Graph, dict[str, int]]:
    """`lower`, and the node of each input and wire by name. A wire that computes what
    another computes shares its node, which only the first of them names (`Builder.name`)."""
    return _Lowering(statements).graph(filename)


# How messages name a gate: as the source writes it (`'**'`, `'pow'`), quoted once here.
_OPERATOR_LABELS = {name: f"'{gate.label}'" for name, gate in GATES.items()}
_CALL_LABELS = {name: f"'{name}'" for name in CALLABLE}


def _origin(e, calls: tuple = (), element: str | None = None) -> Origin:
    if type(e) is Call:
        return Origin(e.name.span, _CALL_LABELS[e.name.id], calls, element)
    return Origin(e.span, _OPERATOR_LABELS[e.gate], calls, element)


class _Lowering:
    def __init__(self, statements: list):
        if not statements:
            raise CircuitError("empty circuit: nothing to compile", Span(1, 1, 1, 2))
        self.inputs: dict[str, Name] = {}
        self.defaults: dict[str, object] = {}
        self.wires: dict[str, Assign] = {}
        self.gates: dict[str, GateDef] = {}
        self.outputs: dict[str, Name] = {}
        self.declared_inputs = any(type(s) is InputDecl for s in statements)
        self.errors: list[CircuitError] = []
        # Names and gates an error was reported for: no further error is reported about them.
        self.reported: set[str] = set()
        self._collect(statements)
        for gate in self.gates.values():
            self._check_expr(gate.body, params={p.id for p in gate.params}, gate=gate)
        self._check_recursion()
        for name, expr in self.defaults.items():
            self._check_expr(expr, params=set(), default_of=name)
        self.deps: dict[str, list[str]] = {}
        for wire in self.wires.values():
            self.deps[wire.target.id] = self._check_expr(wire.expr)
        self._check_outputs(statements)
        self.order = self._lowering_order()
        if self.errors:
            self.errors.sort(key=lambda e: e.span or Span(0, 0, 0, 0))
            raise collected(self.errors)

    def _error(self, message: str, span: Span, about: str | None = None, **details) -> None:
        """Record an error (`details`: labels, notes, hint); with `about`, only the first
        error about that name is recorded."""
        if about is not None:
            if about in self.reported:
                return
            self.reported.add(about)
        self.errors.append(CircuitError(message, span, **details))

    # -- statements ---------------------------------------------------------

    def _collect(self, statements: list) -> None:
        """Record every declaration, rejecting names declared or assigned twice."""
        collect = {Assign: self._collect_wire, InputDecl: self._collect_inputs,
                   GateDef: self._collect_gate, OutputDecl: self._collect_outputs}
        for s in statements:
            record = collect.get(type(s))
            if record is not None:
                record(s)
        self._check_gate_names()

    def _collect_wire(self, s: Assign) -> None:
        """`name = expr`: a wire, unless the name is an input's, a wire's or a gate's."""
        name = s.target
        if name.id in self.inputs:
            self._error(f"'{name.id}' is an input and cannot be assigned", name.span,
                        labels=[Label(self.inputs[name.id].span, "declared as an input here")])
        elif name.id in self.wires:
            first = self.wires[name.id].target.span
            self._error(f"'{name.id}' is assigned twice (first at line {first.line})",
                        name.span, labels=[Label(first, "first assigned here")])
        elif self._not_a_gate(name, "a wire"):
            self.wires[name.id] = s

    def _collect_inputs(self, s: InputDecl) -> None:
        """`input a, b = 1.0`: each an input, with its default if it has one."""
        for name, default in s.items:
            if name.id in self.inputs:
                self._error(f"input '{name.id}' is declared twice", name.span,
                            labels=[Label(self.inputs[name.id].span, "first declared here")])
            elif name.id in self.wires:
                self._error(f"'{name.id}' is assigned at line "
                            f"{self.wires[name.id].target.span.line} and cannot also be "
                            "an input", name.span)
            elif self._not_a_gate(name, "an input"):
                self.inputs[name.id] = name
                if default is not None:
                    self.defaults[name.id] = default

    def _collect_gate(self, s: GateDef) -> None:
        """`gate name(params) = body`: a gate, unless built in or defined before."""
        seen = set()
        for p in s.params:
            if p.id in seen:
                self._error(f"parameter '{p.id}' is repeated", p.span)
            seen.add(p.id)
        if s.name.id in CALLABLE:
            self._error(f"'{s.name.id}' is a built-in gate and cannot be redefined",
                        s.name.span)
        elif s.name.id in self.gates:
            self._error(f"gate '{s.name.id}' is defined twice", s.name.span,
                        labels=[Label(self.gates[s.name.id].name.span, "first defined here")])
        else:
            self.gates[s.name.id] = s

    def _collect_outputs(self, s: OutputDecl) -> None:
        """`output f, g`: each an output, once."""
        for name in s.names:
            if name.id in self.outputs:
                self._error(f"output '{name.id}' is declared twice", name.span,
                            labels=[Label(self.outputs[name.id].span, "first declared here")])
            self.outputs[name.id] = name

    def _check_gate_names(self) -> None:
        """No input or wire may have the name of a `gate` definition, wherever it comes."""
        if not self.gates:  # nothing can clash with a gate's name: skip the walk over every name
            return
        for name in [*self.inputs.values(), *(w.target for w in self.wires.values())]:
            if name.id in self.gates:
                self._error(f"'{name.id}' names a gate and cannot also name an input or a wire",
                            name.span, about=name.id)

    def _not_a_gate(self, name: Name, what: str) -> bool:
        """Whether `name` may name `what`; an error if it names a built-in gate."""
        if name.id in CALLABLE:
            self._error(f"'{name.id}' is a built-in gate and cannot name {what}", name.span,
                        about=name.id)
            return False
        return True

    # -- expressions --------------------------------------------------------

    def _check_expr(self, expr, params=None, gate=None, default_of=None) -> list[str]:
        """Check every name and call in `expr`; return the wires it reads, in order.

        `params` is the set of names in scope inside a gate body or a default
        (`None` for a wire's expression, which sees inputs and wires). In a file
        without `input` statements, an unknown name in a wire becomes an input.
        """
        wires: dict[str, None] = {}  # a dict, not a list: a long sum reads many wires
        stack = [expr]  # `walk`, inline: this runs for every expression of the file
        while stack:
            e = stack.pop()
            kind = type(e)
            if kind is Op:
                stack += reversed(e.args)
            elif kind is Call:
                self._check_call(e)
                stack += reversed(e.args)
            elif kind is Name:
                if e.id in CALLABLE or e.id in self.gates:
                    self._error(f"'{e.id}' is a gate; call it with arguments, as in {e.id}(...)",
                                e.span, about=e.id)
                elif params is not None:
                    if e.id not in params:
                        self._out_of_scope(e, gate, default_of, params)
                elif e.id in self.wires:
                    wires[e.id] = None
                elif e.id not in self.inputs:
                    if self.declared_inputs:
                        self._unknown_name(e)
                    else:
                        self.inputs[e.id] = e
        return list(wires)

    def _unknown_name(self, e: Name) -> None:
        guess = did_you_mean(e.id, [*self.inputs, *self.wires])
        self._error(f"unknown name '{e.id}'" + guess, e.span, about=e.id,
                    hint=None if guess else f"declare it with 'input {e.id}'")

    def _out_of_scope(self, e: Name, gate, default_of, params) -> None:
        if gate is not None:
            guess = did_you_mean(e.id, params)
            names = ", ".join([*(p.id for p in gate.params), e.id])
            self._error(f"unknown name '{e.id}': gate '{gate.name.id}' sees only its parameters"
                        + guess, e.span, hint=None if guess else
                        f"to pass it in, make it a parameter: 'gate {gate.name.id}({names})'")
        else:
            self._error(f"the default of '{default_of}' must be a constant, but it uses "
                        f"'{e.id}'", e.span)

    def _check_call(self, call: Call) -> None:
        name = call.name.id
        if name in self.gates:
            arity = len(self.gates[name].params)
        elif name in CALLABLE:
            arity = CALLABLE[name].arity
        else:
            guess, hint = _gate_hint(name, [*CALLABLE, *self.gates])
            self._error(f"unknown gate '{name}'" + guess, call.span, about=name, hint=hint)
            return
        if len(call.args) != arity:
            plural = "" if arity == 1 else "s"
            labels = []
            if name in self.gates:
                labels = [Label(self.gates[name].name.span,
                                f"'{name}' is defined here with {arity} parameter{plural}")]
            self._error(f"'{name}' takes {arity} argument{plural}, got {len(call.args)}",
                        call.span, labels=labels)

    def _check_recursion(self) -> None:
        """Reject any cycle of `gate` definitions calling each other: the error is at the
        call that closes the cycle, labelled at each other call of it."""
        calls = {name: [e for e in walk(g.body) if type(e) is Call and e.name.id in self.gates]
                 for name, g in self.gates.items()}
        done = set()
        for root in self.gates:
            path, iters, via = [root], [iter(calls[root])], [None]  # via: the call to path[k]
            while path:
                call = next(iters[-1], None)
                if call is None:
                    done.add(path.pop())
                    iters.pop()
                    via.pop()
                elif call.name.id in path:
                    start = path.index(call.name.id)
                    cycle = path[start:] + [call.name.id]
                    labels = [Label(c.span, f"'{caller}' calls '{c.name.id}'")
                              for caller, c in zip(path[start:], via[start + 1:])]
                    self._error("recursive gate: " + " -> ".join(cycle), call.span,
                                labels=labels)
                    return  # the gates are not lowered: one cycle is enough to say so
                elif call.name.id not in done:
                    path.append(call.name.id)
                    iters.append(iter(calls[call.name.id]))
                    via.append(call)

    def _check_outputs(self, statements: list) -> None:
        for name in self.outputs.values():
            if name.id not in self.wires and name.id not in self.inputs:
                self._error(f"output '{name.id}' is never defined" + did_you_mean(
                    name.id, [*self.inputs, *self.wires]), name.span, about=name.id)
        if not self.outputs:
            if not self.wires:
                # Said only of a file with nothing else wrong: one still being written.
                if not self.errors:
                    self._error("the circuit assigns no wire, so it has no output",
                                Span(1, 1, 1, 2))
                return
            last = list(self.wires.values())[-1].target
            self.outputs[last.id] = last

    # -- building the graph -------------------------------------------------

    def graph(self, filename: str) -> tuple[Graph, dict[str, int]]:
        b = Builder()
        nodes = {name: b.add("input", (), name) for name in self.inputs}
        for name, node in nodes.items():
            b.name(node, name)
        defaults = {name: evaluate_constant(expr, self.gates) for name, expr in self.defaults.items()}

        element = None

        def apply(op, args, e, calls):
            return b.add(op, args, None, _origin(e, calls, element))
        for wire in self.order:
            element = wire if "[" in wire else None
            node = _lower_expr(self.wires[wire].expr, self.gates, b.const, apply, nodes)
            b.name(node, wire)
            nodes[wire] = node
        outputs = [(name, nodes[name]) for name in self.outputs]
        return Graph(filename, tuple(self.inputs), defaults, tuple(b.nodes), tuple(outputs)), nodes

    def _lowering_order(self) -> list[str]:
        """Every wire after the wires it reads: in source order, except that a wire read
        before its assignment moves up to just before its first reader (depth first).
        A cycle of wires is an error, reported at the first wire of the cycle in source
        order and labelled at each other wire's line."""
        order: list[str] = []
        placed: set[str] = set()
        for root, deps in self.deps.items():
            if root in placed:
                continue
            for dep in deps:
                if dep not in placed:
                    break
            else:  # the usual case, a wire written after what it reads
                order.append(root)
                placed.add(root)
                continue
            path, iters, on_path = [root], [iter(deps)], {root}
            while path:
                dep = next(iters[-1], None)
                if dep is None:
                    wire = path.pop()
                    iters.pop()
                    on_path.remove(wire)
                    order.append(wire)
                    placed.add(wire)
                elif dep in on_path:
                    cycle = path[path.index(dep):] + [dep]
                    self._cycle(cycle)
                    placed.update(path)  # a cycle has no order: the graph is not built
                    break
                elif dep not in placed:
                    path.append(dep)
                    iters.append(iter(self.deps[dep]))
                    on_path.add(dep)
        return order


    def _cycle(self, cycle: list[str]) -> None:
        labels = [Label(self._reads(wire, read), f"'{wire}' reads '{read}'")
                  for wire, read in pairwise(cycle[1:])]
        self._error("cycle: " + " -> ".join(cycle), self.wires[cycle[0]].target.span,
                    labels=labels)

    def _reads(self, wire: str, name: str) -> Span:
        """Where the expression of `wire` first reads `name`."""
        return next(e.span for e in walk(self.wires[wire].expr) if type(e) is Name and e.id == name)


# Other spellings of the built-in gates (lower case), and what to write where no gate does
# the job; a suggestion is made only for a gate that exists.
_SPELLINGS = {"ln": "log", "arctan": "atan", "power": "pow", "logistic": "sigmoid",
              "fabs": "abs", "maximum": "max", "minimum": "min"}
_NO_GATE = {"sum": "add the terms with '+'", "prod": "multiply the factors with '*'",
            "product": "multiply the factors with '*'", "square": "write 'x**2'",
            "mean": "add the terms with '+' and divide by their number",
            "sqr": "write 'x**2'",
            "uniform": "random values are an input's initial value: 'input w = uniform(-1, 1)'",
            "normal": "random values are an input's initial value: 'input w = normal(0, 0.1)'"}


def _gate_hint(name: str, gates: list[str]) -> tuple[str, str | None]:
    """For an unknown gate `name`: the `; did you mean 'g'?` to append to the message (a
    gate spelled the same but for case, another spelling of a gate, or a close one), and
    a help text where no gate does the job."""
    by_case = {g.lower(): g for g in sorted(gates)}
    key = name.lower()
    guess = by_case.get(key) or by_case.get(_SPELLINGS.get(key, ""))
    if guess:
        return f"; did you mean '{guess}'?", None
    if key in _NO_GATE:
        return "", f"there is no '{key}' gate: {_NO_GATE[key]}"
    return did_you_mean(name, gates), None


_NAME_OR_NUMBER = frozenset((Name, Num))


def _lower_expr(expr, gates: dict[str, GateDef], const, apply, scope: dict):
    """Evaluate `expr` bottom-up with `const(value)` and `apply(op, args, expr, calls)`.

    Calls to `gate` definitions are inlined: the body is evaluated with its
    parameters bound to the call's arguments, and `calls` is the chain of calls
    (each call's span and gate, outermost first) a gate was inlined through. Names
    are looked up in `scope`.
    """
    values = []
    stack = [(expr, scope, (), False)]
    while stack:
        e, env, calls, ready = stack.pop()
        kind = type(e)
        if kind is Num:
            values.append(const(e.value))
            continue
        if kind is Name:
            values.append(env[e.id])
            continue
        if ready:  # its operands are evaluated, the last ones on `values`
            args = tuple(values[len(values) - len(e.args):])
            del values[len(values) - len(e.args):]
        # Operands that are all names or numbers (most are) are evaluated right away,
        # in order, sparing `e` a second visit; the test is all C, no Python loop.
        elif all(map(_NAME_OR_NUMBER.__contains__, map(type, e.args))):
            args = tuple([env[a.id] if type(a) is Name else const(a.value) for a in e.args])
        else:
            stack.append((e, env, calls, True))
            stack.extend((a, env, calls, False) for a in reversed(e.args))
            continue
        if kind is Call and e.name.id in gates:
            gate = gates[e.name.id]
            stack.append((gate.body, dict(zip((p.id for p in gate.params), args)),
                          (*calls, (e.name.span, e.name.id)), False))
        else:
            values.append(apply(e.gate if kind is Op else e.name.id, args, e, calls))
    return values.pop()


def evaluate_constant(expr, gates: dict[str, GateDef]) -> float:
    """The value of a constant expression, computed with the gate table's functions."""
    return _lower_expr(expr, gates, float,
                       lambda op, args, e, calls: fold_constant(op, args, _origin(e, calls)), {})
