/*
 * signers.h - the clients' signing secrets (sign.h) as an agent holds them:
 * read from <p>:signing on the first shard (keys.h), read again within a
 * second of a change (<p>:signing-version moves), and used by the
 * deliverer for every attempt of a signed client's postback.
 */
#ifndef PB_SIGNERS_H
#define PB_SIGNERS_H

#include <stddef.h>

#include <curl/curl.h>

#include "keys.h"
#include "redis.h"

#define SIGNERS_REFRESH_MS 1000

/* Read the secrets again if their version moved (the fetcher of the first
 * shard, at most every SIGNERS_REFRESH_MS). PB_OK or the Redis error; the
 * secrets held stay as they were on an error. */
int signers_refresh(pb_redis *r, const pb_keys *k);

/*
 * The Standard Webhooks headers of one attempt of a postback of client
 * client[0..n) (webhook-id, webhook-timestamp, webhook-signature, one
 * signature a secret) appended to *headers; nothing when that client is
 * not signed. body: what is sent ("" for a GET). PB_OK or PB_ERR_NOMEM.
 */
int signers_headers(struct curl_slist **headers, const char *client, size_t n,
		    const char *id, const char *body, size_t body_len);

/* Free what is held (at exit). */
void signers_free(void);

#endif
