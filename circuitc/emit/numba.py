"""Gate graphs -> the source text of a numba module (target `numba`, docs/numba.md).

The module keeps the numpy target's contract (names, signatures, batches as leading axes,
gradients summed to their inputs' shapes, numbers returned as floats, bus values as
arrays) and computes with functions that numba compiles. For each function of the
python target (`forward`, `backward`, and with `--jvp`/`--hessian` `jvp`, `hvp`,
`hessian`) it writes:

- `_<name>_at`: the python target's straight-line code at one point, compiled (`_jit`):
  its results in order (outputs, then gradients, tangents, products or the Hessian's
  entries) as one tuple, and `_check` of them and of every gate that can raise (NaN where
  one is not finite);
- `_<name>`, for a circuit of numbers only: the entry point at one point of floats,
  compiled eagerly for float64 arguments, which raises `FloatingPointError` where a value
  is not finite;
- `_<name>_points`: the loop over the points of a batch, calling `_<name>_at` and writing
  each result into a flat array (see `numba_helpers`), and `_<name>_threads`, the same
  over chunks of the batch on numba's threads;
- `<name>`: the wrapper, which tries the entry point and otherwise takes the way in of
  every argument, `_run` (arrays, batches, lists; a value not finite).

A run-time error is found where it happens by running the same code in the interpreter
(`numba_helpers._interpreted`): its lines that can raise are listed in `_WHERE`, as in
the python target. Circuits with buses are compiled written out here only where asked
(`elements`) or where the whole-bus form does not cover them (`emit.numba_loops` writes
the others).
"""

from __future__ import annotations

import ast
import math
import re
from pathlib import Path

from ..errors import CircuitError
from ..gates import GATES
from ..grad import ADJOINT, TANGENT
from ..graph import LEAVES, Graph, by_bus, elements
from ..guards import guards, lazy, only_where
from .python import ENTRY_POINTS, RESERVED, PythonWriter
from .python_helpers import HELPER_SOURCES
from .text import BY_CIRC_NAMES, LINE, WHERE_COMMENT, tuple_display, tuple_sum, where_text

_HELPERS_FILE = Path(__file__).with_name("numba_helpers.py")


def copied(source: str) -> str:
    """A helper's text as a module carries it: without the `noqa` comments its own file needs
    for the module's names (which the module defines)."""
    return re.sub(r"  # noqa: F821[^\n]*", "", source)


def _helper_sources() -> tuple[dict[str, str], set[str]]:
    """Each function of `numba_helpers.py` by name, as its source text with its decorators,
    and the names of those compiled (`@_jit`)."""
    text = _HELPERS_FILE.read_text(encoding="utf-8")
    lines = text.split("\n")
    sources, jitted = {}, set()
    for node in ast.parse(text).body:
        if isinstance(node, ast.FunctionDef):
            first = node.decorator_list[0].lineno if node.decorator_list else node.lineno
            sources[node.name] = copied("\n".join(lines[first - 1:node.end_lineno]))
            if node.decorator_list:
                jitted.add(node.name)
    return sources, jitted


HELPERS, JITTED = _helper_sources()
# The gate table's helpers, compiled.
GATE_HELPERS = {name: "@_jit\n" + source for name, source in HELPER_SOURCES.items()
                if name not in ("_flat", "_symmetric")}
JITTED |= set(GATE_HELPERS)
HELPERS = {**HELPERS, **GATE_HELPERS}


def _calls() -> dict[str, set[str]]:
    """Each helper and the helpers it calls, from their syntax trees."""
    calls = {}
    for name, source in HELPERS.items():
        tree = ast.parse(source)
        called = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        calls[name] = called & set(HELPERS) - {name}
    return calls


CALLS = _calls()
ALWAYS = ("_run", "_check")  # what every module of gate graphs calls
KINDS = ENTRY_POINTS  # forward, backward, jvp, hvp, hessian

# Names the kernels use besides the circuit's, and the module's own: reserved, so that no
# `.circ` name shadows them.
LOCALS = {"B", "chunks", "first", "last", "chunk", "start", "stop", "point", "bad", "check",
          "values", "H"}
