-- workflow_start: store a compiled workflow and enqueue the members that wait for nothing.
-- KEYS[1] ready   KEYS[2] wake   KEYS[3] seq   KEYS[4] stats
-- ARGV[1] job prefix   ARGV[2] workflow hash key   ARGV[3] workflow id   ARGV[4] kind
-- ARGV[5] keep ms   ARGV[6] result template   ARGV[7] N members
-- then 10 fields per member i = 0..N-1: task, payload head, payload tail, input template
--   ('' = no input: the head is the whole payload), results awaited, dependents (comma
--   separated), priority, max_tries, timeout_ms, tolerated (1 = a failure is tolerated)
-- Returns: 1 created, 0 a job with this id exists already.
-- Invariant: the workflow job `<id>` is never in ready/deferred/leases; its members are, and
--   their acks and failures move the workflow on (see wf_member_done in the prelude).
local now = now_ms()
local job_prefix, wf_key, id = ARGV[1], ARGV[2], ARGV[3]
local job_key = job_prefix .. id
if rcall('EXISTS', job_key) == 1 then return 0 end
local n = tonumber(ARGV[7])
rcall('HSET', job_key, 'task', 'workflow:' .. ARGV[4], 'payload', '[[],{}]', 'priority', 0,
  'max_tries', 0, 'timeout', 0, 'attempts', 0, 'enqueued_at', now, 'status', 'queued',
  'workflow_root', wf_key, 'progress', 0, 'message', '0 of ' .. n .. ' members done')
rcall('HSET', wf_key, 'id', id, 'job_key', job_key, 'total', n, 'done', 0, 'status', 'running',
  'result_tpl', ARGV[6], 'keep', ARGV[5])
local roots = {}
for i = 0, n - 1 do
  local b = 8 + i * 10
  rcall('HSET', wf_key, 'task:' .. i, ARGV[b], 'head:' .. i, ARGV[b + 1], 'tail:' .. i,
    ARGV[b + 2], 'tpl:' .. i, ARGV[b + 3], 'wait:' .. i, ARGV[b + 4], 'next:' .. i, ARGV[b + 5],
    'opt:' .. i, ARGV[b + 6] .. ',' .. ARGV[b + 7] .. ',' .. ARGV[b + 8], 'tol:' .. i, ARGV[b + 9])
  if tonumber(ARGV[b + 4]) == 0 then roots[#roots + 1] = i end
end
for _, i in ipairs(roots) do
  wf_start_member(wf_key, i, job_prefix, KEYS[1], KEYS[3], now)
end
rcall('ZADD', KEYS[2], 0, 'w')
rcall('HINCRBY', KEYS[4], 'enqueued', 1)
return 1
