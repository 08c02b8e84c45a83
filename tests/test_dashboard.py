"""The dashboard in-process (httpx on the ASGI app, on every backend): its pages, its writes and
their checks (read-only, cross-site, confirmation), links under a mount point, the security
headers, the job stream, escaping. The browser tests (test_dashboard_browser.py) drive it in
Chromium."""

from __future__ import annotations

import asyncio
import html
import json
import re
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from asyncjobs import Context, JobStatus, Queue, cron, task
from asyncjobs.dashboard import create_dashboard
from asyncjobs.dashboard._actions import ACTIONS
from asyncjobs.dashboard._charts import sparkline, throughput_chart
from asyncjobs.dashboard._security import CONTENT_SECURITY_POLICY

from .conftest import run_burst

SAME_ORIGIN = {"sec-fetch-site": "same-origin"}
BASE = "http://dash.test"


@task
async def ok(ctx: Context, n: int) -> int:
    return n


@task(max_tries=1)
async def broken(ctx: Context, why: str) -> None:
    raise RuntimeError(why)


@task
async def slow(ctx: Context, steps: int) -> str:
    for step in range(1, steps + 1):
        await asyncio.sleep(0.05)
        await ctx.progress(step / steps, stage=f"step {step}")
    return "done"


@pytest.fixture
async def q(backend_url: str) -> AsyncIterator[Queue]:
    """A queue on a prefix of its own: the overview lists only this test's queues."""
    prefix = f"d{uuid.uuid4().hex[:8]}"
    async with Queue(backend_url, name="work", prefix=prefix) as queue:
        yield queue


def client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)


async def fill(queue: Queue) -> dict[str, str]:
    """Jobs that succeeded, one dead letter, one deferred job: their ids by kind."""
    done = await queue.enqueue(ok, 1)
    dead = await queue.enqueue(broken, "disk full")
    await run_burst(queue, [ok, broken], prefix=queue.prefix)
    later = await queue.enqueue(ok, 2, _defer_by=3600)
    return {"done": done.id, "dead": dead.id, "later": later.id}


def forms(page: str) -> list[str]:
    return re.findall(r'<form class="inline" method="post" action="([^"]+)"', page)


async def test_every_page_renders_from_the_queues(q: Queue) -> None:
    ids = await fill(q)
    async with client(create_dashboard(q)) as http:
        overview = (await http.get("/")).text
        assert 'data-queue="work"' in overview and "Pause" in overview
        page = await http.get("/queues/work?tab=dead")
        assert page.status_code == 200
        assert ids["dead"] in page.text and "RuntimeError: disk full" in page.text
        for tab in ("queued", "deferred", "in_progress", "succeeded", "cancelled", "expired"):
            assert (await http.get(f"/queues/work?tab={tab}")).status_code == 200
        assert ids["later"] in (await http.get("/queues/work?tab=deferred")).text
        assert ids["done"] in (await http.get("/queues/work?tab=succeeded")).text
        job = (await http.get(f"/jobs/{ids['done']}")).text
        assert ids["done"] in job and 'data-field="status">succeeded<' in job
        assert '"args": [\n    1\n  ]' in html.unescape(job) and "<h2>Result</h2>" in job
        dead = (await http.get(f"/jobs/{ids['dead']}?queue=work")).text
        assert "Traceback" in dead and "disk full" in dead and ">Replay<" in dead
        assert (await http.get("/workers")).status_code == 200
        assert (await http.get("/cron")).status_code == 200


async def test_unknown_jobs_queues_and_tabs_are_404_pages(q: Queue) -> None:
    await q.enqueue(ok, 1)
    async with client(create_dashboard(q)) as http:
        for path in ("/jobs/nope", "/jobs/nope?queue=work", "/queues/nope", "/queues/work?tab=x"):
            response = await http.get(path)
            assert response.status_code == 404, path
            assert "<h1>Not found</h1>" in response.text
        response = await http.get("/search?q=nope")
        assert response.status_code == 404 and "nope" in response.text
        assert (await http.get("/jobs/x?queue=bad%20name")).status_code == 400


