"""Scenario 9: payloads are data, task names resolve only to registered tasks, and Redis auth
(password, ACL user) and TLS work through the URL, with errors that never show the password."""

from __future__ import annotations

import ast
import asyncio
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from asyncjobs import (
    ConfigurationError,
    Context,
    DeadLetterNotFound,
    Queue,
    RedisUnavailable,
    Worker,
    WorkerSettings,
)

from ..redis_server import RedisServer, free_port
from .chaos_tasks import record
from .helpers import ROOT, SETTINGS, unique

PACKAGE = ROOT / "asyncjobs"
UNSAFE_MODULES = {"pickle", "_pickle", "cPickle", "cloudpickle", "dill", "marshal", "shelve"}
PASSWORD = "s3cret-Pa55"


@pytest.mark.chaos
def test_the_package_never_imports_pickle() -> None:
    """Payloads and results are JSON: nothing in asyncjobs/ can turn stored bytes into code."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Call) and getattr(node.func, "id", "") in {"eval", "exec"}:
                names = [node.func.id]  # type: ignore[attr-defined]
            found += [
                f"{path.relative_to(ROOT)}:{node.lineno} {n}"
                for n in names
                if n.split(".")[0] in UNSAFE_MODULES | {"eval", "exec"}
            ]
    assert found == []
    assert list(PACKAGE.rglob("*.py")), "the package was found"


@pytest.mark.chaos
async def test_a_task_name_only_ever_resolves_to_a_registered_task(
    chaos_redis: RedisServer,
    no_key_leaks: Callable[[str, str], None],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("CRITICAL", logger="asyncjobs")
    marker = tmp_path / "pwned"
    hostile = {
        "os.system": [f"touch {marker}"],
        "builtins.eval": [f"open({str(marker)!r}, 'w')"],
        "builtins.exec": [f"open({str(marker)!r}, 'w')"],
        "subprocess.run": [["touch", str(marker)]],
        "__import__": ["os"],
        "asyncjobs.cli:main": [],
        "tests.chaos.chaos_tasks:kill_my_worker": ["x"],  # importable, but not registered here
        "record.__globals__": [],
    }
    url, name = chaos_redis.url, unique("names")
    no_key_leaks(url, name)
    async with Queue(url, name=name) as queue:
        jobs = await queue.enqueue_many([(task, args, {}) for task, args in hostile.items()])
        settings = WorkerSettings(redis_url=url, queues=[name], functions=[record])
        await asyncio.wait_for(Worker(settings).run(burst=True, handle_signals=False), 30)
        dead = {d.id: d for d in await queue.dead_letters()}
    assert not marker.exists(), "a payload ran code"
    assert sorted(dead) == sorted(j.id for j in jobs)
    for job in jobs:
        assert (dead[job.id].error or "").startswith("UnknownTaskError: no task named"), dead[
            job.id
        ]


async def _round_trip(url: str, queue_name: str) -> int:
    async with Queue(url, name=queue_name) as queue:
        job = await queue.enqueue(record, f"asyncjobs:chaos-runs:{queue_name}")
        settings = WorkerSettings(redis_url=url, queues=[queue_name], functions=[record])
        await asyncio.wait_for(Worker(settings).run(burst=True, handle_signals=False), 30)
        result = await job.result(timeout=10)
        await queue.client.delete(f"asyncjobs:chaos-runs:{queue_name}")
        return int(result)


@pytest.mark.chaos
@pytest.mark.timeout(60)
async def test_password_and_acl_user_urls_work_and_wrong_ones_fail_clearly(
    redis_factory: Callable[..., RedisServer], no_key_leaks: Callable[[str, str], None]
) -> None:
    server = redis_factory(server=RedisServer(password=PASSWORD))
    host = f"127.0.0.1:{server.port}"
    async with Queue(f"redis://:{PASSWORD}@{host}/0") as admin:
        acl = admin.client.execute_command
        await acl("ACL", "SETUSER", "jobs", "on", ">jobs-Pa55", "~*", "&*", "+@all")
        # The least a queue user needs (docs/security.md): its own keys and channels, no
        # dangerous commands (CONFIG among them: the eviction check is skipped then).
        await acl(
            "ACL", "SETUSER", "queue", "on", ">queue-Pa55", "resetkeys", "~{asyncjobs:*",
            "~asyncjobs:*", "resetchannels", "&{asyncjobs:*", "+@all", "-@dangerous",
        )  # fmt: skip
    for url in (
        f"redis://:{PASSWORD}@{host}/0",
        f"redis://jobs:jobs-Pa55@{host}/0",
        f"redis://queue:queue-Pa55@{host}/0",
    ):
        name = unique("auth")
        no_key_leaks(url, name)
        assert await _round_trip(url, name) > 0

    bad_urls = {  # URL → the reason the error must give
        f"redis://jobs:not-{PASSWORD}@{host}/0": "invalid username-password pair",
        f"redis://mallory:{PASSWORD}@{host}/0": "invalid username-password pair",
        f"redis://{host}/0": "Authentication required",
    }
    for url, reason in bad_urls.items():
        with pytest.raises(RedisUnavailable) as caught:
            async with Queue(url):
                pass
        message = str(caught.value)
        assert PASSWORD not in message, message
        assert f"{host}/0" in message and reason in message, message
        with pytest.raises(RedisUnavailable):
            settings = WorkerSettings(redis_url=url, queues=["x"], functions=[record])
            await Worker(settings).run(handle_signals=False)

    # The CLI says the same in one line, password hidden, exit code 1.
    wrong = f"redis://jobs:not-{PASSWORD}@{host}/0"
    cli = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "asyncjobs", "worker", SETTINGS, "--redis-url", wrong,
        cwd=ROOT, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(cli.communicate(), 30)
    text = err.decode()
    assert cli.returncode == 1, text
    assert "cannot reach Redis at redis://jobs:***@" in text and PASSWORD not in text, text
    assert "Traceback" not in text, text


@pytest.mark.chaos
async def test_a_password_in_the_query_string_is_not_shown() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0?password={PASSWORD}"
    with pytest.raises(RedisUnavailable) as caught:
        async with Queue(url):
            pass
    assert PASSWORD not in str(caught.value)


def _self_signed_cert(folder: Path) -> tuple[Path, Path] | None:
    if shutil.which("openssl") is None:
        return None
    cert, key = folder / "cert.pem", folder / "key.pem"
    made = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        capture_output=True, timeout=30, check=False,
    )  # fmt: skip
    return (cert, key) if made.returncode == 0 else None


@pytest.mark.chaos
@pytest.mark.timeout(60)
async def test_rediss_url_with_a_verified_certificate(
    tmp_path: Path,
    redis_factory: Callable[..., RedisServer],
    no_key_leaks: Callable[[str, str], None],
) -> None:
    made = _self_signed_cert(tmp_path)
    if made is None:
        pytest.skip("openssl cannot make a self-signed certificate here")
    cert, key = made
    tls_port = free_port()
    try:
        server = redis_factory(
            "--tls-port", str(tls_port), "--tls-cert-file", str(cert),
            "--tls-key-file", str(key), "--tls-ca-cert-file", str(cert),
            "--tls-auth-clients", "no",
        )  # fmt: skip
    except RuntimeError:
        pytest.skip("this redis-server was built without TLS (--tls-port not accepted)")
    url = f"rediss://127.0.0.1:{tls_port}/0?ssl_ca_certs={cert}&ssl_cert_reqs=required"
    name = unique("tls")
    no_key_leaks(server.url, name)
    assert await _round_trip(url, name) > 0
    # Without the CA the server's certificate is refused: a clear error, not a hang.
    with pytest.raises(RedisUnavailable, match="cannot reach Redis at rediss://"):
        async with Queue(f"rediss://127.0.0.1:{tls_port}/0"):
            pass


@pytest.mark.chaos
@pytest.mark.timeout(90)
async def test_the_least_acls_run_the_whole_api_and_a_producer_cannot_claim(
    redis_factory: Callable[..., RedisServer],
) -> None:
    """Users made with the rules `asyncjobs acl` prints (docs/security.md): the worker's runs
    every part of a worker, the producer's every client call; the producer's cannot claim, and
    trying leaves the job as it was."""
    from asyncjobs import chain, cron, task
    from asyncjobs._store import Connection, Store
    from asyncjobs._store.acl import acl_rules

    @task(name="acl.add")
    async def add(ctx: Context, a: int, b: int) -> int:
        await ctx.progress(0.5, stage="adding")
        return a + b

    @task(name="acl.fails", max_tries=1)
    async def fails(ctx: Context) -> None:
        raise ValueError("for the dead letters")

    @task(name="acl.tick")
    async def tick(ctx: Context) -> None:
        return None

    server = redis_factory()
    host = f"127.0.0.1:{server.port}"
    admin = Queue(server.url)
    async with admin:
        for role in ("worker", "producer"):
            rules = acl_rules(role)  # type: ignore[arg-type]
            await admin.client.execute_command("ACL", "SETUSER", role, "on", ">Pa55-w0rd", *rules)
    worker_url, producer_url = (f"redis://{r}:Pa55-w0rd@{host}/0" for r in ("worker", "producer"))
    name = unique("acl")
    async with Queue(producer_url, name=name) as producer:
        total = await producer.enqueue(add, 1, 2)
        bad = await producer.enqueue(fails)
        flow = await producer.enqueue(chain(add.s(1, 1), add.s(5)))
        later = await producer.enqueue(add, 3, 3, _defer_by=60)
        assert await later.cancel()
        settings = WorkerSettings(
            redis_url=worker_url,
            queues=[name],
            functions=[add, fails, tick],
            cron_jobs=[cron(tick, "* * * * * *", run_at_startup=True)],
            lease_seconds=1.0,
        )
        await Worker(settings).run(burst=True, handle_signals=False)
        assert await total.result(timeout=5) == 3
        assert await flow.result(timeout=5) == 7
        assert (await producer.dead_letters())[0].id == bad.id
        await producer.replay_dead_letter(bad.id)
        with pytest.raises(DeadLetterNotFound):
            await producer.replay_dead_letter("no-such-job")
        queued = await producer.enqueue(add, 4, 4)
        store = Store(Connection(producer_url), keep_result_ms=60_000, dead_letter_cap=10)
        try:
            with pytest.raises(ConfigurationError, match="refused a command"):
                await store.claim(producer.keys_for(name), "mallory", 10, 60_000, True)
        finally:
            await store.connection.close()
        assert (await queued.status()).value == "queued", "the refused claim changed nothing"
        assert await producer.client.zcard(producer.keys_for(name).leases) == 0
