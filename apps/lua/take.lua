-- take.lua: an agent takes up to `want` postbacks, fairly across the ready
-- destinations, only while it is registered.
--
-- Why one atomic step: a reference leaves its destination's queue and
-- enters the agent's held set together, so that a failover or a crash
-- never leaves it in neither (lost) or both (delivered twice); and the
-- registration check and the take cannot be split by a reaper, which
-- returns the held sets of an agent whose heartbeat expired and forgets
-- the agent: postbacks taken after that would sit where no reaper and no
-- `pbctl ids` look.
--
-- Reads: the heartbeat, the agents set, ready, the destinations' breakers
-- and queues, the requests' headers and data. Writes: the queues (popped),
-- the held sets, ready (scores), half-open breakers, the waiting count.
--
-- Returns triples (reference, data or false, request header or false):
-- version 1 jobs first, each with false, false; then per destination a
-- marker ("@<d>", false, false) and its references, the header only with
-- a request's first reference of the reply ("" after that); then the
-- asks for the gate ("?<d>", what, ms; below). Ends with
-- "CAPPED" when the agent wanted more and a destination with postbacks
-- waiting gave none for want of the agent's room: the agent then waits
-- for a slot to free, not for news of new postbacks. With nothing at all
-- to hand, the reply is the ms until the next destination's turn, if
-- one is ready, or empty. An error
-- "NOTREGISTERED ..." when the agent is not registered.
--
-- Destinations come lowest score first (the time each became ready:
-- make_ready); one taken from is scored now, behind those that waited, so
-- turns rotate across calls. A
-- destination whose breaker is open or half-open is skipped until its
-- "until"; then one postback is taken as the probe, and its score pushed
-- past the probe's time, so that one probe at a time tests it. One with a
-- rate (requests/s) gives one postback a take and its next turn 1/rate
-- later. With several shards (shared) a shard may not probe or pace on
-- its own word: the turn is asked of the gate (gate.lua, on the first
-- shard), which grants one probe and one paced take at a time for the
-- whole cluster. Such a destination is answered as an ask triple
-- ("?<d>", "probe" or "pace", ms: the probe's time or the pace, what the
-- gate is asked for) and left until the gate's answer
-- comes with the agent's next take (answers): granted, one postback is
-- taken (a probe, or a paced take whose next turn is the gate's pace);
-- refused, the destination waits as long as the gate said.
-- A postback's data is cut from its request's data: version 2 by the
-- offset and length in its reference, version 3 by the data's index.
--
-- caller: agent (pb-agent's Redis user, whose permissions it runs with)
-- flags: allow-oom (agents drain a full Redis: a take moves references, it adds
-- little).

local ready, v1_processing, heartbeat, agents, v1_queue, waiting =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local want = tonumber(ARGV[1])        -- at most this many postbacks
local alive_ms = tonumber(ARGV[2])    -- the heartbeat must live this long yet
local agent = ARGV[3]                 -- this agent's id
local cap = tonumber(ARGV[4])         -- room an agent has per destination
local qstem = ARGV[5]                 -- "<p>:q:"
local rstem = ARGV[6]                 -- "<p>:r:"
local bstem = ARGV[7]                 -- "<p>:dest:"
local probe_ms = tonumber(ARGV[8])    -- how long a probe may take
local dstem = ARGV[9]                 -- "<p>:d:"
local held = ARGV[10]                 -- "<p>:held:<agent>"
local shared = ARGV[11]                -- "1": several shards (the gate's probes, paces)
local answers = tonumber(ARGV[12])    -- how many of the gate's answers follow
local lstem = ARGV[13]                -- "<p>:lanes:"
local crstem = ARGV[14]               -- "<p>:cready:"
local clients_ready = ARGV[15]        -- "<p>:clients-ready"
-- ARGV[16..]: the gate's answers to this agent's asks, triples of
-- destination id, granted ("1" or "0") and ms (gate.lua); then pairs of
-- destination id and the room this agent has left for it (fewer than cap
-- while it delivers some of its postbacks).
local ANSWERS = 16
local L = { q = qstem, l = lstem, r = rstem, c = crstem, cr = clients_ready }
local ROOMS = ANSWERS + 3 * answers

if redis.call('PTTL', heartbeat) < alive_ms or
   redis.call('SISMEMBER', agents, agent) == 0 then
  return redis.error_reply('NOTREGISTERED no live heartbeat for ' .. agent)
end
local now = now_ms()
local out = {}
while want > 0 do
  local job = redis.call('LMOVE', v1_queue, v1_processing, 'RIGHT', 'LEFT')
  if not job then break end
  out[#out + 1] = job; out[#out + 1] = false; out[#out + 1] = false
  want = want - 1
end
if want == 0 then return out end

local room, turn, next_turn, seen = {}, {}, {}, {}
for a = ROOMS, #ARGV, 2 do room[ARGV[a]] = tonumber(ARGV[a + 1]) end
-- The gate's answers: granted, the destination is looked at below
-- whatever its score (it was moved on when asked); refused, it waits.
local granted, looked = {}, {}
for a = ANSWERS, ROOMS - 1, 3 do
  local d, ms = ARGV[a], tonumber(ARGV[a + 2])
  if ARGV[a + 1] == '1' then granted[d] = ms
  else redis.call('ZADD', ready, 'XX', now + ms, d) end
end
local asks = {}
local function ask(d, what, ms)
  asks[#asks + 1] = '?' .. d; asks[#asks + 1] = what; asks[#asks + 1] = ms
  room[d], next_turn[d] = 0, now + ms
  redis.call('ZADD', ready, 'XX', now + ms, d)
end
local function look(d)
  if looked[d] then return end
  looked[d] = true
  local k = bstem .. d
  local b = redis.call('HMGET', k, 'state', 'until', 'rate')
  seen[#seen + 1] = d
  local untl, rate = tonumber(b[2] or '0'), tonumber(b[3] or '0')
  room[d] = room[d] or cap
  if b[1] == 'open' or b[1] == 'half' then
    if now < untl then
      room[d], next_turn[d] = 0, untl
      redis.call('ZADD', ready, 'XX', untl, d)
    elseif shared == '1' and not granted[d] then
      if room[d] > 0 then ask(d, 'probe', probe_ms) end
    elseif room[d] > 0 then
      room[d], next_turn[d] = 1, now + probe_ms
      redis.call('HSET', k, 'state', 'half', 'until', next_turn[d], 'probe', agent)
    end
  elseif rate > 0 and room[d] > 0 then
    local pace = math.ceil(1000 / rate)
    if shared == '1' and not granted[d] then ask(d, 'pace', pace)
    else room[d], next_turn[d] = 1, now + (granted[d] or pace) end
  end
  if room[d] > 0 then turn[#turn + 1] = d end
end
for d in pairs(granted) do
  if redis.call('ZSCORE', ready, d) then look(d) end
end

-- Clients first (docs/design.md, "Turns between clients"): the clients
-- with a destination ready, the longest unserved first (clients-ready),
-- each with its first ready destinations (its cready zset; WINDOW over
-- the clients, at least a few each), one of each client before the
-- second of any; so that a client whose
-- destinations are few is not behind another's thousands. owner: the
-- client a destination is taken for (its first), the rounds below give
-- each client an equal part. A destination a client lists that waits (its
-- score in ready is ahead: an open breaker, a pause, a rate) moves to
-- that time in the client's list too, out of the client's window; one
-- whose lane is gone (a stale entry) leaves it.
local CLIENTS, WINDOW, FEW = 32, 100, 4
local owner, listed_by, cands, lists = {}, {}, {}, {}
local clients = redis.call('ZRANGEBYSCORE', L.cr, '-inf', now, 'LIMIT', 0, CLIENTS)
local per_client = math.max(FEW, math.floor(WINDOW / math.max(#clients, 1)))
for i, c in ipairs(clients) do
  lists[i] = redis.call('ZRANGEBYSCORE', L.c .. c, '-inf', now, 'LIMIT', 0, per_client)
end
for k = 1, per_client do
  for i, c in ipairs(clients) do
    local d = lists[i][k]
    if d then
      if not listed_by[d] then listed_by[d] = {}; cands[#cands + 1] = d end
      table.insert(listed_by[d], c)
    end
  end
end
for _, d in ipairs(cands) do
  local s = tonumber(redis.call('ZSCORE', ready, d))
  if s and s > now and not granted[d] then
    for _, c in ipairs(listed_by[d]) do redis.call('ZADD', L.c .. c, 'XX', s, d) end
  elseif s then
    owner[d] = owner[d] or listed_by[d][1]
    look(d)
  else
    for _, c in ipairs(listed_by[d]) do
      if redis.call('EXISTS', lane_key(L, d, c)) == 0 then lane_emptied(L, d, c) end
    end
  end
end
-- Then ready's own turns, a few: what no client lists (queued by a
-- release before lanes), and the destinations of clients past CLIENTS.
for _, d in ipairs(redis.call('ZRANGEBYSCORE', ready, '-inf', now,
                              'LIMIT', 0, FEW + (#ARGV - ROOMS + 1) / 2)) do
  look(d)
end

-- Triples for refs, in order, after a marker triple ("@<d>", false,
-- false) that says whose they are: the data of a run of one request's
-- postbacks that lie back to back is read with one GETRANGE (version 3:
-- and its offsets with one more) and cut here; a request of one object
-- is one record (job.h), its object read with its header; the header goes
-- with a request's first triple of the reply.
local sent, header, object = {}, {}, {}
-- A request's header and, if it is one record, its object: once a reply.
local function record(r)
  if header[r] == nil then
    local x = redis.call('HMGET', rstem .. r, 'h', 'o')
    header[r], object[r] = x[1] or false, x[2] or false
  end
end
local function cut(d, refs)
  out[#out + 1] = '@' .. d; out[#out + 1] = false; out[#out + 1] = false
  local rid, off, len, idx = {}, {}, {}, {}
  for i, ref in ipairs(refs) do
    local r, o, l = string.match(ref, '^%x+ (%S+) %d+ %d+ (%d+) (%d+)$')
    if r then
      rid[i], off[i], len[i] = r, tonumber(o), tonumber(l)
    else
      local r3, x = string.match(ref, '^(%S+) (%d+)$')
      if not r3 then r3, x = string.match(ref, '^(%S+) (%d+) %d+$') end
      rid[i], idx[i] = r3 or false, tonumber(x)
    end
  end
  local i = 1
  while i <= #refs do
    local j, r = i, rid[i]
    local chunk = ''
    if r then record(r) end
    if idx[i] and object[r] then
      -- One record: its one object is all its data.
      if idx[i] == 0 then off[i], len[i], chunk = 0, #object[r], object[r] end
    elseif idx[i] then
      while j < #refs and rid[j + 1] == r and idx[j + 1] == idx[j] + 1 do j = j + 1 end
      local ix = redis.call('GETRANGE', dstem .. r, 4 * idx[i], 4 * (idx[j] + 2) - 1)
      if #ix == 4 * (j - i + 2) then
        local at = {}
        for k = 0, j - i + 1 do at[k] = struct.unpack('<I4', ix, 4 * k + 1) end
        for k = i, j do off[k], len[k] = at[k - i], at[k - i + 1] - at[k - i] end
      end
    elseif r then
      while j < #refs and rid[j + 1] == r and not idx[j + 1] and
            off[j + 1] == off[j] + len[j] do j = j + 1 end
    end
    if r and chunk == '' and off[i] and len[j] and len[j] >= 0 then
      chunk = redis.call('GETRANGE', dstem .. r, off[i], off[j] + len[j] - 1)
    end
    for k = i, j do
      local at = off[k] and off[k] - off[i]
      local data = at and string.sub(chunk, at + 1, at + len[k]) or ''
      out[#out + 1] = refs[k]
      out[#out + 1] = data ~= '' and data or false
      if not r or sent[r] then out[#out + 1] = r and '' or false
      else out[#out + 1] = header[r] end
      if r then sent[r] = true end
    end
    i = j + 1
  end
end

-- Up to n references off the head of queue q: elements whole, and the
-- first references of a run (job.h), whose rest stays at the head. One
-- LRANGE, one LTRIM, an LSET for a run cut.
local function pop(q, n)
  local refs, used, rest = {}, 0, nil
  for _, e in ipairs(redis.call('LRANGE', q, 0, n - 1)) do
    if #refs == n then break end
    local r, a, b = string.match(e, '^(%S+) (%d+)%-(%d+)$')
    if r then
      a, b = tonumber(a), tonumber(b)
      local last = math.min(b, a + n - #refs - 1)
      for x = a, last do refs[#refs + 1] = r .. ' ' .. x end
      if last < b then
        rest = last + 1 == b and (r .. ' ' .. b) or (r .. ' ' .. (last + 1) .. '-' .. b)
        break
      end
    else
      refs[#refs + 1] = e
    end
    used = used + 1
  end
  if used > 0 then redis.call('LTRIM', q, used, -1) end
  if rest then redis.call('LSET', q, 0, rest) end
  return refs
end

-- Up to n references of destination d, its clients' lanes in turns
-- (prelude.lua): each listed lane gets an equal part of what is left (the
-- first ones one more when it does not divide), what a lane cannot use
-- goes to the lanes after it, and the lanes served go to the back of the
-- list, so that d's next take starts with those this one did not reach.
-- A lane left empty leaves the list. So a client with one postback for a
-- destination waits one turn of the destination's, not behind another
-- client's backlog for it. Returns the references and whether d has more.
local served_clients = {}
local function pop_lanes(d, n)
  local lk = L.l .. d
  local lanes = redis.call('LRANGE', lk, 0, n - 1)
  local whole = #lanes < n                -- every lane listed is in hand
  local listed = {}
  for _, c in ipairs(lanes) do listed[c] = true end
  -- The lane without a client as a release before lanes left it, unlisted.
  if whole and not listed[''] and redis.call('LLEN', L.q .. d) > 0 then
    lane_listed(L, d, '', now)
    lanes[#lanes + 1] = ''
  end
  local refs, served, kept = {}, 0, {}
  for k, c in ipairs(lanes) do
    if #refs == n then break end
    local part = math.ceil((n - #refs) / (#lanes - k + 1))
    local q = lane_key(L, d, c)
    local got = pop(q, part)
    for _, ref in ipairs(got) do refs[#refs + 1] = ref end
    served = k
    served_clients[c] = true
    -- The client's turn at d: it goes behind its other destinations (a
    -- write only where there are others: one client, one partner is the
    -- common case, and every write crosses to the replicas and the AOF).
    if #got == part and redis.call('EXISTS', q) == 1 then
      kept[#kept + 1] = c
      if redis.call('ZCARD', L.c .. c) > 1 then redis.call('ZADD', L.c .. c, 'XX', now, d) end
    else
      lane_emptied(L, d, c)
    end
  end
  -- Every lane served and none emptied: the order stands, nothing to write.
  if not (served == #lanes and #kept == served and whole) and served > 0 then
    redis.call('LPOP', lk, served)
    if #kept > 0 then redis.call('RPUSH', lk, unpack(kept)) end
  end
  local more = #kept > 0 or served < #lanes or
               (not whole and redis.call('EXISTS', lk) == 1)
  return refs, more
end

-- Rounds: each client with a destination in turn gets an equal part of
-- what is still wanted (the destinations no client brought count as one
-- client), split evenly between its destinations; moved with pop_lanes()
-- and one SADD: a few calls a destination instead of one a postback.
local groups, gorder = {}, {}
for _, d in ipairs(turn) do
  local c = owner[d] or false
  if groups[c] == nil then groups[c] = {}; gorder[#gorder + 1] = c end
  table.insert(groups[c], d)
end
local taken, took, moved = 0, {}, true
local function take_from(d, n)
  local refs, more = pop_lanes(d, n)
  if #refs > 0 then
    redis.call('SADD', held_key(held, d), unpack(refs))
    redis.call('SADD', held, d)
    cut(d, refs)
    room[d], want, taken = room[d] - #refs, want - #refs, taken + #refs
    took[d], moved = true, true
  end
  if not more then
    redis.call('ZREM', ready, d)
    room[d], took[d], next_turn[d] = 0, nil, now
  end
end
while want > 0 and moved do
  moved = false
  local active, ds = 0, {}
  for g, c in ipairs(gorder) do
    ds[g] = {}
    for _, d in ipairs(groups[c]) do if room[d] > 0 then table.insert(ds[g], d) end end
    if #ds[g] > 0 then active = active + 1 end
  end
  local cshare = math.max(1, math.floor(want / math.max(active, 1)))
  for g = 1, #gorder do
    local share = math.max(1, math.floor(cshare / math.max(#ds[g], 1)))
    local left = cshare                   -- the group's part of this round
    for _, d in ipairs(ds[g]) do
      if want > 0 and left > 0 and room[d] > 0 then
        local before = taken
        take_from(d, math.min(share, left, room[d], want, 512))
        left = left - (taken - before)
      end
    end
  end
end
for d in pairs(took) do redis.call('ZADD', ready, 'XX', next_turn[d] or now, d) end
-- The clients served go behind the others (when there are others).
if next(served_clients) and redis.call('ZCARD', L.cr) > 1 then
  for c in pairs(served_clients) do redis.call('ZADD', L.cr, 'XX', now, c) end
end
if taken > 0 then redis.call('DECRBY', waiting, taken) end
for _, x in ipairs(asks) do out[#out + 1] = x end
if want > 0 then
  for _, d in ipairs(seen) do
    if room[d] <= 0 and not next_turn[d] then out[#out + 1] = 'CAPPED' return out end
  end
end
-- Nothing to hand: when the next turn comes (ms from now), so that the
-- agent waits that long and not a whole wait (a paced destination's next
-- postback, an open breaker's probe).
if #out == 0 then
  local first = redis.call('ZRANGE', ready, 0, 0, 'WITHSCORES')
  if first[2] then out[1] = math.max(tonumber(first[2]) - now, 0) end
end
return out
