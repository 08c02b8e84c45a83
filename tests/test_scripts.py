"""Each Lua script called through the store on the real Redis: state before → after.

The store is the only caller of the scripts; the first tests hold every script's header (its
named ARGV, its repeated groups) against the calls the store sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from asyncjobs._store import (
    CancelOutcome,
    Connection,
    CronChange,
    CronTickOutcome,
    FailOutcome,
    ForgetOutcome,
    NewJob,
    QueueKeys,
    Store,
    UnknownTaskOutcome,
    WorkflowMember,
)
from asyncjobs._store.scripts import (
    JOB_FIELDS,
    KEY_NAMES,
    LEADING,
    LEADING_ARGS,
    SCRIPT_NAMES,
    load_scripts,
)


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[Store]:
    s = Store(Connection(redis_url), keep_result_ms=60_000, dead_letter_cap=100)
    yield s
    await s.close()
    await s.connection.close()


@pytest.fixture
def r(store: Store) -> Any:
    """redis-py on the same server, to look at the keys."""
    return store.connection.client


@pytest.fixture
def k() -> QueueKeys:
    return QueueKeys(f"s-{uuid.uuid4().hex[:10]}")


def new(job_id: str, *, priority: int = 0, max_tries: int = 0, delay_ms: int = 0) -> NewJob:
    return NewJob(
        job_id, "t", b"[[],{}]", priority, max_tries, delay_ms=delay_ms, idempotency_ttl_ms=1000
    )


def ids(claim: Any) -> list[str]:
    return [job.id for job in claim.jobs]


class _Recorder:
    """A connection that records commands and answers every script with a harmless reply."""

    def __init__(self) -> None:
        self.sent: list[tuple[Any, ...]] = []
        self.wire = None
        self.client = self
        self.where = "recorder"
        self.is_cluster = False
        self.publishes_sharded = False

    async def execute_command(self, *command: Any) -> Any:
        self.sent.append(command)
        return [0, 0, -1, b""] if command[0] == "EVALSHA" else None


async def test_every_script_header_matches_what_the_store_sends() -> None:
    """Each script is called by a store method with exactly the KEYS of the key block, the
    leading arguments, then the arguments its header names (and whole repeated groups)."""
    recorder = _Recorder()
    store = Store(recorder, keep_result_ms=5, dead_letter_cap=7)  # type: ignore[arg-type]
    k = QueueKeys("q")
    job = new("a")
    member = WorkflowMember("t", b"[[", b"]]", b"", 0, "", 0, 0, 0, 0)
    calls = [
        store.enqueue(k, [job, job]),
        store.claim(k, "w", 3, 1000, True),
        store.extend(k, 1000, [("a", "w:1"), ("b", "w:1")]),
        store.complete(k, [("a", "w:1", b"1")]),
        store.fail(
            k,
            "a",
            "w:1",
            retry_delay_ms=1,
            max_tries=3,
            error_type="E",
            error_message="m",
            traceback="tb",
        ),
        store.requeue(k, "a", "w:1"),
        store.recover(k, limit=10, default_max_tries=3, max_stalls=3),
        store.cancel(k, "a"),
        store.progress(k, "a", "w:1", 0.5, "stage", "message"),
        store.checkpoint(k, "a", "w:1", b"7"),
        store.replay(k, "0-1", "a"),
        store.cron_tick(k, "c", 1, True, job),
        store.cron_tick(k, "c", 1, True, job, revision="r1"),
        store.add_cron(k, "c", b'{"source":"runtime"}'),
        store.remove_cron(k, "c"),
        store.declare_crons(k, 1000, [("c", b"{}"), ("d", b"{}")]),
        store.heartbeat(k, "w", 1000, limits=[("t", 1, 0, 3), ("u", 0, 50, 0)]),
        store.start_workflow(k, "wf", "chain", b"[0]", [member, member]),
        store.set_paused(k, True),
        store.counts(k, minutes=60, hours=True),
        store.purge_waiting(k, 100),
        store.replay_many(k, after="-", until="+", task="", limit=10),
        store.search_dead_letters(k, before="+", task="t", text="e", limit=5, scan=100),
        store.purge_dead_letters(k),
        store.forget(k),
        store.give_back_unknown(
            k, "a", "w:1", grace_ms=1, worker="w", error_message="m", waiting_message="w"
        ),
        store.set_partitions(k, 3),
        store.leave(k, "w", "wake"),
    ]
    for call in calls:
        # the recorder's reply does not fit every parser; the command was sent all the same
        with contextlib.suppress(ValueError, TypeError, IndexError, AssertionError):
            await call
    by_sha = {script.sha: script for script in load_scripts().values()}
    called = set()
    assert LEADING_ARGS == ("tag", "keep_ms", "dead_letter_cap", "sharded")
    for command in recorder.sent:
        script = by_sha[command[1]]
        called.add(script.name)
        nkeys = command[2]
        # the KEYS sent are the ones the script's K table is built from, in the same order
        table = re.search(r"local K = \{(.*?)\}\n", script.source)
        assert table is not None, script.name
        names = re.findall(r"(\w+) = KEYS\[(\d+)\]", table.group(1))
        assert [int(i) for _, i in names] == list(range(1, nkeys + 1)), script.name
        assert command[3 : 3 + nkeys] == tuple(f"{k.tag}:{name}" for name, _ in names)
        assert {name for name, _ in names} <= set(KEY_NAMES)
        argv = command[3 + nkeys :]
        assert argv[:LEADING] == (k.tag, 5, 7, 0), script.name
        rest = len(argv) - LEADING - len(script.args)
        assert rest >= 0 and (rest % len(script.each) == 0 if script.each else rest == 0)
    assert called == set(SCRIPT_NAMES), "every script has a store method"


def test_scripts_name_their_keys_and_arguments_in_one_place() -> None:
    """A script reads its keys from the key block (K.ready...), never KEYS[n] by position,
    and says what it returns; its own ARGV are numbered after the leading ones (the parser
    refuses anything else at import)."""
    for script in load_scripts().values():
        body = script.source.split("\n-- " + script.name + ":", 1)[1]  # after the prelude
        assert "KEYS[" not in body, f"{script.name}.lua indexes KEYS itself"
        assert "-- Returns" in body, f"{script.name}.lua says what it returns"


def test_the_job_records_have_the_fields_the_scripts_read_in_their_order() -> None:
    scripts = load_scripts()
    assert NewJob._fields == JOB_FIELDS == scripts["enqueue"].each == scripts["cron_tick"].each
    assert WorkflowMember._fields == scripts["workflow_start"].each


def test_a_wrong_call_is_refused_before_anything_is_sent() -> None:
    store = Store(_Recorder(), keep_result_ms=5, dead_letter_cap=7)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"fail\.lua takes"):
        store.command("fail", QueueKeys("q"), id="a")
    with pytest.raises(TypeError, match="groups of"):
        store.command("complete", QueueKeys("q"), each=[("a", "w:1")])


async def test_enqueue_dedupes_by_id_and_key(store: Store, r: Any, k: QueueKeys) -> None:
    reply = await store.enqueue(k, [new("a"), new("a"), new("b", delay_ms=60000)])
    assert reply == [("a", False), ("a", True), ("b", False)]
    assert await r.zrange(k.ready, 0, -1) == [b"a"]
    assert await r.zrange(k.deferred, 0, -1) == [b"b"]
    assert await r.hget(k.job("b"), "status") == b"deferred"
    assert await r.zcard(k.wake) == 1


async def test_claim_orders_by_priority_then_fifo_and_leases(
    store: Store, r: Any, k: QueueKeys
) -> None:
    await store.enqueue(k, [new("low", priority=-1), new("x"), new("hi", priority=9), new("y")])
    claim = await store.claim(k, "w1", 3, 5000, True)
    assert ids(claim) == ["hi", "x", "y"]
    assert claim.next_due_ms == -1 and claim.now_ms > 1_700_000_000_000
    assert not claim.suspects_waiting and claim.suspect is None
    assert await r.hget(k.job("hi"), "token") == b"w1:1"
    assert await r.hget(k.job("hi"), "status") == b"in_progress"
    assert await r.zcard(k.leases) == 3
    assert await r.zcard(k.wake) == 1, "work is left, so the next worker is woken (chain wake)"


async def test_rate_limited_starts_stay_an_interval_apart_after_a_late_claim(
    store: Store, r: Any, k: QueueKeys
) -> None:
    """Reserved slots that all fell due while no worker looked start one by one, not together."""
    await store.heartbeat(k, "w1", 60_000, limits=[("t", 0, 200, 0)])
    await store.enqueue(k, [new("a"), new("b"), new("c")])
    assert ids(await store.claim(k, "w1", 3, 5000, True)) == ["a"], "b and c reserve slots"
    assert await r.zrange(k.deferred, 0, -1) == [b"b", b"c"]
    await asyncio.sleep(0.5)  # both reserved slots (+200, +400 ms) have passed
    assert ids(await store.claim(k, "w1", 3, 5000, True)) == ["b"]
    b_started = int(await r.hget(k.job("b"), "started_at"))
    status, slot = await r.hmget(k.job("c"), "status", "scheduled_at")
    assert status == b"deferred"
    assert int(float(slot)) == b_started + 200, "c waits one interval after b's actual start"
    assert await r.zscore(k.deferred, "c") == int(float(slot))


async def test_fencing_refuses_an_old_token(store: Store, r: Any, k: QueueKeys) -> None:
    await store.enqueue(k, [new("j", max_tries=3)])
    await store.claim(k, "slow", 1, 1, True)
    await r.delete(k.wake)
    await asyncio.sleep(0.01)
    recovery = await store.recover(k, limit=100, default_max_tries=3, max_stalls=3)
    assert (recovery.recovered, recovery.dead_lettered, recovery.next_deadline_ms) == (1, [], -1)
    assert await r.hget(k.job("j"), "status") == b"queued"
    await store.claim(k, "fast", 1, 5000, True)
    assert await r.hget(k.job("j"), "token") == b"fast:2"
    assert await store.complete(k, [("j", "slow:1", b"1")]) == [False], "the slow ack is refused"
    failed = await store.fail(
        k, "j", "slow:1", retry_delay_ms=0, max_tries=3, error_type="E", error_message="m",
        traceback="",
    )  # fmt: skip
    assert failed is FailOutcome.REFUSED
    assert await store.complete(k, [("j", "fast:2", b"1")]) == [True]
    assert await r.hget(k.job("j"), "status") == b"succeeded"
    assert await r.ttl(k.job("j")) > 0
    # the same report sent again (its first reply was lost) counts as stored, and changes nothing
    assert await store.complete(k, [("j", "fast:2", b"2")]) == [True]
    assert await r.hget(k.job("j"), "result") == b"1", "the first result stays"
    assert await r.hget(k.stats, "succeeded") == b"1", "the success is counted once"
    # a slow worker's try is still refused after the job finished
    assert await store.complete(k, [("j", "slow:1", b"3")]) == [False]


async def _fail(store: Store, k: QueueKeys, token: str, delay_ms: int, max_tries: int) -> Any:
    return await store.fail(
        k, "j", token, retry_delay_ms=delay_ms, max_tries=max_tries, error_type="E",
        error_message="msg", traceback="tb",
    )  # fmt: skip


async def test_fail_retries_then_dead_letters(store: Store, r: Any, k: QueueKeys) -> None:
    await store.enqueue(k, [new("j")])
    await store.claim(k, "w1", 1, 5000, True)
    assert await _fail(store, k, "w1:1", 60000, 2) is FailOutcome.RETRY
    assert await r.hget(k.job("j"), "status") == b"deferred"
    assert await r.zscore(k.deferred, "j") is not None
    assert await r.zcard(k.leases) == 0
    await r.zadd(k.deferred, {"j": 0})  # make it due now
    claim = await store.claim(k, "w1", 1, 5000, True)
    assert ids(claim) == ["j"] and claim.jobs[0].attempt == 2
    assert await _fail(store, k, "w1:2", 0, 2) is FailOutcome.DEAD_LETTERED
    assert await r.hget(k.job("j"), "status") == b"failed"
    [(_, entry)] = await r.xrange(k.dead_letters)
    assert entry[b"id"] == b"j" and entry[b"attempts"] == b"2" and entry[b"error_type"] == b"E"


async def test_permanent_failure_skips_retries(store: Store, k: QueueKeys) -> None:
    await store.enqueue(k, [new("j")])
    await store.claim(k, "w1", 1, 5000, True)
    assert await _fail(store, k, "w1:1", -1, 5) is FailOutcome.DEAD_LETTERED


async def test_recover_dead_letters_when_tries_are_used_up(
    store: Store, r: Any, k: QueueKeys
) -> None:
    await store.enqueue(k, [new("j", max_tries=1)])
    await store.claim(k, "w1", 1, 1, True)
    await asyncio.sleep(0.01)
    recovery = await store.recover(k, limit=100, default_max_tries=3, max_stalls=3)
    assert recovery.recovered == 0 and recovery.next_deadline_ms == -1
    [dead] = recovery.dead_lettered
    assert (dead.id, dead.task, dead.error_type) == ("j", "t", "WorkerLost")
    assert await r.hget(k.job("j"), "error_type") == b"WorkerLost"
    assert await r.xlen(k.dead_letters) == 1


async def test_extend_reports_lost_leases_and_which_were_cancelled(
    store: Store, k: QueueKeys
) -> None:
    await store.enqueue(k, [new("a"), new("b"), new("c")])
    await store.claim(k, "w1", 3, 5000, True)
    assert await store.cancel(k, "c") == 2  # cancelled while running
    lost = await store.extend(k, 5000, [("a", "w1:1"), ("b", "other:1"), ("c", "w1:1")])
    assert lost == [("b", False), ("c", True)]


async def test_requeue_gives_the_try_back(store: Store, r: Any, k: QueueKeys) -> None:
    await store.enqueue(k, [new("j")])
    await store.claim(k, "w1", 1, 5000, True)
    assert await store.requeue(k, "j", "w1:1") is True
    assert await r.hget(k.job("j"), "attempts") == b"0"
    assert await r.zrange(k.ready, 0, -1) == [b"j"]


async def test_cancel_running_revokes_token_and_notifies(
    store: Store, r: Any, k: QueueKeys
) -> None:
    await store.enqueue(k, [new("j")])
    await store.claim(k, "w1", 1, 5000, True)
    pubsub = r.pubsub()
    await pubsub.subscribe(k.cancel)
    await pubsub.get_message(timeout=1)
    assert await store.cancel(k, "j") is CancelOutcome.CANCELLED_RUNNING
    message = await pubsub.get_message(timeout=1)
    assert message is not None and message["data"] == b"j"
    await pubsub.aclose()
    assert await store.complete(k, [("j", "w1:1", b"1")]) == [False]
    assert await r.hget(k.job("j"), "status") == b"cancelled"
    assert await store.cancel(k, "j") is CancelOutcome.ALREADY_CANCELLED, "a retry sees it done"


async def test_a_replay_sent_twice_replays_once_and_says_so_twice(
    store: Store, r: Any, k: QueueKeys
) -> None:
    """A replay whose reply was lost is sent again by the connection's retry: the second call
    must report the job replayed, not 'gone'."""
    await store.enqueue(k, [new("j")])
    await store.claim(k, "w1", 1, 5000, True)
    await _fail(store, k, "w1:1", -1, 1)
    entry = await store.find_dead_letter(k, "j")
    assert entry is not None
    assert await store.replay(k, entry, "j") == "j"
    assert await store.replay(k, entry, "j") == "j"
    assert await r.zrange(k.ready, 0, -1) == [b"j"] and await r.xlen(k.dead_letters) == 0
    assert await store.replay(k, entry, "other") is None


async def test_poison_pill_after_max_stalls(store: Store, r: Any, k: QueueKeys) -> None:
    await store.enqueue(k, [new("j", max_tries=10)])
    for stall in (1, 2, 3):
        await store.claim(k, "w1", 1, 1, True)
        await asyncio.sleep(0.01)
        recovery = await store.recover(k, limit=100, default_max_tries=3, max_stalls=3)
        assert (recovery.recovered, len(recovery.dead_lettered)) == (
            (1, 0) if stall < 3 else (0, 1)
        )
    assert await r.hget(k.job("j"), "error_type") == b"PoisonPill"
    assert await r.hget(k.job("j"), "status") == b"failed"


async def test_a_dead_workers_jobs_come_back_first_in_line_then_as_suspects(
    store: Store, r: Any, k: QueueKeys
) -> None:
    """Collateral of one crash runs at full concurrency, ahead of the jobs still waiting; a job
    caught in a second crash is a suspect, run one per worker, and blamed if it dies again."""

    async def worker_dies(*job_ids: str) -> Any:
        await r.zadd(k.leases, dict.fromkeys(job_ids, 0))  # their leases run out
        return await store.recover(k, limit=100, default_max_tries=9, max_stalls=3)

    await store.enqueue(k, [new(i, max_tries=9) for i in "abcdef"])
    assert ids(await store.claim(k, "w0", 2, 60_000, True)) == ["a", "b"]
    recovery = await worker_dies("a", "b")  # a and b die together
    assert (recovery.recovered, recovery.dead_lettered) == (2, [])
    assert await r.hget(k.job("a"), "stalls") is None, "died in company: not blamed"
    first = await store.claim(k, "w1", 4, 60_000, True)
    assert ids(first) == ["a", "b", "c", "d"], "first in line again, at full concurrency"
    assert first.suspect is None and not first.suspects_waiting
    recovery = await worker_dies("a", "b", "c", "d")  # w1 dies with all four
    assert recovery.recovered == 4
    second = await store.claim(k, "w2", 5, 60_000, True)
    assert second.suspect == "a", "a died twice: one suspect per worker"
    assert ids(second) == ["a", "c", "d", "e", "f"], "c and d (first crash) before the rest"
    assert second.suspects_waiting, "b waits for a worker without a suspect"
    carrying = await store.claim(k, "w2", 5, 60_000, False)
    assert ids(carrying) == [] and carrying.suspects_waiting, "w2 carries a suspect already"
    other = await store.claim(k, "w3", 5, 60_000, True)
    assert other.suspect == "b" and not other.suspects_waiting
    await worker_dies("a", "c", "d", "e", "f")  # w2 dies: only its suspect is blamed
    assert await r.hget(k.job("a"), "stalls") == b"1"
    assert await r.hget(k.job("c"), "stalls") is None
    assert await r.hget(k.job("e"), "suspect") is None, "e died once: not a suspect yet"
    assert await r.hget(k.job("c"), "suspect") == b"1", "c died twice: a suspect now"


async def test_a_job_blamed_for_a_death_comes_back_as_a_suspect(
    store: Store, r: Any, k: QueueKeys
) -> None:
    """A worker's only job in flight is blamed: it is isolated at once, not put first in line
    beside other jobs it might take down with it."""
    await store.enqueue(k, [new("pill", max_tries=9), new("x")])
    await store.claim(k, "w0", 1, 1, True)
    await asyncio.sleep(0.01)
    await store.recover(k, limit=100, default_max_tries=9, max_stalls=3)
    assert await r.hget(k.job("pill"), "stalls") == b"1"
    claim = await store.claim(k, "w1", 5, 60_000, True)
    assert claim.suspect == "pill" and ids(claim) == ["pill", "x"]


TRACE = '{"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}'


async def test_a_trace_context_stays_with_its_job_through_retry_dead_letter_and_replay(
    store: Store, r: Any, k: QueueKeys
) -> None:
    await store.enqueue(k, [new("j")._replace(trace=TRACE), new("plain")])
    assert await r.hget(k.job("j"), "trace") == TRACE.encode()
    assert not await r.hexists(k.job("plain"), "trace"), "no context: no field at all"
    claim = await store.claim(k, "w1", 2, 5000, True)
    assert {job.id: job.trace for job in claim.jobs} == {"j": TRACE.encode(), "plain": b""}
    assert await _fail(store, k, "w1:1", 0, 3) is FailOutcome.RETRY
    [again] = (await store.claim(k, "w1", 1, 5000, True)).jobs
    assert (again.id, again.attempt, again.trace) == ("j", 2, TRACE.encode())
    assert await _fail(store, k, "w1:2", -1, 3) is FailOutcome.DEAD_LETTERED
    await store.fail(
        k, "plain", "w1:1", retry_delay_ms=-1, max_tries=1, error_type="E", error_message="m",
        traceback="",
    )  # fmt: skip
    letters = {fields[b"id"]: fields for _, fields in await r.xrange(k.dead_letters)}
    assert letters[b"j"][b"trace"] == TRACE.encode()
    assert b"trace" not in letters[b"plain"]
    for job_id in ("j", "plain"):
        entry = await store.find_dead_letter(k, job_id)
        assert entry is not None and await store.replay(k, entry, job_id) == job_id
    assert await r.hget(k.job("j"), "trace") == TRACE.encode()
    assert not await r.hexists(k.job("plain"), "trace")
    replayed = {job.id: job.trace for job in (await store.claim(k, "w1", 2, 5000, True)).jobs}
    assert replayed == {"j": TRACE.encode(), "plain": b""}


async def test_every_member_of_a_workflow_carries_its_trace_context(
    store: Store, r: Any, k: QueueKeys
) -> None:
    first = WorkflowMember("t", b"[[1", b"],{}]", b"", 0, "1", 0, 0, 0, 0)
    second = WorkflowMember("t", b"[[", b"],{}]", b"[0]", 1, "", 0, 0, 0, 0)
    assert await store.start_workflow(k, "wf", "chain", b"[1]", [first, second], trace=TRACE)
    [head] = (await store.claim(k, "w1", 5, 5000, True)).jobs
    assert (head.id, head.trace) == ("wf.0", TRACE.encode())
    await store.complete(k, [("wf.0", "w1:1", b"2")])
    [step] = (await store.claim(k, "w1", 5, 5000, True)).jobs
    assert (step.id, step.trace) == ("wf.1", TRACE.encode()), "started by the first's ack"
    assert await store.start_workflow(k, "wf2", "chain", b"[0]", [first])
    [plain] = (await store.claim(k, "w1", 5, 5000, True)).jobs
    assert plain.trace == b"" and not await r.hexists(k.job("wf2.0"), "trace")


async def test_a_checkpoint_goes_to_the_next_try_and_an_old_token_cannot_overwrite_it(
    store: Store, r: Any, k: QueueKeys
) -> None:
    await store.enqueue(k, [new("j", max_tries=3)])
    [first] = (await store.claim(k, "slow", 1, 1, True)).jobs
    assert first.checkpoint == b"", "none yet"
    assert await store.checkpoint(k, "j", "slow:1", b'{"page":3}') is True
    await r.delete(k.wake)
    await asyncio.sleep(0.01)  # the lease (1 ms) runs out: the job is recovered and reclaimed
    assert (await store.recover(k, limit=10, default_max_tries=3, max_stalls=3)).recovered == 1
    [second] = (await store.claim(k, "fast", 1, 5000, True)).jobs
    assert (second.attempt, second.checkpoint) == (2, b'{"page":3}')
    assert await store.checkpoint(k, "j", "fast:2", b'{"page":9}') is True
    assert await store.checkpoint(k, "j", "slow:1", b'{"page":4}') is False, "a zombie's"
    assert await r.hget(k.job("j"), "checkpoint") == b'{"page":9}'
    assert await _fail(store, k, "fast:2", -1, 3) is FailOutcome.DEAD_LETTERED
    [(entry, fields)] = await r.xrange(k.dead_letters)
    assert fields[b"checkpoint"] == b'{"page":9}', "the dead letter keeps it"
    assert await store.checkpoint(k, "j", "fast:2", b"1") is False, "an ended job takes none"
    assert await store.replay(k, entry.decode(), "j") == "j"
    [replayed] = (await store.claim(k, "w", 1, 5000, True)).jobs
    assert (replayed.attempt, replayed.checkpoint) == (1, b'{"page":9}'), "a replay resumes"


async def test_a_failing_member_enqueues_the_error_callbacks_holding_it_once(
    store: Store, r: Any, k: QueueKeys
) -> None:
    members = [WorkflowMember("t", b"[[],{}]", b"", b"", 0, "", 0, 0, 0, 0) for _ in range(3)]
    on_error = orjson.dumps(
        [
            ["undo", "[[", ',"x"],{}]', 1, 1, 2, 5, 2, 0],  # a group of members 1..2
            ["alert", '[["y"],{}]', "", 0, 0, 0, 0, 0, 0],  # takes no failure; member 0 only
        ]
    )
    assert await store.start_workflow(k, "wf", "group", b"[0,1,2]", members, on_error=on_error)
    claimed = {job.id for job in (await store.claim(k, "w", 3, 5000, True)).jobs}
    assert claimed == {"wf.0", "wf.1", "wf.2"}
    await store.complete(k, [("wf.0", "w:1", b"1")])
    fail = {"retry_delay_ms": -1, "max_tries": 1, "traceback": ""}
    await store.fail(k, "wf.2", "w:1", error_type="E", error_message="m", **fail)
    await store.fail(k, "wf.1", "w:1", error_type="F", error_message="n", **fail)
    callback = await r.hgetall(k.job("wf.on_error.0"))
    assert (callback[b"task"], callback[b"status"]) == (b"undo", b"queued")
    assert (callback[b"priority"], callback[b"max_tries"]) == (b"5", b"2")
    assert orjson.loads(callback[b"payload"]) == [
        [
            {"workflow_id": "wf", "job_id": "wf.2", "task": "t", "error_type": "E",
             "error_message": "m", "succeeded": []},
            "x",
        ],
        {},
    ]  # fmt: skip
    assert not await r.exists(k.job("wf.on_error.1")), "member 2 is not in that node"
    assert await r.zscore(k.ready, "wf.on_error.0") is not None
    assert await r.zcard(k.ready) == 1, "the second failure enqueued nothing more"


def _runtime(revision: str) -> bytes:
    return orjson.dumps({"task": "t", "expression": "* * * * *", "source": "runtime",
                         "revision": revision, "args": [], "kwargs": {}})  # fmt: skip


async def test_a_run_time_cron_ticks_only_while_its_definition_is_stored(
    store: Store, r: Any, k: QueueKeys
) -> None:
    async with r.pubsub() as changes:
        await changes.subscribe(k.cron_changes)
        assert await store.add_cron(k, "c", _runtime("r1")) is CronChange.ADDED
        assert await store.add_cron(k, "c", _runtime("r2")) is CronChange.REPLACED
        published = [await changes.get_message(timeout=1) for _ in range(3)]
        assert [m["data"] for m in published if m and m["type"] == "message"] == [b"c", b"c"]
    assert (await store.cron_tick(k, "c", 1000, False, new("c1"), revision="r1"))[1] == (
        CronTickOutcome.REMOVED
    ), "the replaced definition"
    assert (await store.cron_tick(k, "c", 1000, False, new("c1"), revision="r2"))[1] == (
        CronTickOutcome.ENQUEUED
    )
    assert await store.remove_cron(k, "c") is CronChange.REMOVED
    assert await r.hget(k.cron, "c") is None and await r.hget(k.crontab, "c") is None
    assert (await store.cron_tick(k, "c", 2000, False, new("c2"), revision="r2"))[1] == (
        CronTickOutcome.REMOVED
    )
    assert not await r.exists(k.job("c2")), "nothing enqueued after the removal"
    assert await store.remove_cron(k, "c") is CronChange.NOT_FOUND
    _, settings_tick = await store.cron_tick(k, "s", 1000, False, new("s1"))
    assert settings_tick is CronTickOutcome.ENQUEUED, "a settings cron is not in the crontab"


async def test_settings_crons_are_declared_for_a_while_and_never_over_a_run_time_one(
    store: Store, r: Any, k: QueueKeys
) -> None:
    await store.add_cron(k, "taken", _runtime("r1"))
    settings = orjson.dumps({"task": "t", "expression": "0 3 * * *", "source": "settings"})
    conflicts = await store.declare_crons(k, 50, [("nightly", settings), ("taken", settings)])
    assert conflicts == ["taken"]
    assert orjson.loads(await r.hget(k.crontab, "taken"))["revision"] == "r1", "untouched"
    declared = orjson.loads(await r.hget(k.crontab, "nightly"))
    assert declared["source"] == "settings" and declared["until"] > 0
    assert await store.add_cron(k, "nightly", _runtime("r2")) is CronChange.REFUSED
    assert await store.remove_cron(k, "nightly") is CronChange.REFUSED
    await asyncio.sleep(0.06)  # the declaration (50 ms) lapses: no worker renewed it
    assert await store.declare_crons(k, 50, []) == []
    assert await r.hget(k.crontab, "nightly") is None, "a lapsed declaration is dropped"


async def test_a_paused_queue_claims_nothing_and_is_woken_only_by_resume(
    store: Store, r: Any, k: QueueKeys
) -> None:
    assert await store.set_paused(k, True)
    await store.enqueue(k, [new("a"), new("b", delay_ms=1)])
    assert not await r.exists(k.wake), "enqueue does not wake a paused queue's workers"
    await asyncio.sleep(0.01)
    claim = await store.claim(k, "w", 10, 1000, True)
    assert claim.jobs == [] and claim.next_due_ms == -1 and not claim.suspects_waiting
    assert await r.zcard(k.ready) == 2, "the due job moved to ready, to wait there"
    assert not await r.exists(k.wake), "a paused claim does not chain-wake"
    assert await store.set_paused(k, False) and await r.exists(k.wake)
    assert ids(await store.claim(k, "w", 10, 1000, True)) == ["a", "b"]


async def test_the_heartbeat_folds_each_ended_minute_into_its_hour_once(
    store: Store, r: Any, k: QueueKeys
) -> None:
    now_minute = await store.now_ms() // 60_000
    hour = (now_minute - 3) // 60
    await r.hset(f"{k.minute_prefix}{now_minute - 3}", mapping={"succeeded": 5, "failed": 1})
    await r.hset(f"{k.minute_prefix}{now_minute}", "succeeded", 7)  # not ended: not folded
    await r.hset(k.hours, mapping={"rolled": now_minute - 70, f"{hour - 200}:succeeded": 9})
    await store.heartbeat(k, "w", 1000)
    await store.heartbeat(k, "w", 1000)
    hours = await r.hgetall(k.hours)
    assert hours[b"rolled"] == str(now_minute - 1).encode()
    assert int(hours[f"{hour}:succeeded".encode()]) == 5, "folded once"
    assert f"{hour - 200}:succeeded".encode() not in hours, "older than a week: dropped"
    assert 0 < await r.pttl(k.hours) <= 7 * 24 * 3_600_000


async def test_a_worker_gives_back_a_job_whose_task_it_does_not_know(
    store: Store, r: Any, k: QueueKeys
) -> None:
    await store.enqueue(k, [new("a")])
    await store.heartbeat(k, "knows-t", 60_000, 0, '{"tasks": ["t"]}')  # a worker that does
    delays = []
    for _ in range(3):
        await r.zadd(k.ready, {"a": 0})  # bring it straight back (skips the wait)
        await r.zrem(k.deferred, "a")
        await r.hset(k.job("a"), "status", "queued")
        claim = await store.claim(k, "w", 1, 1000, True)
        outcome, delay = await store.give_back_unknown(
            k, "a", f"w:{claim.jobs[0].attempt}", grace_ms=60_000, worker="w",
            error_message="dead", waiting_message="waiting",
        )  # fmt: skip
        assert outcome is UnknownTaskOutcome.GIVEN_BACK
        delays.append(delay)
    assert delays == [0, 500, 1000], "offered to the others at once, then backs off"
    job = await r.hgetall(k.job("a"))
    assert job[b"status"] == b"deferred" and job[b"attempts"] == b"0", "no try spent"
    assert job[b"error_message"] == b"waiting" and await r.hget(k.unknown, "t")
    assert (await store.give_back_unknown(
        k, "a", "w:1", grace_ms=0, worker="w", error_message="dead", waiting_message="w"
    ))[0] is UnknownTaskOutcome.REFUSED, "its lease is gone"  # fmt: skip
    await r.zadd(k.ready, {"a": 0})
    await r.zrem(k.deferred, "a")
    await r.hset(k.job("a"), "status", "queued")
    await store.claim(k, "w", 1, 1000, True)
    outcome, _ = await store.give_back_unknown(
        k, "a", "w:1", grace_ms=0, worker="w", error_message="dead", waiting_message="w"
    )
    assert outcome is UnknownTaskOutcome.DEAD_LETTERED, "the grace is over"


async def test_the_claim_that_brings_a_given_back_job_back_leaves_it_to_another_worker(
    store: Store, r: Any, k: QueueKeys
) -> None:
    """The worker that gave a job back does not take it in the claim that brings it back from
    deferred: it goes to ready behind that claim's hand-out, with a wake-up for the next worker.
    Alone, the same worker's next claim takes it again (nothing waits on a worker that may
    never come)."""
    await store.enqueue(k, [new("a"), new("b")])
    await store.heartbeat(k, "knows-t", 60_000, 0, '{"tasks": ["t"]}')
    claim = await store.claim(k, "w", 1, 1000, True)
    assert ids(claim) == ["a"]
    outcome, delay = await store.give_back_unknown(
        k, "a", "w:1", grace_ms=60_000, worker="w", error_message="dead", waiting_message="w"
    )
    assert (outcome, delay) == (UnknownTaskOutcome.GIVEN_BACK, 0), "due at once"
    await r.delete(k.wake)
    assert ids(await store.claim(k, "w", 10, 1000, True)) == ["b"], "not a, which it gave back"
    assert (
        await r.zscore(k.ready, "a") is not None and await r.hget(k.job("a"), "status") == b"queued"
    )
    assert await r.exists(k.wake), "the next blocked worker is woken to take it"
    assert ids(await store.claim(k, "w", 10, 1000, True)) == ["a"], "from ready, it takes it"
    await store.give_back_unknown(
        k, "a", "w:1", grace_ms=60_000, worker="w", error_message="dead", waiting_message="w"
    )
    await r.zadd(k.deferred, {"a": 0})  # its half-second back-off is over
    assert ids(await store.claim(k, "other", 10, 1000, True)) == ["a"], "another takes it"


async def test_a_leaving_worker_is_handed_nothing_and_others_are_woken(
    store: Store, r: Any, k: QueueKeys
) -> None:
    await store.enqueue(k, [new("a"), new("b")])
    await store.leave(k, "w", "wake")
    assert await r.zrange(k.own_wake("w"), 0, -1) == [b"w"], "its own wait returns"
    assert 0 < await r.pttl(k.own_wake("w")) <= 60_000
    await r.delete(k.wake)
    assert ids(await store.claim(k, "w", 10, 1000, True)) == [], "a leaving worker takes none"
    assert await r.exists(k.wake), "the wake-up it may have taken goes on to the next worker"
    assert ids(await store.claim(k, "other", 1, 1000, True)) == ["a"], "others claim as before"
    await store.leave(k, "w", "clear")
    assert ids(await store.claim(k, "w", 10, 1000, True)) == ["b"], "started again: it claims"
    await store.leave(k, "v", "mark")
    assert not await r.exists(k.own_wake("v")), "'mark' writes no wake key"


async def test_a_job_whose_task_no_live_worker_knows_is_dead_lettered_at_once(
    store: Store, r: Any, k: QueueKeys
) -> None:
    await store.enqueue(k, [new("a"), new("b")])
    await store.heartbeat(k, "knows-u", 60_000, 0, '{"tasks": ["u"]}')  # knows another task
    await store.heartbeat(k, "old", 60_000, 0, "{}")  # an older release: describes nothing
    claim = await store.claim(k, "w", 1, 1000, True)
    outcome, _ = await store.give_back_unknown(
        k, claim.jobs[0].id, "w:1", grace_ms=60_000, worker="w", error_message="dead",
        waiting_message="waiting",
    )  # fmt: skip
    assert outcome is UnknownTaskOutcome.DEAD_LETTERED
    assert await r.hget(k.job("a"), "status") == b"failed"
    [(_, fields)] = await store.dead_letters(k, 10)
    assert fields[b"error_type"] == b"UnknownTaskError" and fields[b"error_message"] == b"dead"


async def test_forget_refuses_a_queue_with_anything_left(
    store: Store, r: Any, k: QueueKeys
) -> None:
    await store.enqueue(k, [new("a")])
    assert await store.forget(k) == (ForgetOutcome.HAS_JOBS, 1)
    await store.cancel(k, "a")
    await store.heartbeat(k, "w", 10_000)
    assert await store.forget(k) == (ForgetOutcome.HAS_WORKERS, 1)
    await store.heartbeat(k, "w", 0)
    assert (await store.forget(k))[0] is ForgetOutcome.FORGOTTEN
    assert not await r.exists(k.stats, k.recent_prefix + "cancelled", k.workers)
    assert await r.exists(k.job("a")), "a finished job's record expires by itself"


async def test_partitions_keeps_the_most_a_queue_ever_had_so_workers_drain_them(
    store: Store, r: Any, k: QueueKeys
) -> None:
    assert await r.exists(k.partitions) == 0  # a queue never partitioned has no such key
    assert (await store.partitions(k)).span == 1
    layout = await store.set_partitions(k, 6)
    assert (layout.count, layout.span) == (6, 6)
    layout = await store.set_partitions(k, 3)
    assert (layout.count, layout.span) == (3, 6)  # partitions 3..5 are still served
    read = await store.partitions(k)
    assert (read.count, read.span) == (3, 6)
    assert await r.zscore(k.wake, "w") == 0  # idle workers wake and re-read it
