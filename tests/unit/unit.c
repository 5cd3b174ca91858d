#include "unit.h"

#include <stdlib.h>

int unit_pass, unit_fail;

const char *unit_golden(const char *name)
{
	static char path[512];
	const char *dir = getenv("PB_GOLDEN_DIR");

	snprintf(path, sizeof(path), "%s/%s", dir ? dir : "tests/unit/golden", name);
	return path;
}

int main(void)
{
	unit_tests();
	printf("%d passed, %d failed\n", unit_pass, unit_fail);
	return unit_fail ? 1 : 0;
}
