"""Circuits in a notebook: `circuit(path_or_text)` compiles and loads a circuit as a
`Circuit`, which evaluates, draws, checks and climbs, and shows itself in Jupyter.

What `circuit` reads: a `pathlib.Path` is a file; a `str` is a file when it is one
line that ends in `.circ` or names something that exists, and `.circ` source text
otherwise (called `<circuit>` in messages). A bad circuit raises `CircuitError`,
whose message is the usual `file:line:col: error:` diagnostic with its caret (and
which IPython shows without a traceback).

Everything here is a thin layer over the API and the commands' own functions:
`gradient` is `circuitc eval --json`'s document (`values.evaluation`), `draw` the
drawing of `circuitc graph` (`draw`), `verify` and `step` the reports of
`circuitc verify` and `circuitc step` (`verify`, `step`). Their results display as
HTML (and SVG) in a notebook and as the commands' text elsewhere. Input values are
given by input name: a number, or for a bus a nested list of its shape (or one
number for every element); inputs not given take their defaults.
"""

from __future__ import annotations

import html
import os
from functools import cached_property
from pathlib import Path

from . import api, draw
from .errors import CircuitError
from .report import values as shown_values
from .step import climb, climb_text
from .values import (
    buses,
    element_values,
    elements_of,
    evaluation,
    input_shapes,
    known_point,
    missing_values,
    point,
)
from .verify import report_dict, report_text, summary, verify_circuit, verify_hessian

TEXT = "<circuit>"  # the name messages give circuit text


def circuit(path_or_text: str | os.PathLike, target: str = "python", wrt=None, fix=None,
            sizes: dict[str, int] | None = None, seed: int = 0, dtype: str = "float64"
            ) -> Circuit:
    """The circuit in a file or in `.circ` text (see the module docstring), compiled for
    `target` and loaded; `wrt`, `fix`, `sizes`, `seed` and `dtype` as in `circuitc.load`."""
    options = {"target": target, "wrt": wrt, "fix": fix, "sizes": sizes, "seed": seed,
               "dtype": dtype}
    if isinstance(path_or_text, os.PathLike) or _names_a_file(path_or_text):
        path = Path(path_or_text)
        return Circuit(api.read_source(path), str(path), name=path.stem, **options)
    if not isinstance(path_or_text, str):
        raise TypeError(f"expected .circ text or a path, got {type(path_or_text).__name__}")
    return Circuit(path_or_text, TEXT, **options)


def _names_a_file(text) -> bool:
    return (isinstance(text, str) and "\n" not in text
            and (text.endswith(".circ") or os.path.exists(text)))


