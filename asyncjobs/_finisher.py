"""Reports job outcomes to Redis: acks batched into one script call, failures one by one.

Every report carries the job's lease token; a refused report (-1) means the job was
reclaimed or cancelled meanwhile, so its outcome is dropped, never doubled. A report that
cannot reach Redis is retried with backoff until it lands; if the worker dies first, the lease
runs out and the job runs again (at-least-once).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ._compat import cancel_and_wait
from ._keys import QueueKeys
from ._scripts import run_script

log = logging.getLogger("asyncjobs.worker")

CONNECTION_ERRORS = (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError)


@dataclass
class _Ack:
    keys: QueueKeys
    job_id: str
    token: str
    result: bytes
    done: asyncio.Future[int] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class Finisher:
    """Batches acks: whatever finished while the previous batch was in flight goes next."""

    def __init__(self, client: Any, keep_result_ms: int, dead_letter_maxlen: int) -> None:
        self.client = client
        self.keep_result_ms = keep_result_ms
        self.dead_letter_maxlen = dead_letter_maxlen
        self._pending: list[_Ack] = []
        self._outstanding: set[asyncio.Future[int]] = set()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._unreachable = False  # reports are failing: say so once, not once per retry

    def start(self) -> None:
        self._task = asyncio.create_task(self._flush_forever(), name="asyncjobs-acks")

    async def stop(self, grace: float | None = None) -> None:
        """Flush what is pending (giving up after ``grace`` seconds, if given), then stop."""
        if self._task is None:
            return
        loop = asyncio.get_running_loop()
        deadline = None if grace is None else loop.time() + grace
        while self._outstanding:
            left = None if deadline is None else deadline - loop.time()
            if left is not None and left <= 0:
                break  # unreported jobs come back when their leases run out
            self._wakeup.set()
            await asyncio.wait(set(self._outstanding), timeout=left)
        await cancel_and_wait(self._task)
        self._task = None

    async def succeed(self, keys: QueueKeys, job_id: str, token: str, result: bytes) -> bool:
        """Store the result; False if the lease was lost (the outcome was refused)."""
        ack = _Ack(keys, job_id, token, result)
        self._pending.append(ack)
        self._outstanding.add(ack.done)
        ack.done.add_done_callback(self._outstanding.discard)
        self._wakeup.set()
        return await asyncio.shield(ack.done) > 0

    async def _flush_forever(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            batch, self._pending = self._pending, []
            by_queue: dict[QueueKeys, list[_Ack]] = {}
            for ack in batch:
                by_queue.setdefault(ack.keys, []).append(ack)
            for keys, acks in by_queue.items():
                argv: list[Any] = [
                    keys.job_prefix,
                    self.keep_result_ms,
                    keys.events,
                    keys.group_prefix,
                ]
                for ack in acks:
                    argv += (ack.job_id, ack.token, ack.result)
                reply = await self._call(
                    "complete", [keys.leases, keys.stats, keys.ready, keys.wake, keys.seq], argv
                )
                for ack, code in zip(acks, reply, strict=False):
                    if not ack.done.done():
                        ack.done.set_result(int(code))

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
    ) -> int:
        """1 = retry scheduled, 2 = dead-lettered, -1 = refused (lease lost)."""
        return int(
            await self._call(
                "fail",
                [
                    keys.leases,
                    keys.deferred,
                    keys.ready,
                    keys.wake,
                    keys.seq,
                    keys.dead_letters,
                    keys.stats,
                ],
                [
                    keys.job_prefix,
                    job_id,
                    token,
                    retry_delay_ms,
                    max_tries,
                    error_type,
                    error_message,
                    traceback,
                    self.keep_result_ms,
                    self.dead_letter_maxlen,
                    keys.events,
                    keys.group_prefix,
                    keys.cancel,
                ],
            )
        )

    async def requeue(self, keys: QueueKeys, job_id: str, token: str) -> int:
        return int(
            await self._call(
                "requeue",
                [keys.leases, keys.ready, keys.wake, keys.seq],
                [keys.job_prefix, job_id, token, keys.events, keys.group_prefix],
            )
        )

    async def _call(self, script: str, keys: list[str], argv: list[Any]) -> Any:
        delay = 0.05
        while True:
            try:
                reply = await run_script(self.client, script, keys, argv)
            except CONNECTION_ERRORS as exc:
                if not self._unreachable:
                    self._unreachable = True
                    log.warning("could not report job outcomes to Redis (%s); retrying", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            else:
                if self._unreachable:
                    self._unreachable = False
                    log.info("reporting job outcomes to Redis again")
                return reply
