#include "queue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pb.h"

/*
 * Back to a queue: a reference to its destination's queue, at its head
 * (push LPUSH: handed back or reclaimed untried, it waited longest) or its
 * tail (RPUSH: a due retry, so that the probes of an open breaker try one
 * parked postback after another, not the same one until it is dead); the
 * destination becomes ready, unless a later score says otherwise. A
 * version 1 job goes to the version 1 queue. KEYS[2] the version 1 queue,
 * KEYS[3] ready, KEYS[4] the waiting count; qstem "<p>:q:". Returns 1 for
 * a reference.
 */
#define ROUTE \
	"local function route(x, qstem, push)\n" \
	"  local d = string.match(x, '^(%x+) ')\n" \
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
 * KEYS[1] processing, KEYS[2..4] as ROUTE (the version 1 queue, ready, the
 * waiting count), KEYS[5] scheduled, KEYS[6] dead; ARGV[1] "<p>:r:",
 * ARGV[2] "<p>:d:", ARGV[3] "<p>:dest:", ARGV[4] "<p>:q:", ARGV[5] the
 * breaker's threshold, ARGV[6] its cool-down (ms); from ARGV[7], records
 * of a kind letter and its fields:
 *   A x sig                               delivered
 *   R x next delay pause sig name reason  retry: next is x with one attempt
 *                                         more, due in delay ms; pause > 0
 *                                         pauses the destination (a 429)
 *   D x entry sig name reason             dead letter
 *   H x                                   handed back untried
 * Each first removes x from the processing list and does nothing more if
 * it was not there (a failover lost the take: x is back in its queue).
 * Returns an integer per record: 0 not there, 1 done, 2 done and the
 * breaker opened, 3 done and the breaker closed.
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
	"  local rid = string.match(x, '^%x+ (%S+) %d+ %d+ %d+ %d+$')\n"
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
	"local fields = { A = 3, R = 8, D = 6, H = 2 }\n"
	"local out, i, back = {}, 7, 0\n"
	"while i <= #ARGV do\n"
	"  local kind, x = ARGV[i], ARGV[i + 1]\n"
	"  local n = fields[kind]\n"
	"  if not n then return redis.error_reply('ERR outcome kind ' .. kind) end\n"
	"  local r = 0\n"
	"  if redis.call('LREM', KEYS[1], -1, x) > 0 then\n"
	"    local d = string.match(x, '^(%x+) ')\n"
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
	"    else\n"
	"      back, r = back + route(x, qstem, 'LPUSH'), 1\n"
	"    end\n"
	"  end\n"
	"  out[#out + 1] = r\n"
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
 * the heartbeats' stem, ARGV[4] "<p>:q:". The per-agent and per-destination
 * keys are derived inside the script: fine on a single master (no Redis
 * Cluster here; a split by destination keeps each script on one master).
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
 * KEYS[1] ready, KEYS[2] processing, KEYS[3] heartbeat, KEYS[4] agents,
 * KEYS[5] the version 1 queue, KEYS[6] the waiting count; ARGV[4] the cap
 * per destination, ARGV[5] "<p>:q:", ARGV[6] "<p>:r:", ARGV[7]
 * "<p>:dest:", ARGV[8] how long a probe may take (ms), ARGV[9] "<p>:d:",
 * ARGV[10..] pairs of destination id and the room this agent has left
 * for it. A postback's data is cut from its request's data by the offset
 * and length in its reference (GETRANGE, "" when the key is gone).
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
	"for a = 10, #ARGV, 2 do room[ARGV[a]] = tonumber(ARGV[a + 1]) end\n"
	"for _, d in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now,\n"
	"                              'LIMIT', 0, 100 + (#ARGV - 9) / 2)) do\n"
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
	/* Triples for refs, in order: the data of a run of one request's
	 * postbacks that lie back to back is read with one GETRANGE and cut
	 * here; the header goes with a request's first triple of the reply. */
	"local sent = {}\n"
	"local function cut(refs)\n"
	"  local rid, off, len = {}, {}, {}\n"
	"  for i, ref in ipairs(refs) do\n"
	"    local r, o, l = string.match(ref, '^%x+ (%S+) %d+ %d+ (%d+) (%d+)$')\n"
	"    rid[i], off[i], len[i] = r or false, tonumber(o), tonumber(l)\n"
	"  end\n"
	"  local i = 1\n"
	"  while i <= #refs do\n"
	"    local j, r = i, rid[i]\n"
	"    while r and j < #refs and rid[j + 1] == r and off[j + 1] == off[j] + len[j] do\n"
	"      j = j + 1\n"
	"    end\n"
	"    local chunk = r and redis.call('GETRANGE', ARGV[9] .. r, off[i], off[j] + len[j] - 1) or ''\n"
	"    for k = i, j do\n"
	"      local data = string.sub(chunk, off[k] - off[i] + 1, off[k] - off[i] + len[k])\n"
	"      out[#out + 1] = refs[k]\n"
	"      out[#out + 1] = data ~= '' and data or false\n"
	"      if not r or sent[r] then out[#out + 1] = r and '' or false\n"
	"      else out[#out + 1] = redis.call('HGET', ARGV[6] .. r, 'h') or false end\n"
	"      if r then sent[r] = true end\n"
	"    end\n"
	"    i = j + 1\n"
	"  end\n"
	"end\n"
	/* Rounds across the destinations, each a share of what is still
	 * wanted, moved with one LRANGE, LTRIM and LPUSH: the same order in
	 * the processing list as LMOVE one by one, at a few calls a
	 * destination instead of one a postback. */
	"local taken, took, moved = 0, {}, true\n"
	"while want > 0 and moved do\n"
	"  moved = false\n"
	"  local active = 0\n"
	"  for _, d in ipairs(turn) do if room[d] > 0 then active = active + 1 end end\n"
	"  local share = math.max(1, math.floor(want / math.max(active, 1)))\n"
	"  for _, d in ipairs(turn) do\n"
	"    if want > 0 and room[d] > 0 then\n"
	"      local n = math.min(share, room[d], want, 512)\n"
	"      local refs = redis.call('LRANGE', ARGV[5] .. d, 0, n - 1)\n"
	"      if #refs > 0 then\n"
	"        redis.call('LTRIM', ARGV[5] .. d, #refs, -1)\n"
	"        redis.call('LPUSH', KEYS[2], unpack(refs))\n"
	"        cut(refs)\n"
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
 * stem, request stem, heads. A request header's third field is its
 * enqueue time (job.h).
 */
