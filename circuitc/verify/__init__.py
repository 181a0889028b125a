"""Numerical gradient checking: does `backward` agree with finite differences?

`verify_circuit(module, forward, ...)` compares the gradients the generated module's
`backward` returns with numerical derivatives of its `forward`, at one or more
points, and returns a `Report`: one `Check` per (output, input in `WRT`) and point,
each with a verdict `pass`, `fail`, `skip` (the finite difference straddles a kink)
or `domain` (the circuit, or its finite difference, is undefined there).

Any module that follows the generated-module contract can be checked. Without the
circuit's graph (`forward` None) there are no kinks and no blame, and the complex
step evaluates the module's `forward` on complex numbers, if it accepts them
(else central differences, with a note). With a `reference` (the module circuitc
generates from the circuit of `forward`), each point also compares the module with
it: where they differ the report fails and names the first wire whose value or
adjoint differs (`Mismatch`), rather than blaming a gate of the circuit.

The package by job: `first` (`verify_circuit`: the points and the run over them),
`checks` (one point: the numerical derivatives, steps, retries, tolerances, kinks and
domains), `second` (`verify_hessian`), `blame` (a failure blamed on a gate, each gate
checked on its own), `compare` (a module against its circuit's), `checked` (the module
checked and its circuit's graph) and `report` (the records, their text and JSON). The
finite differences and drawn values are `circuitc.numerics`, which `circuitc step`
shares.
"""

from ..numerics import DIFFERENCES, default_h, difference
from .checks import DEFAULT_TOLERANCES
from .first import verify_circuit
from .report import Blame, Check, Mismatch, PointReport, Report, report_dict, report_text, summary
from .second import SECOND_ORDER_TOLERANCES, verify_hessian

# What other code uses: the checks, their records and reports (`report`), and the
# numerics `step` shares (`numerics`).
__all__ = ["DEFAULT_TOLERANCES", "DIFFERENCES", "SECOND_ORDER_TOLERANCES", "Blame", "Check",
           "Mismatch", "PointReport", "Report", "default_h", "difference", "report_dict",
           "report_text", "summary", "verify_circuit", "verify_hessian"]
