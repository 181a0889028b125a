"""The `circuitc` command: thin click wrappers over the API.

This is the only module that knows about exit codes and terminals: 0 success,
1 a verification failed, 2 bad usage or a bad `.circ` file. A `CircuitError`
becomes its rendered message on stderr (in colour on a terminal); a genuine bug
keeps its traceback. FILE `-` is standard input, called `<stdin>` in messages.
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
import types
from pathlib import Path

import click

from . import __version__, draw
from .api import TARGETS, compile_source, decode_source, evaluate, load_compiled_source, read_source
from .errors import CircuitError, did_you_mean
from .report import json_safe
from .step import METHODS, StepError, climb
from .step import render as render_climb
from .verify import DEFAULT_TOLERANCES, DIFFERENCES, render, verify_circuit
from .verify import as_dict as report_dict


def _fail(message: str):
    click.echo(message, err=True)
    sys.exit(2)


class _Command(click.Command):
    """Turn a `CircuitError` into its message and exit status 2, Ctrl-C into status 130.

    Ctrl-C is not click's usual status 1, which here means that a verification failed;
    130 is what shells report for a command stopped by SIGINT.
    """

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except CircuitError as e:
            _fail(e.render(color=_colored(sys.stderr)))
        except KeyboardInterrupt:
            click.echo("Aborted!", err=True)
            sys.exit(130)


def _colored(stream) -> bool:
    """Whether messages to `stream` are coloured: on a terminal, unless `NO_COLOR` is set
    (https://no-color.org) or the terminal is dumb."""
    return (stream.isatty() and not os.environ.get("NO_COLOR")
            and os.environ.get("TERM") != "dumb")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="circuitc")
def main():
    """Compile .circ circuits into Python modules with checked gradients.

    Every command reads FILE, or standard input when FILE is '-'.
    """


# Not `readable`: click would answer an unreadable file with a usage screen; reading it
# gives the one-line "cannot read" error every other unreadable file gets.
FILE = click.argument("file", type=click.Path(path_type=Path, readable=False))
VALUES = click.argument("values", nargs=-1, metavar="[NAME=VALUE]...")
JSON = click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
TARGET = click.option("--target", "target_name", type=click.Choice(list(TARGETS)),
                      default="python", show_default=True,
                      help="The generated code: plain Python, or NumPy (batches, broadcasting).")


STDIN = "<stdin>"


def read_file(file: Path) -> tuple[str, str]:
    """FILE's text and the name messages give it: `-` is standard input, `<stdin>`."""
    if str(file) == "-":
        return decode_source(sys.stdin.buffer.read(), STDIN), STDIN
    return read_source(file), str(file)


def load_module(file: Path, target: str = "python"):
    """FILE compiled for `target` and imported, and its graphs (`load_compiled_source`),
    with a one-line error when the target's library is missing."""
    text, name = read_file(file)
    try:
        return load_compiled_source(text, name, target)
    except ModuleNotFoundError as e:
        if e.name != "numpy":
            raise
        _fail(f"error: --target {target} needs NumPy: pip install numpy")


def _write_atomically(path: Path, text: str | bytes) -> None:
    """Replace `path` with `text` (UTF-8) all at once: a failure leaves the old file untouched."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(text.encode("utf-8") if isinstance(text, str) else text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


@main.command(cls=_Command)
@FILE
@click.option("-o", "--output", "out", metavar="OUT",
              help="Where to write the module ('-' for stdout). Default: FILE with .py.")
@TARGET
@click.option("--wrt", metavar="NAME,...",
              help="Emit gradients only for these inputs, in this order (the module's WRT).")
def compile(file: Path, out: str | None, target_name: str, wrt: str | None):
    """Compile FILE into a Python module with forward() and backward()."""
    names = None if wrt is None else [n.strip() for n in wrt.split(",")]
    if names is not None and "" in names and names != [""]:
        raise click.UsageError(f"--wrt {wrt!r} has an empty name; give NAME,NAME,... "
                               "(or --wrt '' for no gradients at all)")
    text, name = read_file(file)
    source = compile_source(text, name, target_name, [] if names == [""] else names)
    if out == "-" or (out is None and name == STDIN):
        target = None
    else:
        target = file.with_suffix(".py") if out is None else Path(out)
    _check_output(file, target)
    _write_output(target, source)


def _check_output(file: Path, target: Path | None) -> None:
    if target is not None and str(file) != "-" and target.resolve() == file.resolve():
        _fail(f"error: the output {str(target)!r} would overwrite the source file")


def _write_output(target: Path | None, data: str | bytes) -> None:
    """`data` to the file `target`, replaced atomically, or to stdout when `target` is None."""
    if target is None:
        if isinstance(data, bytes):
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
        else:
            click.echo(data, nl=False)
        return
    try:
        _write_atomically(target, data)
    except OSError as e:
        _fail(f"error: cannot write {str(target)!r}: {e.strerror or e}")


def parse_values(module, values: tuple[str, ...]) -> dict[str, float]:
    """`NAME=VALUE` arguments as a dict, checked against the module's inputs."""
    given = {}
    for item in values:
        name, eq, text = item.partition("=")
        if not eq:
            raise click.UsageError(f"expected NAME=VALUE, got {item!r}")
        if name not in module.INPUTS:
            raise click.UsageError(f"no input named {name!r}" + did_you_mean(name, module.INPUTS)
                                   + f" (inputs: {_names(module.INPUTS)})")
        if name in given:
            raise click.UsageError(f"{name} is given twice")
        try:
            given[name] = float(text)
        except ValueError:
            raise click.UsageError(f"{name}: {text!r} is not a number") from None
    return given


