"""`asyncjobs cron add|remove|list` on a real Redis: what an operator types, what is stored
(read back through the Python API), and the one-line errors that leave other crons alone."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from typer.testing import CliRunner

from asyncjobs import CronInfo, Queue
from asyncjobs.cli import app

runner = CliRunner()


def crons(url: str, queue: str) -> list[CronInfo]:
    async def go() -> list[CronInfo]:
        async with Queue(url) as q:
            return await q.crons(queue)

    return asyncio.run(go())


def cli(url: str, *argv: str) -> tuple[int, str, str]:
    result = runner.invoke(app, [*argv, "--redis-url", url])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def queue() -> str:
    return f"cron-cli-{uuid.uuid4().hex[:8]}"


def test_a_cron_added_from_the_shell_is_stored_as_given_then_removed(
    redis_url: str, queue: str
) -> None:
    code, out, err = cli(
        redis_url, "cron", "add", "daily-report", "reports.daily", "0 6 * * mon-fri",
        "-q", queue, "--args", '["eu", 3]', "--kwargs", '{"format": "pdf"}',
        "--tz", "Europe/Paris", "--missed", "run_once", "--allow-overlap",
    )  # fmt: skip
    assert code == 0, err
    assert out.startswith("added: daily-report  [0 6 * * mon-fri]  reports.daily")
    assert f"warning: no live worker of queue {queue!r} knows task 'reports.daily'" in err
    [stored] = crons(redis_url, queue)
    assert (stored.name, stored.task, stored.expression) == (
        "daily-report",
        "reports.daily",
        "0 6 * * mon-fri",
    )
    assert (stored.args, stored.kwargs) == (["eu", 3], {"format": "pdf"})
    assert (stored.timezone, stored.missed, stored.unique) == ("Europe/Paris", "run_once", False)
    assert stored.next_run is not None
    assert stored.next_run.hour == 6 and stored.next_run.utcoffset() != timedelta(0)  # Paris

    code, out, _ = cli(redis_url, "cron", "list", "-q", queue)
    assert code == 0 and out.startswith("daily-report  [0 6 * * mon-fri]  reports.daily")
    code, out, _ = cli(redis_url, "cron", "list", "-q", queue, "--json")
    assert code == 0 and '"name": "daily-report"' in out

    code, out, _ = cli(redis_url, "cron", "remove", "daily-report", "-q", queue)
    assert code == 0 and out.strip() == f"removed cron 'daily-report' of queue {queue!r}"
    assert crons(redis_url, queue) == []
    code, out, err = cli(redis_url, "cron", "remove", "daily-report", "-q", queue)
    assert code == 1 and out == ""
    assert err.strip() == (
        f"error: no cron 'daily-report' was added to queue {queue!r}: "
        f"`asyncjobs cron list --queue {queue}` shows its crons"
    )
    code, out, _ = cli(redis_url, "cron", "list", "-q", queue)
    assert code == 0 and out.strip().startswith(f"no crons on queue {queue!r}")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["every-day", "t", "0 6 * *"], "error: invalid cron expression '0 6 * *': use five"),
        (["x", "t", "0 6 * * *", "--args", "[1,"], "error: --args is not JSON ("),
        (["x", "t", "0 6 * * *", "--args", '{"a": 1}'], "error: --args must be a JSON list"),
        (["x", "t", "0 6 * * *", "--kwargs", "[1]"], "error: --kwargs must be a JSON object"),
        (["x", "t", "0 6 * * *", "--tz", "Mars/Olympus"], "error: unknown time zone 'Mars/"),
        (["x", "t", "0 6 * * *", "--missed", "all"], "error: --missed must be skip or run_once"),
        (["x", "t", "0 6 * * *", "-q", "bad queue"], "error: "),
    ],
)
def test_bad_input_to_cron_add_is_one_line_and_keeps_the_other_crons(
    redis_url: str, queue: str, argv: list[str], message: str
) -> None:
    assert cli(redis_url, "cron", "add", "kept", "t", "*/5 * * * *", "-q", queue)[0] == 0
    code, out, err = cli(
        redis_url, "cron", "add", *argv, *(["-q", queue] if "-q" not in argv else [])
    )
    assert code == 2, (out, err)
    assert err.startswith(message) and len(err.strip().splitlines()) == 1, err
    assert [c.name for c in crons(redis_url, queue)] == ["kept"]
    assert cli(redis_url, "cron", "remove", "kept", "-q", queue)[0] == 0
