/*
 * pbctl show, dests, ids, drain: where the postbacks are. show follows one
 * postback, dests sums them up per destination, ids lists every one (an
 * atomic snapshot, for checks), drain waits until none is left.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "deadletter.h"
#include "job.h"
#include "lua_functions.h"
#include "pb.h"

/* One line of pbctl ids, or its JSON. */
static void id_line(const char *state, const char *id, const char *agent)
{
	if (json_mode)
		json_array_append_new(json_object_get(answer, "postbacks"),
				      json_pack("{s:s, s:s, s:s}", "state", state, "id", id,
						"agent", agent));
	else
		printf("%s\t%s\t%s\n", state, id, agent);
}

static void print_job_ids(const char *state, const redisReply *jobs,
			  const char *agent)
{
	char id[PB_ID_MAX + 32];

	size_t i;

	for (i = 0; i < jobs->elements; i++) {
		const redisReply *e = jobs->element[i];
		unsigned long n, k;
		pb_job job;
		pb_ref ref;

		if (e->type == REDIS_REPLY_STRING &&
		    pb_run3_decode(&ref, &n, e->str, e->len) == PB_OK && n > 1) {
			for (k = 0; k < n; k++) { /* a run: each of its postbacks */
				snprintf(id, sizeof(id), "%s-%lu", ref.rid,
					 strtoul(ref.index, NULL, 10) + k);
				id_line(state, id, agent);
			}
		} else if (e->type == REDIS_REPLY_STRING &&
		    (pb_ref_decode(&ref, e->str, e->len) == PB_OK ||
		     pb_ref3_decode(&ref, e->str, e->len) == PB_OK ||
		     pb_ref3_sched_decode(&ref, e->str, e->len) == PB_OK)) {
			snprintf(id, sizeof(id), "%s-%s", ref.rid, ref.index);
			id_line(state, id, agent);
		} else if (e->type == REDIS_REPLY_STRING &&
			 pb_job_decode(&job, e->str, e->len) == PB_OK) {
			id_line(state, job.id, agent);
		} else {
			snprintf(id, sizeof(id), "(undecodable job of %zu bytes)", e->len);
			id_line(state, id, agent);
		}
	}
}

int cmd_ids(const pb_args *args)
{
	redisReply *r;
	size_t i;

	(void)args;
	if (json_mode)
		json_object_set_new(answer, "postbacks", json_array());
	{
		const pb_fn_ids a = {
			.v1_queue = K.queue, .scheduled = K.scheduled, .dead = K.dead,
			.agents = K.agents, .ready = K.ready,
			.pstem = K.processing_stem, .qstem = K.queue_stem,
			.hstem = K.held_stem, .lstem = K.lanes_stem
		};
		const char *fargv[PB_FN_IDS_ARGC];

		r = fcall_or_die(pb_fn_ids_argv(&a, fargv), fargv, NULL);
	}
	if (r->type != REDIS_REPLY_ARRAY || r->elements < 3) {
		fprintf(stderr, "pbctl: ids: unexpected reply from %s:%d\n",
			R.master.host, R.master.port);
		freeReplyObject(r);
		return 1;
	}
	print_job_ids("queued", r->element[0], "");
	print_job_ids("scheduled", r->element[1], "");
	for (i = 0; i < r->element[2]->elements; i++) {
		const redisReply *e = r->element[2]->element[i];
		json_t *owner;
		pb_dead d;

		id_line("dead", pb_dead_decode(&d, &owner, e->str, e->len) == PB_OK
					? d.id : "(undecodable dead letter)", "");
		json_decref(owner);
	}
	for (i = 3; i + 1 < r->elements; i += 2)
		print_job_ids("in-flight", r->element[i + 1], r->element[i]->str);
	freeReplyObject(r);
	return 0;
}

