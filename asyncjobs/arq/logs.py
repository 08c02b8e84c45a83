"""arq's default logging setup, extended to asyncjobs's own loggers."""

from __future__ import annotations

from typing import Any


def default_log_config(verbose: bool) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` dict: DEBUG if ``verbose``, else INFO."""
    level = "DEBUG" if verbose else "INFO"
    handler = {"level": level, "class": "logging.StreamHandler", "formatter": "arq.standard"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"arq.standard": handler},
        "formatters": {
            "arq.standard": {"format": "%(asctime)s: %(message)s", "datefmt": "%H:%M:%S"}
        },
        "loggers": {
            name: {"handlers": ["arq.standard"], "level": level} for name in ("arq", "asyncjobs")
        },
    }
