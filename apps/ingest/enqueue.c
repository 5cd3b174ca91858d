#include "enqueue.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "job.h"
#include "log.h"
#include "lua_functions.h"
#include "pb.h"

/*
 * One call for every request of a round (group commit): the requests are
 * decided in turn, each as if alone, and what they share is written once
 * - one RPUSH per destination queue, one INCRBY of the waiting count, one
 * wake - so a round of requests is one command in, one MULTI/EXEC out to
 * the replicas and the AOF, not one per request. The function is
 * apps/lua/enqueue.lua: its header says what it writes in which order and
 * why (what marks a request stored goes last), and names its arguments.
 */

/* A request's record in the function's ARGV, after the named ones and
 * before its runs. */
enum { REC_FIXED = 10 };

/* One request's record in the round's script call, built by its own
 * thread, sent by whoever commits it; everything its argv points to lives
 * here or in the caller's request until the call is done. */
typedef struct call {
	struct call *next;      /* in the committer's queue */
	const pb_enqueue_req *req;
	pb_enqueue_res *res;
	const char **argv;      /* its record (enqueue.lua) */
	size_t *lens;
	size_t argc;
	size_t bytes;           /* the record's, for ROUND_BYTES_MAX */
	pb_buf refs, dindex;
	char idem[PB_KEY_MAX], hash[PB_KEY_MAX], data[PB_KEY_MAX], idem_val[96],
	     count[24], share[24], nruns[24];
	int rc;                 /* PB_OK, or the failure's PB_ERR_* */
	int final;              /* answered (an error reply is an answer) */
	char errstr[256];
	int done;               /* under the committer's lock */
	pthread_cond_t done_cv; /* its caller waits on it: a wake-up each, not
				   every caller's for every round */
} call;

/* The group commit (enqueue.h): one thread, one connection, one queue
 * for each shard. */
typedef struct committer {
	pthread_mutex_t mu;     /* the queue, and each call's done */
	pthread_cond_t work_cv;
	call *head, **tail;
	int queued;             /* calls in the queue */
	int want;               /* the committer is woken once queued reaches it */
	pthread_t tid;
	int running;
	atomic_int stop;
	pb_redis redis;
	unsigned long batches, calls; /* for the log at the end */
} committer;

static committer G[PB_MAX_SHARDS]; /* mu, work_cv: pb_enqueue_group_start() */
static int ncommitters;

/* An empty buffer has no data (a request of one object's index, buf.h):
 * hiredis copies n bytes from s, so s is never NULL, even for none. */
