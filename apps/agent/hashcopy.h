/*
 * hashcopy.h - an agent's copy of a table that lives in a Redis hash with
 * a version counter beside it (the signing secrets, the destinations'
 * policies: keys.h). Read again whole when the counter moves; kept sorted
 * by the hash's field, each row made by the owner's parse(); replaced
 * under a lock that readers hold while they use a row.
 */
#ifndef PB_HASHCOPY_H
#define PB_HASHCOPY_H

#include <pthread.h>
#include <stddef.h>

#include "redis.h"

typedef struct pb_hashcopy {
	const char *what;   /* for the logs: "signing secrets" */
	size_t row_size;    /* each row starts with its key, a C string */
	size_t key_size;
	/* One field and value into row; 1 if it is one, 0 to skip it (said). */
	int (*parse)(const redisReply *f, const redisReply *v, void *row);
	pthread_rwlock_t lock;
	void *rows;         /* sorted by key */
	size_t n;
	char version[32];   /* of the counter when read; "" never */
} pb_hashcopy;

#define PB_HASHCOPY_INIT(what_, type_, key_, parse_) \
	{ .what = (what_), .row_size = sizeof(type_), .key_size = sizeof(((type_ *)0)->key_), \
	  .parse = (parse_), .lock = PTHREAD_RWLOCK_INITIALIZER }

/* Read the hash again if version_key moved. PB_OK or the Redis error; the
 * rows held stay as they were on an error. */
int pb_hashcopy_refresh(pb_hashcopy *t, pb_redis *r, const char *version_key,
			const char *hash_key);

/* The row whose key is key, or NULL; call between rdlock and unlock. */
const void *pb_hashcopy_find(const pb_hashcopy *t, const char *key);
void pb_hashcopy_rdlock(pb_hashcopy *t);
void pb_hashcopy_unlock(pb_hashcopy *t);

/* Free the rows (at exit). */
void pb_hashcopy_free(pb_hashcopy *t);

#endif
