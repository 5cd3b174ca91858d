/*
 * pbctl status: who is master per Sentinel, the replicas and their lag, the
 * queue, retries, dead letters, open breakers, ingest nodes and agents,
 * and a verdict, also the exit code: 0 healthy, 1 degraded (the cluster
 * works with less room for a fault: a Sentinel, replica or agent gone), 2
 * down (no master a Sentinel majority names, the master silent, no
 * replica, or no ingest node alive: clients are refused). Each check that
 * fails says why on the "health" line.
 */
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "pb.h"
#include "replinfo.h"

enum { HEALTHY = 0, DEGRADED = 1, DOWN = 2 };
static int health = HEALTHY;
static char health_why[512];

static void print_sentinels(pb_hostport *agreed);
static void print_replicas(void);
static void print_queue(void);
static void print_ingests(void);
static void print_agents(void);
static void verdict(void);

int cmd_status(const pb_args *a)
{
	pb_hostport agreed;

	(void)a;
	die_code = DOWN;
	print_sentinels(&agreed);
	print_replicas();
	print_queue();
	if (R.shard == 0) /* the ingest nodes beat on the first shard (shard.h) */
		print_ingests();
	print_agents();
	verdict();
	return health;
}

static void worse(int level, const char *why)
{
	size_t n = strlen(health_why);

	if (level > health)
		health = level;
	snprintf(health_why + n, sizeof(health_why) - n, "%s%s", n ? "; " : "", why);
}

static const char *health_name(void)
{
	return health == HEALTHY ? "ok" : health == DEGRADED ? "DEGRADED" : "DOWN";
}

static void verdict(void)
{
	if (json_mode) {
		json_object_set_new(answer, "health", json_string(health_name()));
		json_object_set_new(answer, "why", json_string(health_why));
		return;
	}
	printf("health   %s%s%s\n", health_name(), health_why[0] ? ": " : "", health_why);
}

static json_t *list(const char *name)
{
	json_t *l = json_array();

	json_object_set_new(answer, name, l);
	return l;
}

static char *addr(char *out, size_t n, const char *host, long port)
{
	snprintf(out, n, "%s:%ld", host, port);
	return out;
}

/* Each Sentinel's master; the one a majority names, in *agreed (port 0:
 * none). A Sentinel silent or naming another is a degradation. */
static void print_sentinels(pb_hostport *agreed)
{
	json_t *l = json_mode ? list("sentinels") : NULL;
	pb_hostport named[PB_MAX_SENTINELS];
	char s_at[300], m_at[300], errs[PB_MAX_SENTINELS][256];
	int i;

	/* One question to each Sentinel serves both the verdict and the lines. */
	sentinels_ask(named, errs);
	if (majority_of(named, agreed) != PB_OK) {
		agreed->port = 0;
		worse(DOWN, "no master named by a majority of the Sentinels");
	}
	for (i = 0; i < R.nsentinels; i++) {
		const pb_hostport *s = &R.sentinels[i];
		const pb_hostport *m = &named[i];
		int ok = m->port != 0;

		addr(s_at, sizeof(s_at), s->host, s->port);
		if (ok)
			addr(m_at, sizeof(m_at), m->host, m->port);
		if (l)
			json_array_append_new(l, ok ? json_pack("{s:s, s:s}", "sentinel", s_at,
								"master", m_at)
						    : json_pack("{s:s, s:s}", "sentinel", s_at,
								"error", errs[i]));
		else
			printf("sentinel %s  %s%s\n", s_at, ok ? "master " : "", ok ? m_at : errs[i]);
		if (!ok)
			worse(DEGRADED, "a Sentinel does not answer");
		else if (agreed->port != 0 && !same_node(m, agreed))
			worse(DEGRADED, "a Sentinel names another master");
	}
}

/* How many replicas the Sentinels know of the master (down ones too): a
 * replica that stopped is missing from the master's INFO, not from them.
 * -1 when no Sentinel answers. */
static long replicas_known(void)
{
	int i;

	for (i = 0; i < R.nsentinels; i++) {
		redisReply *r = pb_sentinel_cmd(&R, &R.sentinels[i], "SENTINEL REPLICAS %s",
						R.master_name);
		long n = r && r->type == REDIS_REPLY_ARRAY ? (long)r->elements : -1;

		if (r)
			freeReplyObject(r);
		if (n >= 0)
			return n;
	}
	return -1;
}

