"""Syntax tree -> gate graph: names, scopes, gate inlining, and the checks on them.

`lower(statements, filename)` resolves every name of a parsed `.circ` file and
builds its `Graph`: one input node per input (in declaration order), one gate
node per operator or built-in call, `gate` definitions inlined at each call.
Every semantic error of SPEC.md section 5 is raised here as a `CircuitError`
at the offending span; the first one in source order wins.

Expressions are walked with explicit stacks, never by recursion, so nesting depth
is limited only by memory.
"""

from __future__ import annotations

from .errors import CircuitError, Span, did_you_mean
from .gates import CALLABLE, GATES
from .graph import Builder, Graph, Origin, fold_constant
from .parse import Assign, Call, GateDef, InputDecl, Name, Num, Op, OutputDecl


def walk(expr):
    """Every subexpression of `expr`, in source order (pre-order, left to right)."""
    stack = [expr]
    while stack:
        e = stack.pop()
        yield e
        if type(e) in (Op, Call):
            stack.extend(reversed(e.args))


def lower(statements: list, filename: str) -> Graph:
    return _Lowering(statements).graph(filename)


# How messages name a gate: as the source writes it (`'**'`, `'pow'`), quoted once here.
_OPERATOR_LABELS = {name: f"'{gate.label}'" for name, gate in GATES.items()}
_CALL_LABELS = {name: f"'{name}'" for name in CALLABLE}


