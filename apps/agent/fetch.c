/*
 * fetch.c - the fetcher thread: postbacks from Redis into this agent's
 * held sets and over to the deliverer; heartbeat, reaping and due
 * retries on the way.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "agentmetrics.h"
#include "log.h"
#include "pb.h"
#include "version.h"

/* Postbacks taken and not yet recorded, as the threads share them. */
long held_now(void)
{
	long h;

	pthread_mutex_lock(&H.mu);
	h = H.held;
	pthread_mutex_unlock(&H.mu);
	return h;
}

void dest_held_add(const char *id, long delta)
{
	long i;

	if (id[0] == '\0') /* a version 1 job: no destination */
		return;
	for (i = 0; i < H.ndests && strcmp(H.dests[i].id, id) != 0; i++)
		;
	if (i == H.ndests) {
		if (delta <= 0 || H.ndests == cfg.concurrency)
			return; /* at most one destination per slot */
		memcpy(H.dests[i].id, id, sizeof(H.dests[i].id));
		H.dests[i].n = 0;
		H.ndests++;
	}
	H.dests[i].n += delta;
	if (H.dests[i].n <= 0)
		H.dests[i] = H.dests[--H.ndests];
}

/* A destination this agent holds, as the take is told of it. */
typedef struct room {
	char id[PB_DEST_ID_LEN + 1];
	char left[24];
} room;

/*
 * What each destination this agent holds may still take, as the take's
 * pairs of id and room (argv points into rs); the others may take
 * max_in_flight_per_destination. rs and argv have room for concurrency
 * destinations.
 */
static int rooms_now(room *rs, const char **argv)
{
	long i, left;
	size_t n = 0;

	pthread_mutex_lock(&H.mu);
	for (i = 0; i < H.ndests; i++, n++) {
		left = cfg.max_in_flight_per_destination - H.dests[i].n;
		memcpy(rs[n].id, H.dests[i].id, sizeof(rs[n].id));
		snprintf(rs[n].left, sizeof(rs[n].left), "%ld", left < 0 ? 0 : left);
		argv[2 * n] = rs[n].id;
		argv[2 * n + 1] = rs[n].left;
	}
	pthread_mutex_unlock(&H.mu);
	return (int)n;
}

/*
 * Since when our heartbeats have been written without a failure (0: the
 * last one failed). While Redis refuses writes (no master, NOREPLICAS),
 * no agent can refresh its heartbeat and every one expires; reaping then,
 * as soon as writes return, would take live agents' work. So an agent reaps
 * others only after its own heartbeats have succeeded for a whole TTL.
 */
static int64_t beats_ok_since;

static void heartbeat(pb_redis *r)
{
	char info[160];

	snprintf(info, sizeof(info),
		 "{\"pid\":%d,\"held\":%ld,\"at\":%lld,\"version\":\"%s\"}",
		 (int)getpid(), held_now(), (long long)pb_wall_ms(), PB_BUILD_VERSION);
	if (pb_queue_heartbeat(r, &keys, cfg.heartbeat_ttl_ms, info) != PB_OK) {
		pb_warn("heartbeat: %s", r->errstr);
		beats_ok_since = 0;
	} else if (beats_ok_since == 0) {
		beats_ok_since = pb_now_ms();
	}
}

_Atomic int64_t fetch_turn_ms;

/* Due retries go back to the queue at most every TICK_MS (their delays are
 * hundreds of milliseconds and more), not before every take: under load a
 * take comes every couple of milliseconds, and each promote was a round
 * trip on the master that the next take waited for. A promote that moved
 * its limit goes on at the next turn. */
enum { PROMOTE_LIMIT = 1000 };

static void housekeeping(pb_redis *r, int64_t *next_beat, int64_t *next_reap)
{
	static int64_t next_promote;
	int64_t now = pb_now_ms();
	long long moved = 0;

	fetch_turn_ms = now; /* the deliverer pings the watchdog while this moves */
	if (now >= *next_beat) {
		heartbeat(r);
		*next_beat = now + HEARTBEAT_MS;
	}
	if (now >= *next_reap && beats_ok_since &&
	    now - beats_ok_since >= cfg.heartbeat_ttl_ms) {
		if (pb_queue_reap(r, &keys, &moved) == PB_OK && moved > 0)
			pb_warn("reclaimed %lld postback(s) from agents whose heartbeat "
				"expired", moved);
		*next_reap = now + cfg.heartbeat_ttl_ms / 3;
	}
	if (now >= next_promote) {
		next_promote = now + TICK_MS;
		if (pb_queue_promote(r, &keys, PROMOTE_LIMIT, &moved) == PB_OK &&
		    moved > 0) {
			pb_debug("moved %lld due retries to the queue", moved);
			if (moved == PROMOTE_LIMIT)
				next_promote = now;
		}
	}
	am_queue_tick(r);
}

