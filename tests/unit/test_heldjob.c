/* A postback held by the agent (apps/agent/heldjob.c): each record version
 * made from what a take returns, decoded once, scheduled again, written
 * alone for a dead letter; what cannot be tried says why. */
#include <stdlib.h>

#include "heldjob.h"
#include "pb.h"
#include "unit.h"

#define D1 "0123456789abcdef"
#define HDR "2\tP\t1700000000000\tacme\thttp://x.test/?a={a}"

static redisReply str(const char *s)
{
	return (redisReply){ .type = REDIS_REPLY_STRING, .str = (char *)s, .len = strlen(s) };
}

static const redisReply nil = { .type = REDIS_REPLY_NIL };

/* A job as the fetcher makes it: x, data (NULL: nil), dest, header. */
static job *made(const char *x, const char *data, const char *dest, const char *hdr)
{
	redisReply rx = str(x), rd = data ? str(data) : nil;
	job *jb = job_new(&rx, &rd, dest, 256);

	CHECK(jb != NULL, "job_new %s", x);
	if (jb == NULL)
		exit(1);
	CHECK(job_set_header(jb, hdr, hdr ? strlen(hdr) : 0) == PB_OK, "header of %s", x);
	return jb;
}

static void version_3(void)
{
	size_t n;
	job *jb = made("rq1 2", "{\"a\":1}", D1, HDR);
	const char *rid = job_rid(jb, &n);

	CHECK(jb->state == JOB_OK, "state %d", jb->state);
	CHECK_STR(jb->j.id, "rq1-2");
	CHECK_STR(jb->dest, D1);
	CHECK(rid && n == 3 && memcmp(rid, "rq1", 3) == 0, "rid");
	CHECK(jb->j.attempts == 0 && jb->j.method == 'P' && jb->j.client_len == 4, "fields");
	CHECK(job_schedule(jb, 1) == PB_OK, "schedule");
	CHECK_STR(pb_buf_str(&jb->retry_job), D1 " rq1 2 1");
	job_free(jb);

	jb = made("rq1 2 3", "{\"a\":1}", D1, HDR);
	CHECK(jb->state == JOB_OK && jb->j.attempts == 3, "attempts 3");
	CHECK(job_schedule(jb, 4) == PB_OK, "schedule");
	CHECK_STR(pb_buf_str(&jb->retry_job), D1 " rq1 2 4");
	job_free(jb);
}

static void version_2(void)
{
	/* destination, request, index, attempts, offset, length */
	job *jb = made(D1 " rq2 0 1 8 7", "{\"a\":1}", D1, HDR);

	CHECK(jb->state == JOB_OK, "state %d", jb->state);
	CHECK_STR(jb->j.id, "rq2-0");
	CHECK(jb->j.attempts == 1, "attempts");
	CHECK(job_schedule(jb, 2) == PB_OK, "schedule");
	CHECK_STR(pb_buf_str(&jb->retry_job), D1 " rq2 0 2 8 7");
	job_free(jb);
	/* Its data is not as long as it says. */
	jb = made(D1 " rq2 0 1 8 9", "{\"a\":1}", D1, HDR);
	CHECK(jb->state == JOB_MALFORMED, "length");
	job_free(jb);
}

static void version_1(void)
{
	pb_buf v1, alone;
	job *jb;
	size_t n;

	pb_buf_init(&v1, 0);
	pb_job_encode(&v1, "old-1", 2, 'G', "http://x.test/", 14, "{}", 2);
	jb = made(pb_buf_str(&v1), NULL, "", NULL);
	CHECK(jb->state == JOB_OK, "state %d", jb->state);
	CHECK_STR(jb->j.id, "old-1");
	CHECK_STR(jb->dest, "");
	CHECK(job_rid(jb, &n) == NULL && n == 0, "no rid");
	CHECK(job_schedule(jb, 3) == PB_OK, "schedule");
	CHECK_STR(pb_buf_str(&jb->retry_job), "1\told-1\t3\tG\thttp://x.test/\t{}");
	CHECK(job_standalone(jb, &alone) == PB_ERR_FORMAT, "a version 1 job is its own record");
	pb_buf_free(&alone);
	job_free(jb);
	pb_buf_free(&v1);
}

static void standalone(void)
{
	job *jb = made("rq1 2 1", "{\"a\":1}", D1, HDR);
	pb_buf alone;
	pb_job j;

	CHECK(job_standalone(jb, &alone) == PB_OK, "standalone");
	CHECK(pb_job_decode(&j, alone.data, alone.len) == PB_OK, "decodes as version 1");
	CHECK_STR(j.id, "rq1-2");
	CHECK(j.attempts == 1 && j.method == 'P', "fields");
	CHECK(j.url_len == 20 && memcmp(j.url, "http://x.test/?a={a}", 20) == 0, "url");
	CHECK(j.data_len == 7 && memcmp(j.data, "{\"a\":1}", 7) == 0, "data");
	pb_buf_free(&alone);
	job_free(jb);
}

static void cannot_be_tried(void)
{
	static const struct { const char *x, *data, *hdr; enum job_state want; } cases[] = {
		{ "rq1 2", NULL, HDR, JOB_DATA_GONE },      /* its request is gone */
		{ "rq1 2", NULL, NULL, JOB_DATA_GONE },
		{ "rq1 2", "{\"a\":1}", NULL, JOB_MALFORMED }, /* no header */
		{ "rq1 2", "{\"a\":1}", "", JOB_MALFORMED },
		{ "rq1 2", "{\"a\":1}", "3\tP\t1\t\thttp://x/", JOB_MALFORMED },
		{ "rq1 2", "not json", HDR, JOB_MALFORMED },
		{ "garbage", "{\"a\":1}", HDR, JOB_MALFORMED },
		{ "", "{\"a\":1}", HDR, JOB_MALFORMED },
		{ "1\tbad", NULL, NULL, JOB_MALFORMED },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		job *jb = made(cases[i].x, cases[i].data, D1, cases[i].hdr);

		CHECK(jb->state == cases[i].want, "case %zu: state %d, want %d", i,
		      jb->state, cases[i].want);
		job_free(jb);
	}
	/* Data gone, but its id found for the log and the dead letter. */
	{
		job *jb = made("rq1 2", NULL, D1, HDR);

		CHECK_STR(jb->j.id, "rq1-2");
		job_free(jb);
	}
}

void unit_tests(void)
{
	version_3();
	version_2();
	version_1();
	standalone();
	cannot_be_tried();
}
