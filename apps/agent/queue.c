#include "queue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pb.h"

/*
 * The forms of job.h, told apart by their words: DEST a destination id;
 * a version 2 reference (six words, the destination first); a version 3
 * reference (two or three) or run (two, "<first>-<last>"); a version 3
 * retry as scheduled (four, the destination first). A version 1 job has
 * tabs, not spaces. rid_of: the request id of any but version 1.
 */
#define FORMS \
	"local DEST = string.rep('%x', 16)\n" \
	"local V2 = '^(' .. DEST .. ') %S+ %d+ %d+ %d+ %d+$'\n" \
	"local SCHED = '^(' .. DEST .. ') (%S+ %d+ %d+)$'\n" \
	"local function rid_of(x)\n" \
	"  return string.match(x, '^' .. DEST .. ' (%S+) %d+ %d+ %d+ %d+$') or\n" \
	"         string.match(x, '^(%S+) %d+$') or string.match(x, '^(%S+) %d+ %d+$') or\n" \
	"         string.match(x, '^(%S+) %d+%-%d+$')\n" \
	"end\n"

/*
 * Back to a queue: a version 2 reference or a scheduled retry (as a
 * version 3 reference) to its destination's queue, at its head (push
 * LPUSH: handed back or reclaimed untried, it waited longest) or its tail
 * (RPUSH: a due retry, so that the probes of an open breaker try one
 * parked postback after another, not the same one until it is dead); the
 * destination becomes ready, unless a later score says otherwise. A
 * version 1 job goes to the version 1 queue. KEYS[2] the version 1 queue,
 * KEYS[3] ready, KEYS[4] the waiting count; qstem "<p>:q:". Returns 1 for
 * a reference. Never given a bare version 3 reference: it does not say
 * where it goes.
 */
#define ROUTE \
	FORMS \
	"local function route(x, qstem, push)\n" \
	"  local d, ref = string.match(x, SCHED)\n" \
	"  if d then x = ref else d = string.match(x, V2) end\n" \
	"  if not d then redis.call('RPUSH', KEYS[2], x) return 0 end\n" \
	"  redis.call(push, qstem .. d, x)\n" \
	"  redis.call('ZADD', KEYS[3], 'NX', 0, d)\n" \
	"  return 1\n" \
	"end\n"

/*
 * Outcomes, any number of postbacks' in one call: one script run, one
 * MULTI/EXEC to the replicas and the AOF, where a call per postback cost
 * more in the calls than in their work (measured: 33 us a call, 8 of
 * them in its commands).
 *
 * KEYS[1] the version 1 processing list, KEYS[2..4] as ROUTE (the version 1
 * queue, ready, the waiting count), KEYS[5] scheduled, KEYS[6] dead;
 * ARGV[1] "<p>:r:", ARGV[2] "<p>:d:", ARGV[3] "<p>:dest:", ARGV[4]
 * "<p>:q:", ARGV[5] the breaker's threshold, ARGV[6] its cool-down (ms),
 * ARGV[7] "<p>:held:<agent>"; from ARGV[8], records of a kind letter and
 * its fields:
 *   P d                                   the records up to the next P are
 *                                         of destination d, held in the set
 *                                         <p>:held:<agent>:<d>; "" for
 *                                         version 1 jobs (the list)
 *   A x sig                               delivered
 *   R x next delay pause sig name reason  retry: next is what is scheduled
 *                                         (x with one attempt more), due in
 *                                         delay ms; pause > 0 pauses the
 *                                         destination (a 429)
 *   D x entry sig name reason             dead letter
 *   H x                                   handed back untried
 * Each first removes x from where it is held and does nothing more if it
 * was not there (a failover lost the take: x is back in its queue). A
 * set's members go with one SREM a call, after one SMISMEMBER: what
 * crosses to the replicas and into the AOF is the references, not a
 * command each. Returns an integer per record but P: 0 not there, 1 done,
 * 2 done and the breaker opened, 3 done and the breaker closed.
 */