int cmd_drain(const pb_args *a)
{
	long timeout_s = (long)pb_args_num(a, "--timeout", 300);
	int64_t deadline;

	deadline = pb_now_ms() + timeout_s * 1000;
	for (;;) {
		long long q = waiting();
		long long s = int_cmd("ZCARD %s", K.scheduled);
		long long f = in_flight();

		int done = q == 0 && s == 0 && f == 0;

		if (json_mode && (done || pb_now_ms() > deadline)) {
			json_object_set_new(answer, "queued", json_integer(q));
			json_object_set_new(answer, "scheduled", json_integer(s));
			json_object_set_new(answer, "in_flight", json_integer(f));
			json_object_set_new(answer, "drained", json_boolean(done));
		} else if (!json_mode) {
			printf("queued %lld  scheduled %lld  in flight %lld\n", q, s, f);
			fflush(stdout);
		}
		if (done)
			return 0;
		if (pb_now_ms() > deadline) {
			fprintf(stderr, "pbctl: not drained after %ld s\n", timeout_s);
			return 1;
		}
		pb_redis_drop(&R); /* resolve again: a drain may span a failover */
		pb_sleep_ms(1000, NULL);
	}
}


/* ---- dests ----------------------------------------------------------------- */

/* The destination d's entry in the map, made on first sight. */
static json_t *dest_entry(json_t *map, const char *d)
{
	json_t *e = json_object_get(map, d);

	if (e == NULL) {
		e = json_pack("{s:s, s:s, s:I, s:n, s:I, s:I, s:s, s:I, s:n, s:I, s:s}",
			      "dest", d, "url", "", "waiting", (json_int_t)0, "oldest_age_s",
			      "in_flight", (json_int_t)0, "scheduled", (json_int_t)0,
			      "breaker", "closed", "fails", (json_int_t)0, "until",
			      "rate", (json_int_t)0, "reason", "");
		json_object_set_new(map, d, e);
	}
	return e;
}

static void add(json_t *e, const char *field, long long n)
{
	json_object_set_new(e, field, json_integer(json_integer_value(json_object_get(e, field)) + n));
}

/*
 * Each element of one lane (key), in order, a thousand a read: to fn its
 * position in the lane, and (ok) as a run of count postbacks from ref, or
 * a reference (count 1; a retry come due has its attempts). fn returns 1
 * to stop there; so does lane_each.
 */
typedef int (*element_fn)(const pb_ref *ref, unsigned long count, int ok, long at,
			  void *arg);

static int lane_each(const char *key, element_fn fn, void *arg)
{
	long at = 0;

	for (;;) {
		redisReply *r = cmd_or_die("LRANGE %s %ld %ld", key, at, at + 999);
		size_t i, n = r->elements;

		for (i = 0; i < n; i++) {
			const redisReply *x = r->element[i];
			unsigned long count = 1;
			pb_ref ref;
			int ok = pb_ref3_decode(&ref, x->str, x->len) == PB_OK ||
				 pb_run3_decode(&ref, &count, x->str, x->len) == PB_OK;

			if (fn(&ref, ok ? count : 1, ok, at + (long)i, arg)) {
				freeReplyObject(r);
				return 1;
			}
		}
		freeReplyObject(r);
		if (n < 1000)
			return 0;
		at += 1000;
	}
}

/*
 * Each element of destination d's lanes (apps/lua/prelude.lua, Lanes):
 * the lane without a client ("<p>:q:<d>", listed or not: a release before
 * lanes did not list it), then each listed client's.
 */
static int queue_each(const char *d, element_fn fn, void *arg)
{
	char key[PB_KEY_MAX];
	redisReply *lanes;
	size_t i;
	int stop = 0;

	if (pb_key_join(key, sizeof(key), K.queue_stem, d) != PB_OK ||
	    lane_each(key, fn, arg))
		return 1;
	lanes = cmd_or_die("LRANGE %s%s 0 -1", K.lanes_stem, d);
	for (i = 0; i < lanes->elements && !stop; i++) {
		const char *c = lanes->element[i]->str;

		if (c[0] == '\0' ||
		    snprintf(key, sizeof(key), "%s%s:%s", K.queue_stem, d, c) >= (int)sizeof(key))
			continue;
		stop = lane_each(key, fn, arg);
	}
	freeReplyObject(lanes);
	return stop;
}

/* dest_queue's: the destination's entry, its id, the time now. */
struct tally {
	json_t *e;
	const char *d;
	int64_t now;
};

