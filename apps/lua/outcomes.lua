-- outcomes.lua: what became of postbacks an agent held, any number of
-- them in one call.
--
-- Why one atomic step: a postback leaves the agent's held set and goes to
-- exactly one next place (delivered and forgotten, scheduled again, a dead
-- letter, or back to its queue) with its request's count and its
-- destination's breaker, so that no failover or crash can leave it in two
-- places or none. One call for many postbacks: one script run, one
-- MULTI/EXEC to the replicas and the AOF, where a call per postback cost
-- more in the calls than in their work (measured: 33 us a call, 8 of
-- them in its commands).
--
-- Records, from ARGV[11], a kind letter and its fields:
--   P d                                   the records up to the next P are
--                                         of destination d, held in the
--                                         set held_key(held, d); "" for
--                                         version 1 jobs (the list)
--   A x sig                               delivered
--   R x next delay pause sig name reason  retry: next is what is scheduled
--                                         (x with one attempt more), due in
--                                         delay ms; pause > 0 pauses the
--                                         destination (a 429)
--   D x entry sig name reason             dead letter
--   H x                                   handed back untried
-- sig is what the attempt says of its destination: "ok", "fail", "park"
-- (a 410 under the destination's policy on_410=park: R with pause the
-- park's length; the breaker opens for that long, until an operator
-- closes it) or "".
-- Each first removes x from where it is held and does nothing more if it
-- was not there (a failover lost the take: x is back in its queue). A
-- set's members go with one SREM a call, after one SMISMEMBER: what
-- crosses to the replicas and into the AOF is the references, not a
-- command each.
--
-- Writes: the held sets, scheduled, dead, the lanes, ready, the breakers,
-- the requests' counts (a request's hash and data go with its last
-- postback) and their clients' (counts), the waiting count, and the
-- last outcomes of a postback being retried (its request's field "a<i>":
-- remember below).
-- Returns an integer per record but P: 0 not there, 1 done, 2 done and
-- the breaker opened, 3 done and the breaker closed; an error for a
-- record of an unknown kind (before anything is written).
--
-- caller: agent (pb-agent's Redis user, whose permissions it runs with)
-- flags: allow-oom (what is delivered is deleted: the way out of a full Redis).

local v1_processing, v1_queue, ready, waiting, scheduled, dead, counts =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local rstem = ARGV[1]                  -- "<p>:r:"
local dstem = ARGV[2]                  -- "<p>:d:"
local bstem = ARGV[3]                  -- "<p>:dest:"
local qstem = ARGV[4]                  -- "<p>:q:"
local threshold = tonumber(ARGV[5])    -- failures in a row that open a breaker
local cooldown = tonumber(ARGV[6])     -- ms an opened breaker stays open
local held = ARGV[7]                   -- "<p>:held:<agent>"
local lstem = ARGV[8]                  -- "<p>:lanes:"
local crstem = ARGV[9]                 -- "<p>:cready:"
local clients_ready = ARGV[10]         -- "<p>:clients-ready"
local RECORDS = 11
local L = { q = qstem, l = lstem, r = rstem, c = crstem, cr = clients_ready }
local clients = {}                     -- client_of's, by request id
local now = now_ms()

-- One fewer left of its request, counted here and written once a request
-- at the end; its header and data go with its last postback (keys.h). A
-- request already gone comes back as n < 0: gone again at once.
local ended = {}
local function finish(x)
  local rid = rid_of(x)
  if rid then ended[rid] = (ended[rid] or 0) + 1 end
end

-- A destination's breaker told what an attempt said of it (retry.h): "ok"
-- closes an open or half-open breaker and makes the destination ready at
-- once; "fail" counts, and the threshold'th failure in a row, or a failed
-- probe, opens it: its score in ready becomes the cool-down's end, so no
-- agent takes from it until then. A destination known closed and clean in
-- this call is not read again: a healthy batch costs one read a
-- destination.
local clean = {}
local function breaker(d, sig, name, reason, pause)
  if not d or sig == '' then return 1 end
  if sig == 'park' then
    clean[d] = nil
    local k = bstem .. d
    breaker_open(k, ready, d, now + pause, reason, name)
    breaker_keep(k, now, cooldown)
    return 2
  end
  if sig == 'ok' and clean[d] then return 1 end
  local k = bstem .. d
  local b = redis.call('HMGET', k, 'state', 'fails')
  if sig == 'ok' then
    clean[d] = true
    if b[1] and b[1] ~= 'closed' then
      breaker_close(k, ready, d, now)
      breaker_keep(k, now, cooldown)
      return 3
    end
    if b[2] and b[2] ~= '0' then
      redis.call('HSET', k, 'fails', 0)
      breaker_keep(k, now, cooldown)
    end
    return 1
  end
  clean[d] = nil
  local fails = redis.call('HINCRBY', k, 'fails', 1)
  local r = 1
  if b[1] == 'half' or (b[1] ~= 'open' and fails >= threshold) then
    breaker_open(k, ready, d, now + cooldown, reason, name)
    r = 2
  end
  breaker_keep(k, now, cooldown)
  return r
end

-- What pbctl show tells of a postback being retried: its last HISTORY
-- failed attempts, "<ms> <attempt> <reason>" each, newest last, one a
-- line, in its request's hash as field "a<i>" (keys.h). Bounded (at most
-- HISTORY lines of at most REASON bytes of reason) and paid only on a
-- failure: a postback delivered at its first attempt writes nothing, and
-- one delivered or dead after retries drops the field (a dead letter says
-- its last error itself). Version 2 and 3 references only.
local HISTORY, REASON = 5, 80
local function ref_at(x)
  local rid, i = string.match(x, '^(%S+) (%d+)$')
  if not rid then rid, i = string.match(x, '^(%S+) (%d+) %d+$') end
  if not rid then rid, i = string.match(x, V2_REF) end
  return rid, i
