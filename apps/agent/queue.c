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

/* The end of a postback: one fewer left of its request, whose header and
 * data go with the last (keys.h). rstem "<p>:r:", dstem "<p>:d:". */
#define FINISH \
	"local function finish(x, rstem, dstem)\n" \
	"  local rid = string.match(x, '^%x+ (%S+) %d+ %d+ %d+ %d+$')\n" \
	"  if not rid or redis.call('HEXISTS', rstem .. rid, 'n') == 0 then return end\n" \
	"  if redis.call('HINCRBY', rstem .. rid, 'n', -1) <= 0 then\n" \
	"    redis.call('DEL', rstem .. rid, dstem .. rid)\n" \
	"  end\n" \
	"end\n"

/*
 * A destination's breaker (keys.h: <p>:dest:<d>), told what an attempt
 * said of it (retry.h): "ok" closes an open or half-open breaker and
 * makes the destination ready at once; "fail" counts, and the threshold'th
 * failure in a row, or a failed probe, opens it: the destination's score in
 * ready becomes the cool-down's end, so no agent takes from it until then.
 * A destination that never failed has no hash: an "ok" costs one read.
 * Returns 1, or 2 when it opened the breaker, 3 when it closed it.
 */
#define BREAKER \
	"local function breaker(x, sig, stem, ready, threshold, cooldown, name, reason)\n" \
	"  local d = string.match(x, '^(%x+) ')\n" \
	"  if not d or sig == '' then return 1 end\n" \
	"  local k = stem .. d\n" \
	"  local b = redis.call('HMGET', k, 'state', 'fails')\n" \
	"  if sig == 'ok' then\n" \
	"    if b[1] and b[1] ~= 'closed' then\n" \
	"      redis.call('HSET', k, 'state', 'closed', 'fails', 0)\n" \
	"      redis.call('ZADD', ready, 'XX', 0, d)\n" \
	"      return 3\n" \
	"    end\n" \
	"    if b[2] and b[2] ~= '0' then redis.call('HSET', k, 'fails', 0) end\n" \
	"    return 1\n" \
	"  end\n" \
	"  " PB_LUA_NOW_MS \
	"  local fails = redis.call('HINCRBY', k, 'fails', 1)\n" \
	"  if b[1] == 'half' or (b[1] ~= 'open' and fails >= tonumber(threshold)) then\n" \
	"    local untl = now + tonumber(cooldown)\n" \
	"    redis.call('HSET', k, 'state', 'open', 'until', untl, 'url', name, 'reason', reason)\n" \
	"    redis.call('ZADD', ready, 'XX', untl, d)\n" \
	"    return 2\n" \
	"  end\n" \
	"  return 1\n" \
	"end\n"

/* KEYS[1] processing, KEYS[2] ready; ARGV[1] x, ARGV[2] "<p>:r:",
 * ARGV[3] the signal ("ok" or ""), ARGV[4] "<p>:dest:", ARGV[5] "<p>:d:". */
static const char ack_lua[] =
	FINISH
	BREAKER
	"if redis.call('LREM', KEYS[1], -1, ARGV[1]) == 0 then return 0 end\n"
	"finish(ARGV[1], ARGV[2], ARGV[5])\n"
	"return breaker(ARGV[1], ARGV[3], ARGV[4], KEYS[2])\n";

/* KEYS[1] processing, KEYS[2] scheduled, KEYS[3] ready; ARGV[1] x, ARGV[2]
 * x with one attempt more, ARGV[3] the delay (ms), ARGV[4] a pause of the
 * whole destination (ms; a 429's Retry-After), ARGV[5..10] as BREAKER's
 * sig, stem, threshold, cooldown, name, reason. */
