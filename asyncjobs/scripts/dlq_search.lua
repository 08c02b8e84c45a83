-- dlq_search: find dead letters by task and by error text, newest first, reading at most
--   `scan` entries (in chunks, so a large traceback never fills the script's memory).
-- ARGV[5] before (read entries older than this one; '+' = from the newest)   ARGV[6] task
--   ('' = any)   ARGV[7] text ('' = any; lower case, found in "<error type>: <message>")
--   ARGV[8] limit (matches wanted)   ARGV[9] scan (entries to read at most)   ARGV[10] skip
--   (matches to pass over first: a page further down, sent without the ones before it)
-- Returns: {next (the entry to continue before; '' = the stream was read to its start), then
--   per match: entry id, fields (a flat list, as XRANGE gives them)}
-- Invariant: reads only.
local before, task, text = ARGV[5], ARGV[6], ARGV[7]
local limit, scan, skip = tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])
local out, matches, read, done = {''}, 0, 0, false
local CHUNK = 100
local max = before == '+' and '+' or '(' .. before
while matches < limit and read < scan and not done do
  local wanted = math.min(CHUNK, scan - read)
  local entries = rcall('XREVRANGE', K.dlq, max, '-', 'COUNT', wanted)
  done = #entries < wanted
  for _, entry in ipairs(entries) do
    read = read + 1
    local e = entry_fields(entry)
    local ok = task == '' or e['task'] == task
    if ok and text ~= '' then
      local error_text = string.lower((e['error_type'] or '') .. ': ' .. (e['error_message'] or ''))
      ok = string.find(error_text, text, 1, true) ~= nil
    end
    max = '(' .. entry[1]
    out[1] = entry[1]
    if ok and skip > 0 then
      skip = skip - 1
    elseif ok then
      out[#out + 1] = entry[1]
      out[#out + 1] = entry[2]
      matches = matches + 1
      if matches >= limit then
        done = done and out[1] == entries[#entries][1]
        break
      end
    end
  end
end
if done then out[1] = '' end
return out
