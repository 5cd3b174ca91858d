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

static int split_tsv(char *line, char **f, int n)
{
	int i;

	for (i = 0; i < n - 1; i++) {
		char *tab = strchr(line, '\t');

		if (tab == NULL)
			return -1;
		*tab = '\0';
		f[i] = line;
		line = tab + 1;
	}
	f[n - 1] = line;
	return 0;
}

int unit_golden_rows(const char *name, int n, void (*row)(char **f, void *ctx),
		     void *ctx)
{
	FILE *file = fopen(unit_golden(name), "r");
	char line[8192], *f[8];
	int rows = 0;

	CHECK(file != NULL, "cannot open %s", unit_golden(name));
	if (file == NULL || n > 8)
		return 0;
	while (fgets(line, sizeof(line), file)) {
		line[strcspn(line, "\n")] = '\0';
		if (line[0] == '#' || line[0] == '\0')
			continue;
		if (split_tsv(line, f, n) != 0) {
			CHECK(0, "%s: not %d fields: %s", name, n, line);
			continue;
		}
		row(f, ctx);
		rows++;
	}
	fclose(file);
	return rows;
}

int main(void)
{
	unit_tests();
	printf("%d passed, %d failed\n", unit_pass, unit_fail);
	return unit_fail ? 1 : 0;
}
