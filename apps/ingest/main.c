/*
 * pb-ingest - the FastCGI ingest node.
 *
 * HAProxy speaks FastCGI to this process. Each of cfg.threads threads takes
 * requests with FCGX_Accept_r and owns one Redis connection, so threads
 * share nothing but the listening socket. A request is checked (405, 415,
 * 413, 400), turned into one job per data object, and enqueued all or
 * nothing (enqueue.c); the answer is the seed's JSON.
 *
 * Shutdown: libfcgi's own SIGTERM handler only sets a flag, and a thread
 * blocked in accept() or in read() on a kept-alive connection never sees
 * it. So signals are blocked in every thread and the main thread waits for
 * them with sigwait(); each worker polls its socket together with a wake-up
 * pipe before it calls into libfcgi. On SIGTERM the listening socket is shut
 * down and the pipe made readable: workers without a connection return at
 * once, the others answer what still arrives on their connection (closing
 * it after each answer) until shutdown_drain_ms has passed, then return.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fcgiapp.h>
#include <jansson.h>

#include "buf.h"
#include "clientkey.h"
#include "clients.h"
#include "config.h"
#include "enqueue.h"
#include "ingestmetrics.h"
#include "job.h"
#include "log.h"
#include "pb.h"
#include "redis.h"
#include "sdnotify.h"
#include "template.h"
#include "validate.h"

#define IDEM_KEY_MAX 128

static pb_config cfg;
static pb_keys keys;
static int listen_fd = -1;
static int wake_pipe[2] = { -1, -1 };
static atomic_int stopping;
static _Atomic int64_t drain_deadline; /* set before stopping */

/* Request ids: a random prefix per process and a counter, so ids stay
 * unique across nodes and restarts without asking Redis for anything.
 * Both in base 62: an id is in every reference, three times in Redis'
 * streams (job.h), and 8 digits hold 47 random bits where hex needs 12. */
#define ID_PREFIX_DIGITS 8
static char id_prefix[ID_PREFIX_DIGITS + 1];
static atomic_uint_fast64_t id_counter;

/* One shard as a thread sees it: its connection (used for INFO memory:
 * the enqueue itself goes through the shard's committer, enqueue.h). */
typedef struct shard_conn {
	pb_redis redis;
	int64_t mem_checked_ms; /* when INFO memory was last asked */
	long mem_used, mem_max; /* its answer; mem_max 0: no maxmemory */
} shard_conn;

/* Until when (ms) a shard that failed a request is tried after the
 * others: shared by the threads, so that one failure spares the rest of
 * them a try (and its timeout) for a while. */
#define SHARD_DOWN_MS 1000
static _Atomic int64_t shard_down_until[PB_MAX_SHARDS];

typedef struct worker {
	pthread_t tid;
	int index;
	shard_conn *shards; /* cfg.shards.n of them */
	unsigned turn;      /* the shard a request without a key tries first */
	FCGX_Request req;
	pb_buf body;    /* the request body */
	pb_buf jobs;    /* the request's header, then each data object */
	pb_buf out;     /* the answer */
	size_t *offs;   /* where each data object starts, after the header */
	size_t *lens;
	pb_dest_run *runs; /* destinations, a run of objects each */
	size_t jobs_cap;
	pb_buf url;     /* a filled URL, for its destination */
	pb_dest_cache *dests; /* destinations by URL prefix: libcurl parses each once */
	int status;     /* of the last answer, for the metrics */
	char client[PB_CLIENT_NAME_MAX + 1]; /* whose key the request carries */
	long share;     /* its own share of the queue (pbctl keys share; 0: the default) */
} worker;

/* ---- answers ---------------------------------------------------------- */

static const char *reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 413: return "Content Too Large";
	case 415: return "Unsupported Media Type";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default: return "";
	}
}

/* Write status, headers and the JSON body in w->out. */
static void respond(worker *w, int status, const char *extra_headers)
{
	if (pb_buf_err(&w->out) != PB_OK) { /* out of memory building it */
		pb_error("cannot build the answer %d: out of memory; answering 500",
			 status);
		pb_buf_reset(&w->out);
		pb_buf_puts(&w->out, "{\"error\":\"out of memory building the answer; "
				     "retry with the same Idempotency-Key\"}\n");
		status = 500;
		extra_headers = NULL;
	}
	w->status = status;
	FCGX_FPrintF(w->req.out,
		     "Status: %d %s\r\nContent-Type: application/json\r\n"
		     "Cache-Control: no-store\r\n%s\r\n",
		     status, reason(status), extra_headers ? extra_headers : "");
	FCGX_PutStr(pb_buf_str(&w->out), (int)w->out.len, w->req.out);
}

