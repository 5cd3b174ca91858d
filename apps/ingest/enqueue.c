#include "enqueue.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "job.h"
#include "log.h"
#include "pb.h"

/*
 * KEYS[1] the waiting count, KEYS[2] the version 1 queue, KEYS[3] the
 * request's hash, KEYS[4] its data, KEYS[5] ready, KEYS[6] wake, KEYS[7]
 * the idempotency key (optional).
 * ARGV[1] MAX_QUEUE_SIZE, ARGV[2] the request's header, ARGV[3] n, ARGV[4]
 * its data, ARGV[5] the idempotency value, ARGV[6] its window (s), ARGV[7]
 * the queues' stem, then for each destination in turn: its id, c, and its
 * c references (job.h; built by the caller, so that the script only places
 * bytes: a Redis command per postback, or a Lua string built per postback,
 * each cost more than the rest of the script).
 * Returns {1, size} enqueued (or already: a second try after a lost reply
 * finds its request's hash and writes nothing twice), {0, size} full,
 * {2, size, first} replay.
 * unpack() is bounded by Lua's C stack, so long commands go in slices.
 */
static const char enqueue_lua[] =
	"local n = tonumber(ARGV[3])\n"
	"local size = tonumber(redis.call('GET', KEYS[1]) or '0') +\n"
	"             redis.call('LLEN', KEYS[2])\n"
	"if KEYS[7] then\n"
	"  local first = redis.call('GET', KEYS[7])\n"
	"  if first then return {2, size, first} end\n"
	"end\n"
	"if redis.call('EXISTS', KEYS[3]) == 1 then return {1, size} end\n"
	"if size + n > tonumber(ARGV[1]) then return {0, size} end\n"
	"redis.call('HSET', KEYS[3], 'h', ARGV[2], 'n', n)\n"
	"redis.call('SET', KEYS[4], ARGV[4])\n"
	"local a = 8\n"
	"while a <= #ARGV do\n"
	"  local d, last = ARGV[a], a + 1 + tonumber(ARGV[a + 1])\n"
	"  for b = a + 2, last, 1000 do\n"
	"    redis.call('RPUSH', ARGV[7] .. d, unpack(ARGV, b, math.min(b + 999, last)))\n"
	"  end\n"
	"  redis.call('ZADD', KEYS[5], 'NX', 0, d)\n"
	"  a = last + 1\n"
	"end\n"
	"redis.call('INCRBY', KEYS[1], n)\n"
	/* One token is enough to wake an idle agent; under load agents do
	 * not block and the token stays: a read instead of two writes. */
	"if redis.call('LLEN', KEYS[6]) == 0 then redis.call('LPUSH', KEYS[6], 1) end\n"
	"if KEYS[7] then\n"
	"  redis.call('SET', KEYS[7], ARGV[5] .. ' ' .. (size + n), 'EX', ARGV[6])\n"
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

/* Each postback's reference (job.h), NUL-terminated, back to back in
 * refs; offs[i] where reference i starts. */
static int build_refs(const pb_enqueue_req *req, pb_buf *refs, size_t *offs)
{
	pb_ref ref = { .attempts = 0 };
	size_t i, j, n = 0;

	pb_strlcpy(ref.rid, req->request_id, sizeof(ref.rid));
	for (i = 0; i < req->nruns; i++)
		for (j = 0; j < req->runs[i].count; j++, n++) {
			memcpy(ref.dest, req->runs[i].id, sizeof(ref.dest));
			snprintf(ref.index, sizeof(ref.index), "%zu", n);
			ref.offset = (unsigned long)req->offs[n];
			ref.length = (unsigned long)req->lens[n];
			offs[n] = refs->len;
			pb_ref_encode(refs, &ref);
			pb_buf_putc(refs, '\0');
		}
	offs[n] = refs->len;
	return pb_buf_err(refs);
}

