"""Which asyncjobs a benchmark measures: this working tree, or ``git archive REV`` of it.

Others edit the tree while a run goes on; ``--rev REV`` extracts the committed package into a
temporary folder so the run measures exactly that revision. Standard library only.
"""

from __future__ import annotations

import compileall
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def snapshot(rev: str) -> Path:
    """``git archive REV asyncjobs`` extracted into a new temporary folder (caller removes it)."""
    folder = tempfile.mkdtemp(prefix="bench-asyncjobs-")
    tar = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", rev, "asyncjobs"],
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", folder], input=tar, check=True)
    return Path(folder)


def compiled(src: Path) -> Path:
    """``src``'s asyncjobs with its bytecode written, as pip writes a peer's at install: with
    PYTHONDONTWRITEBYTECODE set (as on CI machines) every worker start would otherwise compile
    all of asyncjobs from source (~70 ms here) while the peers load theirs."""
    compileall.compile_dir(str(src / "asyncjobs"), quiet=1)
    return src


def git_rev(rev: str | None = None) -> str:
    """Short hash of ``rev``, or of HEAD with "+uncommitted" when asyncjobs/ has edits."""

    def git(*argv: str) -> str:
        out = subprocess.run(["git", *argv], cwd=ROOT, capture_output=True, text=True)
        return out.stdout.strip()

    if rev:
        return git("rev-parse", "--short", rev)
    dirty = git("status", "--porcelain", "--", "asyncjobs")
    return git("rev-parse", "--short", "HEAD") + ("+uncommitted" if dirty else "")


def imported_from(python: str, src: Path, env: dict[str, str], cwd: Path) -> Path:
    """Where ``python`` imports asyncjobs from with this env; raises unless it is ``src``."""
    out = subprocess.run(
        [python, "-c", "import asyncjobs; print(asyncjobs.__file__)"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not out.startswith(str(src / "asyncjobs")):
        raise RuntimeError(f"asyncjobs imported from {out}, not {src}")
    return Path(out).parent
