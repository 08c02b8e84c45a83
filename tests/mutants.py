"""Run by hand: make each change a test must catch, run that test, put the code back.

    python tests/mutants.py ["name of a change" ...]

With names, only those changes are made. Each line prints CAUGHT (the test failed, as it
should) or MISSED. Not collected by pytest.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent
PROMISES = "tests/test_promises.py"
ENQUEUE = "async def enqueue(self, task: Task[Any, R], /, *args: Any, **kwargs: Any) -> Job"

#: (what the change does, file, text to replace, replacement, the test that must fail)
MUTANTS = [
    (
        "no jitter",
        "asyncjobs/_backoff.py",
        "return random.uniform(0.0, ceiling)",
        "return ceiling",
        f"{PROMISES}::test_the_default_backoff_is_jittered",
    ),
    (
        "zero backoff",
        "asyncjobs/_backoff.py",
        "BACKOFF_BASE_SECONDS = 1.0",
        "BACKOFF_BASE_SECONDS = 0.0",
        f"{PROMISES} -k backoff",
    ),
    (
        "polling result",
        "asyncjobs/_job.py",
        "await asyncio.wait_for(changed.wait(), remaining)",
        "await asyncio.sleep(0.05)",
        f"{PROMISES}::test_waiting_for_a_result_does_not_poll_redis",
    ),
    (
        "eta is now",
        "asyncjobs/_models.py",
        "return now + timedelta(seconds=max(0.0, elapsed * (1 - progress) / progress))",
        "return now",
        f"{PROMISES}::test_the_eta_follows_the_pace_so_far",
    ),
    (
        "sigterm cancels",
        "asyncjobs/_worker.py",
        "        self.stop()\n\n    async def _drain",
        "        self.running.cancel('shutdown')\n        self.stop()\n\n    async def _drain",
        f"{PROMISES}::test_a_first_sigterm_lets_running_jobs_finish",
    ),
    (
        "untyped enqueue",
        "asyncjobs/_queue.py",
        ENQUEUE + "[R]: ...",
        ENQUEUE + "[Any]: ...",
        f"{PROMISES}::test_the_typed_api_keeps_its_types",
    ),
    (
        "cancels ignored",
        "asyncjobs/_cancels.py",
        'if self.running.cancel("cancelled", job_id):',
        "if False:",
        f"{PROMISES}::test_a_cancel_request_stops_a_running_job_at_once",
    ),
    (
        "no log fields",
        "asyncjobs/_runner.py",
        '_extra(job, "succeeded", took))',
        "{})",
        f"{PROMISES}::test_job_log_lines_carry_their_fields",
    ),
    (
        "leftovers hang",
        "asyncjobs/cli.py",
        "        stuck = await end_leftover_tasks(LEFTOVER_WAIT)",
        "        stuck: list[str] = []",
        f"{PROMISES}::test_a_worker_exits_even_when_a_job_left_a_stubborn_task_behind",
    ),
    (
        "shared ctx",
        "asyncjobs/_runner.py",
        "state=self.state.copy(),",
        "state=self.state,",
        f"{PROMISES}::test_each_job_keeps_its_own_ctx_writes",
    ),
    (
        "ack ignores token",
        "asyncjobs/scripts/complete.lua",
        "  if f[1] == token then",
        "  if true then",
        "tests/test_scripts.py::test_fencing_refuses_an_old_token",
    ),
    (
        "no idempotency",
        "asyncjobs/scripts/_prelude.lua",
        "rcall('SET', P.idem .. idem_key, id, 'PX', idem_ttl)",
        "",
        "tests/test_queue.py::test_idempotency_key_returns_existing_job",
    ),
    (
        "paused claims",
        "asyncjobs/scripts/claim.lua",
        "if paused then n = 0 end",
        "",
        "tests/test_scripts.py::test_a_paused_queue_claims_nothing_and_is_woken_only_by_resume",
    ),
    (
        "endless retries",
        "asyncjobs/scripts/fail.lua",
        "attempts < max_tries",
        "true",
        "tests/test_scripts.py::test_fail_retries_then_dead_letters",
    ),
    (
        "no lease",
        "asyncjobs/scripts/claim.lua",
        "zadd_pairs(K.leases, leased)",
        "",
        "tests/test_scripts.py::test_fencing_refuses_an_old_token",
    ),
    (
        "no recovery",
        "asyncjobs/scripts/recover.lua",
        "  if f[4] == 'in_progress' then",
        "  if false then",
        "tests/test_scripts.py::test_fencing_refuses_an_old_token",
    ),
    (
        "enqueue wakes no one",
        "asyncjobs/scripts/_prelude.lua",
        "  if rcall('EXISTS', K.paused) == 0 then rcall('ZADD', K.wake, 0, 'w') end",
        "",
        "tests/test_worker.py",
    ),
]


def main() -> int:
    missed = 0
    wanted = set(sys.argv[1:])
    for name, rel, old, new, test in MUTANTS:
        if wanted and name not in wanted:
            continue
        path = ROOT / rel
        source = path.read_text()
        if old not in source:
            print(f"{name:20} STALE   {rel} no longer holds {old!r}")
            missed += 1
            continue
        path.write_text(source.replace(old, new, 1))
        try:
            command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x"]
            run = subprocess.run(
                command + test.split(), capture_output=True, text=True, timeout=600, cwd=ROOT
            )
        finally:
            path.write_text(source)
        lines = run.stdout.strip().splitlines()
        print(f"{name:20} {'CAUGHT' if run.returncode else 'MISSED'}  {lines[-1] if lines else ''}")
        missed += run.returncode == 0
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
