"""README's two commands stay the ones CI runs."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_ci_runs_the_readme_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python -m pip install -e '.[dev]' && python examples/demo.py" in readme
    assert "python -m pytest -q\n" in readme
    assert "\npython examples/demo.py\n" in ci
    assert "\npython -m pytest -q\n" in ci


def test_readme_quickstart_runs(tmp_path: Path) -> None:
    import re
    import subprocess
    import sys

    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## Quickstart\n\n```python\n(.*?)```", readme, re.S)
    assert block is not None
    script = tmp_path / "quickstart.py"
    script.write_text(block.group(1))
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.splitlines() == ["3", "JobStatus.DEFERRED"]
