"""The import graph follows the rooms of /work/shared/DESIGN.md ("Rooms" table).

Every ``.py`` file of the library and scripts is parsed with ``ast``; every ``import`` counts,
including those inside functions.  ``from pkg import name`` is an edge to ``pkg.name`` when
that is a module of the project, else to ``pkg``.  Rules:

* ``analytics`` imports nothing of the project; ``core.dto`` (and the empty ``core`` package
  file) nothing but ``core.dto``; ``core.config`` only ``core.dto``.  These are the leaves.
* ``data_factory``, ``intelligence`` and ``risk`` import ``analytics`` and the core leaves;
  ``strategies`` also ``intelligence`` and ``risk``.  The rest of ``core`` and ``scripts`` may
  import anything of the project; nothing imports ``scripts`` or ``tests``.
* No import cycle between the packages ``analytics``, ``data_factory``, ``intelligence``,
  ``risk``, ``strategies`` and the parts of ``core``: each core sub-package or top-level module
  (``core.backtest``, ``core.outputs``, ``core.main`` …) is one node, the leaves together one.
* The pure rooms (``analytics``, ``intelligence``, ``risk``, ``strategies``) never import
  backtrader, alpaca, matplotlib, reportlab or torch; torch (and its mamba-ssm kernels) only
  in ``intelligence/forecaster``.

Each failure names the file, the line and the edge.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("analytics", "data_factory", "intelligence", "risk", "strategies", "core", "scripts")
PROJECT = (*SCANNED, "tests")
LEAF_ROOMS = ("core", "core.dto", "core.config")  # ``core``: the empty package file itself
ALLOWED: dict[str, tuple[str, ...]] = {
    "analytics": ("analytics",),
    "core": (),
    "core.dto": ("core.dto",),
    "core.config": ("core.dto", "core.config"),
    "data_factory": ("data_factory", "analytics", *LEAF_ROOMS),
    "intelligence": ("intelligence", "analytics", *LEAF_ROOMS),
    "risk": ("risk", "analytics", *LEAF_ROOMS),
    "strategies": ("strategies", "analytics", "intelligence", "risk", *LEAF_ROOMS),
}
PURE_ROOMS = ("analytics", "intelligence", "risk", "strategies")
TORCH = ("torch", "mamba_ssm", "causal_conv1d")
HEAVY = ("backtrader", "alpaca", "alpaca_trade_api", "matplotlib", "reportlab", *TORCH)
TORCH_HOME = "intelligence.forecaster"


@dataclass(frozen=True)
class Edge:
    path: str  # repository-relative file of the importer
    line: int
    source: str  # importing module
    target: str  # imported module (project module where it is one)

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.source} imports {self.target}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def python_files(roots: Iterable[str]) -> list[Path]:
    return sorted(p for r in roots for p in (ROOT / r).rglob("*.py"))


KNOWN = {module_name(p) for p in python_files(PROJECT)}


def _resolve_relative(module: str, is_package: bool, level: int, name: str | None) -> str:
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, name] if name else base)


def imports_of(source: str, module: str, is_package: bool = False) -> list[tuple[int, str]]:
    """(line, imported module) of every import statement in ``source``, at any depth."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = _resolve_relative(module, is_package, node.level, node.module)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.append((node.lineno, sub if sub in KNOWN else base))
    return found


def edges(roots: Iterable[str] = SCANNED) -> list[Edge]:
    out = []
    for path in python_files(roots):
        module = module_name(path)
        found = imports_of(path.read_text(encoding="utf-8"), module, path.name == "__init__.py")
        out += [Edge(str(path.relative_to(ROOT)), line, module, target) for line, target in sorted(set(found))]
    return out


def is_project(module: str) -> bool:
    return module.split(".")[0] in PROJECT


def room_of(module: str) -> str:
    """The DESIGN room a project module lives in (``core.<part>`` for the composition root)."""
    parts = module.split(".")
    return parts[0] if parts[0] != "core" or len(parts) == 1 else f"core.{parts[1]}"


