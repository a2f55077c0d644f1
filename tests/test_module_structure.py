"""The design's one-way flow, checked on the source: specs → operators → core → analyses → presentation.

Imports are read with ``ast`` (module-level and inside functions alike), so a cycle or an upward import fails here
before it confuses a reader or an import order.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import rooflm

PACKAGE = Path(rooflm.__file__).resolve().parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@functools.cache  # parsed once for the module's four tests (each read every source file again: ~0.5 s apiece)
def _imports() -> dict[str, set[str]]:
    """rooflm module → the rooflm modules it imports (a `from rooflm.x import y` names x, or x.y when y is a module)."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("rooflm")}
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rooflm"):
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    found.add(sub if sub in modules else node.module)
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def _cycle(graph: dict[str, set[str]], skip: set[str]) -> list[str] | None:
    """A cycle among the modules not in ``skip`` (a package's __init__ re-exports, so it is skipped), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node] - skip):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(set(graph) - skip):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_the_package_imports_have_no_cycle() -> None:
    graph = _imports()
    packages = {name for name in graph if (PACKAGE.parent / name.replace(".", "/") / "__init__.py").exists()}
    assert _cycle(graph, packages) is None


# The layers, lowest first: a module imports its own layer and those before it, never one after it. The public API
# (rooflm/__init__.py, named "rooflm") gathers the analyses, serving and explain; the presentation layers after it
# call it by that name.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("rooflm.errors", "rooflm.units", "rooflm.kinds"),
    ("rooflm.specs",),
    ("rooflm.ops",),
    ("rooflm.core",),
    ("rooflm.analyses",),
    ("rooflm.serving",),
    ("rooflm.fit",),
    ("rooflm.measure",),
    ("rooflm.explain",),
    ("rooflm",),
    ("rooflm.plot",),
    ("rooflm.web",),
    ("rooflm.cli",),
)


def _layer(module: str) -> int:
    """The layer of a module: the longest prefix naming one (``rooflm`` alone is the public API)."""
    for i, prefixes in enumerate(LAYERS):
        if any(module == p or (p != "rooflm" and module.startswith(p + ".")) for p in prefixes):
            return i
    raise AssertionError(f"{module} belongs to no layer: add it to LAYERS")


def test_every_module_imports_down_the_layers_only() -> None:
    upward = sorted(f"{name} imports {m}" for name, imported in _imports().items() for m in imported
                    if _layer(m) > _layer(name))
    assert upward == []


def test_the_core_never_imports_a_presentation_layer() -> None:
    """The rule as a reader states it, checked apart from the layer order: specs, operators and the core name no
    command, page, figure or table."""
    presentation = ("rooflm.cli", "rooflm.web", "rooflm.plot", "rooflm.explain")
    for name, imported in _imports().items():
        if name.startswith(("rooflm.specs", "rooflm.ops", "rooflm.core")):
            assert not [m for m in imported if m.startswith(presentation) or m == "rooflm"], name


def test_the_top_level_holds_the_api_and_the_shared_vocabulary_only() -> None:
    loose = sorted(p.stem for p in PACKAGE.glob("*.py"))
    assert loose == ["__init__", "errors", "kinds", "units"]


def test_presentation_is_imported_by_presentation_only() -> None:
    for name, imported in _imports().items():
        if not name.startswith(("rooflm.cli", "rooflm.web")):
            assert not [m for m in imported if m.startswith(("rooflm.cli", "rooflm.web"))], name
    # One place registers the commands: the command modules do not import the app.
    graph = _imports()
    command_modules = [n for n in graph if n.startswith("rooflm.cli.") and n != "rooflm.cli.main"]
    assert command_modules
    assert not [n for n in command_modules if {"rooflm.cli", "rooflm.cli.main"} & graph[n]]
    assert not [m for m in graph["rooflm.web.app"] if m.startswith("rooflm.cli")]


def test_long_runs_report_progress_through_a_callback_not_a_console() -> None:
    """The layers that run long work (the core, serving, analyses, fit) take a ``progress(done, total)`` callback;
    drawing it is the command line's job, so none of them imports rich."""
    layers = ("rooflm/core/", "rooflm/serving/", "rooflm/analyses/", "rooflm/fit/", "rooflm/kinds.py")
    drawn = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent).as_posix()
        if not rel.startswith(layers):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            drawn += [rel for n in names if n == "rich" or n.startswith("rich.")]
    assert drawn == []
