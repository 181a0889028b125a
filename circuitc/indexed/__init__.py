"""The indexed (whole-bus) form of a bus circuit: an IR of stages over whole buses.

`planner.plan` makes a circuit's plan (`ir.Plan`), `ad` differentiates it (reverse and
forward mode, as plan-to-plan transformations), and the printers in `emit` write it as
NumPy code (`emit.whole`) or Python loops (`emit.loops`).
"""

from .planner import Unsupported, plan

__all__ = ["Unsupported", "plan"]
