"""No `.circ` text reaches an executable position of a generated module.

Adversarial names, numbers, comments and file names are compiled for every target;
each module must pass the syntax-tree whitelist of `whitelist.py`, compile, and
compute exactly what the same circuit with harmless names computes.
"""

from __future__ import annotations

import ast
import functools
import keyword
import math
import re

import numpy as np
import pytest

import circuitc
from circuitc import api
from circuitc.emit import loops as loops_emit
from circuitc.emit import numpy as numpy_emit
from circuitc.emit import python as python_emit
from circuitc.gates import CALLABLE
from circuitc.indexed import plan
from circuitc.parse import KEYWORDS, parse
from conftest import run_cli
from whitelist import Rejected, check_module

TARGETS = ("python", "numpy")

# Names a careless emitter would let through: keywords, builtins (those the generated
# code reads among them), dunders, the module's own names, its helpers and temporaries,
# seed and adjoint spellings, and names that differ from those only in case.
HOSTILE_NAMES = sorted({
    *keyword.kwlist, "match", "case", "type", "_",
    "__import__", "__class__", "__builtins__", "__name__", "__doc__", "__dict__", "__file__",
    "__spec__", "__loader__", "__annotations__", "__init__", "__debug__",
    "exec", "eval", "compile", "open", "print", "getattr", "globals", "locals", "vars",
    "float", "int", "map", "isinstance", "len", "range", "tuple", "sum", "object", "next",
    "iter", "list", "acc", "grads", *loops_emit.NAMES,
    "ValueError", "ArithmeticError", "OverflowError", "ZeroDivisionError", "Exception",
    "FloatingPointError", "BaseException", "NameError", "TypeError",
    *python_emit.RESERVED, *numpy_emit.RESERVED, "np", "numpy", "math",
    "t1", "t2", "t3", "d_x", "d_a", "d_d_f", "d_", "d", "f_", "x_",
    "Math", "MATH", "Np", "NP", "Forward", "BACKWARD", "Inputs", "inputs", "outputs",
    "defaults", "wrt", "Exc", "_where", "_Located", "_SIGMOID", "T1",
} - set(CALLABLE) - set(KEYWORDS))


def compile_checked(text: str, target: str, filename: str = "hostile.circ"):
    """Compile `text`, check the module against the whitelist, and import it."""
    source = circuitc.compile_source(text, filename, target)
    check_module(source, target)
    namespace: dict = {}
    exec(compile(source, "<generated>", "exec"), namespace)  # noqa: S102 (checked above)
    return source, namespace


def results(namespace: dict, args: list[float]):
    value = namespace["forward"](*args)
    return value, namespace["backward"](*args)


def _same(a, b) -> bool:
    if isinstance(a, tuple):
        return len(a) == len(b) and all(map(_same, a, b))
    a, b = float(a), float(b)
    return (math.isnan(a) and math.isnan(b)) or a == b


def _circuit(name: str) -> str:
    """A circuit where `name` is an input, then a wire, an output, a parameter and a gate.

    The input is read by a gate that can fail, so the exception handler runs, and the
    outputs are `f` and the name's wire, whose seed is `d_f` (also an input here).
    """
    return (f"input {name} = 0.5, d_f = 2\n"
            f"gate g{name}({name}, other) = {name} * other + sigmoid({name})\n"
            f"{name}_w = g{name}({name}, d_f)\n"
            f"f = log({name}) * d_f + {name}_w\n"
            "output f, " + f"{name}_w\n")


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_names_are_renamed_and_behave(name, target):
    source, ns = compile_checked(_circuit(name), target)
    _, reference = compile_checked(_circuit("a"), target)
    assert ns["INPUTS"] == (name, "d_f") and ns["OUTPUTS"] == ("f", f"{name}_w")
    assert ns["DEFAULTS"] == {name: 0.5, "d_f": 2.0}
    for point in ([0.5, 2.0], [3.0, -1.5]):
        assert _same(results(ns, point), results(reference, point)), source
    with pytest.raises((ValueError, ArithmeticError), match=r"^hostile\.circ:4:5: in 'log'"):
        ns["forward"](-1.0, 2.0)
    with pytest.raises((ValueError, ArithmeticError), match=r"^hostile\.circ:4:5: in 'log'"):
        ns["backward"](-1.0, 2.0)


