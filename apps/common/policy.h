/*
 * policy.h - a destination's own delivery rules, over the agents'
 * configuration where it sets nothing.
 *
 * An operator sets them with `pbctl policy set DEST FIELD=VALUE...`; they
 * are kept as text in <p>:policies (keys.h, on the first shard: field the
 * destination id, one "name=value" a line), read by every agent within a
 * second of a change. This module is the one place that knows the fields:
 * it reads, checks and writes the text (pbctl and pb-agent both use it).
 * What an attempt's result means under a policy is retry.h's.
 *
 *   schedule      delays before retry 1, 2, ... (the last repeats), each
 *                 drawn within 10 % of itself: "10s,1m,15m,1h"; empty:
 *                 exponential backoff (backoff_base_ms, backoff_cap_ms)
 *   retry_on      which failures are retried: any of 5xx, 429, 408,
 *                 timeout, connect; "none"; the others are final (dead)
 *   timeout_ms    one attempt's whole time, ms
 *   max_attempts  attempts before a dead letter
 *   max_age_s     a postback older than this is dead, s (0: no limit)
 *   on_410        park (the destination is parked until an operator
 *                 closes its breaker; the postback waits) or dead
 *   sign          client (as its client is) or off (never signed)
 *   header        "Name: value", sent with every attempt (several lines;
 *                 the values are secrets: never logged nor shown)
 *   url           the destination's scheme://host:port, as pbctl wrote it
 *                 (for people: the field is the destination's id)
 *
 * Redirects are never followed, whatever the policy (deliver.c).
 */
#ifndef PB_POLICY_H
#define PB_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "dest.h"

#define PB_POLICY_SCHEDULE_MAX 32
#define PB_POLICY_HEADERS_MAX 8
#define PB_POLICY_HEADER_MAX 512    /* "Name: value" */
#define PB_POLICY_TEXT_MAX 8192     /* the stored text */
#define PB_POLICY_DELAY_MAX_MS (30LL * 86400 * 1000)

/* Failures, for retry_on. */
enum pb_failure {
	PB_FAIL_5XX = 1,
	PB_FAIL_429 = 2,
	PB_FAIL_408 = 4,
	PB_FAIL_TIMEOUT = 8,
	PB_FAIL_CONNECT = 16,
	PB_FAIL_ALL = 31,
};

enum pb_on_410 { PB_410_PARK, PB_410_DEAD };
enum pb_sign_mode { PB_SIGN_CLIENT, PB_SIGN_OFF };

/* The fields, as bits of pb_policy.set. */
enum pb_policy_field {
	PB_POL_SCHEDULE = 1 << 0,
	PB_POL_RETRY_ON = 1 << 1,
	PB_POL_TIMEOUT = 1 << 2,
	PB_POL_MAX_ATTEMPTS = 1 << 3,
	PB_POL_MAX_AGE = 1 << 4,
	PB_POL_ON_410 = 1 << 5,
	PB_POL_SIGN = 1 << 6,
	PB_POL_HEADER = 1 << 7,
	PB_POL_URL = 1 << 8,
};

typedef struct pb_policy {
	unsigned set;                 /* the fields this destination sets */
	int n_schedule;               /* 0: backoff */
	int64_t schedule_ms[PB_POLICY_SCHEDULE_MAX];
	int64_t backoff_base_ms, backoff_cap_ms;
	unsigned retry_on;            /* enum pb_failure bits */
	long timeout_ms;
	long max_attempts;
	long max_age_s;
	int on_410;                   /* enum pb_on_410 */
	int sign;                     /* enum pb_sign_mode */
	int n_headers;
	/* Last, so that the rules above copy without them (policies.h). */
	char headers[PB_POLICY_HEADERS_MAX][PB_POLICY_HEADER_MAX];
	char url[PB_DEST_MAX];
} pb_policy;

/*
 * A list of delays, "10s,1m,15m" (units ms, s, m, h, d; at most
 * PB_POLICY_SCHEDULE_MAX, each up to 30 days; "" is none): into ms[],
 * their count into *n. PB_OK or PB_ERR_FORMAT (err says which one).
 */
int pb_schedule_parse(const char *s, int64_t *ms, int *n, char *err, size_t errlen);

/*
 * Apply one "name=value" to p and mark it set; "name=" unsets it (back to
 * what p held before: the caller's defaults). A header line replaces one
 * of the same name; "header=Name:" removes it. PB_OK, PB_ERR_FORMAT or
 * PB_ERR_LIMIT, err naming the field and the value's fault.
 */
int pb_policy_assign(pb_policy *p, const pb_policy *defaults, const char *line,
		     size_t n, char *err, size_t errlen);

/* A stored text (lines of pb_policy_assign) over p. As pb_policy_assign. */
int pb_policy_read(pb_policy *p, const pb_policy *defaults, const char *text,
		   size_t n, char *err, size_t errlen);

/*
 * The fields p sets, as the stored text (secrets 0) or for a person to
 * read (secrets 1: each header's value shown as "(secret)"). PB_OK or the
 * buffer's error.
 */
int pb_policy_write(const pb_policy *p, pb_buf *out, int mask_secrets);

#endif
