/*
 * fetch.c - a shard's fetcher thread: postbacks from the shard's master
 * into this agent's held sets there and over to the deliverer; what a
 * previous run held first, then heartbeat, reaping and due retries on the
 * way. One runs for each shard (agent.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "agentmetrics.h"
#include "destgate.h"
#include "log.h"
#include "pb.h"
#include "policies.h"
#include "signers.h"
#include "version.h"

/*
 * sw->beats_ok_since: since when our heartbeats on this shard have been
 * written without a failure (0: the last one failed). While Redis refuses
 * writes (no master, NOREPLICAS), no agent can refresh its heartbeat and
 * every one expires; reaping then, as soon as writes return, would take
 * live agents' work. So an agent reaps others only after its own
 * heartbeats have succeeded for a whole TTL.
 */
static void heartbeat(shard_worker *sw)
{
	pb_redis *r = &sw->fetch;
	char info[160];

	snprintf(info, sizeof(info),
		 "{\"pid\":%d,\"held\":%ld,\"at\":%lld,\"version\":\"%s\"}",
		 (int)getpid(), handover_held_in(sw->shard), (long long)pb_wall_ms(),
		 PB_BUILD_VERSION);
	if (pb_queue_heartbeat(r, &keys, cfg.heartbeat_ttl_ms, info) != PB_OK) {
		pb_warn("heartbeat on shard %s: %s", sw->name, r->errstr);
		sw->beats_ok_since = 0;
	} else if (sw->beats_ok_since == 0) {
		sw->beats_ok_since = pb_now_ms();
	}
}

/* Due retries go back to the queue at most every TICK_MS (their delays are
 * hundreds of milliseconds and more), not before every take: under load a
 * take comes every couple of milliseconds, and each promote was a round
 * trip on the master that the next take waited for. A promote that moved
 * its limit goes on at the next turn. */
enum { PROMOTE_LIMIT = 1000 };

static void housekeeping(shard_worker *sw, int64_t *next_beat, int64_t *next_reap)
{
	pb_redis *r = &sw->fetch;
	int64_t now = pb_now_ms();
	long long moved = 0;

	fetch_turn_ms = now; /* the deliverer pings the watchdog while this moves */
	if (now >= *next_beat) {
		heartbeat(sw);
		*next_beat = now + HEARTBEAT_MS;
	}
	if (now >= *next_reap && sw->beats_ok_since &&
	    now - sw->beats_ok_since >= cfg.heartbeat_ttl_ms) {
		if (pb_queue_reap(r, &keys, &moved) == PB_OK && moved > 0)
			pb_warn("reclaimed %lld postback(s) on shard %s from agents "
				"whose heartbeat expired", moved, sw->name);
		*next_reap = now + cfg.heartbeat_ttl_ms / 3;
	}
	if (now >= sw->next_promote) {
		sw->next_promote = now + TICK_MS;
		if (pb_queue_promote(r, &keys, PROMOTE_LIMIT, &moved) == PB_OK &&
		    moved > 0) {
			pb_debug("moved %lld due retries to the queue on shard %s",
				 moved, sw->name);
			if (moved == PROMOTE_LIMIT)
				sw->next_promote = now;
		}
	}
	if (sw->shard == 0 && now >= sw->next_signers) {
		/* The signing secrets live on the first shard, as the client keys. */
		sw->next_signers = now + SIGNERS_REFRESH_MS;
		if (signers_refresh(r, &keys.names) != PB_OK)
			pb_warn("signing secrets on shard %s: %s", sw->name, r->errstr);
		/* And the destinations' policies. */
		if (policies_refresh(r, &keys.names) != PB_OK)
			pb_warn("policies on shard %s: %s", sw->name, r->errstr);
	}
	am_queue_tick(r);
}

/*
 * The request header of the take's triple i, for jb: the take sends it
 * once per request and "" for the request's later postbacks in the same
 * reply, so such a header is that of an earlier job of the same request
 * in this reply (list, newest first); nil when there is none (version 1,
 * or the request is gone).
 */
static int set_header(job *jb, const redisReply *h, const job *list)
{
	const char *rid, *r2;
	size_t n, m;

	if (h->type != REDIS_REPLY_STRING)
		return job_set_header(jb, NULL, 0);
	if (h->len > 0 || (rid = job_rid(jb, &n)) == NULL)
		return job_set_header(jb, h->str, h->len);
	for (; list; list = list->next)
		if ((r2 = job_rid(list, &m)) && m == n && memcmp(r2, rid, n) == 0 &&
		    list->hdr)
			return job_set_header(jb, list->hdr, list->hdr_len);
	return job_set_header(jb, h->str, h->len);
}

