"""The `circuitc` command: thin click wrappers over the API.

This package is the only part of circuitc that knows about exit codes and terminals: 0
success, 1 a verification failed, 2 bad usage or a bad `.circ` file. A `CircuitError`
becomes its rendered message on stderr (in colour on a terminal); a genuine bug keeps its
traceback. FILE `-` is standard input, called `<stdin>` in messages. Here, the commands;
beside them, the options they share (`options`), reading and writing files (`files`) and
what a terminal shows besides the output (`terminal`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from click.core import ParameterSource

from .. import api, cache, draw, numba_modules
from ..api import compile_source, elementwise, load_compiled_source, load_source
from ..errors import CircuitError, did_you_mean
from ..graph import bus_of, by_bus
from ..progress import phase
from ..report import json_safe
from ..step import METHODS, StepError, climb, climb_text
from ..values import evaluation, input_shapes, known_point, missing_values
from ..verify import (
    DEFAULT_TOLERANCES,
    DIFFERENCES,
    SECOND_ORDER_TOLERANCES,
    report_dict,
    report_text,
    verify_circuit,
    verify_hessian,
)
from ..version import __version__
from . import servers
from .files import STDIN, check_output, read_file, write_output
from .options import (
    AT,
    DTYPE,
    ELEMENTS,
    FILE,
    FIX,
    JSON,
    NONNEGATIVE,
    POSITIVE,
    SEED,
    SIZES,
    TARGET,
    VALUES,
    WRT,
    check_dtype,
    finite_number,
    module_point,
    parse_values,
)
from .terminal import Command, colored, fail, warnings_shown


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="circuitc")
def main():
    """Compile .circ circuits into Python modules with checked gradients.

    Every command reads FILE, or standard input when FILE is '-'.
    """


def load_module(file: Path, target: str = "python", load=load_source, **options):
    """FILE compiled for `target` and imported (`load_source`, which takes `options`; or
    with its graphs: `load=load_compiled_source`), with a one-line error when the
    target's library is missing; then its warnings (`warn`)."""
    text, name = read_file(file)
    click.get_current_context().meta["circuit"] = name, text  # for `_run_error`
    try:
        loaded = load(text, name, target, **options)
    except ModuleNotFoundError as e:
        if e.name == "numba":
            fail(f"error: --target numba: {numba_modules.INSTALL}")
        if e.name != "numpy":
            raise
        fail(f"error: --target {target} needs NumPy: pip install numpy")
    warn(text, name)
    return loaded


def _run_error(e: Exception) -> str:
    """The message of an error raised running the circuit that `load_module` loaded: at the
    gate that raised it, with its source line and a caret (`api.run_error`), or as it is."""
    name, text = click.get_current_context().meta.get("circuit", (None, None))
    found = api.run_error(e, name, text) if name is not None else None
    return found.render(color=colored(sys.stderr)) if found else f"error: {e}"


def warn(text: str, name: str) -> None:
    """The warnings of the circuit `text` (`api.lint_source`) on stderr, unless --quiet:
    what a command that compiled it says after it compiled."""
    if click.get_current_context().meta.get("quiet"):
        return
    for warning in api.lint_source(text, name):
        click.echo(warning.render(color=colored(sys.stderr)), err=True)


@main.command(cls=Command)
@FILE
@click.option("-o", "--output", "out", metavar="OUT",
              help="Where to write the module ('-' for stdout). Default: FILE with .py.")
@TARGET
@DTYPE
@WRT
@FIX
@SIZES
@click.option("--hessian", is_flag=True,
              help="Add hvp() (Hessian-vector products) and, for the python and numba targets, "
                   "hessian() with HESSIAN_PATTERN.")
@click.option("--jvp", is_flag=True, help="Add jvp() (forward mode: directional derivatives).")
@ELEMENTS
@SEED
def compile(file: Path, out: str | None, target_name: str, dtype: str, wrt, fix, sizes,
            hessian: bool, jvp: bool, elements: bool, seed: int):
    """Compile FILE into a Python module with forward() and backward()."""
    check_dtype(target_name, dtype)
    text, name = read_file(file)
    source = compile_source(text, name, target_name, wrt, sizes=sizes, fix=fix, hessian=hessian,
                            jvp=jvp, elements=elements, seed=seed, dtype=dtype)
    phase(None)  # the compile is over: no progress line while the module is written
    warn(text, name)
    if out == "-" or (out is None and name == STDIN):
        target = None
    else:
        target = file.with_suffix(".py") if out is None else Path(out)
    check_output(file, target)
    write_output(target, source)


