"""The Python API: source text or file -> module source -> loaded module.

Every entry point raises `CircuitError` (with the file name and text attached)
for a bad `.circ` file, and nothing else for one. The pipeline, after the front end
(`front.read`): a circuit without buses, or one written out (`elements`, or an index the
whole-bus form does not cover), goes `buses.written_out -> lower -> optimize -> grad ->
emit.python` or `emit.numpy`; a bus circuit otherwise goes `indexed.plan -> emit.whole`
(numpy) or `emit.loops` (python, past `LOOPS_FROM` elements). What loaded modules are
checked against, and how errors at run time are placed, is `circuitc.contract`; modules
seen element by element, `circuitc.elements`. Both are importable from here too.
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from functools import cache as once
from pathlib import Path

from . import cache
from .buses import Buses, written_out
from .contract import (
    MODULE_CONTRACT,
    check_module,
    load_python,
    raised,
    run_error,
    shown_in_tracebacks,
)
from .draws import DEFAULT_SEED
from .elements import Elements, elementwise, evaluate, gradient_of, hessian_of, outputs_of
from .emit import numba as numba_target
from .emit import numpy as numpy_target
from .emit import python as python_target
from .errors import CircuitError, CircuitWarning
from .front import (
    Source,
    collector_paused,
    decode_source,
    normalize,
    read,
    read_source,
    source_errors,
)
from .grad import grad, hessian_graph, hvp_graph, jvp_graph, wrt_elements
from .graph import Graph, by_bus
from .indexed import plan
from .lint import lint
from .lower import lower
from .parse import parse
from .passes import dce, optimize
from .progress import phase
from .version import __version__

# The API: what is defined here, and what it imports from modules of their own (`front`,
# `contract`, `elements`) for code that reads it from here.
__all__ = ["DTYPES", "KNOWN_DTYPES", "LOOPS_FROM", "MODULE_CONTRACT", "TARGETS", "Elements",
           "check_module", "compile_file", "compile_graphs", "compile_source", "decode_source",
           "differentiate", "dtype_error", "elementwise", "evaluate", "gradient_of", "graphs",
           "hessian_of", "lint_source", "load", "load_compiled", "load_compiled_source",
           "load_python", "load_source", "lower_source", "lowered", "normalize", "outputs_of",
           "raised", "read_source", "run_error", "source_errors", "written_graph"]


# What every entry point takes besides the circuit: `sizes` overrides declared sizes
# (`-D NAME=INT`), `wrt` names the inputs to differentiate with respect to, in order
# (default: every input, in `INPUTS` order), and `fix` the inputs not to (every other
# input, in `INPUTS` order); a bus is named as a whole.
Sizes = Mapping[str, int] | None
Names = Sequence[str] | None


def lower_source(text: str, filename: str = "<string>", sizes: Sizes = None,
                 seed: int = DEFAULT_SEED) -> tuple[Graph, Buses]:
    """The graph of a circuit as written (buses written out), and its indexed form."""
    return lowered(read(text, filename, sizes, seed))


def lowered(source: Source) -> tuple[Graph, Buses]:
    """`lower_source` of a circuit the front end has read."""
    with source.errors():
        statements, buses = written_out(source.statements, source.analysis)
        phase("lower")
        graph = lower(statements, source.filename)
    io = {*by_bus(graph.inputs), *by_bus(name for name, _ in graph.outputs)}
    return replace(graph, shapes={k: v for k, v in buses.shapes.items() if k in io}), buses


@contextmanager
def written_graph(text: str, filename: str = "<string>", sizes: Sizes = None,
                  seed: int = DEFAULT_SEED):
    """The front door from `.circ` text to graphs, which compiling and drawing go through:
    yields the circuit's graph as written and its indexed form (`lower_source` of the
    normalized text), with every `CircuitError` raised reading it or in the block
    (optimizing, differentiating) attached to `filename` and the text."""
    source = read(text, filename, sizes, seed)
    with source.errors():
        yield lowered(source)


def compile_graphs(text: str, filename: str = "<string>", wrt: Names = None, *,
                   sizes: Sizes = None, fix: Names = None, seed: int = DEFAULT_SEED
                   ) -> tuple[Graph, Graph]:
    """The optimized forward graph of a circuit and its optimized gradient graph.

    The gradient graph computes the gradient with respect to the inputs chosen by
    `wrt` or `fix`, and nothing that only other inputs need.
    """
    with collector_paused():
        return graphs(read(text, filename, sizes, seed), wrt, fix)


def graphs(source: Source, wrt: Names = None, fix: Names = None) -> tuple[Graph, Graph]:
    """`compile_graphs` of a circuit the front end has read."""
    with collector_paused(), source.errors():
        return differentiate(lowered(source)[0], wrt, fix)


def _generate(source: Source, target: str, wrt: Names, fix: Names, hessian: bool = False,
              jvp: bool = False, elements: bool = False, dtype: str = "float64"
              ) -> tuple[str, Graph | None, Graph | None]:
    """The module source for `target`, and the optimized graphs of the written-out circuit
    (None where the module is whole-bus code, which needs none).

    A bus circuit becomes whole-bus code (`indexed`) for the numpy target (`emit.whole`),
    and for the python target (`emit.loops`) where a bus or a reduction has more than
    `LOOPS_FROM` elements, unless `elements` asks for it written out element by element.
    An emitter is given `dtype` only where it is not float64 (a target that has others
    takes it: `DTYPES`).
    """
    emit = _emitter(target)
    with collector_paused():
        if not elements:
            module = _whole_bus(source, target, wrt, fix, hessian, jvp, dtype)
            if module is not None:
                return module, None, None
        forward, backward = graphs(source, wrt, fix)
        extras = {}
        if jvp:
            extras["jvp"] = dce(jvp_graph(forward), done=len(forward.nodes))
        if hessian:
            extras["hvp"] = dce(hvp_graph(backward), done=len(backward.nodes))
            if target in ("python", "numba"):
                extras["hessian"] = dce(hessian_graph(backward), done=len(backward.nodes))
        phase("emit")
        return emit(forward, backward, __version__, **_typed(dtype), **extras), forward, backward


def _typed(dtype: str) -> dict[str, str]:
    """The emitters' keyword argument for `dtype`: none for float64, which every emitter
    writes by default (so one of a target without other dtypes is never given it)."""
    return {} if dtype == "float64" else {"dtype": dtype}


# The python target writes a bus circuit out element by element while no bus or reduction
# has more than this many elements, and loops beyond: written out runs faster up to about
# there (benchmarks/loops.py), but costs compile time and module text per element.
LOOPS_FROM = 256


def _whole_bus(source: Source, target: str, wrt: Names, fix: Names, hessian: bool = False,
               jvp: bool = False, dtype: str = "float64") -> str | None:
    """The whole-bus module of a bus circuit for `target`, or None for a circuit without
    buses, one whose indexes the whole-bus form does not cover, or (python target) one
    whose buses and reductions all have at most `LOOPS_FROM` elements."""
    analysis = source.analysis
    if analysis is None or target == "python" and analysis.largest() <= LOOPS_FROM:
        return None
    try:
        p = plan(source.statements, source.filename, source.sizes, wrt, fix, analysis=analysis)
    except CircuitError:
        return None  # the written-out front end reports it, as for every circuit
    if p is None:
        return None
    from .emit import loops, numba_loops, whole
    printer = {"python": loops, "numpy": whole, "numba": numba_loops}[target]
    return printer.emit(p, __version__, jvp, hessian, **_typed(dtype))


def differentiate(graph: Graph, wrt: Names = None, fix: Names = None) -> tuple[Graph, Graph]:
    """The optimized forward graph of a lowered graph, and its optimized gradient graph."""
    phase("differentiate")
    forward = optimize(graph)
    backward = grad(forward, wrt_elements(forward, wrt, fix))  # folded and simplified as built
    return forward, dce(backward, done=len(forward.nodes))


# The code targets: name -> emitter. `python` needs only `math`; `numpy` evaluates
# batches with broadcasting; `numba` compiles to machine code (circuitc itself never
# imports NumPy or numba).
TARGETS = {"python": python_target.emit, "numpy": numpy_target.emit, "numba": numba_target.emit}

# The floating-point types each target computes in (`dtype`), its default first: Python's
# own floats are float64, so the python target has no other; NumPy arrays may be float32.
DTYPES = {"python": ("float64",), "numpy": ("float64", "float32"), "numba": ("float64",)}
KNOWN_DTYPES = tuple(dict.fromkeys(d for ds in DTYPES.values() for d in ds))  # float64 first


def dtype_error(target: str, dtype: str) -> str | None:
    """Why `target` cannot compute in `dtype`, and which targets can; None if it can."""
    if dtype in DTYPES[target]:
        return None
    if dtype not in KNOWN_DTYPES:
        return f"unknown dtype {dtype!r}; the dtypes are {', '.join(KNOWN_DTYPES)}"
    takers = [t for t, ds in DTYPES.items() if dtype in ds]
    why = " (Python floats are float64)" if target == "python" else ""
    return (f"the {target} target computes in {' or '.join(DTYPES[target])} only{why}; "
            f"{dtype} needs the {' or '.join(takers)} target")


def compile_source(text: str, filename: str = "<string>", target: str = "python",
                   wrt: Names = None, *, sizes: Sizes = None, fix: Names = None,
                   hessian: bool = False, jvp: bool = False, elements: bool = False,
                   seed: int = DEFAULT_SEED, dtype: str = "float64") -> str:
    """The module for the circuit in `text`, for `target`; `filename` is used in messages.

    `backward` returns the gradient with respect to the inputs chosen by `wrt` or
    `fix` (the module's `WRT`), by default every input. `hessian` adds `hvp` and (python
    target) `hessian`; `jvp` adds `jvp`. `elements` writes buses out element by element
    instead of as whole-bus code. `seed` seeds the random defaults (`uniform`, `normal`),
    whose values the module records in `DEFAULTS`. `dtype` is the floating-point type the
    module computes in: "float64", or for the numpy target "float32" (`DTYPES`).
    """
    _emitter(target, dtype)  # an unknown target or dtype is a ValueError before the text is read
    return _generate(read(text, filename, sizes, seed), target, wrt, fix, hessian, jvp,
                     elements, dtype)[0]


def lint_source(text: str, filename: str = "<string>") -> list[CircuitWarning]:
    """The warnings of the circuit in `text` (`circuitc.lint`), in source order, each with
    `filename` and the text attached, so that it renders with its source line; they say
    nothing of whether it compiles. A syntax error raises its `CircuitError`."""
    with collector_paused(), source_errors(text, filename) as source:
        return [w.attach(filename, source) for w in lint(parse(source))]


def compile_file(path: str | Path, target: str = "python", wrt: Names = None, **options) -> str:
    """The module for the `.circ` file at `path`, for `target` (options as `compile_source`)."""
    return compile_source(read_source(path), str(path), target, wrt, **options)


def load(path: str | Path, target: str = "python", wrt: Names = None, **options
         ) -> types.ModuleType:
    """Compile the `.circ` file at `path` for `target` in memory and import the result
    (options as `compile_source`), or take it from the compile cache (`circuitc.cache`)."""
    return _module(_compiled(read_source(path), str(path), target, wrt, **options), str(path), target)


def load_compiled(path: str | Path, target: str = "python", wrt: Names = None, **options
                  ) -> tuple[types.ModuleType, Graph]:
    """`load(path, ...)`, and the optimized forward graph of the written-out circuit
    (`compile_graphs(...)[0]`, made when first asked for): the file is read once."""
    return load_compiled_source(read_source(path), str(path), target, wrt, **options)


def load_compiled_source(text: str, filename: str = "<string>", target: str = "python",
                         wrt: Names = None, **options) -> tuple[types.ModuleType, Graph]:
    """`load_compiled` for the circuit in `text` (options as `compile_source`); `filename`
    is used in messages."""
    compiled = _compiled(text, filename, target, wrt, **options)
    return _module(compiled, filename, target), compiled.forward


def load_source(text: str, filename: str = "<string>", target: str = "python",
                wrt: Names = None, **options) -> types.ModuleType:
    """`load` for the circuit in `text`; `filename` is used in messages."""
    return _module(_compiled(text, filename, target, wrt, **options), filename, target)


def _compiled(text: str, filename: str, target: str, wrt: Names, **options) -> cache.Compiled:
    """The module for `target` compiled from `text`, taken from the cache or made and kept
    there: every argument is part of the cache key."""
    _emitter(target, options.get("dtype", "float64"))  # a ValueError before the cache is looked at
    given = inspect.signature(compile_source).bind(text, filename, target, wrt, **options)
    given.apply_defaults()
    arguments = given.arguments
    options = {name: value for name, value in arguments.items()
               if name not in ("text", "filename", "target")}
    wrt, fix = arguments["wrt"], arguments["fix"]
    source = once(lambda: read(text, filename, arguments["sizes"], arguments["seed"]))
    return cache.compiled(
        text, filename, target, options,
        lambda: _generate(source(), target, wrt, fix, arguments["hessian"], arguments["jvp"],
                          arguments["elements"], arguments["dtype"]),
        f"<circuitc {filename}>", lambda: graphs(source(), wrt, fix)[0])


def _module(compiled: cache.Compiled, filename: str, target: str = "python") -> types.ModuleType:
    """A new module running `compiled`'s code (for numba, imported from a file:
    `numba_modules`)."""
    if target == "numba":
        from . import numba_modules

        return numba_modules.load(compiled.source)
    module = types.ModuleType(Path(filename).stem)
    module.__file__ = f"<circuitc {filename}>"
    shown_in_tracebacks(module.__file__, compiled.source)
    for code in compiled.code:
        exec(code, module.__dict__)  # noqa: S102 (our own output, or the user's own cache)
    return module


def _emitter(target: str, dtype: str = "float64"):
    """The emitter of `target`; a `ValueError` naming the targets for an unknown one, or
    saying why it cannot compute in `dtype` (`dtype_error`)."""
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; the targets are {', '.join(TARGETS)}")
    why = dtype_error(target, dtype)
    if why is not None:
        raise ValueError(f"dtype={dtype!r}: {why}")
    return TARGETS[target]
