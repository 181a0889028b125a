"""What the playground's page asks of circuitc, answered in the browser under Pyodide (its
Web Worker calls `handle`) and testable here under CPython.

`handle(request)` takes a JSON object and returns one, never raising for anything wrong
with the circuit or the values (those are answered as diagnostics). A request names the
circuit by its `.circ` `text` and a file `name` for messages (`neuron.circ`), the point
`at` (input values by name: numbers, nested lists for buses; the rest at their
defaults), and an `op`:

- `show`: the circuit's inputs, outputs, `circuitc eval --json`'s document at the
  point, the drawing as dot text (`elements`: element by element for a circuit with
  buses), and the generated module for `target` (`python` or `numpy`);
- `step`: `circuitc step`'s `method` (`random`, `numerical`, `analytic`) with
  `step_size`, `seed` and `minimize`: the point reached (`after`) and the report;
- `verify`: `circuitc verify`'s report at the point.

Every answer has `diagnostics`: each error or warning with its span and its rendering
as the commands print it (`file:line:col: error: ...`, the caret, the help lines).
Everything here goes through the notebook API (`circuitc.circuit`), so the page shows
the numbers the commands print.
"""

from __future__ import annotations

import json

from .. import api, draw
from ..errors import CircuitError, CircuitErrors
from ..notebook import Circuit
from ..report import json_safe

# The last circuit compiled, by (text, name): the page asks about one circuit at many
# points (each slider move, each step), and compiles again only when the text changes.
_last: dict[tuple[str, str], Circuit] = {}


def handle(request: str) -> str:
    """The JSON answer to the JSON `request` (see the module docstring)."""
    r = json.loads(request)
    op = {"show": show, "step": step, "verify": verify}[r["op"]]
    return json.dumps(json_safe(op(r)))


def compiled(text: str, name: str) -> Circuit:
    """The circuit `text`, compiled for the python target (`CircuitError` if it does not)."""
    key = (text, name)
    if key not in _last:
        _last.clear()
        _last[key] = Circuit(text, name, name=name.removesuffix(".circ"))
    return _last[key]


def diagnostic(e: CircuitError) -> list[dict]:
    """`e` (each error of a `CircuitErrors`) as `{severity, message, span, text}`; `text`
    is the whole rendering, once, on the first."""
    errors = e.errors if isinstance(e, CircuitErrors) else [e]
    found = [{"severity": x.severity, "message": x.message,
              "span": list(x.span) if x.span else None, "text": ""} for x in errors]
    found[0]["text"] = e.render()
    return found


def _failed(e: CircuitError) -> dict:
    return {"ok": False, "diagnostics": diagnostic(e)}


def _warnings(c: Circuit) -> list[dict]:
    return [d for w in c.warnings for d in diagnostic(w)]


def _run_failure(e: Exception, c: Circuit) -> CircuitError:
    """A gate's error at run time, at its place in the circuit where circuitc can tell."""
    return (e if isinstance(e, CircuitError)
            else api.run_error(e, c.filename, c.text)
            or CircuitError(str(e)).attach(c.filename, c.text))


def show(r: dict) -> dict:
    """The circuit, its values at the point, its drawing and its module."""
    try:
        c = compiled(r["text"], r["name"])
    except CircuitError as e:
        return _failed(e)
    answer = {"ok": True, "diagnostics": _warnings(c), "outputs": list(c.outputs),
              "inputs": [{"name": n, "shape": list(c.shapes.get(n, ())),
                          "default": c.defaults.get(n)} for n in c.inputs],
              "buses": draw.bus_circuit(c.text, c.filename) is not None,
              "code": _code(c, r.get("target", "python"))}
    at = r.get("at") or {}
    # Without a value for every input there is nothing to evaluate; the drawing then
    # shows what is known (its `missing` names the inputs without a value).
    unknown = [n for n in c.inputs if n not in at and c.defaults.get(n) is None]
    try:
        answer["evaluation"] = None if unknown else c.gradient(at)
        picture = c.draw(at, elements=bool(r.get("elements")))
    except (CircuitError, ArithmeticError, ValueError) as e:
        answer.update(ok=False, evaluation=None)
        answer["diagnostics"][:0] = diagnostic(_run_failure(e, c))
        return answer
    dot = picture.data("dot")
    why = draw.too_big_to_lay_out(dot)
    answer.update(dot=None if why else dot, missing=unknown,
                  too_big=why and f"not drawn: too big to lay out in seconds: {why}")
    return answer


def _code(c: Circuit, target: str) -> str:
    """The generated module for `target`: the python one that runs here, or the numpy
    one (shown only: the browser has no NumPy)."""
    if target == "python":
        return c.source
    return api.compile_source(c.text, c.filename, target)


def step(r: dict) -> dict:
    """One step of `circuitc step` from the point: the point reached and the report."""
    def run(c: Circuit) -> dict:
        done = c.step(r.get("at") or {}, method=r["method"], step_size=float(r["step_size"]),
                      seed=int(r.get("seed", 0)), minimize=bool(r.get("minimize")))
        return {"before": done.before, "after": done.after, "text": str(done),
                "html": done._repr_html_()}
    return _running(r, run)


def verify(r: dict) -> dict:
    """`circuitc verify` at the point: its report as a table and as text."""
    def run(c: Circuit) -> dict:
        report = c.verify(r.get("at") or {})
        return {"passed": report.ok, "text": str(report), "html": report._repr_html_()}
    return _running(r, run)


def _running(r: dict, run) -> dict:
    """`run(circuit)`'s answer, or the circuit's error, or the error it raised running."""
    try:
        c = compiled(r["text"], r["name"])
    except CircuitError as e:
        return _failed(e)
    try:
        return {"ok": True, "diagnostics": [], **run(c)}
    except (CircuitError, ArithmeticError, ValueError) as e:
        return _failed(_run_failure(e, c))
