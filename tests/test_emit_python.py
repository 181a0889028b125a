"""The generated Python module (docs/module.md): shape, names, errors, hygiene."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys

import pytest

import circuitc
from conftest import CIRCUITS, EXAMPLES, ROOT, load_source, run_cli


def test_module_interface_for_the_neuron():
    m = circuitc.load(EXAMPLES[0].parent / "neuron.circ")
    assert m.INPUTS == ("a", "b", "c", "x", "y")
    assert m.OUTPUTS == ("f",)
    assert m.DEFAULTS == {"a": 1.0, "b": 2.0, "c": -3.0, "x": -1.0, "y": 3.0}
    assert list(inspect.signature(m.forward).parameters) == list(m.INPUTS)
    params = inspect.signature(m.backward).parameters
    assert list(params) == [*m.INPUTS, "d_f"] and params["d_f"].default == 1.0


def test_only_math_is_imported_and_code_is_straight_line():
    source = circuitc.compile_file(EXAMPLES[0].parent / "neuron.circ")
    assert [line for line in source.splitlines() if "import" in line] == ["import math"]
    body = source.split("def backward")[1].split("\n\n\n")[0]
    for keyword in ("for ", "while ", "if ", "lambda"):
        assert keyword not in body


def test_lines_are_named_after_wires_with_source_lines():
    source = circuitc.compile_file(EXAMPLES[0].parent / "neuron.circ")
    assert "    s = a * x + b * y + c  # line 4\n" in source
    assert "    f = _sigmoid(s)  # line 5\n" in source
    assert "d_s = d_f * " in source


def test_where_maps_each_line_that_can_raise_to_its_gate():
    text = "input x\ny = 1 + x\nf = log(y) / x\n"
    source = circuitc.compile_source(text, "w.circ")
    lines = source.splitlines()
    entries = source.split('_WHERE = """\n')[1].split('"""')[0].splitlines()
    where = {lines[int(number) - 1].strip(): position
             for number, position in (entry.split(" ", 1) for entry in entries)}
    assert where == {  # one entry per line of forward and backward whose gate can raise
        "t1 = math.log(y)  # line 3": "w.circ:3:5: in 'log'",
        "f = t1 / x  # line 3": "w.circ:3:12: in '/'",
        "t2 = d_f / x  # line 3": "w.circ:3:12: in the gradient of '/'",
        "d_y = t2 / y  # line 3": "w.circ:3:5: in the gradient of 'log'",
    }
    assert len(entries) == 6
    m = load_source(text, "w.circ")
    with pytest.raises(ZeroDivisionError, match="^w.circ:3:12: in '/': float division by zero$"):
        m.forward(0.0)
    with pytest.raises(ZeroDivisionError, match="^w.circ:3:12: in '/': float division by zero$"):
        m.backward(0.0)


@pytest.mark.parametrize("target", ["python", "numpy"])
@pytest.mark.parametrize("path", EXAMPLES, ids=[path.name for path in EXAMPLES])
def test_every_where_entry_names_a_line_of_its_gate(path, target):
    """Each `_WHERE` entry's module line is a gate's line whose comment gives the `.circ`
    line the entry names, whatever the head above the functions holds."""
    source = circuitc.compile_file(path, target, hessian=True, jvp=True)
    lines = source.splitlines()
    where = source.split('_WHERE = """\n')[1:]  # none when no line can raise
    entries = where[0].split('"""')[0].splitlines() if where else []
    assert entries or target == "python"
    for entry in entries:
        number, position = entry.split(" ", 1)
        line = lines[int(number) - 1]
        assert re.search(rf"  # line {position.split(':')[1]}\b", line), (entry, line)