async def test_search_by_id_redirects_to_the_job_in_its_queue(q: Queue) -> None:
    job = await q.enqueue(ok, 1, _queue_name="other")
    async with client(create_dashboard(q)) as http:
        response = await http.get(f"/search?q=+{job.id}+")
        assert response.status_code == 303
        assert response.headers["location"] == f"/jobs/{job.id}?queue=other"
        assert (await http.get(response.headers["location"])).status_code == 200


async def test_pause_resume_and_cancel_change_the_queue(q: Queue) -> None:
    job = await q.enqueue(ok, 1)
    async with client(create_dashboard(q)) as http:
        page = (await http.get("/queues/work")).text
        assert "/queues/work/pause" in forms(page)
        response = await http.post("/queues/work/pause", headers=SAME_ORIGIN)
        assert response.status_code == 303 and await q.is_paused("work")
        page = (await http.get(response.headers["location"])).text
        assert "/queues/work/resume" in forms(page) and "Paused queue work." in page
        await http.post("/queues/work/resume", headers=SAME_ORIGIN)
        assert not await q.is_paused("work")
        data = {"job_id": job.id, "confirmed": "yes"}
        await http.post("/queues/work/cancel", headers=SAME_ORIGIN, data=data)
        assert await job.status() is JobStatus.CANCELLED


async def test_replay_one_and_all_and_purge_the_dead_letters(q: Queue) -> None:
    first = await q.enqueue(broken, "a")
    others = [await q.enqueue(broken, "b") for _ in range(2)]
    await run_burst(q, [broken], prefix=q.prefix)
    async with client(create_dashboard(q)) as http:
        page = (await http.get("/queues/work?tab=dead")).text
        assert {"/queues/work/replay", "/queues/work/replay-all"} <= set(forms(page))
        await http.post("/queues/work/replay", headers=SAME_ORIGIN, data={"job_id": first.id})
        assert await first.status() is JobStatus.QUEUED
        again = await http.post("/queues/work/replay", headers=SAME_ORIGIN, data={"job_id": "x"})
        assert again.status_code == 409 and "no dead letter" in again.text
        await http.post("/queues/work/replay-all", headers=SAME_ORIGIN, data={"confirmed": "yes"})
        assert [await j.status() for j in others] == [JobStatus.QUEUED] * 2
        await run_burst(q, [broken], prefix=q.prefix)
        assert (await q.stats("work")).dead_letters == 3
        data = {"confirmed": "yes"}
        await http.post("/queues/work/purge-dead-letters", headers=SAME_ORIGIN, data=data)
        assert (await q.stats("work")).dead_letters == 0


async def test_replay_all_of_one_task_leaves_the_others(q: Queue) -> None:
    await q.enqueue(broken, "x")
    await q.enqueue("gone_task")  # dead-lettered as unknown by the burst worker
    await run_burst(q, [broken], prefix=q.prefix)
    async with client(create_dashboard(q)) as http:
        page = (await http.get("/queues/work?tab=dead&task=broken")).text
        assert 'name="task" value="broken"' in page and "gone_task</td>" not in page
        data = {"task": "broken", "confirmed": "yes"}
        await http.post("/queues/work/replay-all", headers=SAME_ORIGIN, data=data)
    [left] = await q.dead_letters(10, "work")
    assert left.task == "gone_task"


async def test_dead_letters_filter_by_error_text_and_page_by_entry(q: Queue) -> None:
    for i in range(55):
        await q.enqueue(broken, "timeout talking to smtp" if i % 11 == 0 else "refused")
    await run_burst(q, [broken], prefix=q.prefix, concurrency=20)
    async with client(create_dashboard(q)) as http:
        found = (await http.get("/queues/work?tab=dead&search=TIMEOUT")).text
        assert found.count("timeout talking to smtp") == 5 and "refused" not in found
        first = (await http.get("/queues/work?tab=dead")).text
        assert first.count('<td class="error">') == 50
        older = re.search(r'href="([^"]*before=[^"]+)">Older', first)
        assert older is not None
        rest = (await http.get(older.group(1).replace("&amp;", "&"))).text
        assert rest.count('<td class="error">') == 5 and ">Newest<" in rest


