-- breaker_set.lua: an operator's word on a destination's breaker (pbctl
-- breakers open / close / rate). The fields are those the agents keep
-- (prelude: breaker_open, breaker_close; outcomes.lua, take.lua).
--
-- Why one atomic step: the breaker's state and the destination's score in
-- ready go together; one without the other would leave the destination
-- taken from while open, or skipped while closed.
-- Returns 1.
--
-- caller: operator (pbctl's Redis user, whose permissions it runs with)
-- flags: allow-oom (an operator's lever in an incident, a few fields).

local k, ready = KEYS[1], KEYS[2]      -- "<p>:dest:<d>", ready
local what = ARGV[1]                   -- open, close or rate
local n = tonumber(ARGV[2])            -- ms to stay open, or requests/s (0: none)
local url = ARGV[3]                    -- its scheme://host:port, "" if only its id was given
local d = ARGV[4]                      -- its id
local cooldown = tonumber(ARGV[5])     -- the agents' breaker_cooldown_ms (its default)

local now = now_ms()
if url ~= '' then redis.call('HSET', k, 'url', url) end
if what == 'open' then
  breaker_open(k, ready, d, now + n, 'opened by an operator')
elseif what == 'close' then
  breaker_close(k, ready, d, now)
elseif n > 0 then
  redis.call('HSET', k, 'rate', ARGV[2])
else
  redis.call('HDEL', k, 'rate')
end
breaker_keep(k, now, cooldown)
return 1
