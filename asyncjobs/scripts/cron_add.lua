-- cron_add: store a run-time cron in the queue's crontab (or replace the one of that name) and
-- tell the workers, which reload it at once.
-- ARGV[5] name   ARGV[6] definition (JSON: task, expression, timezone, args, kwargs, unique,
--   missed, source = "runtime", revision, added_at)
-- Returns: 1 added, 2 replaced, -1 refused: a live worker declares a cron of that name from its
--   settings (it would keep firing it; see cron_declare).
-- Invariant: the crontab holds one definition per name; each change is published on the
--   queue's cron-changes channel.
local name = ARGV[5]
local stored = rcall('HGET', K.crontab, name)
if stored then
  local old = cjson.decode(stored)
  if old.source == 'settings' and (tonumber(old['until']) or 0) > NOW then return -1 end
end
rcall('HSET', K.crontab, name, ARGV[6])
announce(CRON_CHANGES, name)
if stored then return 2 end
return 1