/* Append "key":"value" with the value JSON-escaped. */
static void put_json_string(pb_buf *b, const char *key, const char *value)
{
	json_t *s = json_string(value);
	char *enc = s ? json_dumps(s, JSON_ENCODE_ANY) : NULL;

	pb_buf_printf(b, "\"%s\":%s", key, enc ? enc : "\"\"");
	free(enc);
	json_decref(s);
}

static void respond_error(worker *w, int status, const char *msg)
{
	pb_buf_reset(&w->out);
	pb_buf_putc(&w->out, '{');
	put_json_string(&w->out, "error", msg);
	pb_buf_puts(&w->out, "}\n");
	respond(w, status, status == 405 ? "Allow: POST\r\n"
			   : status == 401 ? "WWW-Authenticate: Bearer\r\n" : NULL);
}

/* 429: the client is over its share of the queue (nothing queued); the
 * others are not. */
static void respond_over_share(worker *w, long long queued, long share)
{
	char hdr[64], msg[PB_CLIENT_NAME_MAX + 160];

	snprintf(msg, sizeof(msg), "client '%s' has %lld postbacks queued on a shard "
		 "whose share for it is %ld: nothing queued, retry later", w->client,
		 queued, share);
	pb_buf_reset(&w->out);
	pb_buf_putc(&w->out, '{');
	put_json_string(&w->out, "error", msg);
	pb_buf_printf(&w->out, ",\"client_queued\":%lld,\"client_share\":%ld}\n",
		      queued, share);
	snprintf(hdr, sizeof(hdr), "Retry-After: %ld\r\n", cfg.retry_after_s);
	respond(w, 429, hdr);
}

/* 503 with the seed's keys, an error, and Retry-After. */
static void respond_unavailable(worker *w, int pinged, long long size,
				const char *msg)
{
	char hdr[64];

	pb_buf_reset(&w->out);
	pb_buf_printf(&w->out, "{\"redis_is_connected\":\"%s\",",
		      pinged ? "+PONG" : "");
	if (size >= 0)
		pb_buf_printf(&w->out, "\"postback_queue_size\":%lld,", size);
	put_json_string(&w->out, "error", msg);
	pb_buf_puts(&w->out, "}\n");
	snprintf(hdr, sizeof(hdr), "Retry-After: %ld\r\n", cfg.retry_after_s);
	respond(w, 503, hdr);
}

static void respond_accepted(worker *w, const char *request_id, size_t count,
			     long long size)
{
	size_t i;

	pb_buf_reset(&w->out);
	pb_buf_printf(&w->out,
		      "{\"redis_is_connected\":\"+PONG\",\"postback_queue_size\":%lld,"
		      "\"accepted\":%zu,\"request_id\":\"%s\",\"ids\":[",
		      size, count, request_id);
	for (i = 0; i < count; i++)
		pb_buf_printf(&w->out, "%s\"%s-%zu\"", i ? "," : "", request_id, i);
	pb_buf_puts(&w->out, "]}\n");
	respond(w, 200, NULL);
}

/* ---- the ingest request ----------------------------------------------- */

/*
 * Whose request this is (clientkey.h), into w->client, before anything of
 * it is read: 1 to go on, 0 when it has been answered (401, or 503 while
 * the keys have not been loaded). With require_client_key off, a request
 * without a key is the anonymous client "".
 */
static int authenticate(worker *w)
{
	char hash[PB_CLIENT_HASH_LEN + 1];
	const char *key;
	size_t n;
	int rc;

	w->client[0] = '\0';
	w->share = 0;
	rc = pb_client_key_from(FCGX_GetParam("HTTP_AUTHORIZATION", w->req.envp),
				FCGX_GetParam("HTTP_X_API_KEY", w->req.envp), &key, &n);
	if (rc == PB_ERR_NOTFOUND && !cfg.require_client_key)
		return 1;
	if (rc == PB_ERR_NOTFOUND) {
		respond_error(w, 401, "a client key is required: send "
				      "'Authorization: Bearer <key>' or 'X-Api-Key: <key>'");
		return 0;
	}
	if (rc != PB_OK) {
		respond_error(w, 401, "the client key is malformed: send "
				      "'Authorization: Bearer <key>' or 'X-Api-Key: <key>'");
		return 0;
	}
	pb_client_key_hash(key, n, hash);
	rc = pb_clients_lookup(hash, w->client, &w->share);
	if (rc == PB_ERR_IO) {
		respond_unavailable(w, 0, -1, "client keys not loaded yet "
				    "(Redis not reached since this node started)");
		return 0;
	}
	if (rc == PB_ERR_TIMEOUT) {
		/* Fail closed: a key revoked meanwhile must not keep working. */
		respond_unavailable(w, 0, -1, "client keys not confirmed by Redis "
				    "lately; nothing queued, retry later");
		return 0;
	}
	if (rc != PB_OK) {
		/* The hash's first digits tell an operator which key, and
		 * are of no use to anyone who reads the log. */
		pb_debug("unknown client key (SHA-256 %.8s...)", hash);
		respond_error(w, 401, "unknown or revoked client key");
		return 0;
	}
	return 1;
}

