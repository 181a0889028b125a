"""What circuitc knows of a generated module once it is made: the contract every module
follows (`check_module`, `MODULE_CONTRACT`), loading a module from a Python file and
checking it (`load_python`, for `verify`), and placing an error raised while a module
runs at the gate of the circuit that raised it (`run_error`, from the module's `_WHERE`).
"""

from __future__ import annotations

import inspect
import linecache
import re
import sys
import traceback
import types
from pathlib import Path

from .errors import CircuitError, Label, ModuleError, Span
from .graph import Origin
from .numerics import EPSILONS


def shown_in_tracebacks(filename: str, source: str) -> None:
    """Let tracebacks (and `inspect.getsource`, which `circuitc.dask` reads) show the lines
    of a module run from `source` in memory under the file name `filename` (`<circuitc
    f.circ>`): `linecache`'s entry for that name, the one piece of process-wide state
    circuitc leaves behind, one entry per name (the module loaded last under a name
    replaces the entry of the one before)."""
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)


# What `verify` accepts besides a circuit, in the words of its error messages.
MODULE_CONTRACT = ("a .circ circuit, or a Python module (.py) as `circuitc compile` writes one: "
                   "INPUTS and OUTPUTS (tuples of names), forward(*inputs) returning the "
                   "outputs, backward(*inputs, *seeds) returning (outputs, grads) with one "
                   "gradient per name in WRT (default INPUTS), and optionally DEFAULTS, "
                   "SHAPES (for buses) and DTYPE (\"float64\" or \"float32\")")


def load_python(path: str | Path) -> types.ModuleType:
    """Run the Python file at `path` as a module and check that it follows the contract
    of a generated module (`check_module`); a `ModuleError` if it fails to load or does
    not follow it.

    Running the file runs whatever code it holds, as `python path` would: it is the
    caller's own file, to be trusted as such.
    """
    path = str(path)
    if not Path(path).is_file():
        why = "not a file" if Path(path).exists() else "no such file"
        raise ModuleError(f"cannot read {path!r}: {why}").attach(path, "")
    # Compiled and run here rather than imported: nothing is written beside the file (no
    # __pycache__). Under a name of its own, not `__main__` (its script part stays idle)
    # nor its stem (which may be a module it imports); in `sys.modules` while it runs, as
    # some code needs (a dataclass looks its module up).
    name = f"circuitc_verified_{Path(path).stem}"
    module = types.ModuleType(name)
    module.__file__ = path
    sys.modules[name] = module
    try:
        exec(compile(Path(path).read_bytes(), path, "exec"), module.__dict__)  # noqa: S102
    except SyntaxError as e:
        raise ModuleError(f"not a Python module: {e.msg} (line {e.lineno}); verify expects "
                          + MODULE_CONTRACT).attach(path, "") from None
    except Exception as e:  # noqa: BLE001 (the file's own code failed: say where, as a message)
        raise ModuleError(f"running it raised {raised(e)}").attach(path, "") from None
    finally:
        sys.modules.pop(name, None)
    check_module(module, path)
    return module


def raised(e: BaseException) -> str:
    """`NameError: name 'q' is not defined (m.py:12)`: an exception, and the line that raised it."""
    frames = traceback.extract_tb(e.__traceback__)
    where = f" ({frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    return f"{type(e).__name__}: {e}{where}"


def run_error(exc: BaseException, filename: str, source: str) -> CircuitError | None:
    """A gate's error at run time (`log(-1)`, `1/0`) as a `CircuitError` at that gate of
    the circuit `filename` (whose text is `source`), so that it renders with its source
    line and a caret as compile-time errors do: the gate's message, and each `gate` call
    it was reached through as a label. None for an exception that no gate raised.

    The gate is the one circuitc's module names for the line that raised: a frame of a
    module with `_located`, in the traceback of `exc` or of an exception in its context
    (the module re-raises an error with the gate's place in front, and callers such as
    `step` may wrap that in turn), at a line that its `_WHERE` lists.
    """
    shown = filename if filename.isprintable() else repr(filename)
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        for frame, line in traceback.walk_tb(exc.__traceback__):
            where, entry = frame.f_globals.get("_WHERE"), f"\n{line} "
            if "_located" in frame.f_globals and isinstance(where, str) and entry in where:
                places = Origin.places(where.partition(entry)[2].partition("\n")[0], shown)
                if places:
                    return _at_gate(places, str(exc), source).attach(filename, source)
        exc = exc.__context__
    return None