static const char outcomes_lua[] =
	ROUTE
	PB_LUA_NOW_MS
	"local rstem, dstem, bstem, qstem = ARGV[1], ARGV[2], ARGV[3], ARGV[4]\n"
	"local threshold, cooldown = tonumber(ARGV[5]), tonumber(ARGV[6])\n"
	/* One fewer left of its request, counted here and written once a
	 * request at the end; its header and data go with its last postback
	 * (keys.h). A request already gone comes back as n < 0: gone again at
	 * once. */
	"local ended = {}\n"
	"local function finish(x)\n"
	"  local rid = rid_of(x)\n"
	"  if rid then ended[rid] = (ended[rid] or 0) + 1 end\n"
	"end\n"
	/* A destination's breaker (keys.h: <p>:dest:<d>) told what an attempt
	 * said of it (retry.h): "ok" closes an open or half-open breaker and
	 * makes the destination ready at once; "fail" counts, and the
	 * threshold'th failure in a row, or a failed probe, opens it: its score
	 * in ready becomes the cool-down's end, so no agent takes from it until
	 * then. A destination known closed and clean in this call is not read
	 * again: a healthy batch costs one read a destination. */
	"local clean = {}\n"
	"local function breaker(d, sig, name, reason)\n"
	"  if not d or sig == '' then return 1 end\n"
	"  if sig == 'ok' and clean[d] then return 1 end\n"
	"  local k = bstem .. d\n"
	"  local b = redis.call('HMGET', k, 'state', 'fails')\n"
	"  if sig == 'ok' then\n"
	"    clean[d] = true\n"
	"    if b[1] and b[1] ~= 'closed' then\n"
	"      redis.call('HSET', k, 'state', 'closed', 'fails', 0)\n"
	"      redis.call('ZADD', KEYS[3], 'XX', 0, d)\n"
	"      return 3\n"
	"    end\n"
	"    if b[2] and b[2] ~= '0' then redis.call('HSET', k, 'fails', 0) end\n"
	"    return 1\n"
	"  end\n"
	"  clean[d] = nil\n"
	"  local fails = redis.call('HINCRBY', k, 'fails', 1)\n"
	"  if b[1] == 'half' or (b[1] ~= 'open' and fails >= threshold) then\n"
	"    local untl = now + cooldown\n"
	"    redis.call('HSET', k, 'state', 'open', 'until', untl, 'url', name, 'reason', reason)\n"
	"    redis.call('ZADD', KEYS[3], 'XX', untl, d)\n"
	"    return 2\n"
	"  end\n"
	"  return 1\n"
	"end\n"
	/* First pass: which record's x is held where, and is it there. */
	"local fields = { A = 3, R = 8, D = 6, H = 2, P = 2 }\n"
	"local dest, there, sets, i = {}, {}, {}, 8\n"
	"local cur = ''\n"
	"while i <= #ARGV do\n"
	"  local kind, x = ARGV[i], ARGV[i + 1]\n"
	"  local n = fields[kind]\n"
	"  if not n then return redis.error_reply('ERR outcome kind ' .. kind) end\n"
	"  if kind == 'P' then\n"
	"    cur = x\n"
	"  elseif cur == '' then\n"
	"    there[i] = redis.call('LREM', KEYS[1], -1, x) > 0\n"
	"  else\n"
	"    dest[i] = cur\n"
	"    local s = sets[cur] or { xs = {}, at = {}, seen = {} }\n"
	"    sets[cur] = s\n"
	"    if not s.seen[x] then\n"
	"      s.seen[x] = true\n"
	"      s.xs[#s.xs + 1], s.at[#s.at + 1] = x, i\n"
	"    end\n"
	"  end\n"
	"  i = i + n\n"
	"end\n"
	"for d, s in pairs(sets) do\n"
	"  local k, gone = ARGV[7] .. ':' .. d, {}\n"
	"  for b = 1, #s.xs, 1000 do\n"
	"    local slice = { unpack(s.xs, b, math.min(b + 999, #s.xs)) }\n"
	"    local is = redis.call('SMISMEMBER', k, unpack(slice))\n"
	"    for j, v in ipairs(is) do\n"
	"      if v == 1 then there[s.at[b + j - 1]] = true; gone[#gone + 1] = slice[j] end\n"
	"    end\n"
	"  end\n"
	"  for b = 1, #gone, 1000 do\n"
	"    redis.call('SREM', k, unpack(gone, b, math.min(b + 999, #gone)))\n"
	"  end\n"
	"  if #gone > 0 and redis.call('EXISTS', k) == 0 then redis.call('SREM', ARGV[7], d) end\n"
	"end\n"
	/* Second pass: the work of each record whose x was there. */
	"local out, back = {}, 0\n"
	"i = 8\n"
	"while i <= #ARGV do\n"
	"  local kind, x = ARGV[i], ARGV[i + 1]\n"
	"  local n = fields[kind]\n"
	"  local r = 0\n"
	"  if kind == 'P' then\n"
	"    r = nil\n"
	"  elseif there[i] then\n"
	"    local d = dest[i] or string.match(x, V2)\n"
	"    if kind == 'A' then\n"
	"      finish(x)\n"
	"      r = breaker(d, ARGV[i + 2], '', '')\n"
	"    elseif kind == 'R' then\n"
	"      redis.call('ZADD', KEYS[5], now + tonumber(ARGV[i + 3]), ARGV[i + 2])\n"
	"      if d and tonumber(ARGV[i + 4]) > 0 then\n"
	"        redis.call('ZADD', KEYS[3], 'XX', 'GT', now + tonumber(ARGV[i + 4]), d)\n"
	"      end\n"
	"      r = breaker(d, ARGV[i + 5], ARGV[i + 6], ARGV[i + 7])\n"
	"    elseif kind == 'D' then\n"
	"      redis.call('LPUSH', KEYS[6], ARGV[i + 2])\n"
	"      finish(x)\n"
	"      r = breaker(d, ARGV[i + 3], ARGV[i + 4], ARGV[i + 5])\n"
	/* Handed back untried: to the head of its queue, it waited longest. */
	"    elseif dest[i] then\n"
	"      redis.call('LPUSH', qstem .. d, x)\n"
	"      redis.call('ZADD', KEYS[3], 'NX', 0, d)\n"
	"      back, r = back + 1, 1\n"
	"    else\n"
	"      back, r = back + route(x, qstem, 'LPUSH'), 1\n"
	"    end\n"
	"  end\n"
	"  if r then out[#out + 1] = r end\n"
	"  i = i + n\n"
	"end\n"
	"for rid, n in pairs(ended) do\n"
	"  if redis.call('HINCRBY', rstem .. rid, 'n', -n) <= 0 then\n"
	"    redis.call('DEL', rstem .. rid, dstem .. rid)\n"
	"  end\n"
	"end\n"
	"if back > 0 then redis.call('INCRBY', KEYS[4], back) end\n"
	"return out\n";

