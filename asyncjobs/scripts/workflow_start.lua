-- workflow_start: store a compiled workflow and enqueue the members that wait for nothing.
-- ARGV[5] id (of the workflow)   ARGV[6] kind   ARGV[7] result_template
-- ARGV[8] trace (the trace context every member carries; '' = none)
-- ARGV[9] on_error (JSON list of the error callbacks, innermost node first, each
--   [task, head, tail, takes_failure, first, last, priority, max_tries, timeout_ms]: the
--   callback of the node holding members first..last; '[]' = none; see wf_error_callbacks)
-- then, per member: task head tail template awaited dependents priority max_tries timeout_ms
--   tolerated
--   (member i = 0..N-1 in order; template '' = no input: the head is the whole payload;
--   awaited = how many results it waits for; dependents = comma-separated members waiting for
--   it; tolerated = 1 when its failure does not fail the workflow)
-- Returns: 1 created, 0 a job with this id exists already.
-- Invariant: the workflow job `<id>` is never in ready/deferred/leases; its members are, and
--   their acks and failures move the workflow on (see wf_member_done in the prelude).
local id = ARGV[5]
local job_key = P.job .. id
local wf_key = P.wf .. id
if rcall('EXISTS', job_key) == 1 then return 0 end
local first, width = LEADING + 6, 10
local n = (#ARGV - first + 1) / width
rcall('HSET', job_key, 'task', 'workflow:' .. ARGV[6], 'payload', '[[],{}]', 'priority', 0,
  'max_tries', 0, 'timeout', 0, 'attempts', 0, 'enqueued_at', NOW, 'status', 'queued',
  'workflow_root', wf_key, 'progress', 0, 'message', '0 of ' .. n .. ' members done')
rcall('HSET', wf_key, 'id', id, 'job_key', job_key, 'total', n, 'done', 0, 'status', 'running',
  'result_tpl', ARGV[7], 'keep', KEEP_MS)
if ARGV[8] ~= '' then rcall('HSET', wf_key, 'trace', ARGV[8]) end
if ARGV[9] ~= '[]' then rcall('HSET', wf_key, 'on_error', ARGV[9]) end
local roots = {}
for i = 0, n - 1 do
  local b = first + i * width
  rcall('HSET', wf_key, 'task:' .. i, ARGV[b], 'head:' .. i, ARGV[b + 1], 'tail:' .. i,
    ARGV[b + 2], 'tpl:' .. i, ARGV[b + 3], 'wait:' .. i, ARGV[b + 4], 'next:' .. i, ARGV[b + 5],
    'opt:' .. i, ARGV[b + 6] .. ',' .. ARGV[b + 7] .. ',' .. ARGV[b + 8], 'tol:' .. i, ARGV[b + 9])
  if tonumber(ARGV[b + 4]) == 0 then roots[#roots + 1] = i end
end
for _, i in ipairs(roots) do
  wf_start_member(wf_key, i)
end
wake()
count('enqueued')
return 1
