/* The one bounded number parser; the buffer's sticky error. */
#include "buf.h"
#include "pb.h"
#include "unit.h"

static void parse_long(void)
{
	static const struct { const char *s; long min, max; int want; long n; } cases[] = {
		{ "0", 0, 10, PB_OK, 0 },          { "10", 0, 10, PB_OK, 10 },
		{ "-5", -10, 10, PB_OK, -5 },      { "007", 0, 10, PB_OK, 7 },
		{ "11", 0, 10, PB_ERR_LIMIT, 0 },  { "-1", 0, 10, PB_ERR_LIMIT, 0 },
		{ "99999999999999999999", 0, 10, PB_ERR_LIMIT, 0 },
		{ "", 0, 10, PB_ERR_FORMAT, 0 },   { " 1", 0, 10, PB_ERR_FORMAT, 0 },
		{ "+1", 0, 10, PB_ERR_FORMAT, 0 }, { "-", 0, 10, PB_ERR_FORMAT, 0 },
		{ "1x", 0, 10, PB_ERR_FORMAT, 0 }, { "1 ", 0, 10, PB_ERR_FORMAT, 0 },
		{ "0x10", 0, 99, PB_ERR_FORMAT, 0 }, { "1.5", 0, 10, PB_ERR_FORMAT, 0 },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		long n = 12345;
		int rc = pb_parse_long(cases[i].s, cases[i].min, cases[i].max, &n);

		CHECK(rc == cases[i].want, "'%s' in %ld..%ld: %d", cases[i].s,
		      cases[i].min, cases[i].max, rc);
		CHECK(n == (rc == PB_OK ? cases[i].n : 12345), "'%s': %ld", cases[i].s, n);
	}
	CHECK(pb_parse_long(NULL, 0, 1, &(long){ 0 }) == PB_ERR_FORMAT, "NULL");
}

static void token_valid(void)
{
	static const struct { const char *s; size_t n, max; const char *punct; int want; } cases[] = {
		{ "abcXYZ019", 9, 9, "", 1 },     { "abcXYZ019", 9, 8, "", 0 },
		{ "", 0, 9, "-", 0 },             { "a-b", 3, 9, "-", 1 },
		{ "a-b", 3, 9, "_", 0 },          { "a:b.c_d-e", 9, 9, "-_.:", 1 },
		{ "a b", 3, 9, " ", 1 },          { "a b", 3, 9, "-", 0 },
		{ "a\tb", 3, 9, "-_.", 0 },       { "\xc3\xa9", 2, 9, "-", 0 },
		{ "a\0b", 3, 9, "-", 0 },         /* NUL is never in punct */
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		CHECK(pb_token_valid(cases[i].s, cases[i].n, cases[i].max, cases[i].punct) ==
		      cases[i].want, "case %zu '%s' (max %zu, '%s')", i, cases[i].s,
		      cases[i].max, cases[i].punct);
}

static void info_field(void)
{
	static const char info[] = "# Memory\r\nused_memory:1048576\r\n"
				   "used_memory_human:1.00M\r\nmaxmemory:0\r\n"
				   "maxmemory_policy:noeviction\r\n";
	long n = -1;

	CHECK(pb_info_field(info, "used_memory", &n) == PB_OK && n == 1048576, "%ld", n);
	CHECK(pb_info_field(info, "maxmemory", &n) == PB_OK && n == 0, "%ld", n);
	CHECK(pb_info_field(info, "maxmemory_policy", &n) == PB_ERR_FORMAT, "text");
	CHECK(pb_info_field(info, "used_memory_human", &n) == PB_ERR_FORMAT, "1.00M");
	CHECK(pb_info_field(info, "memory", &n) == PB_ERR_NOTFOUND, "a suffix only");
	CHECK(pb_info_field(info, "used", &n) == PB_ERR_NOTFOUND, "a prefix only");
	CHECK(pb_info_field("", "x", &n) == PB_ERR_NOTFOUND, "empty");
}

static void sticky_error(void)
{
	pb_buf b;

	pb_buf_init(&b, 8);
	CHECK(pb_buf_puts(&b, "abcd") == PB_OK && pb_buf_err(&b) == PB_OK, "fits");
	CHECK(pb_buf_puts(&b, "efghij") == PB_ERR_LIMIT, "past the limit");
	/* Sticky: a piece that would fit is not appended after a failure. */
	CHECK(pb_buf_putc(&b, 'x') == PB_ERR_LIMIT, "still failing");
	CHECK(pb_buf_printf(&b, "%d", 1) == PB_ERR_LIMIT, "printf too");
	CHECK_STR(pb_buf_str(&b), "abcd");
	CHECK(pb_buf_err(&b) == PB_ERR_LIMIT, "checked once at the end");
	pb_buf_reset(&b);
	CHECK(pb_buf_err(&b) == PB_OK && pb_buf_puts(&b, "12345678") == PB_OK, "reset");
	pb_buf_free(&b);
}

static void base62(void)
{
	static const struct { uint64_t v; size_t width; const char *out; } cases[] = {
		{ 0, 1, "0" }, { 61, 1, "z" }, { 62, 1, "10" }, { 3843, 1, "zz" },
		{ 5, 8, "00000005" }, { UINT64_MAX, 1, "LygHa16AHYF" },
	};
	char out[16];
	size_t i;

	for (i = 0; i < PB_ARRAY_LEN(cases); i++) {
		CHECK(pb_base62(out, sizeof(out), cases[i].v, cases[i].width) == PB_OK,
		      "base62 %zu", i);
		CHECK_STR(out, cases[i].out);
	}
	CHECK(pb_base62(out, 3, 3844, 1) == PB_ERR_LIMIT, "100 needs 4 bytes");
	CHECK(pb_base62(out, 4, 3844, 1) == PB_OK && strcmp(out, "100") == 0, "fits");
}

void unit_tests(void)
{
	parse_long();
	token_valid();
	base62();
	sticky_error();
	info_field();
}