@pytest.mark.parametrize("target", TARGETS)
def test_names_differing_only_in_case_stay_apart(target):
    names = ["x", "X", "math", "Math", "MATH", "exc", "Exc", "t1", "T1"]
    text = f"input {', '.join(names)}\nf = " + " + ".join(
        f"{k + 1}*{n}" for k, n in enumerate(names)) + "\n"
    _, ns = compile_checked(text, target)
    value, grads = ns["backward"](*([1.0] * len(names)))
    assert tuple(map(float, grads)) == tuple(float(k + 1) for k in range(len(names)))
    assert float(value) == sum(range(1, len(names) + 1))


# A bus circuit with a name in each role: a scalar input `a`, a bus input `x`, a bus `w`,
# a wire `s`, an index variable used as a number `i`, a reduction's variable `j`. It has
# every reduction (in loops, `max` and `min` use `iter` and `next`), an offset and a
# constant index, and a gate that can fail (`log`, on line 5).
BUS_CIRCUIT = """size n = 5
input {x}[n] = [0.5, 1, 2, 0.25, 1.5], {a} = 0.5
{w}[{i}] = {x}[{i}] * {a} + {i} + {x}[4 - {i}]
{s} = sum({w}[{j}] * {x}[{j}] for {j}) + max({w}[{j}] for {j}) - min({x}[{j}] for {j})
t = {s} * log({x}[0]) + prod({x}[{j}] for {j}) + logsumexp({w}[{j}] for {j}) + {w}[1]
output {s}, t, {w}
"""
ROLES = ("a", "x", "w", "s", "i", "j")


def _bus_circuit(names) -> str:
    return BUS_CIRCUIT.format(**dict(zip(ROLES, names)))


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("k", range(len(HOSTILE_NAMES)), ids=lambda k: HOSTILE_NAMES[k])
def test_hostile_names_in_whole_bus_code(k, target, monkeypatch):
    """Whole-bus NumPy code, and the python target's loops (at any size here), with six
    hostile names in the six roles (over all `k`, each name takes each role): the module
    passes the whitelist's checks of names, and computes what the same circuit with
    harmless names does."""
    monkeypatch.setattr(api, "LOOPS_FROM", 0)
    text = _bus_circuit([HOSTILE_NAMES[(k + r) % len(HOSTILE_NAMES)] for r in range(len(ROLES))])
    source = circuitc.compile_source(text, "hostile.circ", target)
    assert plan(parse(text), "hostile.circ") is not None  # whole-bus code, not written out
    check_module(source, target, whole_bus=True)
    ns: dict = {}
    exec(compile(source, "<generated>", "exec"), ns)  # noqa: S102 (checked above)
    reference = _harmless(target)
    x = [0.5, 1.0, 2.0, 0.25, 1.5]
    for point in ([x, 0.5], [[1.5, 2.0, 0.5, 1.0, 3.0], -2.0]):
        args = [np.array(point[0]) if target == "numpy" else point[0], point[1]]
        assert _same(_plain(results(ns, args)), _plain(results(reference, args))), source
    args = [np.array([-1.0, *x[1:]]) if target == "numpy" else [-1.0, *x[1:]], 0.5]
    column = text.split("\n")[4].index("log(") + 1
    with pytest.raises((ValueError, ArithmeticError), match=rf"^hostile\.circ:5:{column}: in 'log'"):
        ns["backward"](*args)


@functools.cache
def _harmless(target: str) -> dict:
    saved, api.LOOPS_FROM = api.LOOPS_FROM, 0
    try:
        return vars(api.load_source(_bus_circuit(ROLES), "harmless.circ", target))
    finally:
        api.LOOPS_FROM = saved