static int count_one(const pb_ref *ref, unsigned long count, int ok, long at, void *arg)
{
	struct tally *t = arg;

	add(t->e, "waiting", (long long)count);
	if (at == 0 && ok) { /* a lane's head: the oldest of them is the age */
		redisReply *h = cmd_or_die("HGET %s%s h", K.request_stem, ref->rid);
		pb_job j;

		if (h->type == REDIS_REPLY_STRING &&
		    pb_job_from_v3(&j, t->d, "x 0", 3, h->str, h->len, "{}", 2) == PB_OK) {
			json_int_t age = (json_int_t)((t->now - j.enqueued_ms) / 1000);
			const json_t *was = json_object_get(t->e, "oldest_age_s");

			if (!json_is_integer(was) || json_integer_value(was) < age)
				json_object_set_new(t->e, "oldest_age_s", json_integer(age));
		}
		freeReplyObject(h);
	}
	return 0;
}

/* Postbacks in the lanes of d (runs counted out); the age of the oldest
 * request at a lane's head. */
static void dest_queue(json_t *e, const char *d, int64_t now)
{
	struct tally t = { e, d, now };

	queue_each(d, count_one, &t);
}

static void dest_breaker(json_t *e, const char *d)
{
	redisReply *h = cmd_or_die("HGETALL %s%s", K.dest_stem, d);
	long v;

	if (h->elements > 0) {
		const char *state = field_of(h, "state");

		json_object_set_new(e, "breaker", json_string(state[0] ? state : "closed"));
		if (pb_parse_long(field_of(h, "fails"), 0, LONG_MAX, &v) == PB_OK)
			json_object_set_new(e, "fails", json_integer(v));
		if (pb_parse_long(field_of(h, "until"), 1, LONG_MAX, &v) == PB_OK)
			json_object_set_new(e, "until", json_string(utc(v)));
		if (pb_parse_long(field_of(h, "rate"), 0, LONG_MAX, &v) == PB_OK)
			json_object_set_new(e, "rate", json_integer(v));
		json_object_set_new(e, "url", json_string(field_of(h, "url")));
		json_object_set_new(e, "reason", json_string(field_of(h, "reason")));
	}
	freeReplyObject(h);
}

/* Every destination something waits for, is held or scheduled for, or
 * whose breaker remembers a failure. */
static void dests_known(json_t *map)
{
	char cursor[32] = "0", match[PB_KEY_MAX + 2];
	redisReply *r = cmd_or_die("ZRANGE %s 0 -1", K.ready), *agents;
	size_t i, j;

	for (i = 0; i < r->elements; i++)
		dest_entry(map, r->element[i]->str);
	freeReplyObject(r);
	snprintf(match, sizeof(match), "%s*", K.dest_stem);
	do {
		r = cmd_or_die("SCAN %s MATCH %s COUNT 1000", cursor, match);
		pb_strlcpy(cursor, r->element[0]->str, sizeof(cursor));
		for (i = 0; i < r->element[1]->elements; i++)
			dest_entry(map, r->element[1]->element[i]->str + strlen(K.dest_stem));
		freeReplyObject(r);
	} while (strcmp(cursor, "0") != 0);
	agents = cmd_or_die("SMEMBERS %s", K.agents);
	for (i = 0; i < agents->elements; i++) {
		const char *agent = agents->element[i]->str;
		redisReply *ds = cmd_or_die("SMEMBERS %s%s", K.held_stem, agent);

		for (j = 0; j < ds->elements; j++) {
			const char *d = ds->element[j]->str;
			redisReply *c = cmd_or_die("SCARD %s%s:%s", K.held_stem, agent, d);

			add(dest_entry(map, d), "in_flight", c->integer);
			freeReplyObject(c);
		}
		freeReplyObject(ds);
	}
	freeReplyObject(agents);
}

