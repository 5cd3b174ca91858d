/*
 * keys.h - the Redis key space. Every key name is built here and nowhere
 * else: the C callers use these names, and the Lua scripts get theirs as
 * KEYS, or as a stem (below) to which they add an agent id.
 *
 *   <p>:queue               list; jobs waiting (job.h), ingest LPUSHes,
 *                           agents take from the right
 *   <p>:processing:<agent>  list; the jobs one agent holds
 *   <p>:scheduled           zset; jobs waiting for a retry, by due time (ms)
 *   <p>:dead                list; dead letters (JSON), newest first
 *   <p>:agent:<agent>       string; an agent's heartbeat, with a TTL
 *   <p>:agents              set; ids of the agents that may hold jobs
 *   <p>:idem:<key>          string; the first answer to an Idempotency-Key
 *
 * <p> is the key_prefix setting.
 */
#ifndef PB_KEYS_H
#define PB_KEYS_H

#include <stddef.h>

#define PB_KEY_MAX 256

typedef struct pb_keys {
	char queue[PB_KEY_MAX];
	char scheduled[PB_KEY_MAX];
	char dead[PB_KEY_MAX];
	char agents[PB_KEY_MAX];
	char processing_stem[PB_KEY_MAX]; /* "<p>:processing:", an agent id follows */
	char heartbeat_stem[PB_KEY_MAX];  /* "<p>:agent:", an agent id follows */
	char idem_stem[PB_KEY_MAX];       /* "<p>:idem:", a client's key follows */
} pb_keys;

/* PB_OK, or PB_ERR_LIMIT when the prefix makes a name too long. */
int pb_keys_init(pb_keys *k, const char *prefix);
/* stem + part into out[0..n): PB_OK, or PB_ERR_LIMIT when it does not fit. */
int pb_key_join(char *out, size_t n, const char *stem, const char *part);

#endif
