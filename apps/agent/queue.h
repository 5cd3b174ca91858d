/*
 * queue.h - the agent's side of the Redis queue (the reliable-queue
 * pattern, as Sidekiq's super_fetch and BullMQ run it):
 *
 * the keys of keys.h: postbacks are moved from their destination's queue
 * into the agent's held set for that destination atomically (in one
 * script: LRANGE, LTRIM, SADD a destination at a time; a run is cut into
 * references as it is taken) as they are taken; retries wait in the
 * scheduled zset, scored by due time on the master's clock, and go back to
 * their queue when due; a heartbeat with a TTL says the agent lives. What
 * goes back to a queue untried goes to its head (it waited longest), a due
 * retry to its tail; either makes its destination ready.
 *
 * A postback leaves what the agent holds only in the same atomic step that
 * records its outcome (ack, retry, dead letter, hand back), so a crash at
 * any point leaves it in Redis. Each outcome script first removes the
 * reference (SREM of its few bytes; a version 1 job: LREM from the
 * processing list) and does nothing more if it was not there: after a
 * failover that lost the take, the postback is back in the queue and must
 * not be scheduled twice. A delivered or dead postback counts down its
 * request's postbacks in the same script; the request's header and data
 * go with its last.
 */
#ifndef PB_QUEUE_H
#define PB_QUEUE_H

#include "keys.h"
#include "redis.h"

/* The key space, and this agent's own keys in it. */
typedef struct pb_queue_keys {
	pb_keys names;
	char agent_id[128];
	char processing[PB_KEY_MAX]; /* version 1 jobs */
	char held[PB_KEY_MAX];       /* "<p>:held:<agent>"; ":<d>" its sets */
	char heartbeat[PB_KEY_MAX];
} pb_queue_keys;

/* PB_OK, or PB_ERR_LIMIT when the prefix or the agent id is too long. */
int pb_queue_keys_init(pb_queue_keys *k, const char *prefix,
		       const char *agent_id);

/*
 * Take up to max postbacks into this agent's held sets: one function
 * (take.lua) that moves them only while the agent is registered
 * (heartbeat alive, id in the agents set). Version 1 jobs first while any
 * are left; then references from the ready destinations' queues, in turns
 * so that no destination fills a batch, at most cap a destination, less
 * where this agent already holds some: rooms[0..2*nrooms) are pairs of
 * destination id and what it may still take ("0": none).
 *
 * *reply is an array of triples: a job or reference, its data (nil for a
 * version 1 job, or when its request's data is gone), its request's header
 * (nil likewise; "" when an earlier triple of this reply carried it); a
 * triple ("@<d>", nil, nil) before the references of destination d. If
 * nothing was waiting and block_ms > 0, it blocks on the wake list for up
 * to block_ms, or until the next destination's turn if sooner (a paced
 * one, an open breaker's probe), and *reply is NULL. *capped: postbacks are waiting that
 * this agent may not take until it holds fewer for their destination (the
 * reply ends with one extra element then; the caller waits for a slot). PB_ERR_NOTFOUND: not registered on this
 * master; heartbeat, then take. PB_ERR_IO: the connection went, possibly
 * after Redis moved postbacks whose replies were lost (they wait in the
 * processing list).
 */
/* How long a probe may take before another may go. */
long pb_queue_probe_ms(const pb_config *cfg);

/*
 * With several shards (g->shared) a probe or a paced take is the gate's
 * to grant (gate.lua): the take answers an ask, a triple ("?<d>", what,
 * nil) in *reply, what being "probe" or the destination's rate, and the
 * caller asks the gate (pb_queue_gate, on the first shard); its answers go
 * with the next take, g->answers[0..3*nanswers): destination id, "1" or
 * "0" (granted), ms.
 */
typedef struct pb_take_gate {
	int shared;
	const char **answers;
	int nanswers;
} pb_take_gate;
int pb_queue_take(pb_redis *r, const pb_queue_keys *k, int max, long block_ms,
		  long cap, const char **rooms, int nrooms, const pb_take_gate *g,
		  redisReply **reply, int *capped);
