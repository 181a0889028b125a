"""A drawing as Graphviz dot text (`to_dot`): left to right, values green, gradients red.
"""

from __future__ import annotations

import html

from .bus import BusDrawing
from .drawing import Drawing
from .scene import (
    GRAD_COLOR,
    MARKS,
    NOTE_COLOR,
    STYLE,
    VALUE_COLOR,
    drawn_function,
    scene_and_title,
    values_of,
)

_FONT = "Helvetica,Arial,sans-serif"
_DOT_SHAPES = {
    "input": 'shape=ellipse, style=filled',
    "gate": 'shape=box, style="rounded,filled", margin="0.12,0.06"',
    "output": 'shape=ellipse, style=filled, peripheries=2',
    "const": 'shape=box, style="dashed,filled"',
    "fork": 'shape=point, width=0.07, style=filled',
    "copy": 'shape=ellipse, style="dashed,filled", fontsize=11, margin="0.04,0.02"',
    "wire": 'shape=box, style="rounded,filled", margin="0.12,0.06"',
}


_DOT_LINES = {  # a label line's style -> its Graphviz markup
    "name": "<i>{}</i>",  # a wire's .circ name
    "value": f'<font color="{VALUE_COLOR}">{{}}</font>',
    "grad": f'<font color="{GRAD_COLOR}">{{}}</font>',
    "expr": f'<font color="{NOTE_COLOR}" point-size="11">{{}}</font>',  # a wire's definition
    "access": "{}",  # how a wire is read: `W1[i,j]`
    "note": f'<font color="{NOTE_COLOR}"><i>{{}}</i></font>',  # `sum over j`
}


def _dot_line(style: str, text: str) -> str:
    return _DOT_LINES[style].format(html.escape(text))


def _dot_string(text: str) -> str:
    """`text` inside a double-quoted Graphviz string: quotes and backslashes escaped."""
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


def to_dot(d: Drawing | BusDrawing) -> str:
    """Graphviz source for the drawing: left to right, values green, gradients red."""
    scene, title = scene_and_title(d)
    title = html.escape(title)
    if values_of(d) is not None:
        title += (f'    <font color="{VALUE_COLOR}">value</font>'
                  f'    <font color="{GRAD_COLOR}">gradient of {html.escape(drawn_function(d))}</font>')
    out = [
        "digraph circuit {",
        (f'  graph [rankdir=LR, fontname="{_FONT}", fontsize=11, nodesep=0.3, ranksep=0.45, '
         f"forcelabels=true, labelloc=b, label=<{title}>];"),
        f'  node [fontname="{_FONT}", fontsize=13, penwidth=1.2];',
        f'  edge [fontname="{_FONT}", fontsize=11, arrowsize=0.7, color="#57606a"];',
    ]
    for shape in scene.shapes:
        fill, stroke = STYLE[shape.kind]
        label = "" if shape.kind == "fork" else f"label=<{html.escape(shape.label)}>, "
        if shape.inner:
            label = (f"label=<{html.escape(shape.label)}<br/>"
                     + "<br/>".join(_dot_line(*line) for line in shape.inner) + ">, ")
        look = _DOT_SHAPES[shape.kind]
        if shape.kind == "gate" and len(shape.label) <= 2:  # `*`, `+`, `**`: a round gate
            look = "shape=circle, style=filled, width=0.4, fontsize=15"
        if shape.lines:
            look += ", xlabel=<" + "<br/>".join(_dot_line(*line) for line in shape.lines) + ">"
        if shape.tooltip:
            look += f', tooltip="{_dot_string(shape.tooltip)}"'
        out.append(f'  {shape.id} [{label}{look}, fillcolor="{fill}", color="{stroke}"];')
    three = {wire.head for wire in scene.wires if wire.mark == MARKS[2]}  # `where`'s
    for wire in scene.wires:
        attrs = []
        if wire.lines:
            attrs.append("label=<" + "<br/>".join(_dot_line(*line) for line in wire.lines) + ">")
        if wire.mark:  # the first operand enters from above, the second from below; the
            # three of a `where` where Graphviz routes them (ports fail to route there)
            port = "" if wire.head in three else "headport=nw, " if wire.mark == MARKS[0] else (
                "headport=sw, ")
            attrs.append(f'headlabel=<{wire.mark}>, {port}labeldistance=1.6, '
                         'labelangle=-40, labelfontsize=10')
        if not wire.arrow:
            attrs.append("arrowhead=none")
        out.append(f"  {wire.tail} -> {wire.head}" + (f" [{', '.join(attrs)}]" if attrs else "")
                   + ";")
    out.append("}")
    return "\n".join(out) + "\n"