/* KEYS[1] scheduled, KEYS[2..4] as ROUTE; ARGV[1] limit, ARGV[2] "<p>:q:". */
static const char promote_lua[] =
	ROUTE
	PB_LUA_NOW_MS
	"local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, ARGV[1])\n"
	"local refs = 0\n"
	"for _, x in ipairs(due) do\n"
	"  redis.call('ZREM', KEYS[1], x)\n"
	"  refs = refs + route(x, ARGV[2], 'RPUSH')\n"
	"end\n"
	"if refs > 0 then redis.call('INCRBY', KEYS[4], refs) end\n"
	"return #due\n";

/*
 * KEYS[1] agents set, KEYS[2..4] as ROUTE; ARGV[1] the processing lists'
 * stem, ARGV[2] an agent id to reclaim unconditionally (or ""), ARGV[3]
 * the heartbeats' stem, ARGV[4] "<p>:q:", ARGV[5] "<p>:held:". The
 * per-agent and per-destination keys are derived inside the script: fine
 * on a single master (no Redis Cluster here; a split by destination keeps
 * each script on one master). An agent's version 1 list (and what an
 * agent before version 3 held there) goes through ROUTE; its held sets'
 * references go to the head of their destination's queue.
 */
static const char reap_lua[] =
	ROUTE
	"local moved, refs = 0, 0\n"
	"local function reclaim(id)\n"
	"  local p = ARGV[1] .. id\n"
	"  for _, x in ipairs(redis.call('LRANGE', p, 0, -1)) do\n"
	"    refs = refs + route(x, ARGV[4], 'LPUSH')\n"
	"    moved = moved + 1\n"
	"  end\n"
	"  redis.call('DEL', p)\n"
	"  local hs = ARGV[5] .. id\n"
	"  for _, d in ipairs(redis.call('SMEMBERS', hs)) do\n"
	"    local xs = redis.call('SMEMBERS', hs .. ':' .. d)\n"
	"    for b = 1, #xs, 1000 do\n"
	"      redis.call('LPUSH', ARGV[4] .. d, unpack(xs, b, math.min(b + 999, #xs)))\n"
	"    end\n"
	"    if #xs > 0 then redis.call('ZADD', KEYS[3], 'NX', 0, d) end\n"
	"    refs, moved = refs + #xs, moved + #xs\n"
	"    redis.call('DEL', hs .. ':' .. d)\n"
	"  end\n"
	"  redis.call('DEL', hs)\n"
	"end\n"
	"if ARGV[2] ~= '' then\n"
	"  reclaim(ARGV[2])\n"
	"else\n"
	"  for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do\n"
	"    if redis.call('EXISTS', ARGV[3] .. id) == 0 then\n"
	"      reclaim(id)\n"
	"      redis.call('SREM', KEYS[1], id)\n"
	"    end\n"
	"  end\n"
	"end\n"
	"if refs > 0 then redis.call('INCRBY', KEYS[4], refs) end\n"
	"return moved\n";

/*
 * Take up to ARGV[1] postbacks, but only while this agent is registered:
 * its heartbeat alive for ARGV[2] ms more at least and its id (ARGV[3]) in
 * the agents set. A reaper returns the list of an agent whose heartbeat
 * expired (a partition cut it off) and forgets the agent; if that agent
 * came back and took postbacks before its next heartbeat, they would sit
 * in a list that no reaper and no `pbctl ids` looks at.
 *
 * KEYS[1] ready, KEYS[2] the version 1 processing list, KEYS[3] heartbeat,
 * KEYS[4] agents, KEYS[5] the version 1 queue, KEYS[6] the waiting count;
 * ARGV[4] the cap per destination, ARGV[5] "<p>:q:", ARGV[6] "<p>:r:",
 * ARGV[7] "<p>:dest:", ARGV[8] how long a probe may take (ms), ARGV[9]
 * "<p>:d:", ARGV[10] "<p>:held:<agent>", ARGV[11..] pairs of destination
 * id and the room this agent has left for it. References taken from
 * destination d go into the set <p>:held:<agent>:<d>, and d into
 * <p>:held:<agent>. A postback's data is cut from its request's data:
 * version 2 by the offset and length in its reference, version 3 by the
 * data's index (GETRANGE, "" when the key is gone).
 *
 * Destinations come lowest score first (0: newly ready); one taken from is
 * scored "now", behind those that waited, so turns rotate across calls.
 * When the agent wanted more and a destination with postbacks waiting got
 * none for want of room, the reply ends with "CAPPED": the agent then waits
 * for a slot to free, not for news of new postbacks.
 * A destination whose breaker is open or half-open (outcomes_lua) is skipped
 * until its "until"; then one postback is taken as the probe, and its
 * score pushed past the probe's time, so that one probe at a time tests
 * it. One with a rate (requests/s) gives one postback a take and its next
 * turn 1/rate later.
 */