/* Retries per destination: one pass over the scheduled set. */
static void dests_scheduled(json_t *map)
{
	char cursor[32] = "0";

	do {
		redisReply *r = cmd_or_die("ZSCAN %s %s COUNT 1000", K.scheduled, cursor);
		size_t i;

		pb_strlcpy(cursor, r->element[0]->str, sizeof(cursor));
		for (i = 0; i + 1 < r->element[1]->elements; i += 2) {
			const redisReply *x = r->element[1]->element[i];
			char d[PB_DEST_ID_LEN + 1];

			if (x->len > PB_DEST_ID_LEN && x->str[PB_DEST_ID_LEN] == ' ' &&
			    pb_dest_id_valid(x->str, PB_DEST_ID_LEN)) {
				memcpy(d, x->str, PB_DEST_ID_LEN);
				d[PB_DEST_ID_LEN] = '\0';
				add(dest_entry(map, d), "scheduled", 1);
			}
		}
		freeReplyObject(r);
	} while (strcmp(cursor, "0") != 0);
}

static long long num(const json_t *e, const char *field)
{
	return json_integer_value(json_object_get(e, field));
}

typedef struct row {
	json_t *e;
} row;

/* Most waiting first, then most in flight. */
static int busier(const void *a, const void *b)
{
	const json_t *x = ((const row *)a)->e, *y = ((const row *)b)->e;
	long long dx = num(x, "waiting") + num(x, "scheduled");
	long long dy = num(y, "waiting") + num(y, "scheduled");

	if (dx != dy)
		return dx < dy ? 1 : -1;
	return num(x, "in_flight") < num(y, "in_flight") ? 1
	     : num(x, "in_flight") > num(y, "in_flight") ? -1 : 0;
}

int cmd_dests(const pb_args *a)
{
	json_t *map = json_object(), *e, *out = json_array();
	row *all;
	const char *d;
	size_t n = 0, i, max = (size_t)pb_args_num(a, "--top", 50);
	int64_t now = pb_wall_ms();

	dests_known(map);
	dests_scheduled(map);
	all = calloc(json_object_size(map) + 1, sizeof(row));
	if (all == NULL) {
		fprintf(stderr, "pbctl: out of memory\n");
		json_decref(map);
		return 1;
	}
	json_object_foreach(map, d, e) {
		dest_breaker(e, d);
		all[n++].e = e;
	}
	qsort(all, n, sizeof(row), busier);
	for (i = 0; i < n && i < max; i++) {
		dest_queue(all[i].e, json_string_value(json_object_get(all[i].e, "dest")), now);
		json_array_append(out, all[i].e);
	}
	free(all);
	if (json_mode) {
		json_object_set_new(answer, "destinations", out);
		json_object_set_new(answer, "total", json_integer((json_int_t)n));
		json_decref(map);
		return 0;
	}
	printf("%-16s %8s %7s %8s %9s %-6s %5s %4s  %s\n", "dest", "waiting", "oldest",
	       "in-flight", "scheduled", "state", "fails", "rate", "url / last failure");
	json_array_foreach(out, i, e) {
		const json_t *age = json_object_get(e, "oldest_age_s");
		char oldest[24] = "-";

		if (json_is_integer(age))
			snprintf(oldest, sizeof(oldest), "%llds", (long long)json_integer_value(age));
		printf("%-16s %8lld %7s %8lld %9lld %-6s %5lld %4lld  %s %s\n",
		       json_string_value(json_object_get(e, "dest")), num(e, "waiting"), oldest,
		       num(e, "in_flight"), num(e, "scheduled"),
		       json_string_value(json_object_get(e, "breaker")), num(e, "fails"),
		       num(e, "rate"), json_string_value(json_object_get(e, "url")),
		       json_string_value(json_object_get(e, "reason")));
	}
	printf("%zu of %zu destination(s)\n", json_array_size(out), n);
	json_decref(out);
	json_decref(map);
	return 0;
}

/* ---- show ------------------------------------------------------------------ */

/* One postback, as pbctl show finds it. */
typedef struct where {
	char rid[PB_RID_MAX + 1];
	unsigned long index;
	char ref[PB_RID_MAX + 16]; /* "<rid> <index>" */
	pb_dest dest;
	pb_buf url;
	char client[80];
	long long enqueued_ms;
	json_t *out; /* what is known, as the JSON answer */
} where;

