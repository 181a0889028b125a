"""circuitc: compile `.circ` circuits into Python modules with checked reverse-mode gradients.

    >>> import circuitc
    >>> source = circuitc.compile_source("f = x * y")
    >>> module = circuitc.load("circuits/neuron.circ")
    >>> module.backward(*module.DEFAULTS.values())
"""

__version__ = "0.1.0"

from .api import compile_file, compile_graphs, compile_source, evaluate, load, read_source
from .errors import CircuitError
from .objective import objective

__all__ = ["CircuitError", "__version__", "compile_file", "compile_graphs", "compile_source",
           "evaluate", "load", "objective", "read_source"]