static const char take_lua[] =
	"if redis.call('PTTL', KEYS[3]) < tonumber(ARGV[2]) or\n"
	"   redis.call('SISMEMBER', KEYS[4], ARGV[3]) == 0 then\n"
	"  return redis.error_reply('NOTREGISTERED no live heartbeat for ' .. ARGV[3])\n"
	"end\n"
	PB_LUA_NOW_MS
	"local want, out = tonumber(ARGV[1]), {}\n"
	"while want > 0 do\n"
	"  local job = redis.call('LMOVE', KEYS[5], KEYS[2], 'RIGHT', 'LEFT')\n"
	"  if not job then break end\n"
	"  out[#out + 1] = job; out[#out + 1] = false; out[#out + 1] = false\n"
	"  want = want - 1\n"
	"end\n"
	"if want == 0 then return out end\n"
	"local cap, room, turn, next, seen = tonumber(ARGV[4]), {}, {}, {}, {}\n"
	"for a = 11, #ARGV, 2 do room[ARGV[a]] = tonumber(ARGV[a + 1]) end\n"
	"for _, d in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now,\n"
	"                              'LIMIT', 0, 100 + (#ARGV - 10) / 2)) do\n"
	"  local k = ARGV[7] .. d\n"
	"  local b = redis.call('HMGET', k, 'state', 'until', 'rate')\n"
	"  seen[#seen + 1] = d\n"
	"  local untl, rate = tonumber(b[2] or '0'), tonumber(b[3] or '0')\n"
	"  room[d] = room[d] or cap\n"
	"  if b[1] == 'open' or b[1] == 'half' then\n"
	"    if now < untl then\n"
	"      room[d], next[d] = 0, untl\n"
	"      redis.call('ZADD', KEYS[1], 'XX', untl, d)\n"
	"    elseif room[d] > 0 then\n"
	"      room[d], next[d] = 1, now + tonumber(ARGV[8])\n"
	"      redis.call('HSET', k, 'state', 'half', 'until', next[d], 'probe', ARGV[3])\n"
	"    end\n"
	"  elseif rate > 0 and room[d] > 0 then\n"
	"    room[d], next[d] = 1, now + math.ceil(1000 / rate)\n"
	"  end\n"
	"  if room[d] > 0 then turn[#turn + 1] = d end\n"
	"end\n"
	/* Triples for refs, in order, after a marker triple ("@<d>", nil,
	 * nil) that says whose they are: the data of a run of one request's
	 * postbacks that lie back to back is read with one GETRANGE (version
	 * 3: and its offsets with one more) and cut here; the header goes with
	 * a request's first triple of the reply. */
	"local sent = {}\n"
	"local function cut(d, refs)\n"
	"  out[#out + 1] = '@' .. d; out[#out + 1] = false; out[#out + 1] = false\n"
	"  local rid, off, len, idx = {}, {}, {}, {}\n"
	"  for i, ref in ipairs(refs) do\n"
	"    local r, o, l = string.match(ref, '^%x+ (%S+) %d+ %d+ (%d+) (%d+)$')\n"
	"    if r then\n"
	"      rid[i], off[i], len[i] = r, tonumber(o), tonumber(l)\n"
	"    else\n"
	"      local r3, x = string.match(ref, '^(%S+) (%d+)$')\n"
	"      if not r3 then r3, x = string.match(ref, '^(%S+) (%d+) %d+$') end\n"
	"      rid[i], idx[i] = r3 or false, tonumber(x)\n"
	"    end\n"
	"  end\n"
	"  local i = 1\n"
	"  while i <= #refs do\n"
	"    local j, r = i, rid[i]\n"
	"    if idx[i] then\n"
	"      while j < #refs and rid[j + 1] == r and idx[j + 1] == idx[j] + 1 do j = j + 1 end\n"
	"      local ix = redis.call('GETRANGE', ARGV[9] .. r, 4 * idx[i], 4 * (idx[j] + 2) - 1)\n"
	"      if #ix == 4 * (j - i + 2) then\n"
	"        local at = {}\n"
	"        for k = 0, j - i + 1 do at[k] = struct.unpack('<I4', ix, 4 * k + 1) end\n"
	"        for k = i, j do off[k], len[k] = at[k - i], at[k - i + 1] - at[k - i] end\n"
	"      end\n"
	"    elseif r then\n"
	"      while j < #refs and rid[j + 1] == r and not idx[j + 1] and\n"
	"            off[j + 1] == off[j] + len[j] do j = j + 1 end\n"
	"    end\n"
	"    local chunk = ''\n"
	"    if r and off[i] and len[j] and len[j] >= 0 then\n"
	"      chunk = redis.call('GETRANGE', ARGV[9] .. r, off[i], off[j] + len[j] - 1)\n"
	"    end\n"
	"    for k = i, j do\n"
	"      local data = off[k] and string.sub(chunk, off[k] - off[i] + 1, off[k] - off[i] + len[k]) or ''\n"
	"      out[#out + 1] = refs[k]\n"
	"      out[#out + 1] = data ~= '' and data or false\n"
	"      if not r or sent[r] then out[#out + 1] = r and '' or false\n"
	"      else out[#out + 1] = redis.call('HGET', ARGV[6] .. r, 'h') or false end\n"
	"      if r then sent[r] = true end\n"
	"    end\n"
	"    i = j + 1\n"
	"  end\n"
	"end\n"
	/* Up to n references off the head of queue q: elements whole, and
	 * the first references of a run (job.h), whose rest stays at the
	 * head. One LRANGE, one LTRIM, an LSET for a run cut. */
	"local function pop(q, n)\n"
	"  local refs, used, rest = {}, 0, nil\n"
	"  for _, e in ipairs(redis.call('LRANGE', q, 0, n - 1)) do\n"
	"    if #refs == n then break end\n"
	"    local r, a, b = string.match(e, '^(%S+) (%d+)%-(%d+)$')\n"
	"    if r then\n"
	"      a, b = tonumber(a), tonumber(b)\n"
	"      local last = math.min(b, a + n - #refs - 1)\n"
	"      for x = a, last do refs[#refs + 1] = r .. ' ' .. x end\n"
	"      if last < b then\n"
	"        rest = last + 1 == b and (r .. ' ' .. b) or (r .. ' ' .. (last + 1) .. '-' .. b)\n"
	"        break\n"
	"      end\n"
	"    else\n"
	"      refs[#refs + 1] = e\n"
	"    end\n"
	"    used = used + 1\n"
	"  end\n"
	"  if used > 0 then redis.call('LTRIM', q, used, -1) end\n"
	"  if rest then redis.call('LSET', q, 0, rest) end\n"
	"  return refs\n"
	"end\n"
	/* Rounds across the destinations, each a share of what is still
	 * wanted, moved with pop() and one SADD: a few calls a destination
	 * instead of one a postback. */
	"local taken, took, moved = 0, {}, true\n"
	"while want > 0 and moved do\n"
	"  moved = false\n"
	"  local active = 0\n"
	"  for _, d in ipairs(turn) do if room[d] > 0 then active = active + 1 end end\n"
	"  local share = math.max(1, math.floor(want / math.max(active, 1)))\n"
	"  for _, d in ipairs(turn) do\n"
	"    if want > 0 and room[d] > 0 then\n"
	"      local n = math.min(share, room[d], want, 512)\n"
	"      local refs = pop(ARGV[5] .. d, n)\n"
	"      if #refs > 0 then\n"
	"        redis.call('SADD', ARGV[10] .. ':' .. d, unpack(refs))\n"
	"        redis.call('SADD', ARGV[10], d)\n"
	"        cut(d, refs)\n"
	"        room[d], want, taken, took[d], moved = room[d] - #refs, want - #refs, taken + #refs, true, true\n"
	"      end\n"
	"      if #refs < n then\n"
	"        redis.call('ZREM', KEYS[1], d)\n"
	"        room[d], took[d], next[d] = 0, nil, now\n"
	"      end\n"
	"    end\n"
	"  end\n"
	"end\n"
	"for d in pairs(took) do redis.call('ZADD', KEYS[1], 'XX', next[d] or now, d) end\n"
	"if taken > 0 then redis.call('DECRBY', KEYS[6], taken) end\n"
	"if want > 0 then\n"
	"  for _, d in ipairs(seen) do\n"
	"    if room[d] <= 0 and not next[d] then out[#out + 1] = 'CAPPED' break end\n"
	"  end\n"
	"end\n"
	"return out\n";

