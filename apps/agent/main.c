/*
 * pb-agent - the delivery agent.
 *
 * Four threads, each with one job:
 *   - the fetcher takes postbacks from Redis into this agent's processing
 *     list (BLMOVE, then pipelined LMOVEs for a batch), never holding more
 *     than cfg.concurrency, and keeps the heartbeat, the reaper of dead
 *     agents and the mover of due retries going;
 *   - the deliverer (the main thread) runs every HTTP request on one curl
 *     multi handle, so connections are reused, and writes one log line per
 *     attempt;
 *   - the recorder records the outcomes in Redis, all that finished while
 *     its last round trip was under way in one pipeline: a round trip
 *     includes the master's fsync, and HTTP work must not stop for it;
 *   - the signal thread turns SIGTERM/SIGINT into a graceful stop and
 *     SIGHUP into reopening the delivery log (for logrotate).
 * The two Redis users have their own connections (pb_redis is per thread).
 *
 * A postback stays in Redis, in the processing list, until its outcome is
 * recorded there; this process only ever holds copies.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "buf.h"
#include "config.h"
#include "deadletter.h"
#include "job.h"
#include "log.h"
#include "netpolicy.h"
#include "pb.h"
#include "queue.h"
#include "redis.h"
#include "retry.h"
#include "template.h"

#define TICK_MS 250          /* fetcher's longest block; promote period */
#define HEARTBEAT_MS 1000
#define OUTCOME_RETRY_MS 200 /* pause before resending outcomes after a failure */

typedef struct job {
	struct job *next;   /* in the handoff or outcome list */
	struct job *run_prev, *run_next; /* in the running list */
	char *raw;          /* the job exactly as it is in Redis */
	size_t raw_len;
	pb_job j;           /* decoded; points into raw */
	CURL *easy;
	struct curl_slist *headers;
	pb_buf url;
	pb_buf resp;        /* the first log_body_bytes of the answer */
	int64_t started_ms;
	int refused;        /* the destination address was not allowed */
	long status;
	int transport_ok;
	char error[CURL_ERROR_SIZE];
	/* The outcome, once known, waiting to be recorded in Redis. */
	enum pb_outcome outcome;
	pb_buf retry_job;   /* PB_RETRY: the job with attempts + 1 */
	long long delay_ms;
	int handback;       /* stopping: give it back untried */
} job;

static pb_config cfg;
static pb_queue_keys keys;
static pb_netpolicy policy;
static CURLM *multi;
static FILE *dlog;

/* Shared between the threads, under mu. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t slots_cv = PTHREAD_COND_INITIALIZER;
static pthread_cond_t record_cv = PTHREAD_COND_INITIALIZER;
static job *handoff;        /* taken by the fetcher, not yet started */
static job *outcomes;       /* finished, outcome not yet recorded */
static long held;           /* taken and not yet recorded */
static volatile int stopping;
static volatile int reopen_log;
static int fetcher_done;
static volatile int recorder_quit; /* no more outcomes will come */

/* Deliverer only. */
static job *run_head;       /* HTTP requests under way */
static long running;

static struct {
	unsigned long long delivered, retried, dead, handed_back;
} stats;

/* Postbacks taken and not yet recorded, as the threads share them. */
static long held_now(void)
{
	long h;

	pthread_mutex_lock(&mu);
	h = held;
	pthread_mutex_unlock(&mu);
	return h;
}

/* ---- jobs -------------------------------------------------------------- */

static job *job_new(const char *raw, size_t len)
{
	job *jb = calloc(1, sizeof(*jb));

	if (jb == NULL || (jb->raw = malloc(len + 1)) == NULL) {
		free(jb);
		return NULL;
	}
	memcpy(jb->raw, raw, len);
	jb->raw[len] = '\0';
	jb->raw_len = len;
	pb_buf_init(&jb->url, 65536);
	pb_buf_init(&jb->resp, (size_t)cfg.log_body_bytes);
	pb_buf_init(&jb->retry_job, 0);
	return jb;
}

/*
 * Easy handles are kept and reset for the next delivery, not cleaned up:
 * a new one costs a dozen allocations, its buffers among them (measured:
 * malloc and free were a fifth of the agent's CPU time). Deliverer only,
 * like the multi handle.
 */
static CURL **easy_pool;
static long easy_pooled;

