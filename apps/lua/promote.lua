-- promote.lua: retries whose time has come go back to their queues.
--
-- Why one atomic step: a due retry leaves scheduled and enters its
-- client's lane of its destination (at the tail: the probes of an open breaker then try
-- one parked postback after another) together with the waiting count.
--
-- Reads and writes: scheduled, the lanes (a retry's client is its
-- request's), ready, the waiting count, the
-- version 1 queue (a version 1 retry goes there).
-- Returns how many were due and moved (at most limit).
--
-- caller: agent (pb-agent's Redis user, whose permissions it runs with)
-- flags: allow-oom (it moves references, it adds nothing).

local scheduled, v1_queue, ready, waiting = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local limit = ARGV[1]                  -- at most this many a call
local qstem = ARGV[2]                  -- "<p>:q:"
local lstem = ARGV[3]                  -- "<p>:lanes:"
local rstem = ARGV[4]                  -- "<p>:r:"
local crstem = ARGV[5]                 -- "<p>:cready:"
local clients_ready = ARGV[6]          -- "<p>:clients-ready"
local L = { q = qstem, l = lstem, r = rstem, c = crstem, cr = clients_ready }

local now = now_ms()
local due = redis.call('ZRANGEBYSCORE', scheduled, '-inf', now, 'LIMIT', 0, limit)
local refs, clients = 0, {}
for _, x in ipairs(due) do
  redis.call('ZREM', scheduled, x)
  refs = refs + route(x, L, 'RPUSH', v1_queue, ready, now, clients)
end
if refs > 0 then redis.call('INCRBY', waiting, refs) end
return #due
