#include "redis.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "lua_functions.h"
#include "pb.h"
#include "stdmetrics.h"

/* Pause between two rounds of asking the sentinels. */
#define RESOLVE_PAUSE_MS 200

static struct timeval tv_ms(long ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	return tv;
}

static void set_err(pb_redis *r, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(pb_redis *r, int err, const char *fmt, ...)
{
	va_list ap;

	r->err = err;
	va_start(ap, fmt);
	vsnprintf(r->errstr, sizeof(r->errstr), fmt, ap);
	va_end(ap);
}

int pb_parse_hostports(const char *list, pb_hostport *out, int max)
{
	const char *p = list;
	int n = 0;

	while (*p) {
		const char *comma = strchr(p, ','), *colon;
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		char *end;
		long port;

		while (len > 0 && *p == ' ')
			p++, len--;
		if (len == 0)
			return -1;
		if (n == max)
			return -1;
		colon = memrchr(p, ':', len);
		if (colon == NULL || colon == p ||
		    (size_t)(colon - p) >= sizeof(out[n].host))
			return -1;
		memcpy(out[n].host, p, (size_t)(colon - p));
		out[n].host[colon - p] = '\0';
		port = strtol(colon + 1, &end, 10);
		if (end != p + len || port < 1 || port > 65535)
			return -1;
		out[n].port = (int)port;
		n++;
		p += len;
		if (*p == ',')
			p++;
	}
	return n;
}

int pb_redis_init(pb_redis *r, const pb_config *cfg, const char *client_name)
{
	return pb_redis_init_shard(r, cfg, client_name, 0);
}

int pb_redis_init_shard(pb_redis *r, const pb_config *cfg,
			const char *client_name, int shard)
{
	memset(r, 0, sizeof(*r));
	r->cfg = cfg;
	r->shard = shard;
	r->master_name = cfg->shards.name[shard];
	r->failover_wait_ms = cfg->failover_wait_ms;
	pb_strlcpy(r->client_name, client_name, sizeof(r->client_name));
	r->nsentinels = pb_parse_hostports(cfg->sentinels, r->sentinels,
					   PB_MAX_SENTINELS);
	if (r->nsentinels <= 0) {
		set_err(r, PB_ERR_FORMAT, "sentinels: cannot parse '%s'",
			cfg->sentinels);
		return PB_ERR_FORMAT;
	}
	return PB_OK;
}

void pb_redis_drop(pb_redis *r)
{
	if (r->c)
		redisFree(r->c);
	r->c = NULL;
}

void pb_redis_close(pb_redis *r)
{
	pb_redis_drop(r);
}

void pb_redis_set_timeout(pb_redis *r, long ms)
{
	if (r->c)
		redisSetTimeout(r->c, tv_ms(ms));
}

/* A new context with both timeouts set, or NULL with errstr filled. */
static redisContext *dial(pb_redis *r, const pb_hostport *hp)
{
	redisContext *c = redisConnectWithTimeout(hp->host, hp->port,
						  tv_ms(r->cfg->connect_timeout_ms));

	if (c == NULL) {
		set_err(r, PB_ERR_NOMEM, "%s:%d: out of memory", hp->host, hp->port);
		return NULL;
	}
	if (c->err) {
		set_err(r, PB_ERR_IO, "%s:%d: %s", hp->host, hp->port, c->errstr);
		redisFree(c);
		return NULL;
	}
	redisSetTimeout(c, tv_ms(r->cfg->command_timeout_ms));
	redisEnableKeepAlive(c);
	return c;
}

/* Run a command on c and insist on a non-error reply. */
static redisReply *must(pb_redis *r, redisContext *c, const pb_hostport *hp,
			const char *what, const char *fmt, ...)
{
	redisReply *reply;
	va_list ap;

	va_start(ap, fmt);
	reply = redisvCommand(c, fmt, ap);
	va_end(ap);
	if (reply == NULL) {
		set_err(r, PB_ERR_IO, "%s:%d: %s: %s", hp->host, hp->port, what,
			c->errstr);
		return NULL;
	}
	if (reply->type == REDIS_REPLY_ERROR) {
		set_err(r, PB_ERR_REPLY, "%s:%d: %s: %s", hp->host, hp->port, what,
			reply->str);
		freeReplyObject(reply);
		return NULL;
	}
	return reply;
}

static int auth(pb_redis *r, redisContext *c, const pb_hostport *hp,
		const char *user, const char *password)
{
	redisReply *reply;

	if (password[0] == '\0')
		return PB_OK;
	if (user && user[0])
		reply = must(r, c, hp, "AUTH", "AUTH %s %s", user, password);
	else
		reply = must(r, c, hp, "AUTH", "AUTH %s", password);
	if (reply == NULL)
		return r->err;
	freeReplyObject(reply);
	return PB_OK;
}

redisContext *pb_redis_dial_node(pb_redis *r, const pb_hostport *hp)
{
	redisContext *c = dial(r, hp);

	if (c != NULL &&
	    auth(r, c, hp, r->cfg->redis_user, r->cfg->redis_password) != PB_OK) {
		redisFree(c);
		return NULL;
	}
	return c;
}

redisReply *pb_sentinel_cmd(pb_redis *r, const pb_hostport *s, const char *fmt,
			    ...)
{
	redisContext *c = dial(r, s);
	redisReply *reply = NULL;
	va_list ap;

	if (c == NULL)
		return NULL;
	if (auth(r, c, s, r->cfg->sentinel_user, r->cfg->sentinel_password) == PB_OK) {
		va_start(ap, fmt);
		reply = redisvCommand(c, fmt, ap);
		va_end(ap);
		if (reply == NULL)
			set_err(r, PB_ERR_IO, "%s:%d: %s", s->host, s->port, c->errstr);
	}
	redisFree(c);
	return reply;
}

int pb_sentinel_get_master(pb_redis *r, const pb_hostport *s,
			   pb_hostport *master)
{
	redisReply *reply;
	int rc = PB_ERR_NOTFOUND;

	reply = pb_sentinel_cmd(r, s, "SENTINEL get-master-addr-by-name %s",
				r->master_name);
	if (reply && reply->type == REDIS_REPLY_ERROR) {
		set_err(r, PB_ERR_REPLY, "%s:%d: SENTINEL get-master-addr-by-name: %s",
			s->host, s->port, reply->str);
		rc = PB_ERR_REPLY;
	} else if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
	    reply->element[0]->type == REDIS_REPLY_STRING &&
	    reply->element[1]->type == REDIS_REPLY_STRING) {
		long port;

		pb_strlcpy(master->host, reply->element[0]->str,
			   sizeof(master->host));
		rc = pb_parse_long(reply->element[1]->str, 1, 65535, &port);
		master->port = rc == PB_OK ? (int)port : 0;
		if (rc != PB_OK)
			set_err(r, rc, "%s:%d: sentinel names port '%s'", s->host,
				s->port, reply->element[1]->str);
	} else if (reply) {
		set_err(r, PB_ERR_NOTFOUND, "%s:%d: sentinel knows no master '%s'",
			s->host, s->port, r->master_name);
	} else {
		rc = r->err;
	}
	if (reply)
		freeReplyObject(reply);
	return rc;
}

