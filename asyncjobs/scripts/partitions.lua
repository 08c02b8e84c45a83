-- partitions: set how many partitions a queue has (this is its partition 0).
-- ARGV[5] count   the partitions producers route new jobs to (1..MAX)
-- Returns: {count, span}: span = the most partitions the queue ever had; workers serve that
--   many, so jobs in partitions that a smaller count dropped still drain. The count is
--   published on the queue's partition-changes channel, so workers follow at once.
-- Invariant: span never shrinks and is at least count; a queue never set has no such key and
--   is one partition (no key of it changes).
local key = TAG .. ':partitions'
local count = tonumber(ARGV[5])
local span = math.max(count, tonumber(rcall('HGET', key, 'span') or '1') or 1)
rcall('HSET', key, 'count', count, 'span', span)
rcall('ZADD', K.wake, 0, 'w')
announce(TAG .. ':partition-changes', count)  -- workers serve new partitions at once
return {count, span}
