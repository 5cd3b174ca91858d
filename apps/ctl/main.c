/*
 * pbctl - the operator's tool. Finds each shard's master through Sentinel
 * as the daemons do, with the same settings (-c FILE, --name=value).
 *
 * main.c: the commands (one table: what each takes, its help, how it runs
 * over the shards), the parse (args.h), and the run over the shards. Each
 * command is in a file of its own group: cmd_status.c, cmd_where.c (show,
 * dests, ids, drain), cmd_dead.c, cmd_breakers.c, cmd_switchover.c,
 * cmd_keys.c, cmd_functions.c; what they share is ctl.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "args.h"
#include "ctl.h"
#include "log.h"
#include "pb.h"
#include "shard.h"

/*
 * How a command runs over the shards (master_name lists them: shard.h):
 * EACH_WORST on every shard, one after another, the worst exit code; EACH_ANY
 * the same, 0 when any shard's was (what it looks for is on one shard);
 * FIRST on the first shard, which holds the client keys; NAMED on the shard
 * it names itself.
 */
enum { EACH_WORST, EACH_ANY, FIRST, NAMED };

#define DEAD_FILTERS                                                                   \
	{ "--dest", PB_OPT_STR, 0, 0, "DEST", "to one destination (a URL or its id)" },  \
	{ "--client", PB_OPT_STR, 0, 0, "NAME", "of one client" },                        \
	{ "--error", PB_OPT_STR, 0, 0, "TEXT", "whose error (or \"status N\") holds TEXT" }, \
	{ "--since", PB_OPT_TIME, 0, 0, "TIME", "dead since TIME (15m, 2h, 3d ago, or a UTC time)" }, \
	{ "--until", PB_OPT_TIME, 0, 0, "TIME", "dead until TIME" }
/* What dead replay and purge act on: an ID, every letter, or the filters'. */
#define DEAD_SELECTION { "--all", PB_OPT_FLAG, 0, 0, NULL, "every dead letter" }, DEAD_FILTERS