/*
 * KEYS: [1] lease, [2] waiting, [3] v1 queue, [4] scheduled, [5] dead,
 * [6] agents, [7] ready. ARGV: agent id, lease ms, processing stem, queue
 * stem, request stem, heads, held stem. A request header's third field is
 * its enqueue time (job.h).
 */
static const char stats_lua[] =
	FORMS
	PB_LUA_NOW_MS
	"local holder = redis.call('GET', KEYS[1])\n"
	"if holder and holder ~= ARGV[1] then return {0} end\n"
	"redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])\n"
	"local waiting = tonumber(redis.call('GET', KEYS[2]) or '0') + redis.call('LLEN', KEYS[3])\n"
	"local held = 0\n"
	"for _, a in ipairs(redis.call('SMEMBERS', KEYS[6])) do\n"
	"  held = held + redis.call('LLEN', ARGV[3] .. a)\n"
	"  for _, d in ipairs(redis.call('SMEMBERS', ARGV[7] .. a)) do\n"
	"    held = held + redis.call('SCARD', ARGV[7] .. a .. ':' .. d)\n"
	"  end\n"
	"end\n"
	"local first = nil\n"
	"for _, d in ipairs(redis.call('ZRANGEBYSCORE', KEYS[7], '-inf', '+inf', 'LIMIT', 0, ARGV[6])) do\n"
	"  local ref = redis.call('LINDEX', ARGV[4] .. d, 0)\n"
	"  local rid = ref and rid_of(ref)\n"
	"  local h = rid and redis.call('HGET', ARGV[5] .. rid, 'h')\n"
	"  local ms = h and tonumber(string.match(h, '^2\\t[^\\t]*\\t(%d+)'))\n"
	"  if ms and (not first or ms < first) then first = ms end\n"
	"end\n"
	"return {1, waiting, redis.call('ZCARD', KEYS[4]), held, redis.call('LLEN', KEYS[5]),\n"
	"        first and math.max(now - first, 0) or 0,\n"
	"        redis.call('ZCOUNT', KEYS[7], '(' .. now, '+inf')}\n";