def _shown(value) -> str:
    """A value as `eval` prints it: floats exactly (`repr`), buses as nested lists."""
    if isinstance(value, list):
        return f"[{', '.join(map(_shown, value))}]"
    return repr(value)


@main.command(name="eval", cls=Command)
@FILE
@VALUES
@AT
@JSON
@TARGET
@DTYPE
@WRT
@FIX
@SIZES
@click.option("--hessian", is_flag=True,
              help="Also print each output's Hessian (rows and columns: the elements of WRT).")
@ELEMENTS
@SEED
def eval_(file: Path, values: tuple[str, ...], at_file, as_json: bool, target_name: str,
          dtype: str, wrt, fix, sizes, hessian: bool, elements: bool, seed: int):
    """Print each output's value and its gradient with respect to each input.

    A bus is printed whole, as a nested list; each element of a bus output has a
    gradient of its own.
    """
    if hessian and target_name == "numpy":
        raise click.UsageError("--hessian needs the python or numba target (the numpy target has hvp)")
    check_dtype(target_name, dtype)
    module = load_module(file, target_name, wrt=wrt, fix=fix, sizes=sizes, hessian=hessian,
                         elements=elements, seed=seed, dtype=dtype)
    flat = elementwise(module)
    at = module_point(flat, parse_values(input_shapes(module), values, at_file))
    try:
        document = evaluation(module, at, hessian)
    except (ArithmeticError, ValueError) as e:
        fail(_run_error(e))
    if as_json:
        click.echo(json.dumps(json_safe(document), indent=2))
        return
    gradients, hessians = document["gradients"], document.get("hessian")
    for out, value in document["outputs"].items():
        click.echo(f"{out} = {_shown(value)}")
        for element in by_bus(gradients).get(out, ()):
            for name, g in gradients[element].items():
                click.echo(f"  d{element}/d{name} = {_shown(g)}")
            if hessian:
                click.echo(f"  hessian of {element} (rows and columns: {', '.join(flat.WRT)}):")
                for row in hessians[element]:
                    click.echo(f"    {_shown(row)}")


@main.command(cls=Command)
@FILE
@VALUES
@click.option("--format", "fmt", type=click.Choice(draw.FORMATS),
              help="What to write. Default: from OUT's suffix (.dot .gv .svg .png .json .mmd), "
                   "else dot. svg and png need Graphviz's dot program.")
@click.option("-o", "--output", "out", metavar="OUT",
              help="Where to write the drawing. Default (or '-'): stdout; png only when stdout "
                   "is not a terminal.")
@click.option("--source", is_flag=True,
              help="Draw the graph as written, every operator a gate, instead of the optimized "
                   "graph that compile turns into code (with buses: with --elements).")
@click.option("--of", "of", metavar="OUTPUT",
              help="Draw the gradient of this output alone. Default: of the sum of the outputs.")
@click.option("--no-values", is_flag=True, help="Draw the structure only, even with defaults.")
@click.option("--elements", "by_element", is_flag=True,
              help="Draw a circuit with buses element by element, gate by gate, instead of "
                   "one node per bus.")
@click.option("--force", is_flag=True,
              help="Hand Graphviz a drawing too big to lay out in seconds (svg, png) anyway.")
