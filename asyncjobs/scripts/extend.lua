-- extend: renew the leases of jobs a worker still owns.
-- ARGV[5] lease_ms
-- then, per job: id token
-- Returns: the ids whose lease is lost (token changed, job cancelled, finished or reclaimed);
--   their worker must stop them, since any outcome it reports will be refused.
workers_only()
local lease_ms = tonumber(ARGV[5])
local lost = {}
for i = LEADING + 2, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  if rcall('HGET', P.job .. id, 'token') == token and rcall('ZSCORE', K.leases, id) then
    rcall('ZADD', K.leases, 'XX', NOW + lease_ms, id)
  else
    lost[#lost + 1] = id
  end
end
return lost
