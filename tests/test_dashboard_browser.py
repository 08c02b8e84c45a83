"""The dashboard in a real browser: headless Chromium (Debian's) driven by Playwright, against
`asyncjobs dashboard` and `asyncjobs worker` subprocesses on the session's real Redis.

Every page a test opens is watched: it may load nothing from another origin and log no error
to the console (a Content-Security-Policy violation is one). With
``ASYNCJOBS_DASHBOARD_SCREENSHOTS=docs`` the tests write the screenshots docs/dashboard.md
shows. Without chromium the module is skipped, for that one reason; CI sets
``ASYNCJOBS_REQUIRE_BROWSER=1`` so that a missing browser fails instead.
"""

from __future__ import annotations

import asyncio
import http.server
import os
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from asyncjobs import JobStatus, Queue

from .redis_server import RedisServer
from .waiting import wait_until

ROOT = Path(__file__).parent.parent
CHROMIUM = os.environ.get("ASYNCJOBS_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
#: The flags that work on a machine with no network but the package registries.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = os.environ.get("ASYNCJOBS_DASHBOARD_SCREENSHOTS")
LABELS = ("Pause", "Resume", "Replay", "Replay all", "Cancel", "Purge dead letters")

try:
    from playwright.async_api import Browser, Page, async_playwright
except ImportError:  # pragma: no cover - the dev extra installs it
    async_playwright = None  # type: ignore[assignment]

_missing = None
if async_playwright is None:
    _missing = "the browser tests need Playwright for Python: pip install -e '.[dev]'"
elif not Path(CHROMIUM).exists():
    _missing = (
        f"the browser tests need Debian's chromium (apt-get install chromium): none at {CHROMIUM}"
    )
if _missing and os.environ.get("ASYNCJOBS_REQUIRE_BROWSER"):
    raise RuntimeError(f"ASYNCJOBS_REQUIRE_BROWSER is set, but {_missing}")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(_missing is not None, reason=_missing or "")]


@dataclass
class Server:
    """One `asyncjobs dashboard` subprocess on a free port."""

    url: str
    proc: subprocess.Popen[str]


async def start_dashboard(redis_url: str, prefix: str, *extra: str) -> Server:
    args = [sys.executable, "-m", "asyncjobs", "dashboard", "--redis-url", redis_url]
    args += ["--prefix", prefix, "--port", "0", *extra]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 30)
    assert line.startswith("asyncjobs dashboard"), f"no URL printed: {line!r}"
    return Server(line.split(": ", 1)[1].strip().rstrip("/"), proc)


def stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    if proc.stdout is not None:
        proc.stdout.close()


@dataclass
class Site:
    """The system under test: queues on one prefix, a worker, two dashboards."""

    redis_url: str
    prefix: str
    work: str  # the queue most tests use
    other: str  # a second queue served by the same worker
    dashboard: str  # the writable dashboard's URL
    read_only: str  # the read-only one's
    queue: Queue
    tmp: Path
    procs: list[subprocess.Popen[Any]] = field(default_factory=list)


