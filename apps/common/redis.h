/*
 * redis.h - a connection to the Redis master, found through Sentinel.
 *
 * hiredis 0.14 has no Sentinel support, so this module follows the Sentinel
 * client rules itself:
 *   1. ask the configured sentinels in order, with a short connect timeout,
 *      and move the first that answers to the front;
 *   2. SENTINEL get-master-addr-by-name; a null reply means "ask the next";
 *   3. connect, AUTH, and confirm with ROLE that it is a master; if not,
 *      wait a little and start over (until failover_wait_ms has passed);
 *   4. never cache the address across a failure: after an I/O error, EOF,
 *      a timeout, -READONLY, -UNBLOCKED, -LOADING or -MASTERDOWN the
 *      connection is dropped and the next command resolves the master again.
 *
 * A pb_redis belongs to one thread. Errors land in err/errstr.
 */
#ifndef PB_REDIS_H
#define PB_REDIS_H

#include <stdarg.h>
#include <stdatomic.h>

#include <hiredis/hiredis.h>

#include "config.h"

#define PB_MAX_SENTINELS 16

typedef struct pb_hostport {
	char host[256];
	int port;
} pb_hostport;

typedef struct pb_redis {
	const pb_config *cfg;
	pb_hostport sentinels[PB_MAX_SENTINELS];
	int nsentinels;
	redisContext *c;      /* NULL while not connected */
	pb_hostport master;   /* the master c is connected to */
	unsigned master_changes; /* times a connection found another master */
	char client_name[64]; /* CLIENT SETNAME, for CLIENT LIST */
	const atomic_int *stop; /* when set, waits for a master give up */
	int err;              /* PB_ERR_* of the last failure */
	char errstr[256];
} pb_redis;

/* Parse "host:port,host:port" into out; returns how many, or -1. */
int pb_parse_hostports(const char *list, pb_hostport *out, int max);

int pb_redis_init(pb_redis *r, const pb_config *cfg, const char *client_name);
void pb_redis_close(pb_redis *r);
/* Make sure c is connected to a confirmed master. */
int pb_redis_connect(pb_redis *r);
/* Forget the connection; the next command resolves the master again. */
void pb_redis_drop(pb_redis *r);
/* Reply timeout for the next commands (e.g. longer around BLMOVE). */
void pb_redis_set_timeout(pb_redis *r, long ms);

/*
 * Run one command, connecting first if needed. Returns the reply (the
 * caller frees it; error replies included) or NULL when the connection
 * failed or the server is no longer the master; the connection is then
 * dropped. No command is sent twice by this layer: whether a failed
 * command may be repeated is the caller's call.
 */
redisReply *pb_redis_argv(pb_redis *r, int argc, const char **argv,
			  const size_t *lens);
redisReply *pb_redis_cmd(pb_redis *r, const char *fmt, ...);
redisReply *pb_redis_vcmd(pb_redis *r, const char *fmt, va_list ap);

/* Pipelining: queue commands, then read one reply per command. */
int pb_redis_append_argv(pb_redis *r, int argc, const char **argv,
			 const size_t *lens);
int pb_redis_append(pb_redis *r, const char *fmt, ...);
/* Returns PB_OK and a reply (possibly an error reply), or fails as above. */
int pb_redis_get_reply(pb_redis *r, redisReply **reply);

/*
 * A Lua script called by its SHA1: the body crosses the network once per
 * master (SCRIPT LOAD), not with every call. The SHA1 is cached in the
 * struct unlocked: one pb_script per thread.
 */
typedef struct pb_script {
	const char *src;
	char sha[41]; /* "" until loaded */
} pb_script;

/*
 * EVALSHA s with argv[0..argc): argv[0] and argv[1] are this function's
 * (EVALSHA and the SHA1), the caller's start at argv[2] (numkeys, keys,
 * args). It loads the script first when this master does not know it
 * (NOSCRIPT: a new master, a restart). Returns like pb_redis_argv.
 */
int pb_redis_script_load(pb_redis *r, pb_script *s);
redisReply *pb_redis_script(pb_redis *r, pb_script *s, int argc,
			    const char **argv, size_t *lens);
/*
 * The same, appended to a pipeline: the caller loads s before the pipeline
 * starts (its reply would come after the pipeline's). A NOSCRIPT reply
 * cannot be repeated there: the caller clears s->sha, loads, sends again.
 */
int pb_redis_append_script(pb_redis *r, pb_script *s, int argc,
			   const char **argv, size_t *lens);

/* 1 if an error reply means the server is not (or no longer) the master. */
int pb_redis_reply_means_moved(const redisReply *reply);

/* Ask one sentinel for the master's address (for status tools). */
int pb_sentinel_get_master(pb_redis *r, const pb_hostport *sentinel,
			   pb_hostport *master);
/* One command to one sentinel: its reply (error replies included; the
 * caller frees it), or NULL with errstr set. */
redisReply *pb_sentinel_cmd(pb_redis *r, const pb_hostport *sentinel,
			    const char *fmt, ...);
/* A connection to one Redis node, authenticated as the configured user,
 * whatever its role (operator tools that act on a node); NULL on failure. */
redisContext *pb_redis_dial_node(pb_redis *r, const pb_hostport *node);

#endif
