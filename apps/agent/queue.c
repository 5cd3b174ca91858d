#include "queue.h"

#include <stdio.h>
#include <string.h>

#include "pb.h"

/* The master's clock in ms, so every agent schedules on one clock. */
#define NOW_MS "local t = redis.call('TIME')\n" \
	       "local now = t[1] * 1000 + math.floor(t[2] / 1000)\n"

static const char retry_lua[] =
	"if redis.call('LREM', KEYS[1], -1, ARGV[1]) == 0 then return 0 end\n"
	NOW_MS
	"redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[2])\n"
	"return 1\n";

static const char dead_lua[] =
	"if redis.call('LREM', KEYS[1], -1, ARGV[1]) == 0 then return 0 end\n"
	"redis.call('LPUSH', KEYS[2], ARGV[2])\n"
	"return 1\n";

static const char handback_lua[] =
	"if redis.call('LREM', KEYS[1], -1, ARGV[1]) == 0 then return 0 end\n"
	"redis.call('RPUSH', KEYS[2], ARGV[1])\n"
	"return 1\n";

static const char promote_lua[] =
	NOW_MS
	"local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, ARGV[1])\n"
	"for _, job in ipairs(due) do\n"
	"  redis.call('ZREM', KEYS[1], job)\n"
	"  redis.call('RPUSH', KEYS[2], job)\n"
	"end\n"
	"return #due\n";

/*
 * KEYS[1] agents set, KEYS[2] queue; ARGV[1] the processing lists' stem,
 * ARGV[2] an agent id to reclaim unconditionally (or ""), ARGV[3] the
 * heartbeats' stem (keys.h). The per-agent keys are derived inside the
 * script: fine on a single master (no Redis Cluster here).
 */
static const char reap_lua[] =
	"local moved = 0\n"
	"local function reclaim(id)\n"
	"  local p = ARGV[1] .. id\n"
	"  while redis.call('LMOVE', p, KEYS[2], 'RIGHT', 'RIGHT') do\n"
	"    moved = moved + 1\n"
	"  end\n"
	"end\n"
	"if ARGV[2] ~= '' then reclaim(ARGV[2]) return moved end\n"
	"for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do\n"
	"  if redis.call('EXISTS', ARGV[3] .. id) == 0 then\n"
	"    reclaim(id)\n"
	"    redis.call('SREM', KEYS[1], id)\n"
	"  end\n"
	"end\n"
	"return moved\n";

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

/*
 * Take up to ARGV[1] jobs, but only while this agent is registered: its
 * heartbeat alive for ARGV[2] ms more at least and its id (ARGV[3]) in the
 * agents set. A reaper returns the list of an agent whose heartbeat expired
 * (a partition cut it off) and forgets the agent; if that agent came back
 * and took jobs before its next heartbeat, they would sit in a list that no
 * reaper and no `pbctl ids` looks at. KEYS[1] queue, KEYS[2] processing,
 * KEYS[3] heartbeat, KEYS[4] agents.
 */
static const char take_lua[] =
	"if redis.call('PTTL', KEYS[3]) < tonumber(ARGV[2]) or\n"
	"   redis.call('SISMEMBER', KEYS[4], ARGV[3]) == 0 then\n"
	"  return redis.error_reply('NOTREGISTERED no live heartbeat for ' .. ARGV[3])\n"
	"end\n"
	"local out = {}\n"
	"for i = 1, tonumber(ARGV[1]) do\n"
	"  local job = redis.call('LMOVE', KEYS[1], KEYS[2], 'RIGHT', 'LEFT')\n"
	"  if not job then break end\n"
	"  out[i] = job\n"
	"end\n"
	"return out\n";

/* The fetcher's alone: one pb_script per thread (redis.h). */
static pb_script take_script = { take_lua, "" };

/* The jobs of an array reply into out[]; the reply is freed. */
static void steal_jobs(redisReply *reply, redisReply **out, int max, int *n)
{
	size_t i;

	for (i = 0; i < reply->elements && *n < max; i++) {
		if (reply->element[i]->type != REDIS_REPLY_STRING)
			continue;
		out[(*n)++] = reply->element[i];
		reply->element[i] = NULL; /* freeReplyObject skips it */
	}
	freeReplyObject(reply);
}

