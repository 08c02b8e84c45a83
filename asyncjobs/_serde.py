"""JSON payloads (orjson): task arguments in, results out; data only, never pickle."""

from __future__ import annotations

import dataclasses
import math
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
    if value is None:  # most tasks return nothing: no need to look for a hidden NaN
        return b"null"
    try:
        data = orjson.dumps(value, default=_default, option=_OPTIONS)
    except TypeError as exc:
        raise SerializationError(
            f"cannot store the {what} as JSON: {exc}. Pass plain data (str, int, float, bool, "
            "None, list, dict, datetime, UUID, dataclass) or a pydantic model."
        ) from exc
    # orjson writes NaN and infinity as null: refuse them rather than change the value. Only
    # an output with a null in it can hide one, so the common case costs one substring search.
    if b"null" in data and _has_non_finite(value):
        raise SerializationError(
            f"cannot store the {what} as JSON: it holds NaN or infinity, which JSON has no "
            "number for. Replace them (with None, or a string) before you pass them."
        )
    return data


def _has_non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_has_non_finite(v) for v in value.values())
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(_has_non_finite(v) for v in value)
    if isinstance(value, BaseModel):
        return _has_non_finite(value.model_dump())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _has_non_finite(
            vars(value)
            if hasattr(value, "__dict__")
            else {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        )
    return False


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
