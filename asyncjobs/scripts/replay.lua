-- replay: turn one dead letter back into a queued job with the same id and fresh tries (and the
-- trace context it was enqueued with, so its new tries link to the original send, and its last
-- checkpoint, so its next try resumes where the failed one got to).
-- ARGV[4] entry (the dead letter's stream entry id)   ARGV[5] id (the job it holds)
-- Returns: the job id, or false when the entry is gone or its job is live again. A retry of a
--   replay whose reply was lost returns the id too: the job remembers which entry it came from.
local entry, id = ARGV[4], ARGV[5]
local job_key = P.job .. id
if rcall('HGET', job_key, 'replayed_from') == entry then return id end
local entries = rcall('XRANGE', K.dlq, entry, entry)
if #entries == 0 then return false end
local e = {}
local fields = entries[1][2]
for i = 1, #fields, 2 do e[fields[i]] = fields[i + 1] end
if e['id'] ~= id then return false end
local status = rcall('HGET', job_key, 'status')
if status and status ~= 'failed' then return false end
rcall('DEL', job_key)
rcall('HSET', job_key, 'task', e['task'], 'payload', e['payload'], 'priority', e['priority'],
  'max_tries', e['max_tries'], 'timeout', e['timeout'], 'attempts', 0, 'enqueued_at', NOW,
  'status', 'queued', 'replayed_from', entry)
if e['concurrency_key'] and e['concurrency_key'] ~= '' then
  rcall('HSET', job_key, 'concurrency_key', e['concurrency_key'])
end
if e['trace'] then rcall('HSET', job_key, 'trace', e['trace']) end
if e['checkpoint'] then rcall('HSET', job_key, 'checkpoint', e['checkpoint']) end
push_ready(job_key, id)
rcall('XDEL', K.dlq, entry)
wake()
count('replayed')
publish(id, 'queued')
return id