MODULE_NAMES = {"np", "numba", "_jit", "CHUNKS", "THREADS_FROM", "_BLAS", "_GEMM_FROM",
                "type", "range", "float", "tuple", "len", "zip", "sum", "sparse_hessian",
                "HESSIAN_PIECES", "HESSIAN_BAND", "__getattr__", "globals", "_hvp_colours",
                "_hessian_at", "_sparse_hessian_at", "one", "products", "colour", "count",
                "pattern", "entries", "numbers", "at", "k",
                *(f"_{name}{part}" for name in KINDS
                  for part in ("", "_at", "_points", "_threads", "_batched")),
                *(f"_{name.upper()}" for name in KINDS)}
NUMBA_RESERVED = RESERVED | LOCALS | MODULE_NAMES | set(HELPERS)
CHUNKS = 16  # the chunks of a batch of THREADS_FROM points or more (see `numba_helpers._run`)
# A batch runs on numba's threads from about this many operations on: a point's share
# sets THREADS_FROM.
THREADS_WORK = 10_000_000
# From this many gates in its graphs on, a circuit is too large to be written out for numba:
# its compile time grows with the code, about a minute here (benchmarks/RESULTS.md).
MAX_GATES = 20_000
TUPLE = 999  # numbers: numba refuses longer tuples

JIT = '_jit = numba.njit(cache=True, nogil=True, error_model="numpy")'
THREADS_JIT = "@numba.njit(cache=True, parallel=True)"


def head(shown: str, version: str) -> list[str]:
    """A numba module's first lines: where it comes from, its docstring, its imports."""
    return [f"# Generated by circuitc {version} from {shown} for numba; do not edit.",
            '"""A circuit compiled by circuitc for numba: forward(inputs), backward(inputs, seeds)."""',
            "",
            "import math",
            "",
            "import numba",
            "import numpy as np",
            ""]