static const pb_cmd commands[] = {
	{ .name = "status", .synopsis = "", .run = cmd_status, .each = EACH_WORST,
	  .summary = "the cluster's health, and an exit code for it (0, 1, 2)",
	  .help = "Master per Sentinel, replicas and their lag, queue, retries, dead letters,\n"
		  "open breakers, ingest nodes, agents and what each holds, and a verdict,\n"
		  "also the exit code: 0 healthy; 1 degraded (a Sentinel, replica or agent\n"
		  "gone, or none registered); 2 down (no master a Sentinel majority names,\n"
		  "the master silent, no replica, or no ingest node alive)." },
	{ .name = "show", .synopsis = "ID", .min_pos = 1, .max_pos = 1, .run = cmd_show,
	  .each = EACH_ANY,
	  .summary = "where one postback is and what befell it",
	  .help = "Where postback ID is now (queued, in flight at which agent, scheduled\n"
		  "for when, dead, or delivered while its request lives on), where it\n"
		  "goes, whose it is, and its last failed attempts. Exit 1 if no shard\n"
		  "knows it (delivered and its request ended, purged, or never queued)." },
	{ .name = "dests", .synopsis = "", .run = cmd_dests, .each = EACH_WORST,
	  .opts = { { "--top", PB_OPT_NUM, 1, 1000000, "N", "the N busiest (default 50)" } },
	  .summary = "every destination: waiting, oldest, in flight, breaker, rate",
	  .help = "Every destination with something waiting, held, scheduled or a\n"
		  "breaker: postbacks waiting, the age of the oldest, in flight,\n"
		  "scheduled retries, its breaker, failures in a row, its rate." },
	{ .name = "dead list", .dflt = 1, .synopsis = "[N]", .max_pos = 1,
	  .run = cmd_dead_list, .each = EACH_WORST, .opts = { DEAD_FILTERS },
	  .summary = "the newest dead letters (filters: --dest, --client, ...)",
	  .help = "The newest N dead letters (default 20), of those the filters select." },
	{ .name = "dead show", .synopsis = "ID", .min_pos = 1, .max_pos = 1,
	  .run = cmd_dead_show, .each = EACH_ANY,
	  .summary = "one dead letter, whole, as JSON",
	  .help = "One dead letter, whole, as JSON." },
	{ .name = "dead replay", .synopsis = "[ID]", .max_pos = 1, .run = cmd_dead_replay,
	  .each = EACH_ANY,
	  .opts = { DEAD_SELECTION },
	  .summary = "queue dead letters again: ID, --all, or a filter's",
	  .help = "Queue dead letters again, attempts reset: ID, --all, or those the\n"
		  "filters select (after a partner's outage: --dest URL --since 2h)." },
	{ .name = "dead purge", .synopsis = "[ID]", .max_pos = 1, .run = cmd_dead_purge,
	  .each = EACH_ANY,
	  .opts = { DEAD_SELECTION },
	  .summary = "delete dead letters: ID, --all, or a filter's",
	  .help = "Delete dead letters: ID, --all, or those the filters select." },
	{ .name = "drain", .synopsis = "", .run = cmd_drain, .each = EACH_WORST,
	  .opts = { { "--timeout", PB_OPT_NUM, 1, 86400, "S", "give up after S seconds (300)" } },
	  .summary = "wait until nothing is queued, scheduled or in flight",
	  .help = "Wait until nothing is queued, scheduled or in flight; exit 1 on time-out." },
	{ .name = "ids", .synopsis = "", .run = cmd_ids, .each = EACH_WORST,
	  .summary = "every postback id in Redis and where it is (a snapshot)",
	  .help = "One line per postback held in Redis, \"STATE<TAB>ID<TAB>AGENT\", STATE one\n"
		  "of queued, scheduled, dead, in-flight (AGENT names who holds it). One\n"
		  "atomic snapshot: it reads every list whole, so keep it for checks." },
	{ .name = "breakers list", .dflt = 1, .synopsis = "", .run = cmd_breakers_list,
	  .each = EACH_WORST,
	  .summary = "destinations that failed: breaker, failures, rate",
	  .help = "Every destination that failed: its breaker (closed; open: parked until\n"
		  "a probe; half: a probe under way), failures in a row, until when, its\n"
		  "rate, its last failure." },
	{ .name = "breakers open", .synopsis = "DEST", .min_pos = 1, .max_pos = 1,
	  .run = cmd_breakers_set, .each = EACH_WORST,
	  .opts = { { "--for", PB_OPT_NUM, 1, 31536000, "S", "for S seconds (3600)" } },
	  .summary = "park a destination (a probe after --for S)",
	  .help = "Park DEST (a URL: its scheme, host and port count; or its id); a probe\n"
		  "after that, as for a breaker that opened by itself." },
	{ .name = "breakers close", .synopsis = "DEST", .min_pos = 1, .max_pos = 1,
	  .run = cmd_breakers_set, .each = EACH_WORST,
	  .summary = "let a destination's postbacks flow again",
	  .help = "Let DEST's postbacks flow again now." },
	{ .name = "breakers rate", .synopsis = "DEST N", .min_pos = 2, .max_pos = 2,
	  .run = cmd_breakers_set, .each = EACH_WORST,
	  .summary = "at most N requests/s to a destination (0: off)",
	  .help = "At most N requests/s to DEST from all agents together (0: no limit)." },
	{ .name = "switchover", .synopsis = "[SHARD]", .max_pos = 1, .run = cmd_switchover,
	  .each = NAMED,
	  .opts = { { "--timeout", PB_OPT_NUM, 1, 600, "S", "for the whole switch (30)" } },
	  .summary = "move the master role to a replica, losing nothing",
	  .help = "Pause writes on the master, wait until every replica has all of them,\n"
		  "SENTINEL FAILOVER, make the old master a replica of the new one, resume\n"
		  "(writes wait meanwhile; clients time out and retry on the new master).\n"
		  "SHARD: the shard's master name, needed with several shards." },
	{ .name = "keys add", .synopsis = "NAME", .min_pos = 1, .max_pos = 1,
	  .run = cmd_keys_add, .each = FIRST,
	  .summary = "issue a client key (printed once)",
	  .help = "Issue a key for client NAME and print it (once: Redis keeps only its\n"
		  "SHA-256). A client may hold several keys, to change them without a\n"
		  "pause: add, move the client, revoke the old." },
	{ .name = "keys list", .dflt = 1, .synopsis = "", .run = cmd_keys_list, .each = FIRST,
	  .summary = "the clients and their keys' hashes",
	  .help = "Clients, the first digits of their keys' hashes, when issued." },
	{ .name = "keys revoke", .synopsis = "[NAME]", .max_pos = 1, .run = cmd_keys_revoke,
	  .each = FIRST,
	  .opts = { { "--hash", PB_OPT_STR, 0, 0, "PREFIX", "the one key whose SHA-256 starts so (8 digits at least)" } },
	  .summary = "revoke a client's keys, or one by --hash",
	  .help = "Every key of client NAME, or the one --hash names, stops working (ingest\n"
		  "nodes see it within client_keys_refresh_ms)." },
	{ .name = "keys share", .synopsis = "NAME N", .min_pos = 2, .max_pos = 2,
	  .run = cmd_keys_share, .each = FIRST,
	  .summary = "client NAME may have N postbacks queued (0: the default)",
	  .help = "Client NAME may have at most N postbacks queued in the cluster (split\n"
		  "evenly over the open shards); past it its requests are answered 429,\n"
		  "nothing queued, and the other clients are not affected. 0: the\n"
		  "default again, client_share_pct of max_queue_size a shard. Ingest\n"
		  "nodes see it within client_keys_refresh_ms." },
	{ .name = "clients", .synopsis = "", .run = cmd_clients, .each = EACH_WORST,
	  .opts = { { "--reconcile", PB_OPT_FLAG, 0, 0, NULL, "count each client's postbacks again from Redis first" } },
	  .summary = "each client's postbacks queued on each shard",
	  .help = "Each client with postbacks queued on the shard (waiting, scheduled\n"
		  "or in flight: what its share bounds). Its share: pbctl keys list.\n"
		  "--reconcile counts them again from the postbacks themselves (in one\n"
		  "atomic step that reads every postback of the shard) and corrects the\n"
		  "counts that differ, saying which." },
	{ .name = "keys sign", .synopsis = "NAME", .min_pos = 1, .max_pos = 1,
	  .run = cmd_keys_sign, .each = FIRST,
	  .opts = { { "--retire", PB_OPT_FLAG, 0, 0, NULL, "drop all but the newest secret (a rotation's end)" },
		    { "--off", PB_OPT_FLAG, 0, 0, NULL, "stop signing client NAME's postbacks" } },
	  .summary = "sign client NAME's postbacks: a new secret (printed once)",
	  .help = "Sign every postback of client NAME (Standard Webhooks v1: headers\n"
		  "webhook-id, webhook-timestamp, webhook-signature): a new secret,\n"
		  "printed once, for its partners to verify with. A client already\n"
		  "signed keeps its old secret too, and the agents sign with both, until\n"
		  "`keys sign NAME --retire`. Agents apply a change within a second." },
	{ .name = "policy show", .dflt = 1, .synopsis = "[DEST]", .max_pos = 1,
	  .run = cmd_policy_show, .each = FIRST,
	  .summary = "each destination's own delivery rules",
	  .help = "The delivery policy of DEST (a URL: its scheme, host and port count;\n"
		  "or its id), or of every destination that has one. What a policy\n"
		  "leaves unset is the agents' configuration. Header values are shown\n"
		  "as (secret)." },
	{ .name = "policy set", .synopsis = "DEST F=V...", .min_pos = 2,
	  .max_pos = 12, .run = cmd_policy_set, .each = FIRST,
	  .summary = "set fields of a destination's delivery policy",
	  .help = "Set fields of DEST's policy, F=V each (F= unsets one); agents apply it\n"
		  "within a second. Fields:\n"
		  "  schedule=10s,1m,15m      delays before retry 1, 2, ... (the last repeats,\n"
		  "                           each within 10 %); empty: the configuration's\n"
		  "  retry_on=5xx,429,408,timeout,connect   which failures are retried\n"
		  "                           (any of them, or none); the rest are final\n"
		  "  timeout_ms=N             one attempt's whole time, ms\n"
		  "  max_attempts=N           attempts before a dead letter\n"
		  "  max_age_s=N              a postback older than this is dead (0: never)\n"
		  "  on_410=park|dead         park: a 410 Gone parks DEST until\n"
		  "                           `pbctl breakers close DEST`, its postbacks wait\n"
		  "  sign=client|off          sign as its client is, or never\n"
		  "  header=Name: value       sent with every attempt (several; Name: alone\n"
		  "                           removes one); values are never logged or shown\n"
		  "Redirects are never followed." },
	{ .name = "policy clear", .synopsis = "DEST", .min_pos = 1, .max_pos = 1,
	  .run = cmd_policy_clear, .each = FIRST,
	  .summary = "DEST follows the agents' configuration again",
	  .help = "Drop DEST's policy: its postbacks follow the agents' configuration\n"
		  "again (within a second)." },
	{ .name = "functions list", .dflt = 1, .synopsis = "", .run = cmd_functions_list,
	  .each = EACH_WORST,
	  .summary = "the libraries of Redis Functions loaded",
	  .help = "The queue's libraries of Redis Functions on the master, this version's\n"
		  "marked; exit 1 if it is not among them." },
	{ .name = "functions load", .synopsis = "", .run = cmd_functions_load,
	  .each = EACH_WORST,
	  .opts = { { "--prune", PB_OPT_FLAG, 0, 0, NULL, "also delete the other versions' libraries" } },
	  .summary = "load this version's library (--prune the others)",
	  .help = "Load this version's library on the master (each deployment does; its\n"
		  "daemons call it and nothing else)." },
};

