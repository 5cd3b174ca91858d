-- dead_take.lua: take one dead letter out and, to replay it, queue its
-- job again (pbctl dead replay / purge).
--
-- Why one atomic step: a letter replayed twice at once (two operators, a
-- retried command) must be queued once: only the call that removed it
-- queues it.
--
-- Returns 1 when the letter was there (and is replayed or purged), 0 when
-- it was not.
--
-- caller: operator (pbctl's Redis user, whose permissions it runs with)
-- flags: allow-oom (a purge frees memory; a replay moves a letter).

local dead, v1_queue = KEYS[1], KEYS[2]
local letter = ARGV[1]                 -- the dead letter's record, whole
local job = ARGV[2]                    -- the job to queue (attempts reset), "" to purge

if redis.call('LREM', dead, 1, letter) == 0 then return 0 end
if job ~= '' then redis.call('RPUSH', v1_queue, job) end
return 1
