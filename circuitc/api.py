"""The Python API: source text or file -> module source -> loaded module.

Every entry point raises `CircuitError` (with the file name and text attached)
for a bad `.circ` file, and nothing else for one.
"""

from __future__ import annotations

import codecs
import gc
import inspect
import linecache
import math
import re
import sys
import traceback
import types
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from . import __version__, cache
from .buses import Buses, _Expansion, expand, has_buses
from .emit import numba as numba_target
from .emit import numpy as numpy_target
from .emit import python as python_target
from .errors import CircuitError, CircuitWarning, Label, ModuleError, Span, did_you_mean
from .grad import grad, hessian_graph, hvp_graph, jvp_graph
from .graph import Graph, Origin, by_bus, elements
from .indexed import plan
from .lint import lint
from .lower import lower
from .parse import parse
from .passes import dce, optimize
from .progress import phase


def read_source(path: str | Path) -> str:
    """The text of a `.circ` file: UTF-8, an optional BOM, `\\r\\n` line ends accepted."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise CircuitError(f"cannot read {str(path)!r}: {e.strerror or e}").attach(str(path), "") from None
    return decode_source(data, str(path))


def decode_source(data: bytes, filename: str) -> str:
    """The text of `.circ` source bytes, as `read_source` reads a file; `filename` names
    them in the error for bytes that are not UTF-8."""
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        text = data[bom:].decode("utf-8")
    except UnicodeDecodeError as e:
        start = bom + e.start  # in `data`, BOM included
        line_start = data.rfind(b"\n", 0, start) + 1
        line = data.count(b"\n", 0, start) + 1
        # Columns count characters, as editors do; what precedes the bad byte decodes.
        column = len(data[max(line_start, bom):start].decode("utf-8")) + 1
        raise CircuitError(f"not UTF-8: byte 0x{data[start]:02x}",
                           Span(line, column, line, column + 1)).attach(filename, "") from None
    return normalize(text)


def normalize(text: str) -> str:
    """Source text as the compiler reads it: no byte-order mark, `\n` line ends."""
    return text.removeprefix("\ufeff").replace("\r\n", "\n")


# What every entry point takes besides the circuit: `sizes` overrides declared sizes
# (`-D NAME=INT`), `wrt` names the inputs to differentiate with respect to, in order
# (default: every input, in `INPUTS` order), and `fix` the inputs not to (every other
# input, in `INPUTS` order); a bus is named as a whole.
Sizes = Mapping[str, int] | None
Names = Sequence[str] | None


def lower_source(text: str, filename: str = "<string>", sizes: Sizes = None
                 ) -> tuple[Graph, Buses]:
    """The graph of a circuit as written (buses written out), and its indexed form."""
    phase("parse")
    statements, buses = expand(parse(text), sizes)
    phase("lower")
    graph = lower(statements, filename)
    io = {*by_bus(graph.inputs), *by_bus(name for name, _ in graph.outputs)}
    return replace(graph, shapes={k: v for k, v in buses.shapes.items() if k in io}), buses


@contextmanager
def source_errors(text: str, filename: str):
    """Yields `text` as the compiler reads it (`normalize`); a `CircuitError` raised in
    the block leaves it with `filename` and that text attached, so that it prints
    with its source line."""
    text = normalize(text)
    try:
        yield text
    except CircuitError as e:
        raise e.attach(filename, text)


@contextmanager
def written_graph(text: str, filename: str = "<string>", sizes: Sizes = None):
    """The front door from `.circ` text to graphs, which compiling and drawing go through:
    yields the circuit's graph as written and its indexed form (`lower_source` of the
    normalized text), with every `CircuitError` raised reading it or in the block
    (optimizing, differentiating) attached to `filename` and the text."""
    with source_errors(text, filename) as source:
        yield lower_source(source, filename, sizes)


def compile_graphs(text: str, filename: str = "<string>", wrt: Names = None, *,
                   sizes: Sizes = None, fix: Names = None) -> tuple[Graph, Graph]:
    """The optimized forward graph of a circuit and its optimized gradient graph.

    The gradient graph computes the gradient with respect to the inputs chosen by
    `wrt` or `fix`, and nothing that only other inputs need.
    """
    with _collector_paused(), written_graph(text, filename, sizes) as (graph, _):
        return differentiate(graph, wrt, fix)


@contextmanager
def _collector_paused():
    """The garbage collector paused for the block: the compiler makes millions of small
    objects and no cyclic garbage, so a collection would look at them all and find
    nothing (benchmarks/RESULTS.md)."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def _generate(text: str, filename: str, target: str, wrt: Names, sizes: Sizes, fix: Names,
              hessian: bool = False, jvp: bool = False, elements: bool = False,
              graphs: bool = True) -> tuple[str, Graph | None, Graph | None]:
    """The module source for `target`, and the optimized graphs of the written-out circuit
    (None without `graphs`, where the module is whole-bus code, which needs none).

    A bus circuit becomes whole-bus code (`indexed`) for the numpy target (`emit.whole`),
    and for the python target (`emit.loops`) where a bus or a reduction has more than
    `LOOPS_FROM` elements, unless `elements` asks for it written out element by element.
    """
    emit = _emitter(target)
    if not elements:
        source = _whole_bus(text, filename, target, wrt, sizes, fix, hessian, jvp)
        if source is not None:
            if not graphs:
                return source, None, None
            return (source, *compile_graphs(text, filename, wrt, sizes=sizes, fix=fix))
    with _collector_paused():
        forward, backward = compile_graphs(text, filename, wrt, sizes=sizes, fix=fix)
        extras = {}
        if jvp:
            extras["jvp"] = dce(jvp_graph(forward), done=len(forward.nodes))
        if hessian:
            extras["hvp"] = dce(hvp_graph(backward), done=len(backward.nodes))
            if target in ("python", "numba"):
                extras["hessian"] = dce(hessian_graph(backward), done=len(backward.nodes))
        phase("emit")
        return emit(forward, backward, __version__, **extras), forward, backward


