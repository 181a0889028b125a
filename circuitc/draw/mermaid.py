"""A drawing as a Mermaid flowchart (`to_mermaid`), for Markdown files on code-hosting sites.
"""

from __future__ import annotations

from .bus import BusDrawing
from .drawing import Drawing
from .scene import STYLE, scene_and_title

_MERMAID_SHAPES = {  # kind -> (open, close) around the quoted label
    "input": ("([", "])"),
    "gate": ("(", ")"),
    "output": ("(((", ")))"),
    "const": ("[/", "/]"),
    "fork": ("((", "))"),
    "copy": ("([", "])"),
    "wire": ("(", ")"),
}
_MERMAID_WORDS = {"name": "{}", "value": "value {}", "grad": "grad {}", "expr": "{}",
                  "access": "{}", "note": "{}"}
# Mermaid reads `#code;` as a character entity inside quoted labels; these keep
# quotes, entities, HTML and markdown-string backticks in a label literal.
_MERMAID_ESCAPES = {"#": "#35;", '"': "#quot;", "&": "#amp;", "<": "#lt;", ">": "#gt;",
                    "`": "#96;", "\n": " ", "\r": " "}


def _mermaid_text(text: str) -> str:
    return "".join(_MERMAID_ESCAPES.get(c, c) for c in text)


def _mermaid_lines(lines) -> list[str]:
    return [_mermaid_text(_MERMAID_WORDS[style].format(text)) for style, text in lines]


def to_mermaid(d: Drawing | BusDrawing) -> str:
    """A Mermaid flowchart of the drawing, for Markdown files on code-hosting sites.

    Mermaid cannot colour parts of a label, so a wire's lines are spelt out:
    its name, `value 0.8808`, `grad -0.105`.
    """
    scene = scene_and_title(d)[0]
    out = ["flowchart LR"]
    for shape in scene.shapes:
        left, right = _MERMAID_SHAPES[shape.kind]
        label = "<br/>".join([_mermaid_text(shape.label) or " "] + _mermaid_lines(shape.inner)
                             + _mermaid_lines(shape.lines))
        out.append(f'  {shape.id}{left}"{label}"{right}:::{shape.kind}')
    for wire in scene.wires:
        lines = _mermaid_lines(wire.lines)
        if wire.mark:
            lines.insert(0, wire.mark)
        arrow = "-->" if wire.arrow else "---"
        label = f'|"{"<br/>".join(lines)}"|' if lines else ""
        out.append(f"  {wire.tail} {arrow}{label} {wire.head}")
    used = {shape.kind for shape in scene.shapes}
    for kind, (fill, stroke) in STYLE.items():
        if kind in used:
            dashes = ",stroke-dasharray:4 3" if kind == "copy" else ""
            out.append(f"  classDef {kind} fill:{fill},stroke:{stroke},color:#1f2328{dashes}")
    return "\n".join(out) + "\n"
