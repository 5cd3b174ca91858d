#include "clients.h"

#include <pthread.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pb.h"
#include "redis.h"
#include "version.h"

#define RELOAD_ANYWAY_MS 60000
/* The table answers while Redis confirmed it within this many refreshes
 * (clients.h): 20 s at the default client_keys_refresh_ms of 500, longer
 * than a failover takes. */
#define CONFIRM_REFRESHES 40
#define NODE_BEAT_MS 2000
#define NODE_BEAT_TTL_MS 10000

typedef struct client {
	char hash[PB_CLIENT_HASH_LEN + 1];
	char name[PB_CLIENT_NAME_MAX + 1];
	long share;        /* pbctl keys share; 0: the default */
} client;

/* The table in use: sorted by hash, replaced whole by the thread. */
static struct {
	pthread_rwlock_t lock;
	client *all;
	size_t n;
	int loaded;
	_Atomic int64_t confirmed_ms; /* pb_now_ms() when Redis last confirmed it */
} T = { PTHREAD_RWLOCK_INITIALIZER, NULL, 0, 0, 0 };

static const pb_config *cfg;
static const pb_keys *keys;
static const atomic_int *stop;
static char beat_key[PB_KEY_MAX];
static pthread_t tid;
static int started;

static int by_hash(const void *a, const void *b)
{
	return strcmp(((const client *)a)->hash, ((const client *)b)->hash);
}

int pb_clients_lookup(const char *hash, char name[PB_CLIENT_NAME_MAX + 1],
		      long *share)
{
	client want = { "", "", 0 }, *c;
	int rc;

	pb_strlcpy(want.hash, hash, sizeof(want.hash));
	pthread_rwlock_rdlock(&T.lock);
	if (!T.loaded) {
		rc = PB_ERR_IO;
	} else if (pb_now_ms() - atomic_load(&T.confirmed_ms) >
		   CONFIRM_REFRESHES * cfg->client_keys_refresh_ms) {
		rc = PB_ERR_TIMEOUT;
	} else if ((c = bsearch(&want, T.all, T.n, sizeof(*c), by_hash)) == NULL) {
		rc = PB_ERR_NOTFOUND;
	} else {
		memcpy(name, c->name, sizeof(c->name));
		*share = c->share;
		rc = PB_OK;
	}
	pthread_rwlock_unlock(&T.lock);
	return rc;
}

/*
 * One field of HGETALL into c: the hash, and the name before the space of
 * "<name> <issued ms>". 0 if either is not what pbctl writes (skipped,
 * with a warning: a key nobody can use is better than a node that stops).
 */
static int parse_entry(const redisReply *f, const redisReply *v, client *c)
{
	size_t n;

	if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING ||
	    f->len != PB_CLIENT_HASH_LEN)
		return 0;
	n = strcspn(v->str, " ");
	if (!pb_client_name_valid(v->str, n))
		return 0;
	memcpy(c->hash, f->str, f->len + 1);
	memcpy(c->name, v->str, n);
	c->name[n] = '\0';
	return 1;
}

/*
 * Each client's share from <p>:client-shares (name -> postbacks) into the
 * table all[0..n): a value that is not a number in bounds is skipped with
 * a warning (the client keeps the default).
 */
static int read_shares(pb_redis *r, client *all, size_t n)
{
	redisReply *rep = pb_redis_cmd(r, "HGETALL %s", keys->client_shares);
	size_t i, j;
	long v;

	if (rep == NULL)
		return r->err;
	if (rep->type != REDIS_REPLY_ARRAY) {
		pb_warn("client shares: HGETALL %s: %s", keys->client_shares,
			rep->type == REDIS_REPLY_ERROR ? rep->str : "not a hash");
		freeReplyObject(rep);
		return PB_ERR_REPLY;
	}
	for (i = 0; i + 1 < rep->elements; i += 2) {
		const redisReply *f = rep->element[i], *s = rep->element[i + 1];

		if (f->type != REDIS_REPLY_STRING || s->type != REDIS_REPLY_STRING ||
		    pb_parse_long(s->str, 1, PB_CLIENT_SHARE_MAX, &v) != PB_OK) {
			pb_warn("client shares: %s holds a field that is not a client "
				"and a share; skipped", keys->client_shares);
			continue;
		}
		for (j = 0; j < n; j++)
			if (strcmp(all[j].name, f->str) == 0)
				all[j].share = v;
	}
	freeReplyObject(rep);
	return PB_OK;
}

