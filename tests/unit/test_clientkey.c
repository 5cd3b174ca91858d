/* Client keys: hashing, where a request carries one, names, new keys. */
#include <string.h>

#include "clientkey.h"
#include "pb.h"
#include "unit.h"

static void hashes(void)
{
	char h[PB_CLIENT_HASH_LEN + 1];

	/* FIPS 180-2's examples. */
	pb_client_key_hash("abc", 3, h);
	CHECK_STR(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	pb_client_key_hash("", 0, h);
	CHECK_STR(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

/* (Authorization, X-Api-Key, result, the key found) */
static const struct {
	const char *auth, *api, *key;
	int rc;
} from_cases[] = {
	{ "Bearer pbk_abc", NULL, "pbk_abc", PB_OK },
	{ "bearer pbk_abc", NULL, "pbk_abc", PB_OK },        /* scheme: any case */
	{ "BEARER pbk_abc", "other", "pbk_abc", PB_OK },     /* Authorization wins */
	{ NULL, "pbk_abc", "pbk_abc", PB_OK },
	{ "", "pbk_abc", "pbk_abc", PB_OK },
	{ NULL, NULL, NULL, PB_ERR_NOTFOUND },
	{ "", "", NULL, PB_ERR_NOTFOUND },
	{ "Basic dXNlcjpwYXNz", NULL, NULL, PB_ERR_FORMAT },
	{ "Bearer", NULL, NULL, PB_ERR_FORMAT },
	{ "Bearer ", NULL, NULL, PB_ERR_FORMAT },
	{ "Bearer a b", NULL, NULL, PB_ERR_FORMAT },          /* a space in the key */
	{ "Bearer ab\x01", NULL, NULL, PB_ERR_FORMAT },       /* a control byte */
	{ NULL, "k\xc3\xa9y", NULL, PB_ERR_FORMAT },          /* not ASCII */
};

static void from(void)
{
	char long_key[PB_CLIENT_KEY_MAX + 2];
	const char *k;
	size_t i, n;

	for (i = 0; i < sizeof(from_cases) / sizeof(from_cases[0]); i++) {
		int rc = pb_client_key_from(from_cases[i].auth, from_cases[i].api, &k, &n);

		CHECK(rc == from_cases[i].rc, "case %zu: rc %d", i, rc);
		if (rc == PB_OK && from_cases[i].key)
			CHECK(n == strlen(from_cases[i].key) &&
			      memcmp(k, from_cases[i].key, n) == 0, "case %zu: %.*s", i, (int)n, k);
	}
	memset(long_key, 'k', sizeof(long_key) - 1);
	long_key[PB_CLIENT_KEY_MAX] = '\0';
	CHECK(pb_client_key_from(NULL, long_key, &k, &n) == PB_OK, "%d chars", PB_CLIENT_KEY_MAX);
	long_key[PB_CLIENT_KEY_MAX] = 'k';
	long_key[PB_CLIENT_KEY_MAX + 1] = '\0';
	CHECK(pb_client_key_from(NULL, long_key, &k, &n) == PB_ERR_FORMAT, "one more");
}

static void names(void)
{
	char max[PB_CLIENT_NAME_MAX + 1];

	CHECK(pb_client_name_valid("acme", 4), "acme");
	CHECK(pb_client_name_valid("a.b_c-9", 7), "a.b_c-9");
	CHECK(!pb_client_name_valid("", 0), "empty");
	CHECK(!pb_client_name_valid("a b", 3), "space");
	CHECK(!pb_client_name_valid("a:b", 3), "colon: it separates the idempotency key");
	CHECK(!pb_client_name_valid("a\tb", 3), "tab: it separates the request header");
	memset(max, 'n', sizeof(max));
	CHECK(pb_client_name_valid(max, PB_CLIENT_NAME_MAX), "longest");
	CHECK(!pb_client_name_valid(max, PB_CLIENT_NAME_MAX + 1), "too long");
}

static void new_keys(void)
{
	char a[PB_CLIENT_KEY_LEN + 1], b[PB_CLIENT_KEY_LEN + 1];
	size_t i;

	CHECK(pb_client_key_new(a) == PB_OK && pb_client_key_new(b) == PB_OK, "new");
	CHECK(strlen(a) == PB_CLIENT_KEY_LEN && strncmp(a, "pbk_", 4) == 0, "%s", a);
	for (i = 4; i < PB_CLIENT_KEY_LEN; i++)
		CHECK(strchr("0123456789abcdef", a[i]) != NULL, "hex at %zu", i);
	CHECK(strcmp(a, b) != 0, "two keys differ");
}

void unit_tests(void)
{
	hashes();
	from();
	names();
	new_keys();
}