static int run_each(const pb_cmd *c, const pb_args *a);
static char *usage_text(void);
static const char *default_config(void);

int main(int argc, char **argv)
{
	char err[256];
	const pb_cmd *c;
	char *usage = usage_text();
	pb_args a;
	int pos, used, rc;

	switch (pb_config_load(&cfg, PB_FOR_CTL, "pbctl", usage, argc, argv, &pos,
			       default_config())) {
	case PB_CONFIG_EXIT: return 0;
	case PB_CONFIG_ERR: return 2;
	}
	if (pos >= argc) {
		pb_config_help(PB_FOR_CTL, "pbctl", usage, stderr);
		return 2;
	}
	free(usage);
	c = pb_args_find(commands, PB_ARRAY_LEN(commands), argc - pos, argv + pos, &used,
			 err, sizeof(err));
	if (c == NULL) {
		fprintf(stderr, "pbctl: %s\n", err);
		return 2;
	}
	if (pb_args_parse(&a, c, argc - pos - used, argv + pos + used, pb_wall_ms()) != PB_OK) {
		fprintf(stderr, "pbctl: %s (see pbctl %s --help)\n", a.errstr, c->name);
		return 2;
	}
	if (a.help) {
		if (used == 1 && strchr(c->name, ' ')) /* "pbctl dead --help" */
			pb_args_help_group(commands, PB_ARRAY_LEN(commands), c, stdout);
		else
			pb_args_help(c, stdout);
		return 0;
	}
	json_mode = a.json;
	answer = json_object();
	pb_log_init("pbctl", cfg.log_level);
	if (pb_keys_init(&K, cfg.key_prefix) != PB_OK) {
		fprintf(stderr, "pbctl: key_prefix '%s': key names too long\n", cfg.key_prefix);
		return 2;
	}
	if (pb_redis_init(&R, &cfg, "pbctl") != PB_OK) {
		fprintf(stderr, "pbctl: %s\n", R.errstr);
		return 2;
	}
	rc = c->each == FIRST || c->each == NAMED ? c->run(&a) : run_each(c, &a);
	ctl_exit(rc);
	return rc;
}