@pytest.fixture(scope="module")
async def site(
    redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Site]:
    prefix = f"dash-{uuid.uuid4().hex[:8]}"
    work, other = "images", "emails"
    tmp = tmp_path_factory.mktemp("dashboard")
    log = (tmp / "worker.log").open("w")
    worker = subprocess.Popen(
        [sys.executable, "-m", "asyncjobs", "worker", "tests.dashboard_tasks:settings"]
        + ["--redis-url", redis_server.url, "--prefix", prefix, "--queue", work]
        + ["--queue", other, "--log-level", "WARNING"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    procs: list[subprocess.Popen[Any]] = [worker]
    try:
        writable = await start_dashboard(redis_server.url, prefix)
        procs.append(writable.proc)
        read_only = await start_dashboard(redis_server.url, prefix, "--read-only")
        procs.append(read_only.proc)
        async with Queue(redis_server.url, name=work, prefix=prefix) as queue:
            await wait_until(
                lambda: queue.workers(work), 30, "the worker's first heartbeat", interval=0.05
            )
            await queue.enqueue("quick", 1, _queue_name=other)
            yield Site(
                redis_server.url,
                prefix,
                work,
                other,
                writable.url,
                read_only.url,
                queue,
                tmp,
                procs,
            )
    finally:
        for proc in procs:
            stop(proc)
        log.close()


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    assert async_playwright is not None
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@dataclass
class Watched:
    """A page, with what it asked the network for and what it logged as errors."""

    page: Page
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


async def watched_page(browser: Browser, color_scheme: str = "light") -> Watched:
    context = await browser.new_context(
        viewport={"width": 1280, "height": 800},
        color_scheme=color_scheme,  # type: ignore[arg-type]
    )
    page = await context.new_page()
    watched = Watched(page)
    page.on("request", lambda request: watched.requests.append(request.url))
    page.on(
        "console",
        lambda message: watched.errors.append(message.text) if message.type == "error" else None,
    )
    page.on("pageerror", lambda error: watched.errors.append(str(error)))
    page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    return watched


@pytest.fixture
async def page(browser: Browser, site: Site) -> AsyncIterator[Page]:
    """A fresh page; afterwards, no request left the dashboard's origins and no error was
    logged."""
    watched = await watched_page(browser)
    try:
        yield watched.page
    finally:
        await watched.page.context.close()
    origins = {_origin(site.dashboard), _origin(site.read_only)}
    foreign = [url for url in watched.requests if _origin(url) not in origins]
    assert foreign == [], f"the page loaded from another origin: {foreign}"
    assert watched.errors == [], f"the console logged errors: {watched.errors}"
    assert any(url.endswith(".js") or "/static/" in url for url in watched.requests)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


async def shoot(page: Page, name: str) -> None:
    """Save a screenshot for the docs when asked to (ASYNCJOBS_DASHBOARD_SCREENSHOTS=docs)."""
    if SCREENSHOTS:
        await page.screenshot(path=str(ROOT / SCREENSHOTS / f"dashboard-{name}.png"))


async def job_status(queue: Queue, job_id: str, queue_name: str) -> JobStatus:
    return await queue.job(job_id, queue_name).status()


async def test_the_overview_lists_every_queue(page: Page, site: Site) -> None:
    await site.queue.enqueue("quick", 2, _queue_name=site.work)
    await page.goto(site.dashboard + "/")
    rows = page.locator("table.queues tbody tr")
    await rows.first.wait_for()
    names = await page.locator("table.queues tbody tr td:first-child").all_inner_texts()
    assert sorted(names) == sorted([site.work, site.other])
    await shoot(page, "overview")


async def test_a_job_page_shows_progress_moving_without_a_reload(page: Page, site: Site) -> None:
    job = await site.queue.enqueue("stepped", 12, 0.35)
    await page.goto(f"{site.dashboard}/jobs/{job.id}?queue={site.work}")
    assert job.id in await page.locator("h1").inner_text()
    await page.evaluate("window.notReloaded = true")  # gone if the page were loaded again
    progress = "document.querySelector('progress[data-field=progress]').value"
    first = await wait_until(
        lambda: page.evaluate(f"{progress} >= 0.25 && {progress}"), 20, "progress of 25%"
    )
    await wait_until(lambda: page.evaluate(f"{progress} > {first}"), 20, "progress moving on")
    assert await page.evaluate("window.notReloaded === true")
    assert await page.locator('[data-field="status"]').inner_text() == "in_progress"
    assert "step" in await page.locator('[data-field="stage"]').inner_text()
    assert "UTC" in await page.locator('[data-field="eta"]').inner_text()
    await shoot(page, "job")
    # Once it ends the page shows its result (it reloads itself to show it).
    await page.locator('[data-field="status"]', has_text="succeeded").wait_for(timeout=20_000)
    await page.locator("pre.json", has_text='"done"').wait_for()


async def test_replay_on_a_dead_letter_runs_the_job_again(page: Page, site: Site) -> None:
    flag = site.tmp / f"flag-{uuid.uuid4().hex}"
    job = await site.queue.enqueue("needs_file", str(flag))
    await wait_until(
        lambda: site.queue.dead_letter(job.id, site.work), 20, "the dead letter", interval=0.05
    )
    await page.goto(f"{site.dashboard}/queues/{site.work}?tab=dead")
    row = page.locator("table.jobs tbody tr", has_text=job.id)
    assert "FileNotFoundError" in await row.inner_text()
    await shoot(page, "dead-letters")
    flag.touch()
    await row.get_by_role("button", name="Replay", exact=True).click()
    await page.locator(".notice", has_text=f"Replayed job {job.id}").wait_for()
    assert await job.result(timeout=20) == "ran"
    await page.goto(f"{site.dashboard}/jobs/{job.id}?queue={site.work}")
    assert await page.locator('[data-field="status"]').inner_text() == "succeeded"


async def test_pause_stops_claims_and_resume_restarts_them(page: Page, site: Site) -> None:
    await page.goto(f"{site.dashboard}/queues/{site.work}")
    await page.get_by_role("button", name="Pause", exact=True).click()
    await page.locator(".title .badge.paused").wait_for()
    assert await site.queue.is_paused(site.work)
    held = await site.queue.enqueue("quick", 3, _queue_name=site.work)
    # The same worker serves the other queue: once it ran a job enqueued after `held`, it
    # has claimed since, and passed `held` over.
    after = await site.queue.enqueue("quick", 4, _queue_name=site.other)
    assert await after.result(timeout=20) == 4
    assert await held.status() is JobStatus.QUEUED
    await page.get_by_role("button", name="Resume", exact=True).click()
    await page.locator(".title .badge.running").wait_for()
    assert await held.result(timeout=20) == 3
    assert not await site.queue.is_paused(site.work)


async def test_search_by_id_lands_on_the_job(page: Page, site: Site) -> None:
    job = await site.queue.enqueue("quick", 5, _queue_name=site.other)
    await job.result(timeout=20)
    await page.goto(site.dashboard + "/workers")
    await page.get_by_role("searchbox", name="Job id").fill(job.id)
    await page.get_by_role("searchbox", name="Job id").press("Enter")
    await page.wait_for_url(f"**/jobs/{job.id}?queue={site.other}")
    assert job.id in await page.locator("h1").inner_text()
    assert await page.locator('[data-field="status"]').inner_text() == "succeeded"


async def test_replay_all_asks_first_then_replays_every_dead_letter(page: Page, site: Site) -> None:
    flag = site.tmp / f"flag-{uuid.uuid4().hex}"
    jobs = [await site.queue.enqueue("needs_file", str(flag)) for _ in range(3)]
    for job in jobs:
        await wait_until(
            lambda job=job: site.queue.dead_letter(job.id, site.work), 20, "dead letters"
        )
    await page.goto(f"{site.dashboard}/queues/{site.work}?tab=dead&task=needs_file")
    asked: list[str] = []
    page.on("dialog", lambda dialog: asked.append(dialog.message))
    flag.touch()
    await page.get_by_role("button", name="Replay all", exact=True).click()
    await page.locator(".notice", has_text="Replayed").wait_for()
    assert asked and "needs_file" in asked[0]
    for job in jobs:
        assert await job.result(timeout=20) == "ran"


async def test_the_read_only_dashboard_has_no_write_buttons_and_refuses_a_post(
    page: Page, browser: Browser, site: Site
) -> None:
    job = await site.queue.enqueue("needs_file", str(site.tmp / "never"))
    await wait_until(lambda: site.queue.dead_letter(job.id, site.work), 20, "the dead letter")
    for path in ("/", f"/queues/{site.work}", f"/queues/{site.work}?tab=dead", f"/jobs/{job.id}"):
        await page.goto(site.read_only + path)
        await page.locator("main h1").wait_for()
        assert await page.locator("form[method=post]").count() == 0, path
        for label in LABELS:
            assert await page.get_by_role("button", name=label, exact=True).count() == 0
    # A POST made from the dashboard's own page (a same-origin fetch): refused all the same.
    forger = await watched_page(browser)
    try:
        await forger.page.goto(site.read_only + "/")
        status = await forger.page.evaluate(
            "async url => (await fetch(url, {method: 'POST', body: 'job_id=x'})).status",
            f"{site.read_only}/queues/{site.work}/pause",
        )
    finally:
        await forger.page.context.close()
    assert status == 403
    assert [e for e in forger.errors if "403" not in e] == []
    assert not await site.queue.is_paused(site.work)
    assert await site.queue.dead_letter(job.id, site.work) is not None


@pytest.fixture
def other_site(site: Site) -> Iterator[str]:
    """A page on another origin (another port: same site, other origin) with a form that
    posts to the writable dashboard, as a malicious page would."""
    form = (
        f'<form method="post" action="{site.dashboard}/queues/{site.work}/pause">'
        '<button type="submit">Win a prize</button></form>'
    ).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(form)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


async def test_a_post_forged_by_another_site_is_refused(
    browser: Browser, site: Site, other_site: str
) -> None:
    watched = await watched_page(browser)
    try:
        await watched.page.goto(other_site)
        async with watched.page.expect_navigation() as navigation:
            await watched.page.get_by_role("button", name="Win a prize").click()
        response = await navigation.value
        assert response is not None and response.status == 403
        assert "another site" in await watched.page.locator("main").inner_text()
    finally:
        await watched.page.context.close()
    assert not await site.queue.is_paused(site.work)


async def test_dark_mode(browser: Browser, site: Site) -> None:
    watched = await watched_page(browser, color_scheme="dark")
    try:
        await watched.page.goto(f"{site.dashboard}/queues/{site.work}")
        background = await watched.page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(20, 23, 29)"
        await shoot(watched.page, "dark")
    finally:
        await watched.page.context.close()
    assert watched.errors == []
