-- prelude.lua: what several scripts need, each fact written once.
--
-- Every script is this file followed by its own (scripts/gen_lua.py joins
-- them at build time; the tests in tests/scripts join them the same way).
-- It only defines: nothing here touches Redis until a script calls it.
-- Key names are made by the caller (apps/common/keys.c) and passed in
-- KEYS, or as stems in ARGV that a script completes with an agent id, a
-- destination id or a request id.

-- The master's clock in ms, so that every program that schedules (agents,
-- pbctl) reads one clock.
local function now_ms()
  local t = redis.call('TIME')
  return t[1] * 1000 + math.floor(t[2] / 1000)
end

-- The forms of a queue element (job.h), told apart by their words:
--   DEST   a destination id, 16 hex digits;
--   V2     a version 2 reference: six words, the destination first;
--   SCHED  a version 3 retry as scheduled: four words, the destination
--          first, then the version 3 reference that goes back to its queue;
--   a version 3 reference (two or three words: request id, index[,
--   attempts]) or run (two: request id, "<first>-<last>");
--   a version 1 job, with tabs, not spaces.
-- (Written out: a library's load runs without the string library.)
local DEST = '%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x'
local V2 = '^(' .. DEST .. ') %S+ %d+ %d+ %d+ %d+$'
local SCHED = '^(' .. DEST .. ') (%S+ %d+ %d+)$'
-- A version 2 reference's request id and index; the first words of one.
local V2_REF = '^' .. DEST .. ' (%S+) (%d+) %d+ %d+ %d+$'
local V2_HEAD = '^' .. DEST .. ' '

-- The request id of any form but version 1 (nil for version 1); the
-- version 3 forms, the common ones, first. (The patterns are made once:
-- a pattern made in a call is a new string each postback.)
local function rid_of(x)
  return string.match(x, '^(%S+) %d+$') or string.match(x, '^(%S+) %d+%-%d+$') or
         string.match(x, '^(%S+) %d+ %d+$') or string.match(x, V2_REF)
end

-- A request header's enqueue time in ms (job.h: "2\t<template>\t<ms>..."),
-- nil for a header of another form.
local function header_enqueued_ms(h)
  return tonumber(string.match(h, '^2\t[^\t]*\t(%d+)'))
end

-- The client a request header names (job.h: "2\t<G|P>\t<ms>\t<client>\t
-- <template>"; "" for a request without a key), nil for a header of
-- another form.
local function header_client(h)
  return string.match(h, '^2\t[^\t]*\t%d+\t([^\t]*)\t')
end

-- The set of what an agent holds of destination d: the agent's held key
-- ("<p>:held:<agent>", which lists its destinations) then ":<d>" (keys.h).
local function held_key(held, d)
  return held .. ':' .. d
end

-- How many postbacks one agent holds: its version 1 processing list and
-- its held sets.
local function held_count(processing, held)
  local n = redis.call('LLEN', processing)
  for _, d in ipairs(redis.call('SMEMBERS', held)) do
    n = n + redis.call('SCARD', held_key(held, d))
  end
  return n
end

-- The queue's size, what max_queue_size bounds: the count of references
-- waiting in the destinations' queues plus the version 1 queue's length.
local function queue_size(waiting, v1_queue)
  return tonumber(redis.call('GET', waiting) or '0') + redis.call('LLEN', v1_queue)
end

-- d has postbacks to take: into ready, scored now unless it is there
-- already. Destinations are taken from lowest score first, and one taken
-- from is scored anew (take.lua), so turns go in the order destinations
-- became ready or were last served: one that becomes ready again (a retry
-- come due) waits its turn behind those already waiting.
local function make_ready(ready, d, now)
  redis.call('ZADD', ready, 'NX', now, d)
end

-- cmd key x1 x2 ... for every x of xs, in slices: Lua 5.1's unpack takes
-- at most a few thousand values.
local SLICE = 1000
local function call_sliced(cmd, key, xs)
  for b = 1, #xs, SLICE do
    redis.call(cmd, key, unpack(xs, b, math.min(b + SLICE - 1, #xs)))
  end
end

-- Lanes. A destination's postbacks wait in a lane per client, so that
-- the destination's turns are shared between its clients (take.lua) and
-- one client's backlog does not stand in front of another's postbacks:
-- client c's lane of d is "<p>:q:<d>:<c>"; the lane of requests without a
-- client key (c = "", and what a release before lanes queued) is
-- "<p>:q:<d>". "<p>:lanes:<d>" lists the clients whose lane of d holds
-- something, once each, in the order of their turns; and for the turns
-- between clients (take.lua), "<p>:cready:<c>" holds the destinations
-- where c's lane holds something, and "<p>:clients-ready" the clients that
-- have one. L names the stems and that key: { q = "<p>:q:", l =
-- "<p>:lanes:", r = "<p>:r:", c = "<p>:cready:", cr = "<p>:clients-ready" }
-- (keys.h); the scripts that only read lanes need q and l.
local function lane_key(L, d, c)
  if c == '' then return L.q .. d end
  return L.q .. d .. ':' .. c
end

-- Every lane of d, as its clients: those listed, and the one without a
-- client, listed or not (a release before lanes did not list it), for
-- the scripts that read them all.
local function lanes_of(L, d)
  local lanes = redis.call('LRANGE', L.l .. d, 0, -1)
  local listed = {}
  for _, c in ipairs(lanes) do listed[c] = true end
  if not listed[''] then lanes[#lanes + 1] = '' end
  return lanes
end

-- The client of a reference or run (from its request's header), "" for
-- a request without a key, gone, or of another form. seen caches it by
-- request id within one call.
local function client_of(L, x, seen)
  local rid = rid_of(x)
  if not rid then return '' end
  if seen and seen[rid] then return seen[rid] end
  local h = redis.call('HGET', L.r .. rid, 'h')
  local c = h and header_client(h) or ''
  if seen then seen[rid] = c end
  return c
end

-- Client c's lane of d holds something now: listed in d's lanes (at the
-- back: its turn comes after those waiting), d among c's ready
-- destinations and c among the clients with one (unless already there).
local function lane_listed(L, d, c, now)
  redis.call('RPUSH', L.l .. d, c)
  redis.call('ZADD', L.c .. c, 'NX', now, d)
  redis.call('ZADD', L.cr, 'NX', now, c)
end

-- ... and holds nothing any more: d leaves c's ready destinations, and c
-- the clients' when that was its last (its entry in d's lanes is the
-- caller's: take.lua pops it).
local function lane_emptied(L, d, c)
  redis.call('ZREM', L.c .. c, d)
  if redis.call('ZCARD', L.c .. c) == 0 then redis.call('ZREM', L.cr, c) end
end

-- xs into client c's lane of d, at its tail (push 'RPUSH') or head
-- ('LPUSH'); a lane that was empty is listed (lane_listed), and d becomes
-- ready (make_ready).
local function lane_push(L, d, c, push, xs, ready, now)
  local len = 0
  for b = 1, #xs, SLICE do
    len = redis.call(push, lane_key(L, d, c), unpack(xs, b, math.min(b + SLICE - 1, #xs)))
  end
  if len == #xs then lane_listed(L, d, c, now) end
  make_ready(ready, d, now)
end

-- Back to a queue: a version 2 reference or a scheduled retry (as a
-- version 3 reference) to its client's lane of its destination
-- (lane_push), at the head (push 'LPUSH': handed back or reclaimed
-- untried, it waited longest) or the tail ('RPUSH': a due retry, so that
-- the probes of an open breaker try one parked postback after another,
-- not the same one until it is dead). A version 1 job goes to the version
-- 1 queue. Returns 1 for a reference (the caller counts those into the
-- waiting count), 0 for a version 1 job. Never given a bare version 3
-- reference: it does not say where it goes.
local function route(x, L, push, v1_queue, ready, now, seen)
  local d, ref = string.match(x, SCHED)
  if d then x = ref else d = string.match(x, V2) end
  if not d then redis.call('RPUSH', v1_queue, x) return 0 end
  lane_push(L, d, client_of(L, x, seen), push, { x }, ready, now)
  return 1
end

-- A destination's breaker (keys.h: "<p>:dest:<d>", fields state, fails,
-- until, url, reason, probe, rate). Opened: no agent takes from d until
-- untl (its score in ready); url is written when given. Whoever writes
-- one calls breaker_keep after.
local function breaker_open(k, ready, d, untl, reason, url)
  if url then
    redis.call('HSET', k, 'state', 'open', 'until', untl, 'url', url, 'reason', reason)
  else
    redis.call('HSET', k, 'state', 'open', 'until', untl, 'reason', reason)
  end
  redis.call('ZADD', ready, 'XX', untl, d)
end

-- Closed: its failures forgotten, d ready at once (now).
local function breaker_close(k, ready, d, now)
  redis.call('HSET', k, 'state', 'closed', 'fails', 0)
  redis.call('ZADD', ready, 'XX', now, d)
end

-- A breaker lives while it says something, so that destinations that
-- failed once (a client can make any number of them) leave nothing behind:
-- an operator's rate keeps it for good; failures, or a state other than
-- closed, keep it twice the breaker's cooldown past its "until" (or past
-- now), after which Redis forgets it (and so the failures it counted:
-- failures farther apart than that are not "in a row"); a closed one with
-- no failures and no rate is removed at once (every field: the ACL users
-- delete no key, and a hash without fields is gone).
local BREAKER_FIELDS = { 'state', 'fails', 'until', 'url', 'reason', 'probe', 'rate' }
local function breaker_keep(k, now, cooldown)
  local linger = 2 * cooldown
  local b = redis.call('HMGET', k, 'state', 'fails', 'until', 'rate')
  if b[4] then
    redis.call('PERSIST', k)
  elseif (not b[1] or b[1] == 'closed') and (not b[2] or b[2] == '0') then
    redis.call('HDEL', k, unpack(BREAKER_FIELDS))
  else
    redis.call('PEXPIRE', k, math.max(tonumber(b[3] or '0') - now, 0) + linger)
  end
end

-- Script body follows.