int pb_enqueue(pb_redis *r, const pb_enqueue_req *req, pb_enqueue_res *res)
{
	char idem[PB_KEY_MAX], hash[PB_KEY_MAX], data[PB_KEY_MAX], window[24],
	     idem_val[96], maxq[24], count[24];
	const pb_keys *k = req->keys;
	char (*run_counts)[24] = calloc(req->nruns ? req->nruns : 1, sizeof(*run_counts));
	size_t *ref_offs = calloc(req->count + 1, sizeof(*ref_offs));
	size_t i, j, n, argc = 0;
	argvec *a = &tl_args;
	pb_buf refs;
	int rc, tries, reloaded = 0;

	memset(res, 0, sizeof(*res));
	/* Until the script has answered, nothing is queued: a return before
	 * that (out of memory) must not read as PB_ENQ_OK, which is 0. */
	res->status = PB_ENQ_REDIS_DOWN;
	res->queue_size = -1;
	pb_buf_init(&refs, 0);
	if (run_counts == NULL || ref_offs == NULL ||
	    args_reserve(a, req->count + 2 * req->nruns + 20) != PB_OK ||
	    build_refs(req, &refs, ref_offs) != PB_OK) {
		snprintf(r->errstr, sizeof(r->errstr), "out of memory for %zu postbacks",
			 req->count);
		rc = r->err = PB_ERR_NOMEM;
		goto out;
	}
	if (pb_key_join(hash, sizeof(hash), k->request_stem, req->request_id) != PB_OK ||
	    pb_key_join(data, sizeof(data), k->data_stem, req->request_id) != PB_OK ||
	    (req->idem_key && snprintf(idem, sizeof(idem), "%s%s:%s", k->idem_stem,
				       req->client, req->idem_key) >= (int)sizeof(idem))) {
		snprintf(r->errstr, sizeof(r->errstr), "a key is too long");
		rc = r->err = PB_ERR_LIMIT;
		goto out;
	}
	snprintf(maxq, sizeof(maxq), "%ld", r->cfg->max_queue_size);
	snprintf(window, sizeof(window), "%ld", r->cfg->idempotency_window_s);
	snprintf(idem_val, sizeof(idem_val), "%s %zu", req->request_id, req->count);
	snprintf(count, sizeof(count), "%zu", req->count);
	argc = 2; /* EVALSHA and the SHA1 go in send_pipeline */
	arg(a, argc++, req->idem_key ? "7" : "6", 1);
	arg(a, argc++, k->waiting, strlen(k->waiting));
	arg(a, argc++, k->queue, strlen(k->queue));
	arg(a, argc++, hash, strlen(hash));
	arg(a, argc++, data, strlen(data));
	arg(a, argc++, k->ready, strlen(k->ready));
	arg(a, argc++, k->wake, strlen(k->wake));
	if (req->idem_key)
		arg(a, argc++, idem, strlen(idem));
	arg(a, argc++, maxq, strlen(maxq));
	arg(a, argc++, req->header, req->header_len);
	arg(a, argc++, count, strlen(count));
	arg(a, argc++, req->data, req->data_len);
	arg(a, argc++, idem_val, strlen(idem_val));
	arg(a, argc++, window, strlen(window));
	arg(a, argc++, k->queue_stem, strlen(k->queue_stem));
	for (i = 0, n = 0; i < req->nruns; i++) {
		snprintf(run_counts[i], sizeof(run_counts[i]), "%zu", req->runs[i].count);
		arg(a, argc++, req->runs[i].id, strlen(req->runs[i].id));
		arg(a, argc++, run_counts[i], strlen(run_counts[i]));
		for (j = 0; j < req->runs[i].count; j++, n++)
			arg(a, argc++, refs.data + ref_offs[n], ref_offs[n + 1] - ref_offs[n] - 1);
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
	if (rc != PB_OK) {
		/* min-replicas-to-write: nothing was written, and it says why. */
		res->status = strstr(r->errstr, "NOREPLICAS") ? PB_ENQ_NO_REPLICAS
							     : PB_ENQ_REDIS_DOWN;
		goto out;
	}
	if ((res->status == PB_ENQ_OK || res->status == PB_ENQ_REPLAY) &&
	    r->cfg->wait_replicas > 0 && res->replicas < r->cfg->wait_replicas)
		res->status = PB_ENQ_NOT_DURABLE;
out:
	free(run_counts);
	free(ref_offs);
	pb_buf_free(&refs);
	return rc;
}
