/*
 * handover.c - the lists and slots the agent's threads share (handover.h).
 */
#include "handover.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pb.h"

static struct {
	pthread_mutex_t mu;
	pthread_cond_t slots_cv;  /* held went down, a slot freed, or stopping */
	pthread_cond_t record_cv; /* jobs finished, or the recorder may quit */
	job *taken;    /* fetchers -> deliverer: taken, not yet started */
	job *finished[PB_MAX_SHARDS]; /* deliverer -> recorders: not yet recorded */
	long held;     /* taken and not yet recorded */
	long reserved; /* slots a fetcher may fill with the take under way */
	long held_in[PB_MAX_SHARDS]; /* ... of each shard */
	long concurrency, per_dest;
	int nshards, fetchers_done;
	/* Of held, how many each destination has in delivery (those with
	 * any): its share of the delivery slots. At most one a slot. */
	struct dest_held { char id[PB_DEST_ID_LEN + 1]; long n; } *dests;
	long ndests;
	unsigned long dest_freed; /* counts attempts over: a slot of theirs freed */
	void (*wake)(void);
} H = { .mu = PTHREAD_MUTEX_INITIALIZER, .slots_cv = PTHREAD_COND_INITIALIZER,
	.record_cv = PTHREAD_COND_INITIALIZER };

int handover_init(long concurrency, long per_dest, int nshards,
		  void (*wake)(void))
{
	H.nshards = nshards;
	if ((H.dests = calloc((size_t)concurrency, sizeof(*H.dests))) == NULL)
		return PB_ERR_NOMEM;
	H.concurrency = concurrency;
	H.per_dest = per_dest;
	H.wake = wake;
	return PB_OK;
}

void handover_cleanup(void)
{
	free(H.dests);
	H.dests = NULL;
}

/* A destination's count of jobs in delivery, by delta; under H.mu. */
static void dest_add(const char *id, long delta)
{
	long i;

	if (id[0] == '\0') /* a version 1 job: no destination */
		return;
	for (i = 0; i < H.ndests && strcmp(H.dests[i].id, id) != 0; i++)
		;
	if (i == H.ndests) {
		if (delta <= 0 || H.ndests == H.concurrency)
			return; /* at most one destination per slot */
		memcpy(H.dests[i].id, id, sizeof(H.dests[i].id));
		H.dests[i].n = 0;
		H.ndests++;
	}
	H.dests[i].n += delta;
	if (H.dests[i].n <= 0)
		H.dests[i] = H.dests[--H.ndests];
}

/* A deadline TICK_MS from now, for pthread_cond_timedwait on slots_cv. */
static void tick_from_now(struct timespec *ts)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_nsec += TICK_MS * 1000000L;
	if (ts->tv_nsec >= 1000000000L)
		ts->tv_sec++, ts->tv_nsec -= 1000000000L;
}

/* ---- the fetcher ---------------------------------------------------------- */

int handover_wait_slots(long batch, const atomic_int *stop)
{
	long free_slots = 0;
	struct timespec ts;

	pthread_mutex_lock(&H.mu);
	while (!*stop && (free_slots = H.concurrency - H.held - H.reserved) <= 0) {
		tick_from_now(&ts);
		pthread_cond_timedwait(&H.slots_cv, &H.mu, &ts);
		if ((free_slots = H.concurrency - H.held - H.reserved) <= 0)
			break; /* time for housekeeping */
	}
	if (*stop || free_slots <= 0) {
		pthread_mutex_unlock(&H.mu);
		return 0;
	}
	/* A shard's share: the free slots over the shards, rounded up;
	 * reserved until its take is handed over, so that the fetchers of
	 * all shards together never hold more than concurrency. */
	free_slots = (free_slots + H.nshards - 1) / H.nshards;
	if (free_slots > batch)
		free_slots = batch;
	H.reserved += free_slots;
	pthread_mutex_unlock(&H.mu);
	return (int)free_slots;
}

void handover_wait_dest_slot(const atomic_int *stop)
{
	struct timespec ts;
	unsigned long freed;

	pthread_mutex_lock(&H.mu);
	freed = H.dest_freed;
	tick_from_now(&ts);
	while (!*stop && H.dest_freed == freed &&
	       pthread_cond_timedwait(&H.slots_cv, &H.mu, &ts) == 0)
		;
	pthread_mutex_unlock(&H.mu);
}

