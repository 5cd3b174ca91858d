/*
 * What an agent reads from Redis: a version 1 job, a version 2 reference
 * with its request header and data, a dead letter. A compromised host may
 * write anything there. Invariants: whatever decodes encodes back to
 * something that decodes the same.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "buf.h"
#include "deadletter.h"
#include "job.h"
#include "pb.h"

static void v1(const char *s, size_t n)
{
	pb_job j, k;
	pb_buf b;

	if (pb_job_decode(&j, s, n) != PB_OK)
		return;
	pb_buf_init(&b, 0);
	if (pb_job_reencode(&b, &j, j.attempts + 1) != PB_OK ||
	    pb_job_decode(&k, b.data, b.len) != PB_OK || k.attempts != j.attempts + 1 ||
	    strcmp(k.id, j.id) != 0 || k.url_len != j.url_len || k.data_len != j.data_len)
		abort();
	pb_buf_free(&b);
}

static void v2(const char *s, size_t n)
{
	pb_ref r, q;
	pb_job j;
	pb_buf b;
	/* The input split three ways: reference, header, data. */
	const char *nl1 = memchr(s, '\n', n), *nl2;

	if (pb_ref_decode(&r, s, nl1 ? (size_t)(nl1 - s) : n) == PB_OK) {
		pb_buf_init(&b, 0);
		if (pb_ref_encode(&b, &r) != PB_OK ||
		    pb_ref_decode(&q, b.data, b.len) != PB_OK || q.attempts != r.attempts ||
		    q.offset != r.offset || q.length != r.length || strcmp(q.rid, r.rid) != 0)
			abort();
		pb_buf_free(&b);
	}
	if (nl1 == NULL)
		return;
	nl2 = memchr(nl1 + 1, '\n', n - (size_t)(nl1 + 1 - s));
	if (nl2 == NULL)
		return;
	(void)pb_job_from_v2(&j, s, (size_t)(nl1 - s), nl1 + 1, (size_t)(nl2 - nl1 - 1),
			     nl2 + 1, n - (size_t)(nl2 + 1 - s));
}

static void dead(const char *s, size_t n)
{
	pb_dead d;
	json_t *owner = NULL;
	char *again;

	if (pb_dead_decode(&d, &owner, s, n) != PB_OK)
		return;
	again = pb_dead_encode(&d);
	free(again);
	json_decref(owner);
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t n)
{
	const char *s = (const char *)in;

	v1(s, n);
	v2(s, n);
	dead(s, n);
	return 0;
}
