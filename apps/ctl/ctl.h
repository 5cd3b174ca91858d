/*
 * ctl.h - what pbctl's commands share: the settings, the connection to one
 * shard's master (main.c points it at each shard in turn), the key names,
 * the answer as JSON, and Redis calls that exit on an error.
 *
 * A command prints text, or with --json fills `answer` (one JSON object,
 * printed once by main.c). Every command is a function of its pbctl_*.c
 * file, declared here in the order of pbctl's help.
 */
#ifndef PB_CTL_H
#define PB_CTL_H

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "args.h"
#include "buf.h"
#include "config.h"
#include "dest.h"
#include "keys.h"
#include "redis.h"

extern pb_config cfg;
extern pb_redis R;
extern pb_keys K;

extern json_t *answer; /* the command's answer, with --json */
extern int json_mode;
/* What a failed Redis command exits with: 1, or 2 (down) in status. */
extern int die_code;

/* Print answer (with --json) and exit with code. */
void ctl_exit(int code);

/* A reply, or exit saying why there is none (die_code). */
redisReply *reply_or_die(redisReply *r);
redisReply *cmd_or_die(const char *fmt, ...);
/* A function of apps/lua (argv as its pb_fn_<name>_argv laid it out;
 * lens NULL for C strings). */
redisReply *fcall_or_die(int argc, const char **argv, const size_t *lens);
long long int_cmd(const char *fmt, const char *arg);

/* Postbacks queued: the waiting count and version 1 jobs left. */
long long waiting(void);
/* What agent id holds; what every registered agent holds. */
long long held_by(const char *agent);
long long in_flight(void);
/* A change to the cluster's own state (client keys, signing secrets,
 * policies) is confirmed by a replica before pbctl says it is done, as a
 * postback is: a failover must not bring a revoked key back. Warns when
 * none confirmed it within 2 s. */
void replica_wait(void);
/* A hash reply's field f, or "". */
const char *field_of(const redisReply *h, const char *f);
/* DEST as pbctl takes it: a URL (its scheme, host and port) or a
 * destination id. PB_OK, or PB_ERR_FORMAT with a message on stderr. */
int dest_arg(const char *s, pb_dest *d);
/* The URL a postback goes to (a template filled from its data object) into
 * url, and its destination. PB_OK or PB_ERR_FORMAT. */
int url_dest(const char *tpl, size_t tpl_len, const char *data, size_t data_len,
	     pb_buf *url, pb_dest *d);
/* ms since the epoch as "2026-12-07T10:00:00.123Z", in a static buffer. */
const char *utc(long long ms);

struct pb_dead;
/* The dead letter with that id, through fn (its strings live only during
 * the call; cmd_dead.c). 1 if there is one. */
int dead_letter_find(const char *id, void (*fn)(const struct pb_dead *d, void *arg),
		     void *arg);

/* Destinations whose breaker is open or half open (cmd_breakers.c). */
long breakers_open(void);

/* Sentinel (status, switchover). */
int same_node(const pb_hostport *a, const pb_hostport *b);
/* What each configured Sentinel names master of R's shard (port 0: it did
 * not answer; errs[i], when given, says why), in named[0..R.nsentinels). */
int sentinels_ask(pb_hostport *named, char (*errs)[256]);
/* The master a majority of all configured Sentinels names among named. */
int majority_of(const pb_hostport *named, pb_hostport *out);
/* Both: ask, then the majority's. */
int majority_master(pb_hostport *out);

/* The commands (main.c's table). */
int cmd_status(const pb_args *a);
int cmd_show(const pb_args *a);
int cmd_dests(const pb_args *a);
int cmd_dead_list(const pb_args *a);
int cmd_dead_show(const pb_args *a);
int cmd_dead_replay(const pb_args *a);
int cmd_dead_purge(const pb_args *a);
int cmd_drain(const pb_args *a);
int cmd_ids(const pb_args *a);
int cmd_breakers_list(const pb_args *a);
int cmd_breakers_set(const pb_args *a);
int cmd_switchover(const pb_args *a);
int cmd_keys_add(const pb_args *a);
int cmd_keys_list(const pb_args *a);
int cmd_keys_revoke(const pb_args *a);
int cmd_keys_sign(const pb_args *a);
int cmd_keys_share(const pb_args *a);
int cmd_clients(const pb_args *a);
int cmd_policy_show(const pb_args *a);
int cmd_policy_set(const pb_args *a);
int cmd_policy_clear(const pb_args *a);
int cmd_functions_list(const pb_args *a);
int cmd_functions_load(const pb_args *a);

#endif