static CURL *get_easy(void)
{
	CURL *e;

	if (easy_pooled == 0)
		return curl_easy_init();
	e = easy_pool[--easy_pooled];
	curl_easy_reset(e);
	return e;
}

static void release_easy(job *jb)
{
	if (jb->easy == NULL)
		return;
	curl_multi_remove_handle(multi, jb->easy);
	if (easy_pool && easy_pooled < cfg.concurrency)
		easy_pool[easy_pooled++] = jb->easy;
	else
		curl_easy_cleanup(jb->easy);
	jb->easy = NULL;
}

static void free_easy_pool(void)
{
	while (easy_pooled > 0)
		curl_easy_cleanup(easy_pool[--easy_pooled]);
	free(easy_pool);
	easy_pool = NULL;
}

/* Any thread: the HTTP request is released before a job is recorded. */
static void job_free(job *jb)
{
	curl_slist_free_all(jb->headers);
	pb_buf_free(&jb->url);
	pb_buf_free(&jb->resp);
	pb_buf_free(&jb->retry_job);
	free(jb->raw);
	free(jb);
}

/* ---- the delivery log -------------------------------------------------- */

static int open_log(void)
{
	FILE *f;

	if (strcmp(cfg.delivery_log, "-") == 0) {
		dlog = stdout;
		return 0;
	}
	if ((f = fopen(cfg.delivery_log, "a")) == NULL) {
		pb_error("delivery log %s: %s", cfg.delivery_log, strerror(errno));
		return -1;
	}
	if (dlog && dlog != stdout)
		fclose(dlog);
	dlog = f;
	return 0;
}

/*
 * One line per attempt, logfmt, so both people and grep can read it:
 * time id attempt method url status time_ms outcome [retry_in_ms] [error] body
 */
static void log_attempt(const job *jb, int64_t elapsed_ms)
{
	static const char *names[] = { "delivered", "retry", "dead" };
	static pb_buf line; /* deliverer only; kept, so no allocation per line */
	char ts[32];

	pb_buf_reset(&line);
	pb_format_utc_ms(ts, sizeof(ts), pb_wall_ms());
	pb_buf_printf(&line, "%s id=%s attempt=%u method=%s url=\"", ts, jb->j.id,
		      jb->j.attempts + 1, pb_method_name(jb->j.method));
	pb_log_escape(&line, jb->url.data, jb->url.len, jb->url.len);
	pb_buf_printf(&line, "\" status=%ld time_ms=%lld outcome=%s", jb->status,
		      (long long)elapsed_ms, names[jb->outcome]);
	if (jb->outcome == PB_RETRY)
		pb_buf_printf(&line, " retry_in_ms=%lld", jb->delay_ms);
	if (jb->error[0]) {
		pb_buf_puts(&line, " error=\"");
		pb_log_escape(&line, jb->error, strlen(jb->error), 512);
		pb_buf_putc(&line, '"');
	}
	pb_buf_puts(&line, " body=\"");
	pb_log_escape(&line, pb_buf_str(&jb->resp), jb->resp.len, jb->resp.len);
	pb_buf_puts(&line, "\"\n");
	fwrite(line.data, 1, line.len, dlog);
	/* A copy for the journal; flushed with dlog once per loop turn. */
	if (cfg.delivery_log_stdout && dlog != stdout)
		fwrite(line.data, 1, line.len, stdout);
}

/* ---- HTTP ---------------------------------------------------------------- */

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	job *jb = arg;
	size_t len = size * n, room = jb->resp.limit - jb->resp.len;

	/* Keep what the log shows; read (and drop) the rest. */
	pb_buf_append(&jb->resp, p, len < room ? len : room);
	return len;
}

static curl_socket_t on_open_socket(void *arg, curlsocktype purpose,
				    struct curl_sockaddr *a)
{
	job *jb = arg;

	(void)purpose;
	if (!pb_netpolicy_allows(&policy, &a->addr)) {
		jb->refused = 1;
		return CURL_SOCKET_BAD;
	}
	return socket(a->family, a->socktype, a->protocol);
}