/* "<rid>-<index>" */
static int id_parse(where *w, const char *id)
{
	const char *dash = strrchr(id, '-');
	long i;

	if (dash == NULL || dash == id || (size_t)(dash - id) > PB_RID_MAX ||
	    pb_parse_long(dash + 1, 0, 9999999, &i) != PB_OK)
		return PB_ERR_FORMAT;
	memcpy(w->rid, id, (size_t)(dash - id));
	w->rid[dash - id] = '\0';
	w->index = (unsigned long)i;
	snprintf(w->ref, sizeof(w->ref), "%s %lu", w->rid, w->index);
	return PB_OK;
}

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

/* The data object of a request of more than one (version 3: the index
 * at the head of its data string), NULL when it is not there. */
static redisReply *data_object(const where *w)
{
	redisReply *ix = cmd_or_die("GETRANGE %s%s %lu %lu", K.data_stem, w->rid,
				    4 * w->index, 4 * w->index + 7), *obj = NULL;

	if (ix->type == REDIS_REPLY_STRING && ix->len == 8) {
		uint32_t from = le32((const unsigned char *)ix->str);
		uint32_t to = le32((const unsigned char *)ix->str + 4);

		if (to > from)
			obj = cmd_or_die("GETRANGE %s%s %u %u", K.data_stem, w->rid, from, to - 1);
	}
	freeReplyObject(ix);
	return obj;
}

/* Its request's header and its own data object (a request of one object
 * holds it in its hash, job.h): where it goes, whose it is. 0 when the
 * request is gone. */
static int show_request(where *w)
{
	redisReply *h = cmd_or_die("HMGET %s%s h n o", K.request_stem, w->rid), *obj = NULL;
	const redisReply *data = NULL;
	long left;
	int found = 0;
	pb_job j;

	if (h->element[0]->type != REDIS_REPLY_STRING) {
		freeReplyObject(h);
		return 0;
	}
	if (h->element[2]->type == REDIS_REPLY_STRING)
		data = w->index == 0 ? h->element[2] : NULL;
	else
		data = obj = data_object(w);
	if (data && data->type == REDIS_REPLY_STRING &&
	    pb_job_from_v3(&j, "0000000000000000", w->ref, strlen(w->ref), h->element[0]->str,
			   h->element[0]->len, data->str, data->len) == PB_OK &&
	    url_dest(j.url, j.url_len, j.data, j.data_len, &w->url, &w->dest) == PB_OK) {
		snprintf(w->client, sizeof(w->client), "%.*s", (int)j.client_len, j.client);
		w->enqueued_ms = j.enqueued_ms;
		json_object_set_new(w->out, "dest", json_string(w->dest.id));
		json_object_set_new(w->out, "url", json_string(w->url.data));
		json_object_set_new(w->out, "client", json_string(w->client));
		json_object_set_new(w->out, "enqueued_at", json_string(utc(w->enqueued_ms)));
		json_object_set_new(w->out, "data", json_loadb(j.data, j.data_len, 0, NULL));
		found = 1;
	}
	if (h->element[1]->type == REDIS_REPLY_STRING &&
	    pb_parse_long(h->element[1]->str, LONG_MIN, LONG_MAX, &left) == PB_OK)
		json_object_set_new(w->out, "request_postbacks_left", json_integer(left));
	if (obj)
		freeReplyObject(obj);
	freeReplyObject(h);
	return found;
}