@AT
@SIZES
@SEED
def graph(file: Path, values: tuple[str, ...], fmt: str | None, out: str | None, source: bool,
          of: str | None, no_values: bool, by_element: bool, force: bool, at_file, sizes,
          seed: int):
    """Draw FILE's gate graph, each wire labelled with its value and gradient.

    A circuit with buses is drawn one node per bus, each arrow labelled with how
    the bus is read (W1[i,j], sum over j); --elements draws its gate graph.
    The inputs' values are their defaults, overridden by NAME=VALUE arguments; a
    circuit with no default and no value given is drawn without values.
    """
    target = None if out in (None, "-") else Path(out)
    fmt = fmt or (target and draw.SUFFIXES.get(target.suffix.lower())) or "dot"
    check_output(file, target)
    if fmt == "png" and target is None and sys.stdout.isatty():
        raise click.UsageError("PNG is binary: give -o OUT.png, or redirect stdout")
    if no_values and values:
        raise click.UsageError("--no-values draws no values: drop the NAME=VALUE arguments")
    text, name = read_file(file)
    buses = None if by_element else draw.bus_circuit(text, name, sizes, seed)
    g = buses.graph if buses else cache.graph(
        text, name, {"optimized": not source, "sizes": sizes, "seed": seed},
        lambda: draw.circuit(text, name, optimized=not source, sizes=sizes, seed=seed))
    outputs = by_bus(out for out, _ in g.outputs)  # a bus output by its name, or an element
    if of is not None and of not in outputs and (buses or of not in dict(g.outputs)):
        raise click.UsageError(f"no output named {of!r}" + did_you_mean(of, outputs)
                               + f" (outputs: {', '.join(outputs)})")
    shapes = {bus: g.shapes.get(bus, ()) for bus in by_bus(g.inputs)}
    given = {} if no_values else parse_values(shapes, values, at_file)
    at, missing = known_point(g.inputs, g.defaults, given)
    if no_values or at is None:
        drawing = draw.bus_structure(buses) if buses else draw.structure(g, optimized=not source)
    else:
        seeds = None if of is None else {name: float(of in (name, bus_of(name)))
                                         for name, _ in g.outputs}
        try:
            drawing = (draw.bus_with_values(buses, at, seeds) if buses
                       else draw.with_values(g, at, seeds, optimized=not source))
        except CircuitError as e:
            raise e.attach(name, text) from None
        if missing:
            click.echo(f"note: {missing_values(missing)}", err=True)
    warn(text, name)
    _write_drawing(drawing, fmt, target, force)


def _write_drawing(drawing: draw.Drawing, fmt: str, target: Path | None, force: bool = False) -> None:
    """Write `drawing` as `fmt` to `target` (stdout if None); render with Graphviz if needed,
    unless the drawing is too big for it to lay out in seconds and not `force`."""
    if fmt not in ("dot", "json", "mermaid") and not force:
        why = draw.too_big_to_lay_out(draw.to_dot(drawing))
        if why:
            fail(f"error: too big for Graphviz's dot to lay out in seconds: {why}; draw less "
                  "(the bus view of a circuit with buses, one output's gradient with --of, a "
                  "smaller circuit), write --format dot or json, which need no layout, or "
                  "give --force")
    try:
        data = draw.written(drawing, fmt)
    except draw.GraphvizError as e:
        fail(f"error: {e}")
    write_output(target, data)


def _defaults(k: int) -> str:
    first, second = (", ".join(f"{t[k]:g} {method}" for method, t in table.items())
                     for table in (DEFAULT_TOLERANCES, SECOND_ORDER_TOLERANCES))
    return f"{first}; with --order 2: {second}"


@main.command(cls=Command)
@FILE
@VALUES
@click.option("--points", "n_points", type=click.IntRange(min=0), default=0, show_default=True,
              help="Random points to check besides the given values and defaults.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the random points and directions, and of the random initial values.")
@click.option("--rtol", type=NONNEGATIVE, callback=finite_number,
              help="Relative tolerance [default: " + _defaults(0) + "].")
@click.option("--atol", type=NONNEGATIVE, callback=finite_number,
              help="Absolute tolerance [default: " + _defaults(1) + "].")
@click.option("--h", "h", type=POSITIVE, callback=finite_number,
              help="Finite-difference step for every input [default: relative to each input].")
@click.option("--difference", type=click.Choice(DIFFERENCES), default="central",
              show_default=True, help="How the numerical derivative is taken.")
@click.option("--fast", is_flag=True,
              help="Check one random direction per point instead of each input.")