def _origin(e) -> Origin:
    if type(e) is Call:
        return Origin(e.name.span, _CALL_LABELS[e.name.id])
    return Origin(e.span, _OPERATOR_LABELS[e.gate])


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

    # -- statements ---------------------------------------------------------

    def _collect(self, statements: list) -> None:
        """Record every declaration, rejecting names declared or assigned twice."""
        for s in statements:
            if type(s) is Assign:  # most statements are: tested first
                name = s.target
                self._not_a_gate(name, "a wire")
                if name.id in self.inputs:
                    raise CircuitError(f"'{name.id}' is an input and cannot be assigned", name.span)
                if name.id in self.wires:
                    first = self.wires[name.id].target.span.line
                    raise CircuitError(f"'{name.id}' is assigned twice (first at line {first})",
                                       name.span)
                self.wires[name.id] = s
            elif type(s) is InputDecl:
                for name, default in s.items:
                    self._not_a_gate(name, "an input")
                    if name.id in self.inputs:
                        raise CircuitError(f"input '{name.id}' is declared twice", name.span)
                    if name.id in self.wires:
                        raise CircuitError(f"'{name.id}' is assigned at line "
                                           f"{self.wires[name.id].target.span.line} and cannot "
                                           "also be an input", name.span)
                    self.inputs[name.id] = name
                    if default is not None:
                        self.defaults[name.id] = default
            elif type(s) is GateDef:
                if s.name.id in CALLABLE:
                    raise CircuitError(f"'{s.name.id}' is a built-in gate and cannot be "
                                       "redefined", s.name.span)
                if s.name.id in self.gates:
                    raise CircuitError(f"gate '{s.name.id}' is defined twice", s.name.span)
                seen = set()
                for p in s.params:
                    if p.id in seen:
                        raise CircuitError(f"parameter '{p.id}' is repeated", p.span)
                    seen.add(p.id)
                self.gates[s.name.id] = s
            elif type(s) is OutputDecl:
                for name in s.names:
                    if name.id in self.outputs:
                        raise CircuitError(f"output '{name.id}' is declared twice", name.span)
                    self.outputs[name.id] = name
        if not self.gates:  # nothing can clash with a gate's name: skip the walk over every name
            return
        for name in [*self.inputs.values(), *(w.target for w in self.wires.values())]:
            if name.id in self.gates:
                raise CircuitError(f"'{name.id}' names a gate and cannot also name an input "
                                   "or a wire", name.span)

    @staticmethod
    def _not_a_gate(name: Name, what: str) -> None:
        if name.id in CALLABLE:
            raise CircuitError(f"'{name.id}' is a built-in gate and cannot name {what}", name.span)

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
                    raise CircuitError(f"'{e.id}' is a gate; call it with arguments, as in "
                                       f"{e.id}(...)", e.span)
                if params is not None:
                    if e.id not in params:
                        raise self._out_of_scope(e, gate, default_of, params)
                elif e.id in self.wires:
                    wires[e.id] = None
                elif e.id not in self.inputs:
                    if self.declared_inputs:
                        raise CircuitError(f"unknown name '{e.id}'" + did_you_mean(
                            e.id, [*self.inputs, *self.wires]), e.span)
                    self.inputs[e.id] = e
        return list(wires)

    @staticmethod
    def _out_of_scope(e: Name, gate, default_of, params) -> CircuitError:
        if gate is not None:
            return CircuitError(f"unknown name '{e.id}': gate '{gate.name.id}' sees only its "
                                "parameters" + did_you_mean(e.id, params), e.span)
        return CircuitError(f"the default of '{default_of}' must be a constant, but it "
                            f"uses '{e.id}'", e.span)

    def _check_call(self, call: Call) -> None:
        name = call.name.id
        if name in self.gates:
            arity = len(self.gates[name].params)
        elif name in CALLABLE:
            arity = CALLABLE[name].arity
        else:
            raise CircuitError(f"unknown gate '{name}'" + did_you_mean(
                name, [*CALLABLE, *self.gates]), call.span)
        if len(call.args) != arity:
            plural = "" if arity == 1 else "s"
            raise CircuitError(f"'{name}' takes {arity} argument{plural}, got {len(call.args)}",
                               call.span)

    def _check_recursion(self) -> None:
        """Reject any cycle of `gate` definitions calling each other."""
        calls = {name: [e for e in walk(g.body) if type(e) is Call and e.name.id in self.gates]
                 for name, g in self.gates.items()}
        done = set()
        for root in self.gates:
            path, iters = [root], [iter(calls[root])]
            while path:
                call = next(iters[-1], None)
                if call is None:
                    done.add(path.pop())
                    iters.pop()
                elif call.name.id in path:
                    cycle = path[path.index(call.name.id):] + [call.name.id]
                    raise CircuitError("recursive gate: " + " -> ".join(cycle), call.span)
                elif call.name.id not in done:
                    path.append(call.name.id)
                    iters.append(iter(calls[call.name.id]))

    def _check_outputs(self, statements: list) -> None:
        for name in self.outputs.values():
            if name.id not in self.wires and name.id not in self.inputs:
                raise CircuitError(f"output '{name.id}' is never defined" + did_you_mean(
                    name.id, [*self.inputs, *self.wires]), name.span)
        if not self.outputs:
            if not self.wires:
                raise CircuitError("the circuit assigns no wire, so it has no output",
                                   Span(1, 1, 1, 2))
            last = list(self.wires.values())[-1].target
            self.outputs[last.id] = last

    # -- building the graph -------------------------------------------------

    def graph(self, filename: str) -> Graph:
        b = Builder()
        nodes = {name: b.add("input", (), name) for name in self.inputs}
        for name, node in nodes.items():
            b.name(node, name)
        defaults = {name: _evaluate_constant(expr, self.gates) for name, expr in self.defaults.items()}

        def apply(op, args, e):
            return b.add(op, args, None, _origin(e))
        for wire in self._lowering_order():
            node = _lower_expr(self.wires[wire].expr, self.gates, b.const, apply, nodes)
            b.name(node, wire)
            nodes[wire] = node
        outputs = [(name, nodes[name]) for name in self.outputs]
        return Graph(filename, tuple(self.inputs), defaults, tuple(b.nodes), tuple(outputs))

    def _lowering_order(self) -> list[str]:
        """Every wire after the wires it reads: in source order, except that a wire read
        before its assignment moves up to just before its first reader (depth first).
        A cycle of wires is an error."""
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
                    raise CircuitError("cycle: " + " -> ".join(cycle), self.wires[dep].target.span)
                elif dep not in placed:
                    path.append(dep)
                    iters.append(iter(self.deps[dep]))
                    on_path.add(dep)
        return order


_NAME_OR_NUMBER = frozenset((Name, Num))


def _lower_expr(expr, gates: dict[str, GateDef], const, apply, scope: dict):
    """Evaluate `expr` bottom-up with `const(value)` and `apply(op, args, expr)`.

    Calls to `gate` definitions are inlined: the body is evaluated with its
    parameters bound to the call's arguments. Names are looked up in `scope`.
    """
    values = []
    stack = [(expr, scope, False)]
    while stack:
        e, env, ready = stack.pop()
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
            stack.append((e, env, True))
            stack.extend((a, env, False) for a in reversed(e.args))
            continue
        if kind is Call and e.name.id in gates:
            gate = gates[e.name.id]
            stack.append((gate.body, dict(zip((p.id for p in gate.params), args)), False))
        else:
            values.append(apply(e.gate if kind is Op else e.name.id, args, e))
    return values.pop()


def _evaluate_constant(expr, gates: dict[str, GateDef]) -> float:
    """The value of a constant expression, computed with the gate table's functions."""
    return _lower_expr(expr, gates, float, lambda op, args, e: fold_constant(op, args, _origin(e)), {})
