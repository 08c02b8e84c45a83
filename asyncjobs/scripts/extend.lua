-- extend: renew the leases of jobs a worker still owns.
-- ARGV[5] lease_ms
-- then, per job: id token
-- Returns: per job whose lease is lost (token changed, job cancelled, finished or reclaimed):
--   its id, then '1' if it was cancelled (by request: its worker may have missed the cancel
--   message) else '0'. Its worker must stop it: any outcome it reports will be refused.
workers_only()
local lease_ms = tonumber(ARGV[5])
local lost = {}
for i = LEADING + 2, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  if rcall('HGET', P.job .. id, 'token') == token and rcall('ZSCORE', K.leases, id) then
    rcall('ZADD', K.leases, 'XX', NOW + lease_ms, id)
  else
    lost[#lost + 1] = id
    lost[#lost + 1] = rcall('HGET', P.job .. id, 'status') == 'cancelled' and '1' or '0'
  end
end
return lost
