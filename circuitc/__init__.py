"""circuitc: compile `.circ` circuits into Python modules with checked reverse-mode gradients.

    >>> import circuitc
    >>> source = circuitc.compile_source("f = x * y")
    >>> module = circuitc.load("circuits/neuron.circ")
    >>> module.backward(*module.DEFAULTS.values())
    >>> neuron = circuitc.circuit("f = sigmoid(a*x + b*y + c)")  # for notebooks
"""

from .api import (
    compile_file,
    compile_graphs,
    compile_source,
    evaluate,
    lint_source,
    load,
    read_source,
)
from .errors import CircuitError, CircuitErrors, CircuitWarning
from .objective import objective
from .version import __version__

__all__ = ["Circuit", "CircuitError", "CircuitErrors", "CircuitWarning", "__version__", "circuit",
           "compile_file", "compile_graphs", "compile_source", "evaluate", "lint_source", "load",
           "objective", "read_source"]


def __getattr__(name: str):
    # The notebook API (`circuit`, `Circuit`) imports the verifier and the drawing code,
    # which `import circuitc` alone does not need: imported when first used.
    if name in ("circuit", "Circuit"):
        from . import notebook
        return getattr(notebook, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_ipython_extension(ipython) -> None:
    """`%load_ext circuitc`: the `%%circuit NAME [options]` cell magic (`circuitc.magic`)."""
    from .magic import register
    register(ipython)
