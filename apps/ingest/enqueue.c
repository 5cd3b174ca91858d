#include "enqueue.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "log.h"
#include "pb.h"

/*
 * KEYS[1] the waiting count, KEYS[2] the version 1 queue, KEYS[3] the
 * request's hash, KEYS[4] ready, KEYS[5] wake, KEYS[6] the idempotency key
 * (optional).
 * ARGV[1] MAX_QUEUE_SIZE, ARGV[2] the request id, ARGV[3] the idempotency
 * value, ARGV[4] its window (s), ARGV[5] the queues' stem, ARGV[6] the
 * request's header, ARGV[7] n, ARGV[8 .. 7+n] the data objects, then pairs
 * of destination id and how many objects in a row go there.
 * Returns {1, size} enqueued (or already: a second try after a lost reply
 * finds its request's hash and writes nothing twice), {0, size} full,
 * {2, size, first} replay.
 * unpack() is bounded by Lua's C stack, so long commands go in slices.
 */
static const char enqueue_lua[] =
	"local n = tonumber(ARGV[7])\n"
	"local size = tonumber(redis.call('GET', KEYS[1]) or '0') +\n"
	"             redis.call('LLEN', KEYS[2])\n"
	"if KEYS[6] then\n"
	"  local first = redis.call('GET', KEYS[6])\n"
	"  if first then return {2, size, first} end\n"
	"end\n"
	"if redis.call('EXISTS', KEYS[3]) == 1 then return {1, size} end\n"
	"if size + n > tonumber(ARGV[1]) then return {0, size} end\n"
	"local f = {'h', ARGV[6]}\n"
	"for i = 0, n - 1 do\n"
	"  f[#f + 1] = tostring(i)\n"
	"  f[#f + 1] = ARGV[8 + i]\n"
	"  if #f >= 1000 or i == n - 1 then\n"
	"    redis.call('HSET', KEYS[3], unpack(f))\n"
	"    f = {}\n"
	"  end\n"
	"end\n"
	"local i = 0\n"
	"for a = 8 + n, #ARGV, 2 do\n"
	"  local d, q, refs = ARGV[a], ARGV[5] .. ARGV[a], {}\n"
	"  for _ = 1, tonumber(ARGV[a + 1]) do\n"
	"    refs[#refs + 1] = d .. ' ' .. ARGV[2] .. ' ' .. i .. ' 0'\n"
	"    i = i + 1\n"
	"    if #refs == 1000 then redis.call('RPUSH', q, unpack(refs)) refs = {} end\n"
	"  end\n"
	"  if #refs > 0 then redis.call('RPUSH', q, unpack(refs)) end\n"
	"  redis.call('ZADD', KEYS[4], 'NX', 0, d)\n"
	"end\n"
	"redis.call('INCRBY', KEYS[1], n)\n"
	"redis.call('LPUSH', KEYS[5], 1)\n"
	"redis.call('LTRIM', KEYS[5], 0, 0)\n"
	"if KEYS[6] then\n"
	"  redis.call('SET', KEYS[6], ARGV[3] .. ' ' .. (size + n), 'EX', ARGV[4])\n"
	"end\n"
	"return {1, size + n}\n";

/* Per thread, so no locking; reloaded when a new master answers NOSCRIPT. */
static _Thread_local pb_script enqueue_script = { enqueue_lua, "" };

/* Per-thread argument vectors, grown as needed, never shrunk. */
typedef struct argvec {
	const char **argv;
	size_t *lens;
	size_t cap;
} argvec;

static _Thread_local argvec tl_args;

static int args_reserve(argvec *a, size_t n)
{
	const char **argv;
	size_t *lens;

	if (n <= a->cap)
		return PB_OK;
	argv = realloc(a->argv, n * sizeof(*argv));
	if (argv == NULL)
		return PB_ERR_NOMEM;
	a->argv = argv;
	lens = realloc(a->lens, n * sizeof(*lens));
	if (lens == NULL)
		return PB_ERR_NOMEM;
	a->lens = lens;
	a->cap = n;
	return PB_OK;
}

static void arg(argvec *a, size_t i, const char *s, size_t n)
{
	a->argv[i] = s;
	a->lens[i] = n;
}

static long long int_at(const redisReply *r, size_t i)
{
	if (r->type != REDIS_REPLY_ARRAY || r->elements <= i ||
	    r->element[i]->type != REDIS_REPLY_INTEGER)
		return -1;
	return r->element[i]->integer;
}

