/*
 * retry.h - what an attempt's result means, and when to try again.
 *
 * Success is any 2xx. Connection errors, timeouts, 408, 429 and 5xx are
 * worth another attempt; every other answer (3xx, other 4xx) is final and
 * the postback becomes a dead letter at once. Delays use exponential backoff
 * with full jitter: a uniform draw from [0, min(cap, base * 2^(n-1))] for
 * the n-th retry, never below what a Retry-After asked for.
 *
 * What an attempt says of its destination, for the breaker shared by all
 * agents (queue.h): no answer (connect error, timeout) or a 5xx counts as a
 * failure; any other answer as a sign of life (a 4xx too: the partner is
 * there, the postback is wrong); a 429, or a 503 with Retry-After, asks
 * for a pause of the whole destination instead (a partner's rate limit or
 * announced maintenance, not a failure), and an attempt refused before it
 * left (the address policy) says nothing.
 */
#ifndef PB_RETRY_H
#define PB_RETRY_H

#include <stdint.h>

#include "policy.h"

enum pb_outcome {
	PB_DELIVERED, /* 2xx: done */
	PB_RETRY,     /* try again later, if attempts remain */
	PB_DEAD,      /* final failure: dead letter */
};

/* status: the HTTP code, or 0 when no answer came (transport_ok false). */
enum pb_outcome pb_classify(long status, int transport_ok, int refused);

enum pb_signal {
	PB_SIG_NONE, /* says nothing of the destination */
	PB_SIG_OK,   /* the destination answered */
	PB_SIG_FAIL, /* it did not, or with a 5xx */
	PB_SIG_PARK, /* 410 Gone under on_410=park: parked until an operator acts */
};

/* How long a park holds a destination: until an operator closes its
 * breaker, in practice (ten years). */
#define PB_PARK_MS (10LL * 365 * 86400 * 1000)

enum pb_signal pb_breaker_signal(long status, int transport_ok, int refused,
				  int retry_after);

/* 1 if the answer asks to pause the destination (429; 503 with Retry-After). */
int pb_pauses(long status, int retry_after);

/* Upper bound of the n-th retry's delay (n >= 1), ms. */
int64_t pb_backoff_ceiling_ms(unsigned n, int64_t base_ms, int64_t cap_ms);

/*
 * The delay before retry n: draw (in [0, 2^64)) picks the point in
 * [0, ceiling], and retry_after_ms (0 when absent) is a floor.
 */
int64_t pb_retry_delay_ms(unsigned n, int64_t base_ms, int64_t cap_ms,
			  int64_t retry_after_ms, uint64_t draw);

/*
 * Under a destination's policy (policy.h). The failure an attempt was, as
 * retry_on names it (PB_FAIL_*; 0 for a 2xx or an answer never retried):
 * 5xx, 429, 408, or no answer: timed_out (the attempt's time ran out) or
 * not (connect, reset).
 */
unsigned pb_failure_of(long status, int transport_ok, int timed_out);

/*
 * What becomes of a postback after its attempts-th attempt: pb_classify,
 * then the policy: a failure retry_on does not name is final, the
 * max_attempts-th failure too; a 410 under on_410=park is retried and sets
 * *park (the destination waits for an operator, so the attempts are not
 * counted against it).
 */
enum pb_outcome pb_policy_outcome(const pb_policy *p, long status, int transport_ok,
				  int timed_out, int refused, unsigned attempts, int *park);

/*
 * The delay before retry n (n >= 1) under p: the schedule's n-th delay (its
 * last past its end), drawn within 10 % of itself; or, without a
 * schedule, pb_retry_delay_ms with the policy's backoff. retry_after_ms
 * is a floor; draw in [0, 2^64) picks the point.
 */
int64_t pb_policy_delay_ms(const pb_policy *p, unsigned n, int64_t retry_after_ms,
			   uint64_t draw);

#endif
