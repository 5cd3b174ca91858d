/*
 * deliver.c - the deliverer (the main thread): each postback taken becomes
 * an HTTP request on one curl multi handle; each attempt a log line; each
 * outcome a hand-over to the recorder.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <jansson.h>

#include "agent.h"
#include "agentmetrics.h"
#include "log.h"
#include "netpolicy.h"
#include "sdnotify.h"
#include "pb.h"
#include "policies.h"
#include "signers.h"
#include "template.h"

static CURLM *multi;
static pb_netpolicy policy;
static FILE *dlog;
/* Each attempt's destination, by its URL's scheme://authority: libcurl's
 * parse of it once per partner, not once per attempt (deliverer only). */
static pb_dest_cache dest_cache;
static job *run_head; /* HTTP requests under way */
static long running;

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

/* ---- the delivery log -------------------------------------------------- */

static int open_log(void)
{
	FILE *f;

	if (strcmp(cfg.delivery_log, "-") == 0) {
		dlog = stdout;
		return PB_OK;
	}
	if ((f = fopen(cfg.delivery_log, "a")) == NULL) {
		pb_error("delivery log %s: %s", cfg.delivery_log, strerror(errno));
		return PB_ERR_IO;
	}
	if (dlog && dlog != stdout)
		fclose(dlog);
	dlog = f;
	return PB_OK;
}

/*
 * One line per attempt, strict logfmt (every field key=value, a value with
 * a space or a quote in quotes) or, with delivery_log_format = json, one
 * JSON object a line with the same fields (numbers as numbers), so that
 * people, grep and a log pipeline can read it. Fields in this order:
 *   ts agent id client dest attempt age_ms method url status time_ms
 *   outcome [retry_in_ms] [error] body
 * client is the name of the key that queued it ("" for none, or a version
 * 1 job); dest its destination (scheme://host:port, "" when its URL has
 * none); age_ms the time since the ingest node acknowledged it (left out
 * for a version 1 job). log_redact_query logs each query value of the URL
 * as "*"; log_redact_body logs body_bytes (how many the answer had, up to
 * log_body_bytes) instead of the body. A postback dead without being sent
 * (expired, its data gone, malformed) is logged as what it is: attempts
 * (made so far) instead of attempt, sent=no, its outcome and error, and no
 * request or answer fields.
 */
typedef struct logline {
	pb_buf *b;
	int json;   /* delivery_log_format = json */
	int fields; /* written so far */
} logline;

static void lf_begin(logline *l, pb_buf *b)
{
	l->b = b;
	l->json = strcmp(cfg.delivery_log_format, "json") == 0;
	l->fields = 0;
	pb_buf_reset(b);
	if (l->json)
		pb_buf_putc(b, '{');
}

static void lf_key(logline *l, const char *key)
{
	if (l->fields++ > 0)
		pb_buf_putc(l->b, l->json ? ',' : ' ');
	pb_buf_printf(l->b, l->json ? "\"%s\":" : "%s=", key);
}

/* A value known to need no quoting in logfmt (ids, names, a time). */
static void lf_word(logline *l, const char *key, const char *v, size_t n)
{
	lf_key(l, key);
	if (l->json) {
		pb_buf_putc(l->b, '"');
		pb_json_escape(l->b, v, n, n);
	} else {
		pb_buf_append(l->b, v, n);
	}
	if (l->json)
		pb_buf_putc(l->b, '"');
}

/* Foreign text: quoted and escaped, at most max bytes. */
static void lf_text(logline *l, const char *key, const char *v, size_t n, size_t max)
{
	lf_key(l, key);
	pb_buf_putc(l->b, '"');
	if (l->json)
		pb_json_escape(l->b, v, n, max);
	else
		pb_log_escape(l->b, v, n, max);
	pb_buf_putc(l->b, '"');
}

static void lf_num(logline *l, const char *key, long long v)
{
	lf_key(l, key);
	pb_buf_printf(l->b, "%lld", v);
}

static void lf_end(logline *l, const job *jb)
{
	if (l->json)
		pb_buf_putc(l->b, '}');
	pb_buf_putc(l->b, '\n');
	if (pb_buf_err(l->b) != PB_OK) {
		pb_error("delivery log: the line of %s attempt %u is lost: out of memory",
			 jb->j.id, jb->j.attempts + 1);
		return;
	}
	fwrite(l->b->data, 1, l->b->len, dlog);
	/* A copy for the journal; flushed with dlog once per loop turn. */
	if (cfg.delivery_log_stdout && dlog != stdout)
		fwrite(l->b->data, 1, l->b->len, stdout);
}

