/* The job encoding: round trips and refusals. */
#include "job.h"
#include "pb.h"
#include "unit.h"

static void round_trip(void)
{
	const char *url = "http://x.test/?a={a}";
	const char *data = "{\"a\":\"tab\\there\"}";
	pb_buf b, b2;
	pb_job j;

	pb_buf_init(&b, 0);
	CHECK(pb_job_encode(&b, "abc-1", 0, 'G', url, strlen(url), data,
			    strlen(data)) == PB_OK, "encode");
	CHECK_STR(pb_buf_str(&b), "1\tabc-1\t0\tG\thttp://x.test/?a={a}\t{\"a\":\"tab\\there\"}");
	CHECK(pb_job_decode(&j, b.data, b.len) == PB_OK, "decode");
	CHECK_STR(j.id, "abc-1");
	CHECK(j.attempts == 0 && j.method == 'G', "fields");
	CHECK(j.url_len == strlen(url) && memcmp(j.url, url, j.url_len) == 0, "url");
	CHECK(j.data_len == strlen(data) && memcmp(j.data, data, j.data_len) == 0,
	      "data");
	pb_buf_init(&b2, 0);
	CHECK(pb_job_reencode(&b2, &j, 3) == PB_OK, "reencode");
	CHECK(pb_job_decode(&j, b2.data, b2.len) == PB_OK && j.attempts == 3 &&
	      strcmp(j.id, "abc-1") == 0, "attempts carried");
	pb_buf_free(&b);
	pb_buf_free(&b2);
}

static void seed_size(void)
{
	/* A version 1 job of the seed's sample, the form a dead letter
	 * carries (README, "Redis layout"); a change here is a change there. */
	const char *url = "http://sample_domain_endpoint.com/data?title={mascot}&image={location}&foo={bar}";
	const char *data = "{\"mascot\":\"Gopher\",\"location\":\"https://blog.golang.org/gopher/gopher.png\"}";
	pb_buf b;

	pb_buf_init(&b, 0);
	pb_job_encode(&b, "6830d20021e5a1-0", 0, 'G', url, strlen(url), data,
		      strlen(data));
	CHECK(b.len == 178, "seed job is %zu bytes", b.len);
	pb_buf_free(&b);
}

static void refusals(void)
{
	static const char *bad[] = {
		"",
		"1\tid\t0\tG\thttp://x",              /* no data field */
		"2\tid\t0\tG\thttp://x\t{}",          /* unknown version */
		"1\t\t0\tG\thttp://x\t{}",            /* empty id */
		"1\tid\tx\tG\thttp://x\t{}",          /* attempts not a number */
		"1\tid\t1234567\tG\thttp://x\t{}",    /* attempts too long */
		"1\tid\t0\tD\thttp://x\t{}",          /* bad method */
		"1\tid\t0\tG\t\t{}",                  /* empty url */
		"1\tid\t0\tG\thttp://x\t[]",          /* data not an object */
		"1\ti\r\nX-Evil: 1\t0\tG\thttp://x\t{}", /* CR LF in the id: a header */
		"1\ti d\t0\tG\thttp://x\t{}",        /* space in the id */
		"1\ti\xff\t0\tG\thttp://x\t{}",      /* not ASCII */
		"1\t01234567890123456789012345678901234567890\t0\tG\thttp://x\t{}", /* 41 */
		"1\t0123456789012345678901234567890123456789X\t0\tG\thttp://x\t{}",
	};
	size_t i;
	pb_job j;
	pb_buf b;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(pb_job_decode(&j, bad[i], strlen(bad[i])) == PB_ERR_FORMAT,
		      "refuse case %zu", i);
	pb_buf_init(&b, 0);
	CHECK(pb_job_encode(&b, "id", 0, 'X', "u", 1, "{}", 2) == PB_ERR_FORMAT,
	      "bad method encode");
	CHECK(pb_job_encode(&b, "i\td", 0, 'G', "u", 1, "{}", 2) == PB_ERR_FORMAT,
	      "tab in id");
	CHECK(pb_job_encode(&b, "i\nd", 0, 'G', "u", 1, "{}", 2) == PB_ERR_FORMAT,
	      "newline in id");
	CHECK(pb_id_valid("f228f38d5a461100-1", 18) && pb_id_valid("a_b.c:d", 7) &&
	      !pb_id_valid("", 0) && !pb_id_valid("a/b", 3), "id characters");
	CHECK(pb_job_encode(&b, "id", 0, 'G', "u\tv", 3, "{}", 2) == PB_ERR_FORMAT,
	      "tab in url");
	pb_buf_free(&b);
}

