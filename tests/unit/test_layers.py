"""Layers point one way: no module of ``projector/`` imports a layer above its own, no package cycles.

The graph is read with ``ast`` (never by importing), so it holds every import: top level, inside
functions and under ``if TYPE_CHECKING:``, since a type-only import still ties the two modules
together for a reader. A package's ``__init__`` running when a submodule is imported is not counted:
only the modules an import statement names are.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "projector"

# The layer order, lowest first. A module belongs to the longest prefix below that names it (the
# module itself or a dotted parent; "=name" names only the module itself, e.g. a package's __init__).
# A module no prefix names fails the test, so a new module outside these packages is placed on purpose.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "foundation",
        (
            "projector.exceptions",
            "projector.config",
            "projector.retry",
            "projector.clients",
            "projector.jsonsafe",
            "projector.statefiles",
            "projector.logsafe",
            "projector.observability",
            "projector.observability_env",
            "projector.observability_scope",
        ),
    ),
    ("records", ("projector.records",)),
    ("changes", ("projector.changes",)),
    (
        "projection API",
        (
            "=projector",  # the package's __init__: the public API for projection authors
            "projector.projection",
            "projector.events.layout",
            "projector.events.types",
            "projector.events.projection",
        ),
    ),
    ("versioning", ("projector.versioning", "projector.events.fold")),
    (
        "stores",
        (
            "projector.source",  # the source table: scans and consistent reads
            "projector.sinks",
            "projector.stores",
            "projector.deadletters",
            "=projector.events",  # the package's __init__ re-exports the event store
            "projector.events.sink",
            "projector.events.store",
            "projector.events.outcome",
            "projector.events.documents",
        ),
    ),
    ("pipeline", ("projector.pipeline",)),
    (
        "entry points",
        (
            "projector.runtime",  # wires stores and the pipeline together for the entry points
            "projector.handler",
            "projector.backfill_handler",
            "projector.redrive",
            "projector.runner",
            "projector.backfill",
            "projector.verify",
            "projector.events.verify",
            "projector.query",
            "projector.cli",
            "projector.setup",
        ),
    ),
)

# >>> KNOWN_VIOLATIONS: imports allowed against the layer order, each (importer, imported) with why.
# Empty: every import points down. The test also fails when an entry no longer occurs.
KNOWN_VIOLATIONS: frozenset[tuple[str, str]] = frozenset()
# <<< KNOWN_VIOLATIONS


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    line: int


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(root: Path) -> list[Import]:
    """Every import between modules of the package at ``root``, wherever the statement sits."""
    package = root.name
    modules = {module_name(path, root): path for path in sorted(root.rglob("*.py"))}
    found: list[Import] = []
    for importer, path in modules.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    here = importer.split(".") if is_package else importer.split(".")[:-1]
                    parent = here[: len(here) - node.level + 1]
                    base = ".".join([*parent, base] if base else parent)
                # ``from a import b`` names the module ``a.b`` when there is one, else ``a``
                names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            else:
                continue
            for name in names:
                if name == package or name.startswith(package + "."):
                    found.append(Import(importer, _known(name, modules), node.lineno))
    return list(dict.fromkeys(found))


def _known(name: str, modules: Mapping[str, Path]) -> str:
    while name not in modules and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def unit_of(module: str, layers: Iterable[tuple[str, tuple[str, ...]]]) -> tuple[int, str] | None:
    """(layer index, prefix) of the longest prefix naming ``module``; None when no prefix does."""
    best: tuple[int, str] | None = None
    for index, (_, prefixes) in enumerate(layers):
        for entry in prefixes:
            prefix = entry.removeprefix("=")
            names = module == prefix or (entry == prefix and module.startswith(prefix + "."))
            if names and (best is None or len(prefix) > len(best[1])):
                best = (index, prefix)
    return best


def check(
    root: Path,
    layers: tuple[tuple[str, tuple[str, ...]], ...],
    known: frozenset[tuple[str, str]] = frozenset(),
) -> list[str]:
    """Every problem of the package at ``root``, one line each (empty when the layers hold).

    An import is a violation when it points to a higher layer or closes a cycle between units (a
    unit is the ``LAYERS`` prefix a module belongs to). ``known`` imports are not reported, and do not
    count towards cycles; one that is no longer a violation is reported, so the list only shrinks.
    """
    problems: list[str] = []
    edges = imports_of(root)
    units: dict[str, tuple[int, str]] = {}
    for module in sorted({e.importer for e in edges} | {e.imported for e in edges}):
        unit = unit_of(module, layers)
        if unit is None:
            problems.append(f"{module}: in no layer (add its prefix to LAYERS)")
        else:
            units[module] = unit
    edges = [e for e in edges if e.importer in units and e.imported in units]
    upward = {(e.importer, e.imported) for e in edges if units[e.imported][0] > units[e.importer][0]}
    for edge in edges:
        (low, _), (high, _) = units[edge.importer], units[edge.imported]
        if (edge.importer, edge.imported) in upward and (edge.importer, edge.imported) not in known:
            problems.append(
                f"{edge.importer}:{edge.line} imports {edge.imported}: "
                f"{layers[low][0]} -> {layers[high][0]} (a higher layer)"
            )
    unknown = [e for e in edges if (e.importer, e.imported) not in known]
    for cycle in _cycles(unknown, units):
        problems.append(
            f"import cycle between {', '.join(sorted(cycle))}: {_one_loop(cycle, unknown, units)}"
        )
    cyclic = {
        (e.importer, e.imported) for cycle in _cycles(edges, units) for e in edges if _within(e, cycle, units)
    }
    for importer, imported in sorted(known - upward - cyclic):
        problems.append(f"KNOWN_VIOLATIONS entry no longer occurs: {importer} -> {imported} (remove it)")
    return problems


def _cycles(edges: Iterable[Import], units: Mapping[str, tuple[int, str]]) -> list[set[str]]:
    graph: dict[str, set[str]] = {}
    for edge in edges:
        source, target = units[edge.importer][1], units[edge.imported][1]
        if source != target:
            graph.setdefault(source, set()).add(target)
    return [component for component in _strongly_connected(graph) if len(component) > 1]


def _one_loop(cycle: set[str], edges: list[Import], units: Mapping[str, tuple[int, str]]) -> str:
    """A shortest loop through the cycle's first unit, each step shown by one import that makes it."""
    step: dict[tuple[str, str], Import] = {}
    for edge in edges:
        if _within(edge, cycle, units):
            step.setdefault((units[edge.importer][1], units[edge.imported][1]), edge)
    start = min(cycle)
    paths: dict[str, list[Import]] = {start: []}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for unit in frontier:
            for (source, target), edge in sorted(step.items(), key=lambda item: item[0]):
                if source != unit:
                    continue
                if target == start:
                    return "; ".join(f"{e.importer}:{e.line} -> {e.imported}" for e in [*paths[unit], edge])
                if target not in paths:
                    paths[target] = [*paths[unit], edge]
                    following.append(target)
        frontier = following
    return "(no loop found)"  # cannot happen: every unit of a strongly connected component is on a loop