class Circuit:
    """A compiled and loaded circuit.

    `module` is the loaded module (as `circuitc.load` returns it), `forward` and
    `backward` its functions, `source` its code; `inputs`, `outputs`, `wrt`,
    `shapes` and `defaults` are the module's `INPUTS`, `OUTPUTS`, `WRT`, `SHAPES`
    and `DEFAULTS`; `text` is the circuit's `.circ` text and `filename` the name
    messages give it; `warnings` are its `CircuitWarning`s (`circuitc.lint_source`),
    which its display shows.
    """

    def __init__(self, text: str, filename: str = TEXT, *, name: str | None = None,
                 target: str = "python", wrt=None, fix=None,
                 sizes: dict[str, int] | None = None, seed: int = 0, dtype: str = "float64"):
        self.text, self.filename = api.normalize(text), filename
        self.name = name or "circuit"
        self.target = target
        self._options = {"wrt": wrt, "fix": fix, "sizes": sizes, "seed": seed, "dtype": dtype}
        self._hessian_modules = {}  # target -> the module compiled with hessian=True
        self.module, self.graph = api.load_compiled_source(self.text, filename, target,
                                                           **self._options)
        self.forward, self.backward = self.module.forward, self.module.backward
        self.inputs, self.outputs = tuple(self.module.INPUTS), tuple(self.module.OUTPUTS)
        self.wrt = tuple(self.module.WRT)
        self.shapes = {name: tuple(shape) for name, shape in self.module.SHAPES.items()}
        self.defaults = dict(self.module.DEFAULTS)
        self.warnings = api.lint_source(self.text, filename)

    @cached_property
    def source(self) -> str:
        """The generated module's code."""
        return api.compile_source(self.text, self.filename, self.target, **self._options)

    def _with_hessian(self, target: str):
        """The module compiled with `hessian=True`, for second derivatives (compiled once)."""
        if target not in self._hessian_modules:
            self._hessian_modules[target] = api.load_compiled_source(
                self.text, self.filename, target, hessian=True, **self._options)[0]
        return self._hessian_modules[target]

    def _given(self, values: dict | None, at: dict) -> dict[str, float]:
        """The element values of the inputs given by name (`InputError` if one does not fit)."""
        shapes = input_shapes(self.module)
        given = {}
        for name, value in {**(values or {}), **at}.items():
            given.update(element_values(name, value, shapes))
        return given

    def gradient(self, values: dict | None = None, /, **at) -> dict:
        """The outputs and their gradients at the point given by name (the rest at their
        defaults): `{"inputs", "outputs", "gradients"}`, as `circuitc eval --json` prints
        them (`gradients[output][input]`; a bus as a nested list). A name that cannot be a
        keyword argument (a Python keyword) goes in the dict `values`."""
        return evaluation(self.module, _point(self.module, self._given(values, at)))

    def draw(self, values: dict | None = None, /, *, elements: bool = False, **at) -> Picture:
        """The drawing of `circuitc graph`: each wire with its value and gradient at the
        point given by name (the rest at their defaults), where they are known (an input
        with neither a value nor a default leaves out what depends on it: the picture's
        `missing`), or the structure alone for a circuit with no value at all. A circuit
        with buses is drawn bus by bus, or gate by gate with `elements` (`--elements`; an
        input named `elements` goes in the dict `values`)."""
        given = self._given(values, at)
        bus_view = None if elements else draw.bus_circuit(self.text, self.filename,
                                                           self._options["sizes"],
                                                           self._options["seed"])
        graph = bus_view.graph if bus_view else self.graph
        at, missing = known_point(graph.inputs, graph.defaults, given)
        try:
            if at is None:
                drawing = draw.bus_structure(bus_view) if bus_view else draw.structure(graph)
                missing = []
            else:
                drawing = (draw.bus_with_values(bus_view, at) if bus_view
                           else draw.with_values(graph, at))
        except CircuitError as e:
            raise e.attach(self.filename, self.text) from None
        return Picture(drawing, self.name, missing)

    def verify(self, at: dict | None = None, *, points: int = 0, seed: int = 0,
               rtol: float | None = None, atol: float | None = None, h: float | None = None,
               difference: str = "central", fast: bool = False, order: int = 1
               ) -> Verification:
        """`circuitc verify`: the gradients (`order=2`: second derivatives) against
        numerical derivatives at the point `at` (inputs by name; the rest at their
        defaults, or drawn) and at `points` random points; options as the command's."""
        if order not in (1, 2):
            raise ValueError(f"order must be 1 or 2, got {order!r}")
        module = self.module if order == 1 else self._with_hessian(self.target)
        given = self._given(at, {})
        options = {"n_points": points, "seed": seed, "difference": difference, "rtol": rtol,
                   "atol": atol, "h": h, "fast": fast, "target": self.target}
        check = verify_circuit if order == 1 else verify_hessian
        return Verification(check(api.elementwise(module), self.graph, given, **options))

    def step(self, at: dict | None = None, *, method: str = "analytic", steps: int = 1,
             step_size: float = 0.01, h: float | None = None, difference: str = "central",
             tries: int = 100, tweak: float = 0.01, seed: int = 0, minimize: bool = False
             ) -> Step:
        """`circuitc step`: move the inputs of `wrt` to raise the first output (lower it
        with `minimize`) from the point `at` (the rest at their defaults); options as the
        command's. The result's `after` is the point reached, to step on from."""
        newton = "python" if self.target == "numpy" else self.target  # numpy has no hessian
        module = self._with_hessian(newton) if method == "newton" else self.module
        result = climb(api.elementwise(module), _point(module, self._given(at, {})),
                       method=method, steps=steps, step_size=step_size, h=h, difference=difference,
                       tries=tries, tweak=tweak, seed=seed, minimize=minimize)
        return Step(result, steps, step_size, self.shapes)

    # -- display --------------------------------------------------------------

    def _signature(self) -> tuple[str, str]:
        """The inputs (with shapes and defaults) and the outputs, as text."""
        def named(name: str) -> str:
            shape = self.shapes.get(name, ())
            return f"{name}[{', '.join(map(str, shape))}]" if shape else name

        def default(name: str) -> str:  # a bus's only when every element has the same
            flat = set(elements_of(name, self.defaults[name], self.shapes.get(name, ())).values())
            return f" = {flat.pop()!r}" if len(flat) == 1 else ""
        inputs = [named(n) + (default(n) if n in self.defaults else "") for n in self.inputs]
        return ", ".join(inputs) or "none", ", ".join(map(named, self.outputs))

    def __repr__(self) -> str:
        inputs, outputs = self._signature()
        return f"<Circuit {self.name}: inputs {inputs}; outputs {outputs}>"

    def _repr_html_(self) -> str:
        inputs, outputs = self._signature()
        try:
            drawn = self.draw()
        except CircuitError as e:  # no value at the defaults (`log(-1)`): say why
            picture = f"<pre>{html.escape(e.render())}</pre>"
        else:
            picture = drawn._html()
            if drawn.missing:  # inputs without a default: say what is left out
                picture += f"<p>{html.escape(missing_values(drawn.missing))}</p>"
        warnings = "".join(f"<pre>{html.escape(w.render())}</pre>" for w in self.warnings)
        return (f"<div><p><b>{html.escape(self.name)}</b>: inputs "
                f"<code>{html.escape(inputs)}</code>; outputs <code>{html.escape(outputs)}"
                f"</code></p>{highlight(self.text)}{warnings}{picture}</div>")


