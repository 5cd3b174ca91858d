/*
 * enqueue.h - put one request's postbacks on the Redis queue, durably.
 *
 * One Lua script (atomic on the master) checks MAX_QUEUE_SIZE, looks up
 * the Idempotency-Key, and LPUSHes every job of the request, so a request
 * is enqueued all or nothing. It is pipelined with PING (the seed's
 * redis_is_connected) and WAIT, which says how many replicas have the write.
 * WAIT cannot run inside a script; after it, in the same round trip, it can.
 */
#ifndef PB_ENQUEUE_H
#define PB_ENQUEUE_H

#include <stddef.h>

#include "keys.h"
#include "redis.h"

enum pb_enqueue_status {
	PB_ENQ_OK,        /* enqueued and confirmed by enough replicas */
	PB_ENQ_REPLAY,    /* Idempotency-Key seen before: the first answer */
	PB_ENQ_FULL,      /* MAX_QUEUE_SIZE would be passed: nothing enqueued */
	PB_ENQ_NOT_DURABLE, /* written, but WAIT saw too few replicas */
	PB_ENQ_NO_REPLICAS, /* refused: the master has too few good replicas */
	PB_ENQ_REDIS_DOWN,  /* no master, or the command failed */
};

typedef struct pb_enqueue_req {
	const pb_keys *keys;
	const char *const *jobs; /* encoded jobs */
	const size_t *job_lens;
	size_t count;
	const char *request_id;
	const char *idem_key; /* NULL when the client sent none */
} pb_enqueue_req;

typedef struct pb_enqueue_res {
	enum pb_enqueue_status status;
	int pinged;          /* PING answered: redis_is_connected is "+PONG" */
	long long queue_size;
	long long replicas;  /* what WAIT answered */
	/* On PB_ENQ_REPLAY, the first request's id and count. */
	char first_request_id[64];
	long long first_count;
} pb_enqueue_res;

int pb_enqueue(pb_redis *r, const pb_enqueue_req *req, pb_enqueue_res *res);

#endif
