"""What a generated module may contain, checked on its syntax tree.

`check_module(source, target)` parses and compiles a generated module and fails
unless it compiles and every node is one the emitters are meant to produce, so no
`.circ` text can have reached an executable position:

- at module level: a docstring, `import math` (python) or `import numpy as np`
  (numpy), the constants `INPUTS`, `OUTPUTS`, `WRT` (tuples of strings),
  `SHAPES` (strings to tuples of integers), `DEFAULTS` (strings to numbers, or
  nested tuples of numbers for buses), `HESSIAN_PATTERN` (pairs of integers) and
  `_WHERE` and `DTYPE` (strings), and function definitions; with a renamed input, `RENAMED`
  (strings to strings) and, last, the lines that wrap the entry points in
  `_by_circ_names`;
- in `forward` and `backward`: plain positional parameters (seeds default to a
  number), a docstring, assignments of arithmetic on names and numbers, calls of
  the target library's functions (`math.*`, `np.*`), of the module's own helpers
  and of the builtins the gate table prints (`max`, `min`, `abs`; `map` in the
  numpy prologue), attribute access only on the library (and `NAME.shape` in the
  numpy target), one `try` whose only handler re-raises through `_located`, and
  a `return`;
- in a module of the large shape, `_forward` first, checked as the entry points are;
  they call it and take item 0 or 1 of what it returns;
- helper functions: each must be a verbatim copy of one the compiler ships (a
  gate-table helper, a function of `circuitc/emit/numpy_helpers.py`, or
  `_located`, the emitter's text).

Besides the node types, the names: no parameter or local of `forward` and
`backward` may shadow a global or builtin those functions use (an input called
`ValueError` must not break the exception handler), and every free name they use
must be defined by the module or be one of the builtins above.

Whole-bus code (`check_module(source, target, whole_bus=True)`) is held to the module
level, the helpers (the loops' own too) and the names, with the builtins its loops call
(`range`, `float`, `iter`, `next`); the statements and expressions of its functions
(loops, slices, `einsum` specs) are not listed here.
"""

from __future__ import annotations

import ast
import inspect

from circuitc.emit import loops as loops_emit
from circuitc.emit import numpy as numpy_emit
from circuitc.emit import python as python_emit
from circuitc.emit import text as emit_text

LIBRARY = {"python": "math", "numpy": "np"}
IMPORTS = {"python": ("math", None), "numpy": ("numpy", "np")}
CONSTANTS = {"INPUTS", "OUTPUTS", "WRT", "SHAPES", "DEFAULTS", "HESSIAN_PATTERN", "_WHERE",
             "RENAMED", "DTYPE"}
ENTRY_POINTS = ("forward", "backward", "jvp", "hvp", "hessian")  # in this order, the first two always
# The only other module-level statements: wrapping the entry points to take renamed inputs
# by their `.circ` names, as the last lines of a module with a renamed input.
WRAPPED = [f"{name} = _by_circ_names({name})" for name in ENTRY_POINTS]
FUNCTION_BUILTINS = {"python": {"max", "min", "abs", "ArithmeticError", "ValueError"},
                     "numpy": {"map", "ArithmeticError", "ValueError"}}
# Whole-bus code (`emit.loops`, `emit.whole`) also loops over its buses.
WHOLE_BUS_BUILTINS = {"python": FUNCTION_BUILTINS["python"] | {"range", "float", "iter", "next"},
                      "numpy": FUNCTION_BUILTINS["numpy"]}
ARITHMETIC = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow)
SIGNS = (ast.USub, ast.UAdd)
COMPARISONS = (ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Eq, ast.NotEq)


# Read at import, as the emitters do, so that editing the files during a long fuzz run
# does not make the loaded compiler look wrong.
_LOCATED = {"_located": emit_text.LOCATED, "_by_circ_names": emit_text.BY_CIRC_NAMES}
_SHIPPED = {"numpy": {**numpy_emit.HELPER_SOURCES, **_LOCATED},
            "python": {**{name: inspect.getsource(fn).rstrip() for name, fn in python_emit.HELPERS.items()},
                       **_LOCATED},
            "loops": {**loops_emit.HELPER_SOURCES, **_LOCATED}}


def shipped_helpers(target: str) -> dict[str, str]:
    """The source text of every helper function the compiler may copy into a module
    (`loops`: into the python target's whole-bus code)."""
    return _SHIPPED[target]


