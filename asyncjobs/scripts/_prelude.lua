-- Shared by every script, prepended at load time (never run on its own).
--
-- The key block: the queue's keys, each named "<tag>:<name>". A script gets, as KEYS and in
-- this order, the ones it uses (K.<name> in its text or in a helper it calls): the loader
-- (asyncjobs/_store/scripts.py) finds them and builds K from them alone, and the store passes
-- the same, so adding a key is a change to this line only. Redis copies every KEYS and ARGV
-- string into Lua on every call: passing all 17 was a sixth of a one-job enqueue's Redis time.
local KEY_NAMES = {'ready', 'deferred', 'leases', 'wake', 'seq', 'stats', 'limits', 'dlq',
  'workers', 'cron', 'paused', 'hours', 'dlq_index', 'groups', 'worker_info', 'unknown',
  'crontab'}
-- The leading arguments, the same for every script (a script's own ARGV come after them):
--   ARGV[1] tag   the queue's hash tag "{<prefix>:<queue>}"; every key a script builds starts
--     with it, so all keys of a queue share one Redis Cluster slot
--   ARGV[2] keep_ms   how long a finished job's record stays readable (0 = deleted at once)
--   ARGV[3] dead_letter_cap   how many dead letters the stream keeps
--   ARGV[4] sharded   '1' = publish with SPUBLISH (Redis 7 sharded pub/sub, asked for by the
--     cluster URL): a message stays on the shard that owns its channel's slot; else PUBLISH
--
-- Invariants kept here for every script:
--   * time comes from Redis (TIME), never from a client;
--   * a job is in at most one of ready / deferred / leases, matching its `status` field;
--   * every change a waiter or watcher acts on (start, progress, retry, requeue, every end) is
--     published on the queue's events channel as "<id> <status>".
if redis.replicate_commands then pcall(redis.replicate_commands) end
local rcall = redis.call

-- (for a script that uses ready and wake, the loader writes: local K = {ready = KEYS[1],
-- wake = KEYS[2]}; P below likewise keeps only the prefixes the script uses)
local K = {}
for i, name in ipairs(KEY_NAMES) do K[name] = KEYS[i] end
local LEADING = 4
local TAG, KEEP_MS, DEAD_LETTER_CAP = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local SHARDED = ARGV[4] == '1'
if SHARDED and not redis.REDIS_VERSION_NUM then  -- before Redis 7: stop before any write
  return redis.error_reply('ERR sharded_pubsub needs Redis 7 or newer: remove it from the URL')
end
-- Prefixes of the keys made per job, per idempotency key, per workflow, per group, per task,
-- per stopping worker.
local P = {job = TAG .. ':job:', idem = TAG .. ':idem:', wf = TAG .. ':wf:',
  group = TAG .. ':group:', rate = TAG .. ':rate:', rate_started = TAG .. ':rate-started:',
  minute = TAG .. ':minute:', recent = TAG .. ':recent:', left = TAG .. ':left:',
  own_wake = TAG .. ':wake:'}
local EVENTS, CANCELS = TAG .. ':events', TAG .. ':cancel'
-- A change to the queue's crontab is published here (the cron name), so workers reload it.
local CRON_CHANGES = TAG .. ':cron-changes'

-- Every message a script sends goes out here. Each channel starts with TAG, so with SPUBLISH it
-- stays on the queue's own shard; classic PUBLISH is copied to every node of a cluster.
local function announce(channel, message)
  if SHARDED then rcall('SPUBLISH', channel, message) else rcall('PUBLISH', channel, message) end
end

local NOW
do
  local t = rcall('TIME')
  NOW = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- A script only workers run calls this first: a write to a key that a producer's ACL does not
-- cover (`<tag>!worker`; see docs/security.md), so a producer-only user cannot claim, ack or
-- extend, and the refusal comes before the script has written anything. A no-op otherwise:
-- ZADD XX never creates the key.
local function workers_only()
  rcall('ZADD', TAG .. '!worker', 'XX', 0, '')
end

-- Ready-set score: a priority band, then a FIFO sequence inside the band. Higher priority runs
-- first. |priority| <= 1000 and seq < 2^40 keep the score an exact double (< 2^51).
local PRIORITY_LIMIT = 1000
local SEQ_SPAN = 1099511627776

-- `priority` may be passed by a caller that has it at hand (saves reading it back).
local function ready_score(job_key, priority)
  priority = tonumber(priority or rcall('HGET', job_key, 'priority') or '0') or 0
  priority = math.max(-PRIORITY_LIMIT, math.min(PRIORITY_LIMIT, priority))
  return (PRIORITY_LIMIT - priority) * SEQ_SPAN + rcall('INCR', K.seq) % SEQ_SPAN
end

local function push_ready(job_key, id, priority)
  rcall('ZADD', K.ready, ready_score(job_key, priority), id)
end

-- A wake-up is a flag, not a counter: one member, so the key never grows. A paused queue is
-- never woken (its idle workers stay blocked); resuming it writes the flag (pause.lua).
local function wake()
  if rcall('EXISTS', K.paused) == 0 then rcall('ZADD', K.wake, 0, 'w') end
end

local function count(field, n)
  rcall('HINCRBY', K.stats, field, n or 1)
end

-- History: `tally` counts an outcome in the all-time counters and in the bucket of the current
-- minute (a hash `<tag>:minute:<unix minute>`, kept MINUTE_KEEP_MS after its minute ends). The
-- expiry is set once per field and bucket: when the increment created the field.
local MINUTE_MS, MINUTE_KEEP_MS = 60000, 8 * 3600000
local function tally(field, n)
  n = n or 1
  count(field, n)
  local minute = math.floor(NOW / MINUTE_MS)
  local bucket = P.minute .. minute
  if rcall('HINCRBY', bucket, field, n) == n then
    rcall('PEXPIREAT', bucket, (minute + 1) * MINUTE_MS + MINUTE_KEEP_MS)
  end
end

-- The newest finished jobs of a status, for browsing: a capped list of ids, newest first
-- (`<tag>:recent:<status>`). Trimmed in steps of RECENT_SLACK, so a push costs one command.
local RECENT_KEEP, RECENT_SLACK = 1000, 100
local function remember_finished(status, ids)
  if KEEP_MS <= 0 or #ids == 0 then return end  -- the records are gone at once: nothing to show
  local list = P.recent .. status
  local length = 0
  for i = 1, #ids, 1000 do
    length = rcall('LPUSH', list, unpack(ids, i, math.min(i + 999, #ids)))
  end
  if length > RECENT_KEEP + RECENT_SLACK then rcall('LTRIM', list, 0, RECENT_KEEP - 1) end
end

-- Concurrency groups with jobs waiting for a slot are listed in K.groups (for purge and
-- stats); a group leaves the list when its blocked set empties.
local function forget_group_if_empty(group)
  if rcall('EXISTS', P.group .. group .. ':blocked') == 0 then rcall('SREM', K.groups, group) end
end

local function unpark(group, id)
  rcall('ZREM', P.group .. group .. ':blocked', id)
  forget_group_if_empty(group)
end

-- Recovered jobs: jobs that were running on a worker that died. The first time, a job that
-- died in company goes back to the front of its priority band (it was claimed before every job
-- still waiting) and runs at full concurrency, like any job: after a crash, its collateral
-- finishes about one lease later. A job recovered again, or blamed for the death (see
-- recover.lua), becomes a suspect: it waits in a band after every ordinary job (scores from
-- SUSPECT_BAND up, still < 2^53) and a worker carries at most one suspect at a time, beside its
-- ordinary jobs. So when a worker carrying a suspect dies, the suspect is the one to blame, and
-- an innocent job that died twice in company still gets a run of its own and succeeds.
local SUSPECT_BAND = (2 * PRIORITY_LIMIT + 1) * SEQ_SPAN

local function push_suspect(job_key, id)
  rcall('HSET', job_key, 'suspect', 1)
  rcall('ZADD', K.ready, SUSPECT_BAND + ready_score(job_key), id)
end

local function push_front(job_key, id, priority)
  priority = tonumber(priority or '0') or 0
  priority = math.max(-PRIORITY_LIMIT, math.min(PRIORITY_LIMIT, priority))
  rcall('ZADD', K.ready, (PRIORITY_LIMIT - priority) * SEQ_SPAN, id)
end

-- The fields of a new job, as enqueue and cron_tick receive them (one group per job):
--   id, task, payload, priority, max_tries (0 = the worker's default), timeout_ms (0 = default),
--   delay_ms, defer_until_ms (absolute, 0 = none), expires_ms (relative to now, 0 = never),
--   idempotency_key ('' = none), idempotency_ttl_ms, concurrency_key ('' = none; groups jobs of
--   a task that has max_concurrency), trace ('' = none: the producer's trace context, as the
--   JSON of its propagation headers; kept through retries, dead letters and replays),
--   fresh (1 = the client drew the id at random: no job can have it yet, so it is not looked up)
local JOB_FIELDS = {'id', 'task', 'payload', 'priority', 'max_tries', 'timeout_ms', 'delay_ms',
  'defer_until_ms', 'expires_ms', 'idempotency_key', 'idempotency_ttl_ms', 'concurrency_key',
  'trace', 'fresh'}

-- New jobs of one script call: their ready and deferred entries, and counts per task, written
-- together by store_new_jobs (one command each, not one per job). `seq` is the first of the
-- sequence numbers reserved for the call (one per job).
local function new_jobs(count_of_jobs)
  local last = rcall('INCRBY', K.seq, count_of_jobs)
  return {ready = {}, deferred = {}, by_task = {}, created = 0, seq = last - count_of_jobs}
end

-- Creates one job from the JOB_FIELDS starting at ARGV[b] into `pending` (see new_jobs), unless
-- a job with that id, or the idempotency key, exists. Returns the job id and 1 if it existed.
-- Fields at their default (priority 0, no max_tries or timeout, no try yet) are not written:
-- every reader takes a missing one as the default.
local function create_job(b, pending)
  local id, task, payload = ARGV[b], ARGV[b + 1], ARGV[b + 2]
  local priority, max_tries, timeout = ARGV[b + 3], ARGV[b + 4], ARGV[b + 5]
  local delay, defer_until = tonumber(ARGV[b + 6]), tonumber(ARGV[b + 7])
  local expires, idem_key, idem_ttl = tonumber(ARGV[b + 8]), ARGV[b + 9], tonumber(ARGV[b + 10])
  local concurrency_key, trace, fresh = ARGV[b + 11], ARGV[b + 12], ARGV[b + 13] == '1'
  if idem_key ~= '' then
    local existing = rcall('GET', P.idem .. idem_key)
    if existing then return existing, 1 end
  end
  local job_key = P.job .. id
  if not fresh and rcall('EXISTS', job_key) == 1 then return id, 1 end
  local due = math.max(NOW + delay, defer_until)
  local ready = due <= NOW
  local score
  if ready then
    local seq = pending.seq + 1
    pending.seq = seq
    local p = priority == '0' and 0 or math.max(-PRIORITY_LIMIT,
      math.min(PRIORITY_LIMIT, tonumber(priority) or 0))
    score = (PRIORITY_LIMIT - p) * SEQ_SPAN + seq % SEQ_SPAN
    local r = pending.ready
    r[#r + 1], r[#r + 2] = score, id
  else
    local d = pending.deferred
    d[#d + 1], d[#d + 2] = due, id
  end
  if ready and priority == '0' and max_tries == '0' and timeout == '0' and expires == 0
      and concurrency_key == '' and trace == '' and idem_key == '' then
    -- the usual job: one HSET of fixed shape, no table to build
    rcall('HSET', job_key, 'task', task, 'payload', payload, 'enqueued_at', NOW,
      'status', 'queued')
  else
    local f = {'task', task, 'payload', payload, 'enqueued_at', NOW}
    local n = 6
    if priority ~= '0' then f[n + 1], f[n + 2], n = 'priority', priority, n + 2 end
    if max_tries ~= '0' then f[n + 1], f[n + 2], n = 'max_tries', max_tries, n + 2 end
    if timeout ~= '0' then f[n + 1], f[n + 2], n = 'timeout', timeout, n + 2 end
    if expires > 0 then f[n + 1], f[n + 2], n = 'expires_at', NOW + expires, n + 2 end
    if concurrency_key ~= '' then
      f[n + 1], f[n + 2], n = 'concurrency_key', concurrency_key, n + 2
    end
    if trace ~= '' then f[n + 1], f[n + 2], n = 'trace', trace, n + 2 end
    if idem_key ~= '' then
      f[n + 1], f[n + 2], n = 'idempotency_key', idem_key, n + 2
      rcall('SET', P.idem .. idem_key, id, 'PX', idem_ttl)
    end
    if ready then
      f[n + 1], f[n + 2] = 'status', 'queued'
    else
      f[n + 1], f[n + 2], f[n + 3], f[n + 4] = 'status', 'deferred', 'scheduled_at', due
    end
    rcall('HSET', job_key, unpack(f))
  end
  pending.by_task[task] = (pending.by_task[task] or 0) + 1
  pending.created = pending.created + 1
  return id, 0
end

-- ZADD a flat list of score, member pairs, a bounded number of arguments per command.
local function zadd_pairs(key, pairs)
  for i = 1, #pairs, 2000 do
    rcall('ZADD', key, unpack(pairs, i, math.min(i + 1999, #pairs)))
  end
end

-- Writes what create_job gathered: the ready and deferred entries, the counters (per task, for
-- metrics: bounded by the number of tasks) and the wake-up. Returns how many jobs it created.
local function store_new_jobs(pending)
  if pending.created == 0 then return 0 end
  zadd_pairs(K.ready, pending.ready)
  zadd_pairs(K.deferred, pending.deferred)
  for task, n in pairs(pending.by_task) do count('enqueued:' .. task, n) end
  count('enqueued', pending.created)
  wake()
  return pending.created
end

-- A job leaving in_progress gives back its concurrency-group slot, and the first job waiting
-- for that group goes back to the ready set with the score it had.
local function release_slot(job_key, id)
  local group = rcall('HGET', job_key, 'group')
  if not group then return end
  rcall('HDEL', job_key, 'group')
  rcall('SREM', P.group .. group .. ':running', id)
  local nxt = rcall('ZPOPMIN', P.group .. group .. ':blocked', 1)
  if #nxt > 0 then
    rcall('HDEL', P.job .. nxt[1], 'blocked')
    rcall('ZADD', K.ready, nxt[2], nxt[1])
    forget_group_if_empty(group)
    wake()
  end
end

local function publish(id, status)
  announce(EVENTS, id .. ' ' .. status)
end

-- Ends a job in a terminal status: stamps it, lets its record expire, tells the waiters.
-- `keep_ms` defaults to the caller's KEEP_MS (a workflow's members keep the workflow's). A
-- succeeded, cancelled or expired job joins its status's recent list, or the caller's `batch`
-- (a list of ids it passes to remember_finished once).
local function finish_job(job_key, id, status, keep_ms, batch)
  if batch then
    batch[#batch + 1] = id
  elseif status ~= 'failed' then
    remember_finished(status, {id})
  end
  keep_ms = keep_ms or KEEP_MS
  rcall('HSET', job_key, 'status', status, 'finished_at', NOW)
  rcall('HDEL', job_key, 'token')
  if keep_ms > 0 then
    rcall('PEXPIRE', job_key, keep_ms)
  else
    rcall('DEL', job_key)
  end
  publish(id, status)
end

-- The fields of a stream entry, as a table.
local function entry_fields(entry)
  local e = {}
  local fields = entry[2]
  for i = 1, #fields, 2 do e[fields[i]] = fields[i + 1] end
  return e
end

-- Copies a failed job, with its error (and its trace context and last checkpoint, if it has
-- them), onto the capped dead-letter stream. K.dlq_index maps
-- each job id to its entry (one dead letter per job id: a newer one replaces the older), so a
-- dead letter is found without reading the stream; the cap drops the oldest, index and all.
local function dead_letter(job_key, id)
  local f = rcall('HMGET', job_key, 'task', 'payload', 'priority', 'max_tries', 'timeout',
    'attempts', 'enqueued_at', 'error_type', 'error_message', 'traceback', 'concurrency_key',
    'trace', 'checkpoint')
  local fields = {'id', id, 'task', f[1] or '', 'payload', f[2] or '', 'priority', f[3] or '0',
    'max_tries', f[4] or '0', 'timeout', f[5] or '0', 'attempts', f[6] or '0',
    'enqueued_at', f[7] or '0', 'failed_at', NOW, 'error_type', f[8] or '',
    'error_message', f[9] or '', 'traceback', f[10] or '', 'concurrency_key', f[11] or ''}
  if f[12] then
    fields[#fields + 1] = 'trace'
    fields[#fields + 1] = f[12]
  end
  if f[13] then
    fields[#fields + 1] = 'checkpoint'
    fields[#fields + 1] = f[13]
  end
  local entry = rcall('XADD', K.dlq, '*', unpack(fields))
  local previous = rcall('HGET', K.dlq_index, id)
  if previous then rcall('XDEL', K.dlq, previous) end
  rcall('HSET', K.dlq_index, id, entry)
  local over = rcall('XLEN', K.dlq) - DEAD_LETTER_CAP
  if over > 0 then
    for _, old in ipairs(rcall('XRANGE', K.dlq, '-', '+', 'COUNT', over)) do
      local old_id = entry_fields(old)['id']
      if old_id and rcall('HGET', K.dlq_index, old_id) == old[1] then
        rcall('HDEL', K.dlq_index, old_id)
      end
      rcall('XDEL', K.dlq, old[1])
    end
  end
end

-- Turns dead letter `entry` (its id; `e` its fields) back into a queued job with the same id,
-- fresh tries and its last checkpoint (its next try resumes there), and removes it from the
-- stream and the index. Returns the job id, or false
-- (nothing changed) when a live job has that id again. The caller wakes the workers.
local function replay_entry(entry, e)
  local id = e['id']
  local job_key = P.job .. id
  local status = rcall('HGET', job_key, 'status')
  if status and status ~= 'failed' then return false end
  rcall('DEL', job_key)
  rcall('HSET', job_key, 'task', e['task'] or '', 'payload', e['payload'] or '',
    'priority', e['priority'] or '0', 'max_tries', e['max_tries'] or '0',
    'timeout', e['timeout'] or '0', 'attempts', 0, 'enqueued_at', NOW, 'status', 'queued',
    'replayed_from', entry)
  if e['concurrency_key'] and e['concurrency_key'] ~= '' then
    rcall('HSET', job_key, 'concurrency_key', e['concurrency_key'])
  end
  if e['trace'] and e['trace'] ~= '' then rcall('HSET', job_key, 'trace', e['trace']) end
  if e['checkpoint'] then rcall('HSET', job_key, 'checkpoint', e['checkpoint']) end
  push_ready(job_key, id)
  rcall('XDEL', K.dlq, entry)
  if rcall('HGET', K.dlq_index, id) == entry then rcall('HDEL', K.dlq_index, id) end
  publish(id, 'queued')
  return id
end

local function set_error(job_key, error_type, error_message, traceback)
  rcall('HSET', job_key, 'error_type', error_type, 'error_message', error_message,
    'traceback', traceback)
end

-- Workflows. A workflow hash (`<tag>:wf:<id>`) holds, per member i: task:i, head:i, tail:i,
-- tpl:i (input template: JSON list of literal JSON strings and member indexes), wait:i (results
-- still awaited), next:i (members waiting for i), opt:i (priority,max_tries,timeout_ms), tol:i
-- (1 = its failure is tolerated), r:i (its result), failed:i (1 = its result is the marker of a
-- tolerated failure); and id, job_key, total, done, status, result_tpl, keep, trace (the trace
-- context every member carries, if any) and on_error (its error callbacks, if any). Members are
-- jobs `<id>.<i>` in the same queue, carrying `workflow` (the workflow hash key) and `node` (i).
-- The workflow itself is the job `<id>`.

-- Concatenates literal JSON segments and stored member results into one JSON text.
local function wf_build(wf_key, tpl)
  local parts = {}
  for _, seg in ipairs(cjson.decode(tpl)) do
    if type(seg) == 'number' then
      parts[#parts + 1] = rcall('HGET', wf_key, 'r:' .. seg) or 'null'
    else
      parts[#parts + 1] = seg
    end
  end
  return table.concat(parts)
end

local function wf_start_member(wf_key, i)
  local f = rcall('HMGET', wf_key, 'id', 'task:' .. i, 'head:' .. i, 'tail:' .. i, 'tpl:' .. i,
    'opt:' .. i, 'trace')
  local id = f[1] .. '.' .. i
  local job_key = P.job .. id
  if rcall('EXISTS', job_key) == 1 then return end
  local payload = f[3]
  if f[5] and f[5] ~= '' then payload = f[3] .. wf_build(wf_key, f[5]) .. f[4] end
  local o = {}
  for v in string.gmatch(f[6], '[^,]+') do o[#o + 1] = v end
  rcall('HSET', job_key, 'task', f[2], 'payload', payload, 'priority', o[1], 'max_tries', o[2],
    'timeout', o[3], 'attempts', 0, 'enqueued_at', NOW, 'status', 'queued',
    'workflow', wf_key, 'node', i)
  if f[7] then rcall('HSET', job_key, 'trace', f[7]) end
  push_ready(job_key, id)
end

-- Ends every member still waiting or running, as cancelled (the workflow failed or was cancelled).
local function wf_cancel_members(wf_key, skip_id, keep_ms)
  local id, total = rcall('HGET', wf_key, 'id'), tonumber(rcall('HGET', wf_key, 'total'))
  for i = 0, total - 1 do
    local member = id .. '.' .. i
    local job_key = P.job .. member
    local status = member ~= skip_id and rcall('HGET', job_key, 'status')
    if status == 'queued' or status == 'deferred' or status == 'in_progress' then
      rcall('ZREM', K.ready, member)
      rcall('ZREM', K.deferred, member)
      local blocked = rcall('HGET', job_key, 'blocked')
      if blocked then unpark(blocked, member) end
      if status == 'in_progress' then
        rcall('ZREM', K.leases, member)
        release_slot(job_key, member)
        announce(CANCELS, member)
      end
      finish_job(job_key, member, 'cancelled', keep_ms)
    end
  end
end

-- A member succeeded (or failed, tolerated): record its result once, start the members that
-- were waiting only for it, and end the workflow when every member is done.
local function wf_member_done(member_key, result)
  local m = rcall('HMGET', member_key, 'workflow', 'node')
  local wf_key, node = m[1], m[2]
  if not wf_key or rcall('HGET', wf_key, 'status') ~= 'running' then return end
  if rcall('HSETNX', wf_key, 'r:' .. node, result) == 0 then return end
  local done = rcall('HINCRBY', wf_key, 'done', 1)
  local started = false
  for d in string.gmatch(rcall('HGET', wf_key, 'next:' .. node) or '', '[^,]+') do
    if rcall('HINCRBY', wf_key, 'wait:' .. d, -1) == 0 then
      wf_start_member(wf_key, d)
      started = true
    end
  end
  if started then wake() end
  local w = rcall('HMGET', wf_key, 'id', 'job_key', 'total', 'keep')
  local total = tonumber(w[3])
  rcall('HSET', w[2], 'progress', done / total, 'message', done .. ' of ' .. total ..
    ' members done')
  if done == total then
    rcall('HSET', wf_key, 'status', 'succeeded')
    rcall('HSET', w[2], 'result', wf_build(wf_key, rcall('HGET', wf_key, 'result_tpl')))
    finish_job(w[2], w[1], 'succeeded', tonumber(w[4]))
    rcall('PEXPIRE', wf_key, math.max(tonumber(w[4]), 1))
  else
    publish(w[1], 'progress')
  end
end

-- Error callbacks: `on_error` holds a JSON list, innermost node first, of
-- [task, head, tail, takes_failure, first, last, priority, max_tries, timeout_ms], one per
-- chain, group or chord given `.on_error(signature)`; its members are first..last. When member
-- `node` fails the workflow, the callback of every node holding it is enqueued as job
-- `<workflow id>.on_error.<k>`, its payload `head .. failure .. tail` (a WorkflowFailure as
-- the first argument; `head` alone when it takes none). Once: a workflow fails only once.
local function wf_error_callbacks(wf_key, wf_id, node, member_id, task, error_type, message)
  local list = rcall('HGET', wf_key, 'on_error')
  if not list then return end
  node = tonumber(node)
  local trace = rcall('HGET', wf_key, 'trace')
  local enqueued = false
  for k, cb in ipairs(cjson.decode(list)) do
    local id = wf_id .. '.on_error.' .. (k - 1)
    local job_key = P.job .. id
    if node >= cb[5] and node <= cb[6] and rcall('EXISTS', job_key) == 0 then
      local payload = cb[2]
      if cb[4] == 1 then
        local succeeded = {}
        for i = cb[5], cb[6] do
          if i ~= node and rcall('HEXISTS', wf_key, 'r:' .. i) == 1
              and not rcall('HGET', wf_key, 'failed:' .. i) then
            succeeded[#succeeded + 1] = '{"job_id":' .. cjson.encode(wf_id .. '.' .. i) ..
              ',"task":' .. cjson.encode(rcall('HGET', wf_key, 'task:' .. i) or '') .. '}'
          end
        end
        local failure = '{"workflow_id":' .. cjson.encode(wf_id) .. ',"job_id":' ..
          cjson.encode(member_id) .. ',"task":' .. cjson.encode(task) .. ',"error_type":' ..
          cjson.encode(error_type) .. ',"error_message":' .. cjson.encode(message) ..
          ',"succeeded":[' .. table.concat(succeeded, ',') .. ']}'
        payload = cb[2] .. failure .. cb[3]
      end
      rcall('HSET', job_key, 'task', cb[1], 'payload', payload, 'priority', cb[7],
        'max_tries', cb[8], 'timeout', cb[9], 'attempts', 0, 'enqueued_at', NOW,
        'status', 'queued', 'on_error_of', wf_id)
      if trace then rcall('HSET', job_key, 'trace', trace) end
      push_ready(job_key, id, cb[7])
      publish(id, 'queued')
      enqueued = true
    end
  end
  if enqueued then wake() end
end

-- A member failed for good (dead-lettered, cancelled, expired). Tolerated: its result becomes a
-- failure marker. Otherwise the workflow fails, naming the member, the rest is cancelled and
-- the error callbacks of the nodes holding it are enqueued.
local function wf_member_failed(member_key, member_id, error_type, message)
  local m = rcall('HMGET', member_key, 'workflow', 'node', 'task')
  local wf_key, node = m[1], m[2]
  if not wf_key or rcall('HGET', wf_key, 'status') ~= 'running' then return end
  if rcall('HGET', wf_key, 'tol:' .. node) == '1' then
    local marker = '{"failed":true,"job_id":' .. cjson.encode(member_id) .. ',"error_type":' ..
      cjson.encode(error_type) .. ',"error":' .. cjson.encode(message) .. '}'
    rcall('HSET', wf_key, 'failed:' .. node, 1)
    wf_member_done(member_key, marker)
    return
  end
  local w = rcall('HMGET', wf_key, 'id', 'job_key', 'keep')
  local keep = tonumber(w[3])
  rcall('HSET', wf_key, 'status', 'failed')
  set_error(w[2], error_type, 'member ' .. member_id .. ' (' .. (m[3] or '?') .. ') failed: ' ..
    message, '')
  finish_job(w[2], w[1], 'failed', keep)
  wf_cancel_members(wf_key, member_id, keep)
  wf_error_callbacks(wf_key, w[1], node, member_id, m[3] or '', error_type, message)
  rcall('PEXPIRE', wf_key, math.max(keep, 1))
end