/*
 * Without -c, read $PBCTL_CONFIG or, where Ansible put it, the default file:
 * on a cluster host `pbctl status` is then all an operator types.
 */
#define PBCTL_DEFAULT_CONFIG "/etc/postback/pbctl.conf"

static const char *default_config(void)
{
	const char *file = getenv("PBCTL_CONFIG");

	if (file != NULL && *file != '\0')
		return file;
	return access(PBCTL_DEFAULT_CONFIG, R_OK) == 0 ? PBCTL_DEFAULT_CONFIG : NULL;
}

/* "pbctl --help": every command's usage and the first line of its help. */
static char *usage_text(void)
{
	pb_buf b;
	size_t i;

	pb_buf_init(&b, 16384);
	pb_buf_puts(&b, "Operator tool for the postback queue.\n\ncommands:\n");
	for (i = 0; i < PB_ARRAY_LEN(commands); i++) {
		const pb_cmd *c = &commands[i];
		char left[64];

		snprintf(left, sizeof(left), "%s%s%s", c->name, c->synopsis[0] ? " " : "",
			 c->synopsis);
		pb_buf_printf(&b, "  %-24s %s\n", left, c->summary);
	}
	pb_buf_puts(&b,
		"Each command takes --help and --json (its answer as one JSON document).\n"
		"Bad arguments exit 2. Without -c, pbctl reads $PBCTL_CONFIG, or\n"
		PBCTL_DEFAULT_CONFIG " where it exists.\n\n"
		"shards (master_name lists several): status, show, dests, dead, drain, ids,\n"
		"breakers and functions act on every shard, one after another, each under a\n"
		"'== shard NAME' line (with --json: {\"shards\": [{\"shard\": NAME, \"exit\": N,\n"
		"...}]}); status's exit code is the worst shard's; show, dead show, replay\n"
		"and purge succeed when any shard did. keys act on the first shard, which\n"
		"holds them; switchover takes the shard: switchover SHARD.");
	return pb_buf_err(&b) == PB_OK ? b.data : strdup("pbctl: out of memory");
}

