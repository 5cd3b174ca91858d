/*
 * agent.h - the delivery agent: what its threads share, and who does what,
 * in the order a postback passes through them:
 *
 *   fetch.c    the fetcher takes postbacks from Redis into this agent's
 *              held sets (one script a batch, queue.h), never holding
 *              more than cfg.concurrency, and hands them to
 *              the deliverer; it also keeps the heartbeat, the reaper of dead
 *              agents and the mover of due retries going;
 *   deliver.c  the deliverer (the main thread) runs every HTTP request on
 *              one curl multi handle, so connections are reused, writes one
 *              log line per attempt, and hands each outcome to the recorder;
 *   record.c   the recorder records the outcomes in Redis, all that finished
 *              while its last round trip was under way in one pipeline: a
 *              round trip includes the master's fsync, and HTTP work must
 *              not stop for it;
 *   main.c     settings, the signal thread (SIGTERM/SIGINT: a graceful stop;
 *              SIGHUP: reopen the delivery log), start and stop.
 *
 * With several shards, a destination's breaker and rate are the
 * cluster's: destgate.h, which the fetchers ask for probes and paced takes
 * and the recorders tell of breakers opened or closed.
 *
 * What they share is in two modules of its own, which the threads' files
 * use and which use none of them: heldjob.h, a postback held (made by the
 * fetcher, tried by the deliverer, recorded and freed by the recorder; the
 * only file that knows the record versions), and handover.h, the lists
 * that pass jobs from thread to thread and the slots they count.
 *
 * Each shard (shard.h) has a fetcher and a recorder of its own, each with
 * its own connection to the shard's master (a shard_worker): a shard that
 * fails over stops only its own two threads, and every guarantee that
 * holds for one master (reclaiming what a previous run held, reconciling
 * after a failover, taking only while registered, the drain) holds for
 * each shard on its own. A postback stays in Redis, in this agent's held
 * set on its shard, until its outcome is recorded there; this process
 * only ever holds copies.
 */
#ifndef PB_AGENT_H
#define PB_AGENT_H

#include <pthread.h>
#include <stdatomic.h>

#include <curl/curl.h>

#include "config.h"
#include "handover.h"
#include "heldjob.h"
#include "queue.h"
#include "redis.h"

#define HEARTBEAT_MS 1000
#define OUTCOME_RETRY_MS 200 /* pause before resending outcomes after a failure */

/* Set up before the threads start; read-only after. */
extern pb_config cfg;
extern pb_queue_keys keys;
/* Flags, read by any thread without the lock. */
extern atomic_int stopping;      /* SIGTERM: take no more, finish, leave */
extern atomic_int reopen_log;    /* SIGHUP: reopen the delivery log */
extern atomic_int recorder_quit; /* no more outcomes will come */
extern _Atomic int64_t fetch_turn_ms; /* the fetcher's last housekeeping */

/* One shard's threads and what they keep (main.c starts them). */
typedef struct shard_worker {
	int shard;             /* cfg.shards' index */
	const char *name;      /* its master's name */
	pb_redis fetch, record; /* the fetcher's and the recorder's */
	pthread_t fetcher, recorder;
	int fetcher_started, recorder_started;
	/* The fetcher's: since when its heartbeats have been written without
	 * a failure (0: the last one failed), when due retries move next. */
	int64_t beats_ok_since, next_promote;
	int64_t next_signers; /* the first shard's: when signing secrets are read next */
} shard_worker;

/* fetch.c */
void *fetcher_main(void *shard_worker);

/* deliver.c */
int deliver_init(void);
void deliver_wake(void); /* any thread */
void deliver_loop(void);
void deliver_cleanup(void);

/* record.c */
void *recorder_main(void *shard_worker);
void record_finish(void); /* no more outcomes: the recorder may leave */
void record_report(void); /* what was recorded, for the log */

#endif