def tuning(work: int) -> list[str]:
    """The lines defining `CHUNKS` and `THREADS_FROM` for a function of `work` operations a
    point, and `_jit`."""
    start = max(64, THREADS_WORK // max(work, 1))
    return [f"CHUNKS = {CHUNKS}  # a batch of THREADS_FROM points or more is computed in CHUNKS parts",
            f"THREADS_FROM = {start}  # points: a batch this large runs on numba's threads, if several",
            "",
            JIT]


def needed(helpers: set[str]) -> list[str]:
    """`helpers` and every helper they call, compiled ones first, then by name."""
    found, todo = set(), list(helpers)
    while todo:
        h = todo.pop()
        if h not in found:
            found.add(h)
            todo += CALLS[h]
    return sorted(found, key=lambda h: (h not in JITTED, h))


def wrapper(name: str, inputs: list[str], extras: list[str], entry: bool) -> list[str]:
    """The body of the entry point `name`: the compiled `_<name>` at a point of floats (and
    float64 arrays) where there is one (`entry`) and the last call was not of a batch (a
    batch's arrays make the entry point fail, which costs numba some microseconds), else
    (and for anything else) `_run`."""
    run = f"_run(_{name.upper()}, {tuple_display(inputs)}" + (f", {tuple_display(extras)})" if extras else ")")
    if not entry:
        return [f"    return {run}"]
    return [f"    if not _{name}_batched:  # the last call was at one point",
            "        try:",
            f"            return _{name}({', '.join(inputs + extras)})",
            "        except (TypeError, FloatingPointError):  # arrays, other types; a value not finite",
            "            pass",
            f"    return {run}"]


def threads(name: str, params: list[str], starts: list[tuple[str, str]], checked: bool,
            blas: bool = False) -> list[str]:
    """`_<name>_threads`, the kernel over the chunks of a batch on numba's threads (none
    where it calls BLAS, which has threads of its own), and `_<NAME>`, what `_run` knows
    of the function: its kernels; what each result's rows hold before the kernel runs
    (`starts`: with a row per point and with a row per chunk; None where the kernel
    assigns them); whether the kernel marks points in `bad`."""
    args = ", ".join(params)
    spec = [f'"kind": "{name}"', f'"kernel": _{name}_points',
            f'"threads": {"None" if blas else f"_{name}_threads"}',
            f'"starts": {tuple_display([f"({a}, {b})" for a, b in starts]) if starts else "()"}',
            f'"checked": {checked}', f'"batched": "_{name}_batched"']
    if name == "hvp":
        spec.append('"backward": _BACKWARD')
    if name == "hessian":
        spec.append('"pattern": HESSIAN_PATTERN')
    text = f"_{name.upper()} = {{{', '.join(spec)}}}"
    if len(text) > LINE:
        text = f"_{name.upper()} = {{\n" + "".join(f"    {item},\n" for item in spec) + "}"
    threaded = [] if blas else [
        "", "", THREADS_JIT,
        f"def _{name}_threads(B, chunks, {args}):",
        f'    """`_{name}_points`, a chunk on each of numba\'s threads."""',
        "    for chunk in numba.prange(chunks):",
        f"        _{name}_points(B, chunks, np.int64(chunk), np.int64(chunk) + 1, {args})"]
    return [*threaded, "", "", *text.split("\n"),
            f"_{name}_batched = False  # whether the last call was of a batch (see `_run`)"]


def closing(where, shown: str, renamed: bool, functions: list[str]) -> list[str]:
    """A numba module's last lines: `_WHERE` (`text.where_text`; empty where no line can
    raise, as `_located` reads it in every module), and where an input is `renamed`,
    `_by_circ_names` around each of `functions`."""
    if where:
        tail = ["", "", WHERE_COMMENT, f'_WHERE = """\n{where_text(where, shown)}"""']
    else:
        tail = ["", "", '_WHERE = ""  # no line can raise']
    if renamed:
        tail += ["", "", BY_CIRC_NAMES, ""]
        tail += [f"{name} = _by_circ_names({name})" for name in functions]
    return tail


def signature(types: list[str]) -> str:
    return f'"({", ".join(types)}{"," if len(types) == 1 else ""})"'


class NumbaWriter(PythonWriter):
    """Writes one numba module from gate graphs (see the module docstring)."""

    reserved = NUMBA_RESERVED
    opening = ()
    handler = ()  # the compiled code raises nothing; the interpreted re-run locates errors
    indent = " " * 4

    def __init__(self, forward: Graph, backward: Graph, version: str, **extras: Graph | None):
        super().__init__(forward, backward, version, **extras)
        self.helpers.update(ALWAYS)
        self.numbers_only = not forward.shapes  # no buses: a point of floats has an entry

    def source(self) -> str:
        fwd, bwd = self.forward, self.backward
        graphs = [g for g in (fwd, bwd, self.jvp, self.hvp, self.hessian) if g is not None]
        gates = sum(node.op not in LEAVES for g in graphs for node in g.nodes)
        results = max(len(g.outputs) + len(g.grads) + len(g.tangents) for g in graphs)
        if results >= TUPLE:
            raise CircuitError(
                f"the numba target compiles circuits written out with fewer than {TUPLE} results "
                f"(outputs and gradients); this one has {results}: use buses (whole-bus code), or "
                "the python or numpy target")
        if gates >= MAX_GATES:
            raise CircuitError(
                f"the numba target compiles circuits of fewer than {MAX_GATES:,} gates written "
                f"out; this one has {gates:,} (forward and derivatives), which numba would take "
                "a minute or more to compile: use buses (whole-bus code), or the python or numpy target")
        for graph in graphs:
            self.note_gates(graph)
        self.helpers.discard("_flat")
        work = sum(node.op not in LEAVES for node in bwd.nodes)
        constants = self.constants()
        self.lines = [*head(self.shown, self.version), *constants, *tuning(work)]
        jitted = [h for h in needed(self.helpers) if h in JITTED]
        for h in jitted:
            self.lines += ["", "", *HELPERS[h].split("\n")]
        inputs = list(fwd.inputs)  # elements
        outs = [out for out, _ in fwd.outputs]
        wrt = [name for name, _ in bwd.grads]
        seeds = [ADJOINT + o for o in outs]
        self.kind("forward", fwd, inputs, [], fwd.outputs)
        self.kind("backward", bwd, inputs, seeds, [*bwd.outputs, *bwd.grads])
        if self.jvp is not None:
            directions = [TANGENT + name for name in inputs]
            self.kind("jvp", self.jvp, inputs, directions, [*self.jvp.outputs, *self.jvp.tangents])
        if self.hvp is not None:
            directions = [TANGENT + name for name in wrt]
            self.kind("hvp", self.hvp, inputs, directions + seeds,
                      [*self.hvp.outputs, *self.hvp.grads, *self.hvp.tangents])
        if self.hessian is not None:
            self.kind("hessian", self.hessian, inputs, seeds,
                      [*self.hessian.outputs, *self.hessian.grads, *self.hessian.tangents])
        tail = []
        for h in needed(self.helpers):
            if h not in JITTED:
                tail += ["", "", HELPERS[h]]
        tail += closing(self.where, self.shown, bool(self.renamed()),
                        [name for name in ENTRY_POINTS
                         if name in ("forward", "backward") or getattr(self, name) is not None])
        return "\n".join(self.lines + tail) + "\n"

    # -- one function ------------------------------------------------------------------

    def ident(self, key: str) -> str:
        """The identifier of an input element, a seed or a direction (`key` as the graph
        names its leaf)."""
        return self.names.ident[key]

    def kind(self, name: str, graph: Graph, inputs: list[str], extras: list[str],
             results: list[tuple[str, int]]) -> None:
        """The functions of entry point `name` (see the module docstring)."""
        params = [self.ident(k) for k in inputs + extras]
        raising = [i for i, node in enumerate(graph.nodes)
                   if node.op not in LEAVES and GATES[node.op].raises]
        guard = guards(graph.nodes, graph.roots) if lazy(graph.nodes) else [()] * len(graph.nodes)

        def returns(exprs) -> str:
            values = [exprs[node][0] for _, node in results]
            text = tuple_sum(values)
            if len(f"    values = {text}") > LINE:
                text = tuple_sum(values, "    ")
            self.lines += f"    values = {text}".split("\n")
            if not raising:
                return "values, 0.0"
            # Tuples of at most TUPLE numbers (numba refuses 1,000 and more); a value only a
            # branch of a `where` computes is checked where the branch is taken.
            checked = [only_where(exprs[i][0], guard[i], lambda c: exprs[c][0]) for i in raising]
            groups = [checked[k:k + TUPLE] for k in range(0, len(checked), TUPLE)]
            check = " + ".join(f"_check({tuple_sum(g)})" for g in groups)
            if len(f"    return values, {check}") > LINE:
                check = " + ".join(f"_check({tuple_sum(g, '    ')})" for g in groups)
            return f"values, {check}"
        before, entries = len(self.lines), len(self.where)
        self.function(f"_{name}_at({', '.join(params)})",
                      f"{name} at one point: its results in order, and `_check` of the gates "
                      "that can raise.", graph, returns)
        self.lines.insert(before + 2, "@_jit")  # above its `def`: the lines below move down
        self.where[entries:] = [(line + 1, origin) for line, origin in self.where[entries:]]
        checked = bool(raising)
        if self.numbers_only:
            self.entry(name, params, checked)
        targets = self.result_arrays(name, results)
        params = self.points(name, inputs, extras, targets, checked)
        # Each array's rows before the kernel runs: assigned, or a sum over the chunk's points
        # that starts at -0.0 (which adds nothing, not even a sign).
        arrays = dict.fromkeys((ident, per_point) for ident, _, per_point, _ in targets)
        starts = [("None", "None" if per_point else "-0.0") for _, per_point in arrays]
        self.lines += threads(name, params, starts, checked)
        self.lines += self.wrap(name, inputs, extras)

    def entry(self, name: str, params: list[str], checked: bool) -> None:
        """`_<name>`: the compiled entry point at a point of floats."""
        n_out = len(self.forward.outputs)
        n_in = len(self.backward.grads)
        value = "values[0]" if n_out == 1 else f"values[:{n_out}]"
        if name == "forward":
            ret = value
        elif name == "jvp":
            ret = f"{value}, {'values[1]' if n_out == 1 else f'values[{n_out}:]'}"
        elif name == "hessian":
            ret = f"{value}, values[{n_out}:{n_out + n_in}], H"
        elif name == "hvp":
            ret = f"{value}, values[{n_out}:{n_out + n_in}], values[{n_out + n_in}:]"
        else:
            ret = f"{value}, values[{n_out}:]"
        self.lines += ["", "",
                       (f"@numba.njit({signature(['float64'] * len(params))}, cache=True, "
                        'error_model="numpy")'),
                       f"def _{name}({', '.join(params)}):",
                       (f'    """{name} at one point of floats, compiled; FloatingPointError where '
                        'a gate\'s value is not finite."""'),
                       f"    values, check = _{name}_at({', '.join(params)})" if checked else
                       f"    values = _{name}_at({', '.join(params)})[0]"]
        if checked:
            self.lines += ["    if check != 0.0:", '        raise FloatingPointError("not finite")']
        if name == "hessian":
            n = len(self.backward.grads)
            self.lines.append(f"    H = np.zeros(({n}, {n}))")
            for k, (label, _) in enumerate(self.hessian.tangents):
                row, column = label.split(",")
                at = f"values[{n_out + n_in + k}]"
                self.lines.append(f"    H[{row}, {column}] = {at}" if row == column else
                                  f"    H[{row}, {column}] = H[{column}, {row}] = {at}")
        self.lines.append(f"    return {ret}")

    def points(self, name: str, inputs: list[str], extras: list[str], targets, checked: bool
               ) -> list[str]:
        """`_<name>_points`: `_<name>_at` at each point of the chunks `first..last-1`; its
        parameters after `B, chunks, first, last`."""
        shapes = self.forward.shapes
        buses = list(dict.fromkeys(k.partition("[")[0] for k in inputs + extras))
        arrays = list(dict.fromkeys(t[0] for t in targets))
        params = [self.rows(b) for b in buses] + arrays + (["bad"] if checked else [])
        lines = ["", "", "@_jit", f"def _{name}_points(B, chunks, first, last, {', '.join(params)}):",
                 f'    """{name} at the points of chunks first..last-1 of a batch of B (see `_run`)."""']
        # An input's array has a row per point, or one row for every point.
        for bus in buses:
            size = math.prod(shapes.get(bus.lstrip(ADJOINT + TANGENT), ()))
            lines.append(f"    {self.each(bus)} = len({self.rows(bus)}) > {size}  # a row per point")
        # A gradient's array has a row per point, or (the input's points share it) per chunk.
        for ident, size, per_point, _ in dict.fromkeys(targets):
            if not per_point and ident not in lines[-1]:
                flag = self.names.claim(f"{ident} each", f"{ident.removesuffix('_rows')}_each")
                line = f"    {flag} = len({ident}) == B{f' * {size}' if size > 1 else ''}  # else a row per chunk"
                if line not in lines:
                    lines.append(line)
        lines += ["    for chunk in range(first, last):",
                  "        for point in range(chunk * B // chunks, (chunk + 1) * B // chunks):"]
        # The point's row in each input's array (an expression each, not in the call's
        # arguments: numba refuses calls with many conditional arguments).
        for bus in buses:
            size = math.prod(shapes.get(bus.lstrip(ADJOINT + TANGENT), ()))
            at = self.names.claim(f"{bus} at", f"{self.bus_ident(bus)}_at")
            lines.append(f"            {at} = {'point' if size == 1 else f'point * {size}'} "
                         f"if {self.each(bus)} else 0")
        reads = []
        for key in inputs + extras:
            bus = key.partition("[")[0]
            plain = bus.lstrip(ADJOINT + TANGENT)
            place = elements(plain, shapes[plain]).index(key.lstrip(ADJOINT + TANGENT)) if "[" in key else 0
            reads.append(f"{self.rows(bus)}[{self.names.ident[f'{bus} at']}{f' + {place}' if place else ''}]")
        assign = "values, check = " if checked else "values = "
        call = f"            {assign}_{name}_at({', '.join(reads)}){'' if checked else '[0]'}"
        if len(call) > LINE:
            lines += [f"            {assign}_{name}_at(",
                      *(f"                {r}," for r in reads), "            )" + ("" if checked else "[0]")]
        else:
            lines.append(call)
        for k, (ident, size, per_point, place) in enumerate(targets):
            offset = f" + {place}" if place else ""
            at = "point" if size == 1 else f"point * {size}"
            if per_point:
                lines.append(f"            {ident}[{at}{offset}] = values[{k}]")
            else:
                flag = self.names.ident[f"{ident} each"]
                chunk = "chunk" if size == 1 else f"chunk * {size}"
                lines += [f"            if {flag}:",
                          f"                {ident}[{at}{offset}] = values[{k}]",
                          "            else:",
                          f"                {ident}[{chunk}{offset}] += values[{k}]"]
        if checked:
            lines += ["            if check != 0.0:", "                bad[point] = True"]
        self.lines += lines
        return params

    def rows(self, bus: str) -> str:
        """The kernel's array of an input's, seed's or direction's rows."""
        return self.names.claim(f"{bus} rows", f"{self.bus_ident(bus)}_rows")

    def each(self, bus: str) -> str:
        """The flag of an input's array: whether it has a row per point."""
        return self.names.claim(f"{bus} each", f"{self.bus_ident(bus)}_each")

    def bus_ident(self, key: str) -> str:
        """The parameter of an input, seed or direction (a bus's, for an element)."""
        ident = self.names.ident
        if key in ident:
            return ident[key]
        return self.names.claim(key, key.replace(ADJOINT, "d_").replace(TANGENT, "v_"))

    def result_arrays(self, name: str, results) -> list[tuple[str, int, bool, int]]:
        """Per result of `_<name>_at`: the kernel's array it goes to, that array's row size,
        whether it has a row per point (else, a gradient, a row per chunk), and the result's
        place in the row."""
        shapes = self.forward.shapes
        n_out = len(self.forward.outputs)
        n_wrt = len(self.backward.grads)
        made = []
        for k, (label, _) in enumerate(results):
            if name == "hessian" and k >= n_out + n_wrt:
                made.append((self.names.claim("#entries", "entries_rows"), len(results) - n_out - n_wrt, True,
                             k - n_out - n_wrt))
                continue
            bus = label.partition("[")[0]
            size = math.prod(shapes.get(bus, ()))
            place = elements(bus, shapes[bus]).index(label) if bus in shapes else 0
            if k < n_out:
                made.append((self.names.claim(bus + " result", f"{self.bus_ident(bus)}_rows"), size,
                             True, place))
            elif k < n_out + n_wrt and name in ("backward", "hvp", "hessian"):
                made.append((self.names.claim(ADJOINT + bus + " result", f"d_{self.bus_ident(bus)}_rows"),
                             size, False, place))
            elif name == "jvp":
                made.append((self.names.claim(TANGENT + bus + " result", f"v_{self.bus_ident(bus)}_rows"),
                             size, True, place))
            else:
                made.append((self.names.claim(TANGENT + ADJOINT + bus + " result",
                                              f"hv_{self.bus_ident(bus)}_rows"), size, False, place))
        return made

    def wrap(self, name: str, inputs: list[str], extras: list[str]) -> list[str]:
        """The entry point `name` itself."""
        fwd = self.forward
        params = [self.names.ident[b] for b in by_bus(fwd.inputs)]
        outs = list(by_bus(out for out, _ in fwd.outputs))
        seeds = [self.bus_ident(ADJOINT + o) for o in outs]
        values = ", ".join(outs)
        values_doc = f"({values})" if len(outs) > 1 else values
        seed_sum = " + ".join(f"sum({s}*{o})" if o in fwd.shapes else f"{s}*{o}"
                              for s, o in zip(seeds, outs))
        wrt = list(by_bus(n for n, _ in self.backward.grads))
        if name == "forward":
            extra, doc = [], f"Return {values_doc}."
        elif name == "backward":
            extra, doc = seeds, f"Return ({values_doc}, grads), grads[k] = d({seed_sum})/d(WRT[k])."
        elif name == "jvp":
            extra = [self.bus_ident(TANGENT + n) for n in by_bus(fwd.inputs)]
            doc = (f"Return ({values_doc}, tangents): the outputs' derivatives along the "
                   "direction given per input.")
        elif name == "hvp":
            extra = [self.bus_ident(TANGENT + n) for n in wrt] + seeds
            doc = (f"Return ({values_doc}, grads, hv), hv = H @ v: the Hessian of {seed_sum} "
                   "times the direction v given per input of WRT.")
        else:
            extra = seeds
            doc = (f"Return ({values_doc}, grads, H): H the Hessian of {seed_sum}, rows and "
                   "columns the elements of WRT in order.")
        signature_params = params + [e + "=1.0" if e in seeds else e for e in extra]
        return ["", "", f"def {name}({', '.join(signature_params)}):", f'    """{doc}"""',
                *wrapper(name, params, extra, self.numbers_only)]


def emit(forward: Graph, backward: Graph, version: str, **extras: Graph | None) -> str:
    """The numba module for a circuit, from its optimized forward graph and gradient graph;
    `jvp`, `hvp` and `hessian`, the graphs of those functions, add them."""
    return NumbaWriter(forward, backward, version, **extras).source()
