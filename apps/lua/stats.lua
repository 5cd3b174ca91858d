-- stats.lua: the queue's gauges, read by one agent at a time.
--
-- Why one atomic step: the lease check and its renewal go together (one
-- agent holds the lease and reports the cluster's gauges; the others
-- report none, so that a sum over agents counts each once), and the
-- gauges are read at one instant, so that a postback moving between
-- places is counted once.
--
-- Reads: the lease (and renews it for this agent), the waiting count and
-- version 1 queue, scheduled, dead, the agents and what they hold, ready,
-- the oldest heads' request headers.
-- Returns {0} when another agent holds the lease, else {1, waiting,
-- scheduled, in flight, dead, the age in ms of the oldest of the first
-- `heads` ready destinations' heads (each its first lane's; 0 when none), destinations held back
-- (scored in the future: breaker open, paused, rate-limited)}.
--
-- caller: agent (pb-agent's Redis user, whose permissions it runs with)
-- flags: allow-oom (the gauges matter most while memory is full).

local lease, waiting, v1_queue, scheduled, dead, agents, ready =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local agent = ARGV[1]                  -- this agent's id
local lease_ms = ARGV[2]               -- how long the lease is held
local pstem = ARGV[3]                  -- "<p>:processing:"
local qstem = ARGV[4]                  -- "<p>:q:"
local rstem = ARGV[5]                  -- "<p>:r:"
local heads = ARGV[6]                  -- destinations whose heads are read
local hstem = ARGV[7]                  -- "<p>:held:"
local lstem = ARGV[8]                  -- "<p>:lanes:"
local L = { q = qstem, l = lstem, r = rstem }

local now = now_ms()
local holder = redis.call('GET', lease)
if holder and holder ~= agent then return {0} end
redis.call('SET', lease, agent, 'PX', lease_ms)
local held = 0
for _, a in ipairs(redis.call('SMEMBERS', agents)) do
  held = held + held_count(pstem .. a, hstem .. a)
end
local first = nil
for _, d in ipairs(redis.call('ZRANGEBYSCORE', ready, '-inf', '+inf', 'LIMIT', 0, heads)) do
  local c = redis.call('LINDEX', lstem .. d, 0)
  local ref = redis.call('LINDEX', lane_key(L, d, c or ''), 0)
  local rid = ref and rid_of(ref)
  local h = rid and redis.call('HGET', rstem .. rid, 'h')
  local ms = h and header_enqueued_ms(h)
  if ms and (not first or ms < first) then first = ms end
end
return {1, queue_size(waiting, v1_queue), redis.call('ZCARD', scheduled), held,
        redis.call('LLEN', dead), first and math.max(now - first, 0) or 0,
        redis.call('ZCOUNT', ready, '(' .. now, '+inf')}
