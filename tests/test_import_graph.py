"""No import cycle between the domain packages of the portal.

Every ``.py`` file under ``review_portal/`` is parsed with :mod:`ast` and every ``import``
and ``from ... import`` of ``review_portal.<x>`` is collected: at module level *and* inside
functions (an import moved into a function to dodge a circular import still ties the two
packages together). The nodes of the graph are:

* each sub-package of ``review_portal`` (accounts, analytics, assignment, audit,
  conclusions, experts, imports, jobs, main, notifications, organizations, programs,
  reconciliation, registry, reviews, rubrics, scoring, settings, simulation);
* each top-level module (``enums``, ``workflow``, ``permissions``, ``urls``...), a node of
  its own, meant to be a leaf;
* a package's ORM models module (``<pkg>/models.py``) is a node of its own,
  ``<pkg>.models``: models of different packages refer to each other for their
  relationships (under ``TYPE_CHECKING`` only), and a service may read another package's
  tables without depending on that package's services;
* a module of a package that imports nothing of the portal (``scoring/compute.py``: the
  numbers of a sheet) is a node of its own, ``<pkg>.<module>``: a leaf closes no cycle, so
  another package may use it without depending on its package's services;
* ``from review_portal import X`` counts as an import of the module ``X`` when ``X`` is
  one, else of the application factory (``review_portal/__init__.py``).

Imports under ``if TYPE_CHECKING:`` never run and are left out.

The rule: the graph of the packages below the orchestrators has no cycle. The
orchestrators are the top of the graph: the application factory (``__init__``), the
models aggregator (``review_portal/models.py``), ``cli``, ``demo``, ``simulation``,
``main`` (home pages and navigation across every domain) and ``workers`` (the processes
rendering conclusions for a bulk run: each builds its own application through the factory,
so it must sit above the factory; the factory hands its pool to conclusions through
``app.extensions``) and ``wsgi`` (the entry point of gunicorn, ``flask --app`` and Celery:
it builds the application). They may import any domain; no domain may import them.

:data:`KNOWN_EDGES` lists the edges allowed to close a cycle, each with the reason; it is
empty, and the test fails when a new cycle appears. Should an edge ever be listed, the test
also fails once it is gone (then delete it from the list), so the list only shrinks.
"""

from __future__ import annotations

import ast
from itertools import pairwise
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "review_portal"

ORCHESTRATORS = {
    "__init__",
    "models",
    "cli",
    "demo",
    "simulation",
    "main",
    "workers",
    "wsgi",
}

#: Edges that still close a cycle (``(importer, imported)``) and why; to be removed.
KNOWN_EDGES: dict[tuple[str, str], str] = {}


def _node(module: str) -> str | None:
    """The graph node of the dotted module name ``review_portal.<...>``."""
    parts = module.split(".")
    if parts[0] != "review_portal":
        return None
    if len(parts) == 1:
        return "__init__"
    if len(parts) >= 3 and parts[2] == "models":
        return f"{parts[1]}.models"
    return parts[1]


def _source_node(path: Path, package: Path) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return _node(".".join(parts)) or "__init__"


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for statement in node.body:
                skipped.update(id(inner) for inner in ast.walk(statement))
    return skipped


def _imported_modules(node: ast.AST, package: Path) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        if node.module == "review_portal":
            return [
                f"review_portal.{alias.name}"
                if (package / alias.name).is_dir() or (package / f"{alias.name}.py").exists()
                else "review_portal"
                for alias in node.names
            ]
        return [node.module]
    return []


def _dotted(path: Path, package: Path) -> str:
    return ".".join(path.relative_to(package.parent).with_suffix("").parts)


def _leaves(parsed: dict[Path, tuple], package: Path) -> dict[str, str]:
    """``{dotted module: node}`` of the packages' modules importing nothing of the portal."""
    leaves = {}
    for path, (tree, skipped) in parsed.items():
        parts = path.relative_to(package.parent).with_suffix("").parts
        if len(parts) != 3 or parts[2] in ("__init__", "models"):
            continue
        imports = [
            module
            for node in ast.walk(tree)
            if id(node) not in skipped
            for module in _imported_modules(node, package)
            if module.split(".")[0] == "review_portal"
        ]
        if not imports:
            leaves[_dotted(path, package)] = f"{parts[1]}.{parts[2]}"
    return leaves