/* Per thread: the fetcher's and the recorder's (main's before and after
 * them), each loaded on its own connection's master. */
static _Thread_local pb_script take_script = { take_lua, "" };
static _Thread_local pb_script promote_script = { promote_lua, "" };
static _Thread_local pb_script reap_script = { reap_lua, "" };
static _Thread_local pb_script outcomes_script = { outcomes_lua, "" };
static _Thread_local pb_script stats_script = { stats_lua, "" };

int pb_queue_keys_init(pb_queue_keys *k, const char *prefix,
		       const char *agent_id)
{
	if (pb_keys_init(&k->names, prefix) != PB_OK ||
	    pb_strlcpy(k->agent_id, agent_id, sizeof(k->agent_id)) != PB_OK ||
	    pb_key_join(k->processing, sizeof(k->processing),
			k->names.processing_stem, agent_id) != PB_OK ||
	    pb_key_join(k->held, sizeof(k->held), k->names.held_stem,
			agent_id) != PB_OK ||
	    pb_key_join(k->heartbeat, sizeof(k->heartbeat),
			k->names.heartbeat_stem, agent_id) != PB_OK)
		return PB_ERR_LIMIT;
	return PB_OK;
}

/* An integer reply, or the error that came instead. */
static int int_reply(pb_redis *r, redisReply *reply, long long *out)
{
	int rc = PB_OK;

	if (reply == NULL)
		return r->err;
	if (reply->type == REDIS_REPLY_INTEGER) {
		if (out)
			*out = reply->integer;
	} else {
		snprintf(r->errstr, sizeof(r->errstr), "redis: %s",
			 reply->type == REDIS_REPLY_ERROR ? reply->str
							  : "unexpected reply");
		rc = r->err = PB_ERR_REPLY;
	}
	freeReplyObject(reply);
	return rc;
}


/* Call a script with argv[2..argc) set by the caller; an integer reply. */
static int int_script(pb_redis *r, pb_script *s, int argc, const char **argv,
		      long long *out)
{
	size_t lens[16];
	int i;

	if (argc > (int)PB_ARRAY_LEN(lens)) {
		snprintf(r->errstr, sizeof(r->errstr), "script: %d arguments (at most %zu)",
			 argc, PB_ARRAY_LEN(lens));
		return r->err = PB_ERR_LIMIT;
	}
	for (i = 2; i < argc; i++)
		lens[i] = strlen(argv[i]);
	return int_reply(r, pb_redis_script(r, s, argc, argv, lens), out);
}

int pb_queue_take(pb_redis *r, const pb_queue_keys *k, int max, long block_ms,
		  long cap, const char **rooms, int nrooms, redisReply **reply,
		  int *capped)
{
	char smax[24], alive[24], scap[24], probe[24];
	const char *fixed[] = { NULL, NULL, "6", k->names.ready, k->processing,
				k->heartbeat, k->names.agents, k->names.queue,
				k->names.waiting, smax, alive, k->agent_id, scap,
				k->names.queue_stem, k->names.request_stem,
				k->names.dest_stem, probe, k->names.data_stem,
				k->held };
	int nfixed = (int)PB_ARRAY_LEN(fixed), argc = nfixed + 2 * nrooms, i;
	const char **argv = calloc((size_t)argc, sizeof(*argv));
	size_t *lens = calloc((size_t)argc, sizeof(*lens));
	long alive_ms = block_ms + r->cfg->command_timeout_ms;
	redisReply *rep = NULL;
	int rc = PB_OK;

	*reply = NULL;
	*capped = 0;
	if (argv == NULL || lens == NULL) {
		free(argv);
		free(lens);
		snprintf(r->errstr, sizeof(r->errstr), "take: out of memory");
		return r->err = PB_ERR_NOMEM;
	}
	/* Registered for the whole block that may follow, too; but a
	 * heartbeat a second old must do (it is renewed every second). */
	if (alive_ms > r->cfg->heartbeat_ttl_ms / 2)
		alive_ms = r->cfg->heartbeat_ttl_ms / 2;
	snprintf(smax, sizeof(smax), "%d", max);
	snprintf(alive, sizeof(alive), "%ld", alive_ms);
	snprintf(scap, sizeof(scap), "%ld", cap);
	/* A probe's attempt, and the round trip that records it. */
	snprintf(probe, sizeof(probe), "%ld",
		 r->cfg->http_timeout_ms + 2 * r->cfg->command_timeout_ms);
	memcpy(argv, fixed, sizeof(fixed));
	memcpy(argv + nfixed, rooms, (size_t)(2 * nrooms) * sizeof(*argv));
	for (i = 2; i < argc; i++)
		lens[i] = strlen(argv[i]);
	rep = pb_redis_script(r, &take_script, argc, argv, lens);
	free(argv);
	free(lens);
	if (rep == NULL)
		return r->err;
	if (rep->type == REDIS_REPLY_ERROR) {
		rc = strncmp(rep->str, "NOTREGISTERED", 13) == 0 ? PB_ERR_NOTFOUND
								: PB_ERR_REPLY;
		snprintf(r->errstr, sizeof(r->errstr), "redis %s:%d: %s",
			 r->master.host, r->master.port, rep->str);
		freeReplyObject(rep);
		return r->err = rc;
	}
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements % 3 > 1) {
		freeReplyObject(rep);
		snprintf(r->errstr, sizeof(r->errstr), "take: unexpected reply");
		return r->err = PB_ERR_REPLY;
	}
	*capped = rep->elements % 3 == 1; /* the "CAPPED" at the end */
	if (rep->elements > 0 || block_ms <= 0) {
		*reply = rep;
		return PB_OK;
	}
	freeReplyObject(rep);
	/* Nothing waiting: sleep until an ingest node says there is. */
	pb_redis_set_timeout(r, block_ms + r->cfg->command_timeout_ms);
	rep = pb_redis_cmd(r, "BLPOP %s %.3f", k->names.wake, (double)block_ms / 1000.0);
	pb_redis_set_timeout(r, r->cfg->command_timeout_ms);
	if (rep == NULL)
		return r->err;
	if (rep->type == REDIS_REPLY_ERROR) {
		snprintf(r->errstr, sizeof(r->errstr), "BLPOP: %s", rep->str);
		rc = r->err = PB_ERR_REPLY;
	}
	freeReplyObject(rep);
	return rc;
}