/* Read <p>:clients and the shares into a new table and put it in place. */
static int reload(pb_redis *r)
{
	redisReply *rep = pb_redis_cmd(r, "HGETALL %s", keys->clients);
	client *all, *old;
	size_t i, n = 0;
	int rc;

	if (rep == NULL)
		return r->err;
	if (rep->type != REDIS_REPLY_ARRAY) {
		pb_warn("client keys: HGETALL %s: %s", keys->clients,
			rep->type == REDIS_REPLY_ERROR ? rep->str : "not a hash");
		freeReplyObject(rep);
		return PB_ERR_REPLY;
	}
	if ((all = calloc(rep->elements / 2 + 1, sizeof(*all))) == NULL) {
		freeReplyObject(rep);
		return PB_ERR_NOMEM;
	}
	for (i = 0; i + 1 < rep->elements; i += 2)
		if (parse_entry(rep->element[i], rep->element[i + 1], &all[n]))
			n++;
		else
			pb_warn("client keys: %s holds a field that is not a key "
				"hash and a client name; skipped", keys->clients);
	freeReplyObject(rep);
	if ((rc = read_shares(r, all, n)) != PB_OK) {
		free(all);
		return rc;
	}
	qsort(all, n, sizeof(*all), by_hash);
	pthread_rwlock_wrlock(&T.lock);
	old = T.all;
	T.all = all;
	T.n = n;
	if (!T.loaded)
		pb_info("client keys: %zu loaded from %s", n, keys->clients);
	T.loaded = 1;
	pthread_rwlock_unlock(&T.lock);
	free(old);
	return PB_OK;
}

/* <p>:clients-version as a string ("" when the key does not exist). */
static int version(pb_redis *r, char *out, size_t n)
{
	redisReply *rep = pb_redis_cmd(r, "GET %s", keys->clients_version);
	int rc = PB_OK;

	if (rep == NULL)
		return r->err;
	if (rep->type == REDIS_REPLY_STRING)
		pb_strlcpy(out, rep->str, n);
	else if (rep->type == REDIS_REPLY_NIL)
		out[0] = '\0';
	else
		rc = PB_ERR_REPLY;
	freeReplyObject(rep);
	return rc;
}

/* This node's heartbeat: who it is, for `pbctl status`; gone with it. */
static void beat(pb_redis *r)
{
	char info[256];
	redisReply *rep;
	size_t n;

	pthread_rwlock_rdlock(&T.lock);
	n = T.n;
	pthread_rwlock_unlock(&T.lock);
	snprintf(info, sizeof(info),
		 "{\"pid\":%d,\"version\":\"%s\",\"listen\":\"%s\",\"client_keys\":%zu,"
		 "\"at\":%lld}", (int)getpid(), PB_BUILD_VERSION, cfg->listen, n,
		 (long long)pb_wall_ms());
	rep = pb_redis_cmd(r, "SET %s %s PX %d", beat_key, info, NODE_BEAT_TTL_MS);
	if (rep && rep->type == REDIS_REPLY_ERROR)
		pb_warn("heartbeat %s: %s", beat_key, rep->str);
	if (rep)
		freeReplyObject(rep);
}

static void *clients_main(void *arg)
{
	pb_redis r;
	char seen[32] = "", now_v[32];
	unsigned changes = 0;
	int64_t loaded_at = 0, next_beat = 0;
	int have = 0;

	(void)arg;
	pb_redis_init(&r, cfg, "ingest-client-keys");
	r.stop = stop;
	while (!*stop) {
		int confirmed = 0;

		if (version(&r, now_v, sizeof(now_v)) == PB_OK) {
			confirmed = have && strcmp(now_v, seen) == 0 &&
				    r.master_changes == changes &&
				    pb_now_ms() - loaded_at < RELOAD_ANYWAY_MS;
			if (!confirmed) {
				changes = r.master_changes;
				if (reload(&r) == PB_OK) {
					memcpy(seen, now_v, sizeof(seen));
					loaded_at = pb_now_ms();
					have = confirmed = 1;
				}
			}
		}
		if (confirmed)
			atomic_store(&T.confirmed_ms, pb_now_ms());
		if (pb_now_ms() >= next_beat) {
			beat(&r);
			next_beat = pb_now_ms() + NODE_BEAT_MS;
		}
		pb_sleep_ms(cfg->client_keys_refresh_ms, stop);
	}
	pb_redis_close(&r);
	return NULL;
}

int pb_clients_start(const pb_config *c, const pb_keys *k, const char *node,
		     const atomic_int *stopping)
{
	cfg = c;
	keys = k;
	stop = stopping;
	if (pb_key_join(beat_key, sizeof(beat_key), k->ingest_stem, node) != PB_OK) {
		pb_error("node name '%s': its key is too long", node);
		return PB_ERR_LIMIT;
	}
	if (pthread_create(&tid, NULL, clients_main, NULL) != 0) {
		pb_error("cannot start the client keys thread");
		return PB_ERR_NOMEM;
	}
	started = 1;
	return PB_OK;
}

void pb_clients_stop(void)
{
	if (started)
		pthread_join(tid, NULL);
	started = 0;
	pthread_rwlock_wrlock(&T.lock);
	free(T.all);
	T.all = NULL;
	T.n = 0;
	T.loaded = 0;
	pthread_rwlock_unlock(&T.lock);
}
