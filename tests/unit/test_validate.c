/* What the ingest node accepts: every 4xx case, table-driven. */
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

static const struct {
	const char *body;
	int status;
	const char *err;
	char method;
	size_t count;
} body_cases[] = {
	{ "{\"endpoint\":{\"method\":\"GET\",\"url\":\"http://a.test/{x}\"},"
	  "\"data\":[{\"x\":1}]}", 0, "", 'G', 1 },
	{ "{\"endpoint\":{\"method\":\"post\",\"url\":\"HTTPS://a.test/\"},"
	  "\"data\":[{},{\"a\":null,\"b\":true,\"c\":\"s\",\"d\":1.5}]}", 0, "", 'P', 2 },
	{ "", 400, "empty body", 0, 0 },
	{ "{", 400, "malformed JSON at line 1", 0, 0 },
	{ "[]", 400, "must be a JSON object", 0, 0 },
	{ "{\"data\":[{}]}", 400, "endpoint must be an object", 0, 0 },
	{ "{\"endpoint\":{\"url\":\"http://a.test/\"},\"data\":[{}]}", 400,
	  "endpoint.method must be a string", 0, 0 },
	{ "{\"endpoint\":{\"method\":\"DELETE\",\"url\":\"http://a.test/\"},\"data\":[{}]}",
	  400, "'DELETE' is not GET or POST", 0, 0 },
	{ "{\"endpoint\":{\"method\":\"GET\"},\"data\":[{}]}", 400,
	  "endpoint.url must be a string", 0, 0 },
	{ "{\"endpoint\":{\"method\":\"GET\",\"url\":\"ftp://a.test/\"},\"data\":[{}]}",
	  400, "http:// or https://", 0, 0 },
	{ "{\"endpoint\":{\"method\":\"GET\",\"url\":\"javascript:alert(1)\"},\"data\":[{}]}",
	  400, "http:// or https://", 0, 0 },
	{ "{\"endpoint\":{\"method\":\"GET\",\"url\":\"http:///path\"},\"data\":[{}]}",
	  400, "no host", 0, 0 },
	{ "{\"endpoint\":{\"method\":\"GET\",\"url\":\"http://a.test/a b\"},\"data\":[{}]}",
	  400, "space or control character at offset 15", 0, 0 },
	{ "{\"endpoint\":{\"method\":\"GET\",\"url\":\"http://a.test/\\r\\nX: y\"},\"data\":[{}]}",
	  400, "control character", 0, 0 },
	{ "{\"endpoint\":{\"method\":\"GET\",\"url\":\"http://a.test/\\t\"},\"data\":[{}]}",
	  400, "control character", 0, 0 },
	{ "{\"endpoint\":{\"method\":\"GET\",\"url\":\"http://a.test/caf\\u00e9\"},\"data\":[{}]}",
	  400, "non-ASCII", 0, 0 },
	{ "{\"endpoint\":{\"method\":\"GET\",\"url\":\"http://a.test/{t\\u00edtulo}\"},\"data\":[{}]}",
	  0, "", 'G', 1 },
	{ "{\"endpoint\":{\"method\":\"GET\",\"url\":\"http://a.test/\"}}", 400,
	  "data must be an array", 0, 0 },
	{ "{\"endpoint\":{\"method\":\"GET\",\"url\":\"http://a.test/\"},\"data\":{}}",
	  400, "data must be an array", 0, 0 },
	{ "{\"endpoint\":{\"method\":\"GET\",\"url\":\"http://a.test/\"},\"data\":[]}",
	  400, "data is empty", 0, 0 },
	{ "{\"endpoint\":{\"method\":\"GET\",\"url\":\"http://a.test/\"},\"data\":[{},1]}",
	  400, "data[1] must be an object", 0, 0 },
	{ "{\"endpoint\":{\"method\":\"GET\",\"url\":\"http://a.test/\"},\"data\":[{\"k\":[1]}]}",
	  400, "data[0].k must be a string, number, boolean or null", 0, 0 },
	{ "{\"endpoint\":{\"method\":\"GET\",\"url\":\"http://a.test/\"},\"data\":[{\"k\":{}}]}",
	  400, "data[0].k", 0, 0 },
	{ "{\"endpoint\":{\"method\":\"GET\",\"url\":\"http://a.test/\"},\"data\":[{\"k\":1,\"k\":2}]}",
	  400, "duplicate", 0, 0 },
	{ "{\"endpoint\":{\"method\":\"GET\",\"url\":\"http://a.test/\"},\"data\":[{\"k\":\"\\u0000\"}]}",
	  400, "malformed JSON", 0, 0 },
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

static void bodies(void)
{
	size_t i;

	for (i = 0; i < sizeof(body_cases) / sizeof(body_cases[0]); i++) {
		char err[256] = "";
		pb_ingest_req r;
		int st = pb_parse_ingest(&r, body_cases[i].body,
					 strlen(body_cases[i].body), 8192, err,
					 sizeof(err));
		CHECK(st == body_cases[i].status, "body case %zu: status %d, want %d (%s)",
		      i, st, body_cases[i].status, err);
		CHECK(strstr(err, body_cases[i].err) != NULL,
		      "body case %zu: error '%s' lacks '%s'", i, err, body_cases[i].err);
		if (st == 0) {
			CHECK(r.method == body_cases[i].method, "body case %zu method", i);
			CHECK(r.count == body_cases[i].count, "body case %zu count %zu", i,
			      r.count);
		}
		pb_ingest_req_free(&r);
	}
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