int pb_queue_heartbeat(pb_redis *r, const pb_queue_keys *k, long ttl_ms,
		       const char *info)
{
	redisReply *reply;
	int rc;

	if ((rc = pb_redis_append(r, "SET %s %s PX %ld", k->heartbeat, info,
				  ttl_ms)) != PB_OK ||
	    (rc = pb_redis_append(r, "SADD %s %s", k->names.agents, k->agent_id)) != PB_OK)
		return rc;
	if ((rc = pb_redis_get_reply(r, &reply)) != PB_OK)
		return rc;
	freeReplyObject(reply);
	if ((rc = pb_redis_get_reply(r, &reply)) != PB_OK)
		return rc;
	return int_reply(r, reply, NULL);
}

int pb_queue_reap(pb_redis *r, const pb_queue_keys *k, long long *moved)
{
	const char *argv[] = { NULL, NULL, "4", k->names.agents, k->names.queue,
			       k->names.ready, k->names.waiting,
			       k->names.processing_stem, "", k->names.heartbeat_stem,
			       k->names.queue_stem, k->names.held_stem };

	return int_script(r, &reap_script, (int)PB_ARRAY_LEN(argv), argv, moved);
}

int pb_queue_reclaim_own(pb_redis *r, const pb_queue_keys *k, long long *moved)
{
	const char *argv[] = { NULL, NULL, "4", k->names.agents, k->names.queue,
			       k->names.ready, k->names.waiting,
			       k->names.processing_stem, k->agent_id,
			       k->names.heartbeat_stem, k->names.queue_stem,
			       k->names.held_stem };

	return int_script(r, &reap_script, (int)PB_ARRAY_LEN(argv), argv, moved);
}

int pb_queue_promote(pb_redis *r, const pb_queue_keys *k, long limit,
		     long long *moved)
{
	char slimit[24];
	const char *argv[] = { NULL, NULL, "4", k->names.scheduled, k->names.queue,
			       k->names.ready, k->names.waiting, slimit,
			       k->names.queue_stem };

	snprintf(slimit, sizeof(slimit), "%ld", limit);
	return int_script(r, &promote_script, (int)PB_ARRAY_LEN(argv), argv, moved);
}

int pb_queue_stats_get(pb_redis *r, const pb_queue_keys *k, long lease_ms,
		       pb_queue_stats *s)
{
	char slease[24], sheads[24];
	const char *argv[] = { NULL, NULL, "7", k->names.metrics_lease,
			       k->names.waiting, k->names.queue, k->names.scheduled,
			       k->names.dead, k->names.agents, k->names.ready,
			       k->agent_id, slease, k->names.processing_stem,
			       k->names.queue_stem, k->names.request_stem, sheads,
			       k->names.held_stem };
	long long *out[] = { &s->waiting, &s->scheduled, &s->in_flight, &s->dead,
			     &s->oldest_ms, &s->blocked };
	size_t lens[PB_ARRAY_LEN(argv)], i;
	redisReply *reply;

	memset(s, 0, sizeof(*s));
	snprintf(slease, sizeof(slease), "%ld", lease_ms);
	snprintf(sheads, sizeof(sheads), "%d", PB_STATS_HEADS);
	for (i = 2; i < PB_ARRAY_LEN(argv); i++)
		lens[i] = strlen(argv[i]);
	reply = pb_redis_script(r, &stats_script, (int)PB_ARRAY_LEN(argv), argv, lens);
	if (reply == NULL)
		return r->err;
	if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1 ||
	    (reply->element[0]->integer == 1 &&
	     reply->elements != 1 + PB_ARRAY_LEN(out))) {
		snprintf(r->errstr, sizeof(r->errstr), "queue stats: unexpected reply");
		freeReplyObject(reply);
		return r->err = PB_ERR_REPLY;
	}
	s->holder = reply->element[0]->integer == 1;
	for (i = 0; s->holder && i < PB_ARRAY_LEN(out); i++)
		*out[i] = reply->element[i + 1]->integer;
	freeReplyObject(reply);
	return PB_OK;
}

