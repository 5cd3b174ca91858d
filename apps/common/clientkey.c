#include "clientkey.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/sha.h>

#include "pb.h"

int pb_client_key_new(char out[PB_CLIENT_KEY_LEN + 1])
{
	unsigned char r[32];
	size_t i;

	if (pb_random_bytes(r, sizeof(r)) != PB_OK)
		return PB_ERR_IO;
	pb_strlcpy(out, PB_CLIENT_KEY_PREFIX, PB_CLIENT_KEY_LEN + 1);
	for (i = 0; i < sizeof(r); i++)
		snprintf(out + 4 + 2 * i, 3, "%02x", r[i]);
	return PB_OK;
}

void pb_client_key_hash(const char *key, size_t n,
			char out[PB_CLIENT_HASH_LEN + 1])
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	size_t i;

	SHA256((const unsigned char *)key, n, md);
	for (i = 0; i < sizeof(md); i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* 1 to PB_CLIENT_KEY_MAX printable ASCII characters, no space. */
static int key_chars_ok(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > PB_CLIENT_KEY_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if (s[i] <= 0x20 || s[i] >= 0x7f)
			return 0;
	return 1;
}

int pb_client_key_from(const char *authorization, const char *x_api_key,
		       const char **key, size_t *n)
{
	const char *k;

	if (authorization != NULL && authorization[0] != '\0') {
		/* RFC 6750: the scheme is case-insensitive, then one space. */
		if (strncasecmp(authorization, "Bearer ", 7) != 0)
			return PB_ERR_FORMAT;
		k = authorization + 7;
	} else if (x_api_key != NULL && x_api_key[0] != '\0') {
		k = x_api_key;
	} else {
		return PB_ERR_NOTFOUND;
	}
	*key = k;
	*n = strlen(k);
	return key_chars_ok(k, *n) ? PB_OK : PB_ERR_FORMAT;
}

int pb_client_name_valid(const char *s, size_t n)
{
	return pb_token_valid(s, n, PB_CLIENT_NAME_MAX, "-_.");
}