# The python target writes a bus circuit out element by element while no bus or reduction
# has more than this many elements, and loops beyond: written out runs faster up to about
# there (benchmarks/loops.py), but costs compile time and module text per element.
LOOPS_FROM = 256


def _whole_bus(text: str, filename: str, target: str, wrt: Names, sizes: Sizes, fix: Names,
               hessian: bool = False, jvp: bool = False) -> str | None:
    """The whole-bus module of a bus circuit for `target`, or None for a circuit without
    buses, one whose indexes the whole-bus form does not cover, or (python target) one
    whose buses and reductions all have at most `LOOPS_FROM` elements. A syntax error is
    raised from here, as the written-out front end would raise it, without reading the
    text again."""
    with _collector_paused():
        with source_errors(text, filename) as source:
            statements = parse(source)
        try:
            if not has_buses(statements) or target == "python" and not _large(statements, sizes):
                return None
            p = plan(statements, filename, sizes, wrt, fix)
        except CircuitError:
            return None  # the written-out front end reports it, as for every circuit
        if p is None:
            return None
        from .emit import loops, numba_loops, whole
        printer = {"python": loops, "numpy": whole, "numba": numba_loops}[target]
        return printer.emit(p, __version__, jvp, hessian)


def _large(statements: list, sizes: Sizes) -> bool:
    """Whether a bus or a reduction of a parsed bus circuit has more than `LOOPS_FROM`
    elements (terms)."""
    expansion = _Expansion(statements, dict(sizes or {}))
    expansion.analyze()
    counts = [math.prod(shape) for shape in expansion.buses.shapes.values()]
    domains: dict[Span, int] = {}  # a definition's or a reduction's, by its position
    for (span, _), r in expansion.ranges.items():
        domains[span] = domains.get(span, 1) * len(r)
    return max(counts + list(domains.values()), default=0) > LOOPS_FROM