@AT
@click.option("--module", "module_file", type=click.Path(path_type=Path), metavar="M.py",
              help="Check this Python module against FILE, the circuit it claims to come "
                   "from: its gradients against numerical ones and against circuitc's.")
@click.option("--order", type=click.IntRange(1, 2), default=1, show_default=True,
              help="2: check second derivatives (the Hessian, or hvp) against numerical "
                   "derivatives of the gradient.")
@JSON
@TARGET
@DTYPE
@WRT
@FIX
@SIZES
@ELEMENTS
def verify(file: Path, values: tuple[str, ...], n_points: int, seed: int, rtol, atol, h,
           difference: str, fast: bool, at_file, module_file: Path | None, order: int,
           as_json: bool, target_name: str, dtype: str, wrt, fix, sizes, elements: bool):
    """Check the generated gradients against numerical derivatives.

    FILE is a .circ circuit, compiled for --target and checked; or a Python module
    (a name ending in .py: circuitc's output, edited or not, or any module with
    INPUTS, OUTPUTS, forward and backward), which is run, as python would run it,
    and checked. Checks the point given by NAME=VALUE and the declared defaults
    (drawing a value for any input without one), then --points random points.
    With --order 2, second derivatives instead: a circuit is compiled with its Hessian;
    a module must have hessian or hvp, and is checked on its own.
    Exit status 0 when every judged gradient passes, 1 when any fails or none is judged.
    """
    python = file.suffix == ".py"
    if python and module_file is not None:
        raise click.UsageError("--module takes the module, FILE its circuit: "
                               "circuitc verify FILE.circ --module M.py")
    given = [f"--{name}" for name, param in (("target", "target_name"), ("dtype", "dtype"))
             if click.get_current_context().get_parameter_source(param)
             is ParameterSource.COMMANDLINE]
    if (python or module_file is not None) and given:
        raise click.UsageError(f"{given[0]} compiles a circuit; a module is checked as it is "
                               "(in the DTYPE it says)")
    check_dtype(target_name, dtype)
    forward = reference = None
    if python:
        module = api.load_python(file)
    elif module_file is not None:
        module = api.load_python(module_file)
        if order == 1:
            reference, forward = _circuit(file, "python", wrt=wrt, fix=fix, sizes=sizes,
                                          seed=seed)
            reference = elementwise(reference)
    else:
        module, forward = _circuit(file, target_name, wrt=wrt, fix=fix, sizes=sizes,
                                   hessian=order == 2, elements=elements, seed=seed,
                                   dtype=dtype)
    given = parse_values(input_shapes(module), values, at_file)
    options = {"n_points": n_points, "seed": seed, "difference": difference, "rtol": rtol,
               "atol": atol, "h": h, "fast": fast, "target": target_name}
    if order == 1:
        report = verify_circuit(elementwise(module), forward, given, reference=reference,
                                **options)
    else:
        if not (hasattr(module, "hessian") or hasattr(module, "hvp")):
            fail(f"{module_file or file}: error: --order 2 checks a module's hessian or hvp, "
                  "and it has neither: compile it with --hessian, or check its circuit: "
                  "circuitc verify CIRCUIT.circ --order 2")
        report = verify_hessian(elementwise(module), forward, given, **options)
        if module_file is not None:
            report.notes.append(f"--order 2 checks the module on its own, not against {file}")
    if as_json:
        click.echo(json.dumps(json_safe(report_dict(report)), indent=2))
    else:
        click.echo(report_text(report))
    if not (report.judged or report.failed):
        what = "gradient" if order == 1 else "second derivative"
        why = ("every check was skipped or outside the domain"
               if any(p.checks or p.domain for p in report.points) else "there was none to judge")
        click.echo(f"error: no {what} was judged ({why}), so nothing is verified", err=True)
    sys.exit(0 if report.ok else 1)


def _circuit(file: Path, target: str, **options):
    """`load_compiled(file, target, **options)`: the module and its forward graph; a file
    that is not a circuit gets a note saying what verify reads, unless its name says it
    is one."""
    try:
        return load_module(file, target, load_compiled_source, **options)
    except CircuitError as e:
        if file.suffix == ".circ" or not file.is_file():
            raise
        fail(f"{e.render()}\nnote: verify reads {str(file)!r} as a circuit, as its name does "
              f"not end in .py; it expects {api.MODULE_CONTRACT}")


