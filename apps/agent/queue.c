#include "queue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua_functions.h"
#include "pb.h"

/*
 * The functions are apps/lua/<name>.lua, each after apps/lua/prelude.lua:
 * their header comments say what each reads, writes and returns, and
 * why it is one atomic step. Their KEYS and ARGV are named at their top;
 * lua_functions.h makes a struct of those names (pb_fn_<name>), which the
 * functions below fill by name.
 */

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


/* FCALL argv[0..argc), each a C string; an integer reply. */
static int int_fcall(pb_redis *r, int argc, const char **argv, long long *out)
{
	return int_reply(r, pb_redis_argv(r, argc, argv, NULL), out);
}

/* The shortest wait for a next turn: below it a take that finds nothing
 * would spin. */
#define NEXT_TURN_MIN_MS 5

long pb_queue_probe_ms(const pb_config *cfg)
{
	/* A probe's attempt, and the round trip that records it. */
	return cfg->http_timeout_ms + 2 * cfg->command_timeout_ms;
}

int pb_queue_take(pb_redis *r, const pb_queue_keys *k, int max, long block_ms,
		  long cap, const char **rooms, int nrooms, const pb_take_gate *g,
		  redisReply **reply, int *capped)
{
	char smax[24], alive[24], scap[24], probe[24], sanswers[24];
	const pb_fn_take a = {
		.ready = k->names.ready, .v1_processing = k->processing,
		.heartbeat = k->heartbeat, .agents = k->names.agents,
		.v1_queue = k->names.queue, .waiting = k->names.waiting,
		.want = smax, .alive_ms = alive, .agent = k->agent_id,
		.cap = scap, .qstem = k->names.queue_stem,
		.rstem = k->names.request_stem, .bstem = k->names.dest_stem,
		.probe_ms = probe, .dstem = k->names.data_stem, .held = k->held,
		.shared = g->shared ? "1" : "0", .answers = sanswers,
		.lstem = k->names.lanes_stem, .crstem = k->names.client_ready_stem,
		.clients_ready = k->names.clients_ready
	};
	int argc = PB_FN_TAKE_ARGC + 3 * g->nanswers + 2 * nrooms;
	const char **argv = calloc((size_t)argc, sizeof(*argv));
	long alive_ms = block_ms + r->cfg->command_timeout_ms;
	redisReply *rep = NULL;
	int rc = PB_OK;

	*reply = NULL;
	*capped = 0;
	if (argv == NULL) {
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
	snprintf(probe, sizeof(probe), "%ld", pb_queue_probe_ms(r->cfg));
	snprintf(sanswers, sizeof(sanswers), "%d", g->nanswers);
	pb_fn_take_argv(&a, argv);
	if (g->nanswers > 0)
		memcpy(argv + PB_FN_TAKE_ARGC, g->answers,
		       (size_t)3 * (size_t)g->nanswers * sizeof(*argv));
	memcpy(argv + PB_FN_TAKE_ARGC + (size_t)3 * (size_t)g->nanswers, rooms,
	       (size_t)(2 * nrooms) * sizeof(*argv));
	rep = pb_redis_argv(r, argc, argv, NULL);
	free(argv);
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
	if (rep->elements == 1 && rep->element[0]->type == REDIS_REPLY_INTEGER) {
		/* Nothing to hand; the next turn comes in that many ms. Slept
		 * here, not in BLPOP: Redis ends a blocking command's wait on
		 * its clock's tick (hz 10: up to 100 ms late), which would
		 * pace a destination of 10 requests/s at about 7. */
		long long next = rep->element[0]->integer;

		if (next < block_ms && block_ms > 0) {
			freeReplyObject(rep);
			pb_sleep_ms(next < NEXT_TURN_MIN_MS ? NEXT_TURN_MIN_MS : (long)next,
				    r->stop);
			return PB_OK;
		}
	} else {
		*capped = rep->elements % 3 == 1; /* the "CAPPED" at the end */
		if (rep->elements > 0 || block_ms <= 0) {
			*reply = rep;
			return PB_OK;
		}
	}
	freeReplyObject(rep);
	if (block_ms <= 0)
		return PB_OK;
	/* Nothing waiting: sleep until an ingest node says there is, or the
	 * next turn comes. */
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

int pb_queue_gate(pb_redis *r, const pb_queue_keys *k, const char *dest,
		  const char *what, long ms, int *granted, long *wait_ms)
{
	char key[PB_KEY_MAX], sms[24];
	const pb_fn_gate a = { .k = key, .what = what, .ms = sms };
	const char *argv[PB_FN_GATE_ARGC];
	redisReply *rep;
	int rc = PB_OK;

	*granted = 0;
	*wait_ms = ms;
	if (pb_key_join(key, sizeof(key), k->names.gate_stem, dest) != PB_OK) {
		snprintf(r->errstr, sizeof(r->errstr), "gate: key too long");
		return r->err = PB_ERR_LIMIT;
	}
	snprintf(sms, sizeof(sms), "%ld", ms);
	if ((rep = pb_redis_argv(r, pb_fn_gate_argv(&a, argv), argv, NULL)) == NULL)
		return r->err;
	if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
	    rep->element[0]->type == REDIS_REPLY_INTEGER &&
	    rep->element[1]->type == REDIS_REPLY_INTEGER) {
		*granted = rep->element[0]->integer == 1;
		*wait_ms = (long)rep->element[1]->integer;
	} else {
		snprintf(r->errstr, sizeof(r->errstr), "gate: %s",
			 rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
		rc = r->err = PB_ERR_REPLY;
	}
	freeReplyObject(rep);
	return rc;
}

int pb_queue_mirror(pb_redis *r, const pb_queue_keys *k, const char *dest,
		    const pb_breaker_news *news, long cooldown_ms)
{
	char bkey[PB_KEY_MAX], gkey[PB_KEY_MAX], sms[24], scool[24];
	const pb_fn_breaker_mirror a = {
		.k = bkey, .ready = k->names.ready, .gate = gkey,
		.what = news->open ? "open" : "close", .ms = sms,
		.reason = news->reason, .url = news->url, .d = dest, .cooldown = scool
	};
	const char *argv[PB_FN_BREAKER_MIRROR_ARGC];

	if (pb_key_join(bkey, sizeof(bkey), k->names.dest_stem, dest) != PB_OK ||
	    pb_key_join(gkey, sizeof(gkey), k->names.gate_stem, dest) != PB_OK) {
		snprintf(r->errstr, sizeof(r->errstr), "mirror: key too long");
		return r->err = PB_ERR_LIMIT;
	}
	snprintf(sms, sizeof(sms), "%ld", news->ms);
	snprintf(scool, sizeof(scool), "%ld", cooldown_ms);
	return int_fcall(r, pb_fn_breaker_mirror_argv(&a, argv), argv, NULL);
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

/* reap.lua for the agents whose heartbeat expired, or only for one. */
static int reap(pb_redis *r, const pb_queue_keys *k, const char *only,
		long long *moved)
{
	const pb_fn_reap a = {
		.agents = k->names.agents, .v1_queue = k->names.queue,
		.ready = k->names.ready, .waiting = k->names.waiting,
		.pstem = k->names.processing_stem, .only = only,
		.hbstem = k->names.heartbeat_stem, .qstem = k->names.queue_stem,
		.hstem = k->names.held_stem, .lstem = k->names.lanes_stem,
		.rstem = k->names.request_stem, .crstem = k->names.client_ready_stem,
		.clients_ready = k->names.clients_ready
	};
	const char *argv[PB_FN_REAP_ARGC];

	return int_fcall(r, pb_fn_reap_argv(&a, argv), argv, moved);
}

int pb_queue_reap(pb_redis *r, const pb_queue_keys *k, long long *moved)
{
	return reap(r, k, "", moved);
}

int pb_queue_reclaim_own(pb_redis *r, const pb_queue_keys *k, long long *moved)
{
	return reap(r, k, k->agent_id, moved);
}

int pb_queue_promote(pb_redis *r, const pb_queue_keys *k, long limit,
		     long long *moved)
{
	char slimit[24];
	const pb_fn_promote a = {
		.scheduled = k->names.scheduled, .v1_queue = k->names.queue,
		.ready = k->names.ready, .waiting = k->names.waiting,
		.limit = slimit, .qstem = k->names.queue_stem,
		.lstem = k->names.lanes_stem, .rstem = k->names.request_stem,
		.crstem = k->names.client_ready_stem, .clients_ready = k->names.clients_ready
	};
	const char *argv[PB_FN_PROMOTE_ARGC];

	snprintf(slimit, sizeof(slimit), "%ld", limit);
	return int_fcall(r, pb_fn_promote_argv(&a, argv), argv, moved);
}

int pb_queue_stats_get(pb_redis *r, const pb_queue_keys *k, long lease_ms,
		       pb_queue_stats *s)
{
	char slease[24], sheads[24];
	const pb_fn_stats a = {
		.lease = k->names.metrics_lease, .waiting = k->names.waiting,
		.v1_queue = k->names.queue, .scheduled = k->names.scheduled,
		.dead = k->names.dead, .agents = k->names.agents,
		.ready = k->names.ready, .agent = k->agent_id,
		.lease_ms = slease, .pstem = k->names.processing_stem,
		.qstem = k->names.queue_stem, .rstem = k->names.request_stem,
		.heads = sheads, .hstem = k->names.held_stem,
		.lstem = k->names.lanes_stem
	};
	long long *out[] = { &s->waiting, &s->scheduled, &s->in_flight, &s->dead,
			     &s->oldest_ms, &s->blocked };
	const char *argv[PB_FN_STATS_ARGC];
	redisReply *reply;
	size_t i;

	memset(s, 0, sizeof(*s));
	snprintf(slease, sizeof(slease), "%ld", lease_ms);
	snprintf(sheads, sizeof(sheads), "%d", PB_STATS_HEADS);
	reply = pb_redis_argv(r, pb_fn_stats_argv(&a, argv), argv, NULL);
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
	/* At most 8 words a record and 2 for a P before it. */
	enum { MOST = 10 };
	size_t most = PB_FN_OUTCOMES_ARGC + (size_t)MOST * (size_t)n;
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
		const pb_fn_outcomes a = {
			.v1_processing = k->processing, .v1_queue = k->names.queue,
			.ready = k->names.ready, .waiting = k->names.waiting,
			.scheduled = k->names.scheduled, .dead = k->names.dead,
			.counts = k->names.client_waiting,
			.rstem = k->names.request_stem, .dstem = k->names.data_stem,
			.bstem = k->names.dest_stem, .qstem = k->names.queue_stem,
			.threshold = breaker[0], .cooldown = breaker[1],
			.held = k->held, .lstem = k->names.lanes_stem,
			.crstem = k->names.client_ready_stem,
			.clients_ready = k->names.clients_ready
		};
		argc = pb_fn_outcomes_argv(&a, argv);
	}
	for (i = 0; i < n; i++) {
		/* Records of one destination in a row share a P. */
		if (i == 0 || strcmp(o[i].dest, o[i - 1].dest) != 0) {
			argv[argc++] = "P";
			argv[argc] = o[i].dest, lens[argc++] = strlen(o[i].dest);
		}
		append_record(&o[i], argv, lens, &argc, num[i]);
	}
	for (i = 0; i < argc; i++)
		if (lens[i] == 0)
			lens[i] = strlen(argv[i]);
	rc = pb_redis_append_argv(r, argc, argv, lens);
	free(argv);
	free(lens);
	free(num);
	return rc;
}
