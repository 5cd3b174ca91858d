/* The dead-letter record: what the agent writes, pbctl reads back. */
#include <stdlib.h>

#include "deadletter.h"
#include "pb.h"
#include "unit.h"

static void round_trip(void)
{
	static const char job[] = "1\tabc-0\t4\tG\thttp://x/{a}\t{\"a\":\"\\u00e9\"}";
	pb_dead in = { job, sizeof(job) - 1, "abc-0", 5, 503, "HTTP 503",
		       1795499631171LL, "agent1", "shop-7", "0123456789abcdef" }, out;
	json_t *owner;
	char *s = pb_dead_encode(&in);

	CHECK(s != NULL, "encode");
	if (s == NULL)
		return;
	CHECK(pb_dead_decode(&out, &owner, s, strlen(s)) == PB_OK, "%s", s);
	CHECK(out.job_len == in.job_len && memcmp(out.job, job, in.job_len) == 0,
	      "job");
	CHECK_STR(out.id, "abc-0");
	CHECK(out.attempts == 5 && out.status == 503, "numbers");
	CHECK(out.failed_at == 1795499631171LL, "time");
	CHECK_STR(out.error, "HTTP 503");
	CHECK_STR(out.agent, "agent1");
	CHECK_STR(out.client, "shop-7");
	CHECK_STR(out.dest, "0123456789abcdef");
	json_decref(owner);
	free(s);
}

/* A letter of an agent before "client" and "dest" reads as "" for both. */
static void older_letter(void)
{
	static const char old[] = "{\"job\":\"1\\tabc-0\\t4\\tG\\thttp://x/\\t{}\","
				  "\"id\":\"abc-0\",\"attempts\":5,\"status\":0,"
				  "\"error\":\"timeout\",\"failed_at\":1,\"agent\":\"a1\"}";
	json_t *owner;
	pb_dead d;

	CHECK(pb_dead_decode(&d, &owner, old, strlen(old)) == PB_OK, "%s", old);
	CHECK_STR(d.client, "");
	CHECK_STR(d.dest, "");
	json_decref(owner);
}

/* A job that came out of Redis broken still makes a record: each byte that
 * is not UTF-8 becomes U+FFFD, the rest stays. */
static void broken_bytes(void)
{
	static const struct { const char *in, *out; } cases[] = {
		{ "1\tab\xff-0\t0", "1\tab\xef\xbf\xbd-0\t0" },
		{ "\xc3\xa9 ok", "\xc3\xa9 ok" },              /* valid 2-byte */
		{ "\xc3", "\xef\xbf\xbd" },                     /* cut short */
		{ "\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd" },  /* overlong '/' */
		{ "\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" }, /* surrogate */
		{ "\xf4\x90\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
		{ "\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80" },  /* valid 4-byte */
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		pb_dead in = { cases[i].in, strlen(cases[i].in), "bad\xfe", 1, 0,
			       "malformed job", 1, "agent1", "", "" }, out;
		json_t *owner;
		char *s = pb_dead_encode(&in);

		CHECK(s != NULL, "encode case %zu", i);
		if (s == NULL)
			continue;
		CHECK(pb_dead_decode(&out, &owner, s, strlen(s)) == PB_OK, "%s", s);
		if (owner) {
			CHECK(out.job_len == strlen(cases[i].out) &&
			      memcmp(out.job, cases[i].out, out.job_len) == 0, "case %zu: %s", i, s);
			CHECK_STR(out.id, "bad\xef\xbf\xbd");
			json_decref(owner);
		}
		free(s);
	}
}

static void not_records(void)
{
	static const char *bad[] = {
		"", "not json", "[]", "{}",
		"{\"job\":\"j\",\"id\":\"i\",\"attempts\":1,\"status\":0,\"error\":\"\"}",
		/* job not a string */
		"{\"job\":1,\"id\":\"i\",\"attempts\":1,\"status\":0,\"error\":\"\",\"failed_at\":1,\"agent\":\"a\"}",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *owner = (json_t *)1;
		pb_dead d;

		CHECK(pb_dead_decode(&d, &owner, bad[i], strlen(bad[i])) == PB_ERR_FORMAT,
		      "'%s'", bad[i]);
		CHECK(owner == NULL, "no owner for '%s'", bad[i]);
	}
}

void unit_tests(void)
{
	round_trip();
	older_letter();
	broken_bytes();
	not_records();
}
