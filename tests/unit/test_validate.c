/* What the ingest node accepts: every 4xx case, table-driven. */
#include <stdlib.h>

#include "defaults.h"
#include "pb.h"
#include "unit.h"
#include "validate.h"

static const struct {
	const char *method, *ctype, *clen;
	int status;
	const char *err; /* a part of the message */
} http_cases[] = {
	{ "POST", "application/json", "10", 0, "" },
	{ "POST", "application/json; charset=utf-8", NULL, 0, "" },
	{ "POST", "Application/JSON", "0", 0, "" },
	{ "GET", "application/json", NULL, 405, "method GET not allowed" },
	{ "PUT", "application/json", NULL, 405, "PUT" },
	{ NULL, "application/json", NULL, 405, "(none)" },
	{ "POST", NULL, NULL, 415, "use application/json" },
	{ "POST", "text/plain", NULL, 415, "text/plain" },
	{ "POST", "application/jsonx", NULL, 415, "" },
	{ "POST", "application/x-www-form-urlencoded", NULL, 415, "" },
	{ "POST", "application/json", "1048577", 413, "over the limit of 1048576" },
	{ "POST", "application/json", "1048576", 0, "" },
	{ "POST", "application/json", "-1", 400, "Content-Length" },
	{ "POST", "application/json", "12ab", 400, "Content-Length" },
};

static void http_checks(void)
{
	size_t i;

	for (i = 0; i < sizeof(http_cases) / sizeof(http_cases[0]); i++) {
		char err[256] = "";
		int st = pb_check_http(http_cases[i].method, http_cases[i].ctype,
				       http_cases[i].clen, 1048576, err, sizeof(err));
		CHECK(st == http_cases[i].status, "http case %zu: status %d, want %d (%s)",
		      i, st, http_cases[i].status, err);
		CHECK(strstr(err, http_cases[i].err) != NULL,
		      "http case %zu: error '%s' lacks '%s'", i, err, http_cases[i].err);
	}
}

/* golden/bodies.tsv: status, error part, method, postbacks, body. */
static void body_case(char **fld, void *ctx)
{
	long want = -1, count = -1;
	char err[256] = "";
	pb_ingest_req r;
	int st;

	(void)ctx;
	if (pb_parse_long(fld[0], 0, 599, &want) != PB_OK ||
	    pb_parse_long(fld[3], 0, 1000, &count) != PB_OK) {
		CHECK(0, "bad bodies.tsv numbers: %s %s", fld[0], fld[3]);
		return;
	}
	st = pb_parse_ingest(&r, fld[4], strlen(fld[4]), 8192,
			     strtoul(PB_DEF_max_objects, NULL, 10), err, sizeof(err));
	CHECK(st == want, "%s: status %d (%s)", fld[4], st, err);
	CHECK(strstr(err, fld[1]) != NULL, "%s: error '%s' lacks '%s'", fld[4], err, fld[1]);
	if (st == 0) {
		CHECK(r.method == fld[2][0], "%s: method %c", fld[4], r.method);
		CHECK(r.count == (size_t)count, "%s: count %zu", fld[4], r.count);
	}
	pb_ingest_req_free(&r);
}

static void bodies(void)
{
	int n = unit_golden_rows("bodies.tsv", 5, body_case, NULL);

	CHECK(n >= 20, "only %d cases in bodies.tsv", n);
}

static void url_length(void)
{
	char err[128];

	CHECK(pb_check_url("http://a.test/xyz", 17, 16, err, sizeof(err)) == 400,
	      "over max_url_bytes");
	CHECK(pb_check_url("http://a.test/xyz", 17, 17, err, sizeof(err)) == 0,
	      "at max_url_bytes");
}

void unit_tests(void)
{
	http_checks();
	bodies();
	url_length();
}
