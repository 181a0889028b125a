"""The Python API: source text or file -> module source -> loaded module.

Every entry point raises `CircuitError` (with the file name and text attached)
for a bad `.circ` file, and nothing else for one.
"""

from __future__ import annotations

import linecache
import types
from pathlib import Path

from . import __version__
from .emit.python import emit
from .errors import CircuitError
from .grad import grad
from .graph import Graph
from .lower import lower
from .parse import parse
from .passes import optimize


def read_source(path: str | Path) -> str:
    """The text of a `.circ` file: UTF-8, an optional BOM, `\\r\\n` line ends accepted."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise CircuitError(f"cannot read {str(path)!r}: {e.strerror or e}").attach(str(path), "") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise CircuitError(f"not UTF-8: byte 0x{data[e.start]:02x} at line {line}, "
                           f"column {column}").attach(str(path), "") from None
    return text.replace("\r\n", "\n")


def compile_graphs(text: str, filename: str = "<string>") -> tuple[Graph, Graph]:
    """The optimized forward graph of a circuit and its optimized gradient graph."""
    text = text.removeprefix("\ufeff").replace("\r\n", "\n")
    try:
        forward = optimize(lower(parse(text), filename))
        return forward, optimize(grad(forward))
    except CircuitError as e:
        raise e.attach(filename, text)


def compile_source(text: str, filename: str = "<string>") -> str:
    """The Python module for the circuit in `text`; `filename` is used in messages."""
    return emit(*compile_graphs(text, filename), __version__)


def compile_file(path: str | Path) -> str:
    """The Python module for the `.circ` file at `path`."""
    return compile_source(read_source(path), str(path))


def load(path: str | Path) -> types.ModuleType:
    """Compile the `.circ` file at `path` in memory and import the result."""
    source = compile_file(path)
    module = types.ModuleType(Path(path).stem)
    module.__file__ = f"<circuitc {path}>"
    # Let tracebacks show the generated lines.
    linecache.cache[module.__file__] = (len(source), None, source.splitlines(True), module.__file__)
    exec(compile(source, module.__file__, "exec"), module.__dict__)  # noqa: S102 (our own output)
    return module


def evaluate(module: types.ModuleType, at: dict[str, float]) -> tuple[dict, dict]:
    """Each output's value at `at`, and each output's gradient as `{output: {input: value}}`."""
    args = [at[name] for name in module.INPUTS]
    value = module.forward(*args)
    outputs = dict(zip(module.OUTPUTS, value if len(module.OUTPUTS) > 1 else (value,)))
    gradients = {}
    for k, out in enumerate(module.OUTPUTS):
        seeds = [float(j == k) for j in range(len(module.OUTPUTS))]
        gradients[out] = dict(zip(module.INPUTS, module.backward(*args, *seeds)[1]))
    return outputs, gradients
