/*
 * stdmetrics.h - the metric families every daemon has: its build, its
 * start, and its Redis connections (kept by redis.c).
 */
#ifndef PB_STDMETRICS_H
#define PB_STDMETRICS_H

#include "metrics.h"

extern pb_family pb_m_build_info;
extern pb_family pb_m_start_time;
extern pb_family pb_m_redis_connects;
extern pb_family pb_m_master_changes;

#define PB_STD_FAMILIES &pb_m_build_info, &pb_m_start_time, \
	&pb_m_redis_connects, &pb_m_master_changes

/* Set the start time (call once, at start). */
void pb_stdmetrics_init(void);
/* A connection reached a confirmed master at host:port (redis.c). */
void pb_stdmetrics_connected(const char *host, int port);

#endif