static void log_head(logline *l, const job *jb, const char *dest)
{
	char ts[32];
	const char *client = jb->j.client ? jb->j.client : "";

	pb_format_utc_ms(ts, sizeof(ts), pb_wall_ms());
	lf_word(l, "ts", ts, strlen(ts));
	lf_word(l, "agent", cfg.agent_id, strlen(cfg.agent_id));
	lf_word(l, "id", jb->j.id, strlen(jb->j.id));
	lf_word(l, "client", client, jb->j.client_len);
	lf_word(l, "dest", dest, strlen(dest));
}

static void log_age(logline *l, const job *jb)
{
	if (jb->j.enqueued_ms > 0)
		lf_num(l, "age_ms", (long long)(pb_wall_ms() - jb->j.enqueued_ms));
}

static void log_error(logline *l, const job *jb)
{
	if (jb->error[0] != '\0')
		lf_text(l, "error", jb->error, strlen(jb->error), 512);
}

static void log_attempt(const job *jb, int64_t elapsed_ms)
{
	static const char *names[] = { "delivered", "retry", "dead" };
	static pb_buf line, url; /* deliverer only; kept, so no allocation per line */
	const char *method = pb_method_name(jb->j.method);
	logline l;

	am_attempt(jb, (double)elapsed_ms / 1000.0);
	lf_begin(&l, &line);
	log_head(&l, jb, jb->dname.name);
	lf_num(&l, "attempt", (long long)jb->j.attempts + 1);
	log_age(&l, jb);
	lf_word(&l, "method", method, strlen(method));
	if (cfg.log_redact_query) {
		pb_buf_reset(&url);
		pb_redact_query(&url, jb->url.data, jb->url.len);
		lf_text(&l, "url", url.data ? url.data : "", url.len, url.len);
	} else {
		lf_text(&l, "url", jb->url.data ? jb->url.data : "", jb->url.len, jb->url.len);
	}
	lf_num(&l, "status", jb->status);
	lf_num(&l, "time_ms", (long long)elapsed_ms);
	lf_word(&l, "outcome", names[jb->outcome], strlen(names[jb->outcome]));
	if (jb->outcome == PB_RETRY)
		lf_num(&l, "retry_in_ms", jb->delay_ms);
	log_error(&l, jb);
	if (cfg.log_redact_body)
		lf_num(&l, "body_bytes", (long long)jb->resp.len);
	else
		lf_text(&l, "body", pb_buf_str(&jb->resp), jb->resp.len, jb->resp.len);
	lf_end(&l, jb);
}

/* A postback that ends dead without a request sent for it. */
static void log_unsent(const job *jb)
{
	static pb_buf line; /* deliverer only */
	pb_dest d = { .name = "" };
	size_t n;
	logline l;

	/* Its URL was not filled: the template's destination, when no
	 * placeholder is in its scheme://host:port. */
	if (jb->state == JOB_OK && jb->j.url != NULL &&
	    (n = pb_dest_prefix_len(jb->j.url, jb->j.url_len)) > 0 &&
	    memchr(jb->j.url, '{', n) == NULL &&
	    pb_dest_of_cached(&dest_cache, &d, jb->j.url, jb->j.url_len) != PB_OK)
		d.name[0] = '\0';
	lf_begin(&l, &line);
	log_head(&l, jb, d.name);
	lf_num(&l, "attempts", (long long)jb->j.attempts);
	log_age(&l, jb);
	lf_word(&l, "sent", "no", 2);
	lf_word(&l, "outcome", "dead", 4);
	log_error(&l, jb);
	lf_end(&l, jb);
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
		jb->refused = 1; /* curl may try the host's next address */
		return CURL_SOCKET_BAD;
	}
	jb->opened = 1;
	return socket(a->family, a->socktype, a->protocol);
}

/* The destination whose rules jb follows (policies.h): the id of the queue
 * it came from, or of its filled URL (a version 1 job has no queue of its
 * own); in a buffer of the deliverer's. */
static const char *policy_dest(const job *jb)
{
	static pb_dest d; /* deliverer only */

	if (jb->dest[0] == '\0' && jb->url.len > 0 &&
	    pb_dest_of_cached(&dest_cache, &d, jb->url.data, jb->url.len) == PB_OK)
		return d.id;
	return jb->dest;
}

static void policy_of(const job *jb, pb_policy *p)
{
	policies_get(policy_dest(jb), p);
}