/* Connect to addr and keep it only if ROLE says master. */
static int connect_master(pb_redis *r, const pb_hostport *hp)
{
	redisContext *c = dial(r, hp);
	redisReply *reply;
	int is_master;

	if (c == NULL)
		return r->err;
	if (auth(r, c, hp, r->cfg->redis_user, r->cfg->redis_password) != PB_OK)
		goto fail;
	if ((reply = must(r, c, hp, "ROLE", "ROLE")) == NULL)
		goto fail;
	is_master = reply->type == REDIS_REPLY_ARRAY && reply->elements > 0 &&
		    reply->element[0]->type == REDIS_REPLY_STRING &&
		    strcmp(reply->element[0]->str, "master") == 0;
	freeReplyObject(reply);
	if (!is_master) {
		set_err(r, PB_ERR_REPLY, "%s:%d: ROLE is not master (failover under way?)",
			hp->host, hp->port);
		goto fail;
	}
	if (r->client_name[0]) {
		reply = must(r, c, hp, "CLIENT SETNAME", "CLIENT SETNAME %s",
			     r->client_name);
		if (reply == NULL)
			goto fail;
		freeReplyObject(reply);
	}
	if (r->master.port != 0 && (r->master.port != hp->port ||
				    strcmp(r->master.host, hp->host) != 0))
		r->master_changes++;
	pb_stdmetrics_connected(hp->host, hp->port);
	r->c = c;
	r->told_unloaded = 0;
	r->master = *hp;
	return PB_OK;
fail:
	redisFree(c);
	return r->err;
}

/* One pass over the sentinels. */
static int resolve_once(pb_redis *r)
{
	int i;

	for (i = 0; i < r->nsentinels; i++) {
		pb_hostport master;

		if (pb_sentinel_get_master(r, &r->sentinels[i], &master) != PB_OK)
			continue;
		if (i > 0) { /* the first that answers goes to the front */
			pb_hostport s = r->sentinels[i];
			memmove(&r->sentinels[1], &r->sentinels[0],
				(size_t)i * sizeof(s));
			r->sentinels[0] = s;
		}
		/* This sentinel answered: its master is the one to try. */
		return connect_master(r, &master);
	}
	return r->err ? r->err : PB_ERR_IO;
}

int pb_redis_connect(pb_redis *r)
{
	int64_t deadline = pb_now_ms() + r->failover_wait_ms;
	int rc;

	if (r->c)
		return PB_OK;
	for (;;) {
		if ((rc = resolve_once(r)) == PB_OK) {
			pb_debug("redis: connected to master %s:%d", r->master.host,
				 r->master.port);
			return PB_OK;
		}
		if (pb_now_ms() + RESOLVE_PAUSE_MS > deadline ||
		    (r->stop && *r->stop))
			return rc;
		pb_sleep_ms(RESOLVE_PAUSE_MS, r->stop);
	}
}

