/*
 * pb-bench - a load generator and a counting receiver in one process.
 *
 *   pb-bench --endpoint http://127.0.0.1:8080/ingest --listen 127.0.0.1:9190
 *            [--requests N] [--objects K] [--connections C] [--rate R]
 *            [--method GET|POST] [--wait S] [--json FILE] [--md FILE]
 *
 * Sends N requests of K data objects each to the ingest endpoint (closed
 * loop with C in flight, or R requests a second), each postback pointing at
 * this process's own receiver and carrying its send time. The receiver
 * counts deliveries by X-Postback-Id and measures end-to-end latency. At
 * the end every acknowledged id must have arrived: acknowledged = delivered
 * + missing, duplicates counted. Exit status 0 only when nothing is missing.
 * received_per_s (first delivery to last) is the drain rate when the
 * agents are started on a queue this run filled while they were stopped.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "buf.h"
#include "clientkey.h"
#include "idset.h"
#include "metricscost.h"
#include "pb.h"

typedef struct opts {
	const char *endpoint, *listen, *json, *md;
	const char *cacert;	/* --cacert: verify an https endpoint with it */
	char auth[PB_CLIENT_KEY_MAX + 32]; /* "Authorization: Bearer <key>" */
	long requests, objects, connections, rate, wait_s;
	char method[8];
	int seed;	/* --sample seed: the seed document's template and object */
} opts;

static opts o = { NULL, "127.0.0.1:9190", NULL, NULL, NULL, "", 1000, 1, 16, 0, 60, "GET", 0 };

/*
 * The seed document's request (shared/seeds), sent with --sample seed so
 * that byte counts are those of its sample: its template (the host is the
 * receiver's) and its object, as they are. Without pb-bench's t and s no
 * end-to-end latency is measured; deliveries count by X-Postback-Id.
 */
#define SEED_PATH "data?title={mascot}&image={location}&foo={bar}"
#define SEED_OBJECT "{\"mascot\":\"Gopher\"," \
		    "\"location\":\"https://blog.golang.org/gopher/gopher.png\"}"

/* ---- numbers ---------------------------------------------------------------- */

typedef struct lat {
	uint32_t *v; /* microseconds */
	size_t n, cap;
} lat;

static void lat_add(lat *l, int64_t us)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 4096;
		uint32_t *v = realloc(l->v, cap * sizeof(*v));
		if (v == NULL)
			return;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = us < 0 ? 0 : (uint32_t)(us > UINT32_MAX ? UINT32_MAX : us);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static double pct_ms(lat *l, double p)
{
	if (l->n == 0)
		return 0;
	return l->v[(size_t)(p * (double)(l->n - 1))] / 1000.0;
}

static int64_t wall_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- the receiver -------------------------------------------------------------- */

static pthread_mutex_t rx_mu = PTHREAD_MUTEX_INITIALIZER;
static pb_idset delivered;          /* under rx_mu */
static lat e2e;                     /* receiver thread only */
static int64_t rx_first_ms, rx_last_ms; /* receiver thread only */
static atomic_long rx_total;
static volatile int rx_stop;

typedef struct conn {
	int fd;
	pb_buf in;
} conn;

static const char ok_answer[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

/* The value of header name in the head [p, end), or NULL. */
static const char *header(const char *p, const char *end, const char *name,
			  size_t *len)
{
	size_t n = strlen(name);

	while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL && ++p < end) {
		if ((size_t)(end - p) > n && strncasecmp(p, name, n) == 0 &&
		    p[n] == ':') {
			const char *v = p + n + 1, *e;
			while (v < end && *v == ' ')
				v++;
			e = memchr(v, '\r', (size_t)(end - v));
			*len = (size_t)((e ? e : end) - v);
			return v;
		}
	}
	return NULL;
}

