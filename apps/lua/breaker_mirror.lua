-- breaker_mirror.lua: a destination's breaker opened or closed on one
-- shard, written the same on this one (docs/design.md, "Shards"): an
-- agent whose outcomes opened or closed a breaker calls it on every shard,
-- its own too, so that no shard keeps sending to a partner that another
-- found dead, nor holds back one that answered.
--
-- Why one atomic step: as breaker_set.lua, the state and the
-- destination's score in ready go together. A mirror never shortens an
-- open breaker (one opened later, or by an operator for longer, stands)
-- and ends the probe's hold on the gate (gate.lua: the first shard holds
-- it; elsewhere the field does not exist), so the next probe may go once
-- the cool-down is over, not when the probe's time runs out.
-- Returns 1 when it changed this shard's breaker, 0 when not.
--
-- caller: agent (pb-agent's Redis user, whose permissions it runs with)
-- flags: allow-oom (a breaker's few fields; a full Redis must still drain).

local k, ready, gate = KEYS[1], KEYS[2], KEYS[3] -- "<p>:dest:<d>", ready, "<p>:gate:<d>"
local what = ARGV[1]                   -- open or close
local ms = tonumber(ARGV[2])           -- open: for this long
local reason = ARGV[3]                 -- open: why (the attempt's error)
local url = ARGV[4]                    -- its scheme://host:port
local d = ARGV[5]                      -- its id
local cooldown = tonumber(ARGV[6])     -- the agents' breaker_cooldown_ms

local now = now_ms()
local b = redis.call('HMGET', k, 'state', 'until', 'fails')
local changed = 0
redis.call('HDEL', gate, 'probe')
if what == 'open' then
  if b[1] ~= 'open' or tonumber(b[2] or '0') < now + ms then
    breaker_open(k, ready, d, now + ms, reason, url ~= '' and url or nil)
    changed = 1
  end
elseif b[1] and b[1] ~= 'closed' then
  breaker_close(k, ready, d, now)
  changed = 1
elseif b[3] and b[3] ~= '0' then
  redis.call('HSET', k, 'fails', 0)
end
breaker_keep(k, now, cooldown)
return changed
