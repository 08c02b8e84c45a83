-- requeue: give a claimed job back without spending a try (graceful shutdown ran out of time).
-- KEYS[1] leases   KEYS[2] ready   KEYS[3] wake   KEYS[4] seq
-- ARGV[1] job prefix   ARGV[2] id   ARGV[3] token   ARGV[4] events channel
-- ARGV[5] concurrency-group prefix
-- Returns: 1 requeued, -1 refused: lease token lost.
local job_prefix, id, token = ARGV[1], ARGV[2], ARGV[3]
local job_key = job_prefix .. id
if rcall('HGET', job_key, 'token') ~= token then return -1 end
rcall('ZREM', KEYS[1], id)
release_slot(job_key, id, job_prefix, ARGV[5], KEYS[2], KEYS[3])
rcall('HDEL', job_key, 'token', 'suspect')
rcall('HINCRBY', job_key, 'attempts', -1)
rcall('HSET', job_key, 'status', 'queued')
push_ready(KEYS[2], KEYS[4], job_key, id)
rcall('ZADD', KEYS[3], 0, 'w')
publish(ARGV[4], id, 'queued')
return 1
