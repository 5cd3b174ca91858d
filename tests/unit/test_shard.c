/* The shards' names, and each key's home: parse cases, then the home's
 * properties (deterministic, even, order-free, little movement). */
#include <stdio.h>
#include <string.h>

#include "pb.h"
#include "shard.h"
#include "unit.h"

static void parse(void)
{
	static const struct { const char *list; int n; const char *last; } cases[] = {
		{ "pb-master", 1, "pb-master" },
		{ "pb-master,pb-master-2", 2, "pb-master-2" },
		{ "a.b_c-1,x", 2, "x" },
		{ "", -1, NULL },
		{ "a,", -1, NULL },
		{ ",a", -1, NULL },
		{ "a,,b", -1, NULL },
		{ "a,a", -1, NULL },
		{ "a b", -1, NULL },
		{ "a,b;c", -1, NULL },
		{ "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16", 16, "16" },
		{ "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17", -1, NULL },
	};
	char err[256];
	pb_shards s;
	size_t i;

	for (i = 0; i < PB_ARRAY_LEN(cases); i++) {
		int rc = pb_shards_parse(&s, cases[i].list, err, sizeof(err));

		if (cases[i].n < 0) {
			CHECK(rc == PB_ERR_FORMAT, "'%s' refused", cases[i].list);
			CHECK(strstr(err, "master_name") != NULL, "'%s': %s", cases[i].list, err);
			continue;
		}
		CHECK(rc == PB_OK, "'%s': %s", cases[i].list, err);
		CHECK(s.n == cases[i].n, "'%s': %d shards", cases[i].list, s.n);
		CHECK_STR(s.name[s.n - 1], cases[i].last);
		CHECK(pb_shard_find(&s, cases[i].last) == s.n - 1, "'%s' found",
		      cases[i].last);
		CHECK(pb_shard_find(&s, "nosuchshard") == -1, "no such shard in '%s'",
		      cases[i].list);
	}
	{
		char longname[PB_SHARD_NAME_MAX + 2];

		memset(longname, 'a', sizeof(longname) - 1);
		longname[sizeof(longname) - 1] = '\0';
		CHECK(pb_shards_parse(&s, longname, err, sizeof(err)) == PB_ERR_FORMAT,
		      "a name of %zu characters refused", strlen(longname));
		longname[PB_SHARD_NAME_MAX] = '\0';
		CHECK(pb_shards_parse(&s, longname, err, sizeof(err)) == PB_OK,
		      "a name of %d characters taken", PB_SHARD_NAME_MAX);
	}
}

enum { KEYS = 20000 };

static void homes(void)
{
	pb_shards one, two, three, three_reordered;
	int count[3] = { 0, 0, 0 }, moved_2to3 = 0, wrong_move = 0, k;
	char err[256], key[64];

	CHECK(pb_shards_parse(&one, "pb-master", err, sizeof(err)) == PB_OK, "%s", err);
	CHECK(pb_shards_parse(&two, "pb-master,pb-master-2", err, sizeof(err)) == PB_OK, "%s", err);
	CHECK(pb_shards_parse(&three, "pb-master,pb-master-2,pb-master-3", err,
			      sizeof(err)) == PB_OK, "%s", err);
	CHECK(pb_shards_parse(&three_reordered, "pb-master-3,pb-master,pb-master-2", err,
			      sizeof(err)) == PB_OK, "%s", err);
	for (k = 0; k < KEYS; k++) {
		size_t n = (size_t)snprintf(key, sizeof(key), "client%d:order-%d", k % 7, k);
		int h1 = pb_shard_home(&one, key, n), h2 = pb_shard_home(&two, key, n);
		int h3 = pb_shard_home(&three, key, n);
		int hr = pb_shard_home(&three_reordered, key, n);

		CHECK(h1 == 0, "one shard: home %d", h1);
		CHECK(h3 == pb_shard_home(&three, key, n), "deterministic");
		/* The same shard by name, whatever the order of the list. */
		CHECK(strcmp(three.name[h3], three_reordered.name[hr]) == 0,
		      "%s: %s vs %s", key, three.name[h3], three_reordered.name[hr]);
		count[h3]++;
		/* Adding a shard moves a key only to the new shard. */
		if (h3 != h2)
			moved_2to3++, wrong_move += h3 != 2;
	}
	CHECK(wrong_move == 0, "%d keys moved between old shards", wrong_move);
	/* About a third each, and about a third moved (±5 % of the keys). */
	for (k = 0; k < 3; k++)
		CHECK(count[k] > KEYS / 3 - KEYS / 20 && count[k] < KEYS / 3 + KEYS / 20,
		      "shard %d: %d of %d keys", k, count[k], KEYS);
	CHECK(moved_2to3 > KEYS / 3 - KEYS / 20 && moved_2to3 < KEYS / 3 + KEYS / 20,
	      "%d of %d keys moved to the third shard", moved_2to3, KEYS);
}

/* closed_shards: names of the list but the first; a closed shard is
 * nobody's home, and closing it moves only its own keys. */
static void closed(void)
{
	static const struct { const char *list; int ok; int closed2, closed3; } cases[] = {
		{ "", 1, 0, 0 },
		{ "b", 1, 1, 0 },
		{ "b,c", 1, 1, 1 },
		{ "c", 1, 0, 1 },
		{ "a", 0, 0, 0 },      /* the first */
		{ "x", 0, 0, 0 },      /* not a shard */
		{ "b,", 0, 0, 0 },
		{ ",b", 0, 0, 0 },
		{ "b,,c", 0, 0, 0 },
	};
	pb_shards s, open3;
	char err[256], key[64];
	size_t i;
	int k, moved = 0, wrong = 0;

	for (i = 0; i < PB_ARRAY_LEN(cases); i++) {
		int rc;

		CHECK(pb_shards_parse(&s, "a,b,c", err, sizeof(err)) == PB_OK, "%s", err);
		rc = pb_shards_close(&s, cases[i].list, err, sizeof(err));
		CHECK((rc == PB_OK) == cases[i].ok, "'%s': %s", cases[i].list,
		      rc == PB_OK ? "taken" : err);
		if (rc != PB_OK) {
			CHECK(strstr(err, "closed_shards") != NULL, "'%s': %s", cases[i].list, err);
			continue;
		}
		CHECK(s.closed[0] == 0 && s.closed[1] == cases[i].closed2 &&
		      s.closed[2] == cases[i].closed3, "'%s': closed %d%d%d", cases[i].list,
		      s.closed[0], s.closed[1], s.closed[2]);
	}
	CHECK(pb_shards_parse(&open3, "a,b,c", err, sizeof(err)) == PB_OK, "%s", err);
	CHECK(pb_shards_parse(&s, "a,b,c", err, sizeof(err)) == PB_OK, "%s", err);
	CHECK(pb_shards_close(&s, "c", err, sizeof(err)) == PB_OK, "%s", err);
	for (k = 0; k < KEYS; k++) {
		size_t n = (size_t)snprintf(key, sizeof(key), "client%d:order-%d", k % 7, k);
		int before = pb_shard_home(&open3, key, n), after = pb_shard_home(&s, key, n);

		CHECK(after != 2, "%s: home on the closed shard", key);
		if (after != before)
			moved++, wrong += before != 2;
	}
	CHECK(wrong == 0, "%d keys of open shards moved", wrong);
	CHECK(moved > KEYS / 3 - KEYS / 20 && moved < KEYS / 3 + KEYS / 20,
	      "%d of %d keys moved off the closed shard", moved, KEYS);
}

void unit_tests(void)
{
	parse();
	homes();
	closed();
}