static int setup_easy(job *jb)
{
	CURL *e = get_easy();
	char hdr[PB_ID_MAX + 32];

	if (e == NULL)
		return PB_ERR_NOMEM;
	jb->easy = e;
	snprintf(hdr, sizeof(hdr), "X-Postback-Id: %s", jb->j.id);
	jb->headers = curl_slist_append(NULL, hdr);
	if (jb->j.method == 'P')
		jb->headers = curl_slist_append(jb->headers,
						"Content-Type: application/json");
	/* No "Expect: 100-continue" round trip for small bodies. */
	jb->headers = curl_slist_append(jb->headers, "Expect:");
	curl_easy_setopt(e, CURLOPT_URL, jb->url.data);
	curl_easy_setopt(e, CURLOPT_PRIVATE, jb);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, jb->headers);
	curl_easy_setopt(e, CURLOPT_USERAGENT, cfg.user_agent);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, jb);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, jb);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, jb->error);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, cfg.http_connect_timeout_ms);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, cfg.http_timeout_ms);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	/* Redirects are not followed: a 3xx is a final answer. */
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	if (jb->j.method == 'P') {
		curl_easy_setopt(e, CURLOPT_POST, 1L);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, jb->j.data);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)jb->j.data_len);
	}
	return PB_OK;
}

/* Decide what happens next; the outcome waits in jb for Redis. */
static void decide(job *jb, int64_t retry_after_ms)
{
	unsigned attempts = jb->j.attempts + 1;

	jb->outcome = pb_classify(jb->status, jb->transport_ok, jb->refused);
	if (jb->outcome == PB_RETRY && attempts >= (unsigned)cfg.max_attempts)
		jb->outcome = PB_DEAD;
	if (jb->outcome == PB_RETRY) {
		jb->delay_ms = pb_retry_delay_ms(attempts, cfg.backoff_base_ms,
						 cfg.backoff_cap_ms, retry_after_ms,
						 pb_random_below(UINT64_MAX));
		if (pb_job_reencode(&jb->retry_job, &jb->j, attempts) != PB_OK)
			jb->outcome = PB_DEAD;
	}
}

/* For the recorder; the job is its from here on. */
static void queue_outcome(job *jb)
{
	release_easy(jb);
	pthread_mutex_lock(&mu);
	jb->next = outcomes;
	outcomes = jb;
	pthread_cond_signal(&record_cv);
	pthread_mutex_unlock(&mu);
}

/* A job that cannot even be tried (bad encoding, bad template). */
static void fail_untried(job *jb, const char *why)
{
	pb_strlcpy(jb->error, why, sizeof(jb->error));
	jb->outcome = PB_DEAD;
	if (jb->j.id[0] == '\0')
		pb_strlcpy(jb->j.id, "?", sizeof(jb->j.id));
	log_attempt(jb, 0);
	queue_outcome(jb);
}

static void start(job *jb)
{
	json_t *data;

	if (pb_job_decode(&jb->j, jb->raw, jb->raw_len) != PB_OK) {
		pb_error("malformed job in Redis, dead-lettered: %.80s", jb->raw);
		fail_untried(jb, "malformed job");
		return;
	}
	data = json_loadb(jb->j.data, jb->j.data_len, 0, NULL);
	if (data == NULL ||
	    pb_template_fill(&jb->url, jb->j.url, jb->j.url_len, data,
			     cfg.unmatched_default) != PB_OK) {
		json_decref(data);
		fail_untried(jb, "cannot fill the URL template");
		return;
	}
	json_decref(data);
	if (setup_easy(jb) != PB_OK ||
	    curl_multi_add_handle(multi, jb->easy) != CURLM_OK) {
		fail_untried(jb, "cannot start the HTTP request");
		return;
	}
	jb->started_ms = pb_now_ms();
	jb->run_prev = NULL;
	jb->run_next = run_head;
	if (run_head)
		run_head->run_prev = jb;
	run_head = jb;
	running++;
}

static void unlink_running(job *jb)
{
	if (jb->run_prev)
		jb->run_prev->run_next = jb->run_next;
	else
		run_head = jb->run_next;
	if (jb->run_next)
		jb->run_next->run_prev = jb->run_prev;
	jb->run_prev = jb->run_next = NULL;
	running--;
}

