-- checkpoint: save a running try's checkpoint (any JSON value) with its job, for later tries.
-- ARGV[5] id   ARGV[6] token   ARGV[7] value (JSON text)
-- Returns: 1 stored, -1 refused: the try no longer holds the job's lease (it was reclaimed,
--   cancelled or has ended), so it never overwrites the checkpoint of a newer try.
-- Invariant: `checkpoint` is written only by the try holding the lease token; the claim hands
--   it to the next try, the dead letter keeps it, a replay gives it back.
workers_only()
local job_key = P.job .. ARGV[5]
if rcall('HGET', job_key, 'token') ~= ARGV[6] then return -1 end
rcall('HSET', job_key, 'checkpoint', ARGV[7], 'checkpoint_at', NOW)
return 1