/* A deadline TICK_MS from now, for pthread_cond_timedwait on slots_cv. */
static void tick_from_now(struct timespec *ts)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_nsec += TICK_MS * 1000000L;
	if (ts->tv_nsec >= 1000000000L)
		ts->tv_sec++, ts->tv_nsec -= 1000000000L;
}

/* Wait for free slots; returns how many may be taken (0: stopping). */
static int wait_for_slots(void)
{
	int free_slots = 0;
	struct timespec ts;

	pthread_mutex_lock(&H.mu);
	while (!stopping && (free_slots = (int)(cfg.concurrency - H.held)) <= 0) {
		tick_from_now(&ts);
		pthread_cond_timedwait(&H.slots_cv, &H.mu, &ts);
		if ((free_slots = (int)(cfg.concurrency - H.held)) <= 0)
			break; /* time for housekeeping */
	}
	pthread_mutex_unlock(&H.mu);
	if (stopping || free_slots < 0)
		return 0;
	return free_slots < cfg.fetch_batch ? free_slots : (int)cfg.fetch_batch;
}

/* The rid word of a reference, its length: the second of a version 2
 * reference's six words, the first of a version 3 reference's two or
 * three (job.h). */
static const char *rid_of(const redisReply *x, size_t *n)
{
	const char *p = x->str, *e;
	size_t spaces = 0, i;

	for (i = 0; i < x->len; i++)
		spaces += x->str[i] == ' ';
	if (spaces == 5)
		p = (const char *)memchr(x->str, ' ', x->len) + 1;
	else if (spaces != 1 && spaces != 2)
		return *n = 0, NULL;
	e = memchr(p, ' ', x->len - (size_t)(p - x->str));
	*n = e ? (size_t)(e - p) : 0;
	return p;
}

/* The header of the request seen last in a reply, and that request's id:
 * a reply's postbacks of one request mostly come one after another. */
typedef struct last_header {
	const redisReply *h;
	const char *rid;
	size_t n;
} last_header;

/* The request header of triple i: the take sends it once per request and
 * "" for the request's later postbacks in the same reply. */
static const redisReply *header_of(const redisReply *rep, size_t i, last_header *last)
{
	const redisReply *h = rep->element[i + 2], *x = rep->element[i];
	size_t n, m, j;
	const char *rid = rid_of(x, &n);

	if (h->type == REDIS_REPLY_STRING && h->len > 0 && rid) {
		*last = (last_header){ h, rid, n };
		return h;
	}
	if (h->type != REDIS_REPLY_STRING || h->len > 0)
		return h;
	if (rid && last->h && last->n == n && memcmp(last->rid, rid, n) == 0)
		return last->h;
	for (j = i; rid && n && j >= 3; j -= 3) {
		const redisReply *y = rep->element[j - 3], *hy = rep->element[j - 1];
		const char *r2 = y->type == REDIS_REPLY_STRING ? rid_of(y, &m) : NULL;

		if (r2 && m == n && memcmp(r2, rid, n) == 0 &&
		    hy->type == REDIS_REPLY_STRING && hy->len > 0)
			return hy;
	}
	return h;
}

/*
 * Postbacks wait that this agent may not take until it has fewer in
 * delivery for their destination: wait until an attempt is over (or a
 * tick for housekeeping), not on the wake list (that says only that new
 * postbacks came).
 */
static void wait_for_a_slot(void)
{
	struct timespec ts;
	unsigned long freed;

	pthread_mutex_lock(&H.mu);
	freed = H.dest_freed;
	tick_from_now(&ts);
	while (!stopping && H.dest_freed == freed &&
	       pthread_cond_timedwait(&H.slots_cv, &H.mu, &ts) == 0)
		;
	pthread_mutex_unlock(&H.mu);
}