def _plain(value):
    """Results as nested tuples of floats, arrays included."""
    if isinstance(value, tuple | list):
        return tuple(_plain(v) for v in value)
    if hasattr(value, "tolist"):
        return _plain(value.tolist())
    return float(value)


NUMBERS = ["1e999", "1e-400", "0000.5", "00", "0e0", ".5e-0", "1E+308", "2.5E+4", "9" * 400,
           "1" + "0" * 308, "4.9e-324", "2.2250738585072014e-308", "123456789012345678901234567890",
           "0." + "0" * 500 + "1", "1" + "0" * 400 + "e-400"]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("number", NUMBERS, ids=lambda n: n if len(n) < 20 else f"{n[:8]}...{len(n)}")
def test_numbers_are_reprinted_by_the_compiler(number, target):
    value = float(number)
    text = f"input x = {number}\nf = x * 0.5 + {number}\ng = -{number} * x\noutput f, g\n"
    source, ns = compile_checked(text, target)
    assert number not in source or number == repr(value)  # re-printed, never copied
    assert _same(ns["DEFAULTS"]["x"], value)
    for x in (1.0, 0.5):
        assert _same(ns["forward"](x), (x * 0.5 + value, -value * x))


DISGUISES = ["\r", "\x0b", "\x0c", "\u2028", "\u2029", "\x85", "\x1c", "\x1d", "\x1e", "\x00",
             '"', "'", '"""', "'''", "\\", "\\n", "#", "\t", "\ufeff", "\u202e"]
PAYLOAD = "__import__('os').system('touch PWNED')"


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("disguise", DISGUISES, ids=repr)
def test_comments_never_reach_the_module(disguise, target):
    text = (f"# {disguise}{PAYLOAD}{disguise}\n"
            f"f = x * y  # {disguise}{PAYLOAD}\n"
            f"g = f + 1 #{disguise}{disguise}x = 1{disguise}")
    source, ns = compile_checked(text, target)
    assert "PWNED" not in source and "import__" not in source
    assert ns["INPUTS"] == ("x", "y") and ns["OUTPUTS"] == ("g",)
    assert float(ns["forward"](2.0, 3.0)) == 7.0


FILENAMES = ["a\nimport os\nos.system('x').circ", 'q"uote.circ', "q'uote.circ", '"""x""".circ',
             "cr\r.circ", "ff\x0c.circ", "ls\u2028.circ", "back\\slash.circ", "nul\x00.circ",
             "{braces}.circ", "%s%d.circ", "ünïcödé.circ", "trail\\"]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("filename", FILENAMES, ids=repr)
def test_file_names_stay_in_strings_and_comments(filename, target):
    source, ns = compile_checked("f = log(x)\n", target, filename)
    assert "os.system" not in source or repr(filename)[1:-1] in source
    with pytest.raises((ValueError, ArithmeticError)) as raised:
        ns["forward"](-1.0)
    shown = filename if filename.isprintable() else repr(filename)
    assert str(raised.value).startswith(f"{shown}:1:5: in 'log'")


