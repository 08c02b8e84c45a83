"""Key layout: one hash tag per queue (one Cluster slot), documented in docs/internals.md."""

from __future__ import annotations

from pathlib import Path

import pytest
from redis.crc import key_slot

from asyncjobs._store import QueueKeys, queues_registry_key


def _all_keys(k: QueueKeys) -> list[str]:
    names = [n for n in dir(QueueKeys) if isinstance(getattr(QueueKeys, n), property)]
    return [getattr(k, n) for n in names] + [k.job("some-id"), k.idempotency_prefix + "key"]


@pytest.mark.parametrize("name", ["default", "emails.high", "q-1"])
def test_every_key_of_a_queue_is_in_one_slot(name: str) -> None:
    keys = _all_keys(QueueKeys(name))
    assert len({key_slot(k.encode()) for k in keys}) == 1
    assert all(k.startswith(f"{{asyncjobs:{name}}}") for k in keys)


def test_queues_spread_over_slots() -> None:
    slots = {key_slot(QueueKeys(f"q{i}").ready.encode()) for i in range(20)}
    assert len(slots) > 10


def test_bad_queue_names_are_refused() -> None:
    for bad in ["", "a{b", "has space"]:
        with pytest.raises(ValueError):
            QueueKeys(bad)


def test_internals_doc_lists_every_key() -> None:
    doc = (Path(__file__).parent.parent / "docs" / "internals.md").read_text()
    k = QueueKeys("q")
    for key in _all_keys(k):
        suffix = key.removeprefix(k.tag)
        suffix = (
            suffix.split("some-id")[0].removesuffix("key") if suffix.startswith(":") else suffix
        )
        assert suffix in doc, f"{suffix} missing from docs/internals.md"
    assert queues_registry_key() in doc
