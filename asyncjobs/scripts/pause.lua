-- pause: stop (or let again) every worker claiming from this queue; enqueue goes on.
-- ARGV[5] paused ('1' = pause, '0' = resume)
-- Returns: 1 the state changed, 0 it was so already.
-- Invariant: K.paused holds the time the queue was paused; claim hands out nothing while it
--   exists. Resuming writes the wake key, so idle workers, blocked on it, claim at once.
if ARGV[5] == '1' then
  return rcall('SET', K.paused, NOW, 'NX') and 1 or 0
end
local changed = rcall('DEL', K.paused)
rcall('ZADD', K.wake, 0, 'w')
return changed