static const char retry_lua[] =
	BREAKER
	"if redis.call('LREM', KEYS[1], -1, ARGV[1]) == 0 then return 0 end\n"
	PB_LUA_NOW_MS
	"redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[2])\n"
	"local d = string.match(ARGV[1], '^(%x+) ')\n"
	"if d and tonumber(ARGV[4]) > 0 then\n"
	"  redis.call('ZADD', KEYS[3], 'XX', 'GT', now + tonumber(ARGV[4]), d)\n"
	"end\n"
	"return breaker(ARGV[1], ARGV[5], ARGV[6], KEYS[3], ARGV[7], ARGV[8], ARGV[9], ARGV[10])\n";

/* KEYS[1] processing, KEYS[2] dead, KEYS[3] ready; ARGV[1] x, ARGV[2] the
 * dead letter, ARGV[3] "<p>:r:", ARGV[4..9] as BREAKER's, ARGV[10]
 * "<p>:d:". */
static const char dead_lua[] =
	FINISH
	BREAKER
	"if redis.call('LREM', KEYS[1], -1, ARGV[1]) == 0 then return 0 end\n"
	"redis.call('LPUSH', KEYS[2], ARGV[2])\n"
	"finish(ARGV[1], ARGV[3], ARGV[10])\n"
	"return breaker(ARGV[1], ARGV[4], ARGV[5], KEYS[3], ARGV[6], ARGV[7], ARGV[8], ARGV[9])\n";

/* KEYS[1] processing, KEYS[2..4] as ROUTE; ARGV[1] x, ARGV[2] "<p>:q:". */
static const char handback_lua[] =
	ROUTE
	"if redis.call('LREM', KEYS[1], -1, ARGV[1]) == 0 then return 0 end\n"
	"redis.call('INCRBY', KEYS[4], route(ARGV[1], ARGV[2], 'LPUSH'))\n"
	"return 1\n";

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
 * A destination whose breaker is open or half-open (BREAKER) is skipped
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
	"local sent, taken, took, moved = {}, 0, {}, true\n"
	"while want > 0 and moved do\n"
	"  moved = false\n"
	"  for _, d in ipairs(turn) do\n"
	"    if want > 0 and room[d] > 0 then\n"
	"      local ref = redis.call('LMOVE', ARGV[5] .. d, KEYS[2], 'LEFT', 'LEFT')\n"
	"      if ref then\n"
	"        local rid, off, len = string.match(ref, '^%x+ (%S+) %d+ %d+ (%d+) (%d+)$')\n"
	"        local data = rid and redis.call('GETRANGE', ARGV[9] .. rid, off, off + len - 1)\n"
	"        out[#out + 1] = ref\n"
	"        out[#out + 1] = data ~= '' and data or false\n"
	"        if rid and sent[rid] then out[#out + 1] = ''\n"
	"        else out[#out + 1] = rid and redis.call('HGET', ARGV[6] .. rid, 'h') or false end\n"
	"        if rid then sent[rid] = true end\n"
	"        room[d], want, taken, took[d], moved = room[d] - 1, want - 1, taken + 1, true, true\n"
	"      else\n"
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

/* Per thread: the fetcher's and the recorder's (main's before and after
 * them), each loaded on its own connection's master. */
static _Thread_local pb_script take_script = { take_lua, "" };
static _Thread_local pb_script promote_script = { promote_lua, "" };
static _Thread_local pb_script reap_script = { reap_lua, "" };
static _Thread_local pb_script ack_script = { ack_lua, "" };
static _Thread_local pb_script retry_script = { retry_lua, "" };
static _Thread_local pb_script dead_script = { dead_lua, "" };
static _Thread_local pb_script handback_script = { handback_lua, "" };

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
	pb_script *all[] = { &ack_script, &retry_script, &dead_script,
			     &handback_script };
	size_t i;

	for (i = 0; i < PB_ARRAY_LEN(all); i++)
		if (all[i]->sha[0] == '\0' && pb_redis_script_load(r, all[i]) != PB_OK)
			return r->err;
	return PB_OK;
}