static void finish(job *jb, CURLcode result)
{
	curl_off_t retry_after = 0;
	int64_t elapsed = pb_now_ms() - jb->started_ms;

	jb->transport_ok = result == CURLE_OK;
	if (jb->transport_ok)
		curl_easy_getinfo(jb->easy, CURLINFO_RESPONSE_CODE, &jb->status);
	else if (jb->refused)
		snprintf(jb->error, sizeof(jb->error),
			 "destination address refused (allow_private is off)");
	else if (jb->error[0] == '\0')
		pb_strlcpy(jb->error, curl_easy_strerror(result), sizeof(jb->error));
	curl_easy_getinfo(jb->easy, CURLINFO_RETRY_AFTER, &retry_after);
	if (retry_after > cfg.retry_after_max_s)
		retry_after = cfg.retry_after_max_s;
	unlink_running(jb);
	decide(jb, (int64_t)retry_after * 1000);
	log_attempt(jb, elapsed);
	queue_outcome(jb);
}

static void collect_finished(void)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(multi, &left)) != NULL) {
		job *jb = NULL;

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&jb);
		finish(jb, m->data.result);
	}
}

/* ---- recording outcomes in Redis --------------------------------------- */

static int append_outcome(pb_redis *r, job *jb)
{
	pb_dead d;
	char *s;
	int rc;

	if (jb->handback)
		return pb_queue_append_handback(r, &keys, jb->raw, jb->raw_len);
	switch (jb->outcome) {
	case PB_DELIVERED:
		return pb_queue_append_ack(r, &keys, jb->raw, jb->raw_len);
	case PB_RETRY:
		return pb_queue_append_retry(r, &keys, jb->raw, jb->raw_len,
					     jb->retry_job.data, jb->retry_job.len,
					     jb->delay_ms);
	case PB_DEAD:
		break;
	}
	d = (pb_dead){ jb->raw, jb->raw_len, jb->j.id, (long long)jb->j.attempts + 1,
		       jb->status, jb->error, pb_wall_ms(), keys.agent_id };
	if ((s = pb_dead_encode(&d)) == NULL)
		return PB_ERR_NOMEM;
	rc = pb_queue_append_dead(r, &keys, jb->raw, jb->raw_len, s, strlen(s));
	free(s);
	return rc;
}

static void count(const job *jb)
{
	if (jb->handback)
		stats.handed_back++;
	else if (jb->outcome == PB_DELIVERED)
		stats.delivered++;
	else if (jb->outcome == PB_RETRY)
		stats.retried++;
	else
		stats.dead++;
}

/*
 * Send a list of outcomes in one pipeline. On any failure all of them go
 * again later: the scripts remove from the processing list first, so
 * repeating one that already landed changes nothing.
 */
static int record_list(pb_redis *r, job *list)
{
	redisReply *reply;
	job *jb;

	for (jb = list; jb; jb = jb->next)
		if (append_outcome(r, jb) != PB_OK)
			return PB_ERR_IO;
	for (jb = list; jb; jb = jb->next) {
		if (pb_redis_get_reply(r, &reply) != PB_OK)
			return PB_ERR_IO;
		if (reply->type == REDIS_REPLY_ERROR) {
			pb_error("recording the outcome of %s: %s", jb->j.id, reply->str);
			freeReplyObject(reply);
			return PB_ERR_IO; /* and drop the connection: unread replies */
		}
		freeReplyObject(reply);
	}
	return PB_OK;
}

/* Wait for outcomes; NULL once there will be no more. */
static job *take_outcomes(void)
{
	job *list;

	pthread_mutex_lock(&mu);
	while (outcomes == NULL && !recorder_quit)
		pthread_cond_wait(&record_cv, &mu);
	list = outcomes;
	outcomes = NULL;
	pthread_mutex_unlock(&mu);
	return list;
}

/* Put back outcomes that could not be recorded, ahead of newer ones. */
static void untake_outcomes(job *list)
{
	job *last = list;

	while (last->next)
		last = last->next;
	pthread_mutex_lock(&mu);
	last->next = outcomes;
	outcomes = list;
	pthread_mutex_unlock(&mu);
}

static void *recorder_main(void *arg)
{
	pb_redis *r = arg;
	job *list, *jb, *nx;
	long n;

	while ((list = take_outcomes()) != NULL) {
		for (n = 0, jb = list; jb; jb = jb->next)
			n++;
		if (record_list(r, list) != PB_OK) {
			pb_warn("cannot record %ld outcome(s) yet, will retry: %s", n,
				r->errstr);
			pb_redis_drop(r);
			untake_outcomes(list);
			if (recorder_quit)
				break; /* they stay in our processing list */
			pb_sleep_ms(OUTCOME_RETRY_MS, &recorder_quit);
			continue;
		}
		for (jb = list; jb; jb = nx) {
			nx = jb->next;
			count(jb);
			job_free(jb);
		}
		pthread_mutex_lock(&mu);
		held -= n;
		pthread_cond_broadcast(&slots_cv);
		pthread_mutex_unlock(&mu);
		curl_multi_wakeup(multi); /* the deliverer may be waiting for this */
	}
	return NULL;
}