def test_where_counts_the_lines_of_a_wrapped_hessian_pattern():
    """`HESSIAN_PATTERN` longer than a line takes a line per pair: the lines below it,
    and their `_WHERE` entries, move down by as many."""
    text = "input a, b, c, d, e\nf = log(a * b * c * d * e)\n"
    source = circuitc.compile_source(text, "p.circ", hessian=True)
    assert "HESSIAN_PATTERN = (\n" in source
    m = circuitc.api.load_compiled_source(text, "p.circ", hessian=True)[0]
    for function in (m.forward, m.hessian):
        with pytest.raises(ValueError, match="^p.circ:2:5: in 'log': math domain error$"):
            function(-1.0, 1.0, 1.0, 1.0, 1.0)


@pytest.mark.parametrize("filename", ['a"""b.circ', "back\\slash.circ", 'quote".circ', "tab\t.circ"])
def test_where_keeps_any_file_name(filename):
    m = load_source("f = log(x)", filename)
    shown = filename if filename.isprintable() else repr(filename)
    with pytest.raises(ValueError, match=f"^{re.escape(shown)}:1:5: in 'log': math domain error$"):
        m.backward(-1.0)


def test_forward_values_are_reused_not_recomputed():
    source = circuitc.compile_source("f = sigmoid(x) + exp(y)")
    backward = source.split("def backward")[1].split("\n\n\n")[0]
    assert backward.count("_sigmoid(") == 1 and backward.count("math.exp(") == 1


def test_a_gradient_no_gate_needs_is_computed_in_the_return():
    source = circuitc.compile_source("input x, y\nf = x * y + sqrt(y)\n", "r.circ")
    backward = source.split("def backward")[1].split("\n\n\n")[0]
    # The gradient of sqrt can raise (1/sqrt(0)), so it keeps a line that _WHERE names,
    # inside the `try`; the rest of the gradients cannot, and go in the return.
    assert "        t2 = d_f / (2.0 * t1)  # line 2\n" in backward
    assert backward.splitlines()[-1] == "    return f, (d_f * y, t2 + d_f * x)"
    m = load_source("input x, y\nf = x * y + sqrt(y)\n", "r.circ")
    assert m.backward(2.0, 4.0, 10.0) == (10.0, (40.0, 22.5))
    with pytest.raises(ZeroDivisionError, match="^r.circ:2:13: in the gradient of 'sqrt'"):
        m.backward(2.0, 0.0)


def test_many_gradients_are_returned_one_a_line():
    names = [f"x{i}" for i in range(30)]
    text = f"input {', '.join(names)}\nf = {' + '.join(f'{n} * {i + 2}' for i, n in enumerate(names))}\n"
    source = circuitc.compile_source(text)
    tail = source.split("def backward")[1].split("\n\n\n")[0].splitlines()
    start = tail.index("    return f, (")
    assert tail[start + 1:] == [f"        d_f * {i + 2.0}," for i in range(30)] + ["    )"]
    m = load_source(text)
    assert m.backward(*range(30), 0.5)[1] == tuple((i + 2) / 2 for i in range(30))


def test_a_return_line_stays_within_100_characters():
    text = ("input alpha, beta, gamma\noutput first_output, second_output\n"
            "first_output = alpha * beta * gamma\nsecond_output = alpha + beta + gamma\n")
    lines = circuitc.compile_source(text, "w.circ").split("def backward")[1].split("\n\n\n")[0]
    # On one line the return would take 109 characters, though the tuple alone fits.
    assert "    return (first_output, second_output), (\n        d_second_output + t2 * beta,\n" in lines
    assert max(len(line) for line in lines.splitlines()[2:]) <= 100


def test_deterministic_bytes():
    for path in EXAMPLES:
        assert circuitc.compile_file(path) == circuitc.compile_file(path)


def test_header_names_source_and_version():
    first = circuitc.compile_source("f = x", "my.circ").splitlines()[0]
    assert first == f"# Generated by circuitc {circuitc.__version__} from my.circ; do not edit."