/* The take's triples (pb_queue_take) to the deliverer; the reply is freed. */
static void hand_over(redisReply *rep)
{
	job *list = NULL;
	size_t i;
	int taken = 0;
	long held;
	char dest[PB_DEST_ID_LEN + 1] = "";
	last_header last = { NULL, NULL, 0 };

	for (i = 0; i + 2 < rep->elements; i += 3) {
		const redisReply *x = rep->element[i];
		job *jb;

		if (x->type != REDIS_REPLY_STRING)
			continue;
		if (x->len == PB_DEST_ID_LEN + 1 && x->str[0] == '@') {
			/* The destination of the references that follow. */
			memcpy(dest, x->str + 1, PB_DEST_ID_LEN);
			continue;
		}
		if ((jb = job_new(x, header_of(rep, i, &last), rep->element[i + 1], dest)) == NULL) {
			/* Still held in Redis: reclaimed at restart. */
			pb_error("out of memory: a postback stays in %s", keys.held);
			continue;
		}
		taken++;
		jb->next = list;
		list = jb;
	}
	freeReplyObject(rep);
	pthread_mutex_lock(&H.mu);
	while (list) {
		job *nx = list->next;
		list->next = H.taken;
		H.taken = list;
		dest_held_add(list->dest, 1);
		list = nx;
	}
	H.held += taken;
	held = H.held;
	pthread_mutex_unlock(&H.mu);
	am_in_flight(held);
	curl_multi_wakeup(multi);
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
static void reconcile(pb_redis *r, const char *why, int64_t *next_beat,
		      int64_t *next_reap)
{
	long long moved = 0;

	pb_warn("%s (master %s:%d): finishing what is in flight, then "
		"returning what is left in %s", why, r->master.host,
		r->master.port, keys.held);
	while (held_now() > 0 && !stopping) {
		housekeeping(r, next_beat, next_reap);
		pb_sleep_ms(TICK_MS, &stopping);
	}
	if (stopping) /* the next start takes back the list */
		return;
	if (pb_queue_reclaim_own(r, &keys, &moved) != PB_OK)
		pb_warn("reconciling %s: %s", keys.held, r->errstr);
	else if (moved > 0)
		pb_warn("returned %lld postback(s) left in %s", moved,
			keys.held);
}

void *fetcher_main(void *arg)
{
	pb_redis *r = arg;
	int64_t next_beat = 0, next_reap = 0;
	unsigned seen_changes = r->master_changes;
	int take_broke = 0; /* a take's connection broke: reconcile on the next one */
	int unregistered = 0; /* said so once; quiet until it changes */
	room *rs = calloc((size_t)cfg.concurrency, sizeof(*rs));
	const char **rooms = calloc(2 * (size_t)cfg.concurrency, sizeof(*rooms)); /* NOLINT(bugprone-sizeof-expression): pointers */

	while (!stopping && rs && rooms) {
		redisReply *got = NULL;
		int want, rc, capped = 0;
		int64_t t0;

		housekeeping(r, &next_beat, &next_reap);
		if (r->master_changes != seen_changes) {
			seen_changes = r->master_changes;
			reconcile(r, "a new master", &next_beat, &next_reap);
			continue;
		}
		if (take_broke && r->c != NULL) {
			take_broke = 0;
			reconcile(r, "a take lost its connection", &next_beat, &next_reap);
			continue;
		}
		if ((want = wait_for_slots()) == 0)
			continue;
		t0 = pb_now_us();
		rc = pb_queue_take(r, &keys, want, TICK_MS,
				   cfg.max_in_flight_per_destination, rooms,
				   rooms_now(rs, rooms), &got, &capped);
		if (rc == PB_ERR_NOTFOUND) {
			/* Reaped while cut off, or new to this master: the
			 * heartbeat registers us, then we take. */
			if (!unregistered)
				pb_info("%s: registering before taking", r->errstr);
			unregistered = 1;
			next_beat = 0;
			pb_sleep_ms(TICK_MS, &stopping);
			continue;
		}
		unregistered = 0;
		if (rc != PB_OK) {
			pb_warn("taking postbacks: %s", r->errstr);
			take_broke |= r->c == NULL;
			pb_sleep_ms(TICK_MS, &stopping);
		}
		if (got && got->elements >= 3) {
			am_take_round((double)(pb_now_us() - t0) / 1e6);
			hand_over(got);
		} else {
			if (got)
				freeReplyObject(got);
			if (capped)
				wait_for_a_slot();
		}
	}
	if (!rs || !rooms)
		pb_error("fetcher: out of memory; taking nothing");
	free(rs);
	free(rooms);
	pthread_mutex_lock(&H.mu);
	H.fetcher_done = 1;
	pthread_mutex_unlock(&H.mu);
	curl_multi_wakeup(multi);
	return NULL;
}
