/*
 * enqueue.h - put one request's postbacks on the Redis queue, durably.
 *
 * One Lua script (atomic on the master) checks MAX_QUEUE_SIZE, looks up
 * the Idempotency-Key, writes the request's header and its data objects
 * once (keys.h, job.h) and a reference per postback on its destination's
 * queue, so a request is enqueued all or nothing. It is pipelined with PING (the seed's
 * redis_is_connected) and WAIT, which says how many replicas have the write.
 * WAIT cannot run inside a script; after it, in the same round trip, it can.
 *
 * Group commit: with pb_enqueue_group_start(), the calls of all threads go
 * through one committer thread and its connection: every request waiting
 * while a round trip is under way goes in the next one, each script in
 * one pipeline with one PING and one WAIT for all of them, so they share
 * the master's fsync and the replicas' acknowledgement. Each caller still
 * waits for its own answer, and its own script's reply decides it.
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

/* r: the caller's settings and error; its connection is used only when no
 * committer runs. */
int pb_enqueue(pb_redis *r, const pb_enqueue_req *req, pb_enqueue_res *res);
/* Start the committer with a connection of its own; PB_OK or PB_ERR_NOMEM. */
int pb_enqueue_group_start(const pb_config *cfg, const char *client_name);
/* After the last pb_enqueue(): the committer finishes what waits, stops. */
void pb_enqueue_group_stop(void);

#endif
