-- purge_dead_letters: delete every dead letter of the queue, and their index.
-- Returns: how many there were.
local n = rcall('XLEN', K.dlq)
rcall('DEL', K.dlq, K.dlq_index)
return n
