"""The package's layout: no import cycle, no module reaching another's private names, no
module much over `MAX_LINES`. Read from the source with `ast`, nothing imported.

    python tests/test_layout.py     # the import graph's cycles, private imports and sizes

An import inside a function counts as much as one at the top: it still ties the two
modules together. A name is private when it starts with one underscore (not a dunder);
a module may use its own, and a package's `__init__` those of its own modules.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "circuitc"
MAX_LINES = 500
# Modules allowed to stay larger, and why.
LARGER = {
    "circuitc.emit.whole": "the whole-bus NumPy printer, laid out with the indexed IR it prints",
}


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name (`circuitc.emit.python`)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _resolve(module: str, is_package: bool, level: int, target: str | None) -> str:
    """The absolute name of a relative import `from .target` seen in `module`."""
    if level == 0:
        return target or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[:len(base) - (level - 1)]
    return ".".join([*base, target] if target else base)


def imports(known: dict[str, Path]):
    """`(importer, imported module, name or None, line)` for every import and every
    attribute read of an imported module (`api._x`), within the package."""
    for module, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        is_package = path.name == "__init__.py"
        aliases: dict[str, str] = {}  # a local name bound to a module of the package
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                source = _resolve(module, is_package, node.level, node.module)
                if not source.startswith("circuitc"):
                    continue
                for alias in node.names:
                    submodule = f"{source}.{alias.name}"
                    if submodule in known:
                        aliases[alias.asname or alias.name] = submodule
                        yield module, submodule, None, node.lineno
                    else:
                        yield module, source, alias.name, node.lineno
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("circuitc"):
                        aliases[alias.asname or alias.name] = alias.name
                        yield module, alias.name, None, node.lineno
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in aliases):
                yield module, aliases[node.value.id], node.attr, node.lineno


def _private(name: str | None) -> bool:
    return name is not None and name.startswith("_") and not name.startswith("__")


def private_imports(known: dict[str, Path]) -> list[str]:
    """`importer:line imports module._name` for each private name reached from outside."""
    found = []
    for importer, module, name, line in imports(known):
        own = importer == module or (known[importer].name == "__init__.py"
                                     and module.startswith(importer + "."))
        if _private(name) and not own:
            found.append(f"{importer}:{line} imports {module}.{name}")
    return found


def cycles(known: dict[str, Path]) -> list[list[str]]:
    """The import cycles between modules (each once, as the modules in order)."""
    edges: dict[str, set[str]] = {m: set() for m in known}
    for importer, module, _, _ in imports(known):
        if module in known and module != importer:
            edges[importer].add(module)
    found, state = [], {}  # state: 1 on the path, 2 done
    for root in known:
        stack = [(root, iter(sorted(edges[root])))]
        path = [root]
        state[root] = state.get(root) or 1
        if state[root] == 2:
            continue
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
                path.pop()
            elif state.get(child) == 1:
                found.append(path[path.index(child):] + [child])
            elif child not in state:
                state[child] = 1
                path.append(child)
                stack.append((child, iter(sorted(edges[child]))))
    return found


def sizes(known: dict[str, Path]) -> dict[str, int]:
    return {m: len(p.read_text(encoding="utf-8").splitlines()) for m, p in known.items()}


def test_no_import_cycle():
    assert cycles(modules()) == []


def test_no_module_imports_another_modules_private_names():
    assert private_imports(modules()) == []


def test_no_module_is_much_over_the_size_limit():
    over = {m: n for m, n in sizes(modules()).items() if n > MAX_LINES and m not in LARGER}
    assert over == {}


def test_the_check_sees_a_cycle_and_a_private_import(tmp_path, monkeypatch):
    package = tmp_path / "circuitc"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from .b import _hidden\n")
    (package / "b.py").write_text("def f():\n    from . import a\n    return a._x\n")
    known = {"circuitc": package / "__init__.py", "circuitc.a": package / "a.py",
             "circuitc.b": package / "b.py"}
    assert cycles(known) == [["circuitc.a", "circuitc.b", "circuitc.a"]]
    assert private_imports(known) == ["circuitc.a:1 imports circuitc.b._hidden",
                                      "circuitc.b:3 imports circuitc.a._x"]


if __name__ == "__main__":
    known = modules()
    for cycle in cycles(known):
        print("cycle:", " -> ".join(cycle))
    for line in private_imports(known):
        print("private:", line)
    for module, n in sorted(sizes(known).items(), key=lambda item: -item[1]):
        if n > MAX_LINES:
            print(f"size: {module} {n} lines{' (allowed: ' + LARGER[module] + ')' if module in LARGER else ''}")
    sys.exit(0)