/* Handle every complete request in c->in; -1 to close. */
static int serve(conn *c)
{
	for (;;) {
		char *head_end = memmem(c->in.data ? c->in.data : "", c->in.len,
					"\r\n\r\n", 4);
		const char *v, *t;
		size_t vlen = 0, total;
		long body = 0;

		if (head_end == NULL)
			return c->in.len > 65536 ? -1 : 0;
		if ((v = header(c->in.data, head_end, "Content-Length", &vlen)))
			body = strtol(v, NULL, 10);
		total = (size_t)(head_end + 4 - c->in.data) + (size_t)body;
		if (c->in.len < total)
			return 0;
		t = memmem(c->in.data, (size_t)(head_end - c->in.data), "t=", 2);
		if (t)
			lat_add(&e2e, wall_us() - strtoll(t + 2, NULL, 10));
		if ((v = header(c->in.data, head_end, "X-Postback-Id", &vlen))) {
			pthread_mutex_lock(&rx_mu);
			pb_idset_add(&delivered, v, vlen);
			pthread_mutex_unlock(&rx_mu);
		}
		rx_last_ms = pb_now_ms();
		if (rx_first_ms == 0)
			rx_first_ms = rx_last_ms;
		atomic_fetch_add(&rx_total, 1);
		if (write(c->fd, ok_answer, sizeof(ok_answer) - 1) !=
		    (ssize_t)sizeof(ok_answer) - 1)
			return -1; /* 40 bytes to a fresh socket buffer: all or gone */
		memmove(c->in.data, c->in.data + total, c->in.len - total);
		c->in.len -= total;
	}
}

static int listen_on(const char *hostport)
{
	char host[64];
	const char *colon = strrchr(hostport, ':');
	struct sockaddr_in a = { .sin_family = AF_INET };
	int fd, one = 1;
	long port;

	if (colon == NULL || (size_t)(colon - hostport) >= sizeof(host))
		return -1;
	memcpy(host, hostport, (size_t)(colon - hostport));
	host[colon - hostport] = '\0';
	if (pb_parse_long(colon + 1, 1, 65535, &port) != PB_OK)
		return -1;
	a.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &a.sin_addr) != 1)
		return -1;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 1024) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void *receiver_main(void *arg)
{
	int lfd = *(int *)arg, ep = epoll_create1(0);
	struct epoll_event ev = { EPOLLIN, { .ptr = NULL } }, evs[64];

	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	while (!rx_stop) {
		int i, n = epoll_wait(ep, evs, 64, 100);
		for (i = 0; i < n; i++) {
			conn *c = evs[i].data.ptr;
			char chunk[16384];
			ssize_t r;

			if (c == NULL) { /* the listener */
				int fd;
				while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
					conn *nc = calloc(1, sizeof(*nc));
					struct epoll_event e = { EPOLLIN, { .ptr = nc } };
					nc->fd = fd;
					pb_buf_init(&nc->in, 1 << 20);
					epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
				}
				continue;
			}
			while ((r = read(c->fd, chunk, sizeof(chunk))) > 0)
				if (pb_buf_append(&c->in, chunk, (size_t)r) != PB_OK)
					break;
			if (r == 0 || (r < 0 && errno != EAGAIN) || serve(c) < 0) {
				close(c->fd); /* closing removes it from the epoll set */
				pb_buf_free(&c->in);
				free(c);
			}
		}
	}
	close(ep);
	return NULL;
}

/* ---- the load ------------------------------------------------------------------ */

typedef struct req {
	CURL *easy;
	pb_buf body, resp;
	int64_t sent_us;
} req;

static pb_idset acked;
static lat ingest_lat;
static long sent, done_ok, done_503, done_err, seq;

static size_t on_resp(char *p, size_t size, size_t n, void *arg)
{
	pb_buf_append(&((req *)arg)->resp, p, size * n);
	return size * n;
}

static void build_body(req *r)
{
	long i;

	pb_buf_reset(&r->body);
	pb_buf_printf(&r->body, "{\"endpoint\":{\"method\":\"%s\",\"url\":\"http://%s/%s\"},"
		      "\"data\":[", o.method, o.listen,
		      o.seed ? SEED_PATH : "b?t={t}&s={s}");
	r->sent_us = wall_us();
	for (i = 0; i < o.objects; i++) {
		if (o.seed)
			pb_buf_printf(&r->body, "%s" SEED_OBJECT, i ? "," : "");
		else
			pb_buf_printf(&r->body, "%s{\"t\":%lld,\"s\":%ld}", i ? "," : "",
				      (long long)r->sent_us, seq++);
	}
	pb_buf_puts(&r->body, "]}");
	if (pb_buf_err(&r->body) != PB_OK) { /* a bound set wrong above */
		fprintf(stderr, "pb-bench: a request body of %ld objects does not fit\n",
			o.objects);
		exit(1);
	}
}

static struct curl_slist *hdrs;

static void launch(CURLM *m, req *r)
{
	build_body(r);
	pb_buf_reset(&r->resp);
	curl_easy_setopt(r->easy, CURLOPT_POSTFIELDS, r->body.data);
	curl_easy_setopt(r->easy, CURLOPT_POSTFIELDSIZE, (long)r->body.len);
	curl_multi_add_handle(m, r->easy);
	sent++;
}