async def test_queued_jobs_page_by_offset(q: Queue) -> None:
    await q.enqueue_many([(ok, (i,), {}) for i in range(120)])
    async with client(create_dashboard(q)) as http:
        first = (await http.get("/queues/work")).text
        assert first.count("<tr>") - 1 == 50 and "offset=50" in first
        last = (await http.get("/queues/work?offset=100")).text
        assert last.count("<tr>") - 1 == 20 and "101\N{EN DASH}120" in last and ">Next<" not in last


async def test_destructive_writes_ask_on_a_page_without_scripts(q: Queue) -> None:
    await q.enqueue(broken, "x")
    await run_burst(q, [broken], prefix=q.prefix)
    async with client(create_dashboard(q)) as http:
        page = (await http.get("/queues/work?tab=dead")).text
        assert 'data-confirm="Delete all 1 dead letter(s) of queue work?' in page
        asked = await http.post("/queues/work/purge-dead-letters", headers=SAME_ORIGIN)
        assert asked.status_code == 200 and "Delete all 1 dead letter(s)" in asked.text
        assert (await q.stats("work")).dead_letters == 1  # nothing done yet
        action = re.search(r'<form method="post" action="([^"]+)">', asked.text)
        assert action is not None and action.group(1) == "/queues/work/purge-dead-letters"
        assert 'name="confirmed" value="yes"' in asked.text
        await http.post(action.group(1), headers=SAME_ORIGIN, data={"confirmed": "yes"})
        assert (await q.stats("work")).dead_letters == 0


async def test_read_only_shows_no_write_and_refuses_every_one(q: Queue) -> None:
    ids = await fill(q)
    queued = await q.enqueue(ok, 3)
    app = create_dashboard(q, read_only=True)
    async with client(app) as http:
        for path in ("/", "/queues/work", "/queues/work?tab=dead", f"/jobs/{ids['dead']}"):
            page = (await http.get(path)).text
            assert 'method="post"' not in page and "read-only" in page, path
        data = {"job_id": queued.id, "confirmed": "yes"}
        for action in ACTIONS:
            response = await http.post(
                f"/queues/work/{action.name}", headers=SAME_ORIGIN, data=data
            )
            assert response.status_code == 403 and "read-only" in response.text
    assert not await q.is_paused("work")
    assert await queued.status() is JobStatus.QUEUED
    assert await q.dead_letter(ids["dead"]) is not None


@pytest.mark.parametrize(
    ("headers", "accepted"),
    [
        ({"sec-fetch-site": "same-origin"}, True),
        ({"sec-fetch-site": "cross-site", "origin": "https://evil.example"}, False),
        ({"sec-fetch-site": "same-site", "origin": "http://dash.test:8081"}, False),
        ({"origin": BASE}, True),  # an older browser: Origin only
        ({"origin": "https://evil.example"}, False),
        ({"origin": "null"}, False),
        ({"sec-fetch-site": "same-site", "origin": "https://admin.example"}, True),  # trusted
        ({}, True),  # not a browser (curl): no browser can be made to send this
    ],
)
async def test_a_write_from_another_site_is_refused(
    q: Queue, headers: dict[str, str], accepted: bool
) -> None:
    await q.enqueue(ok, 1)
    app = create_dashboard(q, trusted_origins=["https://admin.example/"])
    async with client(app) as http:
        response = await http.post("/queues/work/pause", headers=headers)
    assert response.status_code == (303 if accepted else 403), response.text
    assert await q.is_paused("work") is accepted
    if not accepted:
        assert "Refused this write" in response.text


async def test_after_a_write_it_goes_back_only_to_a_dashboard_page(q: Queue) -> None:
    await q.enqueue(ok, 1)
    async with client(create_dashboard(q)) as http:
        for wanted, landed in [
            ("/queues/work?tab=dead", "/queues/work?tab=dead"),
            ("//evil.example/", "/queues/work"),
            ("https://evil.example/", "/queues/work"),
            ("/\\evil.example", "/queues/work"),
        ]:
            response = await http.post(
                "/queues/work/resume", headers=SAME_ORIGIN, data={"next": wanted}
            )
            assert response.headers["location"] == landed


