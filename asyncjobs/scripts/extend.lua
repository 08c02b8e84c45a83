-- extend: renew the leases of jobs a worker still owns.
-- KEYS[1] leases
-- ARGV[1] job prefix   ARGV[2] lease ms   then pairs: id, token
-- Returns: the ids whose lease is lost (token changed, job cancelled, finished or reclaimed);
--   their worker must stop them, since any outcome it reports will be refused.
local now = now_ms()
local job_prefix, lease_ms = ARGV[1], tonumber(ARGV[2])
local lost = {}
for i = 3, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  if rcall('HGET', job_prefix .. id, 'token') == token and rcall('ZSCORE', KEYS[1], id) then
    rcall('ZADD', KEYS[1], 'XX', now + lease_ms, id)
  else
    lost[#lost + 1] = id
  end
end
return lost
