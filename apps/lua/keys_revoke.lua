-- keys_revoke.lua: revoke client keys by client name or by their hash's
-- first digits (pbctl keys revoke).
--
-- Why one atomic step: as keys_add.lua, the clients' version moves with
-- the change. Returns how many keys went.
--
-- caller: operator (pbctl's Redis user, whose permissions it runs with)
-- flags: allow-oom (revoking a key must work whatever the memory).

local clients, version = KEYS[1], KEYS[2]
local by = ARGV[1]                     -- "name" or "hash"
local what = ARGV[2]                   -- the client's name, or a hash's first digits

local all, gone = redis.call('HGETALL', clients), 0
for i = 1, #all, 2 do
  local h, name = all[i], string.match(all[i + 1], '^(%S+)')
  if (by == 'name' and name == what) or
     (by == 'hash' and string.sub(h, 1, #what) == what) then
    redis.call('HDEL', clients, h)
    gone = gone + 1
  end
end
if gone > 0 then redis.call('INCR', version) end
return gone