def _within(edge: Import, cycle: set[str], units: Mapping[str, tuple[int, str]]) -> bool:
    source, target = units[edge.importer][1], units[edge.imported][1]
    return source != target and source in cycle and target in cycle


def _strongly_connected(graph: Mapping[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm (the graph has a few dozen nodes: recursion depth is no concern)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component: set[str] = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            found.append(component)

    for node in sorted(set(graph) | {t for targets in graph.values() for t in targets}):
        if node not in index:
            visit(node)
    return found


def test_projector_imports_point_down_the_layers() -> None:
    problems = check(PACKAGE, LAYERS, KNOWN_VIOLATIONS)
    assert not problems, "\n".join(problems)


# --- the checker itself, on a tiny package --------------------------------------------------------

TINY_LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("low", ("=tiny", "tiny.base")),
    ("middle", ("tiny.mid", "tiny.mid.special")),
    ("high", ("tiny.top", "tiny.other")),
)


def tiny(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "tiny"
    for name, text in {"__init__.py": "", **files}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def test_the_checker_accepts_imports_that_point_down(tmp_path: Path) -> None:
    root = tiny(
        tmp_path,
        {
            "base.py": "X = 1\n",
            "mid/__init__.py": "from tiny.base import X\n",
            "mid/special.py": "from . import X\n",
            "top.py": "import tiny.mid\nfrom tiny.mid.special import X\nfrom . import base\n",
        },
    )
    assert check(root, TINY_LAYERS) == []


def test_the_checker_names_an_upward_import_wherever_it_hides(tmp_path: Path) -> None:
    root = tiny(
        tmp_path,
        {
            "base.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n"
                "    from tiny.mid import Y\n"
                "def f():\n"
                "    from .top import Z\n"  # relative, inside a function
                "    return Z\n"
            ),
            "mid/__init__.py": "Y = 1\n",
            "top.py": "Z = 1\n",
        },
    )
    problems = check(root, TINY_LAYERS)
    assert any(p.startswith("tiny.base:3 imports tiny.mid: low -> middle") for p in problems), problems
    assert any(p.startswith("tiny.base:5 imports tiny.top: low -> high") for p in problems), problems


def test_the_checker_names_a_cycle_between_packages_of_one_layer(tmp_path: Path) -> None:
    root = tiny(
        tmp_path,
        {"top.py": "from tiny.other import A\nB = 1\n", "other.py": "def g():\n    from tiny.top import B\n"},
    )
    problems = check(root, TINY_LAYERS)
    assert problems == [
        "import cycle between tiny.other, tiny.top: tiny.other:2 -> tiny.top; tiny.top:1 -> tiny.other"
    ]


def test_the_checker_refuses_a_module_in_no_layer(tmp_path: Path) -> None:
    root = tiny(tmp_path, {"stray.py": "import tiny.base\n", "base.py": ""})
    assert check(root, TINY_LAYERS) == ["tiny.stray: in no layer (add its prefix to LAYERS)"]


def test_known_violations_are_tolerated_only_while_they_occur(tmp_path: Path) -> None:
    root = tiny(tmp_path, {"base.py": "import tiny.top\n", "top.py": ""})
    assert check(root, TINY_LAYERS, frozenset({("tiny.base", "tiny.top")})) == []
    gone = frozenset({("tiny.base", "tiny.top"), ("tiny.mid", "tiny.top")})
    assert check(root, TINY_LAYERS, gone) == [
        "KNOWN_VIOLATIONS entry no longer occurs: tiny.mid -> tiny.top (remove it)"
    ]


@pytest.mark.parametrize(
    ("module", "unit"),
    [
        ("projector.events.fold", "projector.events.fold"),
        ("projector.events", "projector.events"),
        ("projector.sinks.aggregates.writer", "projector.sinks"),
        ("projector.observability_env", "projector.observability_env"),
        ("projector.runner.checkpoints", "projector.runner"),
    ],
)
def test_a_module_belongs_to_its_longest_prefix(module: str, unit: str) -> None:
    found = unit_of(module, LAYERS)
    assert found is not None and found[1] == unit
