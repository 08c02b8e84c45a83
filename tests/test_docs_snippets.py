"""The user docs: every Python snippet compiles, every page is on the site, every CLI option is
documented, and the pages speak the users' words.

(`mkdocs build --strict` in .ci/run checks links, anchors and the API reference.)
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import typer.main

from asyncjobs.cli import app

ROOT = Path(__file__).parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))
FENCE = re.compile(
    r"^(?P<indent> *)```(?P<lang>[\w+-]*)[^\n]*\n(?P<body>.*?)^(?P=indent)```", re.M | re.S
)
INCLUDE = re.compile(r'^\s*--8<-- "([^"]+)"\s*$', re.M)


def snippets() -> list[tuple[str, str]]:
    """(where, source) of every python code block in the docs and the README, with
    ``--8<-- "file"`` includes replaced by the file, as the site shows them."""
    found = []
    for page in [*PAGES, ROOT / "README.md"]:
        text = page.read_text()
        for block in FENCE.finditer(text):
            if block.group("lang") not in ("python", "py"):
                continue
            indent = len(block.group("indent"))
            body = "\n".join(line[indent:] for line in block.group("body").splitlines())
            body = INCLUDE.sub(lambda m: (ROOT / m.group(1)).read_text(), body)
            line = text[: block.start()].count("\n") + 1
            found.append((f"{page.relative_to(ROOT)}:{line}", body))
    return found


SNIPPETS = snippets()


def test_the_docs_have_snippets() -> None:
    assert len(SNIPPETS) > 40  # the pattern found them: a broken one would skip them all


@pytest.mark.parametrize(("where", "source"), SNIPPETS, ids=[w for w, _ in SNIPPETS])
def test_every_python_snippet_compiles(where: str, source: str) -> None:
    """Top-level ``await`` and ``async with`` are allowed: snippets show the body of a coroutine."""
    try:
        compile(source, where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)
    except SyntaxError as exc:
        pytest.fail(f"{where}: not valid Python: {exc}")


def test_every_page_is_on_the_site() -> None:
    """A page missing from the nav of mkdocs.yml is linked from nowhere on the site."""
    nav = set(re.findall(r":\s*(\S+\.md)\s*$", (ROOT / "mkdocs.yml").read_text(), re.M))
    assert {p.name for p in PAGES} - nav == set()
    assert nav - {p.name for p in PAGES} == set()


@pytest.mark.parametrize("page", [*PAGES, ROOT / "README.md"], ids=lambda p: p.name)
def test_pages_speak_the_users_words(page: Path) -> None:
    text = page.read_text()
    for jargon in (r"\bissues? #?\d+", r"\bcontract\b", r"\bissue-\d+"):
        match = re.search(jargon, text, re.I)
        assert match is None, f"{page.name}: {match.group(0)!r} means nothing to a user"


def _commands(command: object, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], object]]:
    subcommands = getattr(command, "commands", None)
    if subcommands is None:
        return [(path, command)]
    return [found for name, sub in subcommands.items() for found in _commands(sub, (*path, name))]


COMMANDS = _commands(typer.main.get_command(app))


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_every_cli_option_is_documented(path: tuple[str, ...], command: object) -> None:
    """Each option of a command appears in its section of docs/cli.md or in the synopsis."""
    text = (DOCS / "cli.md").read_text()
    synopsis = FENCE.search(text)
    assert synopsis is not None
    section = re.search(rf"^## `asyncjobs {path[0]}\b.*?(?=^## |\Z)", text, re.M | re.S)
    assert section is not None, f"docs/cli.md has no section for asyncjobs {path[0]}"
    documented = section.group(0) + synopsis.group(0)
    options = [
        opt
        for param in getattr(command, "params", [])
        if param.param_type_name == "option"
        for opt in param.opts + param.secondary_opts
        if opt.startswith("--") and opt != "--help"
    ]
    missing = [opt for opt in options if opt not in documented]
    assert not missing, f"asyncjobs {' '.join(path)}: {missing} not in docs/cli.md"