def differentiate(graph: Graph, wrt: Names = None, fix: Names = None) -> tuple[Graph, Graph]:
    """The optimized forward graph of a lowered graph, and its optimized gradient graph."""
    phase("differentiate")
    forward = optimize(graph)
    backward = grad(forward, _checked_wrt(forward, wrt, fix))  # folded and simplified as built
    return forward, dce(backward, done=len(forward.nodes))


def _checked_wrt(graph: Graph, wrt: Names, fix: Names) -> tuple[str, ...]:
    """The input elements that `wrt` or `fix` choose, in order."""
    if wrt is not None and fix is not None:
        raise CircuitError("give --wrt or --fix, not both")
    inputs = by_bus(graph.inputs)
    for option, names in (("--wrt", wrt), ("--fix", fix)):
        for k, name in enumerate(names or ()):
            if name not in inputs:
                raise CircuitError(f"{option} names {name!r}, which is not an input"
                                   + did_you_mean(name, inputs))
            if name in names[:k]:
                raise CircuitError(f"{option} names {name!r} twice")
    if wrt is None:
        wrt = [name for name in inputs if name not in (fix or ())]
    return tuple(e for name in wrt for e in inputs[name])


# The code targets: name -> emitter. `python` needs only `math`; `numpy` evaluates
# batches with broadcasting; `numba` compiles to machine code (circuitc itself never
# imports NumPy or numba).
TARGETS = {"python": python_target.emit, "numpy": numpy_target.emit, "numba": numba_target.emit}


def compile_source(text: str, filename: str = "<string>", target: str = "python",
                   wrt: Names = None, *, sizes: Sizes = None, fix: Names = None,
                   hessian: bool = False, jvp: bool = False, elements: bool = False) -> str:
    """The module for the circuit in `text`, for `target`; `filename` is used in messages.

    `backward` returns the gradient with respect to the inputs chosen by `wrt` or
    `fix` (the module's `WRT`), by default every input. `hessian` adds `hvp` and (python
    target) `hessian`; `jvp` adds `jvp`. `elements` writes buses out element by element
    instead of as whole-bus code.
    """
    return _generate(text, filename, target, wrt, sizes, fix, hessian, jvp, elements,
                     graphs=False)[0]


def lint_source(text: str, filename: str = "<string>") -> list[CircuitWarning]:
    """The warnings of the circuit in `text` (`circuitc.lint`), in source order, each with
    `filename` and the text attached, so that it renders with its source line; they say
    nothing of whether it compiles. A syntax error raises its `CircuitError`."""
    with _collector_paused(), source_errors(text, filename) as source:
        return [w.attach(filename, source) for w in lint(parse(source))]


def compile_file(path: str | Path, target: str = "python", wrt: Names = None, **options) -> str:
    """The module for the `.circ` file at `path`, for `target` (options as `compile_source`)."""
    return compile_source(read_source(path), str(path), target, wrt, **options)


def load(path: str | Path, target: str = "python", wrt: Names = None, **options
         ) -> types.ModuleType:
    """Compile the `.circ` file at `path` for `target` in memory and import the result
    (options as `compile_source`), or take it from the compile cache (`circuitc.cache`)."""
    return _module(_compiled(read_source(path), str(path), target, wrt, **options), str(path), target)


