"""Store: every read and write asyncjobs makes in Redis, as typed methods.

The only code that knows script names, the order of their KEYS and ARGV, the shape of their
replies and what their codes mean (the scripts' headers say it; ``scripts`` parses them). Every
Redis fault leaves here as an asyncjobs error (see ``errors``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable, Sequence
from typing import Any, TypeVar

from redis.crc import key_slot
from redis.exceptions import NoScriptError

from .admin import Admin, _text, counts_from_reply
from .connection import Connection
from .errors import translate
from .keys import QueueKeys, queues_registry_key
from .records import (
    CancelOutcome,
    Claim,
    ClaimedRecord,
    CronChange,
    CronTickOutcome,
    DeadLettered,
    Enqueued,
    FailOutcome,
    NewJob,
    Partitions,
    QueueCounts,
    Recovery,
    WorkflowMember,
)
from .scripts import Script, load_scripts

T = TypeVar("T")

#: A claim reply carries this many values per claimed job (see claim.lua).
_CLAIMED_WIDTH = 9


class Store(Admin):
    """Typed access to the queues of one Redis, through one Connection (the reads and writes
    of operating queues, pause to bulk replays, are in ``admin``).

    ``keep_result_ms`` and ``dead_letter_cap`` are the leading arguments every script gets:
    how long finished jobs stay readable and how many dead letters a queue keeps (and, from
    the connection, whether scripts publish with SPUBLISH).
    """

    def __init__(
        self, connection: Connection, *, keep_result_ms: int, dead_letter_cap: int
    ) -> None:
        self.connection = connection
        self.keep_result_ms = keep_result_ms
        self.dead_letter_cap = dead_letter_cap
        self._scripts = load_scripts()
        self._by_sha = {script.sha: script for script in self._scripts.values()}
        self._blocker: Any = None  # a Wire of its own for blocking waits, made on first use
        self._sharded = int(connection.publishes_sharded)  # the scripts' ARGV[4]: SPUBLISH

    @property
    def where(self) -> str:
        """The server, as logs and errors name it (no password)."""
        return self.connection.where

    async def close(self) -> None:
        if self._blocker is not None:
            self._blocker.close()
            self._blocker = None

    # -- calling ----------------------------------------------------------------------------

    def command(
        self,
        script_name: str,
        keys: QueueKeys,
        /,
        *,
        each: Iterable[Sequence[Any]] = (),
        **args: Any,
    ) -> tuple[Any, ...]:
        """The EVALSHA of a script on queue ``keys``: its own arguments by name (as its header
        lists them), then the repeated groups of ``each``."""
        script = self._scripts[script_name]
        if args.keys() != script.arg_set:
            raise TypeError(f"{script.name}.lua takes {script.args}, not {tuple(args)}")
        argv: list[Any] = [keys.tag, self.keep_result_ms, self.dead_letter_cap, self._sharded]
        argv += [args[arg] for arg in script.args]
        size = len(script.each)
        for group in each:
            if len(group) != size:
                raise TypeError(f"{script.name}.lua takes groups of {script.each}, not {group!r}")
            argv += group
        block = keys.block(script.keys)
        return ("EVALSHA", script.sha, len(block), *block, *argv)

    async def run(self, command: tuple[Any, ...]) -> Any:
        """Send a command built by ``command()``; load the script if Redis lost it."""
        conn = self.connection
        execute = conn.client.execute_command if conn.wire is None else conn.wire.call
        try:
            try:
                return await execute(*command)
            except NoScriptError:  # a restarted or new server: load it and try again
                await self._load(self._by_sha[command[1]])
                return await execute(*command)
        except Exception as exc:
            mapped = translate(exc, conn.where)
            if mapped is exc:
                raise
            raise mapped from exc

    async def _script(
        self,
        script_name: str,
        keys: QueueKeys,
        /,
        *,
        each: Iterable[Sequence[Any]] = (),
        **args: Any,
    ) -> Any:
        return await self.run(self.command(script_name, keys, each=each, **args))

    async def _load(self, script: Script) -> None:
        await self.connection.client.script_load(script.source)

    async def preload(self) -> None:
        """SCRIPT LOAD every script once, so that calls are a single EVALSHA each."""

        async def load_all() -> None:
            client = self.connection.client
            if self.connection.is_cluster:  # cluster pipelines refuse SCRIPT LOAD
                for script in self._scripts.values():
                    await client.script_load(script.source)
                return
            async with client.pipeline(transaction=False) as pipe:
                for script in self._scripts.values():
                    pipe.script_load(script.source)
                await pipe.execute()

        await self._guard(load_all())

    async def _guard(self, awaitable: Awaitable[T]) -> T:
        """Await a plain redis-py call with its faults mapped to asyncjobs errors."""
        try:
            return await awaitable
        except Exception as exc:
            mapped = translate(exc, self.connection.where)
            if mapped is exc:
                raise
            raise mapped from exc

    # -- jobs in ----------------------------------------------------------------------------

    async def enqueue(self, keys: QueueKeys, jobs: Sequence[NewJob]) -> list[Enqueued]:
        """Create the jobs in one script call (all of them, or none if Redis refuses)."""
        reply = await self.run(self.command("enqueue", keys, each=jobs))
        return [Enqueued(_text(reply[i]), bool(reply[i + 1])) for i in range(0, len(reply), 2)]

    async def start_workflow(
        self,
        keys: QueueKeys,
        workflow_id: str,
        kind: str,
        result_template: bytes,
        members: Sequence[WorkflowMember],
        trace: str = "",
        on_error: bytes = b"[]",
    ) -> bool:
        """Store a compiled workflow and enqueue its first members; False if the id exists.
        ``trace`` (a trace context, '' = none) is carried by every member; ``on_error`` lists
        the error callbacks (see workflow_start.lua)."""
        reply = await self._script(
            "workflow_start",
            keys,
            id=workflow_id,
            kind=kind,
            result_template=result_template,
            trace=trace,
            on_error=on_error,
            each=members,
        )
        return bool(reply)

    async def cron_tick(
        self,
        keys: QueueKeys,
        name: str,
        tick_ms: int,
        unique: bool,
        job: NewJob,
        revision: str = "",
    ) -> tuple[str, CronTickOutcome]:
        """Enqueue one tick of cron ``name`` once; ``revision`` ('' for a settings cron) is the
        run-time definition the worker fires: nothing is enqueued if it was removed since."""
        reply = await self._script(
            "cron_tick",
            keys,
            name=name,
            tick_ms=tick_ms,
            unique=int(unique),
            revision=revision,
            each=[job],
        )
        return _text(reply[0]), CronTickOutcome(int(reply[1]))

    async def add_cron(self, keys: QueueKeys, name: str, definition: bytes) -> CronChange:
        """Store (or replace) a run-time cron and tell the workers."""
        reply = await self._script("cron_add", keys, name=name, definition=definition)
        return CronChange(int(reply))

    async def remove_cron(self, keys: QueueKeys, name: str) -> CronChange:
        """Delete a run-time cron and its tick state, and tell the workers."""
        return CronChange(int(await self._script("cron_remove", keys, name=name)))

    async def declare_crons(
        self, keys: QueueKeys, hold_ms: int, crons: Sequence[tuple[str, bytes]]
    ) -> list[str]:
        """List a worker's settings crons in the crontab for ``hold_ms``; returns the names a
        run-time cron holds (those are not listed)."""
        reply = await self._script("cron_declare", keys, hold_ms=hold_ms, each=crons)
        return [_text(name) for name in reply]

    async def crontab(self, keys: QueueKeys) -> dict[str, bytes]:
        """The queue's crons, by name: their stored definitions (JSON)."""
        entries = await self._guard(self.connection.client.hgetall(keys.crontab))
        return {_text(name): value for name, value in entries.items()}

    async def cron_ticks(self, keys: QueueKeys) -> dict[str, int]:
        """The last tick handled (Unix ms) of each cron of the queue, by name."""
        entries = await self._guard(self.connection.client.hgetall(keys.cron))
        return {_text(name): int(state.split(b" ")[0]) for name, state in entries.items()}

    async def replay(self, keys: QueueKeys, entry: str, job_id: str) -> str | None:
        """Turn dead letter ``entry`` (of ``job_id``) back into a queued job; None if the entry
        is gone or its job is live again."""
        reply = await self._script("replay", keys, entry=entry, id=job_id)
        return _text(reply) if reply else None

    # -- claiming and finishing ---------------------------------------------------------------

    def claim_command(
        self, keys: QueueKeys, worker: str, slots: int, lease_ms: int, may_take_suspect: bool
    ) -> tuple[Any, ...]:
        return self.command(
            "claim",
            keys,
            worker=worker,
            slots=slots,
            lease_ms=lease_ms,
            may_take_suspect=int(may_take_suspect),
        )

    @staticmethod
    def parse_claim(reply: list[Any]) -> Claim:
        suspect = reply[3]
        claim = Claim(
            next_due_ms=int(reply[0]),
            now_ms=int(reply[1]),
            suspects_waiting=bool(reply[2]),
            suspect=_text(suspect) if suspect else None,
        )
        jobs = claim.jobs
        for i in range(4, len(reply), _CLAIMED_WIDTH):
            # id, task, payload, attempt, max_tries, timeout_ms, enqueued_ms, trace, checkpoint
            f = reply[i : i + _CLAIMED_WIDTH]
            jobs.append(
                ClaimedRecord(
                    _text(f[0]),
                    _text(f[1]),
                    f[2],
                    int(f[3]),
                    int(f[4]),
                    int(f[5]),
                    int(f[6]),
                    f[7],
                    f[8],
                )
            )
        return claim

    async def claim(
        self, keys: QueueKeys, worker: str, slots: int, lease_ms: int, may_take_suspect: bool
    ) -> Claim:
        """Lease up to ``slots`` ready jobs (promoting due deferred ones first)."""
        command = self.claim_command(keys, worker, slots, lease_ms, may_take_suspect)
        return self.parse_claim(await self.run(command))

    async def wait_then_claim(
        self, wake_keys: Sequence[str], timeout: float, claim: tuple[Any, ...] | None
    ) -> Claim | None:
        """Block until one of the wake keys is written (or ``timeout`` passes).

        With a Wire, ``claim`` (a ``claim_command``) is pipelined behind the blocking command
        and its reply returned: waking up and claiming cost one round trip. Otherwise returns
        None and the caller claims.
        """
        conn = self.connection
        try:
            if claim is not None and conn.wire is not None:
                if self._blocker is None:
                    self._blocker = conn.blocking_wire()
                try:
                    reply = await self._blocker.block_then(("BZPOPMIN", *wake_keys, timeout), claim)
                except NoScriptError:  # Redis restarted empty: the caller claims (loads it)
                    return None
                return self.parse_claim(reply)
            if conn.is_cluster and len({key_slot(k.encode()) for k in wake_keys}) > 1:
                await self._block_on_cluster(wake_keys, timeout)
            else:
                await conn.client.bzpopmin(list(wake_keys), timeout=timeout)
            return None
        except Exception as exc:
            mapped = translate(exc, conn.where)
            if mapped is exc:
                raise
            raise mapped from exc

    async def _block_on_cluster(self, wake_keys: Sequence[str], timeout: float) -> None:
        """Queues live in different slots: one blocking call per slot; the first to wake
        releases the others by writing a wake key of theirs (a BZPOPMIN over several slots is
        refused)."""
        client = self.connection.client
        by_slot: dict[int, list[str]] = {}
        for key in wake_keys:
            by_slot.setdefault(key_slot(key.encode()), []).append(key)
        groups = list(by_slot.values())
        waits = [asyncio.create_task(client.bzpopmin(keys, timeout=timeout)) for keys in groups]
        try:
            done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for keys, wait in zip(groups, waits, strict=True):
                if wait in pending:  # the last: a queue's, never a worker's own (listed first)
                    await client.zadd(keys[-1], {"w": 0})
            await asyncio.gather(*waits, return_exceptions=True)
            for wait in done:
                wait.result()  # re-raise a connection error for the caller's backoff
        finally:
            for wait in waits:
                wait.cancel()
            await asyncio.gather(*waits, return_exceptions=True)

    async def wake(self, keys: QueueKeys) -> None:
        """Write the queue's wake key: a blocked worker re-claims (and re-reads due times)."""
        await self._guard(self.connection.client.zadd(keys.wake, {"w": 0}))

    async def extend(
        self, keys: QueueKeys, lease_ms: int, held: Sequence[tuple[str, str]]
    ) -> list[tuple[str, bool]]:
        """Renew the leases of ``(job id, token)`` pairs; returns ``(job id, cancelled)`` for
        each lease lost, ``cancelled`` when the job was cancelled by request."""
        lost = await self._script("extend", keys, lease_ms=lease_ms, each=held)
        return [(_text(lost[i]), _text(lost[i + 1]) == "1") for i in range(0, len(lost), 2)]

    async def complete(self, keys: QueueKeys, acks: Sequence[tuple[str, str, bytes]]) -> list[bool]:
        """Store the results of ``(job id, token, result)``; False where the token was lost
        (True for a resent report that had landed already)."""
        reply = await self._script("complete", keys, each=acks)
        return [int(code) >= 0 for code in reply]

    async def fail(
        self,
        keys: QueueKeys,
        job_id: str,
        token: str,
        *,
        retry_delay_ms: int,
        max_tries: int,
        error_type: str,
        error_message: str,
        traceback: str,
    ) -> FailOutcome:
        """Record a failed try: retry it after ``retry_delay_ms`` (-1 = never) or dead-letter."""
        reply = await self._script(
            "fail",
            keys,
            id=job_id,
            token=token,
            retry_delay_ms=retry_delay_ms,
            max_tries=max_tries,
            error_type=error_type,
            error_message=error_message,
            traceback=traceback,
        )
        return FailOutcome(int(reply))

    async def requeue(self, keys: QueueKeys, job_id: str, token: str) -> bool:
        """Give a claimed job back without spending its try; False if its lease was lost."""
        return int(await self._script("requeue", keys, id=job_id, token=token)) > 0

    async def progress(
        self,
        keys: QueueKeys,
        job_id: str,
        token: str,
        value: float,
        stage: str | None,
        message: str | None,
    ) -> bool:
        reply = await self._script(
            "progress",
            keys,
            id=job_id,
            token=token,
            value=repr(value),
            stage=stage or "",
            message=message or "",
        )
        return int(reply) > 0

    async def checkpoint(self, keys: QueueKeys, job_id: str, token: str, value: bytes) -> bool:
        """Save a running try's checkpoint (JSON); False if the try no longer holds the lease."""
        return int(await self._script("checkpoint", keys, id=job_id, token=token, value=value)) > 0

    async def recover(
        self, keys: QueueKeys, *, limit: int, default_max_tries: int, max_stalls: int
    ) -> Recovery:
        """Put back (or dead-letter) the jobs whose lease ran out."""
        reply = await self._script(
            "recover",
            keys,
            limit=limit,
            default_max_tries=default_max_tries,
            max_stalls=max_stalls,
        )
        recovered, dead, next_in, *fields = reply
        dead_lettered = [
            DeadLettered(*(_text(v) for v in fields[i : i + 4])) for i in range(0, len(fields), 4)
        ]
        assert len(dead_lettered) == int(dead)
        return Recovery(int(recovered), dead_lettered, int(next_in))

    async def cancel(self, keys: QueueKeys, job_id: str) -> CancelOutcome:
        return CancelOutcome(int(await self._script("cancel", keys, id=job_id)))

    async def heartbeat(
        self,
        keys: QueueKeys,
        worker: str,
        ttl_ms: int,
        running: int = 0,
        about: str = "{}",
        limits: Sequence[tuple[str, int, int, int]] = (),
    ) -> int:
        """Mark ``worker`` alive on the queue for ``ttl_ms`` (0 = it leaves), running
        ``running`` jobs, described by ``about`` (JSON), and declare its tasks' limits for as
        long: ``(task, concurrency, interval_ms, max_tries)``, 0 = none. Returns how many
        workers are alive."""
        reply = await self._script(
            "heartbeat",
            keys,
            worker=worker,
            ttl_ms=ttl_ms,
            running=running,
            about=about,
            each=limits,
        )
        return int(reply)

    async def leave(self, keys: QueueKeys, worker: str, how: str) -> None:
        """Mark ``worker`` as leaving the queue (``how``: 'wake' also ends its blocked wait,
        'mark' only marks it), or 'clear' the mark for a worker of that name that starts
        again; a claim of a leaving worker takes nothing (leave.lua)."""
        await self._script("leave", keys, worker=worker, how=how)

    # -- reading ---------------------------------------------------------------------------

    async def now_ms(self) -> int:
        """Now on Redis's clock (the one every script and heartbeat uses), in ms."""
        seconds, micros = await self._guard(self.connection.client.time())
        return int(seconds) * 1000 + int(micros) // 1000

    async def job_fields(self, keys: QueueKeys, job_id: str) -> dict[bytes, bytes]:
        return await self._guard(self.connection.client.hgetall(keys.job(job_id)))

    async def job_values(self, keys: QueueKeys, job_id: str, fields: Sequence[str]) -> list[Any]:
        return await self._guard(self.connection.client.hmget(keys.job(job_id), fields))

    async def counts(
        self, keys: QueueKeys, *, minutes: int = 0, hours: bool = False, groups: int = 100
    ) -> QueueCounts:
        """One queue's sizes, pause state, live workers and counters, with the last ``minutes``
        minute buckets and (``hours``) the hourly history: one snapshot, one round trip."""
        reply = await self._script("stats", keys, minutes=minutes, hours=int(hours), groups=groups)
        return counts_from_reply(reply)

    async def partitions(self, keys: QueueKeys) -> Partitions:
        """How queue ``keys`` (its partition 0) is partitioned; one read for a queue that is
        not (no key: one partition), a second for the limited tasks of one that is."""
        client = self.connection.client
        count, span = await self._guard(client.hmget(keys.partitions, ("count", "span")))
        if not span or int(span) <= 1:
            return Partitions(int(count or 1), 1)
        fields = await self._guard(client.hkeys(keys.limits))
        limited = frozenset(
            task
            for task, _, field in (_text(f).rpartition(":") for f in fields)
            if field in ("concurrency", "interval_ms") and task
        )
        return Partitions(int(count or 1), int(span), limited)

    async def node_of(self, keys: QueueKeys) -> str | None:
        """The cluster master (host:port) that holds queue ``keys``, from the slot map the
        connection keeps (after its first command); None off a cluster."""
        if not self.connection.is_cluster:
            return None
        from redis.crc import key_slot  # the slot, computed here: no command sent

        nodes = self.connection.client.nodes_manager
        return str(nodes.get_node_from_slot(key_slot(keys.ready.encode())).name)

    async def set_partitions(self, keys: QueueKeys, count: int) -> Partitions:
        """Route new jobs of queue ``keys`` to ``count`` partitions (workers keep serving the
        most it ever had, so nothing is stranded)."""
        new_count, span = await self._script("partitions", keys, count=count)
        return Partitions(int(new_count), int(span))

    async def register_queues(self, prefix: str, names: Sequence[str]) -> None:
        """Record queue names, so that `asyncjobs info` and `asyncjobs job` find them."""
        await self._guard(self.connection.client.sadd(queues_registry_key(prefix), *names))

    async def queue_names(self, prefix: str) -> list[str]:
        names = await self._guard(self.connection.client.smembers(queues_registry_key(prefix)))
        return sorted(_text(n) for n in names)

    async def last_cron_tick(self, keys: QueueKeys, name: str) -> int | None:
        """The last tick (Unix ms) handled for cron job ``name``, if any."""
        state = await self._guard(self.connection.client.hget(keys.cron, name))
        return int(state.split(b" ")[0]) if state else None

    async def dead_letters(
        self, keys: QueueKeys, limit: int, before: str = "+"
    ) -> list[tuple[str, dict[bytes, bytes]]]:
        """Up to ``limit`` dead letters, newest first, from stream entry ``before`` down."""
        entries = await self._guard(
            self.connection.client.xrevrange(keys.dead_letters, max=before, count=limit)
        )
        return [(_text(entry), fields) for entry, fields in entries]

    async def find_dead_letter(self, keys: QueueKeys, job_id: str) -> str | None:
        """The stream entry of ``job_id``'s dead letter (see ``dead_letter_of``)."""
        found = await self.dead_letter_of(keys, job_id)
        return None if found is None else found[0]

    async def dead_letter_of(
        self, keys: QueueKeys, job_id: str
    ) -> tuple[str, dict[bytes, bytes]] | None:
        """``job_id``'s dead letter (entry, fields): from the index, or (when the index does not
        cover every entry: some were written by an older release) searching the stream."""
        client = self.connection.client

        async def look_up() -> list[Any]:
            async with client.pipeline(transaction=False) as pipe:
                pipe.hget(keys.dead_letter_index, job_id)
                pipe.xlen(keys.dead_letters)
                pipe.hlen(keys.dead_letter_index)
                return await pipe.execute()  # type: ignore[no-any-return]

        entry, total, indexed = await self._guard(look_up())
        if entry is not None:
            found = await self._guard(client.xrange(keys.dead_letters, entry, entry))
            if found and found[0][1].get(b"id") == job_id.encode():
                return _text(entry), found[0][1]
        if entry is None and int(total) == int(indexed):
            return None  # the index covers every entry: there is none
        return await self._scan_dead_letters(keys, job_id)

    async def _scan_dead_letters(
        self, keys: QueueKeys, job_id: str
    ) -> tuple[str, dict[bytes, bytes]] | None:
        target = job_id.encode()
        before = "+"
        while True:
            entries = await self.dead_letters(keys, 500, before)
            for entry, fields in entries:
                if fields.get(b"id") == target:
                    return entry, fields
            if len(entries) < 500:
                return None
            before = "(" + entries[-1][0]

    async def purge_dead_letters(self, keys: QueueKeys) -> int:
        """Delete every dead letter of the queue (and their index); how many there were."""
        return int(await self._script("purge_dead_letters", keys))

    async def maxmemory_policies(self) -> list[str]:
        """Each server's maxmemory-policy ([] where CONFIG is disabled, as on managed Redis)."""
        try:
            reply = await self.connection.client.config_get("maxmemory-policy")
        except Exception:
            return []
        configs = [reply] if _is_config(reply) else list(reply.values())  # a cluster: per node
        policies = []
        for config in configs:
            policy = config.get(b"maxmemory-policy", config.get("maxmemory-policy", b""))
            policies.append(_text(policy))
        return policies


def _is_config(reply: Any) -> bool:
    return any(k in (b"maxmemory-policy", "maxmemory-policy") for k in reply)
