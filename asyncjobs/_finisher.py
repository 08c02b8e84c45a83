"""Reports job outcomes to Redis: acks batched into one script call, failures one by one.

Every report carries the job's lease token; a refused report means the job was reclaimed or
cancelled meanwhile, so its outcome is dropped, never doubled. A report that cannot reach Redis
is retried with backoff until it lands; if the worker dies first, the lease runs out and the job
runs again (at-least-once).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from ._compat import timeout
from ._store import FailOutcome, QueueKeys, Store, UnknownTaskOutcome
from ._supervise import Supervisor
from ._tracing import suppressed


@dataclass(slots=True, eq=False)
class _Ack:
    """One success to report; ``done`` is what its try awaits (cancelling that try leaves the
    report pending: it is still sent)."""

    keys: QueueKeys
    job_id: str
    token: str
    result: bytes
    done: asyncio.Future[bool]


class Finisher:
    """Batches acks: whatever finished while the previous batch was in flight goes next."""

    PART = "job reports"

    def __init__(self, store: Store, supervisor: Supervisor) -> None:
        self.store = store
        self.supervisor = supervisor
        self._pending: list[_Ack] = []
        self._unsent = 0  # acks handed in and not yet stored (or refused) by Redis
        self._all_sent = asyncio.Event()
        self._all_sent.set()
        self._wakeup = asyncio.Event()

    async def succeed(self, keys: QueueKeys, job_id: str, token: str, result: bytes) -> bool:
        """Store the result; False if the lease was lost (the outcome was refused)."""
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append(_Ack(keys, job_id, token, result, done))
        self._unsent += 1
        self._all_sent.clear()
        self._wakeup.set()
        return await done

    async def flush(self) -> None:
        """One step of the ack loop: wait for acks, send them (one call per queue). A batch
        that fails stays pending, in order, for the next step."""
        while not self._pending:
            self._wakeup.clear()
            await self._wakeup.wait()
        batch, self._pending = self._pending, []
        by_queue: dict[QueueKeys, list[_Ack]] = {}
        for ack in batch:
            by_queue.setdefault(ack.keys, []).append(ack)
        stored_queues: set[QueueKeys] = set()
        try:
            for keys, acks in by_queue.items():
                stored = await self.store.complete(
                    keys, [(a.job_id, a.token, a.result) for a in acks]
                )
                for ack, ok in zip(acks, stored, strict=True):
                    if not ack.done.done():
                        ack.done.set_result(ok)
                stored_queues.add(keys)
                self._unsent -= len(acks)
        finally:
            if len(stored_queues) < len(by_queue):
                self._pending[:0] = [ack for ack in batch if ack.keys not in stored_queues]
            if not self._unsent:
                self._all_sent.set()

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
        """Record a failed try (retried until Redis takes it). Called from the try's own task,
        so instrumentation is suppressed here as in the worker's loops."""
        with suppressed():
            return await self.supervisor.retry(
                self.PART,
                lambda: self.store.fail(
                    keys,
                    job_id,
                    token,
                    retry_delay_ms=retry_delay_ms,
                    max_tries=max_tries,
                    error_type=error_type,
                    error_message=error_message,
                    traceback=traceback,
                ),
            )

    async def give_back_unknown(
        self,
        keys: QueueKeys,
        job_id: str,
        token: str,
        *,
        grace_ms: int,
        worker: str,
        error_message: str,
        waiting_message: str,
    ) -> tuple[UnknownTaskOutcome, int]:
        """Leave a job whose task this worker does not know to one that does (retried)."""
        return await self.supervisor.retry(
            self.PART,
            lambda: self.store.give_back_unknown(
                keys,
                job_id,
                token,
                grace_ms=grace_ms,
                worker=worker,
                error_message=error_message,
                waiting_message=waiting_message,
            ),
        )

    async def requeue(self, keys: QueueKeys, job_id: str, token: str) -> bool:
        with suppressed():
            return await self.supervisor.retry(
                self.PART, lambda: self.store.requeue(keys, job_id, token)
            )

    async def drain(self, grace: float | None = None) -> None:
        """Wait until every ack handed in so far has landed (at most ``grace`` seconds)."""
        if not self._unsent:
            return
        self._wakeup.set()
        with contextlib.suppress(asyncio.TimeoutError):  # not wait_for: see _compat
            async with timeout(grace):  # unreported jobs come back when their leases run out
                await self._all_sent.wait()
