/*
 * enqueue.h - put one request's postbacks on the Redis queue, durably.
 *
 * One Lua script (atomic on the master) checks MAX_QUEUE_SIZE, looks up
 * the Idempotency-Key, writes the request's header and its data objects
 * once (keys.h, job.h) and a run of references per destination on its
 * queue, so a request is enqueued all or nothing. It is pipelined with PING
 * (the seed's redis_is_connected) and WAIT, which says how many replicas
 * have the write. WAIT cannot run inside a script; after it, in the same
 * round trip, it can.
 *
 * Group commit: with pb_enqueue_group_start(), the calls of all threads go
 * through one committer thread and its connection. Every request waiting
 * when a round starts goes in it - after the committer has waited up to a
 * millisecond for as many as the round before had - as one script call
 * with one PING and one WAIT: the requests share the call, the master's
 * fsync, one MULTI/EXEC to the replicas and the AOF, and the replicas'
 * acknowledgement. The script decides each request in turn as if alone
 * (its own MAX_QUEUE_SIZE check, its own Idempotency-Key, seeing the ones
 * before it) and answers each; each caller waits for its own answer.
 */
#ifndef PB_ENQUEUE_H
#define PB_ENQUEUE_H

#include <stddef.h>

#include "dest.h"
#include "keys.h"
#include "redis.h"

enum pb_enqueue_status {
	PB_ENQ_OK,        /* enqueued and confirmed by enough replicas */
	PB_ENQ_REPLAY,    /* Idempotency-Key seen before: the first answer */
	PB_ENQ_FULL,      /* MAX_QUEUE_SIZE would be passed: nothing enqueued */
	PB_ENQ_NOT_DURABLE, /* written, but WAIT saw too few replicas */
	PB_ENQ_NO_REPLICAS, /* refused: the master has too few good replicas */
	PB_ENQ_REDIS_DOWN,  /* no master, or the command failed */
	PB_ENQ_OVER_SHARE,  /* its client's share would be passed: nothing enqueued */
};

/* count postbacks in a row that go to one destination. */
typedef struct pb_dest_run {
	char id[PB_DEST_ID_LEN + 1];
	size_t count;
} pb_dest_run;

typedef struct pb_enqueue_req {
	const pb_keys *keys;
	const char *request_id;
	const char *header;      /* job.h's request header */
	size_t header_len;
	const char *data;        /* the data objects' compact JSON, back to back */
	size_t data_len;
	const size_t *offs;      /* where each object starts in data */
	const size_t *lens;
	size_t count;
	const pb_dest_run *runs; /* the objects' destinations, in order */
	size_t nruns;
	const char *idem_key;    /* NULL when the client sent none */
	const char *client;      /* the client's name ("": anonymous) */
	long share;              /* its postbacks it may have on the shard (0: no limit) */
	int again;               /* sent before (its answer lost, or refused by another
				    shard): it may be stored already, and is looked for */
} pb_enqueue_req;

typedef struct pb_enqueue_res {
	enum pb_enqueue_status status;
	int pinged;          /* PING answered: redis_is_connected is "+PONG" */
	long long queue_size;
	long long replicas;  /* what WAIT answered */
	/* On PB_ENQ_REPLAY, the first request's id and count. */
	char first_request_id[64];
	long long first_count;
	/* On PB_ENQ_OVER_SHARE, the client's postbacks queued on the shard. */
	long long client_queued;
} pb_enqueue_res;

/* r: the caller's settings, shard (r->shard: that shard's committer takes
 * the call) and error; its connection is used only when no committer
 * runs. */
int pb_enqueue(pb_redis *r, const pb_enqueue_req *req, pb_enqueue_res *res);
/* Start a committer for each shard (shard.h), with a connection of its own;
 * PB_OK or PB_ERR_NOMEM. */
int pb_enqueue_group_start(const pb_config *cfg, const char *client_name);
/* After the last pb_enqueue(): the committer finishes what waits, stops. */
void pb_enqueue_group_stop(void);

#endif