static int setup_easy(job *jb, const pb_policy *p)
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
	/* Signed (sign.h) when its client is, unless its destination's policy
	 * says not: a GET's body is empty. */
	if (p->sign != PB_SIGN_OFF &&
	    signers_headers(&jb->headers, jb->j.client, jb->j.client_len, jb->j.id,
			    jb->j.method == 'P' ? jb->j.data : "",
			    jb->j.method == 'P' ? jb->j.data_len : 0) != PB_OK)
		return PB_ERR_NOMEM;
	/* The destination's own headers (secrets: never logged). */
	if (p->n_headers > 0 && policies_headers(policy_dest(jb), &jb->headers) != PB_OK)
		return PB_ERR_NOMEM;
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
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, p->timeout_ms);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	/* Redirects are not followed: a 3xx is a final answer. */
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	/* No proxy, not even from http_proxy & co. in the environment: the
	 * address check above would judge the proxy, not the destination. */
	curl_easy_setopt(e, CURLOPT_PROXY, "");
	if (jb->j.method == 'P') {
		curl_easy_setopt(e, CURLOPT_POST, 1L);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, jb->j.data);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)jb->j.data_len);
	}
	return PB_OK;
}

/* Past its policy's max_age_s by the time it would be tried (delay_ms
 * from now)? */
static int expired(const job *jb, const pb_policy *p, long long delay_ms)
{
	return p->max_age_s > 0 && jb->j.enqueued_ms > 0 &&
	       pb_wall_ms() + delay_ms - jb->j.enqueued_ms > p->max_age_s * 1000;
}

/* Dead for its age; what the last attempt said stays in the error. */
static void expire(job *jb, const pb_policy *p)
{
	char last[CURL_ERROR_SIZE];

	pb_strlcpy(last, jb->error, sizeof(last));
	snprintf(jb->error, sizeof(jb->error), "expired: older than max_age_s %ld%s%s",
		 p->max_age_s, last[0] ? "; last: " : "", last);
	jb->outcome = PB_DEAD;
}

/* Decide what happens next, by its destination's policy; the outcome
 * waits in jb for Redis. */
static void decide(job *jb, int64_t retry_after_ms)
{
	unsigned attempts = jb->j.attempts + 1;
	pb_policy p;
	int park;

	policy_of(jb, &p);
	jb->outcome = pb_policy_outcome(&p, jb->status, jb->transport_ok, jb->timed_out,
					jb->refused, attempts, &park);
	jb->sig = park ? PB_SIG_PARK
		       : pb_breaker_signal(jb->status, jb->transport_ok, jb->refused,
					   retry_after_ms > 0);
	/* Only an attempt that reached the network says something of its
	 * destination: one that libcurl refused before (a URL it cannot use,
	 * out of memory) must not count against a partner's breaker. */
	if (!jb->reached ||
	    pb_dest_of_cached(&dest_cache, &jb->dname, jb->url.data, jb->url.len) != PB_OK)
		jb->sig = PB_SIG_NONE;
	if (park && jb->sig == PB_SIG_PARK)
		snprintf(jb->reason, sizeof(jb->reason),
			 "status 410: parked until pbctl breakers close");
	else if (jb->error[0])
		pb_strlcpy(jb->reason, jb->error, sizeof(jb->reason));
	else
		snprintf(jb->reason, sizeof(jb->reason), "status %ld", jb->status);
	if (park)
		jb->pause_ms = PB_PARK_MS; /* the park's length, for outcomes.lua */
	else if (pb_pauses(jb->status, retry_after_ms > 0))
		jb->pause_ms = retry_after_ms;
	if (jb->outcome == PB_RETRY) {
		/* Parked: back to its lane at once, to wait for the release. */
		jb->delay_ms = park ? 0
				    : pb_policy_delay_ms(&p, attempts, retry_after_ms,
							 pb_random_below(UINT64_MAX));
		if (job_schedule(jb, attempts) != PB_OK)
			jb->outcome = PB_DEAD;
		else if (expired(jb, &p, jb->delay_ms))
			expire(jb, &p);
	}
}

/* For the recorder; the job is its from here on. */
static void queue_outcome(job *jb)
{
	release_easy(jb);
	handover_finished(jb);
}

/* A job that cannot even be tried (bad encoding, bad template). */
static void fail_untried(job *jb, const char *why)
{
	pb_strlcpy(jb->error, why, sizeof(jb->error));
	jb->outcome = PB_DEAD;
	if (jb->j.id[0] == '\0')
		pb_strlcpy(jb->j.id, "?", sizeof(jb->j.id));
	log_unsent(jb);
	queue_outcome(jb);
}