@main.command(cls=Command)
@FILE
@VALUES
@click.option("--method", type=click.Choice(METHODS), default="analytic", show_default=True,
              help="Random local search, numerical gradient, or analytic gradient.")
@click.option("--steps", type=click.IntRange(min=0), default=1, show_default=True,
              help="How many steps to take.")
@click.option("--step-size", type=NONNEGATIVE, default=0.01, show_default=True,
              callback=finite_number, help="How far to move along the gradient.")
@click.option("--h", "h", type=POSITIVE, callback=finite_number,
              help="Finite-difference step of --method numerical [default: relative to "
                   "each input].")
@click.option("--difference", type=click.Choice(("central", "forward")), default="central",
              show_default=True, help="Finite difference of --method numerical.")
@click.option("--tries", type=click.IntRange(min=1), default=100, show_default=True,
              help="Random tries per step of --method random.")
@click.option("--tweak", type=NONNEGATIVE, default=0.01, show_default=True, callback=finite_number,
              help="Largest move of each input per try of --method random.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of --method random and of the random initial values.")
@click.option("--minimize", is_flag=True, help="Step downhill instead of uphill.")
@AT
@JSON
@TARGET
@WRT
@FIX
@SIZES
def step(file: Path, values: tuple[str, ...], method: str, steps: int, step_size: float, h,
         difference: str, tries: int, tweak: float, seed: int, minimize: bool, at_file,
         as_json: bool, target_name: str, wrt, fix, sizes):
    """Move the inputs to increase the first output (decrease it with --minimize).

    The three ways of climbing a hill: random local search, the numerical
    gradient, the analytic gradient. Prints the inputs and the output before and
    after. Only the inputs chosen by --wrt or --fix move (default: all).
    """
    module = load_module(file, target_name, wrt=wrt, fix=fix, sizes=sizes,
                         hessian=method == "newton", seed=seed)
    at = module_point(elementwise(module), parse_values(input_shapes(module), values, at_file))
    try:
        result = climb(elementwise(module), at, method=method, steps=steps,
                       step_size=step_size, h=h, difference=difference, tries=tries,
                       tweak=tweak, seed=seed, minimize=minimize)
    except StepError as e:
        fail(_run_error(e))
    if as_json:
        click.echo(json.dumps(json_safe({
            "method": method, "output": result.output, "steps": steps,
            "before": {"inputs": result.before, "output": result.before_output},
            "after": {"inputs": result.after, "output": result.after_output},
            "history": result.history}), indent=2))
    else:
        click.echo(climb_text(result, steps, step_size))


@main.group(name="cache")
def cache_group():
    """The compile cache: what the commands and circuitc.load compiled, kept for the next run.

    CIRCUITC_CACHE_DIR sets where it is, CIRCUITC_CACHE_MAX its largest size
    (500M, 2G; default 1G), and CIRCUITC_CACHE=0 turns it off.
    """


@cache_group.command(name="info")
@JSON
def cache_info(as_json: bool):
    """Print where the cache is, its entries, their size and the largest size."""
    where = cache.directory()
    found = cache.entries(where)
    with warnings_shown():
        largest = cache.max_size()
    info = {"directory": str(where), "enabled": cache.enabled(), "entries": len(found),
            "size": sum(size for _, size, _ in found), "max_size": largest}
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    state = "" if info["enabled"] else " (off: CIRCUITC_CACHE is set to turn it off)"
    click.echo(f"directory: {where}{state}\nentries: {info['entries']}\n"
               f"size: {_bytes(info['size'])}\nmax size: {_bytes(info['max_size'])}")


@cache_group.command(name="clear")
def cache_clear():
    """Remove every entry of the cache."""
    click.echo(f"removed {cache.clear()} entries from {cache.directory()}")


def _bytes(n: int) -> str:
    """`1.5 MiB`: a size in bytes, in the largest binary unit below it."""
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} bytes" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


main.add_command(servers.lsp)
main.add_command(servers.playground)