int pb_queue_take(pb_redis *r, const pb_queue_keys *k, int max, long block_ms,
		  redisReply **out, int *n)
{
	char smax[24], alive[24];
	const char *argv[] = { "4", k->names.queue, k->processing, k->heartbeat,
			       k->names.agents, smax, alive, k->agent_id };
	size_t lens[PB_ARRAY_LEN(argv)], i;
	long alive_ms = block_ms + r->cfg->command_timeout_ms;
	redisReply *reply;
	int rc = PB_OK;

	*n = 0;
	/* Registered for the whole block that may follow, too; but a
	 * heartbeat a second old must do (it is renewed every second). */
	if (alive_ms > r->cfg->heartbeat_ttl_ms / 2)
		alive_ms = r->cfg->heartbeat_ttl_ms / 2;
	snprintf(smax, sizeof(smax), "%d", max);
	snprintf(alive, sizeof(alive), "%ld", alive_ms);
	for (i = 0; i < PB_ARRAY_LEN(argv); i++)
		lens[i] = strlen(argv[i]);
	reply = pb_redis_script(r, &take_script, (int)PB_ARRAY_LEN(argv), argv, lens);
	if (reply == NULL)
		return r->err;
	if (reply->type == REDIS_REPLY_ERROR) {
		rc = strncmp(reply->str, "NOTREGISTERED", 13) == 0 ? PB_ERR_NOTFOUND
								  : PB_ERR_REPLY;
		snprintf(r->errstr, sizeof(r->errstr), "redis %s:%d: %s",
			 r->master.host, r->master.port, reply->str);
		freeReplyObject(reply);
		return r->err = rc;
	}
	if (reply->type != REDIS_REPLY_ARRAY) {
		freeReplyObject(reply);
		snprintf(r->errstr, sizeof(r->errstr), "take: unexpected reply");
		return r->err = PB_ERR_REPLY;
	}
	steal_jobs(reply, out, max, n);
	if (*n > 0 || block_ms <= 0)
		return PB_OK;
	/* Nothing waiting: block for one, with a reply timeout to match. */
	pb_redis_set_timeout(r, block_ms + r->cfg->command_timeout_ms);
	reply = pb_redis_cmd(r, "BLMOVE %s %s RIGHT LEFT %.3f", k->names.queue,
			     k->processing, (double)block_ms / 1000.0);
	pb_redis_set_timeout(r, r->cfg->command_timeout_ms);
	if (reply == NULL)
		return r->err;
	if (reply->type == REDIS_REPLY_STRING) {
		out[(*n)++] = reply;
		return PB_OK;
	}
	if (reply->type == REDIS_REPLY_ERROR) {
		snprintf(r->errstr, sizeof(r->errstr), "BLMOVE: %s", reply->str);
		rc = r->err = PB_ERR_REPLY;
	}
	freeReplyObject(reply);
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
	return int_reply(r, pb_redis_cmd(r, "EVAL %s 2 %s %s %s %s %s", reap_lua,
					 k->names.agents, k->names.queue,
					 k->names.processing_stem, "",
					 k->names.heartbeat_stem),
			 moved);
}

int pb_queue_reclaim_own(pb_redis *r, const pb_queue_keys *k, long long *moved)
{
	return int_reply(r, pb_redis_cmd(r, "EVAL %s 2 %s %s %s %s %s", reap_lua,
					 k->names.agents, k->names.queue,
					 k->names.processing_stem, k->agent_id,
					 k->names.heartbeat_stem),
			 moved);
}

int pb_queue_promote(pb_redis *r, const pb_queue_keys *k, long limit,
		     long long *moved)
{
	return int_reply(r, pb_redis_cmd(r, "EVAL %s 2 %s %s %ld", promote_lua,
					 k->names.scheduled, k->names.queue, limit),
			 moved);
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

int pb_queue_append_ack(pb_redis *r, const pb_queue_keys *k, const char *job,
			size_t len)
{
	return pb_redis_append(r, "LREM %s -1 %b", k->processing, job, len);
}

int pb_queue_append_retry(pb_redis *r, const pb_queue_keys *k, const char *job,
			  size_t len, const char *next, size_t next_len,
			  long long delay_ms)
{
	return pb_redis_append(r, "EVAL %s 2 %s %s %b %b %lld", retry_lua,
			       k->processing, k->names.scheduled, job, len, next,
			       next_len, delay_ms);
}

int pb_queue_append_dead(pb_redis *r, const pb_queue_keys *k, const char *job,
			 size_t len, const char *entry, size_t entry_len)
{
	return pb_redis_append(r, "EVAL %s 2 %s %s %b %b", dead_lua, k->processing,
			       k->names.dead, job, len, entry, entry_len);
}

int pb_queue_append_handback(pb_redis *r, const pb_queue_keys *k,
			     const char *job, size_t len)
{
	return pb_redis_append(r, "EVAL %s 2 %s %s %b", handback_lua,
			       k->processing, k->names.queue, job, len);
}
