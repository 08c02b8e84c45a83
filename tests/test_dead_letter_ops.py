"""Dead letters at scale: the index (find one without reading the stream), search by task and
error text, and bulk replay that reads each dead letter once."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from asyncjobs import JobStatus, Queue, _operations
from asyncjobs._store import NewJob, QueueKeys, Store


def _new(job_id: str, task: str = "t") -> NewJob:
    return NewJob(job_id, task, b"[[],{}]", idempotency_ttl_ms=1000)


async def dead_letter(
    store: Store, keys: QueueKeys, ids: list[str], task: str = "t", error: str = "E: boom"
) -> None:
    """Dead-letter new jobs through the real path: enqueue, claim, fail permanently."""
    error_type, message = error.split(": ", 1)
    for start in range(0, len(ids), 1000):
        chunk = ids[start : start + 1000]
        await store.enqueue(keys, [_new(i, task) for i in chunk])
        claim = await store.claim(keys, "w", len(chunk), 60_000, False)
        for job in claim.jobs:  # one by one: the dead letters keep the ids' order
            await store.fail(
                keys,
                job.id,
                f"w:{job.attempt}",
                retry_delay_ms=-1,
                max_tries=1,
                error_type=error_type,
                error_message=message,
                traceback="Traceback ...",
            )


@pytest.fixture
async def big_queue(backend_url: str) -> AsyncIterator[Queue]:
    """A queue that keeps up to 50,000 dead letters."""
    async with Queue(backend_url, name=f"d-{os.urandom(4).hex()}", dead_letter_maxlen=50_000) as q:
        yield q


async def test_a_dead_letter_is_found_by_id_without_reading_the_stream(redis_url: str) -> None:
    async with Queue(redis_url, name=f"d-{os.urandom(4).hex()}") as queue:
        keys = queue.keys_for(queue.name)
        await dead_letter(queue.store, keys, [f"j{i}" for i in range(2000)])

        async def calls() -> dict[str, int]:
            stats = await queue.client.info("commandstats")
            return {k: int(v["calls"]) for k, v in stats.items()}

        before = await calls()
        found = await queue.dead_letter("j7")
        missing = await queue.dead_letter("nope")
        after = await calls()
        assert found is not None and found.id == "j7" and found.error == "E: boom"
        assert missing is None
        assert after.get("cmdstat_xrevrange", 0) == before.get("cmdstat_xrevrange", 0)
        assert after["cmdstat_xrange"] - before.get("cmdstat_xrange", 0) == 1, "one entry read"


async def test_the_cap_drops_the_oldest_with_their_index_entries(backend_url: str) -> None:
    async with Queue(backend_url, name=f"d-{os.urandom(4).hex()}", dead_letter_maxlen=5) as q:
        keys = q.keys_for(q.name)
        await dead_letter(q.store, keys, [f"j{i}" for i in range(8)])
        assert [d.id for d in await q.dead_letters()] == ["j7", "j6", "j5", "j4", "j3"]
        assert sorted(await q.client.hkeys(keys.dead_letter_index)) == [
            f"j{i}".encode() for i in range(3, 8)
        ]
        assert await q.dead_letter("j2") is None
        await q.replay_dead_letter("j5")
        assert await q.client.hlen(keys.dead_letter_index) == 4


async def test_dead_letters_of_an_older_release_are_still_found(redis_url: str) -> None:
    """An older release writes entries without the index; a miss then searches the stream."""
    async with Queue(redis_url, name=f"d-{os.urandom(4).hex()}") as queue:
        keys = queue.keys_for(queue.name)
        await queue.client.xadd(keys.dead_letters, {"id": "old", "task": "t", "payload": "[[],{}]"})
        await dead_letter(queue.store, keys, ["new"])
        assert (await queue.dead_letter("old")) is not None
        job = await queue.replay_dead_letter("old")
        assert await job.status() is JobStatus.QUEUED


async def test_search_dead_letters_by_task_and_error_text(
    big_queue: Queue, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_operations, "SEARCH_STEP", 100)  # the search crosses several steps
    q, keys = big_queue, big_queue.keys_for(big_queue.name)
    await dead_letter(q.store, keys, [f"a{i}" for i in range(300)], "send", "TimeoutError: SMTP")
    await dead_letter(q.store, keys, ["b0", "b1"], "bill", "ValueError: no card")
    await dead_letter(q.store, keys, [f"c{i}" for i in range(300)], "send", "OSError: refused")

    timeouts = await q.dead_letters(limit=5, search="timeouterror: smtp")
    assert [d.id for d in timeouts] == [f"a{i}" for i in range(299, 294, -1)]
    assert [d.id for d in await q.dead_letters(task="bill")] == ["b1", "b0"]
    assert [d.id for d in await q.dead_letters(task="bill", search="card")] == ["b1", "b0"]
    assert await q.dead_letters(task="bill", search="refused") == []
    page = await q.dead_letters(limit=2, task="send", before=timeouts[-1].dead_letter_id)
    assert [d.id for d in page] == ["a294", "a293"], "the next page starts after the last"
    plain = await q.dead_letters(limit=2, before=page[-1].dead_letter_id)
    assert [d.id for d in plain] == ["a292", "a291"]
    failed = await q.jobs(JobStatus.FAILED, offset=300, limit=2)
    assert [d.id for d in failed] == ["b1", "b0"]


async def test_bulk_replay_of_one_task_leaves_the_others(big_queue: Queue) -> None:
    q, keys = big_queue, big_queue.keys_for(big_queue.name)
    await dead_letter(q.store, keys, [f"a{i}" for i in range(1200)], "send")
    await dead_letter(q.store, keys, ["b0"], "bill")
    seen: list[tuple[int, int]] = []
    assert await q.replay_dead_letters(task="send", on_progress=lambda *p: seen.append(p)) == 1200
    assert seen[-1] == (1201, 1201) and len(seen) == 3
    assert [d.id for d in await q.dead_letters()] == ["b0"]
    assert (await q.stats()).queued == 1200
    first = await q.jobs(JobStatus.QUEUED, limit=2)
    assert [j.id for j in first] == ["a0", "a1"], "replayed oldest first"
    assert await q.replay_dead_letters() == 1 and await q.dead_letters() == []
    assert await q.replay_dead_letters() == 0


async def test_bulk_replay_is_linear_in_the_dead_letters(redis_url: str) -> None:
    """Counted, not timed: replaying 10x the dead letters sends at most 10x each command (the
    scripts' own commands included), and reads each batch of the stream once."""

    async def commands(n: int) -> dict[str, int]:
        async with Queue(redis_url, name=f"d-{os.urandom(4).hex()}", dead_letter_maxlen=n) as q:
            keys = q.keys_for(q.name)
            await dead_letter(q.store, keys, [f"j{i}" for i in range(n)])
            before = await q.client.info("commandstats")
            assert await q.replay_dead_letters() == n
            after = await q.client.info("commandstats")
            calls = {
                name: stats["calls"] - before.get(name, {}).get("calls", 0)
                for name, stats in after.items()
            }
            assert calls["cmdstat_xrange"] == -(-n // 500), "each batch of the stream is read once"
            assert (await q.stats(minutes=0, hours=0)).queued == n
            assert await q.client.hlen(keys.dead_letter_index) == 0
            await q.purge()
            # the checks above and INFO itself are not the replay's
            return {k: v for k, v in calls.items() if k not in ("cmdstat_info", "cmdstat_hlen")}

    small, large = await commands(1_000), await commands(10_000)
    assert sum(small.values()) > 1_000, "the scripts' commands are counted"
    grew = {k: (small.get(k, 0), v) for k, v in large.items() if v > 10 * small.get(k, 0) + 2}
    assert not grew, f"commands that grew faster than the dead letters (1,000 → 10,000): {grew}"


async def test_a_job_that_fails_again_during_a_bulk_replay_is_not_replayed_twice(
    backend_url: str,
) -> None:
    async with Queue(backend_url, name=f"d-{os.urandom(4).hex()}") as q:
        keys = q.keys_for(q.name)
        await dead_letter(q.store, keys, ["a", "b", "c"])
        until = await q.store.newest_dead_letter(keys)
        assert until is not None
        await dead_letter(q.store, keys, ["d"])  # after the replay began
        batch = await q.store.replay_many(keys, after="-", until=until, task="", limit=2)
        assert batch.replayed == 2 and batch.next is not None
        rest = await q.store.replay_many(keys, after=batch.next, until=until, task="", limit=2)
        assert rest.replayed == 1 and rest.next is None
        assert [d.id for d in await q.dead_letters()] == ["d"]