class Elements:
    """A module whose buses are seen element by element: what `evaluate`, the verifier
    and `circuitc step` work on.

    `INPUTS`, `OUTPUTS`, `WRT` and `DEFAULTS` name numbers: scalars, and each bus's
    elements in row-major order (`x[0]`, `W[1,0]`); `forward(*inputs)` and
    `backward(*inputs, *seeds)` take one number per input element (and per output
    element's seed) and return one per output element and gradient element, in
    `OUTPUTS` and `WRT` order. `elementwise(module)` makes one, or returns a module
    without buses as it is, since that already is one.
    """

    def __init__(self, module: types.ModuleType):
        self.module = module
        self.shapes = {name: tuple(shape) for name, shape in module.SHAPES.items()}
        self.INPUTS = self._elements(module.INPUTS)
        self.OUTPUTS = self._elements(module.OUTPUTS)
        self.WRT = self._elements(module.WRT)
        self.DEFAULTS = {e: v for name, value in module.DEFAULTS.items()
                         for e, v in zip(self._elements([name]), self._flat(value, name))}
        # `hessian` and `hvp` only where the module has them, so that `hasattr` tells.
        if hasattr(module, "hessian"):
            self.hessian = self._hessian
        if hasattr(module, "hvp"):
            self.hvp = self._hvp

    def __getattr__(self, name: str):  # anything else, `__file__` included: the module's
        return getattr(self.module, name)

    def _elements(self, names) -> tuple[str, ...]:
        return tuple(e for name in names for e in elements(name, self.shapes[name]))

    def _flat(self, value, name: str) -> list:
        """A bus value as its elements (a number as itself)."""
        if hasattr(value, "tolist"):
            value = value.tolist()
        values = [value]
        for _ in self.shapes[name]:
            values = [x for row in values for x in row]
        return values

    def _nested(self, flat, names) -> list:
        """Flat element values as one value per name in `names` (nested lists for a bus)."""
        values, k = [], 0
        for name in names:
            shape = self.shapes[name]
            count = math.prod(shape)
            value = list(flat[k:k + count])
            for n in reversed(shape[1:]):
                value = [value[j:j + n] for j in range(0, len(value), n)]
            values.append(value if shape else flat[k])
            k += count
        return values

    def _outputs(self, value) -> list:
        value = outputs_of(self.module, value)
        return [x for name, v in zip(self.module.OUTPUTS, value) for x in self._flat(v, name)]

    def forward(self, *inputs):
        outputs = self._outputs(self.module.forward(*self._nested(inputs, self.module.INPUTS)))
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    def backward(self, *args):
        return self._seeded(self.module.backward, args)

    def _hessian(self, *args):
        """`(value, grads, H)`, `H`'s rows and columns the elements of `WRT`."""
        return self._seeded(self.module.hessian, args)

    def _hvp(self, *args):
        """`(value, grads, hv)` for `hvp(*inputs, *directions, *seeds)`, a direction per
        element of `WRT`."""
        n = len(self.INPUTS)
        directions = self._nested(args[n:n + len(self.WRT)], self.module.WRT)
        value, grads, hv = self._seeded(
            lambda *a: self.module.hvp(*a[:len(self.module.INPUTS)], *directions,
                                       *a[len(self.module.INPUTS):]),
            args[:n] + args[n + len(self.WRT):])
        return value, grads, self._flat_by(hv, self.module.WRT)

    def _seeded(self, function, args):
        inputs, seeds = args[:len(self.INPUTS)], args[len(self.INPUTS):]
        value, grads, *rest = function(*self._nested(inputs, self.module.INPUTS),
                                       *self._nested(seeds, self.module.OUTPUTS))
        outputs = self._outputs(value)
        return (outputs[0] if len(outputs) == 1 else tuple(outputs),
                self._flat_by(grads, self.module.WRT), *rest)

    def _flat_by(self, values, names) -> tuple:
        """One value per name (a bus's nested), as one tuple of numbers."""
        return tuple(x for name, v in zip(names, values) for x in self._flat(v, name))


def elementwise(module: types.ModuleType):
    """`module` seen element by element (`Elements`); a module without buses is itself."""
    shapes = getattr(module, "SHAPES", {})
    return Elements(module) if any(shapes.values()) else module