/* The gate's answer for dest (what: "probe", "pace" or "release"; ms the
 * probe's time or the pace): *granted 1 or 0, and *wait_ms how long the
 * turn holds or until one may be granted. */
int pb_queue_gate(pb_redis *r, const pb_queue_keys *k, const char *dest,
		  const char *what, long ms, int *granted, long *wait_ms);
/* A breaker's opening (for ms) or closing on another shard, written on
 * this one (breaker_mirror.lua). */
typedef struct pb_breaker_news {
	int open;
	long ms;
	const char *reason, *url;
} pb_breaker_news;
int pb_queue_mirror(pb_redis *r, const pb_queue_keys *k, const char *dest,
		    const pb_breaker_news *news, long cooldown_ms);

int pb_queue_heartbeat(pb_redis *r, const pb_queue_keys *k, long ttl_ms,
		       const char *info);
/* Move back the postbacks of agents whose heartbeat expired. */
int pb_queue_reap(pb_redis *r, const pb_queue_keys *k, long long *moved);
/* Move back everything in this agent's own processing list (at start). */
int pb_queue_reclaim_own(pb_redis *r, const pb_queue_keys *k, long long *moved);
/* Move due retries to their queues. */
int pb_queue_promote(pb_redis *r, const pb_queue_keys *k, long limit,
		     long long *moved);
/*
 * The cluster's queue, for the metrics, if this agent holds the lease
 * (keys.h) or takes it because nobody does; s->holder says which. One
 * script: the lease's SET, then reads (a queue head per destination with
 * something waiting, up to PB_STATS_HEADS, for the oldest).
 */
#define PB_STATS_HEADS 1000
typedef struct pb_queue_stats {
	int holder;
	long long waiting, scheduled, in_flight, dead;
	long long oldest_ms; /* age of the oldest head; 0: none waiting */
	long long blocked;   /* destinations not to be taken from now */
} pb_queue_stats;
int pb_queue_stats_get(pb_redis *r, const pb_queue_keys *k, long lease_ms,
		       pb_queue_stats *s);
/* This agent stops: forget its heartbeat and registration. */
int pb_queue_leave(pb_redis *r, const pb_queue_keys *k);

/*
 * Outcomes, recorded many in one function call (outcomes.lua): for a
 * version 1 job or a reference (x) alike, each removes x from where this
 * agent holds it (o->dest's held set, or the processing list) and does its
 * work only if x was there.
 */
/* What an outcome says of its destination's breaker (retry.h). */
typedef struct pb_breaker_arg {
	const char *signal;  /* "ok", "fail", or "" (nothing) */
	const char *name;    /* scheme://host:port, for operators */
	const char *reason;  /* what failed, for operators */
	long long pause_ms;  /* retry only: pause the destination (429) */
} pb_breaker_arg;

enum pb_out_kind { PB_OUT_ACK, PB_OUT_RETRY, PB_OUT_DEAD, PB_OUT_HANDBACK };

typedef struct pb_queue_outcome {
	enum pb_out_kind kind;
	const char *x;       /* the job or reference, as taken */
	const char *dest;    /* whose held set x is in; "": the version 1 list */
	size_t len;
	const char *extra;   /* retry: x with one attempt more; dead: the letter */
	size_t extra_len;
	long long delay_ms;  /* retry: due in this many ms */
	pb_breaker_arg b;    /* not for a hand back */
} pb_queue_outcome;

#define PB_OUTCOMES_MAX 128 /* records in one call: one short script run */

/*
 * Append one call recording o[0..n), 1 <= n <= PB_OUTCOMES_MAX. Its reply
 * is an array of n integers: 0 x was not held (nothing
 * done), 1 done, 2 done and the destination's breaker opened, 3 done and
 * it closed. PB_ERR_LIMIT for n out of range.
 */
int pb_queue_append_outcomes(pb_redis *r, const pb_queue_keys *k,
			     const pb_queue_outcome *o, int n);

#endif
