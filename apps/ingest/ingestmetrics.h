/*
 * ingestmetrics.h - what pb-ingest shows on metrics_listen (docs/monitoring.md,
 * "Metrics"): every answer by its status, the postbacks accepted, why a
 * request was refused with 503, and how long queueing took.
 */
#ifndef PB_INGESTMETRICS_H
#define PB_INGESTMETRICS_H

#include "enqueue.h"

/* Start the endpoint when metrics_listen is set. PB_OK or an error, said. */
int im_start(const char *listen);
void im_stop(void);

void im_answered(int status);
/* One pb_enqueue(): its result, its postbacks, how long it took. */
void im_enqueued(const pb_enqueue_res *res, size_t count, double seconds);
/* A 503 before Redis was asked: Redis near its maxmemory. */
void im_memory_high(void);

#endif