int pb_redis_reply_means_moved(const redisReply *reply)
{
	static const char *moved[] = { "READONLY", "UNBLOCKED", "LOADING",
				       "MASTERDOWN" };
	size_t i;

	if (reply == NULL || reply->type != REDIS_REPLY_ERROR)
		return 0;
	for (i = 0; i < PB_ARRAY_LEN(moved); i++)
		if (strncmp(reply->str, moved[i], strlen(moved[i])) == 0)
			return 1;
	return 0;
}

/* What a master without this version's library answers FCALL. */
#define FN_NOT_FOUND "ERR Function not found"

/* Turn what hiredis gave back into this module's contract. */
static redisReply *check(pb_redis *r, redisReply *reply)
{
	if (reply == NULL) {
		set_err(r, PB_ERR_IO, "redis %s:%d: %s", r->master.host,
			r->master.port, r->c ? r->c->errstr : "not connected");
		pb_redis_drop(r);
		return NULL;
	}
	if (reply->type == REDIS_REPLY_ERROR &&
	    strncmp(reply->str, FN_NOT_FOUND, strlen(FN_NOT_FOUND)) == 0 &&
	    !r->told_unloaded) {
		r->told_unloaded = 1;
		pb_log(PB_LOG_ERROR, "redis %s:%d: the functions of this version "
		       "(library %s) are not loaded; an operator loads them "
		       "with: pbctl functions load", r->master.host,
		       r->master.port, PB_FN_LIBRARY_NAME);
	}
	if (pb_redis_reply_means_moved(reply)) {
		set_err(r, PB_ERR_IO, "redis %s:%d: %s", r->master.host,
			r->master.port, reply->str);
		freeReplyObject(reply);
		pb_redis_drop(r);
		return NULL;
	}
	return reply;
}

redisReply *pb_redis_argv(pb_redis *r, int argc, const char **argv,
			  const size_t *lens)
{
	if (pb_redis_connect(r) != PB_OK)
		return NULL;
	return check(r, redisCommandArgv(r->c, argc, argv, lens));
}

redisReply *pb_redis_vcmd(pb_redis *r, const char *fmt, va_list ap)
{
	if (pb_redis_connect(r) != PB_OK)
		return NULL;
	return check(r, redisvCommand(r->c, fmt, ap));
}

redisReply *pb_redis_cmd(pb_redis *r, const char *fmt, ...)
{
	redisReply *reply;
	va_list ap;

	va_start(ap, fmt);
	reply = pb_redis_vcmd(r, fmt, ap);
	va_end(ap);
	return reply;
}

int pb_redis_append_argv(pb_redis *r, int argc, const char **argv,
			 const size_t *lens)
{
	if (pb_redis_connect(r) != PB_OK)
		return r->err;
	if (redisAppendCommandArgv(r->c, argc, argv, lens) != REDIS_OK) {
		set_err(r, PB_ERR_NOMEM, "redis: cannot queue command");
		return r->err;
	}
	return PB_OK;
}

int pb_redis_append(pb_redis *r, const char *fmt, ...)
{
	va_list ap;
	int rc;

	if (pb_redis_connect(r) != PB_OK)
		return r->err;
	va_start(ap, fmt);
	rc = redisvAppendCommand(r->c, fmt, ap);
	va_end(ap);
	if (rc != REDIS_OK) {
		set_err(r, PB_ERR_NOMEM, "redis: cannot queue command");
		return r->err;
	}
	return PB_OK;
}

int pb_redis_get_reply(pb_redis *r, redisReply **reply)
{
	void *p = NULL;

	*reply = NULL;
	if (r->c == NULL) {
		set_err(r, PB_ERR_IO, "redis: not connected");
		return r->err;
	}
	if (redisGetReply(r->c, &p) != REDIS_OK)
		p = NULL;
	if ((*reply = check(r, p)) == NULL)
		return r->err;
	return PB_OK;
}

int pb_redis_versioned_hash(pb_redis *r, const char *version_key, const char *hash_key,
			    const char *seen, char version[32], redisReply **reply)
{
	redisReply *rep = pb_redis_cmd(r, "GET %s", version_key);

	*reply = NULL;
	if (rep == NULL)
		return r->err;
	pb_strlcpy(version, rep->type == REDIS_REPLY_STRING ? rep->str : "0", 32);
	freeReplyObject(rep);
	if (strcmp(version, seen) == 0)
		return PB_OK;
	rep = pb_redis_cmd(r, "HGETALL %s", hash_key);
	if (rep == NULL)
		return r->err;
	if (rep->type != REDIS_REPLY_ARRAY) {
		snprintf(r->errstr, sizeof(r->errstr), "HGETALL %s: %s", hash_key,
			 rep->type == REDIS_REPLY_ERROR ? rep->str : "not a hash");
		freeReplyObject(rep);
		return PB_ERR_REPLY;
	}
	*reply = rep;
	return PB_OK;
}