/*
 * The gate's answers to a take's asks (destgate.h), which go with the
 * next take: a probe or a paced take granted for the whole cluster, or
 * how long to wait. At most GATE_ASKS a take are asked; the rest ask again
 * at their next turn.
 */
enum { GATE_ASKS = 32 };
typedef struct gate_answers {
	char dest[GATE_ASKS][PB_DEST_ID_LEN + 1];
	char ms[GATE_ASKS][24];
	const char *argv[3 * GATE_ASKS];
	int n;
} gate_answers;

static void ask_gates(const redisReply *rep, gate_answers *ga)
{
	size_t i;
	int granted;
	long ms;
	const char **a;

	ga->n = 0;
	for (i = 0; i + 2 < rep->elements && ga->n < GATE_ASKS; i += 3) {
		const redisReply *x = rep->element[i], *what = rep->element[i + 1];
		const redisReply *ask_ms = rep->element[i + 2];

		if (x->type != REDIS_REPLY_STRING || x->len != PB_DEST_ID_LEN + 1 ||
		    x->str[0] != '?' || what->type != REDIS_REPLY_STRING ||
		    ask_ms->type != REDIS_REPLY_INTEGER)
			continue;
		memcpy(ga->dest[ga->n], x->str + 1, PB_DEST_ID_LEN);
		ga->dest[ga->n][PB_DEST_ID_LEN] = '\0';
		destgate_ask(ga->dest[ga->n], what->str, (long)ask_ms->integer, &granted, &ms);
		snprintf(ga->ms[ga->n], sizeof(ga->ms[ga->n]), "%ld", ms);
		a = ga->argv + (size_t)3 * (size_t)ga->n;
		a[0] = ga->dest[ga->n];
		a[1] = granted ? "1" : "0";
		a[2] = ga->ms[ga->n];
		ga->n++;
	}
}

/* The take's triples (pb_queue_take) to the deliverer, in want slots
 * reserved; the reply is freed. Asks for the gate ("?<d>") were answered
 * before (ask_gates). */
static void hand_over(const shard_worker *sw, redisReply *rep, int want)
{
	job *list = NULL, *jb;
	size_t i;
	char dest[PB_DEST_ID_LEN + 1] = "";

	for (i = 0; i + 2 < rep->elements; i += 3) {
		const redisReply *x = rep->element[i];

		if (x->type != REDIS_REPLY_STRING ||
		    (x->len == PB_DEST_ID_LEN + 1 && x->str[0] == '?'))
			continue;
		if (x->len == PB_DEST_ID_LEN + 1 && x->str[0] == '@') {
			/* The destination of the references that follow. */
			memcpy(dest, x->str + 1, PB_DEST_ID_LEN);
			continue;
		}
		jb = job_new(x, rep->element[i + 1], dest, (size_t)cfg.log_body_bytes);
		if (jb == NULL || set_header(jb, rep->element[i + 2], list) != PB_OK) {
			/* Still held in Redis: reclaimed at restart. */
			pb_error("out of memory: a postback stays in %s on shard %s",
				 keys.held, sw->name);
			if (jb)
				job_free(jb);
			continue;
		}
		jb->shard = sw->shard;
		jb->next = list;
		list = jb;
	}
	freeReplyObject(rep);
	am_in_flight(handover_give(list, want));
}

/*
 * After a failover the new master's copy of what we hold may hold
 * entries we no longer have: an acknowledgement that reached the old master
 * but not the replica, or an LMOVE whose reply was lost. A take whose
 * connection broke may also have moved jobs whose replies never came. Take
 * nothing until every postback we hold is recorded; then whatever is still
 * in the list is stale and goes back to the queue (delivered already: one
 * duplicate; never delivered: recovered).
 */
