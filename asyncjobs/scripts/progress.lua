-- progress: record a running job's progress and tell whoever watches it.
-- KEYS[1] the job's hash
-- ARGV[1] id   ARGV[2] token   ARGV[3] progress (0..1)   ARGV[4] stage   ARGV[5] message
-- ARGV[6] events channel
-- Returns: 1 stored, -1 refused: lease token lost.
if rcall('HGET', KEYS[1], 'token') ~= ARGV[2] then return -1 end
rcall('HSET', KEYS[1], 'progress', ARGV[3], 'stage', ARGV[4], 'message', ARGV[5])
publish(ARGV[6], ARGV[1], 'progress')
return 1
