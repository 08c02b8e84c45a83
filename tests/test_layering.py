"""The package's layering: no import circle (type-only imports included), and one seam to Redis.

Read from the source with ``ast``, so an import under ``if TYPE_CHECKING:`` or inside a
function counts like any other: a circle hidden there is still a circle in the design.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "asyncjobs"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, known: set[str]) -> set[str]:
    """The package's own modules that ``path`` imports (anywhere in the file)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            candidates = [f"{target}.{alias.name}" for alias in node.names] + [target]
        elif isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        else:
            continue
        for candidate in candidates:
            if candidate in known and candidate != name:
                found.add(candidate)
                break
    return found


def _graph() -> dict[str, set[str]]:
    paths = [p for p in PACKAGE.rglob("*.py")]
    known = {_module_name(p) for p in paths}
    return {_module_name(p): _imports(p, known) for p in paths}


def test_the_package_has_no_import_circle() -> None:
    graph = _graph()
    # The package roots re-export their modules; a module importing its own root is the circle.
    for name, deps in graph.items():
        assert "asyncjobs" not in deps, f"{name} imports the package root"
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for dep in sorted(graph.get(node, ())):
            if dep == "asyncjobs._store" and node.startswith("asyncjobs._store."):
                continue  # a store module and its own package: the package only re-exports
            if state.get(dep) == 1:
                circle = path[path.index(dep) :] + [dep]
                raise AssertionError("import circle: " + " -> ".join(circle))
            if dep not in state:
                visit(dep)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_only_the_store_talks_to_redis() -> None:
    """redis-py and the scripts stay behind the store: other modules see typed methods."""
    for path in PACKAGE.rglob("*.py"):
        name = _module_name(path)
        if name.startswith("asyncjobs._store") or name == "asyncjobs.arq.connections":
            continue  # arq's client (ArqRedis) is a redis-py client, as arq's own is
        text = path.read_text()
        assert "import redis" not in text and "from redis" not in text, f"{name} uses redis-py"
        assert "EVALSHA" not in text and ".lua" not in text, f"{name} calls a script itself"


def test_no_module_below_the_worker_imports_it() -> None:
    graph = _graph()
    users = {name for name, deps in graph.items() if "asyncjobs._worker" in deps}
    # the package root, and the entry points that run workers: CLI, FastAPI, arq, testing
    allowed = {"asyncjobs", "asyncjobs.cli", "asyncjobs.fastapi", "asyncjobs.arq.worker"}
    assert users <= allowed | {"asyncjobs.testing"}, users
