/* The job encoding: round trips and refusals. */
#include <stdlib.h>

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
	 * carries (docs/design.md, "Redis layout"); a change here is a change there. */
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

/* Version 3: references, runs, the data index; data-driven. */
static void v3_forms(void)
{
	static const struct { const char *s; int ok; const char *rid, *index;
			      unsigned attempts; } refs[] = {
		{ "XpfCx5MT1In 0", 1, "XpfCx5MT1In", "0", 0 },
		{ "XpfCx5MT1In 42 3", 1, "XpfCx5MT1In", "42", 3 },
		{ "r 9999999", 1, "r", "9999999", 0 },
		{ "r 42 0", 0, NULL, NULL, 0 },           /* attempts 0 is left out */
		{ "r 042", 0, NULL, NULL, 0 },            /* a leading zero */
		{ "r 42 03", 0, NULL, NULL, 0 },
		{ "r 42 ", 0, NULL, NULL, 0 },            /* trailing space */
		{ "r", 0, NULL, NULL, 0 },                /* no index */
		{ "r 1-5", 0, NULL, NULL, 0 },            /* a run, not a reference */
		{ "r 12345678", 0, NULL, NULL, 0 },       /* index too long */
		{ "r 1 2 3", 0, NULL, NULL, 0 },          /* a scheduled retry's words */
		{ "r\r\n 1", 0, NULL, NULL, 0 },          /* CR LF in the request id */
		{ "0123456789abcdef r 0 1 0 2", 0, NULL, NULL, 0 }, /* version 2 */
	};
	static const struct { const char *s; int ok; const char *rid, *first;
			      unsigned long count; } runs[] = {
		{ "rid 0-99", 1, "rid", "0", 100 },
		{ "rid 7", 1, "rid", "7", 1 },
		{ "rid 3-4", 1, "rid", "3", 2 },
		{ "rid 4-4", 0, NULL, NULL, 0 },          /* a run of one is a reference */
		{ "rid 5-3", 0, NULL, NULL, 0 },
		{ "rid 1 2", 0, NULL, NULL, 0 },          /* a retry is no run */
		{ "rid -3", 0, NULL, NULL, 0 },
		{ "rid 3-", 0, NULL, NULL, 0 },
		{ "r/d 1-2", 0, NULL, NULL, 0 },
	};
	unsigned long count;
	size_t i;
	pb_ref r;
	pb_buf b;

	for (i = 0; i < PB_ARRAY_LEN(refs); i++) {
		int ok = pb_ref3_decode(&r, refs[i].s, strlen(refs[i].s)) == PB_OK;

		CHECK(ok == refs[i].ok, "reference %zu: %s", i, refs[i].s);
		if (!ok || !refs[i].ok)
			continue;
		CHECK_STR(r.rid, refs[i].rid);
		CHECK_STR(r.index, refs[i].index);
		CHECK(r.attempts == refs[i].attempts && r.dest[0] == '\0', "ref %zu", i);
		pb_buf_init(&b, 0);
		CHECK(pb_ref3_encode(&b, &r) == PB_OK, "encode %zu", i);
		CHECK_STR(pb_buf_str(&b), refs[i].s);
		pb_buf_free(&b);
	}
	for (i = 0; i < PB_ARRAY_LEN(runs); i++) {
		int ok = pb_run3_decode(&r, &count, runs[i].s, strlen(runs[i].s)) == PB_OK;

		CHECK(ok == runs[i].ok, "run %zu: %s", i, runs[i].s);
		if (!ok || !runs[i].ok)
			continue;
		CHECK_STR(r.rid, runs[i].rid);
		CHECK_STR(r.index, runs[i].first);
		CHECK(count == runs[i].count, "run %zu: count %lu", i, count);
		pb_buf_init(&b, 0);
		CHECK(pb_run3_encode(&b, r.rid, strtoul(r.index, NULL, 10), count) == PB_OK,
		      "run encode %zu", i);
		CHECK_STR(pb_buf_str(&b), runs[i].s);
		pb_buf_free(&b);
	}
	/* A retry as scheduled names its destination. */
	pb_buf_init(&b, 0);
	pb_ref sched = { "0123456789abcdef", "rid", "5", 2, 0, 0 };
	CHECK(pb_ref3_sched_encode(&b, &sched) == PB_OK, "scheduled");
	CHECK_STR(pb_buf_str(&b), "0123456789abcdef rid 5 2");
	CHECK(pb_ref3_sched_decode(&r, b.data, b.len) == PB_OK, "scheduled decode");
	CHECK(strcmp(r.dest, "0123456789abcdef") == 0 && strcmp(r.rid, "rid") == 0 &&
	      strcmp(r.index, "5") == 0 && r.attempts == 2, "scheduled fields");
	CHECK(pb_ref3_sched_decode(&r, "rid 5 2", 7) == PB_ERR_FORMAT, "no destination");
	CHECK(pb_ref3_sched_decode(&r, "0123456789abcdef rid 5 x", 24) == PB_ERR_FORMAT,
	      "attempts a number");
	pb_buf_reset(&b);
	memcpy(sched.dest, "nothex", 7);
	CHECK(pb_ref3_sched_encode(&b, &sched) == PB_ERR_FORMAT, "scheduled: bad destination");
	pb_buf_free(&b);
}

