/*
 * pbctl - the operator's tool. Finds the master through Sentinel like the
 * daemons do, and uses the same settings (-c FILE, --name=value).
 *
 *   pbctl status                 who is master, replicas and their lag, queue,
 *                                retries, in flight per agent, dead letters
 *   pbctl dead list [N]          the newest N dead letters (default 20)
 *   pbctl dead show ID           one dead letter, as JSON
 *   pbctl dead replay ID|--all   queue dead letters again, attempts reset
 *   pbctl dead purge ID|--all    delete dead letters
 *   pbctl drain [--timeout S]    wait until nothing is queued, scheduled or
 *                                in flight (exit 1 if the time runs out)
 *   pbctl ids                    every postback id held in Redis, with where
 *                                it is: one atomic snapshot (for checks)
 *   pbctl switchover [--timeout S]
 *                                move the master role to a replica without
 *                                losing an acknowledged write
 *   pbctl keys add NAME | list | revoke NAME | revoke --hash PREFIX
 *                                client keys (clientkey.h)
 *   pbctl functions [load [--prune] | list]
 *                                the queue's Redis Functions (apps/lua)
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "buf.h"
#include "clientkey.h"
#include "config.h"
#include "deadletter.h"
#include "defaults.h" /* generated: build/gen/defaults.h */
#include "dest.h"
#include "job.h"
#include "keys.h"
#include "log.h"
#include "lua_functions.h"
#include "pb.h"
#include "redis.h"
#include "replinfo.h"

static pb_config cfg;
static pb_redis R;
static pb_keys K;

static const char usage[] =
	"Operator tool for the postback queue.\n\n"
	"commands:\n"
	"  status                 master, replicas and lag, queue, retries, in flight, dead letters, agents\n"
	"  dead list [N]          the newest N dead letters (default 20)\n"
	"  dead show ID           one dead letter as JSON\n"
	"  dead replay ID|--all   queue dead letters again, attempts reset\n"
	"  dead purge ID|--all    delete dead letters\n"
	"  drain [--timeout S]    wait until nothing is queued, scheduled or in flight\n"
	"  ids                    every postback id in Redis and where it is (a snapshot)\n"
	"  breakers [list]        destinations that failed: breaker state, failures, rate\n"
	"  breakers open DEST [--for S] | close DEST | rate DEST N\n"
	"                         park a destination, let it flow again, pace it (N/s, 0: off)\n"
	"  switchover [--timeout S]  move the master role to a replica, losing nothing\n"
	"  keys add NAME | list | revoke NAME | revoke --hash PREFIX\n"
	"                         issue a client key (printed once), list, revoke\n"
	"  functions [list]       the libraries of Redis Functions loaded, this version's marked\n"
	"  functions load [--prune]  load this version's library on the master (each deployment\n"
	"                         does); --prune also deletes the other versions' libraries\n"
	"Each command takes --help. Without -c, pbctl reads $PBCTL_CONFIG, or\n"
	"/etc/postback/pbctl.conf where it exists.\n\n"
	"shards (master_name lists several): status, dead, drain, ids, breakers and\n"
	"functions act on every shard, one after another, each under a '== shard\n"
	"NAME' line (status: the worst verdict is the exit code; dead show, replay,\n"
	"purge ID: found on any); keys act on the first shard, which holds them;\n"
	"switchover takes the shard: switchover SHARD [--timeout S].";

/*
 * pbctl status's verdict, and its exit code: 0 healthy, 1 degraded (the
 * cluster works, with less room for a fault: a Sentinel, replica, agent
 * gone), 2 down (no master a Sentinel majority names, the master does not
 * answer, or no ingest node alive: clients are refused). Each check that
 * fails says why on a "health" line at the end.
 */
enum { HEALTHY = 0, DEGRADED = 1, DOWN = 2 };
static int health = HEALTHY;
static char health_why[512];
/* What a failed Redis command exits with: 1, or DOWN while status runs. */
static int die_code = 1;

static void worse(int level, const char *why)
{
	size_t n = strlen(health_why);

	if (level > health)
		health = level;
	snprintf(health_why + n, sizeof(health_why) - n, "%s%s", n ? "; " : "", why);
}

/* A reply, or exit (1; DOWN in status) saying why there is none. */
static redisReply *reply_or_die(redisReply *r)
{
	if (r == NULL) {
		fprintf(stderr, "pbctl: %s\n", R.errstr);
		if (die_code == DOWN)
			printf("health   DOWN: the master does not answer\n");
		exit(die_code);
	}
	if (r->type == REDIS_REPLY_ERROR) {
		fprintf(stderr, "pbctl: redis %s:%d: %s\n", R.master.host,
			R.master.port, r->str);
		exit(die_code);
	}
	return r;
}

static redisReply *cmd_or_die(const char *fmt, ...)
{
	va_list ap;
	redisReply *r;

	va_start(ap, fmt);
	r = pb_redis_vcmd(&R, fmt, ap);
	va_end(ap);
	return reply_or_die(r);
}

/*
 * The functions pbctl calls (apps/lua/<name>.lua): argv as
 * pb_fn_<name>_argv() laid it out, argc words; lens NULL for C strings.
 */
static redisReply *fcall_or_die(int argc, const char **argv, const size_t *lens)
{
	return reply_or_die(pb_redis_argv(&R, argc, argv, lens));
}

static long long int_cmd(const char *fmt, const char *arg)
{
	redisReply *r = cmd_or_die(fmt, arg);
	long long v = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;

	freeReplyObject(r);
	return v;
}

/* Postbacks queued: the waiting count, and version 1 jobs left. */
static long long waiting(void)
{
	redisReply *r = cmd_or_die("GET %s", K.waiting);
	long n = 0;

	if (r->type == REDIS_REPLY_STRING && pb_parse_long(r->str, 0, LONG_MAX, &n) != PB_OK)
		n = 0;
	freeReplyObject(r);
	return n + int_cmd("LLEN %s", K.queue);
}