def test_generated_modules_pass_ruff(tmp_path):
    sources = [circuitc.compile_file(path) for path in EXAMPLES]
    sources += [circuitc.compile_source(t) for t in (
        "f = x", "input lambda, math, d_f\nf = lambda * math + d_f\n", "f = 1e999 * x - 1e999",
        "f = relu(x) + abs(y) + max(x, y) + min(x, y) + softplus(x)", "input x\nf = 3\n",
        "input " + ", ".join(f"x{i}" for i in range(30)) + "\nf = " + " * ".join(f"x{i}" for i in range(30)))]
    for i, source in enumerate(sources):
        (tmp_path / f"m{i}.py").write_text(source, encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", str(tmp_path)],
                            check=False, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize(("inputs", "params"), [
    (["lambda", "x"], ["lambda_", "x"]),
    (["math", "math_"], ["math__", "math_"]),          # the valid name keeps its spelling
    (["forward", "INPUTS", "exc", "_sigmoid"], ["forward_", "INPUTS_", "exc_", "_sigmoid_"]),
    (["class", "None", "True", "def"], ["class_", "None_", "True_", "def_"]),
])
def test_keywords_and_module_names_are_renamed(inputs, params):
    m = load_source(f"input {', '.join(inputs)}\nf = {' + '.join(inputs)} + sigmoid(0)\n")
    assert m.INPUTS == tuple(inputs)
    assert list(inspect.signature(m.forward).parameters) == params
    assert m.forward(*range(1, len(inputs) + 1)) == sum(range(1, len(inputs) + 1)) + 0.5


def test_seed_never_collides_with_an_input():
    m = load_source("input d_f, f_in\nf = d_f * f_in\n")
    assert list(inspect.signature(m.backward).parameters) == ["d_f", "f_in", "d_f_"]
    assert m.backward(2.0, 3.0, d_f_=10.0) == (6.0, (30.0, 20.0))


def test_adjoint_names_never_collide_with_wires():
    m = load_source("input x\nd_x = x * 2\nd_d_x = d_x * 3\nf = d_d_x + x\n")
    assert m.backward(1.0) == (7.0, (7.0,))


def test_temporaries_never_collide_with_wires():
    m = load_source("input t1, t2\nt3 = t1 * t2 + t1 * 3\nf = t3 * t3\n")
    assert m.forward(1.0, 2.0) == 25.0
    assert m.backward(1.0, 2.0) == (25.0, (50.0, 10.0))


@pytest.mark.parametrize(("text", "args", "error", "where"), [
    ("input x\ny = 1 + x\nf = log(y)\n", (-5.0,), ValueError, "bad.circ:3:5: in 'log'"),
    ("f = sqrt(x)", (-1.0,), ValueError, "bad.circ:1:5: in 'sqrt'"),
    ("f = x / y", (1.0, 0.0), ZeroDivisionError, "bad.circ:1:7: in '/'"),
    ("f = exp(x)", (1000.0,), OverflowError, "bad.circ:1:5: in 'exp'"),
    ("f = pow(x, 0.5)", (-1.0,), ValueError, "bad.circ:1:5: in 'pow'"),
    ("gate safe(u) = log(u)\nf = safe(x)\n", (0.0,), ValueError,
     "bad.circ:2:5: in call of 'safe': bad.circ:1:16: in 'log'"),
])
def test_domain_errors_name_the_gate_and_position(text, args, error, where):
    m = load_source(text, "bad.circ")
    for function in (m.forward, m.backward):
        with pytest.raises(error, match="^" + where):
            function(*args)


def test_gradient_domain_errors_name_the_gradient():
    m = load_source("f = sqrt(x)", "bad.circ")
    assert m.forward(0.0) == 0.0
    with pytest.raises(ZeroDivisionError, match="^bad.circ:1:5: in the gradient of 'sqrt'"):
        m.backward(0.0)


def test_untrusted_file_names_stay_inside_comments_and_strings():
    nasty = 'x"""\nimport os\r# \u2028\'.circ'
    source = circuitc.compile_source("f = log(x)", nasty)
    namespace: dict = {}
    exec(compile(source, "nasty", "exec"), namespace)  # noqa: S102
    assert "import os" not in [line.strip() for line in source.splitlines()]
    assert "os" not in namespace
    with pytest.raises(ValueError, match="in 'log'"):
        namespace["forward"](-1.0)


def test_the_docs_show_the_generated_neuron_module():
    page = (ROOT / "docs" / "module.md").read_text(encoding="utf-8")
    block = page.split("`circuitc compile circuits/neuron.circ` writes `circuits/neuron.py`:")[1]
    shown = block.split("```python\n")[1].split("```")[0]
    expected = circuitc.compile_source((CIRCUITS / "neuron.circ").read_text(), "circuits/neuron.circ")
    assert shown == expected


@pytest.mark.parametrize("text", ["f = 0 ** x", "f = (-8) ** x"])
def test_a_gradient_that_fails_on_constants_compiles_and_raises_when_called(text):
    m = load_source(text, "z.circ")
    assert m.forward(2.0) == (0.0 if "0 **" in text else 64.0)
    with pytest.raises(ValueError, match=r"^z.circ:1:\d+: in the gradient of '\*\*'"):
        m.backward(2.0)


def test_docstrings_say_what_the_functions_return():
    m = load_source("input x, y\ns = x + y\np = x * y\noutput s, p\n")
    assert m.forward.__doc__ == "Return (s, p)."
    assert m.backward.__doc__.startswith("Return ((s, p), grads), grads[k] = d(d_s*s + d_p*p)/d(WRT[k])")
    assert m.backward(1.0, 2.0)[0] == m.forward(1.0, 2.0)


RENAMED_CIRCUIT = "input lambda = 1, x = 2, math = 3\nf = lambda * x + math\n"


@pytest.mark.parametrize("target", ["python", "numpy"])
def test_every_documented_call_works_with_renamed_inputs(tmp_path, target):
    """The documented idioms pass inputs by their `.circ` names, which a parameter cannot
    always be (`lambda`): the functions take those names as keywords too."""
    path = tmp_path / "renamed.circ"
    path.write_text(RENAMED_CIRCUIT)
    m = circuitc.load(path, target=target)
    assert m.INPUTS == ("lambda", "x", "math") and m.RENAMED == {"lambda": "lambda_", "math": "math_"}
    value, grads = m.backward(**m.DEFAULTS)  # the Python API's idiom
    assert (value, tuple(grads)) == (5.0, (2.0, 1.0, 1.0))
    assert m.forward(**m.DEFAULTS) == m.forward(1.0, 2.0, 3.0) == m.forward(lambda_=1.0, x=2.0, math_=3.0) == 5.0
    assert m.backward(1.0, math=3.0, x=2.0, d_f=2.0) == (5.0, (4.0, 2.0, 2.0))
    assert list(inspect.signature(m.backward).parameters) == ["lambda_", "x", "math_", "d_f"]
    with pytest.raises(TypeError, match="'lambda' twice"):
        m.forward(x=2.0, math=3.0, **{"lambda": 1.0, "lambda_": 1.0})
    # The training idiom: parameters in a dict keyed by `WRT`, data by keyword.
    module = circuitc.load(path, target=target, wrt=["lambda", "math"])
    params = {"lambda": 1.0, "math": 3.0}
    _, grads = module.backward(x=2.0, **params, d_f=1.0)
    for name, g in zip(module.WRT, grads, strict=True):
        params[name] -= 0.5 * g
    assert params == {"lambda": 0.0, "math": 2.5}
    result = run_cli("eval", "renamed.circ", "lambda=2", "--target", target, cwd=tmp_path)
    assert result.returncode == 0 and "f = 7.0" in result.stdout and "df/dlambda = 2.0" in result.stdout


def test_a_module_without_renamed_inputs_is_not_wrapped():
    source = circuitc.compile_source("input a, x\nf = a * x\n")
    assert "RENAMED" not in source and "_by_circ_names" not in source