static void print_replicas(void)
{
	redisReply *r = cmd_or_die("INFO replication");
	json_t *l = NULL;
	char at[300];
	pb_repl_info info;
	long known;
	int i;

	if (pb_repl_info_parse(r->str, &info) != PB_OK) {
		fprintf(stderr, "pbctl: %s:%d: INFO replication does not parse\n",
			R.master.host, R.master.port);
		freeReplyObject(r);
		return;
	}
	freeReplyObject(r);
	addr(at, sizeof(at), R.master.host, R.master.port);
	if (json_mode) {
		json_object_set_new(answer, "master",
				    json_pack("{s:s, s:I}", "addr", at,
					      "offset", (json_int_t)info.master_offset));
		l = list("replicas");
	} else {
		printf("master   %s  offset %ld\n", at, info.master_offset);
	}
	for (i = 0; i < info.nreplicas; i++) {
		const pb_replica_info *x = &info.replicas[i];

		addr(at, sizeof(at), x->ip, x->port);
		if (l)
			json_array_append_new(l, json_pack("{s:s, s:s, s:I, s:I}", "addr", at,
							   "state", x->state, "behind_bytes",
							   (json_int_t)(info.master_offset - x->offset),
							   "last_ack_s", (json_int_t)x->lag));
		else
			printf("replica  %s  %s  %ld bytes behind, last ack %ld s ago\n", at,
			       x->state, info.master_offset - x->offset, x->lag);
		if (strcmp(x->state, "online") != 0)
			worse(DEGRADED, "a replica is not online");
	}
	known = replicas_known();
	if (json_mode)
		json_object_set_new(answer, "replicas_known", json_integer(known));
	if (info.nreplicas == 0) {
		if (!json_mode)
			printf("replica  NONE: writes are refused (min-replicas-to-write)\n");
		worse(DOWN, "no replica: writes are refused");
	} else if (known > info.nreplicas) {
		if (!json_mode)
			printf("replica  %ld known to the Sentinels, %d connected\n", known,
			       info.nreplicas);
		worse(DEGRADED, "a replica is down");
	}
}

static void print_queue(void)
{
	long long w = waiting(), ready = int_cmd("ZCARD %s", K.ready);
	long long sched = int_cmd("ZCARD %s", K.scheduled), dead = int_cmd("LLEN %s", K.dead);
	long open = breakers_open();

	if (json_mode) {
		json_object_set_new(answer, "queue",
				    json_pack("{s:I, s:I, s:I, s:I, s:I}", "waiting", (json_int_t)w,
					      "destinations_ready", (json_int_t)ready,
					      "scheduled", (json_int_t)sched, "dead", (json_int_t)dead,
					      "breakers_open", (json_int_t)open));
		return;
	}
	printf("queue    %lld waiting, %lld destination(s) ready\n", w, ready);
	printf("retries  %lld scheduled\n", sched);
	printf("dead     %lld dead letters\n", dead);
	printf("breakers %ld open (pbctl breakers)\n", open);
}

/* Ingest nodes by their heartbeats (keys.h: <p>:ingest:<node>). SCAN: a
 * handful of keys among many, read by an operator, not a daemon. */
static void print_ingests(void)
{
	char cursor[32] = "0", pattern[PB_KEY_MAX + 1];
	size_t stem = strlen(K.ingest_stem), i;
	json_t *l = json_mode ? list("ingest") : NULL;
	int seen = 0;

	snprintf(pattern, sizeof(pattern), "%s*", K.ingest_stem);
	do {
		redisReply *r = cmd_or_die("SCAN %s MATCH %s COUNT 1000", cursor, pattern);
		redisReply *keys = r->element[1];

		pb_strlcpy(cursor, r->element[0]->str, sizeof(cursor));
		for (i = 0; i < keys->elements; i++, seen++) {
			redisReply *hb = cmd_or_die("GET %s", keys->element[i]->str);
			const char *node = keys->element[i]->str + stem;
			const char *beat = hb->type == REDIS_REPLY_STRING ? hb->str : "(gone)";

			if (l)
				json_array_append_new(l, json_pack("{s:s, s:s}", "node", node,
								   "heartbeat", beat));
			else
				printf("ingest   %-24s %s\n", node, beat);
			freeReplyObject(hb);
		}
		freeReplyObject(r);
	} while (strcmp(cursor, "0") != 0);
	if (seen == 0) {
		if (!json_mode)
			printf("ingest   none alive (no heartbeat in 10 s)\n");
		worse(DOWN, "no ingest node alive");
	}
}

static void print_agents(void)
{
	redisReply *ids = cmd_or_die("SMEMBERS %s", K.agents);
	json_t *l = json_mode ? list("agents") : NULL;
	size_t i;

	if (ids->elements == 0) {
		if (!json_mode)
			printf("agents   none registered\n");
		worse(DEGRADED, "no agent: nothing is delivered");
	}
	for (i = 0; i < ids->elements; i++) {
		const char *id = ids->element[i]->str;
		redisReply *hb = cmd_or_die("GET %s%s", K.heartbeat_stem, id);
		int alive = hb->type == REDIS_REPLY_STRING;
		long long held = held_by(id);

		if (l)
			json_array_append_new(l, json_pack("{s:s, s:b, s:I, s:s}", "agent", id,
							   "alive", alive, "in_flight",
							   (json_int_t)held, "heartbeat",
							   alive ? hb->str : ""));
		else
			printf("agent    %-16s %-5s in flight %lld  %s\n", id,
			       alive ? "alive" : "DEAD", held,
			       alive ? hb->str : "(heartbeat expired: its postbacks get reclaimed)");
		if (!alive)
			worse(DEGRADED, "an agent is dead");
		freeReplyObject(hb);
	}
	freeReplyObject(ids);
}
