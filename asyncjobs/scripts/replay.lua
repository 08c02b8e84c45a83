-- replay: turn one dead letter back into a queued job with the same id and fresh tries (and the
-- trace context it was enqueued with, so its new tries link to the original send, and its last
-- checkpoint, so its next try resumes where the failed one got to).
-- ARGV[5] entry (the dead letter's stream entry id)   ARGV[6] id (the job it holds)
-- Returns: the job id, or false when the entry is gone or its job is live again. A retry of a
--   replay whose reply was lost returns the id too: the job remembers which entry it came from.
local entry, id = ARGV[5], ARGV[6]
if rcall('HGET', P.job .. id, 'replayed_from') == entry then return id end
local entries = rcall('XRANGE', K.dlq, entry, entry)
if #entries == 0 then return false end
local e = entry_fields(entries[1])
if e['id'] ~= id then return false end
if not replay_entry(entry, e) then return false end
wake()
count('replayed')
return id
