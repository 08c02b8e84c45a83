"""The names in shared/API.md stay importable from the package."""

from __future__ import annotations

import asyncjobs

API_NAMES = {
    "Queue", "Job", "JobStatus", "JobInfo", "JobFailed", "JobTimeout",
    "task", "Task", "Context", "Retry",
    "Worker", "WorkerSettings", "cron",
}  # fmt: skip


def test_api_names_are_exported() -> None:
    assert set(asyncjobs.__all__) >= API_NAMES
    for name in asyncjobs.__all__:
        assert getattr(asyncjobs, name) is not None


def test_all_is_sorted() -> None:
    assert asyncjobs.__all__ == sorted(asyncjobs.__all__)


def test_job_status_values_are_lower_case_names() -> None:
    for status in asyncjobs.JobStatus:
        assert status.value == status.name.lower()


def test_job_timeout_is_a_timeout_error() -> None:
    assert issubclass(asyncjobs.JobTimeout, TimeoutError)