def evaluate(module: types.ModuleType, at: dict[str, float]) -> tuple[dict, dict]:
    """Each output's value at `at`, and each output's gradient as `{output: {input: value}}`,
    for a module without buses or one seen element by element (`elementwise`).

    Works for every target (at a point, every target returns Python floats).
    """
    args = [at[name] for name in module.INPUTS]
    outputs = dict(zip(module.OUTPUTS, outputs_of(module, module.forward(*args))))
    gradients = {out: dict(zip(module.WRT, gradient_of(module, args, k)))
                 for k, out in enumerate(module.OUTPUTS)}
    return outputs, gradients


def outputs_of(module: types.ModuleType, value) -> tuple:
    """What `module.forward` returned, as a tuple in `OUTPUTS` order (a module with
    one output returns the value itself)."""
    return tuple(value) if len(module.OUTPUTS) > 1 else (value,)


def gradient_of(module: types.ModuleType, args: Sequence, k: int) -> tuple:
    """The gradient of output number `k` at `args` (`INPUTS` order), one value per input
    of `WRT`: `module.backward` seeded 1.0 on that output and 0.0 on the others."""
    seeds = [float(j == k) for j in range(len(module.OUTPUTS))]
    return tuple(module.backward(*args, *seeds)[1])


def hessian_of(module: types.ModuleType, args: Sequence, k: int) -> tuple:
    """The Hessian of output number `k` at `args` (`INPUTS` order), a tuple of rows over
    the elements of `WRT`: `module.hessian` seeded like `gradient_of`."""
    seeds = [float(j == k) for j in range(len(module.OUTPUTS))]
    return tuple(map(tuple, hessian_rows(module.hessian(*args, *seeds)[2])))


def hessian_rows(H) -> list:
    """The rows of the Hessian a module's `hessian` returned: the python target's tuple of
    rows as it is, the numba target's array as lists of Python floats."""
    return H.tolist() if hasattr(H, "tolist") else list(H)


def load_compiled(path: str | Path, target: str = "python", wrt: Names = None, *,
                  sizes: Sizes = None, fix: Names = None, hessian: bool = False,
                  jvp: bool = False, elements: bool = False) -> tuple[types.ModuleType, Graph]:
    """`load(path, ...)`, and the optimized forward graph of the written-out circuit
    (`compile_graphs(...)[0]`, made when first asked for): the file is read once."""
    return load_compiled_source(read_source(path), str(path), target, wrt, sizes=sizes, fix=fix,
                                hessian=hessian, jvp=jvp, elements=elements)


def load_compiled_source(text: str, filename: str = "<string>", target: str = "python",
                         wrt: Names = None, *, sizes: Sizes = None, fix: Names = None,
                         hessian: bool = False, jvp: bool = False, elements: bool = False
                         ) -> tuple[types.ModuleType, Graph]:
    """`load_compiled` for the circuit in `text`; `filename` is used in messages."""
    compiled = _compiled(text, filename, target, wrt, sizes=sizes, fix=fix, hessian=hessian,
                         jvp=jvp, elements=elements)
    return _module(compiled, filename, target), compiled.forward


def load_source(text: str, filename: str = "<string>", target: str = "python",
                wrt: Names = None, **options) -> types.ModuleType:
    """`load` for the circuit in `text`; `filename` is used in messages."""
    return _module(_compiled(text, filename, target, wrt, **options), filename, target)


def _compiled(text: str, filename: str, target: str, wrt: Names, **options) -> cache.Compiled:
    """The module for `target` compiled from `text`, taken from the cache or made and kept
    there: every argument is part of the cache key."""
    _emitter(target)  # an unknown target is a ValueError before the cache is looked at
    given = inspect.signature(compile_source).bind(text, filename, target, wrt, **options)
    given.apply_defaults()
    arguments = given.arguments
    options = {name: value for name, value in arguments.items()
               if name not in ("text", "filename", "target")}
    return cache.compiled(text, filename, target, options,
                          lambda: _generate(**arguments, graphs=False), f"<circuitc {filename}>",
                          lambda: compile_graphs(text, filename, arguments["wrt"],
                                                 sizes=arguments["sizes"], fix=arguments["fix"])[0])