static void collect(req *r, CURLcode rc)
{
	long status = 0;
	json_t *root, *ids, *id;
	size_t i;

	lat_add(&ingest_lat, wall_us() - r->sent_us);
	curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
	if (rc != CURLE_OK) {
		done_err++;
		return;
	}
	if (status == 503) {
		done_503++;
		return;
	}
	if (status != 200) {
		done_err++;
		return;
	}
	done_ok++;
	root = json_loadb(r->resp.data, r->resp.len, 0, NULL);
	ids = json_object_get(root, "ids");
	json_array_foreach(ids, i, id)
		pb_idset_add(&acked, json_string_value(id), json_string_length(id));
	json_decref(root);
}

static void progress(int64_t t0)
{
	fprintf(stderr, "bench: %5.1f s  sent %ld  ok %ld  503 %ld  err %ld  "
		"acked %zu  delivered %ld\n", (double)(pb_now_ms() - t0) / 1000.0,
		sent, done_ok, done_503, done_err, acked.len, atomic_load(&rx_total));
}

static void run_load(void)
{
	CURLM *m = curl_multi_init();
	req *rs = calloc((size_t)o.connections, sizeof(*rs));
	int64_t t0 = pb_now_ms(), next_print = t0 + 1000, next_send_us = wall_us();
	long i, idle = o.connections;
	req **free_list = calloc((size_t)o.connections, sizeof(*free_list)); /* NOLINT(bugprone-sizeof-expression) */

	hdrs = curl_slist_append(NULL, "Content-Type: application/json");
	hdrs = curl_slist_append(hdrs, "Expect:");
	if (o.auth[0])
		hdrs = curl_slist_append(hdrs, o.auth);
	for (i = 0; i < o.connections; i++) {
		rs[i].easy = curl_easy_init();
		/* An object is the seed's or {"t":..,"s":..}, both shorter
		 * than SEED_OBJECT and a comma; the rest is under 1 KiB. */
		pb_buf_init(&rs[i].body, (size_t)o.objects * sizeof(SEED_OBJECT ",") + 1024);
		pb_buf_init(&rs[i].resp, 1 << 20);
		curl_easy_setopt(rs[i].easy, CURLOPT_URL, o.endpoint);
		curl_easy_setopt(rs[i].easy, CURLOPT_HTTPHEADER, hdrs);
		curl_easy_setopt(rs[i].easy, CURLOPT_WRITEFUNCTION, on_resp);
		curl_easy_setopt(rs[i].easy, CURLOPT_WRITEDATA, &rs[i]);
		curl_easy_setopt(rs[i].easy, CURLOPT_PRIVATE, &rs[i]);
		curl_easy_setopt(rs[i].easy, CURLOPT_TIMEOUT_MS, 30000L);
		/* SIGPIPE is ignored process-wide (main): curl need not set and
		 * restore a handler around every turn, two syscalls the system
		 * under test would pay for on the shared cores. */
		curl_easy_setopt(rs[i].easy, CURLOPT_NOSIGNAL, 1L);
		if (o.cacert)
			curl_easy_setopt(rs[i].easy, CURLOPT_CAINFO, o.cacert);
		free_list[i] = &rs[i];
	}
	while (sent < o.requests || idle < o.connections) {
		int still, left, finished = 0;
		CURLMsg *msg;

		while (sent < o.requests && idle > 0 &&
		       (o.rate == 0 || wall_us() >= next_send_us)) {
			launch(m, free_list[--idle]);
			next_send_us += o.rate ? 1000000 / o.rate : 0;
		}
		curl_multi_perform(m, &still);
		while ((msg = curl_multi_info_read(m, &left)) != NULL) {
			req *r = NULL;
			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
			curl_multi_remove_handle(m, r->easy);
			collect(r, msg->data.result);
			free_list[idle++] = r;
			finished++;
		}
		if (pb_now_ms() >= next_print) {
			progress(t0);
			next_print += 1000;
		}
		/* A finished request frees a slot: refill it now, not after a poll. */
		if (finished == 0 || o.rate)
			curl_multi_poll(m, NULL, 0, o.rate ? 1 : 100, NULL);
	}
	for (i = 0; i < o.connections; i++) {
		curl_easy_cleanup(rs[i].easy);
		pb_buf_free(&rs[i].body);
		pb_buf_free(&rs[i].resp);
	}
	free(rs);
	free(free_list);
	curl_slist_free_all(hdrs);
	curl_multi_cleanup(m);
}

