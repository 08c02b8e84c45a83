"""Redis faults mapped into asyncjobs' own errors, at this one seam.

Whatever redis-py, the Wire or the socket raise reaches users as an ``AsyncJobsError``:
``RedisUnavailable`` (also a ``ConnectionError``) for faults that pass (refused, reset, timed
out, loading, read-only replica, out of memory, busy with another client's script, a password
that stopped working), ``ConfigurationError`` for an ACL that forbids a command, and
``RedisCommandError`` for a reply that says our own command was wrong.
"""

from __future__ import annotations

from redis import exceptions as rx

from .._errors import AsyncJobsError, ConfigurationError, RedisCommandError, RedisUnavailable

#: Error-reply prefixes that mean "not now": the same command may succeed later.
_PASSING_REPLIES = ("OOM", "BUSY", "LOADING", "READONLY", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN")
_PASSING: tuple[type[BaseException], ...] = (
    getattr(rx, "OutOfMemoryError", rx.ConnectionError),  # redis-py >= 5.0.? names OOM
    rx.ConnectionError,
    rx.TimeoutError,
    rx.BusyLoadingError,
    rx.ReadOnlyError,
    rx.ClusterDownError,
    rx.TryAgainError,
    rx.MasterDownError,
    OSError,
)

_HINTS = {
    "OOM": "Redis is out of memory (maxmemory reached): free memory or raise maxmemory",
    "BUSY": "Redis is busy running another client's script",
    "LOADING": "Redis is loading its data set after a restart",
    "READONLY": "this Redis is a read-only replica (a failover may be under way)",
}
_AUTH_HINT = "Redis refused this client's credentials: check the username and password in the URL"


def translate(exc: BaseException, where: str) -> BaseException:
    """The asyncjobs error to raise for ``exc`` (``exc`` itself if it is not a Redis fault).

    ``where`` names the server (a redacted URL) for the message.
    """
    if isinstance(exc, AsyncJobsError):
        return exc
    text = (str(exc) or type(exc).__name__).strip().rstrip(".")
    word = text.split(" ", 1)[0].upper()
    # NOPERM outside a script; inside one, Redis says the user "can't access" a key or command
    # ("No permissions to access a key" on Redis 8 and Valkey 9)
    lowered = text.lower()
    denied = "can't access at least one of the" in lowered or "no permissions to" in lowered
    if isinstance(exc, rx.NoPermissionError) or word == "NOPERM" or denied:
        return ConfigurationError(
            f"Redis at {where} refused a command: {text}. Give this user the ACL that "
            "docs/security.md lists for workers and producers"
        )
    # A reconnect without the password a server now wants: some commands get NOAUTH, a long
    # one "Protocol error: unauthenticated multibulk length".
    unauthenticated = isinstance(exc, rx.AuthenticationError) or "unauthenticated" in text
    if isinstance(exc, _PASSING) or word in _PASSING_REPLIES or unauthenticated:
        oom = type(exc).__name__ == "OutOfMemoryError"
        hint = _AUTH_HINT if unauthenticated else _HINTS.get("OOM" if oom else word, "")
        reason = f"{hint} ({text})" if hint else text
        return RedisUnavailable(f"Redis at {where} is unavailable: {reason}")
    if isinstance(exc, rx.RedisError):
        return RedisCommandError(f"Redis at {where} refused a command: {text}")
    return exc


def is_outage(exc: BaseException) -> bool:
    """True for a fault that passes by itself (retry later), false for a bug or a bad setting."""
    return isinstance(translate(exc, ""), RedisUnavailable)
