/*
 * pbctl breakers: every destination's breaker (keys.h <p>:dest:<d>) and an
 * operator's hand on it: open (park), close, rate (breaker_set.lua).
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "defaults.h" /* generated: build/gen/defaults.h */
#include "lua_functions.h"
#include "pb.h"

/* Each destination's breaker hash, through fn; how many there were. */
static long each_breaker(void (*fn)(const char *id, const redisReply *h, void *arg),
			 void *arg)
{
	char cursor[32] = "0", match[PB_KEY_MAX + 2];
	long n = 0;

	snprintf(match, sizeof(match), "%s*", K.dest_stem);
	do {
		redisReply *r = cmd_or_die("SCAN %s MATCH %s COUNT 1000", cursor, match);
		size_t i;

		pb_strlcpy(cursor, r->element[0]->str, sizeof(cursor));
		for (i = 0; i < r->element[1]->elements; i++, n++) {
			const char *key = r->element[1]->element[i]->str;
			redisReply *h = cmd_or_die("HGETALL %s", key);

			fn(key + strlen(K.dest_stem), h, arg);
			freeReplyObject(h);
		}
		freeReplyObject(r);
	} while (strcmp(cursor, "0") != 0);
	return n;
}

static void count_open(const char *id, const redisReply *h, void *arg)
{
	(void)id;
	if (!strcmp(field_of(h, "state"), "open") || !strcmp(field_of(h, "state"), "half"))
		++*(long *)arg;
}

long breakers_open(void)
{
	long n = 0;

	each_breaker(count_open, &n);
	return n;
}

static void print_breaker(const char *id, const redisReply *h, void *arg)
{
	const char *until = field_of(h, "until"), *rate = field_of(h, "rate");
	const char *state = field_of(h, "state"), *fails = field_of(h, "fails");
	long ms = 0, nfails = 0, nrate = 0;

	(void)arg;
	pb_parse_long(until, 0, LONG_MAX, &ms);
	pb_parse_long(fails, 0, LONG_MAX, &nfails);
	pb_parse_long(rate, 0, LONG_MAX, &nrate);
	if (json_mode) {
		json_array_append_new(json_object_get(answer, "breakers"),
				      json_pack("{s:s, s:s, s:I, s:o, s:I, s:s, s:s}", "dest", id,
						"state", state[0] ? state : "closed",
						"fails", (json_int_t)nfails, "until",
						ms ? json_string(utc(ms)) : json_null(),
						"rate", (json_int_t)nrate,
						"url", field_of(h, "url"), "reason", field_of(h, "reason")));
		return;
	}
	printf("%s  %-6s fails %-4s until %-24s rate %-4s %s  %s\n", id,
	       state[0] ? state : "closed", fails[0] ? fails : "0", ms ? utc(ms) : "-",
	       rate[0] ? rate : "-", field_of(h, "url"), field_of(h, "reason"));
}

int cmd_breakers_list(const pb_args *a)
{
	(void)a;
	if (json_mode)
		json_object_set_new(answer, "breakers", json_array());
	if (each_breaker(print_breaker, NULL) == 0 && !json_mode)
		printf("no destination has failed\n");
	return 0;
}

/* breakers open DEST [--for S] | close DEST | rate DEST N */
int cmd_breakers_set(const pb_args *a)
{
	const char *verb = strchr(a->cmd->name, ' ') + 1;
	char key[PB_KEY_MAX], num[24];
	long n = 0;
	pb_dest d;
	redisReply *r;

	if (dest_arg(a->pos[0], &d) != PB_OK)
		return 2;
	if (!strcmp(verb, "rate") && pb_parse_long(a->pos[1], 0, 1000000, &n) != PB_OK) {
		fprintf(stderr, "pbctl: breakers rate takes 0 to 1000000 requests/s, not '%s'\n",
			a->pos[1]);
		return 2;
	}
	if (!strcmp(verb, "open"))
		n = (long)pb_args_num(a, "--for", 3600) * 1000;
	snprintf(num, sizeof(num), "%ld", n);
	if (pb_key_join(key, sizeof(key), K.dest_stem, d.id) != PB_OK)
		return 2;
	{
		/* How long the state outlives its "until" (prelude.lua
		 * breaker_keep): by the agents' default cooldown. */
		const pb_fn_breaker_set f = { .k = key, .ready = K.ready, .what = verb,
					      .n = num, .url = d.name, .d = d.id,
					      .cooldown = PB_DEF_breaker_cooldown_ms };
		const char *fargv[PB_FN_BREAKER_SET_ARGC];

		r = fcall_or_die(pb_fn_breaker_set_argv(&f, fargv), fargv, NULL);
	}
	freeReplyObject(r);
	if (json_mode) {
		json_object_set_new(answer, "dest", json_string(d.id));
		json_object_set_new(answer, "url", json_string(d.name));
		json_object_set_new(answer, "done", json_string(verb));
		if (!strcmp(verb, "rate"))
			json_object_set_new(answer, "rate", json_integer(n));
		return 0;
	}
	printf("%s %s: %s\n", d.name[0] ? d.name : d.id, d.id,
	       !strcmp(verb, "open") ? "open (parked)" :
	       !strcmp(verb, "close") ? "closed" : n ? "rate set" : "rate removed");
	return 0;
}