def _names(names, most: int = 10) -> str:
    """`a, b, c`, or the first few and how many more."""
    if len(names) > most:
        return f"{', '.join(names[:most])}, and {len(names) - most} more"
    return ", ".join(names) or "none"


def point(module, values: tuple[str, ...]) -> dict[str, float]:
    """Every input's value: given on the command line, else its default."""
    at = {**module.DEFAULTS, **parse_values(module, values)}
    missing = [name for name in module.INPUTS if name not in at]
    if missing:
        raise click.UsageError("no value for input " + _names([repr(name) for name in missing])
                               + "; give NAME=VALUE or declare a default")
    return {name: at[name] for name in module.INPUTS}


@main.command(name="eval", cls=_Command)
@FILE
@VALUES
@JSON
@TARGET
def eval_(file: Path, values: tuple[str, ...], as_json: bool, target_name: str):
    """Print each output's value and its gradient with respect to each input."""
    module = load_module(file, target_name)[0]
    at = point(module, values)
    try:
        outputs, gradients = evaluate(module, at)
    except (ArithmeticError, ValueError) as e:
        _fail(f"error: {e}")
    if as_json:
        document = {"inputs": at, "outputs": outputs, "gradients": gradients}
        click.echo(json.dumps(json_safe(document), indent=2))
        return
    for out, value in outputs.items():
        click.echo(f"{out} = {value!r}")
        for name, g in gradients[out].items():
            click.echo(f"  d{out}/d{name} = {g!r}")


_GRAPH_SUFFIXES = {".dot": "dot", ".gv": "dot", ".svg": "svg", ".png": "png", ".json": "json",
                   ".mmd": "mermaid", ".mermaid": "mermaid"}


@main.command(cls=_Command)
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
                   "graph that compile turns into code.")
@click.option("--of", "of", metavar="OUTPUT",
              help="Draw the gradient of this output alone. Default: of the sum of the outputs.")
@click.option("--no-values", is_flag=True, help="Draw the structure only, even with defaults.")
def graph(file: Path, values: tuple[str, ...], fmt: str | None, out: str | None, source: bool,
          of: str | None, no_values: bool):
    """Draw FILE's gate graph, each wire labelled with its value and gradient.

    The inputs' values are their defaults, overridden by NAME=VALUE arguments; a
    circuit with no default and no value given is drawn without values.
    """
    target = None if out in (None, "-") else Path(out)
    fmt = fmt or (target and _GRAPH_SUFFIXES.get(target.suffix.lower())) or "dot"
    _check_output(file, target)
    if fmt == "png" and target is None and sys.stdout.isatty():
        raise click.UsageError("PNG is binary: give -o OUT.png, or redirect stdout")
    if no_values and values:
        raise click.UsageError("--no-values draws no values: drop the NAME=VALUE arguments")
    text, name = read_file(file)
    g = draw.circuit(text, name, optimized=not source)
    outputs = [name for name, _ in g.outputs]
    if of is not None and of not in outputs:
        raise click.UsageError(f"no output named {of!r}" + did_you_mean(of, outputs)
                               + f" (outputs: {', '.join(outputs)})")
    if no_values or (not values and not g.defaults and g.inputs):
        drawing = draw.structure(g, optimized=not source)
    else:
        at = point(types.SimpleNamespace(INPUTS=g.inputs, DEFAULTS=g.defaults), values)
        seeds = None if of is None else {name: float(name == of) for name in outputs}
        try:
            drawing = draw.evaluate(g, at, seeds, optimized=not source)
        except CircuitError as e:
            raise e.attach(name, text) from None
    _write_drawing(drawing, fmt, target)