/* ---- the fetcher thread ------------------------------------------------ */

/*
 * Since when our heartbeats have been written without a failure (0: the
 * last one failed). While Redis refuses writes (no master, NOREPLICAS),
 * no agent can refresh its heartbeat and every one expires; reaping then,
 * as soon as writes return, would take live agents' work. So an agent reaps
 * others only after its own heartbeats have succeeded for a whole TTL.
 */
static int64_t beats_ok_since;

static void heartbeat(pb_redis *r)
{
	char info[160];

	snprintf(info, sizeof(info), "{\"pid\":%d,\"held\":%ld,\"at\":%lld}",
		 (int)getpid(), held_now(), (long long)pb_wall_ms());
	if (pb_queue_heartbeat(r, &keys, cfg.heartbeat_ttl_ms, info) != PB_OK) {
		pb_warn("heartbeat: %s", r->errstr);
		beats_ok_since = 0;
	} else if (beats_ok_since == 0) {
		beats_ok_since = pb_now_ms();
	}
}

static void housekeeping(pb_redis *r, int64_t *next_beat, int64_t *next_reap)
{
	int64_t now = pb_now_ms();
	long long moved = 0;

	if (now >= *next_beat) {
		heartbeat(r);
		*next_beat = now + HEARTBEAT_MS;
	}
	if (now >= *next_reap && beats_ok_since &&
	    now - beats_ok_since >= cfg.heartbeat_ttl_ms) {
		if (pb_queue_reap(r, &keys, &moved) == PB_OK && moved > 0)
			pb_warn("reclaimed %lld postback(s) from agents whose heartbeat "
				"expired", moved);
		*next_reap = now + cfg.heartbeat_ttl_ms / 3;
	}
	if (pb_queue_promote(r, &keys, 1000, &moved) == PB_OK && moved > 0)
		pb_debug("moved %lld due retries to the queue", moved);
}

/* Wait for free slots; returns how many may be taken (0: stopping). */
static int wait_for_slots(void)
{
	int free_slots = 0;
	struct timespec ts;

	pthread_mutex_lock(&mu);
	while (!stopping && (free_slots = (int)(cfg.concurrency - held)) <= 0) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += TICK_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L)
			ts.tv_sec++, ts.tv_nsec -= 1000000000L;
		pthread_cond_timedwait(&slots_cv, &mu, &ts);
		if ((free_slots = (int)(cfg.concurrency - held)) <= 0)
			break; /* time for housekeeping */
	}
	pthread_mutex_unlock(&mu);
	if (stopping || free_slots < 0)
		return 0;
	return free_slots < cfg.fetch_batch ? free_slots : (int)cfg.fetch_batch;
}

static void hand_over(redisReply **got, int n)
{
	job *list = NULL;
	int i, taken = 0;

	for (i = 0; i < n; i++) {
		job *jb = job_new(got[i]->str, got[i]->len);
		freeReplyObject(got[i]);
		if (jb == NULL) {
			/* Still in our processing list: reclaimed at restart. */
			pb_error("out of memory: a postback stays in %s", keys.processing);
			continue;
		}
		jb->next = list;
		list = jb;
		taken++;
	}
	pthread_mutex_lock(&mu);
	while (list) {
		job *nx = list->next;
		list->next = handoff;
		handoff = list;
		list = nx;
	}
	held += taken;
	pthread_mutex_unlock(&mu);
	curl_multi_wakeup(multi);
}

/*
 * After a failover the new master's copy of our processing list may hold
 * entries we no longer have: an acknowledgement that reached the old master
 * but not the replica, or an LMOVE whose reply was lost. Take nothing until
 * every postback we hold is recorded on the new master; then whatever is
 * still in the list is stale and goes back to the queue (delivered already:
 * one duplicate; never delivered: recovered).
 */