def test_a_file_name_with_a_newline_through_the_cli(tmp_path):
    circ = tmp_path / "evil\nimport os\n'.circ"
    circ.write_text("f = x * 2\n")
    out = tmp_path / "out.py"
    result = run_cli("compile", circ.name, "-o", out, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    check_module(out.read_text())


# The whitelist itself must reject what an injection would produce.
SAFE = "f = log(x) * y\n"
ATTACKS = [
    ("t1 = math.log(x)", "t1 = __import__('os').system('x')"),
    ("t1 = math.log(x)", "t1 = math.log(x).__class__"),
    ("t1 = math.log(x)", "t1 = x.__class__"),
    ("t1 = math.log(x)", "t1 = eval('x')"),
    ("t1 = math.log(x)", "t1 = [x][0]"),
    ("t1 = math.log(x)", "t1 = (lambda: x)()"),
    ("t1 = math.log(x)", "t1 = 'text'"),
    ('INPUTS = ("x", "y")', 'import os\nINPUTS = ("x", "y")'),
    ('INPUTS = ("x", "y")', 'INPUTS = (print("x"), "y")'),
    ('OUTPUTS = ("f",)', 'OUTPUTS = ("f",)\nprint(1)'),
    ("def forward(x, y):", "def forward(x, y, *rest):"),
    ("def forward(x, y):", "def forward(x, y=print()):"),
    ("def forward(x, y):", "def forward(x, ValueError):"),
    ("def forward(x, y):", "@print\ndef forward(x, y):"),
]


@pytest.mark.parametrize(("old", "new"), ATTACKS, ids=[new for _, new in ATTACKS])
def test_the_whitelist_rejects_injected_code(old, new):
    source = circuitc.compile_source(SAFE, "safe.circ")
    check_module(source)
    # Find the line to replace whatever temporary name the emitter chose.
    lines = source.split("\n")
    if old.startswith("t1 = "):
        index = next(i for i, line in enumerate(lines) if "math.log(x)" in line)
        indent = lines[index][: len(lines[index]) - len(lines[index].lstrip())]
        lines[index] = indent + new
    else:
        index = next(i for i, line in enumerate(lines) if line.startswith(old))
        lines[index] = new + lines[index][len(old):]
    tampered = "\n".join(lines)
    ast.parse(tampered)  # still valid Python: the whitelist, not the parser, rejects it
    with pytest.raises(Rejected):
        check_module(tampered)


def test_a_helper_that_differs_from_the_shipped_one_is_rejected():
    source = circuitc.compile_source("f = sigmoid(x)\n")
    check_module(source)
    tampered = source.replace("return z / (1.0 + z)", "return z / (1.0 + z) + 0.0")
    assert tampered != source
    with pytest.raises(Rejected, match="differs from the helper"):
        check_module(tampered)


@pytest.mark.parametrize("target", TARGETS)
def test_wrt_keeps_hostile_names_as_strings(target):
    names = ["lambda", "__import__", "ValueError", "d_f"]
    text = f"input {', '.join(names)}\nf = " + " * ".join(names) + "\n"
    source = circuitc.compile_source(text, "wrt.circ", target, wrt=names[::-1])
    check_module(source, target)
    namespace: dict = {}
    exec(compile(source, "<generated>", "exec"), namespace)  # noqa: S102 (checked above)
    assert namespace["WRT"] == tuple(names[::-1])
    _, grads = namespace["backward"](1.0, 2.0, 3.0, 4.0)
    assert tuple(map(float, grads)) == (6.0, 8.0, 12.0, 24.0)


def test_helpers_are_copied_as_loaded_even_if_the_files_change(monkeypatch):
    """A long-running process whose circuitc files are replaced on disk (an upgrade) must
    still copy the helpers it runs, not whatever lines now sit where they were."""
    import inspect

    before = circuitc.compile_source("f = sigmoid(x) + softplus(x)\n")
    monkeypatch.setattr(inspect, "getsource", lambda obj: "def _other(x):\n    return x\n")
    after = circuitc.compile_source("f = sigmoid(x) + softplus(x)\n")
    assert after == before
    check_module(after)


def test_the_whitelist_rejects_whole_bus_code_that_shadows_a_builtin(monkeypatch):
    """What an emitter that did not reserve `range` would write: an input `range`."""
    monkeypatch.setattr(api, "LOOPS_FROM", 0)
    source = circuitc.compile_source(_bus_circuit(ROLES), "c.circ", "python")
    check_module(source, "python", whole_bus=True)
    tampered = re.sub(r"\ba\b", "range", source)
    assert "def forward(x, range):" in tampered
    with pytest.raises(Rejected, match="shadow"):
        check_module(tampered, "python", whole_bus=True)