/* Version 2: a reference with its request's header and data. */
static void v2_round_trip(void)
{
	const char *url = "http://x.test/?a={a}";
	const char *data = "{\"a\":1}"; /* 7 bytes, as the reference says */
	pb_buf ref, hdr;
	pb_ref r;
	pb_job j;

	pb_buf_init(&ref, 0);
	pb_buf_init(&hdr, 0);
	pb_ref in = { "0123456789abcdef", "f228f38d5a4611", "42", 3, 3150, 7 };

	CHECK(pb_ref_encode(&ref, &in) == PB_OK, "ref encode");
	CHECK_STR(pb_buf_str(&ref), "0123456789abcdef f228f38d5a4611 42 3 3150 7");
	CHECK(pb_reqhdr_encode(&hdr, 'P', 1700000000123LL, "", url, strlen(url)) == PB_OK,
	      "header encode");
	CHECK_STR(pb_buf_str(&hdr), "2\tP\t1700000000123\t\thttp://x.test/?a={a}");
	CHECK(pb_ref_decode(&r, ref.data, ref.len) == PB_OK, "ref decode");
	CHECK_STR(r.dest, "0123456789abcdef");
	CHECK_STR(r.rid, "f228f38d5a4611");
	CHECK_STR(r.index, "42");
	CHECK(r.attempts == 3 && r.offset == 3150 && r.length == 7, "numbers");
	CHECK(pb_job_from_v2(&j, ref.data, ref.len, hdr.data, hdr.len, data,
			     strlen(data)) == PB_OK, "job from v2");
	CHECK_STR(j.id, "f228f38d5a4611-42");
	CHECK_STR(j.dest, "0123456789abcdef");
	CHECK(j.method == 'P' && j.attempts == 3 && j.enqueued_ms == 1700000000123LL,
	      "fields");
	CHECK(j.url_len == strlen(url) && memcmp(j.url, url, j.url_len) == 0, "url");
	CHECK(j.data == data && j.data_len == strlen(data), "data");
	CHECK(j.client_len == 0, "anonymous client");
	CHECK(pb_job_from_v2(&j, ref.data, ref.len, hdr.data, hdr.len, NULL, 0) ==
	      PB_ERR_FORMAT, "data missing (the request's data is gone)");
	pb_buf_reset(&hdr);
	CHECK(pb_reqhdr_encode(&hdr, 'G', 1, "acme.io", url, strlen(url)) == PB_OK,
	      "header with a client");
	CHECK(pb_job_from_v2(&j, ref.data, ref.len, hdr.data, hdr.len, data,
			     strlen(data)) == PB_OK, "job of a client");
	CHECK(j.client_len == 7 && memcmp(j.client, "acme.io", 7) == 0, "its client");
	pb_buf_free(&ref);
	pb_buf_free(&hdr);
}

static void v2_refusals(void)
{
	static const char *bad_refs[] = {
		"",
		"0123456789abcdef rid 0 1 0",            /* no length */
		"0123456789abcdef rid 0 1 0 2 x",        /* one word too many */
		"0123456789ABCDEF rid 0 1 0 2",          /* upper-case id */
		"0123456789abcde rid 0 1 0 2",           /* 15 digits */
		"0123456789abcdef r\r\nid 0 1 0 2",      /* CR LF in the request id */
		"0123456789abcdef rid 12345678 1 0 2",   /* index too long */
		"0123456789abcdef rid 1x 1 0 2",         /* index not a number */
		"0123456789abcdef rid 0 1234567 0 2",    /* attempts too long */
		"0123456789abcdef 012345678901234567890123456789012 0 1 0 2", /* rid 33 */
		"0123456789abcdef rid  0 1 0 2",         /* empty word */
		"0123456789abcdef rid 0 1 0 0",          /* no data */
		"0123456789abcdef rid 0 1 12345678901 2", /* offset too long */
		"0123456789abcdef rid 0 1 -1 2",         /* negative */
	};
	static const char *bad_hdrs[] = {
		"1\tG\t1\t\thttp://x",   /* not version 2 */
		"2\tD\t1\t\thttp://x",   /* bad method */
		"2\tG\tx\t\thttp://x",   /* time not a number */
		"2\tG\t1\thttp://x",      /* no client field */
		"2\tG\t1\t\t",           /* empty url */
		"2\tG\t1\ta\r\nb\thttp://x", /* a client name that is not one */
	};
	const char *ref = "0123456789abcdef rid 0 1 0 2";
	size_t i;
	pb_ref r;
	pb_job j;
	pb_buf b;

	for (i = 0; i < PB_ARRAY_LEN(bad_refs); i++)
		CHECK(pb_ref_decode(&r, bad_refs[i], strlen(bad_refs[i])) == PB_ERR_FORMAT,
		      "refuse ref %zu", i);
	for (i = 0; i < PB_ARRAY_LEN(bad_hdrs); i++)
		CHECK(pb_job_from_v2(&j, ref, strlen(ref), bad_hdrs[i], strlen(bad_hdrs[i]),
				     "{}", 2) == PB_ERR_FORMAT, "refuse header %zu", i);
	CHECK(pb_job_from_v2(&j, ref, strlen(ref), "2\tG\t1\t\thttp://x", 14, "{}x", 3) ==
	      PB_ERR_FORMAT, "data of another length than the reference says");
	pb_buf_init(&b, 0);
	CHECK(pb_reqhdr_encode(&b, 'G', 1, "", "u\tv", 3) == PB_ERR_FORMAT, "tab in url");
	CHECK(pb_reqhdr_encode(&b, 'G', 1, "c\t", "u", 1) == PB_ERR_FORMAT, "tab in client");
	pb_buf_free(&b);
}

void unit_tests(void)
{
	round_trip();
	seed_size();
	refusals();
	v2_round_trip();
	v2_refusals();
}