def _module(compiled: cache.Compiled, filename: str, target: str = "python") -> types.ModuleType:
    """A new module running `compiled`'s code (for numba, imported from a file:
    `numba_modules`)."""
    if target == "numba":
        from . import numba_modules

        return numba_modules.load(compiled.source)
    module = types.ModuleType(Path(filename).stem)
    module.__file__ = f"<circuitc {filename}>"
    # Let tracebacks show the generated lines.
    source = compiled.source
    linecache.cache[module.__file__] = (len(source), None, source.splitlines(True), module.__file__)
    for code in compiled.code:
        exec(code, module.__dict__)  # noqa: S102 (our own output, or the user's own cache)
    return module


# What `verify` accepts besides a circuit, in the words of its error messages.
MODULE_CONTRACT = ("a .circ circuit, or a Python module (.py) as `circuitc compile` writes one: "
                   "INPUTS and OUTPUTS (tuples of names), forward(*inputs) returning the "
                   "outputs, backward(*inputs, *seeds) returning (outputs, grads) with one "
                   "gradient per name in WRT (default INPUTS), and optionally DEFAULTS and "
                   "SHAPES (for buses)")


def load_python(path: str | Path) -> types.ModuleType:
    """Run the Python file at `path` as a module and check that it follows the contract
    of a generated module (`check_module`); a `ModuleError` if it fails to load or does
    not follow it.

    Running the file runs whatever code it holds, as `python path` would: it is the
    caller's own file, to be trusted as such.
    """
    path = str(path)
    if not Path(path).is_file():
        why = "not a file" if Path(path).exists() else "no such file"
        raise ModuleError(f"cannot read {path!r}: {why}").attach(path, "")
    # Compiled and run here rather than imported: nothing is written beside the file (no
    # __pycache__). Under a name of its own, not `__main__` (its script part stays idle)
    # nor its stem (which may be a module it imports); in `sys.modules` while it runs, as
    # some code needs (a dataclass looks its module up).
    name = f"circuitc_verified_{Path(path).stem}"
    module = types.ModuleType(name)
    module.__file__ = path
    sys.modules[name] = module
    try:
        exec(compile(Path(path).read_bytes(), path, "exec"), module.__dict__)  # noqa: S102
    except SyntaxError as e:
        raise ModuleError(f"not a Python module: {e.msg} (line {e.lineno}); verify expects "
                          + MODULE_CONTRACT).attach(path, "") from None
    except Exception as e:  # noqa: BLE001 (the file's own code failed: say where, as a message)
        raise ModuleError(f"running it raised {raised(e)}").attach(path, "") from None
    finally:
        sys.modules.pop(name, None)
    check_module(module, path)
    return module


def raised(e: BaseException) -> str:
    """`NameError: name 'q' is not defined (m.py:12)`: an exception, and the line that raised it."""
    frames = traceback.extract_tb(e.__traceback__)
    where = f" ({frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    return f"{type(e).__name__}: {e}{where}"


def run_error(exc: BaseException, filename: str, source: str) -> CircuitError | None:
    """A gate's error at run time (`log(-1)`, `1/0`) as a `CircuitError` at that gate of
    the circuit `filename` (whose text is `source`), so that it renders with its source
    line and a caret as compile-time errors do: the gate's message, and each `gate` call
    it was reached through as a label. None for an exception that no gate raised.

    The gate is the one circuitc's module names for the line that raised: a frame of a
    module with `_located`, in the traceback of `exc` or of an exception in its context
    (the module re-raises an error with the gate's place in front, and callers such as
    `step` may wrap that in turn), at a line that its `_WHERE` lists.
    """
    shown = filename if filename.isprintable() else repr(filename)
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        for frame, line in traceback.walk_tb(exc.__traceback__):
            where, entry = frame.f_globals.get("_WHERE"), f"\n{line} "
            if "_located" in frame.f_globals and isinstance(where, str) and entry in where:
                places = Origin.places(where.partition(entry)[2].partition("\n")[0], shown)
                if places:
                    return _at_gate(places, str(exc), source).attach(filename, source)
        exc = exc.__context__
    return None


