"""A web dashboard to mount into your app: every queue, their jobs, dead letters, workers and
cron jobs, with pause, replay and cancel (see docs/dashboard.md).

Needs the ``dashboard`` extra: ``pip install 'asyncjobs-redis[dashboard]'``.
"""

try:
    import jinja2  # noqa: F401
    import starlette  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised by a test that hides them
    raise ImportError(
        f"asyncjobs.dashboard needs Starlette and Jinja2 ({exc}); "
        "install them with: pip install 'asyncjobs-redis[dashboard]'"
    ) from exc

from ._app import create_dashboard

__all__ = ["create_dashboard"]