async def test_mounted_in_a_fastapi_app_its_links_and_writes_stay_under_the_mount(
    q: Queue,
) -> None:
    """The host app's lifespan does not start it, and no lifespan of its own is needed."""
    job = await q.enqueue(ok, 1)
    host = FastAPI()
    host.mount("/admin/jobs", create_dashboard(q))
    async with client(host) as http:
        page = (await http.get("/admin/jobs/queues/work")).text
        links = re.findall(r'(?:href|src|action)="([^"#]+)"', page)
        assert links and all(link.startswith("/admin/jobs/") for link in links), links
        assert (await http.get("/admin/jobs/static/dashboard.css")).status_code == 200
        assert (await http.get("/admin/jobs/static/htmx.min.js")).status_code == 200
        response = await http.post("/admin/jobs/queues/work/pause", headers=SAME_ORIGIN)
        assert response.headers["location"] == "/admin/jobs/queues/work"
        assert "Path=/admin/jobs" in response.headers["set-cookie"]
        found = await http.get(f"/admin/jobs/search?q={job.id}")
        assert found.headers["location"] == f"/admin/jobs/jobs/{job.id}?queue=work"


async def test_every_response_has_a_strict_content_security_policy(q: Queue) -> None:
    ids = await fill(q)
    async with client(create_dashboard(q)) as http:
        for path in (
            "/",
            "/queues/work",
            "/queues/work?tab=dead",
            f"/jobs/{ids['dead']}",
            "/workers",
            "/cron",
            "/jobs/missing",
            "/static/dashboard.js",
        ):
            response = await http.get(path)
            assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
            assert response.headers["x-frame-options"] == "DENY"
            if response.headers["content-type"].startswith("text/html"):
                page = response.text
                assert not re.search(r"<script(?![^>]*\bsrc=)", page), path  # no inline script
                assert not re.search(r"\sstyle=|<style|\son\w+=", page), path  # nor style/handlers
                assert not re.search(r'(?:src|href)="(?:https?:)?//', page), path  # one origin
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY
    assert "'unsafe-eval'" not in CONTENT_SECURITY_POLICY


async def test_names_and_errors_from_jobs_are_escaped(q: Queue) -> None:
    hostile = "<script>alert(1)</script>"
    job = await q.enqueue(hostile, hostile, _job_id='"><img src=x>')
    async with client(create_dashboard(q)) as http:
        for path in ("/queues/work", f"/jobs/{job.id}?queue=work"):
            page = (await http.get(path)).text
            assert hostile not in page and "&lt;script&gt;" in page
            assert '"><img' not in page


async def test_show_arguments_false_hides_arguments_and_results(q: Queue) -> None:
    job = await q.enqueue(ok, 424242)
    await run_burst(q, [ok], prefix=q.prefix)
    async with client(create_dashboard(q, show_arguments=False)) as http:
        page = (await http.get(f"/jobs/{job.id}")).text
    assert "424242" not in page and "succeeded" in page


async def test_the_job_stream_sends_each_change_until_the_job_ends(
    q: Queue, start_worker: Any
) -> None:
    """(httpx's ASGI transport hands over a body once it is whole: the browser tests show the
    events arriving one by one.)"""
    job = await q.enqueue(slow, 4)
    await start_worker([slow], queues=["work"], prefix=q.prefix)
    async with (
        client(create_dashboard(q)) as http,
        http.stream("GET", f"/jobs/{job.id}/events?queue=work") as stream,
    ):
        assert stream.headers["content-type"].startswith("text/event-stream")
        seen = [
            json.loads(line.removeprefix("data: "))
            async for line in stream.aiter_lines()
            if line.startswith("data: ")
        ]
    assert seen[-1]["status"] == "succeeded" and seen[-1]["result"] == "done"
    progress = [s["progress"] for s in seen if s.get("progress") is not None]
    assert progress == sorted(progress) and progress[-1] == 1.0
    assert "args" not in seen[0]  # the stream shows the job's state, never its arguments


async def test_the_cron_page_lists_each_cron_jobs_last_tick(q: Queue) -> None:
    report = cron(ok, "0 6 * * *", name="daily", run_at_startup=True, args=(7,))
    await run_burst(q, [ok], prefix=q.prefix, cron_jobs=[report])
    async with client(create_dashboard(q)) as http:
        page = (await http.get("/cron")).text
    assert "<td>daily" in page and "cron:daily:" in page and "UTC" in page