static void v3_index_and_job(void)
{
	const char *objs = "{\"a\":1}{\"b\":22}";
	const size_t offs[] = { 0, 7 }, lens[] = { 7, 8 };
	const char *url = "http://x.test/?a={a}";
	const unsigned long want[] = { 12, 19, 27 };
	pb_buf idx, hdr;
	pb_job j;
	size_t i;

	pb_buf_init(&idx, 0);
	CHECK(pb_data_index_encode(&idx, offs, lens, 2) == PB_OK, "index");
	CHECK(idx.len == 3 * PB_INDEX_ENTRY, "index of 2 objects: %zu bytes", idx.len);
	/* Offsets from the string's start (the index is 12 bytes), LE. */
	for (i = 0; i < 3; i++) {
		const unsigned char *e = (const unsigned char *)idx.data + 4 * i;
		unsigned long v = e[0] | (unsigned long)e[1] << 8 |
				  (unsigned long)e[2] << 16 | (unsigned long)e[3] << 24;
		CHECK(v == want[i], "entry %zu: %lu", i, v);
	}
	CHECK(pb_data_index_encode(&idx, NULL, NULL, 0) == PB_OK, "no objects");
	pb_buf_init(&hdr, 0);
	pb_reqhdr_encode(&hdr, 'G', 5, "acme", url, strlen(url));
	CHECK(pb_job_from_v3(&j, "0123456789abcdef", "rid 1 4", 7, hdr.data, hdr.len,
			     objs + 7, 8) == PB_OK, "job from v3");
	CHECK_STR(j.id, "rid-1");
	CHECK_STR(j.dest, "0123456789abcdef");
	CHECK(j.attempts == 4 && j.method == 'G' && j.enqueued_ms == 5 &&
	      j.client_len == 4 && j.data_len == 8, "fields");
	CHECK(pb_job_from_v3(&j, "0123456789abcdef", "rid 1", 5, hdr.data, hdr.len,
			     NULL, 0) == PB_ERR_FORMAT, "data gone");
	CHECK(pb_job_from_v3(&j, "", "rid 1", 5, hdr.data, hdr.len, objs, 7) ==
	      PB_ERR_FORMAT, "no destination");
	CHECK(pb_job_from_v3(&j, "0123456789abcdef", "rid 1", 5, NULL, 0, objs, 7) ==
	      PB_ERR_FORMAT, "header gone");
	pb_buf_free(&idx);
	pb_buf_free(&hdr);
}

void unit_tests(void)
{
	round_trip();
	seed_size();
	refusals();
	v2_round_trip();
	v2_refusals();
	v3_forms();
	v3_index_and_job();
}
