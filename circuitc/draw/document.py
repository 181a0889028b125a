"""A drawing as plain data (`describe`) and JSON text (`to_json`): the documented schema
(docs/drawing.md), version `JSON_VERSION`.
"""

from __future__ import annotations

import json

from ..graph import elements
from ..report import json_number
from .bus import BusDrawing, element_values, nested_lists, output_seeds
from .drawing import Drawing
from .scene import node_label

JSON_VERSION = 1


def _describe_buses(d: BusDrawing) -> dict:
    """A bus-level drawing as plain data (docs/drawing.md documents the schema)."""
    c, values, grads = d.circuit, d.drawing.values, d.drawing.grads

    def exact(numbers: list | None, shape):
        if numbers is None or numbers and all(x is None for x in numbers):
            return None  # without values, or not evaluated (no output depends on it)
        return nested_lists([json_number(x) for x in numbers], shape)
    nodes = []
    for k, node in enumerate(c.nodes):
        nodes.append({
            "id": k,
            "kind": node.kind,
            "name": node.name,
            "shape": list(node.shape),
            "label": node.label,
            "expr": node.expr,
            "span": node.span and dict(zip(("line", "column", "end_line", "end_column"),
                                           node.span)),
            "value": exact(element_values(node, values), node.shape),
            "grad": exact(element_values(node, grads), node.shape),
        })
    at = d.drawing.at
    inputs = [(k, node) for k, node in enumerate(c.nodes) if node.kind == "input"]
    return {
        "version": JSON_VERSION,
        "level": "bus",
        "file": c.graph.filename,
        "sizes": dict(c.sizes),
        "inputs": [{"name": node.name, "node": k} for k, node in inputs],
        "outputs": [{"name": name, "node": k} for name, k in c.outputs],
        "at": at and {node.name: nested_lists([json_number(at[e]) for e in
                                          elements(node.name, node.shape)], node.shape)
                      for _, node in inputs},
        "seeds": d.drawing.seeds and {k: json_number(v) for k, v in output_seeds(d).items()},
        "nodes": nodes,
        "edges": [{"from": a.source, "to": a.target, "access": a.text,
                   "reductions": [{"op": r.op, "over": list(r.over), "range": r.range}
                                  for r in a.reductions]}
                  for a in c.accesses],
    }


def describe(d: Drawing | BusDrawing) -> dict:
    """The drawing as plain data; docs/drawing.md documents the schema (version 1)."""
    if isinstance(d, BusDrawing):
        return _describe_buses(d)
    g = d.graph
    where = {node.attr: i for i, node in enumerate(g.nodes) if node.op == "input"}
    nodes = []
    for i, node in enumerate(g.nodes):
        span = node.origin.span if node.origin else None
        value = node.attr if node.op == "const" else d.values[i] if d.values else None
        nodes.append({
            "id": i,
            "op": node.op,
            "label": node_label(node),
            "name": node.attr if node.op == "input" else node.name,
            "span": span and dict(zip(("line", "column", "end_line", "end_column"), span)),
            "calls": [{"gate": gate, **dict(zip(("line", "column", "end_line", "end_column"), at))}
                      for at, gate in node.origin.calls] if node.origin else [],
            "element": node.origin.element if node.origin else None,
            "value": json_number(value),
            "grad": json_number(d.grads[i]) if d.grads else None,
        })
    return {
        "version": JSON_VERSION,
        "file": g.filename,
        "graph": "optimized" if d.optimized else "source",
        "inputs": [{"name": name, "node": where.get(name)} for name in g.inputs],
        "outputs": [{"name": name, "node": n} for name, n in g.outputs],
        "at": d.at and {k: json_number(v) for k, v in d.at.items()},
        "seeds": d.seeds and {k: json_number(v) for k, v in d.seeds.items()},
        "nodes": nodes,
        "edges": [{"from": a, "to": i, "arg": k}
                  for i, node in enumerate(g.nodes) for k, a in enumerate(node.args)],
    }


def to_json(d: Drawing | BusDrawing) -> str:
    """`describe(d)` as JSON text, indented, non-ASCII characters as they are."""
    return json.dumps(describe(d), indent=2, ensure_ascii=False) + "\n"
