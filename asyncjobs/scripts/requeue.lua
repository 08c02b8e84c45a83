-- requeue: give a claimed job back without spending a try (graceful shutdown ran out of time).
-- ARGV[5] id   ARGV[6] token
-- Returns: 1 requeued, -1 refused: lease token lost.
workers_only()
local id, token = ARGV[5], ARGV[6]
local job_key = P.job .. id
if rcall('HGET', job_key, 'token') ~= token then return -1 end
rcall('ZREM', K.leases, id)
release_slot(job_key, id)
rcall('HDEL', job_key, 'token', 'suspect', 'recovered')
rcall('HINCRBY', job_key, 'attempts', -1)
rcall('HSET', job_key, 'status', 'queued')
push_ready(job_key, id)
wake()
publish(id, 'queued')
return 1