int handover_rooms(handover_room *rs, const char **argv)
{
	long i, left;
	size_t n = 0;

	pthread_mutex_lock(&H.mu);
	for (i = 0; i < H.ndests; i++, n++) {
		left = H.per_dest - H.dests[i].n;
		memcpy(rs[n].id, H.dests[i].id, sizeof(rs[n].id));
		snprintf(rs[n].left, sizeof(rs[n].left), "%ld", left < 0 ? 0 : left);
		argv[2 * n] = rs[n].id;
		argv[2 * n + 1] = rs[n].left;
	}
	pthread_mutex_unlock(&H.mu);
	return (int)n;
}

long handover_give(job *list, int reserved)
{
	long held;

	pthread_mutex_lock(&H.mu);
	H.reserved -= reserved;
	while (list) {
		job *nx = list->next;

		list->next = H.taken;
		H.taken = list;
		dest_add(list->dest, 1);
		H.held++;
		H.held_in[list->shard]++;
		list = nx;
	}
	held = H.held;
	pthread_mutex_unlock(&H.mu);
	H.wake();
	return held;
}

void handover_fetcher_done(void)
{
	pthread_mutex_lock(&H.mu);
	H.fetchers_done++;
	pthread_mutex_unlock(&H.mu);
	H.wake();
}

/* ---- the deliverer -------------------------------------------------------- */

job *handover_take(void)
{
	job *list;

	pthread_mutex_lock(&H.mu);
	list = H.taken;
	H.taken = NULL;
	pthread_mutex_unlock(&H.mu);
	return list;
}

void handover_finished(job *jb)
{
	pthread_mutex_lock(&H.mu);
	jb->next = H.finished[jb->shard];
	H.finished[jb->shard] = jb;
	pthread_cond_broadcast(&H.record_cv);
	/* Its destination's slot is free once the attempt is over; the
	 * agent-wide slot only once the outcome is in Redis (held). */
	dest_add(jb->dest, -1);
	H.dest_freed++;
	pthread_cond_broadcast(&H.slots_cv);
	pthread_mutex_unlock(&H.mu);
}

int handover_all_done(void)
{
	int done;

	pthread_mutex_lock(&H.mu);
	done = H.fetchers_done == H.nshards && H.taken == NULL && H.held == 0;
	pthread_mutex_unlock(&H.mu);
	return done;
}

/* ---- the recorder --------------------------------------------------------- */

job *handover_wait_finished(int shard, const atomic_int *quit)
{
	job *list;

	pthread_mutex_lock(&H.mu);
	while (H.finished[shard] == NULL && !*quit)
		pthread_cond_wait(&H.record_cv, &H.mu);
	list = H.finished[shard];
	H.finished[shard] = NULL;
	pthread_mutex_unlock(&H.mu);
	return list;
}

void handover_unfinish(int shard, job *list)
{
	job *last = list;

	while (last->next)
		last = last->next;
	pthread_mutex_lock(&H.mu);
	last->next = H.finished[shard];
	H.finished[shard] = list;
	pthread_mutex_unlock(&H.mu);
}

long handover_recorded(int shard, long n)
{
	long held;

	pthread_mutex_lock(&H.mu);
	H.held_in[shard] -= n;
	held = H.held -= n;
	pthread_cond_broadcast(&H.slots_cv);
	pthread_mutex_unlock(&H.mu);
	H.wake(); /* the deliverer may be waiting for this */
	return held;
}

void handover_quit(atomic_int *quit)
{
	pthread_mutex_lock(&H.mu);
	*quit = 1;
	pthread_cond_broadcast(&H.record_cv);
	pthread_mutex_unlock(&H.mu);
}

/* ---- any thread ------------------------------------------------------------ */

long handover_held(void)
{
	long h;

	pthread_mutex_lock(&H.mu);
	h = H.held;
	pthread_mutex_unlock(&H.mu);
	return h;
}

long handover_held_in(int shard)
{
	long h;

	pthread_mutex_lock(&H.mu);
	h = H.held_in[shard];
	pthread_mutex_unlock(&H.mu);
	return h;
}

void handover_wake(void)
{
	pthread_mutex_lock(&H.mu);
	pthread_cond_broadcast(&H.slots_cv);
	pthread_mutex_unlock(&H.mu);
	H.wake();
}
