/*
 * args.c - pbctl's argument parser (args.h). Pure: no I/O but the help it
 * is asked to print, so that tests/unit/test_args.c reads every case.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "args.h"
#include "pb.h"

/* Common to every command. */
static const pb_opt help_opt = { "--help", PB_OPT_FLAG, 0, 0, NULL,
				 "this help" };
static const pb_opt json_opt = { "--json", PB_OPT_FLAG, 0, 0, NULL,
				 "answer as JSON (one document on standard output)" };

static int fail(char *errstr, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(errstr, len, fmt, ap);
	va_end(ap);
	return PB_ERR_FORMAT;
}

/* The length of name's first word (its group). */
static size_t group_len(const char *name)
{
	const char *sp = strchr(name, ' ');

	return sp ? (size_t)(sp - name) : strlen(name);
}

static int in_group(const pb_cmd *c, const char *group, size_t len)
{
	return group_len(c->name) == len && strncmp(c->name, group, len) == 0;
}

const pb_cmd *pb_args_find(const pb_cmd *cmds, size_t n, int argc, char **argv,
			   int *used, char *errstr, size_t errlen)
{
	const pb_cmd *dflt = NULL, *first = NULL;
	size_t i, glen;

	if (argc < 1) {
		fail(errstr, errlen, "no command (see --help)");
		return NULL;
	}
	glen = strlen(argv[0]);
	for (i = 0; i < n; i++) {
		const pb_cmd *c = &cmds[i];

		if (!in_group(c, argv[0], glen))
			continue;
		if (c->name[glen] == '\0') { /* a command of one word */
			*used = 1;
			return c;
		}
		if (argc > 1 && strcmp(c->name + glen + 1, argv[1]) == 0) {
			*used = 2;
			return c;
		}
		if (first == NULL)
			first = c;
		if (c->dflt)
			dflt = c;
	}
	if (first == NULL) {
		fail(errstr, errlen, "unknown command '%s' (see --help)", argv[0]);
		return NULL;
	}
	/* The group's word alone, or followed by options: its default. A
	 * word that is no verb of the group is an error, not an argument. */
	if (argc > 1 && strncmp(argv[1], "--", 2) != 0) {
		fail(errstr, errlen, "unknown command '%s %s' (see pbctl %s --help)",
		     argv[0], argv[1], argv[0]);
		return NULL;
	}
	if (dflt == NULL && !(argc > 1 && strcmp(argv[1], "--help") == 0)) {
		fail(errstr, errlen, "'%s' needs one of its commands (see pbctl %s --help)",
		     argv[0], argv[0]);
		return NULL;
	}
	*used = 1;
	return dflt ? dflt : first;
}

int pb_args_time(const char *s, int64_t now_ms, long long *ms)
{
	static const struct { char unit; long long ms; } units[] = {
		{ 's', 1000LL }, { 'm', 60000LL }, { 'h', 3600000LL }, { 'd', 86400000LL },
	};
	size_t n = strlen(s), i;
	struct tm tm;
	char *end;

	for (i = 0; n > 1 && i < PB_ARRAY_LEN(units); i++) {
		char num[16];
		long v;

		if (s[n - 1] != units[i].unit || n - 1 >= sizeof(num))
			continue;
		memcpy(num, s, n - 1);
		num[n - 1] = '\0';
		if (pb_parse_long(num, 0, 3650L * 86400, &v) != PB_OK)
			return PB_ERR_FORMAT;
		*ms = now_ms - v * units[i].ms;
		return PB_OK;
	}
	memset(&tm, 0, sizeof(tm));
	end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (end == NULL || strcmp(end, "Z") != 0)
		return PB_ERR_FORMAT;
	*ms = (long long)timegm(&tm) * 1000;
	return PB_OK;
}

/* The option of cmd named name[0..len), its index in *at (-1: a common one). */
static const pb_opt *opt_named(const pb_cmd *cmd, const char *name, size_t len,
			       int *at)
{
	int i;

	for (i = 0; i < PB_ARGS_MAX_OPTS && cmd->opts[i].name; i++)
		if (strlen(cmd->opts[i].name) == len && !strncmp(cmd->opts[i].name, name, len)) {
			*at = i;
			return &cmd->opts[i];
		}
	*at = -1;
	if (strlen(help_opt.name) == len && !strncmp(help_opt.name, name, len))
		return &help_opt;
	if (strlen(json_opt.name) == len && !strncmp(json_opt.name, name, len))
		return &json_opt;
	return NULL;
}