/* Read the body into w->body; PB_ERR_LIMIT past max_body_bytes. */
static int read_body(worker *w)
{
	char chunk[16384];
	int n;

	pb_buf_reset(&w->body);
	while ((n = FCGX_GetStr(chunk, sizeof(chunk), w->req.in)) > 0)
		if (pb_buf_append(&w->body, chunk, (size_t)n) != PB_OK)
			return PB_ERR_LIMIT;
	return PB_OK;
}

static int jobs_reserve(worker *w, size_t n)
{
	void *p;

	if (n <= w->jobs_cap)
		return PB_OK;
	if ((p = realloc(w->offs, n * sizeof(*w->offs))) == NULL)
		return PB_ERR_NOMEM;
	w->offs = p;
	if ((p = realloc(w->lens, n * sizeof(*w->lens))) == NULL)
		return PB_ERR_NOMEM;
	w->lens = p;
	if ((p = realloc(w->runs, n * sizeof(*w->runs))) == NULL)
		return PB_ERR_NOMEM;
	w->runs = p;
	w->jobs_cap = n;
	return PB_OK;
}

/*
 * The destination of object obj's postback (dest.h), for a template whose
 * scheme, host and port hold a {key} (build_jobs parses one without, once
 * for all): the URL filled here as the agent will fill it (a missing key:
 * empty). PB_ERR_FORMAT when it is not one
 * libcurl would connect to, or has userinfo: such a request is refused
 * whole, so that no postback is queued under a destination it would never
 * reach (and fail against that destination's breaker).
 */
static int destination(worker *w, const pb_ingest_req *r, const json_t *obj,
		       pb_dest *d)
{
	size_t pre = pb_dest_prefix_len(r->url, r->url_len);

	pb_buf_reset(&w->url);
	if (pb_template_fill(&w->url, r->url, pre, obj, "") != PB_OK)
		return PB_ERR_FORMAT;
	return pb_dest_of_cached(w->dests, d, w->url.data, w->url.len);
}

/*
 * What the request queues (job.h, version 2): its header first in w->jobs,
 * then its data objects as compact JSON back to back (w->offs[i] where
 * object i starts, from the end of the header); the objects' destinations
 * as runs in w->runs, *nruns of them.
 */
static int build_jobs(worker *w, const pb_ingest_req *r, size_t *hlen,
		      size_t *nruns, size_t *bad)
{
	json_t *obj;
	pb_dest d;
	size_t i;
	int rc = jobs_reserve(w, r->count);
	/* No {key} in its scheme, host and port: one destination for all,
	 * parsed once (libcurl's parser, not a loop of it a postback). */
	int shared = memchr(r->url, '{', pb_dest_prefix_len(r->url, r->url_len)) == NULL;

	*nruns = 0;
	if (rc != PB_OK)
		return rc;
	pb_buf_reset(&w->jobs);
	if ((rc = pb_reqhdr_encode(&w->jobs, r->method, pb_wall_ms(), w->client,
				   r->url, r->url_len)) != PB_OK)
		return rc;
	*hlen = w->jobs.len;
	if (shared && (rc = pb_dest_of_cached(w->dests, &d, r->url, r->url_len)) != PB_OK) {
		*bad = 0;
		return rc;
	}
	json_array_foreach(r->data, i, obj) {
		size_t need = json_dumpb(obj, NULL, 0, JSON_COMPACT);

		if ((rc = pb_buf_reserve(&w->jobs, need)) != PB_OK)
			return rc;
		w->offs[i] = w->jobs.len - *hlen;
		w->lens[i] = json_dumpb(obj, w->jobs.data + w->jobs.len, need,
					JSON_COMPACT);
		w->jobs.len += w->lens[i];
		if (!shared && (rc = destination(w, r, obj, &d)) != PB_OK) {
			*bad = i;
			return rc;
		}
		if (*nruns == 0 || strcmp(w->runs[*nruns - 1].id, d.id) != 0) {
			memcpy(w->runs[*nruns].id, d.id, sizeof(d.id));
			w->runs[(*nruns)++].count = 0;
		}
		w->runs[*nruns - 1].count++;
	}
	return PB_OK;
}

