-- replay_many: replay the dead letters of a stretch of the stream, oldest first (all of them,
--   or one task's), each as replay does; called again from `next` until it returns ''.
-- ARGV[5] after (entry id to start after; '-' = the oldest)   ARGV[6] until (the newest entry
--   to consider, read when the bulk replay began, so jobs that fail again meanwhile are not
--   replayed twice)   ARGV[7] task ('' = every task)   ARGV[8] limit (entries read per call)
-- Returns: {next (the entry to continue after; '' = done), replayed, live (left: their job is
--   live again)}
-- Invariant: each call reads at most `limit` entries, so a bulk replay reads the stream once.
local after, last, task, limit = ARGV[5], ARGV[6], ARGV[7], tonumber(ARGV[8])
local start = after == '-' and '-' or '(' .. after
local entries = rcall('XRANGE', K.dlq, start, last, 'COUNT', limit)
local replayed, live = 0, 0
for _, entry in ipairs(entries) do
  local e = entry_fields(entry)
  if e['id'] and (task == '' or e['task'] == task) then
    if replay_entry(entry[1], e) then replayed = replayed + 1 else live = live + 1 end
  end
end
if replayed > 0 then
  wake()
  count('replayed', replayed)
end
local nxt = ''
if #entries == limit and entries[#entries][1] ~= last then nxt = entries[#entries][1] end
return {nxt, replayed, live}
