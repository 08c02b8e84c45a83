"""README's two commands stay the ones CI runs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


def readme_commands() -> list[str]:
    section = (ROOT / "README.md").read_text().split("## Two commands", 1)[1].split("\n## ")[0]
    return re.findall(r"```bash\n(.*?)\n```", section, re.S)


def test_the_two_commands_need_only_python3() -> None:
    install_and_demo, tests = readme_commands()
    # Debian has python3 but no `python`, and its system pip refuses to install: a venv first
    assert install_and_demo.startswith("python3 -m venv .venv && .venv/bin/python -m pip install")
    assert install_and_demo.endswith(".venv/bin/python examples/demo.py")
    assert tests == ".venv/bin/python -m pytest -q"


def test_ci_runs_the_readme_commands_as_written() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    for command in readme_commands():  # a line of its own, as written (`|| exit 1` may follow)
        assert re.search(rf"^\s*{re.escape(command)}( \|\| exit 1)?$", ci, re.M), command
    assert "readme_command 1" in ci and "readme_command 2" in ci  # the fresh-clone leg


def test_readme_quickstart_runs(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## Quickstart\n\n```python\n(.*?)```", readme, re.S)
    assert block is not None
    script = tmp_path / "quickstart.py"
    script.write_text(block.group(1))
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.splitlines() == ["3", "JobStatus.DEFERRED"]
