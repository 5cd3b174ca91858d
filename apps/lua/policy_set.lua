-- policy_set.lua: a destination's delivery policy (policy.h; pbctl policy
-- set and clear): "set" stores its text, "clear" drops it (the
-- destination gets the agents' configuration again).
--
-- Why one atomic step: every change raises the policies' version in the
-- same step, so that the agents, which reload the policies when it moves,
-- never miss one. Returns 1 when the destination has a policy now, else 0.
--
-- caller: operator (pbctl's Redis user, whose permissions it runs with)
-- flags: allow-oom (clearing a policy must work whatever the memory).

local policies, version = KEYS[1], KEYS[2]
local what = ARGV[1]                   -- set or clear
local d = ARGV[2]                      -- the destination's id (dest.h)
local text = ARGV[3]                   -- set: the policy ("name=value" lines); else ""

if what == 'set' then
  redis.call('HSET', policies, d, text)
elseif what == 'clear' then
  redis.call('HDEL', policies, d)
else
  return redis.error_reply('ERR policy_set: set or clear, not ' .. what)
end
redis.call('INCR', version)
return redis.call('HGET', policies, d) and 1 or 0
