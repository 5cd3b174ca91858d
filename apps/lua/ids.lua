-- ids.lua: everything that holds postbacks (pbctl ids).
--
-- Why one atomic step: a postback moving between places meanwhile is seen
-- exactly once. Every destination with something queued is in ready
-- (keys.h).
--
-- Returns {queued, scheduled, dead, agent1, held1, agent2, held2, ...}:
-- the queues (version 1, then each ready destination's lanes), the retries, the
-- dead letters, then each registered agent's name and what it holds (its
-- processing list, then its held sets).
--
-- caller: operator (pbctl's Redis user, whose permissions it runs with)
-- flags: no-writes (it only reads).

local v1_queue, scheduled, dead, agents, ready =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local pstem = ARGV[1]                  -- "<p>:processing:"
local qstem = ARGV[2]                  -- "<p>:q:"
local hstem = ARGV[3]                  -- "<p>:held:"
local lstem = ARGV[4]                  -- "<p>:lanes:"
local L = { q = qstem, l = lstem }

local q = redis.call('LRANGE', v1_queue, 0, -1)
for _, d in ipairs(redis.call('ZRANGE', ready, 0, -1)) do
  for _, c in ipairs(lanes_of(L, d)) do
    for _, x in ipairs(redis.call('LRANGE', lane_key(L, d, c), 0, -1)) do
      q[#q + 1] = x
    end
  end
end
local out = {q, redis.call('ZRANGE', scheduled, 0, -1),
             redis.call('LRANGE', dead, 0, -1)}
for _, a in ipairs(redis.call('SMEMBERS', agents)) do
  local list = redis.call('LRANGE', pstem .. a, 0, -1)
  local held = hstem .. a
  for _, d in ipairs(redis.call('SMEMBERS', held)) do
    for _, x in ipairs(redis.call('SMEMBERS', held_key(held, d))) do
      list[#list + 1] = x
    end
  end
  out[#out + 1] = a
  out[#out + 1] = list
end
return out
