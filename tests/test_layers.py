"""The shape of the code: no import cycles, dependencies pointing one way, method facts in the
method modules, and every package installed.

The layer order is written down here and in the README ("Layout"). A module may import from its
own package and from lower layers only; packages that share a layer do not import each other.
Imports inside functions and under TYPE_CHECKING count as well, and so does an
`importlib.import_module` of a literal name.
"""
from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest
import tomllib

from methods import METHODS

REPO = Path(__file__).resolve().parents[1]
#: top-level folders and the package name each is imported as
ROOTS = {"bench": "bench", "methods": "methods", "analysis": "analysis", "datasets": "noisytail_datasets"}
#: lowest first; a module may import its own package and any lower layer
LAYERS = (
    ("bench.core",),
    ("bench.nn", "noisytail_datasets"),
    ("methods",),
    ("bench.train",),
    ("bench.grid",),
    ("bench.tune",),
    ("analysis", "bench.perf"),
    ("bench.cli",),
    ("bench.__main__",),
)
#: modules that may name registered methods in string literals: the paper modules (their tables list them)
PAPER_MODULES = "bench.grid.papers."


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    parts[0] = ROOTS[parts[0]]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    return {module_name(p): p for root in ROOTS for p in sorted((REPO / root).rglob("*.py"))
            if "__pycache__" not in p.parts}


MODULES = project_modules()


def imports_of(name: str) -> set[str]:
    """The project modules `name` imports (resolved to modules where a name is a submodule)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: level 1 is the module's own package
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "import_module" and node.args and isinstance(node.args[0], ast.Constant)):
            targets = [node.args[0].value]
        found.update(t for t in targets if t in MODULES)
    found.discard(name)
    return found


def layer_of(name: str) -> tuple[int, str]:
    """(layer index, owning package) of a module: the longest package prefix in LAYERS."""
    best = max(((i, pkg) for i, layer in enumerate(LAYERS) for pkg in layer
                if name == pkg or name.startswith(pkg + ".")), key=lambda found: len(found[1]), default=None)
    if best is None:
        raise AssertionError(f"module {name} belongs to no layer: add its package to LAYERS (and the README)")
    return best


GRAPH = {name: imports_of(name) for name in MODULES}


def test_every_module_belongs_to_a_layer():
    for name in MODULES:
        if name != "bench":  # the bare root package holds no code
            layer_of(name)


def test_no_import_cycles():
    try:
        tuple(graphlib.TopologicalSorter(GRAPH).static_order())
    except graphlib.CycleError as exc:
        pytest.fail(f"import cycle: {' -> '.join(exc.args[1])}")


def test_dependencies_point_down_the_layers():
    wrong = []
    for name, targets in GRAPH.items():
        if name == "bench":
            continue
        layer, package = layer_of(name)
        for target in targets:
            other_layer, other_package = layer_of(target)
            if other_package != package and other_layer >= layer:
                wrong.append(f"{name} (layer {layer}) imports {target} (layer {other_layer})")
    assert not wrong, "imports against the layer order:\n" + "\n".join(sorted(wrong))


def test_the_library_never_imports_the_command_line():
    users = sorted(name for name, targets in GRAPH.items() if any(t.startswith("bench.cli") for t in targets)
                   and not name.startswith("bench.cli") and name != "bench.__main__")
    assert not users


def test_a_broken_layer_order_is_caught():
    """The checker itself: an upward import and a cycle are both found."""
    assert layer_of("methods.mwnet")[0] < layer_of("bench.train.engine")[0]
    graph = {"a": {"b"}, "b": {"a"}}
    with pytest.raises(graphlib.CycleError):
        tuple(graphlib.TopologicalSorter(graph).static_order())


def string_literals(path: Path) -> list[tuple[int, str]]:
    return [(node.lineno, node.value) for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Constant) and isinstance(node.value, str)]


def test_no_method_is_named_outside_its_module_and_the_paper_modules():
    """Method facts live on the method classes; only a paper's table may list methods by name."""
    names = set(METHODS.names())
    found = [f"{MODULES[m].relative_to(REPO)}:{line} names '{value}'"
             for m in MODULES if m.startswith(("bench.", "analysis")) and not m.startswith(PAPER_MODULES)
             for line, value in string_literals(MODULES[m]) if value in names]
    assert not found, "\n".join(found)


def test_the_harness_reaches_methods_only_through_the_registry_and_the_interface():
    allowed = {"methods", "methods.base", "methods.registry"}
    found = [f"{m} imports {t}" for m, targets in GRAPH.items()
             if m.startswith(("bench.", "analysis")) and not m.startswith(PAPER_MODULES)
             for t in targets if t.startswith("methods") and t not in allowed]
    assert not found, "\n".join(found)


def test_every_package_is_installed():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages = {module_name(p.parent / "__init__.py") for root in ROOTS for p in (REPO / root).rglob("__init__.py")}
    assert packages == set(config["packages"]), "pyproject.toml [tool.setuptools] packages must list every package"