def _at_gate(places: list[tuple[int, int, str]], message: str, source: str) -> CircuitError:
    """The error `message` at the last of `places` (`Origin.places`), the calls that lead
    there as labels, and the bus element that the first place names in the message."""
    element = places[0][2].partition(" for ")[2]
    *calls, (line, column, gate) = [(*place[:2], place[2].partition(" for ")[0])
                                    for place in places]
    labels = [Label(_token(source, *place[:2]), f"in this {place[2]}") for place in calls]
    return CircuitError(f"in {gate}{' for ' + element if element else ''}: {message}",
                        _token(source, line, column), labels=labels)


def _token(source: str, line: int, column: int) -> Span:
    """The span of the name or operator that starts at `line`, `column` of `source`."""
    lines = source.split("\n", line)
    text = lines[line - 1] if 0 < line <= len(lines) else ""
    found = re.compile(r"[A-Za-z_]\w*|\*\*|\S").match(text, column - 1)
    return Span(line, column, line, column + (len(found[0]) if found else 1))


def check_module(module: types.ModuleType, path: str) -> None:
    """A `ModuleError` naming the first way `module` breaks the generated-module contract."""
    def broken(what: str):
        return ModuleError(f"{what}; verify expects {MODULE_CONTRACT}").attach(path, "")

    def names(attr: str, default=None) -> tuple:
        value = getattr(module, attr, default)
        if value is None:
            raise broken(f"it defines no {attr}")
        if not (isinstance(value, tuple | list) and all(isinstance(n, str) for n in value)):
            raise broken(f"its {attr} is not a tuple of names")
        if len(set(value)) < len(value):
            raise broken(f"its {attr} has a name twice")
        return tuple(value)
    inputs, outputs = names("INPUTS"), names("OUTPUTS")
    if not outputs:
        raise broken("its OUTPUTS is empty")
    if not set(names("WRT", inputs)) <= set(inputs):
        raise broken("its WRT names an input that is not in INPUTS")
    shapes = getattr(module, "SHAPES", {})
    if not (isinstance(shapes, dict) and all(
            isinstance(v, tuple | list) and all(isinstance(n, int) and n >= 0 for n in v)
            for v in shapes.values())):
        raise broken("its SHAPES is not a dict of shapes (tuples of sizes)")

    def numbers(value, shape) -> bool:
        if not shape:
            return isinstance(value, int | float)
        return (isinstance(value, tuple | list) and len(value) == shape[0]
                and all(numbers(v, shape[1:]) for v in value))
    defaults = getattr(module, "DEFAULTS", {})
    if not (isinstance(defaults, dict) and set(defaults) <= set(inputs)
            and all(numbers(v, tuple(shapes.get(k, ()))) for k, v in defaults.items())):
        raise broken("its DEFAULTS is not a dict of numbers (nested lists of them for buses) "
                     "for names in INPUTS")
    for name, arity in (("forward", len(inputs)), ("backward", len(inputs) + len(outputs))):
        fn = getattr(module, name, None)
        if not callable(fn):
            raise broken(f"it defines no function {name}")
        try:
            inspect.signature(fn).bind(*range(arity))
        except TypeError:
            raise broken(f"its {name} does not take {arity} arguments") from None
        except ValueError:
            pass  # no signature to inspect (a builtin): calling it will tell


def _emitter(target: str):
    """The emitter of `target`; a `ValueError` naming the targets for an unknown one."""
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; the targets are {', '.join(TARGETS)}")
    return TARGETS[target]
