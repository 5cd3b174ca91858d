/*
 * clientkey.h - the keys clients send with each ingest request.
 *
 * A key is "pbk_" and 64 hex digits of getrandom(2), issued by an operator
 * (pbctl keys add NAME) and shown once. Redis keeps only its SHA-256, as a
 * field of the hash <p>:clients whose value is the client's name and when
 * the key was issued ("<name> <ms>"): reading Redis gives nobody a key.
 * The keys are random, so one plain hash is enough; a slow password hash
 * would protect nothing more and cost every request.
 *
 * A request carries its key as "Authorization: Bearer <key>" or, for
 * clients that cannot set that header, "X-Api-Key: <key>".
 */
#ifndef PB_CLIENTKEY_H
#define PB_CLIENTKEY_H

#include <stddef.h>

#define PB_CLIENT_KEY_PREFIX "pbk_"
#define PB_CLIENT_KEY_LEN (4 + 64)      /* prefix and 32 random bytes in hex */
#define PB_CLIENT_KEY_MAX 128           /* longest key a request may send */
#define PB_CLIENT_HASH_LEN 64           /* SHA-256 in hex */
#define PB_CLIENT_NAME_MAX 64
/* The largest share of the queue a client can be given (pbctl keys share). */
#define PB_CLIENT_SHARE_MAX 1000000000L

/* A new key into out (PB_CLIENT_KEY_LEN + 1 bytes). PB_OK or PB_ERR_IO. */
int pb_client_key_new(char out[PB_CLIENT_KEY_LEN + 1]);
/* The hex SHA-256 of key[0..n) into out (65 bytes, NUL-terminated). */
void pb_client_key_hash(const char *key, size_t n,
			char out[PB_CLIENT_HASH_LEN + 1]);
/*
 * The key a request sent, from its Authorization and X-Api-Key headers
 * (either may be NULL): PB_OK with *key and *n set, PB_ERR_NOTFOUND when
 * neither carries one, PB_ERR_FORMAT when one is there but is not 1 to
 * PB_CLIENT_KEY_MAX printable ASCII characters (or Authorization is not
 * "Bearer <key>").
 */
int pb_client_key_from(const char *authorization, const char *x_api_key,
		       const char **key, size_t *n);
/* 1 if name[0..n) may name a client: 1 to PB_CLIENT_NAME_MAX of
 * [A-Za-z0-9._-] (it goes into Redis keys, request headers and logs). */
int pb_client_name_valid(const char *name, size_t n);

#endif
