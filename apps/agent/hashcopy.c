/*
 * hashcopy.c - a Redis hash's rows, held sorted and replaced whole
 * (hashcopy.h).
 */
#include "hashcopy.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pb.h"

static int by_key(const void *a, const void *b)
{
	return strcmp((const char *)a, (const char *)b);
}

/* New rows from the hash's HGETALL, in place of the old ones. */
static void replace(pb_hashcopy *t, const redisReply *rep, const char *key,
		    const char *version)
{
	char *rows, *old;
	size_t i, n = 0;

	if ((rows = calloc(rep->elements / 2 + 1, t->row_size)) == NULL) {
		pb_warn("%s: out of memory for %zu", t->what, rep->elements / 2);
		return;
	}
	for (i = 0; i + 1 < rep->elements; i += 2)
		if (t->parse(rep->element[i], rep->element[i + 1], rows + n * t->row_size))
			n++;
		else
			pb_warn("%s: a field of %s does not read; skipped", t->what, key);
	qsort(rows, n, t->row_size, by_key);
	pthread_rwlock_wrlock(&t->lock);
	old = t->rows;
	t->rows = rows;
	t->n = n;
	pb_strlcpy(t->version, version, sizeof(t->version));
	pthread_rwlock_unlock(&t->lock);
	pb_info("%s: %zu (version %s)", t->what, n, version);
	free(old);
}

int pb_hashcopy_refresh(pb_hashcopy *t, pb_redis *r, const char *version_key,
			const char *hash_key)
{
	char seen[32], version[32];
	redisReply *rep;
	int rc;

	pthread_rwlock_rdlock(&t->lock);
	pb_strlcpy(seen, t->version, sizeof(seen));
	pthread_rwlock_unlock(&t->lock);
	rc = pb_redis_versioned_hash(r, version_key, hash_key, seen, version, &rep);
	if (rc == PB_OK && rep != NULL) {
		replace(t, rep, hash_key, version);
		freeReplyObject(rep);
	}
	return rc;
}

const void *pb_hashcopy_find(const pb_hashcopy *t, const char *key)
{
	if (t->n == 0 || strlen(key) >= t->key_size)
		return NULL;
	return bsearch(key, t->rows, t->n, t->row_size, by_key);
}

void pb_hashcopy_rdlock(pb_hashcopy *t)
{
	pthread_rwlock_rdlock(&t->lock);
}

void pb_hashcopy_unlock(pb_hashcopy *t)
{
	pthread_rwlock_unlock(&t->lock);
}

void pb_hashcopy_free(pb_hashcopy *t)
{
	pthread_rwlock_wrlock(&t->lock);
	free(t->rows);
	t->rows = NULL;
	t->n = 0;
	pthread_rwlock_unlock(&t->lock);
}