class Rejected(AssertionError):
    pass


def _fail(node: ast.AST, why: str):
    raise Rejected(f"line {getattr(node, 'lineno', '?')}: {why}: {ast.dump(node)[:200]}")


def _is_str(node) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) is str


def _is_number(node, lib: str) -> bool:
    """A literal number as the emitter prints it: `1.5`, `-2.0`, `math.inf`, `-np.inf`, `np.nan`."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        node = node.operand
    if isinstance(node, ast.Constant):
        return type(node.value) in (float, int)
    return (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
            and node.value.id == lib and node.attr in ("inf", "nan"))


def _is_numbers(node, lib: str) -> bool:
    """A number, or a nested tuple of numbers (a bus's default)."""
    if isinstance(node, ast.Tuple):
        return all(_is_numbers(e, lib) for e in node.elts)
    return _is_number(node, lib)


def _is_shape(node) -> bool:
    return isinstance(node, ast.Tuple) and all(
        isinstance(e, ast.Constant) and type(e.value) is int for e in node.elts)


def _check_constant(node: ast.Assign, lib: str) -> None:
    name = node.targets[0].id
    value = node.value
    if name in ("INPUTS", "OUTPUTS", "WRT"):
        if not (isinstance(value, ast.Tuple) and all(map(_is_str, value.elts))):
            _fail(node, f"{name} must be a tuple of strings")
    elif name == "DEFAULTS":
        if not (isinstance(value, ast.Dict) and all(map(_is_str, value.keys))
                and all(_is_numbers(v, lib) for v in value.values)):
            _fail(node, "DEFAULTS must map strings to numbers")
    elif name == "SHAPES":
        if not (isinstance(value, ast.Dict) and all(map(_is_str, value.keys))
                and all(map(_is_shape, value.values))):
            _fail(node, "SHAPES must map strings to tuples of integers")
    elif name == "HESSIAN_PATTERN":
        if not (isinstance(value, ast.Tuple) and all(
                _is_shape(e) and len(e.elts) == 2 for e in value.elts)):
            _fail(node, "HESSIAN_PATTERN must be a tuple of (row, column) pairs")
    elif name == "RENAMED":
        if not (isinstance(value, ast.Dict) and all(map(_is_str, value.keys))
                and all(map(_is_str, value.values))):
            _fail(node, "RENAMED must map strings to strings")
    elif not _is_str(value):  # _WHERE, DTYPE
        _fail(node, f"{name} must be a string")


class _Expressions(ast.NodeVisitor):
    """Fails on any expression node outside the allowed set."""

    def __init__(self, lib: str, callables: set[str], attributes):
        self.lib, self.callables, self.attributes = lib, callables, attributes

    def generic_visit(self, node):
        _fail(node, f"{type(node).__name__} is not allowed here")

    def visit_Name(self, node):
        pass

    def visit_Constant(self, node):
        if type(node.value) not in (float, int) and node.value is not True:  # `True`: copy=
            _fail(node, "only numeric constants")

    def visit_BinOp(self, node):
        if not isinstance(node.op, ARITHMETIC):
            _fail(node, "operator")
        self.visit(node.left)
        self.visit(node.right)

    def visit_UnaryOp(self, node):
        if not isinstance(node.op, SIGNS):
            _fail(node, "unary operator")
        self.visit(node.operand)

    def visit_Tuple(self, node):
        for e in node.elts:
            self.visit(e)

    def visit_Compare(self, node):
        if len(node.ops) != 1 or not isinstance(node.ops[0], COMPARISONS):
            _fail(node, "a comparison of two operands only")
        self.visit(node.left)
        self.visit(node.comparators[0])

    def visit_IfExp(self, node):
        self.visit(node.test)
        self.visit(node.body)
        self.visit(node.orelse)

    def visit_Attribute(self, node):
        chain, base = [node.attr], node.value
        while isinstance(base, ast.Attribute):
            chain.insert(0, base.attr)
            base = base.value
        if not isinstance(base, ast.Name):
            _fail(node, "attribute of an expression")
        if base.id == self.lib and len(chain) == 1 and not chain[0].startswith("_"):
            return
        if not any(base.id == b and tuple(chain) == c for b, c in self.attributes) and not (
                ("*", tuple(chain)) in self.attributes):
            _fail(node, f"attribute {base.id}.{'.'.join(chain)}")

    def visit_Subscript(self, node):
        call, index = node.value, node.slice
        if not (isinstance(call, ast.Call) and getattr(call.func, "id", None) == "_forward"
                and isinstance(index, ast.Constant) and index.value in (0, 1)):
            _fail(node, "subscript other than _forward(...)[0] or [1]")
        self.visit(call)

    def visit_Call(self, node):
        func = node.func
        if isinstance(func, ast.Name):
            if func.id not in self.callables:
                _fail(node, f"call of {func.id}")
        elif isinstance(func, ast.Attribute):
            self.visit_Attribute(func)
        else:
            _fail(node, "call")
        for arg in node.args:
            self.visit(arg)
        for kw in node.keywords:
            if not (kw.arg and (_is_str(kw.value) or isinstance(kw.value, ast.Constant))):
                _fail(node, "keyword argument")


def _check_arguments(fn: ast.FunctionDef, lib: str) -> None:
    a = fn.args
    if a.vararg or a.kwarg or a.kwonlyargs or a.posonlyargs or fn.decorator_list or fn.returns:
        _fail(fn, "only plain positional parameters")
    if any(arg.annotation for arg in a.args) or not all(_is_number(d, lib) for d in a.defaults):
        _fail(fn, "parameters: no annotations, numeric defaults")


def _bound_names(fn: ast.FunctionDef) -> set[str]:
    bound = {arg.arg for arg in fn.args.args}
    for node in ast.walk(fn):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
            bound.add(node.id)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
    return bound


def _check_handler(handler: ast.ExceptHandler) -> None:
    ok = (isinstance(handler.type, ast.Tuple)
          and [getattr(e, "id", None) for e in handler.type.elts] == ["ArithmeticError", "ValueError"]
          and handler.name == "exc" and len(handler.body) == 1
          and isinstance(handler.body[0], ast.Raise))
    if ok:
        raise_ = handler.body[0]
        call = raise_.exc
        ok = (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
              and call.func.id == "_located" and len(call.args) == 1
              and isinstance(call.args[0], ast.Name) and call.args[0].id == "exc"
              and not call.keywords and isinstance(raise_.cause, ast.Constant)
              and raise_.cause.value is None)
    if not ok:
        _fail(handler, "the only handler is `except (ArithmeticError, ValueError) as exc: "
                       "raise _located(exc) from None`")


def _check_gate_lines(stmts, exprs: _Expressions, lib: str) -> None:
    for stmt in stmts:
        if isinstance(stmt, ast.Assign):
            for t in stmt.targets:
                names = t.elts if isinstance(t, ast.Tuple) else [t]
                if not all(isinstance(n, ast.Name) for n in names):
                    _fail(stmt, "assignments to names only")
            exprs.visit(stmt.value)
        elif isinstance(stmt, ast.Delete) and lib == "np":
            if not all(isinstance(t, ast.Name) for t in stmt.targets):
                _fail(stmt, "del of names only")
        elif isinstance(stmt, ast.With) and lib == "np":
            if len(stmt.items) != 1 or stmt.items[0].optional_vars is not None:
                _fail(stmt, "with np.errstate(...) only")
            call = stmt.items[0].context_expr
            if not (isinstance(call, ast.Call) and ast.unparse(call.func) == "np.errstate"):
                _fail(stmt, "with np.errstate(...) only")
            exprs.visit(call)
            _check_gate_lines(stmt.body, exprs, lib)
        elif isinstance(stmt, ast.If) and lib != "np":  # a `where`'s branch
            test = stmt.test.operand if isinstance(stmt.test, ast.UnaryOp) and isinstance(
                stmt.test.op, ast.Not) else stmt.test
            if not isinstance(test, ast.Name) or stmt.orelse:
                _fail(stmt, "if NAME: or if not NAME: only, with no else")
            _check_gate_lines(stmt.body, exprs, lib)
        elif isinstance(stmt, ast.Try):
            if stmt.orelse or stmt.finalbody or len(stmt.handlers) != 1:
                _fail(stmt, "try with one handler")
            _check_handler(stmt.handlers[0])
            _check_gate_lines(stmt.body, exprs, lib)
        else:
            _fail(stmt, f"{type(stmt).__name__} in a function body")


def _check_entry_point(fn: ast.FunctionDef, lib: str, module_names: set[str], target: str,
                       whole_bus: bool) -> None:
    _check_arguments(fn, lib)
    body = fn.body
    if not (body and isinstance(body[0], ast.Expr) and _is_str(body[0].value)):
        _fail(fn, "a docstring first")
    if not isinstance(body[-1], ast.Return) or body[-1].value is None:
        _fail(fn, "a return last")
    builtins = (WHOLE_BUS_BUILTINS if whole_bus else FUNCTION_BUILTINS)[target]
    if not whole_bus:
        helpers = {n for n in module_names if n.startswith("_")}
        callables = helpers | (builtins - {"ArithmeticError", "ValueError"})
        attributes = {("*", ("shape",))} if target == "numpy" else set()
        exprs = _Expressions(lib, callables, attributes)
        _check_gate_lines(body[1:-1], exprs, lib)
        exprs.visit(body[-1].value)
    # Names: what the body reads without binding it must come from the module or the
    # allowed builtins, and no parameter or local may shadow it.
    bound = _bound_names(fn)
    free = {n.id for n in ast.walk(fn) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
            and n.id not in bound}
    unknown = free - module_names - builtins
    if unknown:
        _fail(fn, f"free names {sorted(unknown)} are neither the module's nor allowed builtins")
    shadowed = bound & (module_names | builtins | {lib})
    if shadowed:
        _fail(fn, f"parameters or locals {sorted(shadowed)} shadow names the function uses")


def _check_helper(fn: ast.FunctionDef, source: str, target: str) -> None:
    shipped = shipped_helpers(target)
    if fn.name not in shipped:
        _fail(fn, f"{fn.name} is not a helper the compiler ships")
    if ast.get_source_segment(source, fn) != shipped[fn.name]:
        _fail(fn, f"{fn.name} differs from the helper the compiler ships")


def check_module(source: str, target: str = "python", whole_bus: bool = False) -> ast.Module:
    """Fail (with `Rejected`) unless `source` has only what a generated module may have.

    Whole-bus code (`whole_bus`: loops, slices, `einsum`) is held to all of it but the
    statements and expressions of its functions: their names (no `.circ` name may shadow
    a builtin or global they use), the module level and the helpers."""
    lib = LIBRARY[target]
    tree = ast.parse(source)
    # Some errors only the compiler finds (an assignment to `__debug__`): the module must
    # be one Python loads, not only one it parses.
    compile(tree, "<generated>", "exec")
    body = tree.body
    if not (body and isinstance(body[0], ast.Expr) and _is_str(body[0].value)):
        _fail(tree, "a module docstring first")
    functions: list[ast.FunctionDef] = []
    module_names = {lib}
    functions_defined = [node.name for node in body if isinstance(node, ast.FunctionDef)]
    wrapped = [line for line, name in zip(WRAPPED, ENTRY_POINTS) if name in functions_defined]
    if wrapped and [ast.unparse(node) for node in body[-len(wrapped):]] == wrapped:
        if "RENAMED" not in {getattr(node.targets[0], "id", None) for node in body if isinstance(node, ast.Assign)}:
            _fail(tree, "wrapped functions without RENAMED")
        body = body[:-len(wrapped)]
    for node in body[1:]:
        if isinstance(node, ast.Import):
            if [(a.name, a.asname) for a in node.names] != [IMPORTS[target]]:
                _fail(node, "import")
        elif isinstance(node, ast.Assign):
            if len(node.targets) != 1 or getattr(node.targets[0], "id", None) not in CONSTANTS:
                _fail(node, "module-level assignment")
            _check_constant(node, lib)
            module_names.add(node.targets[0].id)
        elif isinstance(node, ast.FunctionDef):
            functions.append(node)
            module_names.add(node.name)
        else:
            _fail(node, f"{type(node).__name__} at module level")
    shared = functions[:1] if functions and functions[0].name == "_forward" else []
    functions = functions[len(shared):]
    names = [fn.name for fn in functions]
    entries = [name for name in names if name in ENTRY_POINTS]
    if (names[:2] != ["forward", "backward"] or names[:len(entries)] != entries
            or entries != [name for name in ENTRY_POINTS if name in entries]
            or len(set(names)) != len(names)):
        _fail(tree, f"functions {names}: forward, backward, [jvp, hvp, hessian], then distinct "
                    "helpers")
    for fn in shared + functions[:len(entries)]:
        _check_entry_point(fn, lib, module_names, target, whole_bus)
    for fn in functions[len(entries):]:
        _check_helper(fn, source, "loops" if whole_bus and target == "python" else target)
    return tree