def _write_drawing(drawing: draw.Drawing, fmt: str, target: Path | None) -> None:
    """Write `drawing` as `fmt` to `target` (stdout if None); render with Graphviz if needed."""
    if fmt == "json":
        data: str | bytes = draw.to_json(drawing)
    elif fmt == "mermaid":
        data = draw.to_mermaid(drawing)
    else:
        data = draw.to_dot(drawing)
        if fmt != "dot":
            try:
                data = draw.render(data, fmt)
            except draw.RenderError as e:
                _fail(f"error: {e}")
    _write_output(target, data)


def _finite(ctx, param, value):
    if value is not None and not math.isfinite(value):
        raise click.BadParameter("must be a finite number")
    return value


POSITIVE = click.FloatRange(min=0, min_open=True)
NONNEGATIVE = click.FloatRange(min=0)


def _defaults(k: int) -> str:
    return ", ".join(f"{t[k]:g} {method}" for method, t in DEFAULT_TOLERANCES.items())


@main.command(cls=_Command)
@FILE
@VALUES
@click.option("--points", "n_points", type=click.IntRange(min=0), default=0, show_default=True,
              help="Random points to check besides the given values and defaults.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the random points and directions.")
@click.option("--rtol", type=NONNEGATIVE, callback=_finite,
              help="Relative tolerance [default: " + _defaults(0) + "].")
@click.option("--atol", type=NONNEGATIVE, callback=_finite,
              help="Absolute tolerance [default: " + _defaults(1) + "].")
@click.option("--h", "h", type=POSITIVE, callback=_finite,
              help="Finite-difference step for every input [default: relative to each input].")
@click.option("--difference", type=click.Choice(DIFFERENCES), default="central",
              show_default=True, help="How the numerical derivative is taken.")
@click.option("--fast", is_flag=True,
              help="Check one random direction per point instead of each input.")
@JSON
@TARGET
def verify(file: Path, values: tuple[str, ...], n_points: int, seed: int, rtol, atol, h,
           difference: str, fast: bool, as_json: bool, target_name: str):
    """Check the generated gradients against numerical derivatives.

    Checks the point given by NAME=VALUE and the declared defaults (drawing a
    value for any input without one), then --points random points. Exit status
    0 when every judged gradient passes, 1 when any fails.
    """
    module, forward, _ = load_module(file, target_name)
    report = verify_circuit(module, forward, parse_values(module, values), n_points=n_points,
                            seed=seed, difference=difference, rtol=rtol, atol=atol, h=h,
                            fast=fast)
    if as_json:
        click.echo(json.dumps(json_safe(report_dict(report)), indent=2))
    else:
        click.echo(render(report))
    if not report.judged:
        click.echo("warning: no gradient was judged (every check was skipped or outside "
                   "the domain)", err=True)
    sys.exit(0 if report.ok else 1)


@main.command(cls=_Command)
@FILE
@VALUES
@click.option("--method", type=click.Choice(METHODS), default="analytic", show_default=True,
              help="Random local search, numerical gradient, or analytic gradient.")
@click.option("--steps", type=click.IntRange(min=0), default=1, show_default=True,
              help="How many steps to take.")
@click.option("--step-size", type=NONNEGATIVE, default=0.01, show_default=True,
              callback=_finite, help="How far to move along the gradient.")
@click.option("--h", "h", type=POSITIVE, callback=_finite,
              help="Finite-difference step of --method numerical [default: relative to "
                   "each input].")
@click.option("--difference", type=click.Choice(("central", "forward")), default="central",
              show_default=True, help="Finite difference of --method numerical.")
@click.option("--tries", type=click.IntRange(min=1), default=100, show_default=True,
              help="Random tries per step of --method random.")
@click.option("--tweak", type=NONNEGATIVE, default=0.01, show_default=True, callback=_finite,
              help="Largest move of each input per try of --method random.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of --method random.")
@click.option("--minimize", is_flag=True, help="Step downhill instead of uphill.")
@JSON
def step(file: Path, values: tuple[str, ...], method: str, steps: int, step_size: float, h,
         difference: str, tries: int, tweak: float, seed: int, minimize: bool, as_json: bool):
    """Move the inputs to increase the first output (decrease it with --minimize).

    The three ways of climbing a hill: random local search, the numerical
    gradient, the analytic gradient. Prints the inputs and the output before and
    after.
    """
    module = load_module(file)[0]
    try:
        result = climb(module, point(module, values), method=method, steps=steps,
                       step_size=step_size, h=h, difference=difference, tries=tries,
                       tweak=tweak, seed=seed, minimize=minimize)
    except StepError as e:
        _fail(f"error: {e}")
    if as_json:
        click.echo(json.dumps(json_safe({
            "method": method, "output": result.output, "steps": steps,
            "before": {"inputs": result.before, "output": result.before_output},
            "after": {"inputs": result.after, "output": result.after_output},
            "history": result.history}), indent=2))
    else:
        click.echo(render_climb(result, steps, step_size))
