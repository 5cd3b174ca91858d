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
	/* The bytes that cross from ingest to delivery for the seed's sample
	 * (README: "Bytes per postback"); a change here is a change there. */
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

void unit_tests(void)
{
	round_trip();
	seed_size();
	refusals();
}
