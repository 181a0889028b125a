"""The Python API: source text or file -> module source -> loaded module.

Every entry point raises `CircuitError` (with the file name and text attached)
for a bad `.circ` file, and nothing else for one.
"""

from __future__ import annotations

import codecs
import gc
import linecache
import types
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

from . import __version__
from .emit import numpy as numpy_target
from .emit import python as python_target
from .errors import CircuitError, Span, did_you_mean
from .grad import grad
from .graph import Graph
from .lower import lower
from .parse import parse
from .passes import dce, optimize


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


def compile_graphs(text: str, filename: str = "<string>",
                   wrt: Sequence[str] | None = None) -> tuple[Graph, Graph]:
    """The optimized forward graph of a circuit and its optimized gradient graph.

    The gradient graph computes the gradient with respect to the inputs in `wrt`
    (default: every input, in `INPUTS` order) and nothing that only other inputs need.
    """
    text = normalize(text)
    with _collector_paused():
        try:
            return differentiate(lower(parse(text), filename), wrt)
        except CircuitError as e:
            raise e.attach(filename, text)


@contextmanager
def _collector_paused():
    """The garbage collector paused for the block: the compiler makes millions of small
    objects and no cyclic garbage, and collecting would cost more than compiling (at
    10^5 gates, a third of the time to write the module)."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def _generate(text: str, filename: str, target: str, wrt: Sequence[str] | None
              ) -> tuple[str, Graph, Graph]:
    """The module source for `target`, and the two graphs it was written from."""
    emit = _emitter(target)
    with _collector_paused():
        forward, backward = compile_graphs(text, filename, wrt)
        return emit(forward, backward, __version__), forward, backward


def differentiate(graph: Graph, wrt: Sequence[str] | None = None) -> tuple[Graph, Graph]:
    """The optimized forward graph of a lowered graph, and its optimized gradient graph."""
    forward = optimize(graph)
    backward = grad(forward, _checked_wrt(forward, wrt))  # folded and simplified as it is built
    return forward, dce(backward, done=len(forward.nodes))


def _checked_wrt(graph: Graph, wrt: Sequence[str] | None) -> tuple[str, ...]:
    if wrt is None:
        return graph.inputs
    for k, name in enumerate(wrt):
        if name not in graph.inputs:
            raise CircuitError(f"--wrt names {name!r}, which is not an input"
                               + did_you_mean(name, graph.inputs))
        if name in wrt[:k]:
            raise CircuitError(f"--wrt names {name!r} twice")
    return tuple(wrt)


# The code targets: name -> emitter. `python` needs only `math`; `numpy` evaluates
# batches with broadcasting (circuitc itself never imports NumPy).
TARGETS = {"python": python_target.emit, "numpy": numpy_target.emit}


def compile_source(text: str, filename: str = "<string>", target: str = "python",
                   wrt: Sequence[str] | None = None) -> str:
    """The module for the circuit in `text`, for `target`; `filename` is used in messages.

    `backward` returns the gradient with respect to the inputs in `wrt` (the
    module's `WRT`), by default every input.
    """
    return _generate(text, filename, target, wrt)[0]


def compile_file(path: str | Path, target: str = "python", wrt: Sequence[str] | None = None) -> str:
    """The module for the `.circ` file at `path`, for `target`."""
    return compile_source(read_source(path), str(path), target, wrt)


def load(path: str | Path, target: str = "python", wrt: Sequence[str] | None = None) -> types.ModuleType:
    """Compile the `.circ` file at `path` for `target` in memory and import the result."""
    return load_compiled(path, target, wrt)[0]


def evaluate(module: types.ModuleType, at: dict[str, float]) -> tuple[dict, dict]:
    """Each output's value at `at`, and each output's gradient as `{output: {input: value}}`.

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


def load_compiled(path: str | Path, target: str = "python", wrt: Sequence[str] | None = None
                  ) -> tuple[types.ModuleType, Graph, Graph]:
    """`load(path, target, wrt)`, and the optimized forward and gradient graphs the module
    was generated from (`compile_graphs`): the file is read and compiled once."""
    return load_compiled_source(read_source(path), str(path), target, wrt)


def load_compiled_source(text: str, filename: str = "<string>", target: str = "python",
                         wrt: Sequence[str] | None = None
                         ) -> tuple[types.ModuleType, Graph, Graph]:
    """`load_compiled` for the circuit in `text`; `filename` is used in messages."""
    source, forward, backward = _generate(text, filename, target, wrt)
    module = types.ModuleType(Path(filename).stem)
    module.__file__ = f"<circuitc {filename}>"
    # Let tracebacks show the generated lines.
    linecache.cache[module.__file__] = (len(source), None, source.splitlines(True), module.__file__)
    exec(compile(source, module.__file__, "exec"), module.__dict__)  # noqa: S102 (our own output)
    return module, forward, backward


def _emitter(target: str):
    """The emitter of `target`; a `ValueError` naming the targets for an unknown one."""
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; the targets are {', '.join(TARGETS)}")
    return TARGETS[target]
