"""The package's import graph, read from its source (ast): no circles among operators, no re-exports used inside.

- Among ``operators/`` modules no import circle, not even one hidden behind ``TYPE_CHECKING``:
  the operator and its helpers form layers, helpers never reach back for the operator.
- A module of the package imports each name from the module that defines it, not through a
  re-export: not through a plain module that only passes a name on, nor through the
  ``__init__`` of a package the importing module belongs to. A subpackage's ``__init__`` is its
  public face for the rest of the package (``from airflow_provider_xai_batch.client import Batch``).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import airflow_provider_xai_batch

ROOT = Path(airflow_provider_xai_batch.__file__).parent
PACKAGE = ROOT.name


@dataclass
class Module:
    name: str
    is_package: bool
    tree: ast.Module
    defined: set[str] = field(default_factory=set)


def _module_name(path: Path) -> tuple[str, bool]:
    parts = [PACKAGE, *path.relative_to(ROOT).with_suffix("").parts]
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def _defined_names(tree: ast.Module) -> set[str]:
    """Names a module defines itself at top level (functions, classes, assignments), not imports."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            targets = [node.target]
        for target in targets:
            for name in ast.walk(target):
                if isinstance(name, ast.Name):
                    names.add(name.id)
    return names


def load_modules() -> dict[str, Module]:
    modules: dict[str, Module] = {}
    for path in sorted(ROOT.rglob("*.py")):
        name, is_package = _module_name(path)
        tree = ast.parse(path.read_text(), filename=str(path))
        modules[name] = Module(name, is_package, tree, _defined_names(tree))
    return modules


def _resolve(module: Module, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.name.split(".")
    if not module.is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def imports_of(module: Module) -> Iterator[tuple[str, str | None, int]]:
    """``(module imported from, name or None, line)`` for every import of the package, anywhere in the file."""
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(PACKAGE):
                    yield alias.name, None, node.lineno
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(module, node)
            if source.split(".")[0] == PACKAGE:
                for alias in node.names:
                    yield source, alias.name, node.lineno


def _targets(modules: dict[str, Module], source: str, name: str | None) -> str:
    """The module an import depends on: the submodule when ``name`` is one, else ``source``."""
    if name is not None and f"{source}.{name}" in modules:
        return f"{source}.{name}"
    return source


def import_graph(modules: dict[str, Module]) -> dict[str, set[str]]:
    return {
        name: {_targets(modules, source, imported) for source, imported, _ in imports_of(module)} - {name}
        for name, module in modules.items()
    }


def cycles_among(graph: dict[str, set[str]], prefix: str) -> list[list[str]]:
    """Every elementary circle found by a depth-first walk of the modules under ``prefix``."""
    inside = {
        name: {t for t in targets if t.startswith(prefix)}
        for name, targets in graph.items()
        if name.startswith(prefix)
    }
    found: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for target in sorted(inside.get(node, ())):
            if state.get(target) == 1:
                found.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target)
        path.pop()
        state[node] = 2

    for node in sorted(inside):
        if node not in state:
            visit(node)
    return found


def reexport_imports(modules: dict[str, Module]) -> list[str]:
    """Imports of a name through a module that does not define it (see the module docstring)."""
    found = []
    for module in modules.values():
        for source, name, line in imports_of(module):
            if name is None or name == "*" or source not in modules or f"{source}.{name}" in modules:
                continue
            through = modules[source]
            if name in through.defined:
                continue
            own_package = through.is_package and module.name.startswith(f"{source}.")
            if own_package or not through.is_package:
                found.append(f"{module.name}:{line} imports {name} through {source}")
    return found


def test_the_walk_sees_the_package_and_its_imports() -> None:
    modules = load_modules()
    graph = import_graph(modules)
    assert f"{PACKAGE}.operators.one_task" in graph
    assert f"{PACKAGE}.operators._resubmit" in graph[f"{PACKAGE}.operators.one_task"]
    # The checks themselves find what they are meant to find.
    assert cycles_among({"p.a": {"p.b"}, "p.b": {"p.c"}, "p.c": {"p.a"}, "q": {"p.a"}}, "p.") == [
        ["p.a", "p.b", "p.c", "p.a"]
    ]
    fake = {
        "p": Module("p", True, ast.parse("from p.x import f\n"), {"g"}),
        "p.x": Module("p.x", False, ast.parse("def f(): ...\n"), {"f"}),
        "p.y": Module("p.y", False, ast.parse("from p import f\nfrom p.x import f\n"), set()),
    }
    assert [line.split(" ", 1)[1] for line in _reexports_in(fake, "p")] == ["imports f through p"]


def _reexports_in(modules: dict[str, Module], package: str) -> list[str]:
    global PACKAGE
    saved, PACKAGE = PACKAGE, package
    try:
        return reexport_imports(modules)
    finally:
        PACKAGE = saved


def test_no_import_circle_among_the_operators() -> None:
    graph = import_graph(load_modules())
    assert cycles_among(graph, f"{PACKAGE}.operators.") == []


def test_no_module_imports_a_name_through_a_re_export() -> None:
    assert reexport_imports(load_modules()) == []
