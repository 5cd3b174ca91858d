/*
 * pbctl dead: the dead letters (deadletter.h, keys.h <p>:dead, newest
 * first): listed, shown, replayed (queued again, attempts reset) or purged,
 * one by id or every one a filter selects (destination, client, error,
 * time).
 */
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "deadletter.h"
#include "job.h"
#include "lua_functions.h"
#include "pb.h"

/* Which letters a command acts on. */
typedef struct filter {
	const char *id;     /* one letter, or NULL */
	const char *client; /* NULL: any */
	const char *error;  /* a part of its error or of "status N" */
	pb_dest dest;       /* id "": any */
	long long since, until; /* failed_at bounds, ms; 0: none */
} filter;

static int filter_of(const pb_args *a, filter *f);
static int matches(const filter *f, const pb_dead *d);
static void letter_dest(const pb_dead *d, char *id);
static json_t *letter_json(const pb_dead *d);
static int take_dead(const redisReply *record, const pb_dead *d, int replay);

/* Each letter f selects, newest first, through fn (which returns how many
 * it removed from the list: 0 or 1), until fn has been called max times
 * (0: no bound). Reads the list a chunk at a time. Returns how many. */
static long each_letter(const filter *f, long max,
			int (*fn)(const redisReply *e, const pb_dead *d, json_t *owner, void *arg),
			void *arg)
{
	const long chunk = 1000;
	long at = 0, seen = 0;

	for (;;) {
		redisReply *r = cmd_or_die("LRANGE %s %ld %ld", K.dead, at, at + chunk - 1);
		long removed = 0;
		size_t i;

		for (i = 0; i < r->elements && (max == 0 || seen < max); i++) {
			const redisReply *e = r->element[i];
			json_t *owner;
			pb_dead d;

			if (pb_dead_decode(&d, &owner, e->str, e->len) != PB_OK) {
				fprintf(stderr, "pbctl: %s: element %ld is no dead-letter record\n",
					K.dead, at + (long)i);
				continue;
			}
			if (matches(f, &d)) {
				seen++;
				removed += fn(e, &d, owner, arg);
			}
			json_decref(owner);
		}
		i = r->elements;
		freeReplyObject(r);
		if ((long)i < chunk || (max != 0 && seen >= max))
			return seen;
		at += chunk - removed; /* what was removed moved the rest up */
	}
}

static int list_one(const redisReply *e, const pb_dead *d, json_t *owner, void *arg)
{
	(void)e, (void)owner, (void)arg;
	if (json_mode) {
		json_array_append_new(json_object_get(answer, "dead"), letter_json(d));
		return 0;
	}
	printf("%s  %-24s attempts %lld  status %lld  %s\n", utc(d->failed_at), d->id,
	       d->attempts, d->status, d->error);
	return 0;
}

int cmd_dead_list(const pb_args *a)
{
	long n = 20;
	long long total;
	long shown;
	filter f;

	if (filter_of(a, &f) != PB_OK)
		return 2;
	f.id = NULL; /* its argument is how many */
	if (a->npos > 0 && pb_parse_long(a->pos[0], 1, 1000000, &n) != PB_OK) {
		fprintf(stderr, "pbctl: dead list takes 1 to 1000000, not '%s'\n", a->pos[0]);
		return 2;
	}
	if (json_mode)
		json_object_set_new(answer, "dead", json_array());
	shown = each_letter(&f, n, list_one, NULL);
	total = int_cmd("LLEN %s", K.dead);
	if (json_mode)
		json_object_set_new(answer, "total", json_integer(total));
	else
		printf("%ld shown of %lld\n", shown, total);
	return 0;
}