static void reconcile(pb_redis *r, int64_t *next_beat, int64_t *next_reap)
{
	long long moved = 0;

	pb_warn("master is now %s:%d: finishing what is in flight, then "
		"returning what the failover left in %s", r->master.host,
		r->master.port, keys.processing);
	while (held_now() > 0 && !stopping) {
		housekeeping(r, next_beat, next_reap);
		pb_sleep_ms(TICK_MS, &stopping);
	}
	if (stopping) /* the next start takes back the list */
		return;
	if (pb_queue_reclaim_own(r, &keys, &moved) != PB_OK)
		pb_warn("reconciling %s: %s", keys.processing, r->errstr);
	else if (moved > 0)
		pb_warn("returned %lld postback(s) left in %s by the failover",
			moved, keys.processing);
}

static void *fetcher_main(void *arg)
{
	pb_redis *r = arg;
	int64_t next_beat = 0, next_reap = 0;
	unsigned seen_changes = r->master_changes;
	redisReply **got = calloc((size_t)cfg.fetch_batch, sizeof(*got)); /* NOLINT(bugprone-sizeof-expression): pointers */

	while (!stopping && got) {
		int n = 0, want;

		housekeeping(r, &next_beat, &next_reap);
		if (r->master_changes != seen_changes) {
			seen_changes = r->master_changes;
			reconcile(r, &next_beat, &next_reap);
			continue;
		}
		if ((want = wait_for_slots()) == 0)
			continue;
		if (pb_queue_take(r, &keys, want, TICK_MS, got, &n) != PB_OK) {
			pb_warn("taking postbacks: %s", r->errstr);
			pb_sleep_ms(TICK_MS, &stopping);
		}
		if (n > 0)
			hand_over(got, n);
	}
	free(got);
	pthread_mutex_lock(&mu);
	fetcher_done = 1;
	pthread_mutex_unlock(&mu);
	curl_multi_wakeup(multi);
	return NULL;
}

/* ---- signals ------------------------------------------------------------ */

static sigset_t sigs;

