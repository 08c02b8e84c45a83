"""arq's constants, with arq's values (importable as before; asyncjobs keys its own records).

Only ``default_queue_name``, ``expires_extra_ms`` and ``health_check_key_suffix`` mean something
here; the key prefixes name arq's keys, which asyncjobs never writes.
"""

default_queue_name = "arq:queue"
job_key_prefix = "arq:job:"
in_progress_key_prefix = "arq:in-progress:"
result_key_prefix = "arq:result:"
retry_key_prefix = "arq:retry:"
abort_jobs_ss = "arq:abort"
abort_job_max_age = 60
health_check_key_suffix = ":health-check"
keep_cronjob_progress = 60
#: Environment variables ``ms_to_datetime`` reads the timezone from, first found wins.
timezone_env_vars = "ARQ_TIMEZONE", "arq_timezone", "TIMEZONE", "timezone"
#: How long after its due time a job not yet started expires (1 day, in ms), as in arq.
expires_extra_ms = 86_400_000
