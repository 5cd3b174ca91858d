/*
 * destgate.c - a destination's breaker and rate for the whole cluster
 * when its queue is split over shards (destgate.h).
 */
#include "destgate.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "log.h"
#include "pb.h"

#define SHARD_QUIET_MS 1000 /* a shard that did not answer is left alone this long */
#define GATE_SHARD 0        /* the gates live on the first shard */

typedef struct gate_conn {
	pthread_mutex_t lock;
	pb_redis r;
	int64_t quiet_until; /* not asked before (pb_now_ms) */
} gate_conn;

static gate_conn *conns; /* one a shard, when there are several */

int destgate_shared(void)
{
	return conns != NULL;
}

int destgate_init(void)
{
	char name[64];
	int s;

	if (cfg.shards.n < 2)
		return PB_OK;
	if ((conns = calloc((size_t)cfg.shards.n, sizeof(*conns))) == NULL)
		return PB_ERR_NOMEM;
	for (s = 0; s < cfg.shards.n; s++) {
		snprintf(name, sizeof(name), "agent-gate-%d", s);
		pthread_mutex_init(&conns[s].lock, NULL);
		pb_redis_init_shard(&conns[s].r, &cfg, name, s);
		conns[s].r.failover_wait_ms = 0; /* one try, never a failover's wait */
		conns[s].r.stop = &stopping;
	}
	return PB_OK;
}

void destgate_cleanup(void)
{
	int s;

	if (conns == NULL)
		return;
	for (s = 0; s < cfg.shards.n; s++) {
		pb_redis_close(&conns[s].r);
		pthread_mutex_destroy(&conns[s].lock);
	}
	free(conns);
	conns = NULL;
}

/* The lock of shard s's connection, unless the shard is quiet (then 0). */
static int enter(int s)
{
	pthread_mutex_lock(&conns[s].lock);
	if (pb_now_ms() < conns[s].quiet_until) {
		pthread_mutex_unlock(&conns[s].lock);
		return 0;
	}
	return 1;
}

/* Leave shard s's connection; rc a failure: quiet for a while, said once. */
static void leave(int s, int rc, const char *doing)
{
	gate_conn *g = &conns[s];

	if (rc != PB_OK) {
		if (g->quiet_until == 0 || pb_now_ms() - g->quiet_until > SHARD_QUIET_MS)
			pb_warn("%s on shard %s: %s; its destinations' turns wait "
				"(retried in %d ms)", doing, cfg.shards.name[s],
				g->r.errstr, SHARD_QUIET_MS);
		g->quiet_until = pb_now_ms() + SHARD_QUIET_MS;
	}
	pthread_mutex_unlock(&g->lock);
}

void destgate_ask(const char *dest, const char *what, long ask_ms, int *granted,
		  long *ms)
{
	int rc;

	*granted = 0;
	*ms = SHARD_QUIET_MS;
	if ((strcmp(what, "probe") != 0 && strcmp(what, "pace") != 0) || ask_ms <= 0)
		return;
	if (!enter(GATE_SHARD))
		return;
	rc = pb_queue_gate(&conns[GATE_SHARD].r, &keys, dest, what, ask_ms, granted, ms);
	leave(GATE_SHARD, rc, "asking a destination's gate");
	if (rc != PB_OK)
		*granted = 0, *ms = SHARD_QUIET_MS;
}

void destgate_mirror(const char *dest, const pb_breaker_news *news)
{
	int s, rc;

	for (s = 0; s < cfg.shards.n; s++) {
		if (!enter(s))
			continue;
		rc = pb_queue_mirror(&conns[s].r, &keys, dest, news, cfg.breaker_cooldown_ms);
		leave(s, rc, news->open ? "opening a breaker" : "closing a breaker");
	}
}
