/*
 * deadletter.h - the dead-letter record, written by the agent and read by
 * pbctl: one compact JSON object per element of <p>:dead (keys.h),
 *
 *   {"job": <the job as it was in Redis (job.h)>, "id", "attempts",
 *    "status": <last HTTP status, 0 for none>, "error", "failed_at": <ms
 *    since the epoch>, "agent", "client", "dest"}
 *
 * "client" (whose key queued it, "" when anonymous) and "dest" (its
 * destination's id, dest.h) came in later: a letter without them reads
 * as "" for both, and pbctl derives the destination from the job.
 */
#ifndef PB_DEADLETTER_H
#define PB_DEADLETTER_H

#include <stddef.h>

#include <jansson.h>

typedef struct pb_dead {
	const char *job;
	size_t job_len;
	const char *id;
	long long attempts;
	long long status;
	const char *error;
	long long failed_at;
	const char *agent;
	const char *client; /* "" when unknown */
	const char *dest;   /* "" when unknown */
} pb_dead;

/* The record as compact JSON (the caller frees it), or NULL out of memory. */
char *pb_dead_encode(const pb_dead *d);
/*
 * Parse a record. The strings in d point into *owner, which the caller
 * releases with json_decref once done with d. PB_OK, or PB_ERR_FORMAT when
 * s is not a dead-letter record.
 */
int pb_dead_decode(pb_dead *d, json_t **owner, const char *s, size_t len);

#endif