static void start(job *jb)
{
	json_t *data;
	pb_policy p;

	if (jb->state == JOB_DATA_GONE) {
		/* The reference outlived its request's data: a bug or a
		 * hand-edited Redis. Said, and dead-lettered, not retried. */
		pb_error("postback %s: its request's data is gone; dead-lettered",
			 jb->j.id[0] ? jb->j.id : "?");
		fail_untried(jb, "data missing: the request's data is gone");
		return;
	}
	if (jb->state == JOB_MALFORMED) {
		pb_buf shown;

		/* Escaped: its bytes are whatever was in Redis (CR LF too). */
		pb_buf_init(&shown, 4 * 80 + 8); /* 80 bytes, each at most \xHH */
		pb_log_escape(&shown, jb->raw, jb->raw_len, 80);
		pb_error("malformed job in Redis, dead-lettered: %s (its request's "
			 "header %zu bytes, data %zu bytes)", pb_buf_str(&shown),
			 jb->hdr_len, jb->data_len);
		pb_buf_free(&shown);
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
	policy_of(jb, &p);
	if (expired(jb, &p, 0)) {
		/* Parked (an open breaker) or queued past its age: not tried. */
		expire(jb, &p);
		log_unsent(jb);
		queue_outcome(jb);
		return;
	}
	if (setup_easy(jb, &p) != PB_OK ||
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
	jb->timed_out = result == CURLE_OPERATION_TIMEDOUT;
	jb->reached = jb->opened || jb->transport_ok ||
		      result == CURLE_COULDNT_RESOLVE_HOST ||
		      result == CURLE_OPERATION_TIMEDOUT;
	/* Refused only if every address was: a host with a private and a
	 * public address reached on the public one was delivered to. */
	jb->refused = jb->refused && !jb->opened && !jb->transport_ok;
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

/* ---- the delivery loop --------------------------------------------------- */

static void start_handed_over(void)
{
	job *list = handover_take();

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

void deliver_loop(void)
{
	int64_t deadline = 0, now;
	long watchdog_ms = pb_sd_watchdog_ms();
	int still;

	for (;;) {
		if (atomic_exchange(&reopen_log, 0))
			open_log();
		start_handed_over();
		curl_multi_perform(multi, &still);
		collect_finished();
		fflush(dlog);
		if (cfg.delivery_log_stdout)
			fflush(stdout);
		now = pb_now_ms();
		/* Alive: this loop turns, and so does the fetcher's (it blocks
		 * at most failover_wait_ms and a command's timeout at a time). */
		if (watchdog_ms > 0 && now - fetch_turn_ms < watchdog_ms)
			pb_sd_alive();
		if (stopping) {
			if (deadline == 0)
				deadline = now + cfg.shutdown_grace_ms;
			if (running > 0 && now >= deadline) {
				pb_warn("grace period over: handing back %ld postback(s) "
					"in flight", running);
				abandon_running();
				continue;
			}
			if (handover_all_done())
				return;
			/* Redis gone at shutdown: what is left stays in our
			 * held sets, reclaimed when we (or a reaper) return. */
			if (running == 0 && handover_held() > 0 &&
			    now >= deadline + cfg.failover_wait_ms) {
				pb_error("cannot record %s: left in %s for reclaiming",
					 "outcomes", keys.held);
				return;
			}
		}
		curl_multi_poll(multi, NULL, 0, 1000, NULL);
	}
}

/* Any thread: the deliverer, maybe asleep in curl, looks at its lists. */
void deliver_wake(void)
{
	curl_multi_wakeup(multi);
}

int deliver_init(void)
{
	if (pb_netpolicy_init(&policy, cfg.allow_private, cfg.allow_destinations,
			      cfg.deny_destinations) != PB_OK) {
		pb_error("allow_destinations '%s' or deny_destinations '%s': not a list "
			 "of addresses or CIDR ranges (at most %d, %d)", cfg.allow_destinations,
			 cfg.deny_destinations, PB_POLICY_MAX_RANGES, PB_POLICY_MAX_DENIED);
		return PB_ERR_FORMAT;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
	    (multi = curl_multi_init()) == NULL) {
		pb_error("cannot initialise libcurl");
		return PB_ERR_NOMEM;
	}
	curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, cfg.concurrency);
	/* Without a pool every delivery makes its own handle: slower, works. */
	easy_pool = calloc((size_t)cfg.concurrency, sizeof(*easy_pool));
	return open_log();
}

void deliver_cleanup(void)
{
	fflush(dlog);
	free_easy_pool();
	curl_multi_cleanup(multi);
	curl_global_cleanup();
}