/* An option's value into a. */
static int take_value(pb_args *a, const pb_opt *o, int at, const char *v,
		      int64_t now_ms)
{
	long n;

	switch (o->kind) {
	case PB_OPT_NUM:
		if (pb_parse_long(v, o->min, o->max, &n) != PB_OK)
			return fail(a->errstr, sizeof(a->errstr), "%s takes %ld to %ld, not '%s'",
				    o->name, o->min, o->max, v);
		a->num[at] = n;
		break;
	case PB_OPT_TIME:
		if (pb_args_time(v, now_ms, &a->num[at]) != PB_OK)
			return fail(a->errstr, sizeof(a->errstr),
				    "%s takes a time ago (90s, 15m, 2h, 3d) or a UTC time "
				    "(2026-12-07T10:00:00Z), not '%s'", o->name, v);
		break;
	}
	a->str[at] = v;
	a->given[at] = 1;
	return PB_OK;
}

static int take_option(pb_args *a, const pb_cmd *cmd, int argc, char **argv,
		       int *i, int64_t now_ms)
{
	const char *arg = argv[*i], *eq = strchr(arg, '=');
	size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
	const pb_opt *o;
	int at;

	if ((o = opt_named(cmd, arg, len, &at)) == NULL)
		return fail(a->errstr, sizeof(a->errstr), "pbctl %s: unknown option '%.*s'",
			    cmd->name, (int)len, arg);
	if (o->kind == PB_OPT_FLAG) {
		if (eq)
			return fail(a->errstr, sizeof(a->errstr), "%s takes no value", o->name);
		if (o == &help_opt)
			a->help = 1;
		else if (o == &json_opt)
			a->json = 1;
		else
			a->given[at] = 1;
		return PB_OK;
	}
	if (eq)
		return take_value(a, o, at, eq + 1, now_ms);
	if (*i + 1 >= argc)
		return fail(a->errstr, sizeof(a->errstr), "%s needs a value (%s)", o->name,
			    o->value ? o->value : "?");
	return take_value(a, o, at, argv[++*i], now_ms);
}

int pb_args_parse(pb_args *a, const pb_cmd *cmd, int argc, char **argv,
		  int64_t now_ms)
{
	int i, options = 1;

	memset(a, 0, sizeof(*a));
	a->cmd = cmd;
	for (i = 0; i < argc; i++) {
		if (options && !strcmp(argv[i], "--")) {
			options = 0;
		} else if (options && !strncmp(argv[i], "--", 2)) {
			if (take_option(a, cmd, argc, argv, &i, now_ms) != PB_OK)
				return PB_ERR_FORMAT;
		} else if (a->npos >= cmd->max_pos || a->npos >= PB_ARGS_MAX_POS) {
			return fail(a->errstr, sizeof(a->errstr),
				    "pbctl %s: unexpected argument '%s'", cmd->name, argv[i]);
		} else {
			a->pos[a->npos++] = argv[i];
		}
	}
	if (!a->help && a->npos < cmd->min_pos)
		return fail(a->errstr, sizeof(a->errstr), "pbctl %s needs %s", cmd->name,
			    cmd->synopsis);
	return PB_OK;
}

static int index_of(const pb_args *a, const char *name)
{
	int i;

	for (i = 0; i < PB_ARGS_MAX_OPTS && a->cmd->opts[i].name; i++)
		if (!strcmp(a->cmd->opts[i].name, name))
			return i;
	return -1;
}

int pb_args_has(const pb_args *a, const char *name)
{
	int i = index_of(a, name);

	return i >= 0 && a->given[i];
}

long long pb_args_num(const pb_args *a, const char *name, long long dflt)
{
	int i = index_of(a, name);

	return i >= 0 && a->given[i] ? a->num[i] : dflt;
}

const char *pb_args_str(const pb_args *a, const char *name, const char *dflt)
{
	int i = index_of(a, name);

	return i >= 0 && a->given[i] ? a->str[i] : dflt;
}

static void print_opt(const pb_opt *o, FILE *f)
{
	char left[48];

	snprintf(left, sizeof(left), "%s%s%s", o->name, o->value ? " " : "",
		 o->value ? o->value : "");
	fprintf(f, "  %-22s %s\n", left, o->help);
}

void pb_args_help(const pb_cmd *cmd, FILE *f)
{
	int i;

	fprintf(f, "usage: pbctl %s%s%s [options]\n", cmd->name,
		cmd->synopsis[0] ? " " : "", cmd->synopsis);
	fprintf(f, "%s\n", cmd->help);
	for (i = 0; i < PB_ARGS_MAX_OPTS && cmd->opts[i].name; i++)
		print_opt(&cmd->opts[i], f);
	print_opt(&json_opt, f);
	print_opt(&help_opt, f);
}

void pb_args_help_group(const pb_cmd *cmds, size_t n, const pb_cmd *cmd, FILE *f)
{
	size_t i, len = group_len(cmd->name);
	int shown = 0;

	for (i = 0; i < n; i++) {
		if (!in_group(&cmds[i], cmd->name, len))
			continue;
		if (shown++)
			fputc('\n', f);
		pb_args_help(&cmds[i], f);
	}
}