static void *signal_main(void *arg)
{
	int sig;

	(void)arg;
	for (;;) {
		if (sigwait(&sigs, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			reopen_log = 1;
		} else {
			pb_info("%s: no new postbacks; finishing those in flight "
				"(grace %ld ms)", strsignal(sig), cfg.shutdown_grace_ms);
			stopping = 1;
			pthread_cond_broadcast(&slots_cv);
		}
		curl_multi_wakeup(multi);
	}
	return NULL;
}

/* ---- the delivery loop --------------------------------------------------- */

static void start_handed_over(void)
{
	job *list;

	pthread_mutex_lock(&mu);
	list = handoff;
	handoff = NULL;
	pthread_mutex_unlock(&mu);
	while (list) {
		job *nx = list->next;
		start(list);
		list = nx;
	}
}

/* Grace is over: stop what is still running and give it back. */
static void abandon_running(void)
{
	while (run_head) {
		job *jb = run_head;

		unlink_running(jb);
		jb->handback = 1;
		queue_outcome(jb);
	}
}

/* Everything taken is recorded and the fetcher has stopped. */
static int all_done(void)
{
	int done;

	pthread_mutex_lock(&mu);
	done = fetcher_done && handoff == NULL && held == 0;
	pthread_mutex_unlock(&mu);
	return done;
}

static void deliver_loop(void)
{
	int64_t deadline = 0, now;
	int still;

	for (;;) {
		if (reopen_log) {
			reopen_log = 0;
			open_log();
		}
		start_handed_over();
		curl_multi_perform(multi, &still);
		collect_finished();
		fflush(dlog);
		if (cfg.delivery_log_stdout)
			fflush(stdout);
		now = pb_now_ms();
		if (stopping) {
			if (deadline == 0)
				deadline = now + cfg.shutdown_grace_ms;
			if (running > 0 && now >= deadline) {
				pb_warn("grace period over: handing back %ld postback(s) "
					"in flight", running);
				abandon_running();
				continue;
			}
			if (all_done())
				return;
			/* Redis gone at shutdown: what is left stays in our
			 * processing list, reclaimed when we (or a reaper) return. */
			if (running == 0 && held_now() > 0 &&
			    now >= deadline + cfg.failover_wait_ms) {
				pb_error("cannot record %s: left in %s for reclaiming",
					 "outcomes", keys.processing);
				return;
			}
		}
		curl_multi_poll(multi, NULL, 0, 1000, NULL);
	}
}

static int start_thread(pthread_t *t, void *(*fn)(void *), void *arg)
{
	if (pthread_create(t, NULL, fn, arg) != 0) {
		pb_error("cannot start a thread: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static int setup(void)
{
	char host[128];

	if (cfg.agent_id[0] == '\0') {
		if (gethostname(host, sizeof(host)) != 0)
			pb_strlcpy(host, "agent", sizeof(host));
		host[sizeof(host) - 1] = '\0';
		pb_strlcpy(cfg.agent_id, host, sizeof(cfg.agent_id));
	}
	if (strpbrk(cfg.agent_id, " \t:{}") != NULL) {
		pb_error("agent_id '%s': no spaces, ':' or braces", cfg.agent_id);
		return -1;
	}
	if (pb_netpolicy_init(&policy, cfg.allow_private,
			      cfg.allow_destinations) != 0) {
		pb_error("allow_destinations '%s': not a list of addresses or CIDR "
			 "ranges", cfg.allow_destinations);
		return -1;
	}
	if (pb_queue_keys_init(&keys, cfg.key_prefix, cfg.agent_id) != PB_OK) {
		pb_error("key_prefix '%s' with agent_id '%s': key names too long",
			 cfg.key_prefix, cfg.agent_id);
		return -1;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
	    (multi = curl_multi_init()) == NULL) {
		pb_error("cannot initialise libcurl");
		return -1;
	}
	curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, cfg.concurrency);
	/* Without a pool every delivery makes its own handle: slower, works. */
	easy_pool = calloc((size_t)cfg.concurrency, sizeof(*easy_pool));
	return open_log();
}

int main(int argc, char **argv)
{
	pb_redis fetch_redis, record_redis;
	pthread_t fetcher, recorder, sigthread;
	long long moved = 0;
	int rc;

	if ((rc = pb_config_daemon(&cfg, PB_FOR_AGENT, "pb-agent",
				   "Delivery agent: takes postbacks from Redis and "
				   "delivers them over HTTP.",
				   argc, argv)) >= 0)
		return rc;
	json_object_seed(0); /* before threads: jansson's rule */
	if (setup() != 0)
		return 1;
	/* Every thread inherits this mask; the signal thread takes them. */
	pb_block_signals(&sigs);

	pb_redis_init(&fetch_redis, &cfg, "agent-fetch");
	pb_redis_init(&record_redis, &cfg, "agent-record");
	fetch_redis.stop = &stopping;
	record_redis.stop = &recorder_quit;
	/* What a previous run of this agent held goes back to the queue. */
	while (pb_queue_reclaim_own(&fetch_redis, &keys, &moved) != PB_OK) {
		pb_warn("reclaiming %s: %s; trying again", keys.processing,
			fetch_redis.errstr);
		pb_sleep_ms(1000, NULL);
	}
	if (moved > 0)
		pb_warn("took back %lld postback(s) held by the previous run of %s",
			moved, cfg.agent_id);
	pb_info("agent %s: master '%s' via %s, %ld in flight, %ld attempts, "
		"log %s", cfg.agent_id, cfg.master_name, cfg.sentinels,
		cfg.concurrency, cfg.max_attempts, cfg.delivery_log);

	if (start_thread(&sigthread, signal_main, NULL) != 0 ||
	    start_thread(&fetcher, fetcher_main, &fetch_redis) != 0 ||
	    start_thread(&recorder, recorder_main, &record_redis) != 0)
		return 1;
	deliver_loop();
	pthread_join(fetcher, NULL);
	pthread_mutex_lock(&mu);
	recorder_quit = 1;
	pthread_cond_signal(&record_cv);
	pthread_mutex_unlock(&mu);
	pthread_join(recorder, NULL);
	record_redis.stop = NULL;
	pb_queue_leave(&record_redis, &keys);
	pb_info("stopped: %llu delivered, %llu retries scheduled, %llu dead, "
		"%llu handed back", stats.delivered, stats.retried, stats.dead,
		stats.handed_back);
	fflush(dlog);
	pb_redis_close(&fetch_redis);
	pb_redis_close(&record_redis);
	free_easy_pool();
	curl_multi_cleanup(multi);
	curl_global_cleanup();
	return 0;
}
