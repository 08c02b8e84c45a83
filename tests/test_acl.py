"""The ACL rules `asyncjobs acl` prints name every command the store can send."""

from __future__ import annotations

import re
from pathlib import Path

from asyncjobs._store.acl import CLIENT_COMMANDS, commands, script_commands

STORE = Path(__file__).resolve().parent.parent / "asyncjobs" / "_store"
#: redis-py methods that send no command of their own (or none an ACL governs).
NOT_COMMANDS = {"aclose", "execute", "get_default_node", "pipeline", "pubsub"}
#: redis-py method → ACL command, where the two are spelt differently.
SPELLED = {"script_load": "script|load", "config_get": "config|get"}


def test_every_redis_call_of_the_store_is_in_the_rules() -> None:
    called = set()
    for path in STORE.glob("*.py"):
        called |= set(re.findall(r"(?:client|pipe)\.([a-z_]+)\(", path.read_text()))
    needed = {SPELLED.get(name, name) for name in called - NOT_COMMANDS}
    assert needed <= set(CLIENT_COMMANDS), needed - set(CLIENT_COMMANDS)


def test_every_command_a_script_calls_is_in_the_rules() -> None:
    assert {"evalsha", "zpopmin", "xadd", "publish", "spublish", "ssubscribe"} <= set(commands())
    assert script_commands() <= set(commands())


def test_a_denied_key_inside_a_script_is_a_configuration_error_on_every_server() -> None:
    """Redis 7.0, Redis 8 and Valkey word a key the ACL denies inside a script differently; each
    must reach the user as the ACL hint, not as a bare command error."""
    from redis.exceptions import ResponseError

    from asyncjobs import ConfigurationError
    from asyncjobs._store.errors import translate

    for reply in (
        "NOPERM this user has no permissions to access one of the keys used as arguments",
        "ERR Error running script: The user executing the script can't access at least one of "
        "the keys mentioned in the command script: abc",
        "ACL failure in script: No permissions to access a key script: abc, on @user_script:45.",
    ):
        error = translate(ResponseError(reply), "redis://producer:***@127.0.0.1:6379/0")
        assert isinstance(error, ConfigurationError), reply
        assert "docs/security.md" in str(error)
