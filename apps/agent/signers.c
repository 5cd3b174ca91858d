/*
 * signers.c - the clients' signing secrets, held for the deliverer
 * (signers.h). One table, replaced whole under a lock when the secrets
 * change; the deliverer reads it under the same lock for each attempt.
 */
#include "signers.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clientkey.h"
#include "job.h"
#include "log.h"
#include "pb.h"
#include "sign.h"

typedef struct signer {
	char client[PB_CLIENT_NAME_MAX + 1];
	int n;
	pb_sign_secret sec[PB_SIGN_MAX_SECRETS];
} signer;

static struct {
	pthread_rwlock_t lock;
	signer *all; /* by client name */
	size_t n;
	char version[32]; /* of <p>:signing-version when read; "" never */
} T = { .lock = PTHREAD_RWLOCK_INITIALIZER };

static int by_client(const void *a, const void *b)
{
	return strcmp(((const signer *)a)->client, ((const signer *)b)->client);
}

/* One field of <p>:signing: a client and its secrets, newest first. */
static int parse(const redisReply *f, const redisReply *v, signer *s)
{
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

static int reload(pb_redis *r, const pb_keys *k, const char *version)
{
	redisReply *rep = pb_redis_cmd(r, "HGETALL %s", k->signing);
	signer *all, *old;
	size_t i, n = 0;

	if (rep == NULL)
		return r->err;
	if (rep->type != REDIS_REPLY_ARRAY ||
	    (all = calloc(rep->elements / 2 + 1, sizeof(*all))) == NULL) {
		pb_warn("signing secrets: HGETALL %s: %s", k->signing,
			rep->type == REDIS_REPLY_ERROR ? rep->str : "not read");
		freeReplyObject(rep);
		return PB_ERR_REPLY;
	}
	for (i = 0; i + 1 < rep->elements; i += 2)
		if (parse(rep->element[i], rep->element[i + 1], &all[n]))
			n++;
		else
			pb_warn("signing secrets: %s holds a field that is not a client "
				"and its secrets; that client goes unsigned", k->signing);
	freeReplyObject(rep);
	qsort(all, n, sizeof(*all), by_client);
	pthread_rwlock_wrlock(&T.lock);
	old = T.all;
	T.all = all;
	T.n = n;
	pb_strlcpy(T.version, version, sizeof(T.version));
	pthread_rwlock_unlock(&T.lock);
	pb_info("signing secrets: %zu client(s) signed (version %s)", n, version);
	free(old);
	return PB_OK;
}

int signers_refresh(pb_redis *r, const pb_keys *k)
{
	redisReply *rep = pb_redis_cmd(r, "GET %s", k->signing_version);
	char version[32] = "0"; /* no key yet: nobody signed */
	int same;

	if (rep == NULL)
		return r->err;
	if (rep->type == REDIS_REPLY_STRING)
		pb_strlcpy(version, rep->str, sizeof(version));
	freeReplyObject(rep);
	pthread_rwlock_rdlock(&T.lock);
	same = strcmp(T.version, version) == 0;
	pthread_rwlock_unlock(&T.lock);
	return same ? PB_OK : reload(r, k, version);
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
	const signer *s;
	signer want = { .n = 0 };
	int64_t ts = (int64_t)time(NULL);
	size_t used;
	int i;

	if (n == 0 || n > PB_CLIENT_NAME_MAX)
		return PB_OK; /* anonymous: unsigned */
	memcpy(want.client, client, n);
	want.client[n] = '\0';
	pthread_rwlock_rdlock(&T.lock);
	s = T.n ? bsearch(&want, T.all, T.n, sizeof(*T.all), by_client) : NULL;
	used = (size_t)snprintf(sig, sizeof(sig), "webhook-signature:");
	for (i = 0; s && i < s->n; i++) {
		sig[used++] = ' ';
		pb_sign_v1(sig + used, &s->sec[i], id, ts, body, body_len);
		used += strlen(sig + used);
	}
	pthread_rwlock_unlock(&T.lock);
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
	pthread_rwlock_wrlock(&T.lock);
	free(T.all);
	T.all = NULL;
	T.n = 0;
	pthread_rwlock_unlock(&T.lock);
}