/* NULL if absent; "" (refused) if not 1..128 printable ASCII characters. */
static const char *idempotency_key(worker *w)
{
	const char *k = FCGX_GetParam("HTTP_IDEMPOTENCY_KEY", w->req.envp);
	size_t i, n;

	if (k == NULL)
		return NULL;
	n = strlen(k);
	if (n == 0 || n > IDEM_KEY_MAX)
		return "";
	for (i = 0; i < n; i++)
		if (k[i] <= 0x20 || k[i] >= 0x7f)
			return "";
	return k;
}

static void answer_enqueue(worker *w, const pb_enqueue_res *res,
			   const pb_enqueue_req *eq, size_t count, int shard)
{
	const char *request_id = eq->request_id;
	char msg[320];

	switch (res->status) {
	case PB_ENQ_OVER_SHARE:
		respond_over_share(w, res->client_queued, eq->share);
		return;
	case PB_ENQ_OK:
		respond_accepted(w, request_id, count, res->queue_size);
		return;
	case PB_ENQ_REPLAY:
		respond_accepted(w, res->first_request_id, (size_t)res->first_count,
				 res->queue_size);
		return;
	case PB_ENQ_FULL:
		snprintf(msg, sizeof(msg), "MAX_QUEUE_SIZE %ld reached",
			 cfg.max_queue_size);
		respond_unavailable(w, res->pinged, res->queue_size, msg);
		return;
	case PB_ENQ_NOT_DURABLE:
		snprintf(msg, sizeof(msg),
			 "write confirmed by %lld of %ld replicas within %ld ms; "
			 "retry with the same Idempotency-Key",
			 res->replicas < 0 ? 0 : res->replicas, cfg.wait_replicas,
			 cfg.wait_timeout_ms);
		pb_warn("request %s: %s", request_id, msg);
		respond_unavailable(w, res->pinged, res->queue_size, msg);
		return;
	case PB_ENQ_NO_REPLICAS:
		snprintf(msg, sizeof(msg),
			 "not enough replicas in sync to accept writes (NOREPLICAS); "
			 "nothing queued, retry later");
		pb_warn("request %s: %s", request_id, msg);
		respond_unavailable(w, res->pinged, -1, msg);
		return;
	case PB_ENQ_REDIS_DOWN:
		/* The client gets no address or Redis error text (ACL and
		 * network details are the operator's): the log has them. */
		pb_warn("request %s: redis unavailable (shard %s): %s", request_id,
			cfg.shards.name[shard], w->shards[shard].redis.errstr);
		respond_unavailable(w, res->pinged, -1, "redis unavailable: nothing "
				    "queued, retry later (the ingest node's log says why)");
		return;
	}
}

/*
 * Is Redis at redis_memory_high_pct of its maxmemory? Asked at most every
 * MEMORY_CHECK_MS per thread (INFO on the master's event loop, not per
 * request). The room above the mark is the agents': their moves are
 * refused too once Redis reaches maxmemory, and then nothing would drain.
 */
#define MEMORY_CHECK_MS 100

static int redis_memory_high(worker *w, int shard)
{
	shard_conn *sc = &w->shards[shard];
	int64_t now = pb_now_ms();
	redisReply *reply;

	if (now - sc->mem_checked_ms >= MEMORY_CHECK_MS) {
		long used, max;

		sc->mem_checked_ms = now;
		/* Unknown unless this answer says (no answer: a restart, a
		 * failover): the script answers for itself then, and an old
		 * answer must not keep refusing. */
		sc->mem_max = 0;
		reply = pb_redis_cmd(&sc->redis, "INFO memory");
		if (reply && reply->type == REDIS_REPLY_STRING &&
		    pb_info_field(reply->str, "used_memory", &used) == PB_OK &&
		    pb_info_field(reply->str, "maxmemory", &max) == PB_OK)
			sc->mem_used = used, sc->mem_max = max;
		if (reply)
			freeReplyObject(reply);
	}
	return sc->mem_max > 0 &&
	       sc->mem_used >= sc->mem_max / 100 * cfg.redis_memory_high_pct;
}

/*
 * The shards a request may go to, into order[], in the order to try them
 * (shard.h): an Idempotency-Key's home alone, so that a retry finds the
 * first answer; otherwise every shard, starting with this thread's next
 * turn, those that failed a request in the last SHARD_DOWN_MS last.
 * Closed shards (closed_shards) are nobody's home and never tried.
 */
