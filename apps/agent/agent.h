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
 * The fetcher and the recorder have their own Redis connections. A postback
 * stays in Redis, in this agent's held set, until its outcome is recorded
 * there; this process only ever holds copies.
 */
#ifndef PB_AGENT_H
#define PB_AGENT_H

#include <pthread.h>
#include <stdatomic.h>

#include <curl/curl.h>

#include "buf.h"
#include "config.h"
#include "job.h"
#include "netpolicy.h"
#include "queue.h"
#include "redis.h"
#include "retry.h"

#define TICK_MS 250          /* fetcher's longest block; promote period */
#define HEARTBEAT_MS 1000
#define OUTCOME_RETRY_MS 200 /* pause before resending outcomes after a failure */

typedef struct job {
	struct job *next;   /* in the handoff or outcome list */
	struct job *run_prev, *run_next; /* in the running list */
	char *raw;          /* a version 1 job or a version 2 or 3 reference,
			       exactly as it is in Redis */
	size_t raw_len;
	int v2;             /* raw is a reference (version 2 or 3) */
	int v3;             /* ... of version 3 */
	char *hdr, *data;   /* a reference's request's header, its data
			       (NULL when its request's data was gone) */
	size_t hdr_len, data_len;
	char dest[PB_DEST_ID_LEN + 1]; /* a reference's destination; "" for
					  version 1 */
	pb_job j;           /* decoded; points into raw or hdr and data */
	CURL *easy;
	struct curl_slist *headers;
	pb_buf url;
	pb_buf resp;        /* the first log_body_bytes of the answer */
	int64_t started_ms;
	int refused;        /* an address of the destination was not allowed */
	int opened;         /* ... and one that was, connected to */
	long status;
	int transport_ok;
	char error[CURL_ERROR_SIZE];
	/* The outcome, once known, waiting to be recorded in Redis. */
	enum pb_outcome outcome;
	pb_buf retry_job;   /* PB_RETRY: raw with attempts + 1 */
	/* What it says of its destination's breaker (retry.h, queue.h). */
	enum pb_signal sig;
	pb_dest dname;      /* the filled URL's destination */
	char reason[128];
	long long pause_ms; /* a 429's Retry-After: the destination waits */
	long long delay_ms;
	int handback;       /* stopping: give it back untried */
} job;

/* The hand-over between the threads: every field under mu. */
typedef struct handover {
	pthread_mutex_t mu;
	pthread_cond_t slots_cv;  /* held went down: the fetcher may take more */
	pthread_cond_t record_cv; /* outcomes are waiting */
	job *taken;    /* fetcher -> deliverer: taken, not yet started */
	job *outcomes; /* deliverer -> recorder: finished, not yet recorded */
	long held;     /* taken and not yet recorded */
	int fetcher_done;
	/* Of held, how many each destination has in delivery (taken, attempt
	 * not yet over; those with any): its share of the delivery slots. */
	struct dest_held { char id[PB_DEST_ID_LEN + 1]; long n; } *dests;
	long ndests;
	unsigned long dest_freed; /* counts attempts over: a slot of theirs freed */
} handover;

/* Set up before the threads start; read-only after. */
extern pb_config cfg;
extern pb_queue_keys keys;
extern CURLM *multi; /* the deliverer's; the others only curl_multi_wakeup() it */
extern handover H;
/* Flags, read by any thread without the lock. */
extern atomic_int stopping;      /* SIGTERM: take no more, finish, leave */
extern atomic_int reopen_log;    /* SIGHUP: reopen the delivery log */
extern atomic_int recorder_quit; /* no more outcomes will come */
extern _Atomic int64_t fetch_turn_ms; /* the fetcher's last housekeeping */

/* fetch.c */
void *fetcher_main(void *redis);
long held_now(void);
/* A destination's count of held postbacks, by delta; under H.mu. */
void dest_held_add(const char *id, long delta);

/* deliver.c */
int deliver_init(void);
void deliver_loop(void);
void deliver_cleanup(void);
job *job_new(const redisReply *x, const redisReply *hdr,
	     const redisReply *data, const char *dest);
void job_free(job *jb);

/* record.c */
void *recorder_main(void *redis);
void record_finish(void); /* no more outcomes: the recorder may leave */
void record_report(void); /* what was recorded, for the log */

#endif
