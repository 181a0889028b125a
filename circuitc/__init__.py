"""circuitc: compile `.circ` circuits into Python modules with checked reverse-mode gradients.

    >>> import circuitc
    >>> source = circuitc.compile_source("f = x * y")
    >>> module = circuitc.load("circuits/neuron.circ")
    >>> module.backward(*module.DEFAULTS.values())
"""

__version__ = "0.1.0"

from .api import compile_file, compile_graphs, compile_source, evaluate, load, read_source  # noqa: E402
from .errors import CircuitError  # noqa: E402

__all__ = ["CircuitError", "compile_file", "compile_graphs", "compile_source", "evaluate", "load",
           "read_source", "__version__"]