def _point(module, given: dict[str, float]) -> dict[str, float]:
    """Every input element's value for `module`: given, else its default."""
    flat = api.elementwise(module)
    return point(flat.INPUTS, flat.DEFAULTS, given)


def highlight(text: str) -> str:
    """`.circ` text as HTML, highlighted by Pygments when it is installed (as it is
    wherever IPython is), else as plain preformatted text."""
    try:
        from pygments import highlight as pygmentize
        from pygments.formatters import HtmlFormatter

        from .lexer import CircLexer
    except ImportError:
        return f"<pre>{html.escape(text)}</pre>"
    return pygmentize(text, CircLexer(), HtmlFormatter(noclasses=True))


class Picture:
    """A drawing (`draw.Drawing` or `draw.BusDrawing`) that shows itself as SVG in a
    notebook and saves itself in the format its file name says; `missing` names the
    inputs without a value, whose values it leaves out."""

    def __init__(self, drawing, name: str, missing=()):
        self.drawing, self.name, self.missing = drawing, name, list(missing)

    def data(self, fmt: str) -> str | bytes:
        """The drawing in `fmt` (`draw.FORMATS`): svg and png need Graphviz's `dot`."""
        return draw.written(self.drawing, fmt)

    @cached_property
    def svg(self) -> str:
        return self.data("svg").decode("utf-8")

    def save(self, path: str | os.PathLike, format: str | None = None) -> None:
        """Write the drawing to `path`, in `format` or else the one its suffix names
        (.svg .png .dot .gv .json .mmd)."""
        path = Path(path)
        fmt = format or draw.SUFFIXES.get(path.suffix.lower())
        if fmt is None:
            raise ValueError(f"cannot tell the format of {str(path)!r} from its suffix; "
                             f"give format= one of {', '.join(draw.FORMATS)}")
        data = self.data(fmt)
        if isinstance(data, str):
            path.write_text(data, encoding="utf-8")
        else:
            path.write_bytes(data)

    def __repr__(self) -> str:
        return f"<drawing of {self.name}: .save(path) writes svg, png, dot, json or mmd>"

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        try:
            return {"image/svg+xml": self.svg, "text/plain": repr(self)}
        except draw.GraphvizError as e:
            return {"text/plain": f"{self!r}\n(no picture: {e})"}

    def _html(self) -> str:
        """The SVG picture to put inside HTML, or why there is none."""
        try:
            svg = self.svg
        except draw.GraphvizError as e:
            return f"<p>(no picture: {html.escape(str(e))})</p>"
        return svg[svg.find("<svg"):]  # without the XML prolog, which HTML does not take