static int majority_master(pb_hostport *out);
static int same_node(const pb_hostport *a, const pb_hostport *b);

/* Each Sentinel's master; the one a majority names, in *agreed (port 0:
 * none). A Sentinel silent or naming another is a degradation. */
static void print_sentinels(pb_hostport *agreed)
{
	int i;

	if (majority_master(agreed) != PB_OK) {
		agreed->port = 0;
		worse(DOWN, "no master named by a majority of the Sentinels");
	}
	for (i = 0; i < R.nsentinels; i++) {
		pb_hostport m;
		const pb_hostport *s = &R.sentinels[i];

		if (pb_sentinel_get_master(&R, s, &m) == PB_OK) {
			printf("sentinel %s:%d  master %s:%d\n", s->host, s->port,
			       m.host, m.port);
			if (agreed->port != 0 && !same_node(&m, agreed))
				worse(DEGRADED, "a Sentinel names another master");
		} else {
			printf("sentinel %s:%d  %s\n", s->host, s->port, R.errstr);
			worse(DEGRADED, "a Sentinel does not answer");
		}
	}
}

/* How many replicas the Sentinels know of the master (down ones too): a
 * replica that stopped is missing from the master's INFO, not from them.
 * -1 when no Sentinel answers. */
static long replicas_known(void)
{
	int i;

	for (i = 0; i < R.nsentinels; i++) {
		redisReply *r = pb_sentinel_cmd(&R, &R.sentinels[i], "SENTINEL REPLICAS %s",
						R.master_name);
		long n = r && r->type == REDIS_REPLY_ARRAY ? (long)r->elements : -1;

		if (r)
			freeReplyObject(r);
		if (n >= 0)
			return n;
	}
	return -1;
}

static void print_replicas(void)
{
	redisReply *r = cmd_or_die("INFO replication");
	pb_repl_info info;
	long known;
	int i;

	if (pb_repl_info_parse(r->str, &info) != PB_OK) {
		fprintf(stderr, "pbctl: %s:%d: INFO replication does not parse\n",
			R.master.host, R.master.port);
		freeReplyObject(r);
		return;
	}
	freeReplyObject(r);
	printf("master   %s:%d  offset %ld\n", R.master.host, R.master.port,
	       info.master_offset);
	for (i = 0; i < info.nreplicas; i++) {
		const pb_replica_info *x = &info.replicas[i];

		printf("replica  %s:%ld  %s  %ld bytes behind, last ack %ld s ago\n",
		       x->ip, x->port, x->state, info.master_offset - x->offset, x->lag);
		if (strcmp(x->state, "online") != 0)
			worse(DEGRADED, "a replica is not online");
	}
	if (info.nreplicas == 0) {
		printf("replica  NONE: writes are refused (min-replicas-to-write)\n");
		worse(DOWN, "no replica: writes are refused");
	} else if ((known = replicas_known()) > info.nreplicas) {
		printf("replica  %ld known to the Sentinels, %d connected\n", known,
		       info.nreplicas);
		worse(DEGRADED, "a replica is down");
	}
}

/* What agent id holds (held_count.lua). */
static long long held_by(const char *id)
{
	char processing[PB_KEY_MAX], held[PB_KEY_MAX];
	const pb_fn_held_count a = { .processing = processing, .held = held };
	const char *argv[PB_FN_HELD_COUNT_ARGC];
	redisReply *r;
	long long n;

	if (pb_key_join(processing, sizeof(processing), K.processing_stem, id) != PB_OK ||
	    pb_key_join(held, sizeof(held), K.held_stem, id) != PB_OK)
		return 0;
	r = fcall_or_die(pb_fn_held_count_argv(&a, argv), argv, NULL);
	n = r->integer;

	freeReplyObject(r);
	return n;
}

static void print_agents(void)
{
	redisReply *ids = cmd_or_die("SMEMBERS %s", K.agents);
	size_t i;

	if (ids->elements == 0) {
		printf("agents   none registered\n");
		worse(DEGRADED, "no agent: nothing is delivered");
	}
	for (i = 0; i < ids->elements; i++) {
		const char *id = ids->element[i]->str;
		redisReply *hb = cmd_or_die("GET %s%s", K.heartbeat_stem, id);

		printf("agent    %-16s %-5s in flight %lld  %s\n", id,
		       hb->type == REDIS_REPLY_STRING ? "alive" : "DEAD", held_by(id),
		       hb->type == REDIS_REPLY_STRING ? hb->str
						      : "(heartbeat expired: its postbacks get reclaimed)");
		if (hb->type != REDIS_REPLY_STRING)
			worse(DEGRADED, "an agent is dead");
		freeReplyObject(hb);
	}
	freeReplyObject(ids);
}

/* Ingest nodes by their heartbeats (keys.h: <p>:ingest:<node>). SCAN: a
 * handful of keys among many, read by an operator, not a daemon. */
static void print_ingests(void)
{
	char cursor[32] = "0", pattern[PB_KEY_MAX + 1];
	size_t stem = strlen(K.ingest_stem), i;
	int seen = 0;

	snprintf(pattern, sizeof(pattern), "%s*", K.ingest_stem);
	do {
		redisReply *r = cmd_or_die("SCAN %s MATCH %s COUNT 1000", cursor, pattern);
		redisReply *keys = r->element[1];

		pb_strlcpy(cursor, r->element[0]->str, sizeof(cursor));
		for (i = 0; i < keys->elements; i++, seen++) {
			redisReply *hb = cmd_or_die("GET %s", keys->element[i]->str);

			printf("ingest   %-24s %s\n", keys->element[i]->str + stem,
			       hb->type == REDIS_REPLY_STRING ? hb->str : "(gone)");
			freeReplyObject(hb);
		}
		freeReplyObject(r);
	} while (strcmp(cursor, "0") != 0);
	if (seen == 0) {
		printf("ingest   none alive (no heartbeat in 10 s)\n");
		worse(DOWN, "no ingest node alive");
	}
}

