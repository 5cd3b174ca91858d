/*
 * args.h - pbctl's one argument parser: every command, its positional
 * arguments and its options declared in one table (main.c), read the same
 * way for all.
 *
 *   pbctl [-c FILE] [--setting=value ...] GROUP [VERB] [ARG ...] [--opt ...]
 *
 * An option is "--name value" or "--name=value"; a flag takes no value.
 * --help and --json are every command's. "--" ends the options. An unknown
 * command or option, a missing or out-of-bounds value, too few or too many
 * arguments: an error, which pbctl reports with the command's usage and
 * exit code 2.
 */
#ifndef PB_ARGS_H
#define PB_ARGS_H

#include <stdint.h>
#include <stdio.h>

#define PB_ARGS_MAX_OPTS 8
#define PB_ARGS_MAX_POS 12

enum pb_opt_kind {
	PB_OPT_FLAG, /* present or not */
	PB_OPT_NUM,  /* an integer within min..max */
	PB_OPT_STR,  /* any text */
	PB_OPT_TIME  /* a moment: "15m", "2h", "3d" ago, or 2026-12-07T10:00:00Z;
			read as ms since the epoch */
};

typedef struct pb_opt {
	const char *name;  /* "--timeout" */
	int kind;          /* enum pb_opt_kind */
	long min, max;     /* PB_OPT_NUM */
	const char *value; /* its value's name in the help: "S" */
	const char *help;
} pb_opt;

struct pb_args;

typedef struct pb_cmd {
	const char *name;     /* "dead replay": a group and its verb, or one word */
	int dflt;             /* the group's word alone means this command */
	const char *synopsis; /* its positional arguments: "ID" "[N]" */
	int min_pos, max_pos;
	pb_opt opts[PB_ARGS_MAX_OPTS]; /* up to the first without a name */
	const char *summary;  /* one line, for pbctl --help */
	const char *help;
	/* For the caller (main.c); the parser does not touch them. */
	int (*run)(const struct pb_args *a);
	int each; /* how it runs over shards (main.c) */
} pb_cmd;

typedef struct pb_args {
	const pb_cmd *cmd;
	const char *pos[PB_ARGS_MAX_POS];
	int npos;
	int given[PB_ARGS_MAX_OPTS];
	const char *str[PB_ARGS_MAX_OPTS];
	long long num[PB_ARGS_MAX_OPTS]; /* NUM: the number; TIME: ms */
	int help, json;
	char errstr[256];
} pb_args;

/*
 * The command argv names in cmds[0..n): *used is how many words named it
 * (1 or 2). NULL with errstr set when none. "GROUP --help" names the group's
 * default command, or, without one, its first (the caller prints the whole
 * group's help: pb_args_help_group).
 */
const pb_cmd *pb_args_find(const pb_cmd *cmds, size_t n, int argc, char **argv,
			   int *used, char *errstr, size_t errlen);
/* Read argv (what follows the command's name) by cmd's table. PB_OK, or
 * PB_ERR_FORMAT with a->errstr saying what is wrong. now_ms: for "2h". */
int pb_args_parse(pb_args *a, const pb_cmd *cmd, int argc, char **argv,
		  int64_t now_ms);

int pb_args_has(const pb_args *a, const char *name);
long long pb_args_num(const pb_args *a, const char *name, long long dflt);
const char *pb_args_str(const pb_args *a, const char *name, const char *dflt);

/* "usage: pbctl NAME SYNOPSIS [options]", its help, its options. */
void pb_args_help(const pb_cmd *cmd, FILE *f);
/* The help of every command of cmd's group (its first word). */
void pb_args_help_group(const pb_cmd *cmds, size_t n, const pb_cmd *cmd, FILE *f);
/* A moment as PB_OPT_TIME reads it, in ms since the epoch. */
int pb_args_time(const char *s, int64_t now_ms, long long *ms);

#endif
