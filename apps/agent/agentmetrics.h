/*
 * agentmetrics.h - what pb-agent shows on metrics_listen (docs/monitoring.md,
 * "Metrics"), and where each number is taken:
 *
 *   deliver.c  an attempt's end: its answer's class, its duration, its
 *              destination (am_attempt);
 *   record.c   an outcome recorded in Redis: delivered, retry or dead, the
 *              latency from acknowledgement to delivery, the round trip
 *              (am_recorded, am_record_round);
 *   fetch.c    a take's round trip (am_take_round), and, on the one agent
 *              that holds the lease, the cluster's queue (am_queue_tick).
 */
#ifndef PB_AGENTMETRICS_H
#define PB_AGENTMETRICS_H

#include "redis.h"

struct job;

/* Start the endpoint when metrics_listen is set. PB_OK or an error, said. */
int am_start(void);
void am_stop(void);

void am_attempt(const struct job *jb, double seconds);
void am_recorded(const struct job *jb);
void am_breaker(int opened);
void am_record_round(double seconds);
void am_take_round(double seconds);
void am_in_flight(long held);
/* Every METRICS_QUEUE_MS: the cluster's queue, if this agent holds (or
 * takes) the lease; otherwise those gauges are not shown here. */
void am_queue_tick(pb_redis *r);

#endif
