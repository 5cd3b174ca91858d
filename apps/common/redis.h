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
 * A pb_redis belongs to one thread and one shard (shard.h): the master it
 * finds is that shard's. Errors land in err/errstr.
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
	int shard;            /* cfg->shards' index */
	const char *master_name; /* cfg->shards.name[shard] */
	/* How long pb_redis_connect keeps resolving when no master answers:
	 * failover_wait_ms, or less for a caller that has another shard to
	 * go to (ingest). */
	long failover_wait_ms;
	pb_hostport sentinels[PB_MAX_SENTINELS];
	int nsentinels;
	redisContext *c;      /* NULL while not connected */
	pb_hostport master;   /* the master c is connected to */
	unsigned master_changes; /* times a connection found another master */
	char client_name[64]; /* CLIENT SETNAME, for CLIENT LIST */
	const atomic_int *stop; /* when set, waits for a master give up */
	int told_unloaded;    /* "Function not found" logged on this connection */
	int err;              /* PB_ERR_* of the last failure */
	char errstr[256];
} pb_redis;

/* Parse "host:port,host:port" into out; returns how many, or -1. */
int pb_parse_hostports(const char *list, pb_hostport *out, int max);

/* A connection to the first shard's master (pb_redis_init), or shard's. */
int pb_redis_init(pb_redis *r, const pb_config *cfg, const char *client_name);
int pb_redis_init_shard(pb_redis *r, const pb_config *cfg,
			const char *client_name, int shard);
void pb_redis_close(pb_redis *r);
/* Make sure c is connected to a confirmed master. */
int pb_redis_connect(pb_redis *r);
/* Forget the connection; the next command resolves the master again. */
void pb_redis_drop(pb_redis *r);
/* Reply timeout for the next commands (e.g. longer around BLMOVE). */
void pb_redis_set_timeout(pb_redis *r, long ms);

/*
 * Run one command, connecting first if needed; lens NULL when every
 * argv[i] is a C string (hiredis takes strlen). Returns the reply (the
 * caller frees it; error replies included) or NULL when the connection
 * failed or the server is no longer the master; the connection is then
 * dropped. No command is sent twice by this layer: whether a failed
 * command may be repeated is the caller's call.
 */
redisReply *pb_redis_argv(pb_redis *r, int argc, const char **argv,
			  const size_t *lens);
redisReply *pb_redis_cmd(pb_redis *r, const char *fmt, ...);
redisReply *pb_redis_vcmd(pb_redis *r, const char *fmt, va_list ap);

/*
 * A table kept in a Redis hash with a counter beside it that every change
 * raises (the signing secrets, the destinations' policies: keys.h), read
 * again only when the counter moved: *reply is the hash's HGETALL (an
 * array) when the counter differs from seen, and version its value ("0"
 * when there is none); NULL when it is the same. PB_OK; r->err without a
 * connection; PB_ERR_REPLY (r->errstr says why) when the hash did not read.
 */
int pb_redis_versioned_hash(pb_redis *r, const char *version_key, const char *hash_key,
			    const char *seen, char version[32], redisReply **reply);

/* Pipelining: queue commands, then read one reply per command. */
int pb_redis_append_argv(pb_redis *r, int argc, const char **argv,
			 const size_t *lens);
int pb_redis_append(pb_redis *r, const char *fmt, ...);
/* Returns PB_OK and a reply (possibly an error reply), or fails as above. */
int pb_redis_get_reply(pb_redis *r, redisReply **reply);

/*
 * The queue's scripts are Redis Functions (apps/lua, one library that an
 * operator loads: pbctl functions load). A caller lays out FCALL's argv
 * with pb_fn_<name>_argv() from lua_functions.h, which names each
 * argument, and sends it with pb_redis_argv() or a pipeline's
 * pb_redis_append_argv(). A master without this version's library
 * answers "ERR Function not found", an answer like any error reply; the
 * first such answer on a connection is also logged, saying what loads it.
 */

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
