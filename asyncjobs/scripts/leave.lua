-- leave: a stopping worker says so before its claim loop ends, so that no claim of its own that
--   Redis runs from then on hands it jobs it would never start.
-- ARGV[5] worker (its id)   ARGV[6] how: 'wake' = mark it as leaving and write its own wake key
--   (its blocked wait includes that key: the wait returns, and the claim sent behind the wait
--   takes nothing); 'mark' = only mark it; 'clear' = delete both keys (its claim loop has
--   ended, or a worker of this name starts again)
-- Returns: 1.
-- Invariant: while <tag>:left:<worker> exists (a minute at most: longer than any stop takes)
--   claim hands that worker nothing. A claim Redis ran before this script was answered first,
--   so the worker reads its jobs and runs them. Both keys expire by themselves if the worker
--   cannot clear them.
workers_only()
local left, own = P.left .. ARGV[5], P.own_wake .. ARGV[5]
if ARGV[6] == 'clear' then
  rcall('DEL', left, own)
  return 1
end
rcall('SET', left, 1, 'PX', 60000)
if ARGV[6] == 'wake' then
  rcall('ZADD', own, 0, 'w')
  rcall('PEXPIRE', own, 60000)
end
return 1