static int route(worker *w, const char *idem, int *order)
{
	int64_t now = pb_now_ms();
	int n = cfg.shards.n, k = 0, i, s, pass;

	if (idem) {
		char key[PB_CLIENT_NAME_MAX + 1 + 129];
		int len = snprintf(key, sizeof(key), "%s:%s", w->client, idem);

		order[0] = pb_shard_home(&cfg.shards, key, (size_t)len);
		return 1;
	}
	w->turn++;
	for (pass = 0; pass < 2; pass++)
		for (i = 0; i < n; i++) {
			s = (int)((w->turn + (unsigned)i) % (unsigned)n);
			if (!cfg.shards.closed[s] && (shard_down_until[s] > now) == pass)
				order[k++] = s;
		}
	return k;
}

/* A shard's answer after which the next may be tried: nothing was queued
 * there (full, no replicas in sync), or nothing confirmed (no master; a
 * request it may have written before its master died goes to another:
 * a duplicate, never a loss). */
static int go_on(enum pb_enqueue_status st)
{
	return st == PB_ENQ_FULL || st == PB_ENQ_OVER_SHARE ||
	       st == PB_ENQ_NO_REPLICAS || st == PB_ENQ_REDIS_DOWN;
}

/* A shard's answer about the request itself, not the shard's health: the
 * next shard may take it, and nothing is waited for. */
static int refused_request(enum pb_enqueue_status st)
{
	return st == PB_ENQ_FULL || st == PB_ENQ_OVER_SHARE;
}

/*
 * The share of the queue a shard holds for the request's client: its own
 * (pbctl keys share, postbacks in the whole cluster) split over the open
 * shards, or client_share_pct of max_queue_size (which bounds each
 * shard); 0 (no limit of its own) at 100 %.
 */
static long shard_share(long own)
{
	int open = 0, s;

	if (own <= 0)
		return cfg.client_share_pct >= 100 ? 0
			: cfg.max_queue_size / 100 * cfg.client_share_pct +
			  cfg.max_queue_size % 100 * cfg.client_share_pct / 100;
	for (s = 0; s < cfg.shards.n; s++)
		open += !cfg.shards.closed[s];
	return (own + open - 1) / open;
}

/*
 * Queue eq on the first shard that takes it; returns that shard (or the
 * last tried) and res its answer, or -1 when no shard was tried because
 * each is at redis_memory_high_pct (*mem_high names one). With one
 * shard, pb_enqueue() itself waits out a failover; with several, while no
 * shard takes it and failover_wait_ms has not passed, the candidates are
 * tried again.
 */
static int enqueue_routed(worker *w, pb_enqueue_req *eq,
			  const char *idem, pb_enqueue_res *res, int *mem_high)
{
	int64_t deadline = pb_now_ms() + cfg.failover_wait_ms;
	int order[PB_MAX_SHARDS], n, i, s = 0, tried, taken;

	memset(res, 0, sizeof(*res));
	res->status = PB_ENQ_REDIS_DOWN;
	res->queue_size = -1;
	for (;;) {
		n = route(w, idem, order);
		for (i = tried = 0; i < n; i++) {
			s = order[i];
			if (redis_memory_high(w, s)) {
				*mem_high = s;
				im_shard(s, 0);
				continue;
			}
			tried++;
			pb_enqueue(&w->shards[s].redis, eq, res);
			eq->again = 1; /* it may have landed, whatever the answer */
			taken = !go_on(res->status);
			im_shard(s, taken);
			if (taken)
				return s;
			if (!refused_request(res->status))
				shard_down_until[s] = pb_now_ms() + SHARD_DOWN_MS;
			if (i + 1 < n)
				pb_info("request %s: shard %s refused it (status %d), "
					"trying shard %s", eq->request_id,
					cfg.shards.name[s], (int)res->status,
					cfg.shards.name[order[i + 1]]);
		}
		if (tried == 0)
			return -1;
		if (cfg.shards.n == 1 || refused_request(res->status) ||
		    pb_now_ms() + 200 > deadline || stopping)
			return s;
		pb_sleep_ms(200, &stopping);
	}
}