void pb_queue_outcomes_forget(void)
{
	ack_script.sha[0] = retry_script.sha[0] = dead_script.sha[0] =
		handback_script.sha[0] = '\0';
}

/* Append a script call: argv[2..argc) with lens[] where given (binary
 * safe), strlen() where 0. */
static int append_script(pb_redis *r, pb_script *s, int argc,
			 const char **argv, size_t *lens)
{
	int i;

	for (i = 2; i < argc; i++)
		if (lens[i] == 0)
			lens[i] = strlen(argv[i]);
	return pb_redis_append_script(r, s, argc, argv, lens);
}

int pb_queue_append_ack(pb_redis *r, const pb_queue_keys *k, const char *x,
			size_t len, const pb_breaker_arg *b)
{
	const char *argv[] = { NULL, NULL, "2", k->processing, k->names.ready, x,
			       k->names.request_stem, b->signal, k->names.dest_stem,
			       k->names.data_stem };
	size_t lens[PB_ARRAY_LEN(argv)] = { [5] = len };

	return append_script(r, &ack_script, (int)PB_ARRAY_LEN(argv), argv, lens);
}

/* BREAKER's last six arguments, into argv[0..6) (nums holds the numbers). */
static void breaker_args(pb_redis *r, const pb_queue_keys *k,
			 const pb_breaker_arg *b, char (*nums)[24],
			 const char **argv)
{
	snprintf(nums[0], sizeof(nums[0]), "%ld", r->cfg->breaker_failures);
	snprintf(nums[1], sizeof(nums[1]), "%ld", r->cfg->breaker_cooldown_ms);
	argv[0] = b->signal;
	argv[1] = k->names.dest_stem;
	argv[2] = nums[0];
	argv[3] = nums[1];
	argv[4] = b->name;
	argv[5] = b->reason;
}

int pb_queue_append_retry(pb_redis *r, const pb_queue_keys *k, const char *x,
			  size_t len, const char *next, size_t next_len,
			  long long delay_ms, const pb_breaker_arg *b)
{
	char delay[24], pause[24], nums[2][24];
	const char *argv[] = { NULL, NULL, "3", k->processing, k->names.scheduled,
			       k->names.ready, x, next, delay, pause,
			       NULL, NULL, NULL, NULL, NULL, NULL };
	size_t lens[PB_ARRAY_LEN(argv)] = { [6] = len, [7] = next_len };

	snprintf(delay, sizeof(delay), "%lld", delay_ms);
	snprintf(pause, sizeof(pause), "%lld", b->pause_ms);
	breaker_args(r, k, b, nums, argv + 10);
	return append_script(r, &retry_script, (int)PB_ARRAY_LEN(argv), argv, lens);
}

int pb_queue_append_dead(pb_redis *r, const pb_queue_keys *k, const char *x,
			 size_t len, const char *entry, size_t entry_len,
			 const pb_breaker_arg *b)
{
	char nums[2][24];
	const char *argv[] = { NULL, NULL, "3", k->processing, k->names.dead,
			       k->names.ready, x, entry, k->names.request_stem,
			       NULL, NULL, NULL, NULL, NULL, NULL, k->names.data_stem };
	size_t lens[PB_ARRAY_LEN(argv)] = { [6] = len, [7] = entry_len };

	breaker_args(r, k, b, nums, argv + 9);
	return append_script(r, &dead_script, (int)PB_ARRAY_LEN(argv), argv, lens);
}

int pb_queue_append_handback(pb_redis *r, const pb_queue_keys *k,
			     const char *x, size_t len)
{
	const char *argv[] = { NULL, NULL, "4", k->processing, k->names.queue,
			       k->names.ready, k->names.waiting, x,
			       k->names.queue_stem };
	size_t lens[PB_ARRAY_LEN(argv)] = { [7] = len };

	return append_script(r, &handback_script, (int)PB_ARRAY_LEN(argv), argv, lens);
}