static void arg(call *c, const char *s, size_t n)
{
	c->argv[c->argc] = s ? s : "";
	c->lens[c->argc++] = n;
	c->bytes += n;
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

/* Each run's queue element (job.h), NUL-terminated, back to back in
 * refs; offs[i] where run i's starts. */
static int build_refs(const pb_enqueue_req *req, pb_buf *refs, size_t *offs)
{
	size_t i, first = 0;

	for (i = 0; i < req->nruns; i++) {
		offs[i] = refs->len;
		pb_run3_encode(refs, req->request_id, first, req->runs[i].count);
		pb_buf_putc(refs, '\0');
		first += req->runs[i].count;
	}
	offs[i] = refs->len;
	return pb_buf_err(refs);
}

/* Request c's record of the script call (enqueue.lua). */
static int prepare(call *c, pb_redis *r)
{
	const pb_enqueue_req *req = c->req;
	const pb_keys *k = req->keys;
	size_t *offs = calloc(req->nruns + 1, sizeof(*offs)), i;

	c->argv = calloc(2 * req->nruns + REC_FIXED, sizeof(*c->argv));
	c->lens = calloc(2 * req->nruns + REC_FIXED, sizeof(*c->lens));
	/* A run's element is a request id and two indexes; the data's index
	 * an offset per object and one for the end. */
	pb_buf_init(&c->refs, req->nruns * (PB_RID_MAX + 2 * PB_INDEX_MAX + 4));
	pb_buf_init(&c->dindex, PB_INDEX_ENTRY * (req->count + 1));
	/* A request of one object is one record, its hash (enqueue.lua): no
	 * data key, no index. */
	if (offs == NULL || c->argv == NULL || c->lens == NULL ||
	    build_refs(req, &c->refs, offs) != PB_OK ||
	    (req->count > 1 &&
	     pb_data_index_encode(&c->dindex, req->offs, req->lens, req->count) != PB_OK)) {
		free(offs);
		snprintf(r->errstr, sizeof(r->errstr), "out of memory for %zu postbacks",
			 req->count);
		return r->err = PB_ERR_NOMEM;
	}
	if (pb_key_join(c->hash, sizeof(c->hash), k->request_stem, req->request_id) != PB_OK ||
	    pb_key_join(c->data, sizeof(c->data), k->data_stem, req->request_id) != PB_OK ||
	    (req->idem_key && snprintf(c->idem, sizeof(c->idem), "%s%s:%s", k->idem_stem,
				       req->client, req->idem_key) >= (int)sizeof(c->idem))) {
		free(offs);
		snprintf(r->errstr, sizeof(r->errstr), "a key is too long");
		return r->err = PB_ERR_LIMIT;
	}
	snprintf(c->idem_val, sizeof(c->idem_val), "%s %zu", req->request_id, req->count);
	snprintf(c->count, sizeof(c->count), "%zu", req->count);
	snprintf(c->share, sizeof(c->share), "%ld", req->share);
	snprintf(c->nruns, sizeof(c->nruns), "%zu", req->nruns);
	c->argc = 0, c->bytes = 0;
	arg(c, c->hash, strlen(c->hash));
	arg(c, c->data, req->count > 1 ? strlen(c->data) : 0);
	arg(c, c->idem, req->idem_key ? strlen(c->idem) : 0);
	arg(c, c->idem_val, strlen(c->idem_val));
	arg(c, req->header, req->header_len);
	arg(c, c->count, strlen(c->count));
	arg(c, c->dindex.data, c->dindex.len);
	arg(c, req->data, req->data_len);
	arg(c, c->share, strlen(c->share));
	arg(c, c->nruns, strlen(c->nruns));
	for (i = 0; i < req->nruns; i++) {
		arg(c, req->runs[i].id, strlen(req->runs[i].id));
		arg(c, c->refs.data + offs[i], offs[i + 1] - offs[i] - 1);
	}
	free(offs);
	return PB_OK;
}

static void call_free(call *c)
{
	free(c->argv);
	free(c->lens);
	pb_buf_free(&c->refs);
	pb_buf_free(&c->dindex);
}

/* The function's error reply for every call of the round: an answer
 * (NOREPLICAS, OOM, WRONGTYPE, a library not loaded, ...), final - and no
 * request of the round is marked stored (enqueue.lua). */
static void take_error(pb_redis *r, call *c, const redisReply *err)
{
	c->rc = PB_ERR_REPLY;
	snprintf(c->errstr, sizeof(c->errstr), "redis %s:%d: %s", r->master.host,
		 r->master.port, err->str);
	c->final = 1;
}

/* One request's part of the script's reply into its result. */
static void take_reply(call *c, const redisReply *x)
{
	pb_enqueue_res *res = c->res;

	res->queue_size = int_at(x, 1);
	c->rc = PB_OK;
	c->final = 1;
	switch (int_at(x, 0)) {
	case 1: res->status = PB_ENQ_OK; break;
	case 0: res->status = PB_ENQ_FULL; break;
	case 3:
		res->status = PB_ENQ_OVER_SHARE;
		res->client_queued = int_at(x, 2);
		break;
	case 2:
		res->status = PB_ENQ_REPLAY;
		if (x->elements > 2 && x->element[2]->type == REDIS_REPLY_STRING)
			parse_first(x->element[2]->str, res);
		break;
	default:
		snprintf(c->errstr, sizeof(c->errstr), "enqueue script: bad reply");
		c->rc = PB_ERR_REPLY;
	}
}

/* The round's one function call, into r's output buffer: the calls of
 * cs[0..n) not yet answered, *sent of them; again: the round was sent
 * before (its answer lost). */
static int append_call(pb_redis *r, call **cs, int n, int *sent, int again)
{
	const pb_keys *k = NULL;
	const char **argv;
	size_t *lens, argc = PB_FN_ENQUEUE_ARGC, j = 0;
	char maxq[24], window[24];
	int i, rc;

	*sent = 0;
	for (i = 0; i < n; i++)
		if (!cs[i]->final) {
			argc += cs[i]->argc;
			k = cs[i]->req->keys;
			again |= cs[i]->req->again;
			++*sent;
		}
	if (k == NULL)
		return PB_OK;
	argv = calloc(argc, sizeof(*argv));
	lens = calloc(argc, sizeof(*lens));
	if (argv == NULL || lens == NULL) {
		free(argv);
		free(lens);
		snprintf(r->errstr, sizeof(r->errstr), "out of memory for %d requests", n);
		return r->err = PB_ERR_NOMEM;
	}
	snprintf(maxq, sizeof(maxq), "%ld", r->cfg->max_queue_size);
	snprintf(window, sizeof(window), "%ld", r->cfg->idempotency_window_s);
	{
		const pb_fn_enqueue a = {
			.waiting = k->waiting, .v1_queue = k->queue,
			.ready = k->ready, .wake = k->wake,
			.counts = k->client_waiting, .max = maxq,
			.qstem = k->queue_stem, .idem_s = window,
			.lstem = k->lanes_stem, .crstem = k->client_ready_stem,
			.clients_ready = k->clients_ready, .again = again ? "1" : "0"
		};
		size_t head = (size_t)pb_fn_enqueue_argv(&a, argv);

		for (; j < head; j++)
			lens[j] = strlen(argv[j]);
	}
	for (i = 0; i < n; i++)
		if (!cs[i]->final) {
			memcpy(argv + j, cs[i]->argv, cs[i]->argc * sizeof(*argv));
			memcpy(lens + j, cs[i]->lens, cs[i]->argc * sizeof(*lens));
			j += cs[i]->argc;
		}
	rc = pb_redis_append_argv(r, (int)argc, argv, lens); /* copies them */
	free(argv);
	free(lens);
	return rc;
}

/* The function's reply to the round into each call it carried. */
static void take_replies(pb_redis *r, call **cs, int n, const redisReply *script,
			 int sent)
{
	int i, k = 0;

	for (i = 0; i < n; i++) {
		if (cs[i]->final)
			continue;
		if (script->type == REDIS_REPLY_ERROR) {
			take_error(r, cs[i], script);
		} else if (script->type != REDIS_REPLY_ARRAY || script->elements != (size_t)sent) {
			snprintf(cs[i]->errstr, sizeof(cs[i]->errstr),
				 "enqueue script: bad reply for %d requests", sent);
			cs[i]->rc = PB_ERR_REPLY;
		} else {
			take_reply(cs[i], script->element[k++]);
		}
	}
}

/*
 * Send the calls of cs[0..n) not yet answered in one pipeline: PING (the
 * seed's redis_is_connected), one function call for all of them, one
 * WAIT (WAIT cannot run inside a function; after it, in the same round
 * trip, it can: it waits until the replicas have every write before it).
 * PB_OK when every reply came.
 */
static int send_batch(pb_redis *r, call **cs, int n, int again)
{
	redisReply *reply = NULL;
	int i, rc, pinged, sent;
	long long replicas;

	if ((rc = pb_redis_append(r, "PING")) != PB_OK ||
	    (rc = append_call(r, cs, n, &sent, again)) != PB_OK)
		return rc;
	/* WAIT 0 0 would block forever: with no replicas asked, ask nothing. */
	rc = r->cfg->wait_replicas > 0
		? pb_redis_append(r, "WAIT %ld %ld", r->cfg->wait_replicas,
				  r->cfg->wait_timeout_ms)
		: pb_redis_append(r, "ECHO 0");
	if (rc != PB_OK)
		return rc;
	if ((rc = pb_redis_get_reply(r, &reply)) != PB_OK)
		return rc;
	pinged = reply->type == REDIS_REPLY_STATUS && strcmp(reply->str, "PONG") == 0;
	freeReplyObject(reply);
	if (sent > 0) {
		if ((rc = pb_redis_get_reply(r, &reply)) != PB_OK)
			return rc;
		take_replies(r, cs, n, reply, sent);
		freeReplyObject(reply);
	}
	if ((rc = pb_redis_get_reply(r, &reply)) != PB_OK)
		return rc;
	replicas = reply->type == REDIS_REPLY_INTEGER ? reply->integer : -1;
	freeReplyObject(reply);
	for (i = 0; i < n; i++) {
		cs[i]->res->pinged = pinged;
		cs[i]->res->replicas = replicas;
	}
	return PB_OK;
}

/*
 * Commit cs[0..n): two tries, as one request alone had: the first may meet
 * a connection that went stale in a failover (EOF, READONLY) and the second
 * then finds the new master. A repeat sends the same request ids, marked
 * again, and the function writes nothing for such a request whose hash
 * exists, so a call that did land before the connection broke is answered
 * as enqueued again. (A first try is not looked for: request ids are new.)
 */
static void commit_batch(pb_redis *r, call **cs, int n)
{
	int tries = 0, i, rc;

	for (;;) {
		rc = send_batch(r, cs, n, tries > 0);
		if (rc == PB_OK)
			break;
		pb_warn("enqueue of %d request(s) (first %s), try %d: %s", n,
			cs[0]->req->request_id, tries + 1, r->errstr);
		if (++tries == 2)
			break;
		/* All again, the answered ones too: their WAIT was lost. */
		for (i = 0; i < n; i++)
			cs[i]->final = 0;
	}
	for (i = 0; i < n; i++)
		if (!cs[i]->final) {
			cs[i]->rc = rc == PB_OK ? PB_ERR_REPLY : rc;
			if (rc != PB_OK)
				pb_strlcpy(cs[i]->errstr, r->errstr, sizeof(cs[i]->errstr));
		}
}

/* The committer: every call waiting when it comes round, in one batch - at
 * most BATCH_MAX requests and, past the first, ROUND_BYTES_MAX bytes of
 * arguments a round: one script call runs alone on the master, and the
 * agents' takes and acknowledgements wait while it does. */
enum { BATCH_MAX = 256, ROUND_BYTES_MAX = 8 << 20 };

/*
 * Before a round, wait up to GATHER_US for as many calls as the last round
 * had. A round costs the master, each replica and the committer an fsync
 * and a few wake-ups whatever its size, and on two cores those were a
 * third of a request's CPU time (make bench); a round of one after a
 * round of one (a quiet node) does not wait at all.
 */
enum { GATHER_US = 1000 };

static void gather(committer *g, int want)
{
	struct timespec until;

	clock_gettime(CLOCK_MONOTONIC, &until); /* work_cv's clock */
	until.tv_nsec += GATHER_US * 1000L;
	if (until.tv_nsec >= 1000000000L)
		until.tv_sec++, until.tv_nsec -= 1000000000L;
	g->want = want;
	while (g->queued < want && !g->stop &&
	       pthread_cond_timedwait(&g->work_cv, &g->mu, &until) == 0)
		;
}

static void *committer_main(void *arg)
{
	committer *g = arg;
	call *batch[BATCH_MAX];
	size_t bytes;
	int n = 1, i;

	for (;;) {
		pthread_mutex_lock(&g->mu);
		g->want = 1;
		while (g->head == NULL && !g->stop)
			pthread_cond_wait(&g->work_cv, &g->mu);
		gather(g, n);
		if (g->head == NULL) {
			pthread_mutex_unlock(&g->mu);
			break;
		}
		for (n = 0, bytes = 0; g->head && n < BATCH_MAX &&
		     (n == 0 || bytes + g->head->bytes <= ROUND_BYTES_MAX); n++) {
			bytes += g->head->bytes;
			batch[n] = g->head;
			g->head = g->head->next;
		}
		if (g->head == NULL)
			g->tail = &g->head;
		g->queued -= n;
		g->want = INT_MAX; /* busy: it looks at the queue when done */
		pthread_mutex_unlock(&g->mu);
		commit_batch(&g->redis, batch, n);
		pthread_mutex_lock(&g->mu);
		for (i = 0; i < n; i++) {
			batch[i]->done = 1;
			pthread_cond_signal(&batch[i]->done_cv);
		}
		g->batches++;
		g->calls += (unsigned long)n;
		pthread_mutex_unlock(&g->mu);
	}
	return NULL;
}

static int committer_start(committer *g, const pb_config *cfg,
			   const char *client_name, int shard)
{
	pthread_condattr_t ca;
	int rc;

	/* The gathering wait is timed on the monotonic clock: a step of the
	 * wall clock must not hold a round back. */
	if (pthread_mutex_init(&g->mu, NULL) != 0 ||
	    pthread_condattr_init(&ca) != 0)
		return PB_ERR_NOMEM;
	rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
	     pthread_cond_init(&g->work_cv, &ca) != 0;
	pthread_condattr_destroy(&ca);
	if (rc)
		return PB_ERR_NOMEM;
	if (pb_redis_init_shard(&g->redis, cfg, client_name, shard) != PB_OK)
		return PB_ERR_NOMEM;
	/* With another shard to go to, a request does not wait out a
	 * failover here: the caller tries the next shard (main.c). */
	if (cfg->shards.n > 1)
		g->redis.failover_wait_ms = 0;
	g->redis.stop = &g->stop;
	g->tail = &g->head;
	if (pthread_create(&g->tid, NULL, committer_main, g) != 0) {
		pb_redis_close(&g->redis);
		return PB_ERR_NOMEM;
	}
	g->running = 1;
	return PB_OK;
}

int pb_enqueue_group_start(const pb_config *cfg, const char *client_name)
{
	char name[128];
	int s, rc;

	for (s = 0; s < cfg->shards.n; s++) {
		if (cfg->shards.n > 1)
			snprintf(name, sizeof(name), "%s-%d", client_name, s);
		else
			pb_strlcpy(name, client_name, sizeof(name));
		if ((rc = committer_start(&G[s], cfg, name, s)) != PB_OK) {
			pb_enqueue_group_stop();
			return rc;
		}
		ncommitters = s + 1;
	}
	return PB_OK;
}

static void committer_stop(committer *g)
{
	if (!g->running)
		return;
	pthread_mutex_lock(&g->mu);
	g->stop = 1;
	pthread_cond_signal(&g->work_cv);
	pthread_mutex_unlock(&g->mu);
	pthread_join(g->tid, NULL);
	pb_redis_close(&g->redis);
	g->running = 0;
	if (g->batches)
		pb_info("group commit on shard %s: %lu requests in %lu round trips",
			g->redis.master_name, g->calls, g->batches);
}

void pb_enqueue_group_stop(void)
{
	int s;

	for (s = 0; s < ncommitters; s++)
		committer_stop(&G[s]);
	ncommitters = 0;
}

/* Hand c to the committer and wait until it is done. */
static void commit_grouped(committer *g, call *c)
{
	pthread_cond_init(&c->done_cv, NULL);
	pthread_mutex_lock(&g->mu);
	c->next = NULL;
	*g->tail = c;
	g->tail = &c->next;
	if (++g->queued >= g->want)
		pthread_cond_signal(&g->work_cv);
	while (!c->done)
		pthread_cond_wait(&c->done_cv, &g->mu);
	pthread_mutex_unlock(&g->mu);
	pthread_cond_destroy(&c->done_cv);
}

int pb_enqueue(pb_redis *r, const pb_enqueue_req *req, pb_enqueue_res *res)
{
	call c = { .req = req, .res = res };
	call *one = &c;
	int rc;

	memset(res, 0, sizeof(*res));
	/* Until the script has answered, nothing is queued: a return before
	 * that (out of memory) must not read as PB_ENQ_OK, which is 0. */
	res->status = PB_ENQ_REDIS_DOWN;
	res->queue_size = -1;
	if ((rc = prepare(&c, r)) != PB_OK)
		goto out;
	if (r->shard < ncommitters && G[r->shard].running)
		commit_grouped(&G[r->shard], &c);
	else
		commit_batch(r, &one, 1);
	if ((rc = c.rc) != PB_OK) {
		pb_strlcpy(r->errstr, c.errstr, sizeof(r->errstr));
		r->err = rc;
		/* min-replicas-to-write: nothing was written, and it says why. */
		res->status = strstr(c.errstr, "NOREPLICAS") ? PB_ENQ_NO_REPLICAS
							    : PB_ENQ_REDIS_DOWN;
		goto out;
	}
	if ((res->status == PB_ENQ_OK || res->status == PB_ENQ_REPLAY) &&
	    r->cfg->wait_replicas > 0 && res->replicas < r->cfg->wait_replicas)
		res->status = PB_ENQ_NOT_DURABLE;
out:
	call_free(&c);
	return rc;
}