static void handle_ingest(worker *w)
{
	char err[256], request_id[32];
	char **env = w->req.envp;
	const char *idem;
	pb_ingest_req r;
	pb_enqueue_req eq;
	pb_enqueue_res res;
	size_t hlen = 0, nruns = 0, bad = 0;
	int status, rc, shard, mem_high = 0;
	int64_t t0;

	if (!authenticate(w))
		return;
	status = pb_check_http(FCGX_GetParam("REQUEST_METHOD", env),
			       FCGX_GetParam("CONTENT_TYPE", env),
			       FCGX_GetParam("CONTENT_LENGTH", env),
			       (size_t)cfg.max_body_bytes, err, sizeof(err));
	if (status) {
		respond_error(w, status, err);
		return;
	}
	if ((idem = idempotency_key(w)) != NULL && idem[0] == '\0') {
		respond_error(w, 400, "Idempotency-Key must be 1 to 128 printable "
				      "ASCII characters");
		return;
	}
	if (read_body(w) != PB_OK) {
		snprintf(err, sizeof(err), "body is over the limit of %ld bytes",
			 cfg.max_body_bytes);
		respond_error(w, 413, err);
		return;
	}
	status = pb_parse_ingest(&r, w->body.data, w->body.len,
				 (size_t)cfg.max_url_bytes, (size_t)cfg.max_objects,
				 err, sizeof(err));
	if (status) {
		respond_error(w, status, err);
		pb_ingest_req_free(&r);
		return;
	}
	memcpy(request_id, id_prefix, ID_PREFIX_DIGITS);
	pb_base62(request_id + ID_PREFIX_DIGITS, sizeof(request_id) - ID_PREFIX_DIGITS,
		  (uint64_t)atomic_fetch_add(&id_counter, 1), 1);
	if ((rc = build_jobs(w, &r, &hlen, &nruns, &bad)) == PB_ERR_FORMAT) {
		snprintf(err, sizeof(err), "data[%zu]: the URL's scheme, host and port "
			 "are not one a postback may go to (userinfo, or a host or "
			 "port that cannot be connected to)", bad);
		respond_error(w, 400, err);
		pb_ingest_req_free(&r);
		return;
	}
	if (rc == PB_ERR_LIMIT) {
		snprintf(err, sizeof(err), "the %zu postbacks would take over %ld "
			 "bytes; send fewer objects a request", r.count,
			 cfg.max_request_job_bytes);
		respond_error(w, 413, err);
		pb_ingest_req_free(&r);
		return;
	}
	if (rc != PB_OK) {
		respond_error(w, 500, "out of memory building the postbacks");
		pb_ingest_req_free(&r);
		return;
	}
	eq = (pb_enqueue_req){ &keys, request_id, w->jobs.data, hlen,
			       w->jobs.data + hlen, w->jobs.len - hlen, w->offs,
			       w->lens, r.count, w->runs, nruns, idem, w->client,
			       shard_share(w->share), 0 };
	t0 = pb_now_us();
	if ((shard = enqueue_routed(w, &eq, idem, &res, &mem_high)) < 0) {
		shard_conn *sc = &w->shards[mem_high];

		snprintf(err, sizeof(err), "Redis (shard %s) uses %ld of its %ld "
			 "bytes (redis_memory_high_pct %ld): nothing queued until "
			 "the agents drain it", cfg.shards.name[mem_high],
			 sc->mem_used, sc->mem_max, cfg.redis_memory_high_pct);
		pb_warn("%s", err);
		im_memory_high();
		respond_unavailable(w, 1, -1, err);
		pb_ingest_req_free(&r);
		return;
	}
	im_enqueued(w->client, &res, r.count, (double)(pb_now_us() - t0) / 1e6);
	answer_enqueue(w, &res, &eq, r.count, shard);
	pb_debug("request %s: %zu postbacks, status %d", request_id, r.count,
		 (int)res.status);
	pb_ingest_req_free(&r);
}

/* The path without the query string, for routing. */
static int path_is(const char *uri, const char *path)
{
	size_t n = strlen(path);

	return strncmp(uri, path, n) == 0 && (uri[n] == '\0' || uri[n] == '?');
}

static void handle(worker *w)
{
	const char *uri = FCGX_GetParam("DOCUMENT_URI", w->req.envp);

	if (uri == NULL)
		uri = FCGX_GetParam("REQUEST_URI", w->req.envp);
	if (uri == NULL)
		uri = "";
	if (path_is(uri, "/ingest") || path_is(uri, "/ingest.php") ||
	    path_is(uri, "/i")) {
		handle_ingest(w);
	} else if (path_is(uri, "/health")) {
		pb_buf_reset(&w->out);
		pb_buf_puts(&w->out, "{\"status\":\"ok\"}\n");
		respond(w, 200, NULL);
		return; /* HAProxy's checks: not requests of a client */
	} else {
		respond_error(w, 404, "no such path; POST to /ingest");
	}
	im_answered(w->status);
}

/* ---- threads and shutdown ----------------------------------------------- */

