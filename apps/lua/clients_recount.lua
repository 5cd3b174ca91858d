-- clients_recount.lua: each client's count of postbacks on this shard
-- (<p>:client-waiting: what its share bounds, enqueue.lua and outcomes.lua
-- keep it) made again from the postbacks themselves (pbctl clients
-- --reconcile): those waiting in its lanes, scheduled for a retry, or held
-- by an agent. Dead letters and version 1 jobs are not counted, as they
-- never are.
--
-- Why one atomic step: a postback moving between places meanwhile would be
-- counted twice or not at all, and the counts written must be those of one
-- instant. It reads every postback of the shard: seconds for millions.
-- Returns triples (client, count before, count now) for each client whose
-- count it changed.
--
-- caller: operator (pbctl's Redis user, whose permissions it runs with)

local counts, ready, scheduled, agents = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local qstem = ARGV[1]                  -- "<p>:q:"
local lstem = ARGV[2]                  -- "<p>:lanes:"
local rstem = ARGV[3]                  -- "<p>:r:"
local hstem = ARGV[4]                  -- "<p>:held:"
local L = { q = qstem, l = lstem, r = rstem }

local now, clients = {}, {}
local function add(c, n) now[c] = (now[c] or 0) + n end
-- How many postbacks a queue element is: a run many, a reference one.
local function postbacks(x)
  local a, b = string.match(x, '^%S+ (%d+)%-(%d+)$')
  return a and tonumber(b) - tonumber(a) + 1 or 1
end

for _, d in ipairs(redis.call('ZRANGE', ready, 0, -1)) do
  for _, c in ipairs(lanes_of(L, d)) do
    for _, x in ipairs(redis.call('LRANGE', lane_key(L, d, c), 0, -1)) do
      if string.find(x, '\t', 1, true) == nil then
        -- A named lane is its client's; the one without a client holds
        -- what a release before lanes queued too: its request says whose.
        add(c ~= '' and c or client_of(L, x, clients), postbacks(x))
      end
    end
  end
end
for _, x in ipairs(redis.call('ZRANGE', scheduled, 0, -1)) do
  local _, ref = string.match(x, SCHED)
  if ref then add(client_of(L, ref, clients), 1)
  elseif string.match(x, V2) then add(client_of(L, x, clients), 1) end
end
for _, a in ipairs(redis.call('SMEMBERS', agents)) do
  local held = hstem .. a
  for _, d in ipairs(redis.call('SMEMBERS', held)) do
    for _, x in ipairs(redis.call('SMEMBERS', held_key(held, d))) do
      add(client_of(L, x, clients), 1)
    end
  end
end

local out, was = {}, redis.call('HGETALL', counts)
local before = {}
for i = 1, #was, 2 do before[was[i]] = tonumber(was[i + 1]) end
for c, n in pairs(before) do
  if not now[c] then
    redis.call('HDEL', counts, c)
    out[#out + 1] = c; out[#out + 1] = n; out[#out + 1] = 0
  end
end
for c, n in pairs(now) do
  if before[c] ~= n then
    redis.call('HSET', counts, c, n)
    out[#out + 1] = c; out[#out + 1] = before[c] or 0; out[#out + 1] = n
  end
end
return out
