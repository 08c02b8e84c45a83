-- replay: turn one dead letter back into a queued job with the same id and fresh tries.
-- KEYS[1] dead-letter stream   KEYS[2] ready   KEYS[3] wake   KEYS[4] seq   KEYS[5] stats
-- ARGV[1] job prefix   ARGV[2] stream entry id   ARGV[3] events channel
-- Returns: the job id, or false when the entry is gone or its job is live again.
local now = now_ms()
local entries = rcall('XRANGE', KEYS[1], ARGV[2], ARGV[2])
if #entries == 0 then return false end
local e = {}
local fields = entries[1][2]
for i = 1, #fields, 2 do e[fields[i]] = fields[i + 1] end
local id = e['id']
local job_key = ARGV[1] .. id
local status = rcall('HGET', job_key, 'status')
if status and status ~= 'failed' then return false end
rcall('DEL', job_key)
rcall('HSET', job_key, 'task', e['task'], 'payload', e['payload'], 'priority', e['priority'],
  'max_tries', e['max_tries'], 'timeout', e['timeout'], 'attempts', 0, 'enqueued_at', now,
  'status', 'queued', 'replayed_from', ARGV[2])
if e['concurrency_key'] and e['concurrency_key'] ~= '' then
  rcall('HSET', job_key, 'concurrency_key', e['concurrency_key'])
end
push_ready(KEYS[2], KEYS[4], job_key, id)
rcall('XDEL', KEYS[1], ARGV[2])
rcall('ZADD', KEYS[3], 0, 'w')
rcall('HINCRBY', KEYS[5], 'replayed', 1)
publish(ARGV[3], id, 'queued')
return id
