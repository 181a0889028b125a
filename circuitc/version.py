"""circuitc's version, which generated modules and the compile cache's keys carry."""

__version__ = "0.1.0"
