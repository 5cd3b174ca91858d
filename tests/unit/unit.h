/* unit.h - a minimal test harness: CHECK records, main() prints a tally. */
#ifndef PB_UNIT_H
#define PB_UNIT_H

#include <stdio.h>
#include <string.h>

extern int unit_pass, unit_fail;

#define CHECK(cond, ...)                                                   \
	do {                                                               \
		if (cond) {                                                \
			unit_pass++;                                       \
		} else {                                                   \
			unit_fail++;                                       \
			fprintf(stderr, "%s:%d: FAIL: %s: ", __FILE__,      \
				__LINE__, #cond);                          \
			fprintf(stderr, __VA_ARGS__);                      \
			fputc('\n', stderr);                               \
		}                                                          \
	} while (0)

#define CHECK_STR(got, want)                                               \
	CHECK(strcmp((got), (want)) == 0, "got \"%s\", want \"%s\"", (got), (want))

/* Each test file defines this; unit.c calls it and prints the tally. */
void unit_tests(void);
/* Path of a file under tests/unit/golden. */
const char *unit_golden(const char *name);
/*
 * Each line of golden file name but blank and # lines, split at its first
 * n - 1 tabs (n <= 8), to row(f, ctx); a line with fewer tabs is a failed
 * check. Returns how many rows were read; a file that will not open is a
 * failed check too.
 */
int unit_golden_rows(const char *name, int n, void (*row)(char **f, void *ctx),
		     void *ctx);

#endif
