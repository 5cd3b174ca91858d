-- gate.lua: a turn at a destination granted for the whole cluster, when
-- its queue is split over several shards (docs/design.md, "Shards"):
-- the probe of an open breaker, or a paced take of a destination with a
-- rate. Called on the first shard only, which holds every destination's
-- gate (keys.h: "<p>:gate:<d>"); a take on any shard asks before it
-- probes or paces (take.lua, `answers`).
--
-- Why here and atomic: each shard's take decides alone, so two shards
-- would probe a dead partner twice a cool-down and pace a limited one at
-- twice its rate. One counter for the whole cluster, read and moved in one
-- step, grants one probe at a time and one paced take a 1/rate.
--
-- Returns {granted (1 or 0), ms}: granted, how long the probe holds, or
-- how long until the next paced take may be granted; refused, how long
-- until one may be.
-- 'release' (a probe's outcome is recorded) frees the probe at once and
-- returns {1, 0}.
--
-- caller: agent (pb-agent's Redis user, whose permissions it runs with)
-- flags: allow-oom (a small hash that lapses; a full Redis must still drain).

local k = KEYS[1]                      -- "<p>:gate:<d>"
local what = ARGV[1]                   -- probe, pace or release
local ms = tonumber(ARGV[2])           -- probe: how long it may take; pace: 1000/rate

if what == 'release' then
  redis.call('HDEL', k, 'probe')
  return { 1, 0 }
end
local now = now_ms()
local function lapse(t)
  -- The hash lapses once the later of its two times is past.
  if redis.call('PTTL', k) < t - now then redis.call('PEXPIRE', k, t - now) end
end
if what == 'probe' then
  local held = tonumber(redis.call('HMGET', k, 'probe')[1] or '0')
  if now < held then return { 0, held - now } end
  redis.call('HSET', k, 'probe', now + ms)
  lapse(now + ms)
  return { 1, ms }
end
-- A pace as the generic cell rate algorithm keeps it: "next" is when
-- the next take is due if each came on time; one may come up to half a
-- pace early, so that shards and agents asking at turns of their own,
-- each a little late or early, still get the rate in total (a take that
-- comes late loses its lateness: no burst after an idle spell).
local half = math.floor(ms / 2)
local due = tonumber(redis.call('HMGET', k, 'next')[1] or '0')
if now < due - half then return { 0, due - half - now } end
due = math.max(due, now) + ms
redis.call('HSET', k, 'next', due)
lapse(due)
return { 1, due - half - now }