end
--
-- A line that cannot be read or written (a key of the wrong type, a
-- permission missing) is skipped, never an error: by the second pass every
-- record's reference has left its held set, so an error there would leave
-- the rest of the batch's postbacks in no place at all. Hence pcall.
local function remember(x, attempt, reason)
  local rid, i = ref_at(x)
  if not rid or redis.pcall('EXISTS', rstem .. rid) ~= 1 then return end
  local old = redis.pcall('HGET', rstem .. rid, 'a' .. i)
  local lines = {}
  for line in string.gmatch(type(old) == 'string' and old or '', '[^\n]+') do
    lines[#lines + 1] = line
  end
  while #lines >= HISTORY do table.remove(lines, 1) end
  reason = string.gsub(string.sub(reason, 1, REASON), '\n', ' ')
  lines[#lines + 1] = now .. ' ' .. attempt .. ' ' .. reason
  redis.pcall('HSET', rstem .. rid, 'a' .. i, table.concat(lines, '\n'))
end
local function forget(x)
  local rid, i = ref_at(x)
  -- Only a postback tried before has the field: a first delivery pays nothing.
  if rid and (string.match(x, ' %d+ %d+$') or string.match(x, V2_HEAD)) then
    redis.pcall('HDEL', rstem .. rid, 'a' .. i)
  end
end

-- First pass: which record's x is held where, and is it there.
local fields = { A = 3, R = 8, D = 6, H = 2, P = 2 }
local dest, there, sets, i = {}, {}, {}, RECORDS
local cur = ''
while i <= #ARGV do
  local kind, x = ARGV[i], ARGV[i + 1]
  local n = fields[kind]
  if not n then return redis.error_reply('ERR outcome kind ' .. kind) end
  if kind == 'P' then
    cur = x
  elseif cur == '' then
    there[i] = redis.call('LREM', v1_processing, -1, x) > 0
  else
    dest[i] = cur
    local s = sets[cur] or { xs = {}, at = {}, seen = {} }
    sets[cur] = s
    if not s.seen[x] then
      s.seen[x] = true
      s.xs[#s.xs + 1], s.at[#s.at + 1] = x, i
    end
  end
  i = i + n
end
for d, s in pairs(sets) do
  local k, gone = held_key(held, d), {}
  for b = 1, #s.xs, SLICE do
    local slice = { unpack(s.xs, b, math.min(b + SLICE - 1, #s.xs)) }
    local is = redis.call('SMISMEMBER', k, unpack(slice))
    for j, v in ipairs(is) do
      if v == 1 then there[s.at[b + j - 1]] = true; gone[#gone + 1] = slice[j] end
    end
  end
  call_sliced('SREM', k, gone)
  if #gone > 0 and redis.call('EXISTS', k) == 0 then redis.call('SREM', held, d) end
end

-- Second pass: the work of each record whose x was there.
local out, back = {}, 0
i = RECORDS
while i <= #ARGV do
  local kind, x = ARGV[i], ARGV[i + 1]
  local n = fields[kind]
  local r = 0
  if kind == 'P' then
    r = nil
  elseif there[i] then
    local d = dest[i] or string.match(x, V2)
    if kind == 'A' then
      forget(x)
      finish(x)
      r = breaker(d, ARGV[i + 2], '', '')
    elseif kind == 'R' then
      redis.call('ZADD', scheduled, now + tonumber(ARGV[i + 3]), ARGV[i + 2])
      -- (next, scheduled or version 2: the attempts are its fourth word)
      remember(x, string.match(ARGV[i + 2], '^' .. DEST .. ' %S+ %d+ (%d+)'), ARGV[i + 7])
      if d and tonumber(ARGV[i + 4]) > 0 then
        redis.call('ZADD', ready, 'XX', 'GT', now + tonumber(ARGV[i + 4]), d)
      end
      r = breaker(d, ARGV[i + 5], ARGV[i + 6], ARGV[i + 7], tonumber(ARGV[i + 4]))
    elseif kind == 'D' then
      redis.call('LPUSH', dead, ARGV[i + 2])
      forget(x)
      finish(x)
      r = breaker(d, ARGV[i + 3], ARGV[i + 4], ARGV[i + 5])
    -- Handed back untried: to the head of its client's lane, it waited
    -- longest.
    elseif dest[i] then
      lane_push(L, d, client_of(L, x, clients), 'LPUSH', { x }, ready, now)
      back, r = back + 1, 1
    else
      back, r = back + route(x, L, 'LPUSH', v1_queue, ready, now, clients), 1
    end
  end
  if r then out[#out + 1] = r end
  i = i + n
end
-- Each request's count, and its client's (enqueue.lua: a share per
-- client), counted down by what ended of it; a client with none left
-- leaves the counts.
local by_client = {}
for rid, n in pairs(ended) do
  local x = redis.call('HMGET', rstem .. rid, 'h', 'n')
  local client = x[1] and header_client(x[1])
  if client then by_client[client] = (by_client[client] or 0) + n end
  -- Its last postbacks ended: the request goes (a request of one object
  -- has no data key: job.h), else its count goes down.
  if tonumber(x[2] or '0') <= n then
    redis.call('DEL', rstem .. rid, dstem .. rid)
  else
    redis.call('HINCRBY', rstem .. rid, 'n', -n)
  end
end
for client, n in pairs(by_client) do
  if redis.call('HINCRBY', counts, client, -n) <= 0 then
    redis.call('HDEL', counts, client)
  end
end
if back > 0 then redis.call('INCRBY', waiting, back) end
return out
