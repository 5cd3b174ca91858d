-- signing_set.lua: a client's signing secrets (sign.h; pbctl keys sign).
-- "add" puts a new secret first and keeps the one before it (a rotation:
-- the agents sign with both until "retire" drops all but the newest);
-- "off" drops them all: that client's postbacks go unsigned.
--
-- Why one atomic step: every change raises the signing version in the
-- same step, so that the agents, which reload the secrets when it moves,
-- never miss one. Returns how many secrets the client has now.
--
-- caller: operator (pbctl's Redis user, whose permissions it runs with)
-- flags: allow-oom (turning signing off or retiring a secret must work whatever the memory).

local signing, version = KEYS[1], KEYS[2]
local what = ARGV[1]                   -- add, retire or off
local client = ARGV[2]                 -- the client's name
local secret = ARGV[3]                 -- add: the new secret ("whsec_..."); else ""

local now = {}
for s in string.gmatch(redis.call('HGET', signing, client) or '', '%S+') do
  now[#now + 1] = s
end
if what == 'add' then
  now = { secret, now[1] }
elseif what == 'retire' then
  now = { now[1] }
elseif what == 'off' then
  now = {}
else
  return redis.error_reply('ERR signing_set: add, retire or off, not ' .. what)
end
if #now == 0 then
  redis.call('HDEL', signing, client)
else
  redis.call('HSET', signing, client, table.concat(now, ' '))
end
redis.call('INCR', version)
return #now
