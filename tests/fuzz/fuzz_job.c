/*
 * What an agent reads from Redis: a version 1 job, a version 2 reference
 * with its request header and data, a version 3 reference or run (and its
 * job), a dead letter; and the agent's held postback made of any of them
 * (heldjob.c). A compromised host may write anything there. Invariants:
 * whatever decodes encodes back to something that decodes the same; a
 * held postback that can be tried schedules and stands alone as a job
 * that decodes, with its id.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "buf.h"
#include "deadletter.h"
#include "heldjob.h"
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

/* The input split three ways at newlines: reference, header, data. The
 * reference is s[0..*rn) (all of it when there is no newline); 0 when
 * there is no header and data. */
typedef struct parts { size_t rn; const char *hdr, *data; size_t hn, dn; } parts;

static int split3(const char *s, size_t n, parts *p)
{
	const char *nl1 = memchr(s, '\n', n), *nl2;

	p->rn = nl1 ? (size_t)(nl1 - s) : n;
	if (nl1 == NULL ||
	    (nl2 = memchr(nl1 + 1, '\n', n - (size_t)(nl1 + 1 - s))) == NULL)
		return 0;
	p->hdr = nl1 + 1, p->hn = (size_t)(nl2 - nl1 - 1);
	p->data = nl2 + 1, p->dn = n - (size_t)(nl2 + 1 - s);
	return 1;
}

static void v2(const char *s, size_t n)
{
	pb_ref r, q;
	pb_job j;
	pb_buf b;
	parts p;
	int whole = split3(s, n, &p);

	if (pb_ref_decode(&r, s, p.rn) == PB_OK) {
		pb_buf_init(&b, 0);
		if (pb_ref_encode(&b, &r) != PB_OK ||
		    pb_ref_decode(&q, b.data, b.len) != PB_OK || q.attempts != r.attempts ||
		    q.offset != r.offset || q.length != r.length || strcmp(q.rid, r.rid) != 0)
			abort();
		pb_buf_free(&b);
	}
	if (whole)
		(void)pb_job_from_v2(&j, s, p.rn, p.hdr, p.hn, p.data, p.dn);
}

static void v3(const char *s, size_t n)
{
	parts p;
	int whole = split3(s, n, &p);
	size_t rn = p.rn;
	unsigned long count, c2;
	pb_ref r, q;
	pb_job j;
	pb_buf b;

	pb_buf_init(&b, 0);
	if (pb_ref3_decode(&r, s, rn) == PB_OK &&
	    (pb_ref3_encode(&b, &r) != PB_OK || b.len != rn || memcmp(b.data, s, rn) != 0))
		abort(); /* one way to write each reference */
	pb_buf_reset(&b);
	if (pb_run3_decode(&r, &count, s, rn) == PB_OK &&
	    (count == 0 ||
	     pb_run3_encode(&b, r.rid, strtoul(r.index, NULL, 10), count) != PB_OK ||
	     pb_run3_decode(&q, &c2, b.data, b.len) != PB_OK || c2 != count ||
	     strcmp(q.rid, r.rid) != 0 || strcmp(q.index, r.index) != 0))
		abort();
	pb_buf_free(&b);
	if (whole)
		(void)pb_job_from_v3(&j, "0123456789abcdef", s, rn, p.hdr, p.hn,
				     p.data, p.dn);
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

/* The agent's held postback of s as the take would return it. */
static void held(const char *s, size_t n)
{
	parts p;
	int whole = split3(s, n, &p);
	redisReply x = { .type = REDIS_REPLY_STRING, .str = (char *)s, .len = p.rn };
	redisReply d = { .type = REDIS_REPLY_NIL };
	pb_buf alone;
	pb_job j;
	job *jb;

	if (whole)
		d = (redisReply){ .type = REDIS_REPLY_STRING, .str = (char *)p.data, .len = p.dn };
	if ((jb = job_new(&x, &d, "0123456789abcdef", 64)) == NULL)
		return;
	if (job_set_header(jb, whole ? p.hdr : NULL, whole ? p.hn : 0) != PB_OK) {
		job_free(jb);
		return;
	}
	if (jb->state == JOB_OK) {
		if (job_schedule(jb, jb->j.attempts + 1) != PB_OK)
			abort(); /* what was decoded schedules again */
		if (job_standalone(jb, &alone) == PB_OK &&
		    (pb_job_decode(&j, alone.data, alone.len) != PB_OK ||
		     strcmp(j.id, jb->j.id) != 0))
			abort();
		pb_buf_free(&alone);
	}
	job_free(jb);
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t n)
{
	const char *s = (const char *)in;

	v1(s, n);
	v2(s, n);
	v3(s, n);
	held(s, n);
	dead(s, n);
	return 0;
}