async def test_a_given_queue_is_never_closed(q: Queue) -> None:
    async with client(create_dashboard(q)) as http:
        await http.get("/")
    await q.enqueue(ok, 1)  # still open


async def test_a_url_opens_one_queue_per_event_loop(redis_url: str) -> None:
    app = create_dashboard(redis_url, prefix=f"d{uuid.uuid4().hex[:8]}")
    async with client(app) as http:
        assert (await http.get("/")).status_code == 200
        assert "No queue is known yet" in (await http.get("/")).text
    source = app.state.asyncjobs_dashboard.source
    assert source.get() is source.get()
    await source.aclose()


async def test_redis_away_is_a_503_page() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    app = create_dashboard(f"redis://127.0.0.1:{port}/0")
    async with client(app) as http:
        response = await http.get("/")
    assert response.status_code == 503 and "Redis is unavailable" in response.text
    await app.state.asyncjobs_dashboard.source.aclose()


def test_charts_scale_bars_to_the_busiest_bucket() -> None:
    from datetime import datetime, timedelta, timezone

    from asyncjobs._stats import HistoryBucket

    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    buckets = [
        HistoryBucket(minute=start + timedelta(minutes=i), succeeded=i, failed=1 if i == 3 else 0)
        for i in range(4)
    ]
    svg = str(throughput_chart(buckets, width=400, height=116, label="<q>"))
    assert svg.count('class="ok"') == 3 and svg.count('class="bad"') == 1
    assert 'height="100.0"' not in svg and 'height="75.0"' in svg  # 3 of the top 4, 100 px
    assert "00:03 UTC: 3 succeeded, 1 failed" in svg and 'aria-label="&lt;q&gt;"' in svg
    assert str(sparkline(buckets)).count(",") == 4


def test_the_command_fails_in_one_line_when_the_port_is_taken(redis_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = subprocess.run(
            [sys.executable, "-m", "asyncjobs", "dashboard", "--redis-url", redis_url]
            + ["--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert run.returncode == 1
    assert run.stderr.startswith(f"error: could not listen on 127.0.0.1:{port}: ")
    assert len(run.stderr.splitlines()) == 1


async def test_a_workflow_member_links_its_workflow(q: Queue) -> None:
    from asyncjobs import chain

    flow = await q.enqueue(chain(ok.s(1), ok.si(2)))
    await run_burst(q, [ok], prefix=q.prefix)
    member = await q.find_job(f"{flow.id}.0")
    assert member is not None and member.workflow_id == flow.id and member.workflow_node == 0
    root = await q.find_job(flow.id)
    assert root is not None and root.workflow_id == flow.id and root.workflow_node is None
    async with client(create_dashboard(q)) as http:
        page = (await http.get(f"/jobs/{flow.id}.0?queue=work")).text
        assert f'href="/jobs/{flow.id}?queue=work"' in page and "Member 0 of workflow" in page
        page = (await http.get(f"/jobs/{flow.id}?queue=work")).text
        assert "This job is the workflow (workflow:chain)" in page


async def test_the_cron_page_takes_whole_rows_from_a_queue_that_lists_its_crons(
    q: Queue,
) -> None:
    """A Queue with ``crons(all_queues=True)`` (the run-time cron API: CronInfo's fields) gives
    the schedule and the next tick too; this stands in for it until that API is here."""
    from datetime import datetime, timezone
    from types import SimpleNamespace

    tick = datetime(2026, 12, 1, 6, tzinfo=timezone.utc)
    listed = SimpleNamespace(
        name="ops-report",
        queue="work",
        task="report",
        expression="0 6 * * mon-fri",
        timezone="Europe/Paris",
        next_run=tick.replace(day=2),
        last_run=tick,
        served=False,
    )

    class ListingQueue(Queue):
        async def crons(self, queue_name: str | None = None, *, all_queues: bool = False) -> Any:
            assert all_queues
            return [listed]

    listing = ListingQueue(store=q.store, prefix=q.prefix)
    async with client(create_dashboard(listing)) as http:
        page = (await http.get("/cron")).text
    assert "<code>0 6 * * mon-fri</code> (Europe/Paris)" in page
    assert "2026-12-02 06:00:00 UTC" in page and "not served" in page
    assert f"cron:ops-report:{int(tick.timestamp() * 1000)}" in page