int pb_queue_leave(pb_redis *r, const pb_queue_keys *k)
{
	long long left = 0, sets = 0;
	int rc = int_reply(r, pb_redis_cmd(r, "LLEN %s", k->processing), &left);

	if (rc == PB_OK)
		rc = int_reply(r, pb_redis_cmd(r, "EXISTS %s", k->held), &sets);
	left += sets;

	/* Still holding something (Redis was down for a hand back): keep the
	 * registration so that a reaper returns it once the heartbeat expires. */
	if (rc != PB_OK || left > 0)
		return rc;
	rc = int_reply(r, pb_redis_cmd(r, "SREM %s %s", k->names.agents, k->agent_id),
		       NULL);
	if (rc == PB_OK)
		rc = int_reply(r, pb_redis_cmd(r, "DEL %s", k->heartbeat), NULL);
	return rc;
}

int pb_queue_outcomes_load(pb_redis *r)
{
	if (outcomes_script.sha[0] == '\0')
		return pb_redis_script_load(r, &outcomes_script);
	return PB_OK;
}

void pb_queue_outcomes_forget(void)
{
	outcomes_script.sha[0] = '\0';
}

/* One record of outcomes_lua: its kind letter and fields into argv from
 * *argc; num holds its numbers. */
static void append_record(const pb_queue_outcome *o, const char **argv,
			  size_t *lens, int *argc, char (*num)[24])
{
	static const char *kinds[] = { [PB_OUT_ACK] = "A", [PB_OUT_RETRY] = "R",
				       [PB_OUT_DEAD] = "D", [PB_OUT_HANDBACK] = "H" };
	int i = *argc;

	argv[i++] = kinds[o->kind];
	argv[i] = o->x, lens[i++] = o->len;
	switch (o->kind) {
	case PB_OUT_HANDBACK:
		*argc = i;
		return;
	case PB_OUT_RETRY:
		snprintf(num[0], sizeof(num[0]), "%lld", o->delay_ms);
		snprintf(num[1], sizeof(num[1]), "%lld", o->b.pause_ms);
		argv[i] = o->extra, lens[i++] = o->extra_len;
		argv[i++] = num[0];
		argv[i++] = num[1];
		break;
	case PB_OUT_DEAD:
		argv[i] = o->extra, lens[i++] = o->extra_len;
		break;
	case PB_OUT_ACK:
		break;
	}
	argv[i++] = o->b.signal;
	if (o->kind != PB_OUT_ACK) {
		argv[i++] = o->b.name;
		argv[i++] = o->b.reason;
	}
	*argc = i;
}

int pb_queue_append_outcomes(pb_redis *r, const pb_queue_keys *k,
			     const pb_queue_outcome *o, int n)
{
	/* EVALSHA sha numkeys, KEYS[1..6], ARGV[1..7]; at most 8 a record and
	 * 2 for a P before it. */
	enum { FIXED = 16, MOST = 10 };
	size_t most = FIXED + (size_t)MOST * (size_t)n;
	char breaker[2][24], (*num)[2][24];
	const char **argv;
	size_t *lens;
	int argc = 0, i, rc;

	if (n < 1 || n > PB_OUTCOMES_MAX) {
		snprintf(r->errstr, sizeof(r->errstr),
			 "outcomes: %d in one call (1 to %d)", n, PB_OUTCOMES_MAX);
		return r->err = PB_ERR_LIMIT;
	}
	argv = calloc(most, sizeof(*argv));
	lens = calloc(most, sizeof(*lens));
	num = calloc((size_t)n, sizeof(*num));
	if (argv == NULL || lens == NULL || num == NULL) {
		free(argv);
		free(lens);
		free(num);
		snprintf(r->errstr, sizeof(r->errstr), "outcomes: out of memory");
		return r->err = PB_ERR_NOMEM;
	}
	snprintf(breaker[0], sizeof(breaker[0]), "%ld", r->cfg->breaker_failures);
	snprintf(breaker[1], sizeof(breaker[1]), "%ld", r->cfg->breaker_cooldown_ms);
	{
		const char *fixed[FIXED] = {
			NULL, NULL, "6", k->processing, k->names.queue,
			k->names.ready, k->names.waiting, k->names.scheduled,
			k->names.dead, k->names.request_stem, k->names.data_stem,
			k->names.dest_stem, k->names.queue_stem, breaker[0], breaker[1],
			k->held
		};
		memcpy(argv, fixed, sizeof(fixed));
		argc = FIXED;
	}
	for (i = 0; i < n; i++) {
		/* Records of one destination in a row share a P. */
		if (i == 0 || strcmp(o[i].dest, o[i - 1].dest) != 0) {
			argv[argc++] = "P";
			argv[argc] = o[i].dest, lens[argc++] = strlen(o[i].dest);
		}
		append_record(&o[i], argv, lens, &argc, num[i]);
	}
	for (i = 2; i < argc; i++)
		if (lens[i] == 0)
			lens[i] = strlen(argv[i]);
	rc = pb_redis_append_script(r, &outcomes_script, argc, argv, lens);
	free(argv);
	free(lens);
	free(num);
	return rc;
}
