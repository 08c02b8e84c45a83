-- cron_remove: delete a run-time cron (and its tick state) and tell the workers.
-- ARGV[5] name
-- Returns: 3 removed, 0 no cron of that name, -1 refused: a live worker declares it from its
--   settings (remove it there).
-- Invariant: once this returned 3 no tick of the cron is enqueued (cron_tick checks the
--   definition it fires is still stored).
local name = ARGV[5]
local stored = rcall('HGET', K.crontab, name)
if not stored then return 0 end
local old = cjson.decode(stored)
if old.source == 'settings' and (tonumber(old['until']) or 0) > NOW then return -1 end
rcall('HDEL', K.crontab, name)
rcall('HDEL', K.cron, name)
announce(CRON_CHANGES, name)
return 3