/* The first answer an Idempotency-Key got, as the script stored it:
 * "<request id> <count> <queue size then>". */
static void parse_first(const char *s, pb_enqueue_res *res)
{
	const char *sp = strchr(s, ' '), *end;
	char id[sizeof(res->first_request_id)], count[24];
	long n;

	if (sp == NULL || (size_t)(sp - s) >= sizeof(id))
		return;
	memcpy(id, s, (size_t)(sp - s));
	id[sp - s] = '\0';
	end = sp + 1 + strcspn(sp + 1, " ");
	if ((size_t)(end - (sp + 1)) >= sizeof(count))
		return;
	memcpy(count, sp + 1, (size_t)(end - (sp + 1)));
	count[end - (sp + 1)] = '\0';
	if (pb_parse_long(count, 0, LONG_MAX, &n) != PB_OK)
		return;
	pb_strlcpy(res->first_request_id, id, sizeof(res->first_request_id));
	res->first_count = n;
}

/* Read the three pipelined replies: PING, the script, WAIT. */
static int read_replies(pb_redis *r, pb_enqueue_res *res, int *noscript)
{
	redisReply *ping = NULL, *script = NULL, *wait = NULL;
	int rc;

	if ((rc = pb_redis_get_reply(r, &ping)) != PB_OK)
		goto out;
	res->pinged = ping->type == REDIS_REPLY_STATUS &&
		      strcmp(ping->str, "PONG") == 0;
	if ((rc = pb_redis_get_reply(r, &script)) != PB_OK)
		goto out;
	if ((rc = pb_redis_get_reply(r, &wait)) != PB_OK)
		goto out;
	if (script->type == REDIS_REPLY_ERROR) {
		*noscript = strncmp(script->str, "NOSCRIPT", 8) == 0;
		snprintf(r->errstr, sizeof(r->errstr), "redis %s:%d: %s",
			 r->master.host, r->master.port, script->str);
		rc = r->err = PB_ERR_REPLY;
		goto out;
	}
	res->queue_size = int_at(script, 1);
	switch (int_at(script, 0)) {
	case 1: res->status = PB_ENQ_OK; break;
	case 0: res->status = PB_ENQ_FULL; break;
	case 2:
		res->status = PB_ENQ_REPLAY;
		if (script->elements > 2 &&
		    script->element[2]->type == REDIS_REPLY_STRING)
			parse_first(script->element[2]->str, res);
		break;
	default:
		snprintf(r->errstr, sizeof(r->errstr), "enqueue script: bad reply");
		rc = r->err = PB_ERR_REPLY;
		goto out;
	}
	res->replicas = wait->type == REDIS_REPLY_INTEGER ? wait->integer : -1;
out:
	if (ping)
		freeReplyObject(ping);
	if (script)
		freeReplyObject(script);
	if (wait)
		freeReplyObject(wait);
	return rc;
}

static int send_pipeline(pb_redis *r, argvec *a, size_t argc)
{
	int rc;

	if (enqueue_script.sha[0] == '\0' &&
	    (rc = pb_redis_script_load(r, &enqueue_script)) != PB_OK)
		return rc;
	arg(a, 0, "EVALSHA", 7);
	arg(a, 1, enqueue_script.sha, 40);
	if ((rc = pb_redis_append(r, "PING")) != PB_OK)
		return rc;
	if ((rc = pb_redis_append_argv(r, (int)argc, a->argv, a->lens)) != PB_OK)
		return rc;
	/* WAIT 0 0 would block forever: with no replicas asked, ask nothing. */
	if (r->cfg->wait_replicas > 0)
		return pb_redis_append(r, "WAIT %ld %ld", r->cfg->wait_replicas,
				       r->cfg->wait_timeout_ms);
	return pb_redis_append(r, "ECHO 0");
}