/* Its last failed attempts (outcomes.lua: field a<i> of its request). */
static void show_outcomes(where *w)
{
	redisReply *r = cmd_or_die("HGET %s%s a%lu", K.request_stem, w->rid, w->index);
	json_t *l = json_array();
	char *line, *save = NULL;

	if (r->type == REDIS_REPLY_STRING) {
		for (line = strtok_r(r->str, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
			/* "<ms> <attempt> <reason>" */
			char *sp1 = strchr(line, ' '), *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
			long ms, attempt;

			if (sp2 == NULL)
				continue;
			*sp1 = *sp2 = '\0';
			if (pb_parse_long(line, 0, LONG_MAX, &ms) == PB_OK &&
			    pb_parse_long(sp1 + 1, 0, INT_MAX, &attempt) == PB_OK)
				json_array_append_new(l, json_pack("{s:s, s:i, s:s}", "at", utc(ms),
								   "attempt", (int)attempt,
								   "reason", sp2 + 1));
		}
	}
	freeReplyObject(r);
	json_object_set_new(w->out, "failed_attempts", l);
}

static void state(where *w, const char *s)
{
	json_object_set_new(w->out, "state", json_string(s));
}

/* Each member of the set or sorted set key that matches pattern (SSCAN or
 * ZSCAN: scan is "SSCAN" or "ZSCAN"), through fn until it returns 1. */
static int scan_for(where *w, const char *scan, const char *key, const char *pattern,
		    int (*fn)(where *w, const redisReply *x, const redisReply *score))
{
	char cursor[32] = "0";
	int zset = !strcmp(scan, "ZSCAN"), found = 0;

	do {
		redisReply *r = cmd_or_die("%s %s %s MATCH %s COUNT 1000", scan, key, cursor,
					   pattern);
		const redisReply *xs = r->element[1];
		size_t k;

		pb_strlcpy(cursor, r->element[0]->str, sizeof(cursor));
		for (k = 0; k < xs->elements && !found; k += zset ? 2 : 1)
			found = fn(w, xs->element[k], zset ? xs->element[k + 1] : NULL);
		freeReplyObject(r);
	} while (!found && strcmp(cursor, "0") != 0);
	return found;
}

static const char *held_by_agent; /* show_held's agent, for held_one */

static int held_one(where *w, const redisReply *x, const redisReply *score)
{
	pb_ref ref;

	(void)score;
	if (pb_ref3_decode(&ref, x->str, x->len) != PB_OK || strcmp(ref.rid, w->rid) != 0 ||
	    strtoul(ref.index, NULL, 10) != w->index)
		return 0;
	state(w, "in-flight");
	json_object_set_new(w->out, "agent", json_string(held_by_agent));
	json_object_set_new(w->out, "attempts", json_integer(ref.attempts));
	return 1;
}

/* Held by an agent: the reference as taken ("<rid> <i>") or tried before
 * ("<rid> <i> <attempts>"). */
static int show_held(where *w)
{
	redisReply *agents = cmd_or_die("SMEMBERS %s", K.agents);
	char key[PB_KEY_MAX * 2], pattern[sizeof(w->ref) + 2];
	int found = 0;
	size_t i;

	snprintf(pattern, sizeof(pattern), "%s*", w->ref);
	for (i = 0; i < agents->elements && !found; i++) {
		held_by_agent = agents->element[i]->str;
		snprintf(key, sizeof(key), "%s%s:%s", K.held_stem, held_by_agent, w->dest.id);
		found = scan_for(w, "SSCAN", key, pattern, held_one);
	}
	freeReplyObject(agents);
	return found;
}

static int scheduled_one(where *w, const redisReply *x, const redisReply *score)
{
	pb_ref ref;
	long due;

	if (pb_ref3_sched_decode(&ref, x->str, x->len) != PB_OK ||
	    strcmp(ref.rid, w->rid) != 0 || strtoul(ref.index, NULL, 10) != w->index ||
	    pb_parse_long(score->str, 0, LONG_MAX, &due) != PB_OK)
		return 0;
	state(w, "scheduled");
	json_object_set_new(w->out, "due", json_string(utc(due)));
	json_object_set_new(w->out, "attempts", json_integer(ref.attempts));
	return 1;
}

static int show_scheduled(where *w)
{
	char pattern[PB_DEST_ID_LEN + sizeof(w->ref) + 4];

	snprintf(pattern, sizeof(pattern), "%s %s *", w->dest.id, w->ref);
	return scan_for(w, "ZSCAN", K.scheduled, pattern, scheduled_one);
}

/* In its destination's queue: in a run, or as a reference (handed back,
 * or a retry come due); how many elements wait ahead of it in its lane. */
static int queued_one(const pb_ref *ref, unsigned long count, int ok, long at, void *arg)
{
	where *w = arg;
	unsigned long first = strtoul(ref->index, NULL, 10);

	if (!ok || strcmp(ref->rid, w->rid) != 0 || w->index < first ||
	    w->index >= first + count)
		return 0;
	state(w, "queued");
	json_object_set_new(w->out, "ahead", json_integer(at));
	json_object_set_new(w->out, "attempts", json_integer(ref->attempts));
	return 1;
}

static int show_queued(where *w)
{
	return queue_each(w->dest.id, queued_one, w);
}

/* Where a dead postback went and whose it was, from its letter, when its
 * request (which says so otherwise) is gone. */
static void dead_origin(where *w, const pb_dead *d)
{
	pb_job j;

	if (w->dest.id[0] != '\0' || pb_job_decode(&j, d->job, d->job_len) != PB_OK ||
	    url_dest(j.url, j.url_len, j.data, j.data_len, &w->url, &w->dest) != PB_OK)
		return;
	json_object_set_new(w->out, "dest", json_string(w->dest.id));
	json_object_set_new(w->out, "url", json_string(w->url.data));
	json_object_set_new(w->out, "client", json_string(d->client));
	json_object_set_new(w->out, "data", json_loadb(j.data, j.data_len, 0, NULL));
}

static void dead_one(const pb_dead *d, void *arg)
{
	where *w = arg;

	dead_origin(w, d);
	state(w, "dead");
	json_object_set_new(w->out, "attempts", json_integer(d->attempts));
	json_object_set_new(w->out, "dead", json_pack("{s:s, s:I, s:s, s:s}", "failed_at",
						      utc(d->failed_at), "status",
						      (json_int_t)d->status, "error", d->error,
						      "agent", d->agent));
}

static int show_dead(where *w, const char *id)
{
	return dead_letter_find(id, dead_one, w);
}

/* Where it is now. The places are read one after another, not at once: a
 * postback that moved between two reads is looked for again. */
static int show_where(where *w, const char *id, int have_request)
{
	int round;

	for (round = 0; round < 3; round++) {
		if (have_request && (show_held(w) || show_scheduled(w) || show_queued(w)))
			return 1;
		if (show_dead(w, id))
			return 1;
		if (!have_request)
			break;
		pb_sleep_ms(50, NULL);
	}
	if (have_request) {
		/* Its request lives on for its other postbacks: this one ended. */
		state(w, "delivered");
		return 1;
	}
	state(w, "unknown");
	return 0;
}

static void show_text(const json_t *o)
{
	const char *k;
	json_t *v;
	size_t i;

	json_object_foreach((json_t *)o, k, v) {
		if (!strcmp(k, "failed_attempts")) {
			json_t *x;

			json_array_foreach(v, i, x)
				printf("%-10s %s  attempt %lld  %s\n", i ? "" : "failed",
				       json_string_value(json_object_get(x, "at")),
				       (long long)json_integer_value(json_object_get(x, "attempt")),
				       json_string_value(json_object_get(x, "reason")));
			continue;
		}
		if (json_is_string(v)) {
			printf("%-10s %s\n", k, json_string_value(v));
		} else {
			char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

			printf("%-10s %s\n", k, s ? s : "?");
			free(s);
		}
	}
}

int cmd_show(const pb_args *a)
{
	const char *id = a->pos[0];
	where w;
	int have, found;

	memset(&w, 0, sizeof(w));
	if (id_parse(&w, id) != PB_OK) {
		fprintf(stderr, "pbctl: '%s' is no postback id (<request id>-<index>)\n", id);
		return 2;
	}
	pb_buf_init(&w.url, 65536);
	w.out = json_mode ? answer : json_object();
	json_object_set_new(w.out, "id", json_string(id));
	have = show_request(&w);
	if (have)
		show_outcomes(&w);
	found = show_where(&w, id, have);
	if (!found)
		json_object_set_new(w.out, "note", json_string(
					    "not in Redis here: delivered and its request ended, "
					    "purged, or never queued on this shard"));
	if (!json_mode) {
		show_text(w.out);
		json_decref(w.out);
	}
	pb_buf_free(&w.url);
	return found ? 0 : 1;
}