static void reconcile(shard_worker *sw, const char *why, int64_t *next_beat,
		      int64_t *next_reap)
{
	pb_redis *r = &sw->fetch;
	long long moved = 0;

	pb_warn("%s (shard %s, master %s:%d): finishing what is in flight, "
		"then returning what is left in %s", why, sw->name,
		r->master.host, r->master.port, keys.held);
	while (handover_held_in(sw->shard) > 0 && !stopping) {
		housekeeping(sw, next_beat, next_reap);
		pb_sleep_ms(TICK_MS, &stopping);
	}
	if (stopping) /* the next start takes back the list */
		return;
	if (pb_queue_reclaim_own(r, &keys, &moved) != PB_OK)
		pb_warn("reconciling %s on shard %s: %s", keys.held, sw->name,
			r->errstr);
	else if (moved > 0)
		pb_warn("returned %lld postback(s) left in %s on shard %s", moved,
			keys.held, sw->name);
}

/* What a previous run of this agent held on the shard goes back to its
 * queue, before the first take (and while the other shards deliver). */
static void reclaim_own(shard_worker *sw)
{
	pb_redis *r = &sw->fetch;
	long long moved = 0;

	while (pb_queue_reclaim_own(r, &keys, &moved) != PB_OK && !stopping) {
		pb_warn("reclaiming %s on shard %s: %s; trying again", keys.held,
			sw->name, r->errstr);
		pb_sleep_ms(1000, &stopping);
	}
	if (moved > 0)
		pb_warn("took back %lld postback(s) held on shard %s by the "
			"previous run of %s", moved, sw->name, cfg.agent_id);
}

void *fetcher_main(void *arg)
{
	shard_worker *sw = arg;
	pb_redis *r = &sw->fetch;
	int64_t next_beat = 0, next_reap = 0;
	unsigned seen_changes = r->master_changes;
	int take_broke = 0; /* a take's connection broke: reconcile on the next one */
	int unregistered = 0; /* said so once; quiet until it changes */
	gate_answers *ga = calloc(1, sizeof(*ga));
	handover_room *rs = calloc((size_t)cfg.concurrency, sizeof(*rs));
	const char **rooms = calloc(2 * (size_t)cfg.concurrency, sizeof(*rooms)); /* NOLINT(bugprone-sizeof-expression): pointers */

	reclaim_own(sw);
	seen_changes = r->master_changes;
	while (!stopping && rs && rooms && ga) {
		redisReply *got = NULL;
		pb_take_gate g = { destgate_shared(), ga->argv, ga->n };
		int want, rc, capped = 0;
		int64_t t0;

		housekeeping(sw, &next_beat, &next_reap);
		if (r->master_changes != seen_changes) {
			seen_changes = r->master_changes;
			reconcile(sw, "a new master", &next_beat, &next_reap);
			continue;
		}
		if (take_broke && r->c != NULL) {
			take_broke = 0;
			reconcile(sw, "a take lost its connection", &next_beat, &next_reap);
			continue;
		}
		if ((want = handover_wait_slots(cfg.fetch_batch, &stopping)) == 0)
			continue;
		t0 = pb_now_us();
		rc = pb_queue_take(r, &keys, want, TICK_MS,
				   cfg.max_in_flight_per_destination, rooms,
				   handover_rooms(rs, rooms), &g, &got, &capped);
		ga->n = 0; /* the answers went with it (or are lost with it) */
		if (rc == PB_ERR_NOTFOUND) {
			/* Reaped while cut off, or new to this master: the
			 * heartbeat registers us, then we take. */
			if (!unregistered)
				pb_info("shard %s: %s: registering before taking",
					sw->name, r->errstr);
			unregistered = 1;
			next_beat = 0;
			handover_give(NULL, want);
			pb_sleep_ms(TICK_MS, &stopping);
			continue;
		}
		unregistered = 0;
		if (rc != PB_OK) {
			pb_warn("taking postbacks on shard %s: %s", sw->name, r->errstr);
			take_broke |= r->c == NULL;
			pb_sleep_ms(TICK_MS, &stopping);
		}
		if (got && got->elements >= 3) {
			am_take_round((double)(pb_now_us() - t0) / 1e6);
			if (g.shared)
				ask_gates(got, ga);
			hand_over(sw, got, want);
		} else {
			handover_give(NULL, want);
			if (got)
				freeReplyObject(got);
			if (capped)
				handover_wait_dest_slot(&stopping);
		}
	}
	if (!rs || !rooms || !ga)
		pb_error("fetcher: out of memory; taking nothing");
	free(ga);
	free(rs);
	free(rooms);
	handover_fetcher_done();
	return NULL;
}
