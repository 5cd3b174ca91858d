/*
 * handover.h - what the agent's threads hand each other, and the slots
 * they share, all under one mutex:
 *
 *   fetchers -> deliverer  jobs taken and not yet started (handover_give)
 *   deliverer -> recorders jobs whose attempt is over, not yet recorded,
 *                          one list a shard (handover_finished)
 *   slots                  held: taken and not yet recorded, at most
 *                          concurrency over all shards; per destination,
 *                          those in delivery (taken, attempt not yet
 *                          over): the take is told each one's room under
 *                          its cap (handover_rooms)
 *
 * Each shard (shard.h) has a fetcher and a recorder of its own; the
 * deliverer and the slots are the agent's. A fetcher takes its share of
 * the free slots at a time, so that no shard's backlog starves another's.
 *
 * A job belongs to one thread at a time: the fetcher until it gives it,
 * the deliverer until its attempt is over, then the recorder, which frees
 * it once its outcome is in Redis. The threads' files (fetch.c, deliver.c,
 * record.c) know this module and heldjob.h, not each other.
 */
#ifndef PB_HANDOVER_H
#define PB_HANDOVER_H

#include <stdatomic.h>

#include "heldjob.h"
#include "shard.h"

#define TICK_MS 250 /* the longest a wait here lasts; the fetcher's turn */

/* A destination this agent holds, as the take is told of it. */
typedef struct handover_room {
	char id[PB_DEST_ID_LEN + 1];
	char left[24];
} handover_room;

/*
 * Before the threads start: at most concurrency held, per_dest in delivery
 * for one destination; wake() makes the deliverer look at its lists again
 * (it may be asleep in curl). PB_ERR_NOMEM.
 */
int handover_init(long concurrency, long per_dest, int nshards,
		  void (*wake)(void));
void handover_cleanup(void);

/* ---- the fetcher ---- */
/* Wait until slots are free (or a TICK_MS passes, or *stop): how many
 * may be taken now, at most batch and a shard's share of the free
 * slots (at least one), reserved for this fetcher until it hands its take
 * over (handover_give, also with none); 0 for none. */
int handover_wait_slots(long batch, const atomic_int *stop);
/* Wait until an attempt is over (a destination's slot freed), a TICK_MS
 * at most: when the take said every destination waiting is capped. */
void handover_wait_dest_slot(const atomic_int *stop);
/* Each destination held now and the room it has left, as the take's
 * pairs (argv points into rs); rs and argv hold concurrency of them. */
int handover_rooms(handover_room *rs, const char **argv);
/* Jobs taken (each with its shard; NULL: none), to the deliverer, and the
 * reserved slots handover_wait_slots gave for them released; returns how
 * many are held now. */
long handover_give(job *list, int reserved);
/* One shard's fetcher has stopped. */
void handover_fetcher_done(void);

/* ---- the deliverer ---- */
/* The jobs given since the last call (a list, oldest last). */
job *handover_take(void);
/* An attempt over (or never made): the job, to the recorder. */
void handover_finished(job *jb);
/* Every fetcher has stopped and everything taken is recorded. */
int handover_all_done(void);

/* ---- the recorder ---- */
/* Wait for a shard's finished jobs; NULL once *quit and there are none. */
job *handover_wait_finished(int shard, const atomic_int *quit);
/* Put back jobs that could not be recorded, ahead of newer ones. */
void handover_unfinish(int shard, job *list);
/* n jobs of a shard recorded (and about to be freed): returns how many
 * are held (all shards). */
long handover_recorded(int shard, long n);
/* No more jobs will finish: handover_wait_finished returns. */
void handover_quit(atomic_int *quit);

/* ---- any thread ---- */
long handover_held(void);
/* Of them, how many were taken from one shard. */
long handover_held_in(int shard);
/* Stopping: every thread waiting here looks at its flags again. */
void handover_wake(void);

#endif
