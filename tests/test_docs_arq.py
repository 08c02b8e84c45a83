"""docs/migrating-from-arq.md: every test it names as pinning a difference exists."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).parent.parent
DOC = ROOT / "docs" / "migrating-from-arq.md"


def _tests_in(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {
        node.name
        for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.name.startswith("test_")
    }


def test_every_test_the_migration_guide_names_exists() -> None:
    text = DOC.read_text()
    named = re.findall(r"`(?:(tests/[\w/]+\.py)::)?(test_\w+)`", text)
    assert len(named) >= 20
    missing = []
    for path, name in named:
        if name not in _tests_in(ROOT / (path or "tests/test_arq.py")):
            missing.append(f"{path or 'tests/test_arq.py'}::{name}")
    assert not missing, missing


def test_every_differs_test_is_in_the_guide() -> None:
    text = DOC.read_text()
    pinned = {n for n in _tests_in(ROOT / "tests" / "test_arq.py") if n.startswith("test_differs")}
    assert pinned and all(f"`{name}`" in text for name in pinned), pinned - set(
        re.findall(r"test_\w+", text)
    )