static long breakers_open(void);

static int cmd_status(void)
{
	pb_hostport agreed;

	die_code = DOWN;
	print_sentinels(&agreed);
	print_replicas();
	printf("queue    %lld waiting, %lld destination(s) ready\n", waiting(),
	       int_cmd("ZCARD %s", K.ready));
	printf("retries  %lld scheduled\n", int_cmd("ZCARD %s", K.scheduled));
	printf("dead     %lld dead letters\n", int_cmd("LLEN %s", K.dead));
	printf("breakers %ld open (pbctl breakers)\n", breakers_open());
	if (R.shard == 0) /* the ingest nodes beat on the first shard (shard.h) */
		print_ingests();
	print_agents();
	printf("health   %s%s%s\n", health == HEALTHY ? "ok" : health == DEGRADED ? "DEGRADED"
								     : "DOWN",
	       health_why[0] ? ": " : "", health_why);
	return health;
}

static void print_dead(const pb_dead *d)
{
	char ts[32];

	pb_format_utc_ms(ts, sizeof(ts), d->failed_at);
	printf("%s  %-24s attempts %lld  status %lld  %s\n", ts, d->id, d->attempts,
	       d->status, d->error);
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

static int cmd_dead(int argc, char **argv)
{
	static const char *verbs[] = { "list", "show", "replay", "purge" };
	enum { LIST, SHOW, REPLAY, PURGE, NVERBS } v;
	const char *id = argc > 1 && strcmp(argv[1], "--all") != 0 ? argv[1] : NULL;
	long n = 0, done = 0; /* n = 0: every dead letter, to find those asked for */
	redisReply *r;
	size_t i;

	if (argc > 1 && !strcmp(argv[1], "--help")) {
		puts("pbctl dead list [N] | show ID | replay ID|--all | purge ID|--all");
		return 0;
	}
	for (v = LIST; v < NVERBS && strcmp(argc > 0 ? argv[0] : "list", verbs[v]) != 0; v++)
		;
	if (v == NVERBS) {
		fprintf(stderr, "pbctl: unknown command 'dead %s' (see --help)\n", argv[0]);
		return 2;
	}
	if (v == LIST) {
		n = 20;
		id = NULL;
		if (argc > 1 && pb_parse_long(argv[1], 1, 1000000, &n) != PB_OK) {
			fprintf(stderr, "pbctl: dead list takes 1 to 1000000, not '%s'\n",
				argv[1]);
			return 2;
		}
	} else if (argc < 2) {
		fprintf(stderr, "pbctl: dead %s needs an ID (or --all)\n", verbs[v]);
		return 2;
	}
	r = cmd_or_die("LRANGE %s 0 %ld", K.dead, n - 1);
	for (i = 0; i < r->elements; i++) {
		const redisReply *e = r->element[i];
		json_t *owner;
		pb_dead d;

		if (pb_dead_decode(&d, &owner, e->str, e->len) != PB_OK) {
			fprintf(stderr, "pbctl: %s: element %zu is no dead-letter record\n",
				K.dead, i);
			continue;
		}
		if (id == NULL || !strcmp(d.id, id)) {
			switch (v) {
			case LIST:
				print_dead(&d);
				done++;
				break;
			case SHOW:
				json_dumpf(owner, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
				putchar('\n');
				done++;
				break;
			default:
				done += take_dead(e, &d, v == REPLAY);
			}
		}
		json_decref(owner);
	}
	freeReplyObject(r);
	if (v == LIST)
		printf("%ld shown of %lld\n", done, int_cmd("LLEN %s", K.dead));
	else if (v == REPLAY || v == PURGE)
		printf("%s: %ld dead letter(s)\n", v == REPLAY ? "replayed" : "purged", done);
	else if (done == 0)
		fprintf(stderr, "pbctl: no dead letter with id %s\n", id);
	return done > 0 || v == LIST ? 0 : 1;
}

static long long in_flight(void)
{
	redisReply *ids = cmd_or_die("SMEMBERS %s", K.agents);
	long long total = 0;
	size_t i;

	for (i = 0; i < ids->elements; i++)
		total += held_by(ids->element[i]->str);
	freeReplyObject(ids);
	return total;
}

static void print_job_ids(const char *state, const redisReply *jobs,
			  const char *agent)
{
	size_t i;

	for (i = 0; i < jobs->elements; i++) {
		const redisReply *e = jobs->element[i];
		unsigned long n, k;
		pb_job job;
		pb_ref ref;

		if (e->type == REDIS_REPLY_STRING &&
		    pb_run3_decode(&ref, &n, e->str, e->len) == PB_OK && n > 1) {
			for (k = 0; k < n; k++) /* a run: each of its postbacks */
				printf("%s\t%s-%lu\t%s\n", state, ref.rid,
				       strtoul(ref.index, NULL, 10) + k, agent);
		} else if (e->type == REDIS_REPLY_STRING &&
		    (pb_ref_decode(&ref, e->str, e->len) == PB_OK ||
		     pb_ref3_decode(&ref, e->str, e->len) == PB_OK ||
		     pb_ref3_sched_decode(&ref, e->str, e->len) == PB_OK))
			printf("%s\t%s-%s\t%s\n", state, ref.rid, ref.index, agent);
		else if (e->type == REDIS_REPLY_STRING &&
			 pb_job_decode(&job, e->str, e->len) == PB_OK)
			printf("%s\t%s\t%s\n", state, job.id, agent);
		else
			printf("%s\t(undecodable job of %zu bytes)\t%s\n", state, e->len,
			       agent);
	}
}

static int cmd_ids(int argc, char **argv)
{
	redisReply *r;
	size_t i;

	if (argc > 0 && !strcmp(argv[0], "--help")) {
		puts("pbctl ids: one line per postback held in Redis, \"STATE<TAB>ID<TAB>AGENT\",\n"
		     "STATE one of queued, scheduled, dead, in-flight (AGENT names who holds it).\n"
		     "One atomic snapshot: it reads every list whole, so keep it for checks.");
		return 0;
	}
	{
		const pb_fn_ids a = {
			.v1_queue = K.queue, .scheduled = K.scheduled, .dead = K.dead,
			.agents = K.agents, .ready = K.ready,
			.pstem = K.processing_stem, .qstem = K.queue_stem,
			.hstem = K.held_stem
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

		if (pb_dead_decode(&d, &owner, e->str, e->len) == PB_OK)
			printf("dead\t%s\t\n", d.id);
		else
			printf("dead\t(undecodable dead letter)\t\n");
		json_decref(owner);
	}
	for (i = 3; i + 1 < r->elements; i += 2)
		print_job_ids("in-flight", r->element[i + 1], r->element[i]->str);
	freeReplyObject(r);
	return 0;
}

static int cmd_drain(int argc, char **argv)
{
	long timeout_s = 300;
	int64_t deadline;

	if (argc > 0 && !strcmp(argv[0], "--help")) {
		puts("pbctl drain [--timeout S]: wait until nothing is queued, "
		     "scheduled or in flight (default 300 s); exit 1 on time-out");
		return 0;
	}
	if (argc > 1 && !strcmp(argv[0], "--timeout") &&
	    pb_parse_long(argv[1], 1, 86400, &timeout_s) != PB_OK) {
		fprintf(stderr, "pbctl: --timeout takes 1 to 86400 seconds, not '%s'\n",
			argv[1]);
		return 2;
	}
	deadline = pb_now_ms() + timeout_s * 1000;
	for (;;) {
		long long q = waiting();
		long long s = int_cmd("ZCARD %s", K.scheduled);
		long long f = in_flight();

		printf("queued %lld  scheduled %lld  in flight %lld\n", q, s, f);
		fflush(stdout);
		if (q == 0 && s == 0 && f == 0)
			return 0;
		if (pb_now_ms() > deadline) {
			fprintf(stderr, "pbctl: not drained after %ld s\n", timeout_s);
			return 1;
		}
		pb_redis_drop(&R); /* resolve again: a drain may span a failover */
		pb_sleep_ms(1000, NULL);
	}
}

/* The hash's field f, or "" (fields come as name, value pairs). */
static const char *field_of(const redisReply *h, const char *f)
{
	size_t i;

	for (i = 0; i + 1 < h->elements; i += 2)
		if (!strcmp(h->element[i]->str, f))
			return h->element[i + 1]->str;
	return "";
}

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

static void print_breaker(const char *id, const redisReply *h, void *arg)
{
	const char *until = field_of(h, "until"), *rate = field_of(h, "rate");
	const char *state = field_of(h, "state"), *fails = field_of(h, "fails");
	char ts[32] = "-";
	long ms;

	(void)arg;
	if (pb_parse_long(until, 0, LONG_MAX, &ms) == PB_OK)
		pb_format_utc_ms(ts, sizeof(ts), ms);
	printf("%s  %-6s fails %-4s until %-24s rate %-4s %s  %s\n", id,
	       state[0] ? state : "closed", fails[0] ? fails : "0", ts,
	       rate[0] ? rate : "-", field_of(h, "url"), field_of(h, "reason"));
}

static void count_open(const char *id, const redisReply *h, void *arg)
{
	(void)id;
	if (!strcmp(field_of(h, "state"), "open") || !strcmp(field_of(h, "state"), "half"))
		++*(long *)arg;
}

static long breakers_open(void)
{
	long n = 0;

	each_breaker(count_open, &n);
	return n;
}

static int list_breakers(void)
{
	if (each_breaker(print_breaker, NULL) == 0)
		printf("no destination has failed\n");
	return 0;
}

static int cmd_breakers(int argc, char **argv)
{
	const char *verb = argc > 0 ? argv[0] : "list";
	char key[PB_KEY_MAX], num[24] = "0";
	long n = 3600;
	pb_dest d;
	redisReply *r;

	if (!strcmp(verb, "--help")) {
		puts("pbctl breakers [list]: every destination that failed once, its breaker\n"
		     "  (closed, open: parked until a probe, half: a probe under way),\n"
		     "  failures in a row, until when, its rate, its last failure.\n"
		     "pbctl breakers open DEST [--for S]: park DEST (default 3600 s); a probe\n"
		     "  after that, as for a breaker that opened by itself.\n"
		     "pbctl breakers close DEST: let its postbacks flow again now.\n"
		     "pbctl breakers rate DEST N: at most N requests/s to DEST from all\n"
		     "  agents together (0: no limit).\n"
		     "DEST is a URL (its scheme, host and port count) or a destination id.");
		return 0;
	}
	if (!strcmp(verb, "list"))
		return list_breakers();
	if (strcmp(verb, "open") != 0 && strcmp(verb, "close") != 0 &&
	    strcmp(verb, "rate") != 0) {
		fprintf(stderr, "pbctl: unknown command 'breakers %s' (see --help)\n", verb);
		return 2;
	}
	if (argc < 2) {
		fprintf(stderr, "pbctl: breakers %s needs a destination\n", verb);
		return 2;
	}
	if (strstr(argv[1], "://")) {
		if (pb_dest_of(&d, argv[1], strlen(argv[1])) != PB_OK) {
			fprintf(stderr, "pbctl: '%s' has no scheme://host\n", argv[1]);
			return 2;
		}
	} else if (pb_dest_id_valid(argv[1], strlen(argv[1]))) {
		memset(&d, 0, sizeof(d));
		memcpy(d.id, argv[1], PB_DEST_ID_LEN);
	} else {
		fprintf(stderr, "pbctl: '%s' is neither a URL nor a destination id\n",
			argv[1]);
		return 2;
	}
	if (!strcmp(verb, "open") && argc > 3 && !strcmp(argv[2], "--for") &&
	    pb_parse_long(argv[3], 1, 31536000, &n) != PB_OK) {
		fprintf(stderr, "pbctl: --for takes 1 to 31536000 seconds, not '%s'\n",
			argv[3]);
		return 2;
	}
	if (!strcmp(verb, "rate") &&
	    (argc < 3 || pb_parse_long(argv[2], 0, 1000000, &n) != PB_OK)) {
		fprintf(stderr, "pbctl: breakers rate takes 0 to 1000000 requests/s\n");
		return 2;
	}
	snprintf(num, sizeof(num), "%ld", !strcmp(verb, "open") ? n * 1000 : n);
	if (pb_key_join(key, sizeof(key), K.dest_stem, d.id) != PB_OK)
		return 2;
	{
		/* How long the state outlives its "until" (prelude.lua
		 * breaker_keep): by the agents' default cooldown. */
		const pb_fn_breaker_set a = { .k = key, .ready = K.ready, .what = verb,
					      .n = num, .url = d.name, .d = d.id,
					      .cooldown = PB_DEF_breaker_cooldown_ms };
		const char *fargv[PB_FN_BREAKER_SET_ARGC];

		r = fcall_or_die(pb_fn_breaker_set_argv(&a, fargv), fargv, NULL);
	}
	freeReplyObject(r);
	printf("%s %s: %s\n", d.name[0] ? d.name : d.id, d.id,
	       !strcmp(verb, "open") ? "open (parked)" :
	       !strcmp(verb, "close") ? "closed" : n ? "rate set" : "rate removed");
	return 0;
}

/* ---- client keys (clientkey.h) ------------------------------------------ */

/* A change to the keys is confirmed by a replica before pbctl says it is
 * done, as a postback is: a failover must not bring a revoked key back. */
static void keys_wait(void)
{
	redisReply *r = cmd_or_die("WAIT 1 2000");

	if (r->type == REDIS_REPLY_INTEGER && r->integer < 1)
		fprintf(stderr, "pbctl: warning: no replica confirmed the change "
				"within 2 s; check `pbctl status`\n");
	freeReplyObject(r);
}

static int keys_add(const char *name)
{
	char key[PB_CLIENT_KEY_LEN + 1], hash[PB_CLIENT_HASH_LEN + 1], val[96];

	if (!pb_client_name_valid(name, strlen(name))) {
		fprintf(stderr, "pbctl: a client name is 1 to %d of A-Z a-z 0-9 . _ -, "
			"not '%s'\n", PB_CLIENT_NAME_MAX, name);
		return 2;
	}
	if (pb_client_key_new(key) != PB_OK) {
		fprintf(stderr, "pbctl: no random bytes for a key\n");
		return 1;
	}
	pb_client_key_hash(key, strlen(key), hash);
	snprintf(val, sizeof(val), "%s %lld", name, (long long)pb_wall_ms());
	{
		const pb_fn_keys_add a = { .clients = K.clients,
					   .version = K.clients_version,
					   .hash = hash, .entry = val };
		const char *fargv[PB_FN_KEYS_ADD_ARGC];

		freeReplyObject(fcall_or_die(pb_fn_keys_add_argv(&a, fargv), fargv, NULL));
	}
	keys_wait();
	/* The key itself goes to standard output alone, for a file or a
	 * variable; Redis keeps only its hash, so this is the one copy. */
	printf("%s\n", key);
	fprintf(stderr, "pbctl: key for client '%s' issued (SHA-256 %.12s...); it is "
		"shown only this once\n", name, hash);
	return 0;
}

static int keys_list(void)
{
	redisReply *r = cmd_or_die("HGETALL %s", K.clients);
	size_t i;

	if (r->elements == 0)
		printf("no client keys (pbctl keys add NAME)\n");
	else
		printf("%-24s %-14s %s\n", "client", "key SHA-256", "issued (UTC)");
	for (i = 0; i + 1 < r->elements; i += 2) {
		const char *v = r->element[i + 1]->str, *sp = strchr(v, ' ');
		char ts[32] = "?";
		long ms;

		if (sp && pb_parse_long(sp + 1, 0, LONG_MAX, &ms) == PB_OK)
			pb_format_utc_ms(ts, sizeof(ts), ms);
		printf("%-24.*s %.12s.. %s\n", sp ? (int)(sp - v) : (int)strlen(v), v,
		       r->element[i]->str, ts);
	}
	freeReplyObject(r);
	return 0;
}

static int cmd_keys(int argc, char **argv)
{
	const char *verb = argc > 0 ? argv[0] : "list";
	const char *by = "name", *what;
	redisReply *r;
	long long gone;

	if (!strcmp(verb, "--help")) {
		puts("pbctl keys add NAME: issue a key for client NAME and print it (once:\n"
		     "  Redis keeps only its SHA-256). A client may hold several keys, to\n"
		     "  change them without a pause: add, move the client, revoke the old.\n"
		     "pbctl keys list: clients, the first digits of their keys' hashes, when issued.\n"
		     "pbctl keys revoke NAME: every key of client NAME stops working.\n"
		     "pbctl keys revoke --hash PREFIX: the one key whose hash starts so.\n"
		     "Ingest nodes see a change within client_keys_refresh_ms (500).");
		return 0;
	}
	if (!strcmp(verb, "list"))
		return keys_list();
	if (!strcmp(verb, "add") && argc == 2)
		return keys_add(argv[1]);
	if (!strcmp(verb, "revoke") && argc == 2) {
		what = argv[1];
	} else if (!strcmp(verb, "revoke") && argc == 3 && !strcmp(argv[1], "--hash") &&
		   strlen(argv[2]) >= 8) {
		by = "hash", what = argv[2];
	} else {
		fprintf(stderr, "pbctl: usage: keys add NAME | list | revoke NAME | "
			"revoke --hash PREFIX (8 digits at least)\n");
		return 2;
	}
	{
		const pb_fn_keys_revoke a = { .clients = K.clients,
					      .version = K.clients_version,
					      .by = by, .what = what };
		const char *fargv[PB_FN_KEYS_REVOKE_ARGC];

		r = fcall_or_die(pb_fn_keys_revoke_argv(&a, fargv), fargv, NULL);
	}
	gone = r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
	freeReplyObject(r);
	if (gone == 0) {
		fprintf(stderr, "pbctl: no key matches %s '%s'\n", by, what);
		return 1;
	}
	keys_wait();
	printf("%lld key(s) revoked\n", gone);
	return 0;
}

/*
 * A planned switchover. SENTINEL FAILOVER alone is a forced failover: the
 * old master keeps taking writes while the replica Sentinel promotes has
 * stopped following it, and the other replica confirms them (WAIT 1) until
 * Sentinel moves it too; both then resynchronise from the new master and
 * those writes are gone (the switchover drill lost 74 acknowledged
 * postbacks that way). So, as Redis's own FAILOVER command does it: writes
 * paused on the master, every replica caught up, then the failover, and the
 * old master made a replica before its writes resume (they then fail with
 * READONLY and the clients go to the new master).
 */
#define SWITCH_CATCH_UP_MS 5000

static int same_node(const pb_hostport *a, const pb_hostport *b)
{
	return a->port != 0 && a->port == b->port && strcmp(a->host, b->host) == 0;
}

/* The master a majority of all configured Sentinels names. */
static int majority_master(pb_hostport *out)
{
	pb_hostport named[PB_MAX_SENTINELS];
	int i, j, votes;

	for (i = 0; i < R.nsentinels; i++)
		if (pb_sentinel_get_master(&R, &R.sentinels[i], &named[i]) != PB_OK)
			named[i].port = 0;
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

/* One command on one node, on a connection of its own (Sentinel kills the
 * clients of the nodes it reconfigures). NULL, with a message, on failure. */
static redisReply *node_cmd(const pb_hostport *hp, const char *fmt, ...)
{
	redisContext *c = pb_redis_dial_node(&R, hp);
	redisReply *r = NULL;
	va_list ap;

	if (c == NULL) {
		fprintf(stderr, "pbctl: %s\n", R.errstr);
		return NULL;
	}
	va_start(ap, fmt);
	r = redisvCommand(c, fmt, ap);
	va_end(ap);
	if (r == NULL)
		fprintf(stderr, "pbctl: %s:%d: %s\n", hp->host, hp->port, c->errstr);
	else if (r->type == REDIS_REPLY_ERROR) {
		fprintf(stderr, "pbctl: %s:%d: %s\n", hp->host, hp->port, r->str);
		freeReplyObject(r);
		r = NULL;
	}
	redisFree(c);
	return r;
}

static int node_ok(const pb_hostport *hp, const char *fmt, const char *a,
		   const char *b)
{
	redisReply *r = node_cmd(hp, fmt, a, b);

	if (r == NULL)
		return 0;
	freeReplyObject(r);
	return 1;
}

static int node_is_master(const pb_hostport *hp)
{
	redisReply *r = node_cmd(hp, "ROLE");
	int yes = r && r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
		  r->element[0]->type == REDIS_REPLY_STRING &&
		  strcmp(r->element[0]->str, "master") == 0;

	if (r)
		freeReplyObject(r);
	return yes;
}

/* How many bytes the furthest-behind online replica lacks; -1 if none is
 * online or INFO cannot be read. */
static long replicas_behind(const pb_hostport *master)
{
	redisReply *r = node_cmd(master, "INFO replication");
	pb_repl_info info;
	long behind = -1;

	if (r != NULL && r->type == REDIS_REPLY_STRING &&
	    pb_repl_info_parse(r->str, &info) == PB_OK)
		behind = pb_repl_info_behind(&info);
	if (r)
		freeReplyObject(r);
	return behind;
}

static int cmd_switchover(int argc, char **argv)
{
	long timeout_s = 30;
	pb_hostport old, now;
	char pause_ms[32], port[16];
	redisReply *r = NULL;
	long behind = -1;
	int64_t t0, deadline;
	int i;

	if (argc > 0 && !strcmp(argv[0], "--help")) {
		puts("pbctl switchover [SHARD] [--timeout S]: pause writes on the master, wait\n"
		     "until every replica has all of them, SENTINEL FAILOVER, make the old\n"
		     "master a replica of the new one, resume (default 30 s for the whole\n"
		     "switch; writes wait meanwhile, clients time out and retry on the new\n"
		     "master). SHARD: the shard's master name, needed with several shards.");
		return 0;
	}
	if (argc > 0 && strncmp(argv[0], "--", 2) != 0) {
		if ((i = pb_shard_find(&cfg.shards, argv[0])) < 0) {
			fprintf(stderr, "pbctl: no shard '%s' (master_name %s)\n", argv[0],
				cfg.master_name);
			return 2;
		}
		pb_redis_init_shard(&R, &cfg, "pbctl", i);
		argc--, argv++;
	} else if (cfg.shards.n > 1) {
		fprintf(stderr, "pbctl: which shard? switchover SHARD, one of %s\n",
			cfg.master_name);
		return 2;
	}
	if (argc > 1 && !strcmp(argv[0], "--timeout") &&
	    pb_parse_long(argv[1], 1, 600, &timeout_s) != PB_OK) {
		fprintf(stderr, "pbctl: --timeout takes 1 to 600 seconds, not '%s'\n", argv[1]);
		return 2;
	}
	if (majority_master(&old) != PB_OK || !node_is_master(&old)) {
		fprintf(stderr, "pbctl: no master that a majority of the Sentinels names "
			"and that says it is master: not switching over\n");
		return 1;
	}
	t0 = pb_now_ms();
	snprintf(pause_ms, sizeof(pause_ms), "%ld", timeout_s * 1000);
	if (!node_ok(&old, "CLIENT PAUSE %s %s", pause_ms, "WRITE"))
		return 1;
	deadline = t0 + SWITCH_CATCH_UP_MS;
	while ((behind = replicas_behind(&old)) != 0 && pb_now_ms() < deadline)
		pb_sleep_ms(20, NULL);
	if (behind != 0) {
		fprintf(stderr, "pbctl: %s:%d: replicas %s after %d ms: not switching over\n",
			old.host, old.port, behind < 0 ? "not online" : "still behind",
			SWITCH_CATCH_UP_MS);
		node_ok(&old, "CLIENT UNPAUSE", NULL, NULL);
		return 1;
	}
	for (i = 0; i < R.nsentinels && r == NULL; i++) {
		r = pb_sentinel_cmd(&R, &R.sentinels[i], "SENTINEL FAILOVER %s",
				    R.master_name);
		if (r && r->type == REDIS_REPLY_ERROR) {
			fprintf(stderr, "pbctl: sentinel %s:%d: %s\n", R.sentinels[i].host,
				R.sentinels[i].port, r->str);
			freeReplyObject(r);
			r = NULL;
		}
	}
	if (r == NULL) {
		fprintf(stderr, "pbctl: no Sentinel started a failover: not switching over\n");
		node_ok(&old, "CLIENT UNPAUSE", NULL, NULL);
		return 1;
	}
	freeReplyObject(r);
	deadline = t0 + timeout_s * 1000;
	while (!(majority_master(&now) == PB_OK && !same_node(&now, &old) &&
		 node_is_master(&now))) {
		if (pb_now_ms() > deadline) {
			fprintf(stderr, "pbctl: the Sentinels named no new master in %ld s; "
				"writes on %s:%d resume when the pause ends\n", timeout_s,
				old.host, old.port);
			return 1;
		}
		pb_sleep_ms(100, NULL);
	}
	snprintf(port, sizeof(port), "%d", now.port);
	if (!node_ok(&old, "REPLICAOF %s %s", now.host, port)) {
		/* Unpausing a node that may still act as master could lose
		 * writes: let the pause run out; Sentinel demotes it meanwhile. */
		fprintf(stderr, "pbctl: %s:%d is not yet a replica of %s:%d; its "
			"writes stay paused until the pause ends\n", old.host, old.port,
			now.host, now.port);
		return 1;
	}
	node_ok(&old, "CLIENT UNPAUSE", NULL, NULL);
	printf("switched over: master %s:%d -> %s:%d, writes paused %lld ms\n", old.host,
	       old.port, now.host, now.port, (long long)(pb_now_ms() - t0));
	return 0;
}

/*
 * The queue's Redis Functions: one library a version (apps/lua, named
 * PB_FN_LIBRARY_NAME: "pb_" and a digest of its text). A deployment loads
 * its version's library before it starts that version's daemons; daemons
 * of the version before keep calling theirs until they are replaced, and
 * --prune (once every daemon runs this version) deletes the others.
 */

/* 1 if name is a library of this project (pb_ and 10 hex digits). */
static int is_pb_library(const char *name, size_t len)
{
	size_t i;

	if (len != 13 || strncmp(name, "pb_", 3) != 0)
		return 0;
	for (i = 3; i < len; i++)
		if (!strchr("0123456789abcdef", name[i]))
			return 0;
	return 1;
}

/* A FUNCTION LIST entry's field (a flat list of names and values). */
static const redisReply *lib_field(const redisReply *lib, const char *field)
{
	size_t i;

	if (lib->type != REDIS_REPLY_ARRAY)
		return NULL;
	for (i = 0; i + 1 < lib->elements; i += 2)
		if (lib->element[i]->type == REDIS_REPLY_STRING &&
		    !strcmp(lib->element[i]->str, field))
			return lib->element[i + 1];
	return NULL;
}

/* Print this project's libraries; prune: delete those of other versions.
 * Returns whether this version's is loaded. */
static int list_libraries(int prune)
{
	redisReply *r = cmd_or_die("FUNCTION LIST LIBRARYNAME pb_*");
	int ours = 0;
	size_t i;

	for (i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
		const redisReply *name = lib_field(r->element[i], "library_name");
		const redisReply *fns = lib_field(r->element[i], "functions");
		int mine;

		if (name == NULL || name->type != REDIS_REPLY_STRING ||
		    !is_pb_library(name->str, name->len))
			continue;
		mine = !strcmp(name->str, PB_FN_LIBRARY_NAME);
		ours |= mine;
		if (prune && !mine) {
			freeReplyObject(cmd_or_die("FUNCTION DELETE %s", name->str));
			printf("%s  deleted\n", name->str);
			continue;
		}
		printf("%s  %zu functions%s\n", name->str,
		       fns && fns->type == REDIS_REPLY_ARRAY ? fns->elements : 0,
		       mine ? "  (this version's)" : "");
	}
	freeReplyObject(r);
	return ours;
}

static int cmd_functions(int argc, char **argv)
{
	const char *verb = argc > 0 ? argv[0] : "list";
	int prune = argc == 2 && !strcmp(argv[1], "--prune");
	int known = !strcmp(verb, "list") || !strcmp(verb, "load");
	const char *load[] = { "FUNCTION", "LOAD", PB_FN_LIBRARY };
	redisReply *r;

	if (!known || argc > 2 || (argc == 2 && (!prune || strcmp(verb, "load") != 0))) {
		int help = !strcmp(verb, "--help");

		fprintf(help ? stdout : stderr,
			"pbctl functions [list]: the queue's libraries of Redis Functions on\n"
			"  the master; exit 1 if this version's (%s) is not among them.\n"
			"pbctl functions load [--prune]: load this version's library (the\n"
			"  daemons of this version call it, and may call nothing else); say\n"
			"  whether it was there already. --prune: delete the libraries of other\n"
			"  versions (once no daemon of those runs).\n", PB_FN_LIBRARY_NAME);
		return help ? 0 : 2;
	}
	if (!strcmp(verb, "list"))
		return list_libraries(0) ? 0 : 1;
	r = pb_redis_argv(&R, 3, load, NULL);
	if (r && r->type == REDIS_REPLY_ERROR && strstr(r->str, "already exists")) {
		printf("%s  already loaded\n", PB_FN_LIBRARY_NAME);
		freeReplyObject(r);
	} else {
		freeReplyObject(reply_or_die(r));
		printf("%s  loaded\n", PB_FN_LIBRARY_NAME);
	}
	if (prune)
		list_libraries(1);
	return 0;
}

/* ---- shards (shard.h) ------------------------------------------------------ */

/* How the exit codes of a command run on each shard make one. */
enum { WORST, ANY };

static int cmd_status_argv(int argc, char **argv)
{
	(void)argc, (void)argv;
	return cmd_status();
}

/* dead show|replay|purge ID: the letter is on one shard. */
static int dead_by_id(int argc, char **argv)
{
	return argc == 2 && strcmp(argv[1], "--all") != 0 &&
	       (!strcmp(argv[0], "show") || !strcmp(argv[0], "replay") ||
		!strcmp(argv[0], "purge"));
}

/*
 * Run fn on every shard, one after another, each in a child process of
 * its own (the commands exit on a Redis error: one shard that fails must
 * not hide the others), under a "== shard NAME" line. With one shard, fn
 * runs here as it always did. The exit code: the worst, or (ANY) 0 when
 * any shard's was.
 */
static int each_shard(int (*fn)(int, char **), int argc, char **argv, int how)
{
	int s, rc = -1, status;
	pid_t pid;

	if (cfg.shards.n == 1 || (argc > 0 && !strcmp(argv[0], "--help")))
		return fn(argc, argv);
	for (s = 0; s < cfg.shards.n; s++) {
		int code;

		printf("== shard %s\n", cfg.shards.name[s]);
		fflush(stdout);
		fflush(stderr);
		if ((pid = fork()) < 0) {
			fprintf(stderr, "pbctl: fork: %s\n", strerror(errno));
			return 1;
		}
		if (pid == 0) {
			pb_redis_init_shard(&R, &cfg, "pbctl", s);
			code = fn(argc, argv);
			fflush(stdout);
			_exit(code);
		}
		if (waitpid(pid, &status, 0) < 0) {
			fprintf(stderr, "pbctl: waitpid: %s\n", strerror(errno));
			return 1;
		}
		code = WIFEXITED(status) ? WEXITSTATUS(status) : 1;
		if (rc < 0 || (how == ANY ? code < rc : code > rc))
			rc = code;
	}
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

int main(int argc, char **argv)
{
	int pos;
	const char *cmd;

	switch (pb_config_load(&cfg, PB_FOR_CTL, "pbctl", usage, argc, argv, &pos,
			       default_config())) {
	case PB_CONFIG_EXIT: return 0;
	case PB_CONFIG_ERR: return 2;
	}
	if (pos >= argc) {
		pb_config_help(PB_FOR_CTL, "pbctl", usage, stderr);
		return 2;
	}
	pb_log_init("pbctl", cfg.log_level);
	if (pb_keys_init(&K, cfg.key_prefix) != PB_OK) {
		fprintf(stderr, "pbctl: key_prefix '%s': key names too long\n",
			cfg.key_prefix);
		return 2;
	}
	if (pb_redis_init(&R, &cfg, "pbctl") != PB_OK) {
		fprintf(stderr, "pbctl: %s\n", R.errstr);
		return 2;
	}
	cmd = argv[pos];
	if (!strcmp(cmd, "status")) {
		if (pos + 1 < argc && !strcmp(argv[pos + 1], "--help")) {
			puts("pbctl status: master per Sentinel, replicas and lag, queue, "
			     "retries, dead letters, agents and what each holds, and a\n"
			     "verdict, also its exit code: 0 healthy; 1 degraded (a Sentinel,\n"
			     "replica or agent gone, or none registered); 2 down (no master a\n"
			     "Sentinel majority names, the master silent, no replica, or no\n"
			     "ingest node alive)");
			return 0;
		}
		return each_shard(cmd_status_argv, 0, NULL, WORST);
	}
	if (!strcmp(cmd, "dead"))
		return each_shard(cmd_dead, argc - pos - 1, argv + pos + 1,
				  dead_by_id(argc - pos - 1, argv + pos + 1) ? ANY : WORST);
	if (!strcmp(cmd, "drain"))
		return each_shard(cmd_drain, argc - pos - 1, argv + pos + 1, WORST);
	if (!strcmp(cmd, "ids"))
		return each_shard(cmd_ids, argc - pos - 1, argv + pos + 1, WORST);
	if (!strcmp(cmd, "switchover"))
		return cmd_switchover(argc - pos - 1, argv + pos + 1);
	if (!strcmp(cmd, "breakers"))
		return each_shard(cmd_breakers, argc - pos - 1, argv + pos + 1, WORST);
	if (!strcmp(cmd, "keys"))
		return cmd_keys(argc - pos - 1, argv + pos + 1);
	if (!strcmp(cmd, "functions"))
		return each_shard(cmd_functions, argc - pos - 1, argv + pos + 1, WORST);
	fprintf(stderr, "pbctl: unknown command '%s' (see --help)\n", cmd);
	return 2;
}
