/*
 * ingestmetrics.h - what pb-ingest shows on metrics_listen (docs/monitoring.md,
 * "Metrics"): every answer by its status, the postbacks accepted, why a
 * request was refused with 503, how long queueing took, and which shard
 * took each request or passed it over.
 */
#ifndef PB_INGESTMETRICS_H
#define PB_INGESTMETRICS_H

#include "enqueue.h"
#include "shard.h"

/* Start the endpoint when metrics_listen is set. PB_OK or an error, said. */
int im_start(const char *listen, const pb_shards *shards, long nclients);
void im_stop(void);

void im_answered(int status);
/* One pb_enqueue(): its result, its postbacks, how long it took. */
void im_enqueued(const char *client, const pb_enqueue_res *res, size_t count,
		 double seconds);
/* A 503 before Redis was asked: Redis near its maxmemory. */
void im_memory_high(void);
/* A shard took a request (an answer it gave), or passed it over. */
void im_shard(int shard, int taken);

#endif
