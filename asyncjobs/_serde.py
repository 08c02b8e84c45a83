"""JSON payloads (orjson): task arguments in, results out; data only, never pickle."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel

from ._errors import SerializationError

_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def _default(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__qualname__} is not JSON-serializable")


def dumps(value: Any, what: str) -> bytes:
    """Encode ``value`` as JSON bytes; ``what`` names it in the error (e.g. "arguments of add")."""
    try:
        return orjson.dumps(value, default=_default, option=_OPTIONS)
    except TypeError as exc:
        raise SerializationError(
            f"cannot store the {what} as JSON: {exc}. Pass plain data (str, int, float, bool, "
            "None, list, dict, datetime, UUID, dataclass) or a pydantic model."
        ) from exc


def encode_payload(args: tuple[Any, ...], kwargs: dict[str, Any], task_name: str) -> bytes:
    return dumps([list(args), kwargs], f"arguments of {task_name!r}")


def decode_payload(raw: bytes | str) -> tuple[list[Any], dict[str, Any]]:
    """Decode a stored payload; raise ValueError with the reason if it is not ours."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"payload is not valid JSON: {exc}") from exc
    if (
        not isinstance(data, list)
        or len(data) != 2
        or not isinstance(data[0], list)
        or not isinstance(data[1], dict)
    ):
        raise ValueError("payload must be a JSON array [args, kwargs]")
    return data[0], data[1]


def loads(raw: bytes | str | None) -> Any:
    return None if raw is None or raw == b"" else orjson.loads(raw)
