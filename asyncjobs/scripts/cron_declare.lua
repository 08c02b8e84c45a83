-- cron_declare: list a worker's cron jobs (from its settings) in the crontab, so `crons()`
-- shows them, and drop the ones no live worker declares any more.
-- ARGV[5] hold_ms (how long from now the declaration holds; workers renew it)
-- then, per cron: name definition (JSON object, source = "settings"; `until` is added here)
-- Returns: the names that were not declared because a run-time cron holds them.
-- Invariant: a `settings` entry stays while some worker renews it; a run-time cron is never
--   overwritten by one.
workers_only()
local until_ms = NOW + tonumber(ARGV[5])
local conflicts = {}
local declared = {}
for i = LEADING + 2, #ARGV, 2 do
  local name = ARGV[i]
  local stored = rcall('HGET', K.crontab, name)
  if stored and cjson.decode(stored).source ~= 'settings' then
    conflicts[#conflicts + 1] = name
  else
    local definition = ARGV[i + 1]  -- appended to as text: re-encoding would turn [] into {}
    rcall('HSET', K.crontab, name, string.sub(definition, 1, -2) .. ',"until":' .. until_ms .. '}')
    declared[name] = true
  end
end
local all = rcall('HGETALL', K.crontab)
for i = 1, #all, 2 do
  if not declared[all[i]] then
    local entry = cjson.decode(all[i + 1])
    if entry.source == 'settings' and (tonumber(entry['until']) or 0) <= NOW then
      rcall('HDEL', K.crontab, all[i])
    end
  end
end
return conflicts