/* One shard's run of c in a child process: its exit code; with --json,
 * its answer (read from a pipe) in *out. */
static int run_child(const pb_cmd *c, const pb_args *a, int shard, json_t **out)
{
	int fds[2] = { -1, -1 }, status;
	pb_buf text;
	pid_t pid;
	char chunk[65536];
	ssize_t n;

	fflush(stdout);
	fflush(stderr);
	if (json_mode && pipe(fds) != 0) {
		fprintf(stderr, "pbctl: pipe: %s\n", strerror(errno));
		return 1;
	}
	if ((pid = fork()) < 0) {
		fprintf(stderr, "pbctl: fork: %s\n", strerror(errno));
		return 1;
	}
	if (pid == 0) {
		if (json_mode) {
			dup2(fds[1], STDOUT_FILENO);
			close(fds[0]);
			close(fds[1]);
		}
		pb_redis_init_shard(&R, &cfg, "pbctl", shard);
		ctl_exit(c->run(a)); /* prints the answer with --json */
	}
	*out = NULL;
	if (json_mode) {
		close(fds[1]);
		pb_buf_init(&text, 1UL << 30);
		while ((n = read(fds[0], chunk, sizeof(chunk))) > 0 ||
		       (n < 0 && errno == EINTR))
			if (n > 0)
				pb_buf_append(&text, chunk, (size_t)n);
		close(fds[0]);
		if (pb_buf_err(&text) == PB_OK && text.data)
			*out = json_loadb(text.data, text.len, 0, NULL);
		pb_buf_free(&text);
	}
	if (waitpid(pid, &status, 0) < 0) {
		fprintf(stderr, "pbctl: waitpid: %s\n", strerror(errno));
		return 1;
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

/*
 * c on every shard, one after another, each in a child process of its own
 * (a command exits on a Redis error: one shard that fails must not hide
 * the others), under a "== shard NAME" line, or with --json as one element
 * of answer's "shards". With one shard and without --json, c runs here.
 */
static int run_each(const pb_cmd *c, const pb_args *a)
{
	json_t *shards = json_array();
	int s, rc = -1;

	if (cfg.shards.n == 1 && !json_mode) {
		json_decref(shards);
		return c->run(a);
	}
	for (s = 0; s < cfg.shards.n; s++) {
		json_t *one = NULL;
		int code;

		if (!json_mode)
			printf("== shard %s\n", cfg.shards.name[s]);
		code = run_child(c, a, s, &one);
		if (json_mode) {
			if (!json_is_object(one)) {
				json_decref(one);
				one = json_pack("{s:s}", "error", "no answer (see standard error)");
			}
			json_object_set_new(one, "shard", json_string(cfg.shards.name[s]));
			json_object_set_new(one, "exit", json_integer(code));
			json_array_append_new(shards, one);
		}
		if (rc < 0 || (c->each == EACH_ANY ? code < rc : code > rc))
			rc = code;
	}
	json_object_set_new(answer, "shards", shards);
	json_object_set_new(answer, "exit", json_integer(rc));
	return rc;
}
