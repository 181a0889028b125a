"""Input values by name and the numbers of a module's elements, both ways.

What the commands (`eval`, `graph`, `verify`, `step`) and the notebook `Circuit`
share: a value given for an input by name (a number, or for a bus a nested list of
its shape, or one number that fills it) becomes one number per element (`{"x[0]":
1.0, "x[1]": -2.0}`); a point is completed from the defaults; element values are
gathered back into their buses; and `evaluation` is the document that
`circuitc eval --json` prints. A value that does not fit raises `InputError`.
"""

from __future__ import annotations

from .elements import elementwise, evaluate, hessian_of
from .errors import did_you_mean
from .graph import by_bus, elements


class InputError(ValueError):
    """A value for no input, a value that does not fit its input, or an input without
    a value."""


def input_shapes(module) -> dict[str, tuple[int, ...]]:
    """Each input of a module (`INPUTS`) and its shape."""
    shapes = getattr(module, "SHAPES", {})
    return {name: tuple(shapes.get(name, ())) for name in module.INPUTS}


def names(names, most: int = 10) -> str:
    """`a, b, c`, or the first few and how many more."""
    if len(names) > most:
        return f"{', '.join(names[:most])}, and {len(names) - most} more"
    return ", ".join(names) or "none"


def element_values(name: str, value, shapes: dict[str, tuple[int, ...]], where: str = ""
                   ) -> dict[str, float]:
    """The elements of the value of input `name` (`shapes` gives every input's shape);
    `where` says where the value came from, in the error for a name that is no input."""
    if name not in shapes:
        raise InputError(f"no input named {name!r}{' ' + where if where else ''}"
                         + did_you_mean(name, shapes) + f" (inputs: {names(list(shapes))})")
    return elements_of(name, value, shapes[name])


def elements_of(name: str, value, shape: tuple[int, ...]) -> dict[str, float]:
    """The elements of an input's value: a number fills every element."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return dict.fromkeys(elements(name, shape), float(value))
    if hasattr(value, "tolist"):  # a NumPy array or number
        value = value.tolist()
        if not isinstance(value, list):
            return elements_of(name, value, shape)
    flat = [value]
    for n in shape:
        if not all(isinstance(row, list | tuple) and len(row) == n for row in flat):
            raise InputError(f"{name}: expected a number or a nested list of shape {list(shape)}")
        flat = [x for row in flat for x in row]
    if not shape or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in flat):
        raise InputError(f"{name}: expected a number" + (
            f" or a nested list of shape {list(shape)} of numbers" if shape else ""))
    return dict(zip(elements(name, shape), map(float, flat)))


def point(inputs, defaults: dict[str, float], given: dict[str, float]) -> dict[str, float]:
    """Every input element's value (`inputs` in order): given, else its default."""
    at = {**defaults, **given}
    missing = list(by_bus(name for name in inputs if name not in at))
    if missing:
        raise InputError("no value for input " + names([repr(name) for name in missing])
                         + "; give NAME=VALUE or declare a default")
    return {name: at[name] for name in inputs}


def known_point(inputs, defaults: dict[str, float], given: dict[str, float]
                ) -> tuple[dict[str, float | None] | None, list[str]]:
    """`point`, but an input element with neither a value given nor a default is `None`
    instead of an error (the point is None when no input has a value); and the inputs
    without a value (a bus by its name)."""
    at = {name: given.get(name, defaults.get(name)) for name in inputs}
    missing = list(by_bus(name for name, value in at.items() if value is None))
    return (None if missing and len(missing) == len(by_bus(inputs)) else at), missing


def missing_values(missing: list[str]) -> str:
    """What a drawing at a `known_point` leaves out, for the inputs `missing`."""
    return (f"no value for input {names([repr(name) for name in missing])} (no default, none "
            "given): drawn without the values that depend on it")


def buses(named: dict[str, object], shapes: dict[str, tuple[int, ...]]) -> dict[str, object]:
    """Element values gathered into their buses (nested lists); scalars as they are."""
    result = {}
    for bus, names_ in by_bus(named).items():
        values = [named[name] for name in names_]
        shape = shapes.get(bus, ())
        for n in reversed(shape[1:]):
            values = [values[k:k + n] for k in range(0, len(values), n)]
        result[bus] = values if shape else values[0]
    return result


def evaluation(module, at: dict[str, float], hessian: bool = False) -> dict:
    """`{"inputs", "outputs", "gradients"}` (and `"hessian"` if asked) at the point `at`
    (one number per element): what `circuitc eval --json` prints, floats as they are.

    `module` is a loaded module (`hessian` needs one compiled with it). Inputs and outputs are named by bus, a bus's value a nested
    list; gradients are keyed by output element, then by input (by bus); a Hessian's
    rows and columns are the elements of `WRT`. A gate that fails on its operands
    raises its `ArithmeticError` or `ValueError`.
    """
    shapes = getattr(module, "SHAPES", {})
    flat = elementwise(module)
    outputs, gradients = evaluate(flat, at)
    document = {"inputs": buses(at, shapes), "outputs": buses(outputs, shapes),
                "gradients": {out: buses(g, shapes) for out, g in gradients.items()}}
    if hessian:
        args = [at[name] for name in flat.INPUTS]
        document["hessian"] = {out: [list(row) for row in hessian_of(flat, args, k)]
                               for k, out in enumerate(flat.OUTPUTS)}
    return document
