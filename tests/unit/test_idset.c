/* The bench tool's id counting. */
#include <stdio.h>

#include "idset.h"
#include "unit.h"

void unit_tests(void)
{
	pb_idset s;
	char id[32];
	int i, ok = 1;

	pb_idset_init(&s);
	CHECK(pb_idset_count(&s, "x", 1) == 0, "empty");
	for (i = 0; i < 100000; i++) {
		snprintf(id, sizeof(id), "req%d-%d", i / 7, i % 7);
		ok &= pb_idset_add(&s, id, strlen(id)) == 1;
	}
	CHECK(ok, "first adds count 1");
	CHECK(s.len == 100000, "len %zu", s.len);
	CHECK(pb_idset_add(&s, "req0-0", 6) == 2, "duplicate counted");
	CHECK(pb_idset_count(&s, "req0-0", 6) == 2, "count");
	CHECK(pb_idset_count(&s, "req0-0x", 7) == 0, "prefix is another id");
	CHECK(pb_idset_count(&s, "req0-", 5) == 0, "shorter is another id");
	pb_idset_free(&s);
}
