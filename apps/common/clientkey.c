#include "clientkey.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <pthread.h>

#include <openssl/evp.h>
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

/* SHA-256 fetched once: OpenSSL 3's SHA256() fetches it at every call,
 * and an ingest node hashes every request's key. */
static EVP_MD *sha256;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void)
{
	sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

void pb_client_key_hash(const char *key, size_t n,
			char out[PB_CLIENT_HASH_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	size_t i;

	pthread_once(&sha256_once, sha256_fetch);
	if (sha256 == NULL || !EVP_Digest(key, n, md, &len, sha256, NULL) ||
	    len != SHA256_DIGEST_LENGTH)
		SHA256((const unsigned char *)key, n, md);
	for (i = 0; i < SHA256_DIGEST_LENGTH; i++) {
		*out++ = hex[md[i] >> 4];
		*out++ = hex[md[i] & 0x0f];
	}
	*out = '\0';
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