int pb_enqueue(pb_redis *r, const pb_enqueue_req *req, pb_enqueue_res *res)
{
	char idem[PB_KEY_MAX], hash[PB_KEY_MAX], window[24], idem_val[96],
	     maxq[24], count[24];
	const pb_keys *k = req->keys;
	char (*run_counts)[24];
	size_t i, argc = 0;
	argvec *a = &tl_args;
	int rc, tries, reloaded = 0;

	memset(res, 0, sizeof(*res));
	/* Until the script has answered, nothing is queued: a return before
	 * that (out of memory) must not read as PB_ENQ_OK, which is 0. */
	res->status = PB_ENQ_REDIS_DOWN;
	res->queue_size = -1;
	run_counts = calloc(req->nruns ? req->nruns : 1, sizeof(*run_counts));
	if (run_counts == NULL ||
	    args_reserve(a, req->count + 2 * req->nruns + 16) != PB_OK) {
		free(run_counts);
		snprintf(r->errstr, sizeof(r->errstr), "out of memory for %zu postbacks",
			 req->count);
		return r->err = PB_ERR_NOMEM;
	}
	snprintf(maxq, sizeof(maxq), "%ld", r->cfg->max_queue_size);
	snprintf(window, sizeof(window), "%ld", r->cfg->idempotency_window_s);
	snprintf(idem_val, sizeof(idem_val), "%s %zu", req->request_id, req->count);
	snprintf(count, sizeof(count), "%zu", req->count);
	if (pb_key_join(hash, sizeof(hash), k->request_stem, req->request_id) != PB_OK ||
	    (req->idem_key && pb_key_join(idem, sizeof(idem), k->idem_stem,
					  req->idem_key) != PB_OK)) {
		free(run_counts);
		snprintf(r->errstr, sizeof(r->errstr), "a key is too long");
		return r->err = PB_ERR_LIMIT;
	}
	argc = 2; /* EVALSHA and the SHA1 go in send_pipeline */
	arg(a, argc++, req->idem_key ? "6" : "5", 1);
	arg(a, argc++, k->waiting, strlen(k->waiting));
	arg(a, argc++, k->queue, strlen(k->queue));
	arg(a, argc++, hash, strlen(hash));
	arg(a, argc++, k->ready, strlen(k->ready));
	arg(a, argc++, k->wake, strlen(k->wake));
	if (req->idem_key)
		arg(a, argc++, idem, strlen(idem));
	arg(a, argc++, maxq, strlen(maxq));
	arg(a, argc++, req->request_id, strlen(req->request_id));
	arg(a, argc++, idem_val, strlen(idem_val));
	arg(a, argc++, window, strlen(window));
	arg(a, argc++, k->queue_stem, strlen(k->queue_stem));
	arg(a, argc++, req->header, req->header_len);
	arg(a, argc++, count, strlen(count));
	for (i = 0; i < req->count; i++)
		arg(a, argc++, req->data[i], req->data_lens[i]);
	for (i = 0; i < req->nruns; i++) {
		snprintf(run_counts[i], sizeof(run_counts[i]), "%zu", req->runs[i].count);
		arg(a, argc++, req->runs[i].id, strlen(req->runs[i].id));
		arg(a, argc++, run_counts[i], strlen(run_counts[i]));
	}

	/*
	 * Two tries: the first may meet a connection that went stale in a
	 * failover (EOF, READONLY) and the second then finds the new master.
	 * A repeat sends the same request id, and the script writes nothing
	 * for a request whose hash exists.
	 */
	for (tries = 0;;) {
		int noscript = 0;

		rc = send_pipeline(r, a, argc);
		if (rc == PB_OK)
			rc = read_replies(r, res, &noscript);
		if (rc == PB_OK)
			break;
		if (noscript && !reloaded) { /* a new master: load it there */
			enqueue_script.sha[0] = '\0';
			reloaded = 1;
			continue;
		}
		if (rc == PB_ERR_REPLY) /* e.g. NOREPLICAS, OOM: an answer, final */
			break;
		pb_warn("enqueue of request %s (%zu postbacks), try %d: %s",
			req->request_id, req->count, tries + 1, r->errstr);
		if (++tries == 2)
			break;
	}
	free(run_counts);
	if (rc != PB_OK) {
		/* min-replicas-to-write: nothing was written, and it says why. */
		res->status = strstr(r->errstr, "NOREPLICAS") ? PB_ENQ_NO_REPLICAS
							     : PB_ENQ_REDIS_DOWN;
		return rc;
	}
	if ((res->status == PB_ENQ_OK || res->status == PB_ENQ_REPLAY) &&
	    r->cfg->wait_replicas > 0 && res->replicas < r->cfg->wait_replicas)
		res->status = PB_ENQ_NOT_DURABLE;
	return PB_OK;
}
