-- keys_share.lua: a client's share of the queue (pbctl keys share): how
-- many postbacks it may have queued in the cluster, or the default again.
--
-- Why one atomic step: as keys_add.lua, every change raises the clients'
-- version in the same step, so that the ingest nodes, which reload the
-- keys and the shares when it moves, never miss one. Returns 1.
--
-- caller: operator (pbctl's Redis user, whose permissions it runs with)

local shares, version = KEYS[1], KEYS[2]
local client = ARGV[1]                 -- its name
local share = ARGV[2]                  -- postbacks; "0": the default again

if share == '0' then
  redis.call('HDEL', shares, client)
else
  redis.call('HSET', shares, client, share)
end
redis.call('INCR', version)
return 1
