#include "queue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pb.h"

/* The master's clock in ms, so every agent schedules on one clock. */
#define NOW_MS "local t = redis.call('TIME')\n" \
	       "local now = t[1] * 1000 + math.floor(t[2] / 1000)\n"

/*
 * Back to a queue's head: a reference to its destination's queue (which
 * becomes ready, unless a later score says otherwise), a version 1 job to
 * the version 1 queue. KEYS[2] the version 1 queue, KEYS[3] ready, KEYS[4]
 * the waiting count; qstem "<p>:q:". Returns 1 for a reference.
 */
#define ROUTE \
	"local function route(x, qstem)\n" \
	"  local d = string.match(x, '^(%x+) ')\n" \
	"  if not d then redis.call('RPUSH', KEYS[2], x) return 0 end\n" \
	"  redis.call('LPUSH', qstem .. d, x)\n" \
	"  redis.call('ZADD', KEYS[3], 'NX', 0, d)\n" \
	"  return 1\n" \
	"end\n"

/* The end of a postback: its data out of its request's hash, and the hash
 * once only the header is left. rstem "<p>:r:". */
#define FINISH \
	"local function finish(x, rstem)\n" \
	"  local rid, i = string.match(x, '^%x+ (%S+) (%d+) %d+$')\n" \
	"  if not rid then return end\n" \
	"  local h = rstem .. rid\n" \
	"  redis.call('HDEL', h, i)\n" \
	"  if redis.call('HLEN', h) <= 1 then redis.call('DEL', h) end\n" \
	"end\n"

/* KEYS[1] processing; ARGV[1] x, ARGV[2] "<p>:r:". */
static const char ack_lua[] =
	FINISH
	"if redis.call('LREM', KEYS[1], -1, ARGV[1]) == 0 then return 0 end\n"
	"finish(ARGV[1], ARGV[2])\n"
	"return 1\n";

/* KEYS[1] processing, KEYS[2] scheduled; ARGV[1] x, ARGV[2] x with one
 * attempt more, ARGV[3] the delay (ms). */
static const char retry_lua[] =
	"if redis.call('LREM', KEYS[1], -1, ARGV[1]) == 0 then return 0 end\n"
	NOW_MS
	"redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[2])\n"
	"return 1\n";

/* KEYS[1] processing, KEYS[2] dead; ARGV[1] x, ARGV[2] the dead letter,
 * ARGV[3] "<p>:r:". */
static const char dead_lua[] =
	FINISH
	"if redis.call('LREM', KEYS[1], -1, ARGV[1]) == 0 then return 0 end\n"
	"redis.call('LPUSH', KEYS[2], ARGV[2])\n"
	"finish(ARGV[1], ARGV[3])\n"
	"return 1\n";

/* KEYS[1] processing, KEYS[2..4] as ROUTE; ARGV[1] x, ARGV[2] "<p>:q:". */
static const char handback_lua[] =
	ROUTE
	"if redis.call('LREM', KEYS[1], -1, ARGV[1]) == 0 then return 0 end\n"
	"redis.call('INCRBY', KEYS[4], route(ARGV[1], ARGV[2]))\n"
	"return 1\n";

/* KEYS[1] scheduled, KEYS[2..4] as ROUTE; ARGV[1] limit, ARGV[2] "<p>:q:". */
static const char promote_lua[] =
	ROUTE
	NOW_MS
	"local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, ARGV[1])\n"
	"local refs = 0\n"
	"for _, x in ipairs(due) do\n"
	"  redis.call('ZREM', KEYS[1], x)\n"
	"  refs = refs + route(x, ARGV[2])\n"
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
	"    refs = refs + route(x, ARGV[4])\n"
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
 * per destination, ARGV[5] "<p>:q:", ARGV[6] "<p>:r:", ARGV[7..] pairs of
 * destination id and the room this agent has left for it.
 *
 * Destinations come lowest score first (0: newly ready); one taken from is
 * scored "now", behind those that waited, so turns rotate across calls.
 */
