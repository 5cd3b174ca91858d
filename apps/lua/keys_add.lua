-- keys_add.lua: store a client key (pbctl keys add).
--
-- Why one atomic step: every change raises the clients' version in the
-- same step, so that the ingest nodes, which reload the keys when it
-- moves, never miss one. Returns 1.
--
-- caller: operator (pbctl's Redis user, whose permissions it runs with)

local clients, version = KEYS[1], KEYS[2]
local hash = ARGV[1]                   -- the key's hash
local entry = ARGV[2]                  -- "<client name> ..." (clientkey.h)

redis.call('HSET', clients, hash, entry)
redis.call('INCR', version)
return 1
