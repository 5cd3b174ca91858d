/*
 * ctl.c - what pbctl's commands share (ctl.h).
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "template.h"
#include "log.h"
#include "lua_functions.h"
#include "pb.h"

pb_config cfg;
pb_redis R;
pb_keys K;
json_t *answer;
int json_mode;
int die_code = 1;

void ctl_exit(int code)
{
	if (json_mode && answer != NULL) {
		json_dumpf(answer, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		putchar('\n');
	}
	fflush(stdout);
	exit(code);
}

/* Exit on a Redis error: status says the cluster is down (die_code 2). */
static void die(const char *why)
{
	if (json_mode) {
		json_object_set_new(answer, "error", json_string(why));
		if (die_code == 2) {
			json_object_set_new(answer, "health", json_string("DOWN"));
			json_object_set_new(answer, "why", json_string("the master does not answer"));
		}
	} else if (die_code == 2) {
		printf("health   DOWN: the master does not answer\n");
	}
	ctl_exit(die_code);
}

redisReply *reply_or_die(redisReply *r)
{
	if (r == NULL) {
		fprintf(stderr, "pbctl: %s\n", R.errstr);
		die(R.errstr);
	}
	if (r->type == REDIS_REPLY_ERROR) {
		fprintf(stderr, "pbctl: redis %s:%d: %s\n", R.master.host, R.master.port,
			r->str);
		die(r->str);
	}
	return r;
}

redisReply *cmd_or_die(const char *fmt, ...)
{
	va_list ap;
	redisReply *r;

	va_start(ap, fmt);
	r = pb_redis_vcmd(&R, fmt, ap);
	va_end(ap);
	return reply_or_die(r);
}

redisReply *fcall_or_die(int argc, const char **argv, const size_t *lens)
{
	return reply_or_die(pb_redis_argv(&R, argc, argv, lens));
}

long long int_cmd(const char *fmt, const char *arg)
{
	redisReply *r = cmd_or_die(fmt, arg);
	long long v = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;

	freeReplyObject(r);
	return v;
}

long long waiting(void)
{
	redisReply *r = cmd_or_die("GET %s", K.waiting);
	long n = 0;

	if (r->type == REDIS_REPLY_STRING && pb_parse_long(r->str, 0, LONG_MAX, &n) != PB_OK)
		n = 0;
	freeReplyObject(r);
	return n + int_cmd("LLEN %s", K.queue);
}

/* held_count.lua */
long long held_by(const char *agent)
{
	char processing[PB_KEY_MAX], held[PB_KEY_MAX];
	const pb_fn_held_count a = { .processing = processing, .held = held };
	const char *argv[PB_FN_HELD_COUNT_ARGC];
	redisReply *r;
	long long n;

	if (pb_key_join(processing, sizeof(processing), K.processing_stem, agent) != PB_OK ||
	    pb_key_join(held, sizeof(held), K.held_stem, agent) != PB_OK)
		return 0;
	r = fcall_or_die(pb_fn_held_count_argv(&a, argv), argv, NULL);
	n = r->integer;
	freeReplyObject(r);
	return n;
}

long long in_flight(void)
{
	redisReply *ids = cmd_or_die("SMEMBERS %s", K.agents);
	long long total = 0;
	size_t i;

	for (i = 0; i < ids->elements; i++)
		total += held_by(ids->element[i]->str);
	freeReplyObject(ids);
	return total;
}

const char *field_of(const redisReply *h, const char *f)
{
	size_t i;

	for (i = 0; i + 1 < h->elements; i += 2)
		if (!strcmp(h->element[i]->str, f))
			return h->element[i + 1]->str;
	return "";
}

void replica_wait(void)
{
	redisReply *r = cmd_or_die("WAIT 1 2000");

	if (r->type == REDIS_REPLY_INTEGER && r->integer < 1)
		fprintf(stderr, "pbctl: warning: no replica confirmed the change "
				"within 2 s; check `pbctl status`\n");
	freeReplyObject(r);
}

int dest_arg(const char *s, pb_dest *d)
{
	memset(d, 0, sizeof(*d));
	if (strstr(s, "://")) {
		if (pb_dest_of(d, s, strlen(s)) == PB_OK)
			return PB_OK;
		fprintf(stderr, "pbctl: '%s' has no scheme://host a postback could go to\n", s);
		return PB_ERR_FORMAT;
	}
	if (pb_dest_id_valid(s, strlen(s))) {
		memcpy(d->id, s, PB_DEST_ID_LEN);
		return PB_OK;
	}
	fprintf(stderr, "pbctl: '%s' is neither a URL nor a destination id\n", s);
	return PB_ERR_FORMAT;
}

int url_dest(const char *tpl, size_t tpl_len, const char *data, size_t data_len,
	     pb_buf *url, pb_dest *d)
{
	json_t *obj = json_loadb(data, data_len, 0, NULL);
	int rc = obj ? pb_template_fill(url, tpl, tpl_len, obj, "") : PB_ERR_FORMAT;

	json_decref(obj);
	if (rc == PB_OK && pb_buf_err(url) == PB_OK && url->data != NULL)
		rc = pb_dest_of(d, url->data, url->len);
	return rc == PB_OK ? PB_OK : PB_ERR_FORMAT;
}

const char *utc(long long ms)
{
	static char ts[32];

	pb_format_utc_ms(ts, sizeof(ts), ms);
	return ts;
}

int same_node(const pb_hostport *a, const pb_hostport *b)
{
	return a->port != 0 && a->port == b->port && strcmp(a->host, b->host) == 0;
}

int sentinels_ask(pb_hostport *named, char (*errs)[256])
{
	int i;

	for (i = 0; i < R.nsentinels; i++)
		if (pb_sentinel_get_master(&R, &R.sentinels[i], &named[i]) != PB_OK) {
			named[i].port = 0;
			if (errs)
				pb_strlcpy(errs[i], R.errstr, sizeof(errs[i]));
		}
	return R.nsentinels;
}

int majority_of(const pb_hostport *named, pb_hostport *out)
{
	int i, j, votes;

	for (i = 0; i < R.nsentinels; i++) {
		for (votes = 0, j = 0; j < R.nsentinels; j++)
			votes += same_node(&named[i], &named[j]);
		if (votes > R.nsentinels / 2) {
			*out = named[i];
			return PB_OK;
		}
	}
	return PB_ERR_NOTFOUND;
}

int majority_master(pb_hostport *out)
{
	pb_hostport named[PB_MAX_SENTINELS];

	sentinels_ask(named, NULL);
	return majority_of(named, out);
}
