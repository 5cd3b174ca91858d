/* The one bounded number parser. */
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

void unit_tests(void)
{
	parse_long();
}
