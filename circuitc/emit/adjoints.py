"""What the python target's `backward` writes for each node of the gradient graph.

`adjoint_texts(forward, backward)` writes the module that `emit.python.emit` writes for
the two graphs and keeps, for each node of `backward`, the text `backward` reads its
value by (an identifier, or the expression written in its place where it is inlined)
and, for a node with a line of its own, that line (`d_s = d_f * (f * (1.0 - f))`).
Identifiers are the module's own, renames included (`d_lambda_` for a wire `lambda`).
`circuitc.analysis` reads it to say how circuitc differentiates a wire.
"""

from __future__ import annotations

from ..graph import Graph
from .python import PythonWriter


class _Kept(PythonWriter):
    """The python module's writer, keeping what each line assigns and the entries of
    `backward`'s nodes (the `assigned` and `function` hooks; the text is unchanged)."""

    def __init__(self, forward: Graph, backward: Graph):
        super().__init__(forward, backward, "")
        self.assigned_texts: dict[int, str] = {}
        self.entries: list[tuple[str, int, int]] = []

    def assigned(self, node: int, ident: str, expr: str) -> str:
        # `forward`'s lines come first and `backward`'s after, for the same node numbers:
        # the last one kept is `backward`'s.
        self.assigned_texts[node] = expr
        return expr

    def function(self, header, doc, graph, returns, *args, **kwargs):
        entries = super().function(header, doc, graph, returns, *args, **kwargs)
        if graph is self.backward:
            self.entries = entries
        return entries


def adjoint_texts(forward: Graph, backward: Graph) -> list[tuple[str, str | None]]:
    """Per node of `backward`: the text `backward` reads it by, and the line that assigns
    it (`ident = expression`) or None where there is none (an inlined gate, a parameter)."""
    module = _Kept(forward, backward)
    module.source()
    texts = []
    for node, (text, _, _) in enumerate(module.entries):
        expr = module.assigned_texts.get(node)
        texts.append((text, None if expr is None else f"{text} = {expr}"))
    return texts
