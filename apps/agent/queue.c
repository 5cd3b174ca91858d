#include "queue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua_scripts.h"
#include "pb.h"

/*
 * The scripts are apps/lua/<name>.lua, each after apps/lua/prelude.lua:
 * their header comments say what each reads, writes and returns, and
 * why it is one atomic step; their KEYS and ARGV are named at their top,
 * in the order the functions below pass them.
 *
 * Per thread: the fetcher's and the recorder's (main's before and after
 * them), each loaded on its own connection's master.
 */
static _Thread_local pb_script take_script = { PB_LUA_TAKE, "" };
static _Thread_local pb_script promote_script = { PB_LUA_PROMOTE, "" };
static _Thread_local pb_script reap_script = { PB_LUA_REAP, "" };
static _Thread_local pb_script outcomes_script = { PB_LUA_OUTCOMES, "" };
static _Thread_local pb_script stats_script = { PB_LUA_STATS, "" };

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

/* One record of outcomes.lua: its kind letter and fields into argv from
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