static const char stats_lua[] =
	PB_LUA_NOW_MS
	"local holder = redis.call('GET', KEYS[1])\n"
	"if holder and holder ~= ARGV[1] then return {0} end\n"
	"redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])\n"
	"local waiting = tonumber(redis.call('GET', KEYS[2]) or '0') + redis.call('LLEN', KEYS[3])\n"
	"local held = 0\n"
	"for _, a in ipairs(redis.call('SMEMBERS', KEYS[6])) do\n"
	"  held = held + redis.call('LLEN', ARGV[3] .. a)\n"
	"end\n"
	"local first = nil\n"
	"for _, d in ipairs(redis.call('ZRANGEBYSCORE', KEYS[7], '-inf', '+inf', 'LIMIT', 0, ARGV[6])) do\n"
	"  local ref = redis.call('LINDEX', ARGV[4] .. d, 0)\n"
	"  local rid = ref and string.match(ref, '^%S+ (%S+)')\n"
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
				k->names.dest_stem, probe, k->names.data_stem };
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
			       k->names.queue_stem };

	return int_script(r, &reap_script, (int)PB_ARRAY_LEN(argv), argv, moved);
}

int pb_queue_reclaim_own(pb_redis *r, const pb_queue_keys *k, long long *moved)
{
	const char *argv[] = { NULL, NULL, "4", k->names.agents, k->names.queue,
			       k->names.ready, k->names.waiting,
			       k->names.processing_stem, k->agent_id,
			       k->names.heartbeat_stem, k->names.queue_stem };

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
			       k->names.queue_stem, k->names.request_stem, sheads };
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
	long long left = 0;
	int rc = int_reply(r, pb_redis_cmd(r, "LLEN %s", k->processing), &left);

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
	/* EVALSHA sha numkeys, KEYS[1..6], ARGV[1..6]; at most 8 a record. */
	enum { FIXED = 15, MOST = 8 };
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
			k->names.dest_stem, k->names.queue_stem, breaker[0], breaker[1]
		};
		memcpy(argv, fixed, sizeof(fixed));
		argc = FIXED;
	}
	for (i = 0; i < n; i++)
		append_record(&o[i], argv, lens, &argc, num[i]);
	for (i = 2; i < argc; i++)
		if (lens[i] == 0)
			lens[i] = strlen(argv[i]);
	rc = pb_redis_append_script(r, &outcomes_script, argc, argv, lens);
	free(argv);
	free(lens);
	free(num);
	return rc;
}
