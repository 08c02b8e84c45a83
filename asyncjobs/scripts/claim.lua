-- claim: promote due deferred jobs, then hand out up to N ready jobs under fresh leases.
-- KEYS[1] ready   KEYS[2] deferred   KEYS[3] leases   KEYS[4] wake   KEYS[5] seq   KEYS[6] stats
-- ARGV[1] job prefix   ARGV[2] worker id   ARGV[3] N (free slots)   ARGV[4] lease ms
-- ARGV[5] keep ms (for jobs that expired unstarted)   ARGV[6] events channel
-- Returns: {next_due_in_ms (-1 = nothing deferred), then 7 fields per claimed job:
--   id, task, payload, attempts (this try, from 1), max_tries, timeout_ms, enqueued_at_ms}
-- Each claim's lease token is "<worker id>:<attempts>", unique per job and try; ack, fail,
-- requeue, progress and extend act only while the job still holds that token.
-- Invariant: a claimed job moves from ready to leases with status in_progress.
local now = now_ms()
local job_prefix, worker, n = ARGV[1], ARGV[2], tonumber(ARGV[3])
local lease_ms, keep_ms, channel = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]

local due = rcall('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 1000)
for _, id in ipairs(due) do
  rcall('ZREM', KEYS[2], id)
  local job_key = job_prefix .. id
  if rcall('EXISTS', job_key) == 1 then
    rcall('HSET', job_key, 'status', 'queued')
    push_ready(KEYS[1], KEYS[5], job_key, id)
  end
end

local out = {-1}
local claimed, expired = 0, 0
while claimed < n do
  local popped = rcall('ZPOPMIN', KEYS[1], n - claimed)
  if #popped == 0 then break end
  for i = 1, #popped, 2 do
    local id = popped[i]
    local job_key = job_prefix .. id
    local f = rcall('HMGET', job_key, 'task', 'payload', 'attempts', 'max_tries', 'timeout',
      'enqueued_at', 'expires_at', 'status')
    if f[8] == 'queued' then
      if f[7] and tonumber(f[7]) <= now then
        expired = expired + 1
        finish_job(job_key, id, 'expired', now, keep_ms, channel)
      else
        local attempts = tonumber(f[3] or '0') + 1
        rcall('HSET', job_key, 'status', 'in_progress', 'attempts', attempts,
          'started_at', now, 'token', worker .. ':' .. attempts, 'worker', worker)
        rcall('ZADD', KEYS[3], now + lease_ms, id)
        claimed = claimed + 1
        local o = #out
        out[o + 1] = id
        out[o + 2] = f[1]
        out[o + 3] = f[2]
        out[o + 4] = attempts
        out[o + 5] = f[4] or '0'
        out[o + 6] = f[5] or '0'
        out[o + 7] = f[6] or '0'
      end
    end
  end
end
if expired > 0 then rcall('HINCRBY', KEYS[6], 'expired', expired) end

-- Chain wake-up: if work is left, let the next blocked worker see it.
if rcall('ZCARD', KEYS[1]) > 0 then rcall('ZADD', KEYS[4], 0, 'w') end
local nxt = rcall('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
if #nxt > 0 then out[1] = math.max(0, tonumber(nxt[2]) - now) end
return out