/*
 * Wait until fd has input; 1 means serve it, 0 means this thread is done.
 * Once stopping, a thread without a connection is done at once, and one
 * holding a kept-alive connection keeps answering on it until the drain
 * deadline: HAProxy may be sending on it right now, and FastCGI has no way
 * to say "going away". By the deadline HAProxy's checks, failing since the
 * listener closed, have marked this node down and it sends nothing more.
 */
static int wait_readable(int fd, int kept)
{
	struct pollfd p[2] = { { fd, POLLIN, 0 }, { wake_pipe[0], POLLIN, 0 } };

	for (;;) {
		int n, timeout = -1, nfds = 2;

		if (stopping) {
			int64_t left = drain_deadline - pb_now_ms();
			if (!kept || left <= 0)
				return 0;
			timeout = (int)left;
			nfds = 1; /* the pipe stays readable: watch the socket only */
		}
		n = poll(p, (nfds_t)nfds, timeout);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return 0;
		if (p[0].revents)
			return 1;
		/* A timeout, or the wake-up: look at stopping again. */
	}
}

static void *worker_main(void *arg)
{
	worker *w = arg;
	char name[64];
	int s;

	for (s = 0; s < cfg.shards.n; s++) {
		snprintf(name, sizeof(name), "ingest-%s-%d-%d", id_prefix, w->index, s);
		pb_redis_init_shard(&w->shards[s].redis, &cfg, name, s);
		w->shards[s].redis.stop = &stopping;
		if (cfg.shards.n > 1) /* the next shard is the wait (route()) */
			w->shards[s].redis.failover_wait_ms = 0;
	}
	w->turn = (unsigned)w->index;
	FCGX_InitRequest(&w->req, listen_fd, FCGI_FAIL_ACCEPT_ON_INTR);
	for (;;) {
		/* A kept-alive connection brings the next request on its own fd. */
		int fd = w->req.ipcFd >= 0 ? w->req.ipcFd : listen_fd;

		if (!wait_readable(fd, w->req.ipcFd >= 0))
			break;
		if (FCGX_Accept_r(&w->req) < 0) {
			if (stopping)
				break;
			continue; /* a peer that went away, or EAGAIN: take the next */
		}
		handle(w);
		if (stopping) /* answered; now close, and HAProxy goes elsewhere */
			w->req.keepConnection = 0;
		FCGX_Finish_r(&w->req);
	}
	FCGX_Free(&w->req, 1);
	for (s = 0; s < cfg.shards.n; s++)
		pb_redis_close(&w->shards[s].redis);
	return NULL;
}

static int start_workers(worker *ws, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		ws[i].index = i;
		if ((ws[i].shards = calloc((size_t)cfg.shards.n,
					   sizeof(*ws[i].shards))) == NULL ||
		    (ws[i].dests = calloc(1, sizeof(*ws[i].dests))) == NULL) {
			pb_error("out of memory for thread %d of %d", i + 1, n);
			return i;
		}
		pb_buf_init(&ws[i].body, (size_t)cfg.max_body_bytes);
		pb_buf_init(&ws[i].jobs, (size_t)cfg.max_request_job_bytes);
		/* The answer: an id per object at most, and a message. */
		pb_buf_init(&ws[i].out, (size_t)cfg.max_objects * (PB_ID_MAX + 3) + 8192);
		pb_buf_init(&ws[i].url, 65536);
		if (pthread_create(&ws[i].tid, NULL, worker_main, &ws[i]) != 0) {
			pb_error("cannot start thread %d of %d", i + 1, n);
			return i;
		}
	}
	return n;
}

static void free_worker(worker *w)
{
	free(w->shards);
	free(w->dests);
	pb_buf_free(&w->body);
	pb_buf_free(&w->jobs);
	pb_buf_free(&w->out);
	free(w->offs);
	free(w->lens);
	free(w->runs);
	pb_buf_free(&w->url);
}

/*
 * The next signal into *sig: 1, or 0 when the watchdog's half interval
 * passed first. Each turn pings the watchdog, once the workers are all
 * running: what it guards is this process hanging as a whole; a Redis that
 * is down is answered with 503s, not with a restart.
 */
static int wait_signal(const sigset_t *sigs, int *sig)
{
	long wd = pb_sd_watchdog_ms();
	struct timespec ts = { wd / 4000, (wd / 4 % 1000) * 1000000L };

	pb_sd_alive();
	if (wd == 0)
		return sigwait(sigs, sig) == 0;
	*sig = sigtimedwait(sigs, NULL, &ts);
	return *sig > 0;
}

/* This node in `pbctl status`: "<host name>/<listen>" (two nodes may
 * share a host, never a listen address). */
