"""The options the commands share (and the `%%circuit` cell magic reads), and the input
values a command is given (`parse_values`, `point`), as click parameters and usage errors.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import click

from .. import numba_modules
from ..api import KNOWN_DTYPES, TARGETS, dtype_error
from ..report import json_floats
from ..values import InputError, element_values
from ..values import point as _point
from .terminal import fail

# Not `readable`: click would answer an unreadable file with a usage screen; reading it
# gives the one-line "cannot read" error every other unreadable file gets.
FILE = click.argument("file", type=click.Path(path_type=Path, readable=False))
VALUES = click.argument("values", nargs=-1, metavar="[NAME=VALUE]...")
JSON = click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")


def _target(ctx, param, value: str) -> str:
    """The target, once its library is there: numba is an optional dependency."""
    if value == "numba" and not numba_modules.available():
        fail(f"error: --target numba: {numba_modules.INSTALL}")
    return value


TARGET = click.option("--target", "target_name", type=click.Choice(list(TARGETS)),
                      default="python", show_default=True, callback=_target,
                      help="The generated code: plain Python, NumPy (batches, broadcasting), "
                           "or numba (compiled to machine code).")
DTYPE = click.option("--dtype", type=click.Choice(KNOWN_DTYPES),
                     default="float64", show_default=True,
                     help="The floating-point type the module computes in (float32: numpy "
                          "target only).")


def check_dtype(target: str, dtype: str) -> None:
    """A usage error where `target` cannot compute in `dtype` (`api.dtype_error`)."""
    why = dtype_error(target, dtype)
    if why is not None:
        raise click.UsageError(f"--dtype {dtype}: {why}")


def _sizes(ctx, param, items: tuple[str, ...]) -> dict[str, int]:
    sizes = {}
    for item in items:
        name, eq, text = item.partition("=")
        try:
            value = int(text)
        except ValueError:
            raise click.BadParameter(f"expected NAME=INT, got {item!r}") from None
        if not eq or not name:
            raise click.BadParameter(f"expected NAME=INT, got {item!r}")
        if name in sizes:  # which one was meant is anyone's guess
            raise click.BadParameter(f"{name} is given twice ({name}={sizes[name]}, {item})")
        sizes[name] = value
    return sizes


def _names_option(ctx, param, text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = [n.strip() for n in text.split(",")]
    if names == [""]:
        return []
    if "" in names:
        raise click.BadParameter(f"{text!r} has an empty name; give NAME,NAME,... (or '' "
                                 "for none at all)")
    return names


SIZES = click.option("-D", "sizes", metavar="NAME=INT", multiple=True, callback=_sizes,
                     help="Set a size of the circuit (repeatable), overriding its declaration.")
WRT = click.option("--wrt", metavar="NAME,...", callback=_names_option,
                   help="Differentiate with respect to these inputs only, in this order "
                        "(the module's WRT).")
FIX = click.option("--fix", metavar="NAME,...", callback=_names_option,
                   help="Differentiate with respect to every input except these.")
SEED = click.option("--seed", type=int, default=0, show_default=True,
                    help="Seed of the random initial values (inputs whose default is uniform(...) "
                         "or normal(...)).")
ELEMENTS = click.option("--elements", is_flag=True,
                        help="Write buses out element by element, not as whole-bus code.")
AT = click.option("--at", "at_file", type=click.Path(path_type=Path, dir_okay=False),
                  help="A JSON file: an object of input values (numbers; nested lists for "
                       "buses). NAME=VALUE arguments override it.")


def parse_values(shapes: dict[str, tuple[int, ...]], values: tuple[str, ...],
                 at_file: Path | None = None) -> dict[str, float]:
    """The values given by `--at FILE.json` and `NAME=VALUE` arguments (which win), for
    inputs of the given shapes, as one number per element (`{"x[0]": 1.0, ...}`).

    A value is a number or, for a bus, a JSON nested list of its shape; a single
    number fills a bus.
    """
    given: dict[str, object] = {}
    if at_file is not None:
        try:
            document = json_floats(json.loads(at_file.read_text(encoding="utf-8")))
        except (OSError, ValueError) as e:
            raise click.UsageError(f"--at {str(at_file)!r}: {getattr(e, 'strerror', None) or e}"
                                   ) from None
        if not isinstance(document, dict):
            raise click.UsageError(f"--at {str(at_file)!r}: expected a JSON object of input values")
        given.update((name, (value, f"in {at_file}")) for name, value in document.items())
    named = set()
    for item in values:
        name, eq, text = item.partition("=")
        if not eq:
            raise click.UsageError(f"expected NAME=VALUE, got {item!r}")
        if name in named:
            raise click.UsageError(f"{name} is given twice")
        named.add(name)
        try:
            given[name] = (json_floats(json.loads(text)) if text.lstrip().startswith("[")
                           else float(text), "")
        except ValueError:
            raise click.UsageError(f"{name}: {text!r} is not a number or a JSON list") from None
    at = {}
    try:
        for name, (value, where) in given.items():
            at.update(element_values(name, value, shapes, where))
    except InputError as e:
        raise click.UsageError(str(e)) from None
    return at


def point(inputs, defaults: dict[str, float], given: dict[str, float]) -> dict[str, float]:
    """Every input element's value (`inputs` in order): given, else its default."""
    try:
        return _point(inputs, defaults, given)
    except InputError as e:
        raise click.UsageError(str(e)) from None


def module_point(module, given: dict[str, float]) -> dict[str, float]:
    """`point` for a module seen element by element."""
    return point(module.INPUTS, module.DEFAULTS, given)


def finite_number(ctx, param, value):
    """A click callback: the option's value, which must be a finite number (or not given)."""
    if value is not None and not math.isfinite(value):
        raise click.BadParameter("must be a finite number")
    return value


POSITIVE = click.FloatRange(min=0, min_open=True)
NONNEGATIVE = click.FloatRange(min=0)