static int show_one(const redisReply *e, const pb_dead *d, json_t *owner, void *arg)
{
	(void)e, (void)d, (void)arg;
	if (json_mode) {
		json_array_append(json_object_get(answer, "dead"), owner);
		return 0;
	}
	json_dumpf(owner, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	putchar('\n');
	return 0;
}

/* dead_letter_find's adapter: the finder's fn and its argument. */
struct finder {
	void (*fn)(const pb_dead *d, void *arg);
	void *arg;
};

static int found_one(const redisReply *e, const pb_dead *d, json_t *owner, void *arg)
{
	const struct finder *f = arg;

	(void)e, (void)owner;
	f->fn(d, f->arg);
	return 0;
}

int dead_letter_find(const char *id, void (*fn)(const pb_dead *d, void *arg), void *arg)
{
	filter f = { .id = id };
	struct finder fd = { fn, arg };

	return each_letter(&f, 1, found_one, &fd) > 0;
}

int cmd_dead_show(const pb_args *a)
{
	filter f = { .id = a->pos[0] };

	if (json_mode)
		json_object_set_new(answer, "dead", json_array());
	if (each_letter(&f, 1, show_one, NULL) > 0)
		return 0;
	fprintf(stderr, "pbctl: no dead letter with id %s\n", a->pos[0]);
	return 1;
}

static int take_one(const redisReply *e, const pb_dead *d, json_t *owner, void *arg)
{
	int *replay = arg, taken = take_dead(e, d, *replay);

	(void)owner;
	if (taken && json_mode)
		json_array_append_new(json_object_get(answer, "ids"), json_string(d->id));
	return taken;
}

/* dead replay|purge ID | --all | filters */
static int take_dead_letters(const pb_args *a, int replay)
{
	const char *verb = replay ? "replayed" : "purged";
	filter f;
	long n;

	if (filter_of(a, &f) != PB_OK)
		return 2;
	if (f.id == NULL && !pb_args_has(a, "--all") && f.client == NULL && f.error == NULL &&
	    f.dest.id[0] == '\0' && f.since == 0 && f.until == 0) {
		fprintf(stderr, "pbctl: dead %s takes an ID, --all, or a filter (see --help)\n",
			replay ? "replay" : "purge");
		return 2;
	}
	if (json_mode)
		json_object_set_new(answer, "ids", json_array());
	n = each_letter(&f, f.id ? 1 : 0, take_one, &replay);
	if (json_mode)
		json_object_set_new(answer, verb, json_integer((json_int_t)json_array_size(
							json_object_get(answer, "ids"))));
	else
		printf("%s: %ld dead letter(s)\n", verb, n);
	return n > 0 ? 0 : 1;
}

int cmd_dead_replay(const pb_args *a)
{
	return take_dead_letters(a, 1);
}

int cmd_dead_purge(const pb_args *a)
{
	return take_dead_letters(a, 0);
}

static int filter_of(const pb_args *a, filter *f)
{
	const char *dest = pb_args_str(a, "--dest", NULL);

	memset(f, 0, sizeof(*f));
	f->id = a->npos > 0 ? a->pos[0] : NULL;
	f->client = pb_args_str(a, "--client", NULL);
	f->error = pb_args_str(a, "--error", NULL);
	f->since = pb_args_num(a, "--since", 0);
	f->until = pb_args_num(a, "--until", 0);
	if (f->id && pb_args_has(a, "--all")) {
		fprintf(stderr, "pbctl: an ID or --all, not both\n");
		return PB_ERR_FORMAT;
	}
	return dest ? dest_arg(dest, &f->dest) : PB_OK;
}

static int matches(const filter *f, const pb_dead *d)
{
	char status[32], dest[PB_DEST_ID_LEN + 1];

	if (f->id && strcmp(d->id, f->id) != 0)
		return 0;
	if (f->client && strcmp(d->client, f->client) != 0)
		return 0;
	if ((f->since && d->failed_at < f->since) || (f->until && d->failed_at > f->until))
		return 0;
	snprintf(status, sizeof(status), "status %lld", d->status);
	if (f->error && !strstr(d->error, f->error) && !(d->status && strstr(status, f->error)))
		return 0;
	if (f->dest.id[0]) {
		letter_dest(d, dest);
		if (strcmp(dest, f->dest.id) != 0)
			return 0;
	}
	return 1;
}

/* The letter's destination id: as the agent wrote it, or from its job
 * (a letter of an older agent); "" when neither says. */
static void letter_dest(const pb_dead *d, char *id)
{
	pb_dest dest;
	pb_buf url;
	pb_job j;

	id[0] = '\0';
	if (pb_dest_id_valid(d->dest, strlen(d->dest))) {
		memcpy(id, d->dest, PB_DEST_ID_LEN + 1);
		return;
	}
	pb_buf_init(&url, 65536);
	if (pb_job_decode(&j, d->job, d->job_len) == PB_OK &&
	    url_dest(j.url, j.url_len, j.data, j.data_len, &url, &dest) == PB_OK)
		memcpy(id, dest.id, PB_DEST_ID_LEN + 1);
	pb_buf_free(&url);
}

static json_t *letter_json(const pb_dead *d)
{
	char dest[PB_DEST_ID_LEN + 1];

	letter_dest(d, dest);
	return json_pack("{s:s, s:s, s:I, s:I, s:s, s:s, s:s, s:s}", "id", d->id,
			 "failed_at", utc(d->failed_at), "attempts", (json_int_t)d->attempts,
			 "status", (json_int_t)d->status, "error", d->error, "agent", d->agent,
			 "client", d->client, "dest", dest);
}

/* Replay (queue again, attempts reset) or purge one dead letter. */
static int take_dead(const redisReply *record, const pb_dead *d, int replay)
{
	pb_buf job;
	pb_job j;
	redisReply *r;
	int taken;

	pb_buf_init(&job, d->job_len + 32); /* its attempts reset: fewer digits */
	if (replay && (pb_job_decode(&j, d->job, d->job_len) != PB_OK ||
		       pb_job_reencode(&job, &j, 0) != PB_OK)) {
		fprintf(stderr, "pbctl: dead letter %s: its job cannot be decoded; "
			"kept (purge it to drop it)\n", d->id);
		pb_buf_free(&job);
		return 0;
	}
	{
		const pb_fn_dead_take a = { .dead = K.dead, .v1_queue = K.queue,
					    .letter = record->str,
					    .job = job.data ? job.data : "" };
		const char *argv[PB_FN_DEAD_TAKE_ARGC];
		size_t lens[PB_FN_DEAD_TAKE_ARGC], i;

		pb_fn_dead_take_argv(&a, argv);
		for (i = 0; i < PB_ARRAY_LEN(argv); i++)
			lens[i] = argv[i] == a.letter ? record->len
				: argv[i] == a.job ? job.len : strlen(argv[i]);
		r = fcall_or_die((int)PB_ARRAY_LEN(argv), argv, lens);
	}
	taken = r->integer == 1;
	freeReplyObject(r);
	pb_buf_free(&job);
	return taken;
}
