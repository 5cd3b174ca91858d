/*
 * pbctl switchover [SHARD]: the master role moved to a replica of the shard
 * without losing an acknowledged write.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "pb.h"
#include "replinfo.h"
#include "shard.h"

/*
 * A planned switchover. SENTINEL FAILOVER alone is a forced failover: the
 * old master keeps taking writes while the replica Sentinel promotes has
 * stopped following it, and the other replica confirms them (WAIT 1) until
 * Sentinel moves it too; both then resynchronise from the new master and
 * those writes are gone (the switchover drill lost 74 acknowledged
 * postbacks that way). So, as Redis's own FAILOVER command does it: writes
 * paused on the master, every replica caught up, then the failover, and the
 * old master made a replica before its writes resume (they then fail with
 * READONLY and the clients go to the new master).
 */
#define SWITCH_CATCH_UP_MS 5000

/* One command on one node, on a connection of its own (Sentinel kills the
 * clients of the nodes it reconfigures). NULL, with a message, on failure. */
static redisReply *node_cmd(const pb_hostport *hp, const char *fmt, ...)
{
	redisContext *c = pb_redis_dial_node(&R, hp);
	redisReply *r = NULL;
	va_list ap;

	if (c == NULL) {
		fprintf(stderr, "pbctl: %s\n", R.errstr);
		return NULL;
	}
	va_start(ap, fmt);
	r = redisvCommand(c, fmt, ap);
	va_end(ap);
	if (r == NULL)
		fprintf(stderr, "pbctl: %s:%d: %s\n", hp->host, hp->port, c->errstr);
	else if (r->type == REDIS_REPLY_ERROR) {
		fprintf(stderr, "pbctl: %s:%d: %s\n", hp->host, hp->port, r->str);
		freeReplyObject(r);
		r = NULL;
	}
	redisFree(c);
	return r;
}

static int node_ok(const pb_hostport *hp, const char *fmt, const char *a,
		   const char *b)
{
	redisReply *r = node_cmd(hp, fmt, a, b);

	if (r == NULL)
		return 0;
	freeReplyObject(r);
	return 1;
}

static int node_is_master(const pb_hostport *hp)
{
	redisReply *r = node_cmd(hp, "ROLE");
	int yes = r && r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
		  r->element[0]->type == REDIS_REPLY_STRING &&
		  strcmp(r->element[0]->str, "master") == 0;

	if (r)
		freeReplyObject(r);
	return yes;
}

/* How many bytes the furthest-behind online replica lacks; -1 if none is
 * online or INFO cannot be read. */
static long replicas_behind(const pb_hostport *master)
{
	redisReply *r = node_cmd(master, "INFO replication");
	pb_repl_info info;
	long behind = -1;

	if (r != NULL && r->type == REDIS_REPLY_STRING &&
	    pb_repl_info_parse(r->str, &info) == PB_OK)
		behind = pb_repl_info_behind(&info);
	if (r)
		freeReplyObject(r);
	return behind;
}

int cmd_switchover(const pb_args *a)
{
	long timeout_s = (long)pb_args_num(a, "--timeout", 30);
	pb_hostport old, now;
	char pause_ms[32], port[16];
	redisReply *r = NULL;
	long behind = -1;
	int64_t t0, deadline;
	int i;

	if (a->npos > 0) {
		if ((i = pb_shard_find(&cfg.shards, a->pos[0])) < 0) {
			fprintf(stderr, "pbctl: no shard '%s' (master_name %s)\n", a->pos[0],
				cfg.master_name);
			return 2;
		}
		pb_redis_init_shard(&R, &cfg, "pbctl", i);
	} else if (cfg.shards.n > 1) {
		fprintf(stderr, "pbctl: which shard? switchover SHARD, one of %s\n",
			cfg.master_name);
		return 2;
	}
	if (majority_master(&old) != PB_OK || !node_is_master(&old)) {
		fprintf(stderr, "pbctl: no master that a majority of the Sentinels names "
			"and that says it is master: not switching over\n");
		return 1;
	}
	t0 = pb_now_ms();
	snprintf(pause_ms, sizeof(pause_ms), "%ld", timeout_s * 1000);
	if (!node_ok(&old, "CLIENT PAUSE %s %s", pause_ms, "WRITE"))
		return 1;
	deadline = t0 + SWITCH_CATCH_UP_MS;
	while ((behind = replicas_behind(&old)) != 0 && pb_now_ms() < deadline)
		pb_sleep_ms(20, NULL);
	if (behind != 0) {
		fprintf(stderr, "pbctl: %s:%d: replicas %s after %d ms: not switching over\n",
			old.host, old.port, behind < 0 ? "not online" : "still behind",
			SWITCH_CATCH_UP_MS);
		node_ok(&old, "CLIENT UNPAUSE", NULL, NULL);
		return 1;
	}
	for (i = 0; i < R.nsentinels && r == NULL; i++) {
		r = pb_sentinel_cmd(&R, &R.sentinels[i], "SENTINEL FAILOVER %s",
				    R.master_name);
		if (r && r->type == REDIS_REPLY_ERROR) {
			fprintf(stderr, "pbctl: sentinel %s:%d: %s\n", R.sentinels[i].host,
				R.sentinels[i].port, r->str);
			freeReplyObject(r);
			r = NULL;
		}
	}
	if (r == NULL) {
		fprintf(stderr, "pbctl: no Sentinel started a failover: not switching over\n");
		node_ok(&old, "CLIENT UNPAUSE", NULL, NULL);
		return 1;
	}
	freeReplyObject(r);
	deadline = t0 + timeout_s * 1000;
	while (!(majority_master(&now) == PB_OK && !same_node(&now, &old) &&
		 node_is_master(&now))) {
		if (pb_now_ms() > deadline) {
			fprintf(stderr, "pbctl: the Sentinels named no new master in %ld s; "
				"writes on %s:%d resume when the pause ends\n", timeout_s,
				old.host, old.port);
			return 1;
		}
		pb_sleep_ms(100, NULL);
	}
	snprintf(port, sizeof(port), "%d", now.port);
	if (!node_ok(&old, "REPLICAOF %s %s", now.host, port)) {
		/* Unpausing a node that may still act as master could lose
		 * writes: let the pause run out; Sentinel demotes it meanwhile. */
		fprintf(stderr, "pbctl: %s:%d is not yet a replica of %s:%d; its "
			"writes stay paused until the pause ends\n", old.host, old.port,
			now.host, now.port);
		return 1;
	}
	node_ok(&old, "CLIENT UNPAUSE", NULL, NULL);
	if (json_mode) {
		json_object_set_new(answer, "shard", json_string(R.master_name));
		json_object_set_new(answer, "old", json_pack("{s:s, s:i}", "host", old.host,
							     "port", old.port));
		json_object_set_new(answer, "new", json_pack("{s:s, s:i}", "host", now.host,
							     "port", now.port));
		json_object_set_new(answer, "paused_ms", json_integer(pb_now_ms() - t0));
		return 0;
	}
	printf("switched over: master %s:%d -> %s:%d, writes paused %lld ms\n", old.host,
	       old.port, now.host, now.port, (long long)(pb_now_ms() - t0));
	return 0;
}
