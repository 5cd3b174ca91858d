/*
 * signers.c - the clients' signing secrets, held for the deliverer
 * (signers.h): a copy of <p>:signing (hashcopy.h), which the deliverer
 * reads under its lock for each attempt.
 */
#include "signers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clientkey.h"
#include "hashcopy.h"
#include "job.h"
#include "log.h"
#include "pb.h"
#include "sign.h"

typedef struct signer {
	char client[PB_CLIENT_NAME_MAX + 1];
	int n;
	pb_sign_secret sec[PB_SIGN_MAX_SECRETS];
} signer;

/* One field of <p>:signing: a client and its secrets, newest first. */
static int parse(const redisReply *f, const redisReply *v, void *row)
{
	signer *s = row;
	char *copy, *w, *save = NULL;

	if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING ||
	    !pb_client_name_valid(f->str, f->len) || (copy = strdup(v->str)) == NULL)
		return 0;
	memcpy(s->client, f->str, f->len + 1);
	s->n = 0;
	for (w = strtok_r(copy, " ", &save); w && s->n < PB_SIGN_MAX_SECRETS;
	     w = strtok_r(NULL, " ", &save))
		if (pb_sign_secret_read(&s->sec[s->n], w, strlen(w)) == PB_OK)
			s->n++;
	free(copy);
	return s->n > 0;
}

/* By client name; a client whose field does not read goes unsigned. */
static pb_hashcopy T = PB_HASHCOPY_INIT("signing secrets, clients signed", signer, client,
					parse);

int signers_refresh(pb_redis *r, const pb_keys *k)
{
	return pb_hashcopy_refresh(&T, r, k->signing_version, k->signing);
}

/* A failed append leaves the list as it was (the caller frees it). */
static int append(struct curl_slist **headers, const char *line)
{
	struct curl_slist *h = curl_slist_append(*headers, line);

	if (h == NULL)
		return PB_ERR_NOMEM;
	*headers = h;
	return PB_OK;
}

int signers_headers(struct curl_slist **headers, const char *client, size_t n,
		    const char *id, const char *body, size_t body_len)
{
	char sig[32 + PB_SIGN_MAX_SECRETS * (PB_SIGN_B64_LEN + 5)];
	char id_line[PB_ID_MAX + 32], ts_line[48];
	char want[PB_CLIENT_NAME_MAX + 1];
	const signer *s;
	int64_t ts = (int64_t)time(NULL);
	size_t used;
	int i;

	if (n == 0 || n > PB_CLIENT_NAME_MAX)
		return PB_OK; /* anonymous: unsigned */
	memcpy(want, client, n);
	want[n] = '\0';
	pb_hashcopy_rdlock(&T);
	s = pb_hashcopy_find(&T, want);
	used = (size_t)snprintf(sig, sizeof(sig), "webhook-signature:");
	for (i = 0; s && i < s->n; i++) {
		sig[used++] = ' ';
		pb_sign_v1(sig + used, &s->sec[i], id, ts, body, body_len);
		used += strlen(sig + used);
	}
	pb_hashcopy_unlock(&T);
	if (s == NULL)
		return PB_OK;
	snprintf(id_line, sizeof(id_line), "webhook-id: %s", id);
	snprintf(ts_line, sizeof(ts_line), "webhook-timestamp: %lld", (long long)ts);
	if (append(headers, id_line) != PB_OK || append(headers, ts_line) != PB_OK)
		return PB_ERR_NOMEM;
	return append(headers, sig);
}

void signers_free(void)
{
	pb_hashcopy_free(&T);
}