_VERDICT_COLORS = {"pass": "#1a7f37", "fail": "#cf222e"}


class Verification:
    """The report of `Circuit.verify`: `ok`, `report` (a `verify.Report`), `as_dict()`
    (what `verify --json` prints); the command's text as `str` and `repr`, a table of
    checks per point in a notebook."""

    def __init__(self, report):
        self.report = report

    @property
    def ok(self) -> bool:
        return self.report.ok

    def as_dict(self) -> dict:
        return report_dict(self.report)

    def __str__(self) -> str:
        return report_text(self.report)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        r = self.report
        color = _VERDICT_COLORS["pass" if r.ok else "fail"]
        parts = [f'<p style="color: {color}"><b>{html.escape(summary(r))}</b></p>']
        what = "gradient" if r.order == 1 else "second derivative"
        for k, p in enumerate(r.points, 1):
            parts.append(f"<p>point {k} ({html.escape(p.label)}): "
                         f"<code>{html.escape(shown_values(p.at))}</code></p>")
            if p.domain is not None:
                parts.append(f"<p>outside the domain: {html.escape(p.domain)}</p>")
                continue
            rows = [[c.name, _number(c.analytic), _number(c.numeric), _error(c.abs_error),
                     _error(c.rel_error), c.verdict + (f": {c.reason}" if c.reason else "")]
                    for c in p.checks]
            colors = [_VERDICT_COLORS.get(c.verdict) for c in p.checks]
            parts.append(_html_table([what, "analytic", "numeric", "abs err", "rel err",
                                      "verdict"], rows, colors))
        parts.append("<details><summary>as text</summary>"
                     f"<pre>{html.escape(str(self))}</pre></details>")
        return "".join(parts)


def _number(x: float | None) -> str:
    return "" if x is None else repr(x)


def _error(x: float | None) -> str:
    return "" if x is None else f"{x:.1e}"


def _html_table(header: list[str], rows: list[list[str]], colors=None) -> str:
    """A table; `colors[k]`, if given and not None, colours the last cell of row `k`."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = []
    for k, row in enumerate(rows):
        color = colors[k] if colors else None
        cells = [f"<td>{html.escape(cell)}</td>" for cell in row]
        if color:
            cells[-1] = f'<td style="color: {color}">{html.escape(row[-1])}</td>'
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


class Step:
    """The result of `Circuit.step`: `climb` (a `step.Climb`), and `before` and `after`,
    the inputs by name (a bus as a nested list) before and after; the command's text as
    `str` and `repr`, a table in a notebook."""

    def __init__(self, climb_, steps: int, step_size: float, shapes: dict):
        self.climb, self._steps, self._step_size = climb_, steps, step_size
        self.before = buses(climb_.before, shapes)
        self.after = buses(climb_.after, shapes)

    def __str__(self) -> str:
        return climb_text(self.climb, self._steps, self._step_size)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        c = self.climb
        title = str(self).split("\n", 1)[0]
        rows = [[name, repr(x), repr(c.after[name])] for name, x in c.before.items()]
        change = c.after_output - c.before_output
        rows.append([c.output, repr(c.before_output),
                     f"{c.after_output!r} ({'+' if change >= 0 else ''}{change:.6g})"])
        return f"<p>{html.escape(title)}</p>" + _html_table(["", "before", "after"], rows)