static const char *node_name(void)
{
	static char name[300];
	char host[256];

	if (gethostname(host, sizeof(host)) != 0)
		pb_strlcpy(host, "unknown", sizeof(host));
	host[sizeof(host) - 1] = '\0';
	snprintf(name, sizeof(name), "%s/%s", host, cfg.listen);
	return name;
}

static void make_id_prefix(void)
{
	uint64_t r = 0, top = 1;
	size_t i;

	if (pb_random_bytes((unsigned char *)&r, sizeof(r)) != PB_OK) /* never on Linux >= 3.17 */
		r = 0;
	for (i = 0; i < ID_PREFIX_DIGITS; i++)
		top *= 62;
	pb_base62(id_prefix, sizeof(id_prefix), r % top, ID_PREFIX_DIGITS);
}

int main(int argc, char **argv)
{
	sigset_t sigs;
	worker *ws;
	int sig, started, i, rc;
	char name[64];

	if ((rc = pb_config_daemon(&cfg, PB_FOR_INGEST, "pb-ingest",
				   "FastCGI ingest node: takes postback requests "
				   "from HAProxy and queues them in Redis.",
				   argc, argv)) != PB_CONFIG_RUN)
		return pb_config_exit_status(rc);
	if (pb_keys_init(&keys, cfg.key_prefix) != PB_OK) {
		pb_error("key_prefix '%s': key names too long", cfg.key_prefix);
		return 1;
	}
	json_object_seed(0); /* before threads: jansson's rule */
	make_id_prefix();
	/* Every thread inherits this mask; only sigwait() below sees them. */
	pb_block_signals(&sigs);

	if (FCGX_Init() != 0) {
		pb_error("FCGX_Init failed");
		return 1;
	}
	if ((listen_fd = FCGX_OpenSocket(cfg.listen, (int)cfg.backlog)) < 0) {
		pb_error("cannot listen on %s: %s", cfg.listen, strerror(errno));
		return 1;
	}
	if (pipe(wake_pipe) != 0) {
		pb_error("pipe: %s", strerror(errno));
		return 1;
	}
	if ((ws = calloc((size_t)cfg.threads, sizeof(*ws))) == NULL) {
		pb_error("out of memory for %ld threads", cfg.threads);
		return 1;
	}
	snprintf(name, sizeof(name), "ingest-%s-commit", id_prefix);
	if (im_start(cfg.metrics_listen, &cfg.shards, cfg.metrics_clients) != PB_OK ||
	    pb_clients_start(&cfg, &keys, node_name(), &stopping) != PB_OK ||
	    pb_enqueue_group_start(&cfg, name) != PB_OK) {
		free(ws);
		return 1;
	}
	started = start_workers(ws, (int)cfg.threads);
	pb_info("listening on %s with %d threads, %d shard(s) '%s' via %s, "
		"MAX_QUEUE_SIZE %ld, WAIT %ld replicas/%ld ms, client keys %s",
		cfg.listen, started, cfg.shards.n, cfg.master_name, cfg.sentinels,
		cfg.max_queue_size, cfg.wait_replicas, cfg.wait_timeout_ms,
		cfg.require_client_key ? "required" : "optional");
	if (cfg.closed_shards[0])
		pb_info("closed to new requests (to retire them): shard(s) '%s'",
			cfg.closed_shards);

	if (started == cfg.threads)
		pb_sd_ready("answering on the FastCGI socket");
	while (started == cfg.threads) {
		if (!wait_signal(&sigs, &sig))
			continue;
		if (sig == SIGHUP) {
			pb_info("SIGHUP ignored: restart to change settings");
			continue;
		}
		break;
	}
	pb_info("%s: no new connections; finishing requests in progress and "
		"answering on open connections for %ld ms, then exiting",
		started == cfg.threads ? strsignal(sig) : "startup failed",
		cfg.shutdown_drain_ms);
	pb_sd_stopping("draining: answering on open connections");
	drain_deadline = pb_now_ms() + cfg.shutdown_drain_ms;
	stopping = 1;
	if (write(wake_pipe[1], "x", 1) < 0)
		pb_warn("wake-up pipe: %s", strerror(errno));
	/* Wakes threads blocked in accept(): it fails with EINVAL. */
	shutdown(listen_fd, SHUT_RDWR);
	for (i = 0; i < started; i++) {
		pthread_join(ws[i].tid, NULL);
		free_worker(&ws[i]);
	}
	pb_enqueue_group_stop(); /* after the last request it had to commit */
	free(ws);
	close(listen_fd);
	pb_clients_stop();
	im_stop();
	pb_info("stopped");
	return started == cfg.threads ? 0 : 1;
}