static const char take_lua[] =
	"if redis.call('PTTL', KEYS[3]) < tonumber(ARGV[2]) or\n"
	"   redis.call('SISMEMBER', KEYS[4], ARGV[3]) == 0 then\n"
	"  return redis.error_reply('NOTREGISTERED no live heartbeat for ' .. ARGV[3])\n"
	"end\n"
	NOW_MS
	"local want, out = tonumber(ARGV[1]), {}\n"
	"while want > 0 do\n"
	"  local job = redis.call('LMOVE', KEYS[5], KEYS[2], 'RIGHT', 'LEFT')\n"
	"  if not job then break end\n"
	"  out[#out + 1] = job; out[#out + 1] = false; out[#out + 1] = false\n"
	"  want = want - 1\n"
	"end\n"
	"if want == 0 then return out end\n"
	"local cap, room, turn = tonumber(ARGV[4]), {}, {}\n"
	"for a = 7, #ARGV, 2 do room[ARGV[a]] = tonumber(ARGV[a + 1]) end\n"
	"for _, d in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now,\n"
	"                              'LIMIT', 0, 100 + (#ARGV - 6) / 2)) do\n"
	"  room[d] = room[d] or cap\n"
	"  if room[d] > 0 then turn[#turn + 1] = d end\n"
	"end\n"
	"local sent, taken, took, moved = {}, 0, {}, true\n"
	"while want > 0 and moved do\n"
	"  moved = false\n"
	"  for _, d in ipairs(turn) do\n"
	"    if want > 0 and room[d] > 0 then\n"
	"      local ref = redis.call('LMOVE', ARGV[5] .. d, KEYS[2], 'LEFT', 'LEFT')\n"
	"      if ref then\n"
	"        local rid, i = string.match(ref, '^%x+ (%S+) (%d+) %d+$')\n"
	"        local h = ARGV[6] .. (rid or '')\n"
	"        out[#out + 1] = ref\n"
	"        out[#out + 1] = rid and redis.call('HGET', h, i) or false\n"
	"        if rid and sent[rid] then out[#out + 1] = ''\n"
	"        else out[#out + 1] = rid and redis.call('HGET', h, 'h') or false end\n"
	"        if rid then sent[rid] = true end\n"
	"        room[d], want, taken, took[d], moved = room[d] - 1, want - 1, taken + 1, true, true\n"
	"      else\n"
	"        redis.call('ZREM', KEYS[1], d)\n"
	"        room[d], took[d] = 0, nil\n"
	"      end\n"
	"    end\n"
	"  end\n"
	"end\n"
	"for d in pairs(took) do redis.call('ZADD', KEYS[1], 'XX', now, d) end\n"
	"if taken > 0 then redis.call('DECRBY', KEYS[6], taken) end\n"
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

	for (i = 2; i < argc; i++)
		lens[i] = strlen(argv[i]);
	return int_reply(r, pb_redis_script(r, s, argc, argv, lens), out);
}

int pb_queue_take(pb_redis *r, const pb_queue_keys *k, int max, long block_ms,
		  long cap, const char **rooms, int nrooms, redisReply **reply)
{
	char smax[24], alive[24], scap[24];
	const char *fixed[] = { NULL, NULL, "6", k->names.ready, k->processing,
				k->heartbeat, k->names.agents, k->names.queue,
				k->names.waiting, smax, alive, k->agent_id, scap,
				k->names.queue_stem, k->names.request_stem };
	int nfixed = (int)PB_ARRAY_LEN(fixed), argc = nfixed + 2 * nrooms, i;
	const char **argv = calloc((size_t)argc, sizeof(*argv));
	size_t *lens = calloc((size_t)argc, sizeof(*lens));
	long alive_ms = block_ms + r->cfg->command_timeout_ms;
	redisReply *rep = NULL;
	int rc = PB_OK;

	*reply = NULL;
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
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements % 3 != 0) {
		freeReplyObject(rep);
		snprintf(r->errstr, sizeof(r->errstr), "take: unexpected reply");
		return r->err = PB_ERR_REPLY;
	}
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
			size_t len)
{
	const char *argv[] = { NULL, NULL, "1", k->processing, x,
			       k->names.request_stem };
	size_t lens[PB_ARRAY_LEN(argv)] = { [4] = len };

	return append_script(r, &ack_script, (int)PB_ARRAY_LEN(argv), argv, lens);
}

int pb_queue_append_retry(pb_redis *r, const pb_queue_keys *k, const char *x,
			  size_t len, const char *next, size_t next_len,
			  long long delay_ms)
{
	char delay[24];
	const char *argv[] = { NULL, NULL, "2", k->processing, k->names.scheduled,
			       x, next, delay };
	size_t lens[PB_ARRAY_LEN(argv)] = { [5] = len, [6] = next_len };

	snprintf(delay, sizeof(delay), "%lld", delay_ms);
	return append_script(r, &retry_script, (int)PB_ARRAY_LEN(argv), argv, lens);
}

int pb_queue_append_dead(pb_redis *r, const pb_queue_keys *k, const char *x,
			 size_t len, const char *entry, size_t entry_len)
{
	const char *argv[] = { NULL, NULL, "2", k->processing, k->names.dead, x,
			       entry, k->names.request_stem };
	size_t lens[PB_ARRAY_LEN(argv)] = { [5] = len, [6] = entry_len };

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
