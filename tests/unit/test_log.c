/* What the delivery log writes of foreign text: logfmt escaping, JSON
 * escaping (valid JSON whatever the bytes), and the redacted URL. */
#include "buf.h"
#include "log.h"
#include "pb.h"
#include "unit.h"

typedef int (*escape_fn)(pb_buf *, const char *, size_t, size_t);

struct esc_case {
	const char *in;
	size_t n, max;
	const char *want;
};

static void escapes(const char *name, escape_fn fn, const struct esc_case *cases,
		    size_t ncases)
{
	size_t i;

	for (i = 0; i < ncases; i++) {
		pb_buf b;

		pb_buf_init(&b, 1024);
		CHECK(fn(&b, cases[i].in, cases[i].n, cases[i].max) == PB_OK, "%s %zu", name, i);
		CHECK_STR(pb_buf_str(&b), cases[i].want);
		pb_buf_free(&b);
	}
}

static void log_escape(void)
{
	static const struct esc_case cases[] = {
		{ "plain text", 10, 99, "plain text" },
		{ "a\"b\\c", 5, 99, "a\\\"b\\\\c" },
		{ "l1\nl2\r\t", 7, 99, "l1\\nl2\\r\\t" },
		{ "\x01\x7f\xc3\xa9", 4, 99, "\\x01\\x7f\\xc3\\xa9" },
		{ "abcdef", 6, 3, "abc..." },
		{ "", 0, 99, "" },
	};

	escapes("log", pb_log_escape, cases, sizeof(cases) / sizeof(cases[0]));
}

static void json_escape(void)
{
	static const struct esc_case cases[] = {
		{ "plain text", 10, 99, "plain text" },
		{ "a\"b\\c", 5, 99, "a\\\"b\\\\c" },
		{ "l1\nl2\r\t", 7, 99, "l1\\nl2\\r\\t" },
		/* Bytes, not characters: an invalid UTF-8 answer stays valid JSON. */
		{ "\x01\x7f\xc3\xa9\xff", 5, 99, "\\u0001\\u007f\\u00c3\\u00a9\\u00ff" },
		{ "a\0b", 3, 99, "a\\u0000b" },
		{ "abcdef", 6, 3, "abc..." },
		{ "", 0, 99, "" },
	};

	escapes("json", pb_json_escape, cases, sizeof(cases) / sizeof(cases[0]));
}

static void redact_query(void)
{
	static const struct { const char *in, *want; } cases[] = {
		{ "http://h:1/p", "http://h:1/p" },
		{ "http://h/p?a=1&b=secret", "http://h/p?a=*&b=*" },
		{ "http://h/p?token", "http://h/p?*" },
		{ "http://h/p?a=&b", "http://h/p?a=*&*" },
		{ "http://h/p?a=1#frag", "http://h/p?a=*#*" },
		{ "http://h/p#frag", "http://h/p#*" },
		{ "http://h/p?a=x=y&&c=3", "http://h/p?a=*&&c=*" },
		{ "http://h/p?", "http://h/p?" },
		{ "", "" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		pb_buf b;

		pb_buf_init(&b, 1024);
		CHECK(pb_redact_query(&b, cases[i].in, strlen(cases[i].in)) == PB_OK, "%s",
		      cases[i].in);
		CHECK_STR(pb_buf_str(&b), cases[i].want);
		pb_buf_free(&b);
	}
}

void unit_tests(void)
{
	log_escape();
	json_escape();
	redact_query();
}
