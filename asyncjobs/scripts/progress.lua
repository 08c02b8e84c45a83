-- progress: record a running job's progress and tell whoever watches it.
-- ARGV[4] id   ARGV[5] token   ARGV[6] value (0..1)   ARGV[7] stage   ARGV[8] message
-- Returns: 1 stored, -1 refused: lease token lost.
workers_only()
local job_key = P.job .. ARGV[4]
if rcall('HGET', job_key, 'token') ~= ARGV[5] then return -1 end
rcall('HSET', job_key, 'progress', ARGV[6], 'stage', ARGV[7], 'message', ARGV[8])
publish(ARGV[4], 'progress')
return 1
