-- progress: record a running job's progress and tell whoever watches it.
-- ARGV[5] id   ARGV[6] token   ARGV[7] value (0..1)   ARGV[8] stage   ARGV[9] message
-- Returns: 1 stored, -1 refused: lease token lost.
workers_only()
local job_key = P.job .. ARGV[5]
if rcall('HGET', job_key, 'token') ~= ARGV[6] then return -1 end
rcall('HSET', job_key, 'progress', ARGV[7], 'stage', ARGV[8], 'message', ARGV[9])
publish(ARGV[5], 'progress')
return 1