def import_graph(package: Path = PACKAGE) -> dict[str, dict[str, list[str]]]:
    """``{importer: {imported: [file:line, ...]}}`` between different nodes."""
    graph: dict[str, dict[str, list[str]]] = {}
    parsed = {}
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        parsed[path] = (tree, _type_checking_nodes(tree))
    leaves = _leaves(parsed, package)
    for path, (tree, skipped) in parsed.items():
        source = leaves.get(_dotted(path, package)) or _source_node(path, package)
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            for module in _imported_modules(node, package):
                target = leaves.get(module) or _node(module)
                if target is not None and target != source:
                    where = f"{path.relative_to(package.parent)}:{node.lineno}"
                    graph.setdefault(source, {}).setdefault(target, []).append(where)
    return graph


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``edges`` as ``[a, b, ..., a]``, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                return path[path.index(target) :] + [target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def _described(cycle: list[str], graph) -> str:
    return "\n".join(f"  {a} -> {b}  ({', '.join(graph[a][b][:3])})" for a, b in pairwise(cycle))


def test_no_domain_imports_an_orchestrator():
    graph = import_graph()
    wrong = [
        f"{source} -> {target} ({', '.join(where[:3])})"
        for source, targets in graph.items()
        if source not in ORCHESTRATORS
        for target, where in targets.items()
        if target in ORCHESTRATORS and (source, target) not in KNOWN_EDGES
    ]
    assert not wrong, "a domain imports an orchestrator:\n" + "\n".join(wrong)


def test_no_import_cycle_between_domain_packages():
    graph = import_graph()
    edges = {
        source: {
            target
            for target in targets
            if target not in ORCHESTRATORS and (source, target) not in KNOWN_EDGES
        }
        for source, targets in graph.items()
        if source not in ORCHESTRATORS
    }
    cycle = find_cycle(edges)
    assert cycle is None, "import cycle between packages:\n" + _described(cycle, graph)


def test_known_edges_still_exist():
    graph = import_graph()
    gone = [edge for edge in KNOWN_EDGES if edge[1] not in graph.get(edge[0], {})]
    assert not gone, f"no longer imported, delete from KNOWN_EDGES: {gone}"


def test_a_cycle_through_a_function_level_import_is_found(tmp_path):
    """The detector itself: an import inside a function closes a cycle too."""
    package = tmp_path / "review_portal"
    for name, text in {
        "alpha/services.py": "from review_portal.beta.services import b\n",
        "beta/services.py": "def b():\n    from review_portal.alpha import services\n",
        "gamma/models.py": (
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            "    from review_portal.alpha.services import a\n"
        ),
    }.items():
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(text)
    graph = import_graph(package)
    edges = {source: set(targets) for source, targets in graph.items()}
    assert find_cycle(edges) == ["alpha", "beta", "alpha"]
    assert "gamma.models" not in graph


def test_a_leaf_module_is_a_node_of_its_own(tmp_path):
    """A module importing nothing of the portal closes no cycle (``beta.compute``); one
    importing anything of it still stands for its package (``beta.rules``)."""
    package = tmp_path / "review_portal"
    for name, text in {
        "alpha/services.py": "from review_portal.beta.compute import total\n",
        "beta/services.py": "from review_portal.alpha.services import a\n",
        "beta/compute.py": "from decimal import Decimal\ndef total():\n    return Decimal(1)\n",
        "gamma/services.py": "from review_portal.delta.rules import r\n",
        "delta/services.py": "from review_portal.gamma.services import g\n",
        "delta/rules.py": "from review_portal.enums import E\n",
    }.items():
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(text)
    edges = {source: set(targets) for source, targets in import_graph(package).items()}
    assert edges["alpha"] == {"beta.compute"}
    assert "beta.compute" not in edges
    assert find_cycle({k: v for k, v in edges.items() if k in ("alpha", "beta")}) is None
    assert find_cycle(edges) == ["delta", "gamma", "delta"]
