-- reap.lua: what dead agents held goes back to the queues; or, given an
-- agent id, what that agent held (an agent reclaims its own at start).
--
-- Why one atomic step: an agent is dead when its heartbeat key expired;
-- its processing list and held sets go back and the agent is forgotten
-- together, so that a reference is never both held and queued, and an
-- agent that comes back finds itself unregistered (take.lua refuses it)
-- rather than holding what others now deliver.
--
-- An agent's version 1 list (and what an agent before version 3 held
-- there) goes through route(); its held sets' references go to the head
-- of their client's lane of their destination: they waited longest. The per-agent and
-- per-destination keys are derived here: fine on one master (a split by
-- destination keeps each script on one master).
--
-- Reads and writes: the agents set, heartbeats (read), the processing
-- lists, the held sets, the lanes (a reference's client is its
-- request's), ready, the waiting count.
-- Returns how many postbacks went back.
--
-- caller: agent (pb-agent's Redis user, whose permissions it runs with)
-- flags: allow-oom (it moves references, it adds nothing).

local agents, v1_queue, ready, waiting = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local pstem = ARGV[1]                  -- "<p>:processing:"
local only = ARGV[2]                   -- an agent id to reclaim, or ""
local hbstem = ARGV[3]                 -- "<p>:agent:" (heartbeats)
local qstem = ARGV[4]                  -- "<p>:q:"
local hstem = ARGV[5]                  -- "<p>:held:"
local lstem = ARGV[6]                  -- "<p>:lanes:"
local rstem = ARGV[7]                  -- "<p>:r:"
local crstem = ARGV[8]                 -- "<p>:cready:"
local clients_ready = ARGV[9]          -- "<p>:clients-ready"
local L = { q = qstem, l = lstem, r = rstem, c = crstem, cr = clients_ready }

local moved, refs, clients = 0, 0, {}
local now = now_ms()
local function reclaim(id)
  local p = pstem .. id
  for _, x in ipairs(redis.call('LRANGE', p, 0, -1)) do
    refs = refs + route(x, L, 'LPUSH', v1_queue, ready, now, clients)
    moved = moved + 1
  end
  redis.call('DEL', p)
  local held = hstem .. id
  for _, d in ipairs(redis.call('SMEMBERS', held)) do
    local k = held_key(held, d)
    local xs = redis.call('SMEMBERS', k)
    local lanes, order = {}, {}
    for _, x in ipairs(xs) do
      local c = client_of(L, x, clients)
      if not lanes[c] then lanes[c] = {}; order[#order + 1] = c end
      lanes[c][#lanes[c] + 1] = x
    end
    for _, c in ipairs(order) do lane_push(L, d, c, 'LPUSH', lanes[c], ready, now) end
    refs, moved = refs + #xs, moved + #xs
    redis.call('DEL', k)
  end
  redis.call('DEL', held)
end

if only ~= '' then
  reclaim(only)
else
  for _, id in ipairs(redis.call('SMEMBERS', agents)) do
    if redis.call('EXISTS', hbstem .. id) == 0 then
      reclaim(id)
      redis.call('SREM', agents, id)
    end
  end
end
if refs > 0 then redis.call('INCRBY', waiting, refs) end
return moved