def _at_gate(places: list[tuple[int, int, str]], message: str, source: str) -> CircuitError:
    """The error `message` at the last of `places` (`Origin.places`), the calls that lead
    there as labels, and the bus element that the first place names in the message."""
    element = places[0][2].partition(" for ")[2]
    *calls, (line, column, gate) = [(*place[:2], place[2].partition(" for ")[0])
                                    for place in places]
    labels = [Label(_token(source, *place[:2]), f"in this {place[2]}") for place in calls]
    return CircuitError(f"in {gate}{' for ' + element if element else ''}: {message}",
                        _token(source, line, column), labels=labels)


def _token(source: str, line: int, column: int) -> Span:
    """The span of the name or operator that starts at `line`, `column` of `source`."""
    lines = source.split("\n", line)
    text = lines[line - 1] if 0 < line <= len(lines) else ""
    found = re.compile(r"[A-Za-z_]\w*|\*\*|\S").match(text, column - 1)
    return Span(line, column, line, column + (len(found[0]) if found else 1))


def check_module(module: types.ModuleType, path: str) -> None:
    """A `ModuleError` naming the first way `module` breaks the generated-module contract."""
    def broken(what: str):
        return ModuleError(f"{what}; verify expects {MODULE_CONTRACT}").attach(path, "")

    def names(attr: str, default=None) -> tuple:
        value = getattr(module, attr, default)
        if value is None:
            raise broken(f"it defines no {attr}")
        if not (isinstance(value, tuple | list) and all(isinstance(n, str) for n in value)):
            raise broken(f"its {attr} is not a tuple of names")
        if len(set(value)) < len(value):
            raise broken(f"its {attr} has a name twice")
        return tuple(value)
    inputs, outputs = names("INPUTS"), names("OUTPUTS")
    if not outputs:
        raise broken("its OUTPUTS is empty")
    if not set(names("WRT", inputs)) <= set(inputs):
        raise broken("its WRT names an input that is not in INPUTS")
    shapes = getattr(module, "SHAPES", {})
    if not (isinstance(shapes, dict) and all(
            isinstance(v, tuple | list) and all(isinstance(n, int) and n >= 0 for n in v)
            for v in shapes.values())):
        raise broken("its SHAPES is not a dict of shapes (tuples of sizes)")

    def numbers(value, shape) -> bool:
        if not shape:
            return isinstance(value, int | float)
        return (isinstance(value, tuple | list) and len(value) == shape[0]
                and all(numbers(v, shape[1:]) for v in value))
    defaults = getattr(module, "DEFAULTS", {})
    if not (isinstance(defaults, dict) and set(defaults) <= set(inputs)
            and all(numbers(v, tuple(shapes.get(k, ()))) for k, v in defaults.items())):
        raise broken("its DEFAULTS is not a dict of numbers (nested lists of them for buses) "
                     "for names in INPUTS")
    if getattr(module, "DTYPE", "float64") not in EPSILONS:
        raise broken(f"its DTYPE is none of {', '.join(map(repr, EPSILONS))}")
    for name, arity in (("forward", len(inputs)), ("backward", len(inputs) + len(outputs))):
        fn = getattr(module, name, None)
        if not callable(fn):
            raise broken(f"it defines no function {name}")
        try:
            inspect.signature(fn).bind(*range(arity))
        except TypeError:
            raise broken(f"its {name} does not take {arity} arguments") from None
        except ValueError:
            pass  # no signature to inspect (a builtin): calling it will tell