def node_of(module: str) -> str | None:
    """Node of the package graph: a room, each part of core, the core leaves as one node."""
    room = room_of(module)
    if room in LEAF_ROOMS:
        return "core (leaves)"
    return None if room in ("scripts", "tests") else room


GRAPH = [e for e in edges() if is_project(e.target)]


def test_parser_sees_nested_relative_and_submodule_imports() -> None:
    source = "import numpy\ndef f():\n    from core.dto import Leg\n    from . import pricing\n" \
             "from intelligence import fuzzy\n"
    assert sorted(imports_of(source, "analytics.american")) == [
        (1, "numpy"), (3, "core.dto"), (4, "analytics.pricing"), (5, "intelligence.fuzzy"),
    ]
    assert _resolve_relative("core.dto", True, 1, "types") == "core.dto.types"


@pytest.mark.parametrize("room", sorted(ALLOWED))
def test_room_imports_only_what_design_allows(room: str) -> None:
    allowed = ", ".join("core/__init__.py" if r == "core" else r for r in ALLOWED[room]) or "nothing of the project"
    bad = [f"{e} (room {room} may import only {allowed})"
           for e in GRAPH if room_of(e.source) == room and room_of(e.target) not in ALLOWED[room]]
    assert not bad, "forbidden import edge(s):\n" + "\n".join(bad)


def test_nothing_imports_scripts_or_tests() -> None:
    bad = [str(e) for e in GRAPH
           if room_of(e.target) == "tests" or (room_of(e.target) == "scripts" and room_of(e.source) != "scripts")]
    assert not bad, "imports of entry points or tests:\n" + "\n".join(bad)


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle ``[a, b, ..., a]`` of the directed graph, or None (iterative DFS, sorted for stable messages)."""
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    for start in sorted(graph):
        if state.get(start):
            continue
        stack, path = [(start, iter(sorted(graph[start])))], [start]
        state[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
                path.pop()
            elif state.get(child) == 1:
                return [*path[path.index(child):], child]
            elif not state.get(child):
                state[child] = 1
                stack.append((child, iter(sorted(graph.get(child, ())))))
                path.append(child)
    return None


def test_no_import_cycle_between_packages() -> None:
    graph: dict[str, set[str]] = {}
    evidence: dict[tuple[str, str], list[Edge]] = {}
    for e in GRAPH:
        a, b = node_of(e.source), node_of(e.target)
        if a and b and a != b:
            graph.setdefault(a, set()).add(b)
            evidence.setdefault((a, b), []).append(e)
    cycle = _find_cycle(graph)
    if cycle:
        lines = [f"  {a} -> {b}: " + "; ".join(str(e) for e in evidence[(a, b)])
                 for a, b in zip(cycle, cycle[1:], strict=False)]
        pytest.fail("import cycle " + " -> ".join(cycle) + "\n" + "\n".join(lines))


def test_pure_rooms_never_import_drivers_plotting_or_torch() -> None:
    bad = []
    for e in edges(PURE_ROOMS):
        top = e.target.split(".")[0]
        torch_ok = top in TORCH and (e.source == TORCH_HOME or e.source.startswith(TORCH_HOME + "."))
        if top in HEAVY and not torch_ok:
            bad.append(f"{e} (pure room {room_of(e.source)}: no {', '.join(HEAVY)}; torch only in {TORCH_HOME})")
    assert not bad, "heavy import(s) in the pure core:\n" + "\n".join(bad)


def test_test_modules_never_import_each_other() -> None:
    bad = []
    for path in python_files(["tests"]):
        for line, target in imports_of(path.read_text(encoding="utf-8"), module_name(path)):
            last = target.split(".")[-1]
            if target.split(".")[0] == "tests" or last.startswith("test_") or last == "conftest":
                bad.append(f"{path.relative_to(ROOT)}:{line}: imports {target} (share it as a conftest.py fixture)")
    assert not bad, "\n".join(bad)