/* ---- the count ------------------------------------------------------------------ */

typedef struct tally {
	size_t acked, delivered, missing;
	long duplicates;
} tally;

/* Distinct postbacks the receiver has had: cheap, for the wait loop. */
static size_t delivered_now(void)
{
	size_t n;

	pthread_mutex_lock(&rx_mu);
	n = delivered.len;
	pthread_mutex_unlock(&rx_mu);
	return n;
}

/* Each acknowledged id against the delivered: the receiver waits for the
 * lock all the while, so only once all may be there (delivered_now). */
static tally count_now(void)
{
	tally t = { acked.len, 0, 0, 0 };
	size_t i;

	pthread_mutex_lock(&rx_mu);
	for (i = 0; i < acked.cap; i++) {
		unsigned c;
		if (acked.keys[i] == NULL)
			continue;
		c = pb_idset_count(&delivered, acked.keys[i], strlen(acked.keys[i]));
		if (c == 0)
			t.missing++;
		else
			t.delivered++;
	}
	t.duplicates = atomic_load(&rx_total) - (long)delivered.len;
	pthread_mutex_unlock(&rx_mu);
	return t;
}

static void report(const tally *t, double load_s, double total_s)
{
	/* From the first delivery to the last: how fast a full queue drains
	 * when the agents start on it. */
	double rx_s = (double)(rx_last_ms - rx_first_ms) / 1000.0;
	double rx_per_s = rx_s > 0 ? (double)(atomic_load(&rx_total) - 1) / rx_s : 0;
	json_t *j;
	FILE *f;

	qsort(ingest_lat.v, ingest_lat.n, sizeof(uint32_t), cmp_u32);
	qsort(e2e.v, e2e.n, sizeof(uint32_t), cmp_u32);
	j = json_pack("{s:i,s:i,s:i,s:i,s:i,s:I,s:I,s:I,s:I,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f}",
		      "requests", (int)sent, "objects", (int)o.objects, "ok", (int)done_ok,
		      "status_503", (int)done_503, "errors", (int)done_err,
		      "acknowledged", (json_int_t)t->acked, "delivered", (json_int_t)t->delivered,
		      "missing", (json_int_t)t->missing, "duplicates", (json_int_t)t->duplicates,
		      "answered_per_s", (double)(done_ok + done_503 + done_err) / load_s,
		      "requests_per_s", (double)done_ok / load_s,
		      "postbacks_per_s", (double)t->acked / load_s,
		      "delivered_per_s", (double)t->delivered / total_s,
		      "received_per_s", rx_per_s,
		      "ingest_p50_ms", pct_ms(&ingest_lat, 0.5),
		      "ingest_p99_ms", pct_ms(&ingest_lat, 0.99),
		      "ingest_max_ms", pct_ms(&ingest_lat, 1.0),
		      "e2e_p50_ms", pct_ms(&e2e, 0.5), "e2e_p99_ms", pct_ms(&e2e, 0.99),
		      "e2e_max_ms", pct_ms(&e2e, 1.0));
	json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	putchar('\n');
	if (o.json && (f = fopen(o.json, "w"))) {
		json_dumpf(j, f, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		fclose(f);
	}
	if (o.md && (f = fopen(o.md, "w"))) {
		const char *k;
		json_t *v;
		fprintf(f, "| measure | value |\n|---|---|\n");
		json_object_foreach(j, k, v) {
			if (json_is_real(v))
				fprintf(f, "| %s | %.2f |\n", k, json_real_value(v));
			else
				fprintf(f, "| %s | %lld |\n", k, (long long)json_integer_value(v));
		}
		fclose(f);
	}
	json_decref(j);
}

/* --key-file: the client key, its first line, into the header it goes in. */
static int key_file(const char *path)
{
	char line[PB_CLIENT_KEY_MAX + 2];
	FILE *f = fopen(path, "r");
	size_t n;

	if (f == NULL || fgets(line, sizeof(line), f) == NULL) {
		fprintf(stderr, "pb-bench: --key-file %s: cannot read a key\n", path);
		if (f)
			fclose(f);
		return -1;
	}
	fclose(f);
	n = strcspn(line, "\r\n");
	line[n] = '\0';
	snprintf(o.auth, sizeof(o.auth), "Authorization: Bearer %s", line);
	return 0;
}

/* A count option: a whole number from 0 up. */
static int number(const char *name, const char *v, long *out)
{
	if (pb_parse_long(v, 0, LONG_MAX, out) == PB_OK)
		return 0;
	fprintf(stderr, "pb-bench: %s takes a whole number from 0, not '%s'\n", name, v);
	return -1;
}

static int parse_args(int argc, char **argv)
{
	int i, rc = 0;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			printf("usage: pb-bench --endpoint URL [--listen HOST:PORT] [--requests N]\n"
			       "  [--objects K] [--connections C] [--rate R] [--method GET|POST]\n"
			       "  [--wait S] [--sample small|seed] [--key-file FILE] [--json FILE]\n"
			       "  [--md FILE] [--cacert FILE]\n"
			       "       pb-bench --metrics-cost N\n"
			       "Load generator and counting receiver: exit 0 when every\n"
			       "acknowledged postback arrived. Defaults: --listen %s --requests %ld\n"
			       "--objects %ld --connections %ld --rate 0 (closed loop) --wait %ld\n"
			       "--metrics-cost N: time the metric updates of N delivered postbacks\n"
			       "(no cluster), print ns per postback as JSON\n",
			       o.listen, o.requests, o.objects, o.connections, o.wait_s);
			exit(0);
		}
		if (v == NULL) {
			fprintf(stderr, "pb-bench: %s needs a value\n", a);
			return -1;
		}
		i++;
		if (!strcmp(a, "--metrics-cost")) {
			long n;
			if (number(a, v, &n) != 0 || n < 1)
				return -1;
			exit(pb_metrics_cost(n));
		}
		if (!strcmp(a, "--endpoint")) o.endpoint = v;
		else if (!strcmp(a, "--listen")) o.listen = v;
		else if (!strcmp(a, "--json")) o.json = v;
		else if (!strcmp(a, "--md")) o.md = v;
		else if (!strcmp(a, "--key-file")) rc |= key_file(v);
		else if (!strcmp(a, "--cacert")) o.cacert = v;
		else if (!strcmp(a, "--requests")) rc |= number(a, v, &o.requests);
		else if (!strcmp(a, "--objects")) rc |= number(a, v, &o.objects);
		else if (!strcmp(a, "--connections")) rc |= number(a, v, &o.connections);
		else if (!strcmp(a, "--rate")) rc |= number(a, v, &o.rate);
		else if (!strcmp(a, "--wait")) rc |= number(a, v, &o.wait_s);
		else if (!strcmp(a, "--method")) pb_strlcpy(o.method, v, sizeof(o.method));
		else if (!strcmp(a, "--sample") && !strcmp(v, "seed")) o.seed = 1;
		else if (!strcmp(a, "--sample") && !strcmp(v, "small")) o.seed = 0;
		else {
			fprintf(stderr, "pb-bench: unknown option %s (see --help)\n", a);
			return -1;
		}
	}
	if (rc != 0 || o.endpoint == NULL || o.requests < 1 || o.objects < 1 ||
	    o.connections < 1 || o.rate < 0 ||
	    (strcmp(o.method, "GET") != 0 && strcmp(o.method, "POST") != 0)) {
		fprintf(stderr, "pb-bench: --endpoint is required; counts must be positive "
				"(see --help)\n");
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	pthread_t rx;
	int lfd;
	int64_t t0, t_load, deadline;
	tally t;

	if (parse_args(argc, argv) != 0)
		return 2;
	if ((lfd = listen_on(o.listen)) < 0) {
		fprintf(stderr, "pb-bench: cannot listen on %s: %s\n", o.listen,
			strerror(errno));
		return 2;
	}
	signal(SIGPIPE, SIG_IGN); /* a peer gone is an error, not an exit */
	curl_global_init(CURL_GLOBAL_DEFAULT);
	pb_idset_init(&acked);
	pb_idset_init(&delivered);
	pthread_create(&rx, NULL, receiver_main, &lfd);
	t0 = pb_now_ms();
	run_load();
	t_load = pb_now_ms();
	deadline = t_load + o.wait_s * 1000;
	while (pb_now_ms() < deadline &&
	       (delivered_now() < acked.len || count_now().missing > 0)) {
		progress(t0);
		pb_sleep_ms(500, NULL);
	}
	t = count_now();
	rx_stop = 1;
	pthread_join(rx, NULL);
	report(&t, (double)(t_load - t0) / 1000.0,
	       (double)(pb_now_ms() - t0) / 1000.0);
	fprintf(stderr, "bench: %zu acknowledged, %zu delivered, %zu missing, "
		"%ld duplicates\n", t.acked, t.delivered, t.missing, t.duplicates);
	return t.missing == 0 && t.acked > 0 ? 0 : 1;
}
