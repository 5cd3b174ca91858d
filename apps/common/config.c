#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "defaults.h" /* generated: build/gen/defaults.h */
#include "log.h"
#include "pb.h"
#include "policy.h"
#include "version.h"

enum opt_type { T_INT, T_STR, T_BOOL };

typedef struct pb_opt {
	const char *name;
	enum opt_type type;
	size_t offset;
	size_t size; /* of the string field */
	const char *def;
	long min, max;
	unsigned who;
	const char *help;
} pb_opt;

#define I(n, d, lo, hi, w, h) \
	{ #n, T_INT, offsetof(pb_config, n), 0, d, lo, hi, w, h }
#define S(n, d, w, h) \
	{ #n, T_STR, offsetof(pb_config, n), sizeof(((pb_config *)0)->n), d, 0, 0, w, h }
#define B(n, d, w, h) \
	{ #n, T_BOOL, offsetof(pb_config, n), 0, d, 0, 1, w, h }

#define ALL PB_FOR_ALL
#define ING PB_FOR_INGEST
#define AGT PB_FOR_AGENT

/*
 * Every setting, its default and its bounds. Defaults named PB_DEF_* are
 * the Ansible roles' defaults (ansible/roles/ROLE/defaults/main.yml), which
 * scripts/gen_defaults.py turns into build/gen/defaults.h: change them
 * there. The others have no role variable.
 */
static const pb_opt opts[] = {
	S(sentinels, "127.0.0.1:26390,127.0.0.1:26391,127.0.0.1:26392", ALL,
	  "Sentinels as host:port, comma-separated, tried in order"),
	S(master_name, PB_DEF_master_name, ALL,
	  "the masters' names in Sentinel, comma-separated: one a shard, "
	  "the first holds the client keys"),
	S(redis_user, "default", ALL, "Redis ACL user"),
	S(redis_password_file, "", ALL,
	  "file holding the Redis user's password (empty: no AUTH)"),
	S(sentinel_user, "", ALL, "Sentinel ACL user (empty: the default user)"),
	S(sentinel_password_file, "", ALL,
	  "file holding the Sentinels' password (empty: no AUTH)"),
	I(connect_timeout_ms, PB_DEF_connect_timeout_ms, 10, 60000, ALL,
	  "connect timeout for Redis and Sentinel, ms"),
	I(command_timeout_ms, PB_DEF_command_timeout_ms, 10, 600000, ALL,
	  "reply timeout for one Redis command, ms"),
	I(failover_wait_ms, PB_DEF_failover_wait_ms, 0, 600000, ALL,
	  "how long to keep resolving the master when none answers, ms"),
	S(key_prefix, PB_DEF_key_prefix, ALL, "prefix of every Redis key"),
	S(log_level, PB_DEF_log_level, ALL, "debug, info, warn or error"),
	S(metrics_listen, "", ING | AGT,
	  "serve Prometheus metrics on host:port, at /metrics (empty: off)"),

	S(listen, "127.0.0.1:9001", ING, "FastCGI socket: host:port or a path"),
	I(threads, PB_DEF_threads, 1, 1024, ING,
	  "FastCGI threads, each with its own Redis connection"),
	I(backlog, PB_DEF_backlog, 1, 65535, ING, "listen backlog"),
	I(max_queue_size, PB_DEF_max_queue_size, 1, 2000000000, ING,
	  "MAX_QUEUE_SIZE: refuse (503) a request that would pass it"),
	I(client_share_pct, PB_DEF_client_share_pct, 1, 100, ING,
	  "the share of max_queue_size one client may have queued on a shard "
	  "(past it: 429 for that client); pbctl keys share overrides it"),
	I(max_body_bytes, PB_DEF_max_body_bytes, 64, 1073741824, ING,
	  "largest request body, bytes (413 above)"),
	I(max_url_bytes, PB_DEF_max_url_bytes, 16, 65536, ING, "longest endpoint.url, bytes"),
	I(max_objects, PB_DEF_max_objects, 1, 1000000, ING,
	  "data objects in one request at most (413 beyond)"),
	I(max_request_job_bytes, PB_DEF_max_request_job_bytes, 1024, 1073741824, ING,
	  "bytes of the postbacks one request makes, at most (413 beyond)"),
	I(redis_memory_high_pct, PB_DEF_redis_memory_high_pct, 1, 100, ING,
	  "503 once Redis uses this share of its maxmemory, %"),
	I(wait_replicas, PB_DEF_wait_replicas, 0, 16, ING,
	  "replicas that must confirm a write before the 200 (WAIT)"),
	I(wait_timeout_ms, PB_DEF_wait_timeout_ms, 1, 60000, ING,
	  "how long WAIT may take before the answer is 503, ms"),
	I(retry_after_s, PB_DEF_retry_after_s, 0, 3600, ING, "Retry-After sent with a 503, s"),
	I(idempotency_window_s, PB_DEF_idempotency_window_s, 1, 604800, ING,
	  "how long an Idempotency-Key is remembered, s"),
	S(closed_shards, PB_DEF_closed_shards, ING,
	  "shards (master names, comma-separated) that take no new requests "
	  "while the agents drain them, to retire them; never the first"),
	I(shutdown_drain_ms, PB_DEF_shutdown_drain_ms, 0, 600000, ING,
	  "on SIGTERM, how long to answer on open connections (longer than "
	  "HAProxy takes to mark the node down), ms"),
	B(require_client_key, PB_DEF_require_client_key, ING,
	  "refuse (401) a request without a client key (pbctl keys add)"),
	I(client_keys_refresh_ms, PB_DEF_client_keys_refresh_ms, 50, 60000, ING,
	  "how often the client keys are checked for changes in Redis, ms "
	  "(a revoked key works at most this long, and one reload)"),

	S(agent_id, "", AGT,
	  "this agent's identity, stable across restarts (default: host name)"),
	I(concurrency, PB_DEF_concurrency, 1, 10000, AGT, "deliveries in flight at most"),
	I(fetch_batch, PB_DEF_fetch_batch, 1, 1000, AGT, "postbacks taken from Redis per round trip"),
	I(max_in_flight_per_destination, PB_DEF_max_in_flight_per_destination, 1,
	  10000, AGT, "deliveries in flight to one destination (scheme, host, "
	  "port) at most"),
	I(breaker_failures, PB_DEF_breaker_failures, 1, 1000000, AGT,
	  "failures in a row (no answer, 5xx) that open a destination's breaker"),
	I(breaker_cooldown_ms, PB_DEF_breaker_cooldown_ms, 100, 86400000, AGT,
	  "how long an open breaker parks its destination before a probe, ms"),
	I(max_age_s, PB_DEF_max_age_s, 0, 31536000, AGT,
	  "a postback older than this is dead (\"expired\"), s; 0: no limit"),
	I(http_connect_timeout_ms, PB_DEF_http_connect_timeout_ms, 10, 600000, AGT,
	  "HTTP connect timeout, ms"),
	I(http_timeout_ms, PB_DEF_http_timeout_ms, 10, 3600000, AGT,
	  "HTTP total timeout for one attempt, ms"),
	I(max_attempts, PB_DEF_max_attempts, 1, 1000, AGT,
	  "attempts before a postback becomes a dead letter"),
	I(backoff_base_ms, PB_DEF_backoff_base_ms, 1, 86400000, AGT,
	  "first retry delay (full jitter, doubling), ms"),
	I(backoff_cap_ms, PB_DEF_backoff_cap_ms, 1, 86400000, AGT, "longest retry delay, ms"),
	S(retry_schedule, PB_DEF_retry_schedule, AGT,
	  "delays before retry 1, 2, ... (the last repeats), each drawn within "
	  "10 % of itself, e.g. 1s,10s,1m; empty: backoff_base_ms doubling to "
	  "backoff_cap_ms, full jitter"),
	I(retry_after_max_s, PB_DEF_retry_after_max_s, 0, 86400, AGT,
	  "longest Retry-After honoured, s"),
	S(unmatched_default, PB_DEF_unmatched_default, AGT, "value for a {key} missing from the data"),
	I(log_body_bytes, PB_DEF_log_body_bytes, 0, 65536, AGT,
	  "response body bytes kept in the delivery log"),
	S(delivery_log, "-", AGT, "delivery log file ('-': standard output)"),
	B(delivery_log_stdout, "no", AGT,
	  "also write each delivery log line to standard output (under "
	  "systemd: the journal)"),
	S(delivery_log_format, PB_DEF_delivery_log_format, AGT,
	  "the delivery log's lines: logfmt or json (one object a line)"),
	B(log_redact_query, PB_DEF_log_redact_query, AGT,
	  "log each query value of a delivery's URL as *"),
	B(log_redact_body, PB_DEF_log_redact_body, AGT,
	  "log an answer's length (body_bytes), not its body"),
	I(shutdown_grace_ms, PB_DEF_shutdown_grace_ms, 0, 3600000, AGT,
	  "on SIGTERM, how long in-flight deliveries may finish, ms"),
	I(heartbeat_ttl_ms, PB_DEF_heartbeat_ttl_ms, 3000, 600000, AGT,
	  "an agent silent this long is dead and its postbacks are reclaimed (heartbeats go every second), ms"),
	B(allow_private, PB_DEF_allow_private, AGT,
	  "deliver to loopback, private and link-local addresses"),
	S(allow_destinations, PB_DEF_allow_destinations, AGT,
	  "addresses or CIDR ranges allowed even when private (comma-separated)"),
	S(deny_destinations, "", AGT,
	  "public addresses or CIDR ranges never delivered to (comma-separated): "
	  "the cluster's own hosts, which the roles list"),
	S(user_agent, "postback-agent/" PB_VERSION, AGT, "HTTP User-Agent"),
	I(metrics_destinations, PB_DEF_metrics_destinations, 0, 10000, AGT,
	  "destinations with metric series of their own (the rest: \"other\")"),
	I(metrics_clients, PB_DEF_metrics_clients, 0, 10000, ING | AGT,
	  "clients with metric series of their own (the rest: \"other\")"),
};

static void *field(pb_config *cfg, const pb_opt *o)
{
	return (char *)cfg + o->offset;
}

static const void *cfield(const pb_config *cfg, const pb_opt *o)
{
	return (const char *)cfg + o->offset;
}

/* "max-queue-size" and "max_queue_size" name the same setting. */
static int name_eq(const char *a, const char *b, size_t blen)
{
	size_t i;

	for (i = 0; i < blen; i++) {
		char x = (char)(a[i] == '-' ? '_' : a[i]);
		char y = (char)(b[i] == '-' ? '_' : b[i]);
		if (x == '\0' || x != y)
			return 0;
	}
	return a[blen] == '\0';
}

static const pb_opt *find_opt(const char *name, size_t len, unsigned who)
{
	size_t i;

	for (i = 0; i < PB_ARRAY_LEN(opts); i++)
		if ((opts[i].who & who) && name_eq(opts[i].name, name, len))
			return &opts[i];
	return NULL;
}

static int parse_bool(const char *v, int *out)
{
	if (!strcasecmp(v, "yes") || !strcasecmp(v, "true") ||
	    !strcasecmp(v, "on") || !strcmp(v, "1"))
		*out = 1;
	else if (!strcasecmp(v, "no") || !strcasecmp(v, "false") ||
		 !strcasecmp(v, "off") || !strcmp(v, "0"))
		*out = 0;
	else
		return PB_ERR_FORMAT;
	return PB_OK;
}

static int set_opt(pb_config *cfg, const pb_opt *o, const char *value,
		   char *err, size_t errlen)
{
	switch (o->type) {
	case T_INT:
		switch (pb_parse_long(value, o->min, o->max, (long *)field(cfg, o))) {
		case PB_OK:
			return PB_OK;
		case PB_ERR_LIMIT:
			snprintf(err, errlen, "%s: %s is outside %ld..%ld", o->name,
				 value, o->min, o->max);
			return PB_ERR_LIMIT;
		default:
			snprintf(err, errlen, "%s: '%s' is not a whole number",
				 o->name, value);
			return PB_ERR_FORMAT;
		}
	case T_BOOL:
		if (parse_bool(value, (int *)field(cfg, o)) != PB_OK) {
			snprintf(err, errlen, "%s: '%s' is not yes or no", o->name,
				 value);
			return PB_ERR_FORMAT;
		}
		return PB_OK;
	case T_STR:
		if (pb_strlcpy(field(cfg, o), value, o->size) != PB_OK) {
			snprintf(err, errlen, "%s: value longer than %zu bytes",
				 o->name, o->size - 1);
			return PB_ERR_LIMIT;
		}
		return PB_OK;
	}
	return PB_ERR_FORMAT;
}

int pb_config_set(pb_config *cfg, unsigned who, const char *name,
		  const char *value, char *err, size_t errlen)
{
	const pb_opt *o = find_opt(name, strlen(name), who);

	if (o == NULL) {
		snprintf(err, errlen, "unknown setting '%s'", name);
		return PB_ERR_NOTFOUND;
	}
	return set_opt(cfg, o, value, err, errlen);
}

int pb_config_defaults(pb_config *cfg, unsigned who)
{
	char err[256];
	size_t i;

	memset(cfg, 0, sizeof(*cfg));
	for (i = 0; i < PB_ARRAY_LEN(opts); i++)
		if (set_opt(cfg, &opts[i], opts[i].def, err, sizeof(err)) != PB_OK)
			return PB_ERR_FORMAT; /* a bad default is a bug */
	(void)who;
	if (pb_shards_parse(&cfg->shards, cfg->master_name, err, sizeof(err)) != PB_OK)
		return PB_ERR_FORMAT;
	return pb_shards_close(&cfg->shards, cfg->closed_shards, err, sizeof(err));
}

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

int pb_config_read_file(pb_config *cfg, unsigned who, const char *path,
			char *err, size_t errlen)
{
	char line[PB_LIST_MAX + 256], msg[256];
	FILE *f = fopen(path, "r");
	int lineno = 0, rc = PB_OK;

	if (f == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return PB_ERR_IO;
	}
	while (rc == PB_OK && fgets(line, sizeof(line), f)) {
		char *name, *eq, *value;

		lineno++;
		if (strchr(line, '\n') == NULL && !feof(f)) {
			snprintf(err, errlen, "%s:%d: line too long", path, lineno);
			rc = PB_ERR_LIMIT;
			break;
		}
		name = trim(line);
		if (*name == '\0' || *name == '#')
			continue;
		if ((eq = strchr(name, '=')) == NULL) {
			snprintf(err, errlen, "%s:%d: expected 'name = value'", path,
				 lineno);
			rc = PB_ERR_FORMAT;
			break;
		}
		*eq = '\0';
		name = trim(name);
		value = trim(eq + 1);
		/* Optional double quotes keep leading or trailing spaces. */
		if (value[0] == '"' && strlen(value) >= 2 &&
		    value[strlen(value) - 1] == '"') {
			value[strlen(value) - 1] = '\0';
			value++;
		}
		rc = pb_config_set(cfg, who, name, value, msg, sizeof(msg));
		if (rc != PB_OK)
			snprintf(err, errlen, "%s:%d: %s", path, lineno, msg);
	}
	fclose(f);
	return rc;
}

static int read_secret(const char *path, char *out, size_t outsize, char *err,
		       size_t errlen)
{
	FILE *f;
	size_t n;

	out[0] = '\0';
	if (path[0] == '\0')
		return PB_OK;
	if ((f = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return PB_ERR_IO;
	}
	n = fread(out, 1, outsize - 1, f);
	fclose(f);
	out[n] = '\0';
	while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r'))
		out[--n] = '\0';
	return PB_OK;
}

void pb_config_print(const pb_config *cfg, unsigned who, FILE *out)
{
	size_t i;

	for (i = 0; i < PB_ARRAY_LEN(opts); i++) {
		const pb_opt *o = &opts[i];
		if (!(o->who & who))
			continue;
		switch (o->type) {
		case T_INT:
			fprintf(out, "%s = %ld\n", o->name,
				*(const long *)cfield(cfg, o));
			break;
		case T_BOOL:
			fprintf(out, "%s = %s\n", o->name,
				*(const int *)cfield(cfg, o) ? "yes" : "no");
			break;
		case T_STR:
			fprintf(out, "%s = \"%s\"\n", o->name,
				(const char *)cfield(cfg, o));
			break;
		}
	}
}

void pb_config_help(unsigned who, const char *prog, const char *usage,
		    FILE *out)
{
	size_t i;

	fprintf(out, "usage: %s [-c FILE] [--SETTING=VALUE ...]%s\n%s\n\n", prog,
		who == PB_FOR_CTL ? " COMMAND [ARGS]" : "", usage);
	fprintf(out,
		"  -c, --config FILE   read settings from FILE (name = value lines)\n"
		"  -t, --check         check the settings, print them, exit\n"
		"  -h, --help          this help\n"
		"  -V, --version       print the version\n\n"
		"settings (--name=value; defaults in brackets):\n");
	for (i = 0; i < PB_ARRAY_LEN(opts); i++) {
		const pb_opt *o = &opts[i];
		if (!(o->who & who))
			continue;
		fprintf(out, "  %-24s %s [%s]", o->name, o->help, o->def);
		if (o->type == T_INT)
			fprintf(out, " (%ld..%ld)", o->min, o->max);
		fputc('\n', out);
	}
}

static int finish(pb_config *cfg, const char *prog)
{
	char err[PB_STR_MAX + 64];

	if (read_secret(cfg->redis_password_file, cfg->redis_password,
			sizeof(cfg->redis_password), err, sizeof(err)) != PB_OK ||
	    read_secret(cfg->sentinel_password_file, cfg->sentinel_password,
			sizeof(cfg->sentinel_password), err, sizeof(err)) != PB_OK) {
		fprintf(stderr, "%s: %s\n", prog, err);
		return PB_CONFIG_ERR;
	}
	if (pb_shards_parse(&cfg->shards, cfg->master_name, err, sizeof(err)) != PB_OK ||
	    pb_shards_close(&cfg->shards, cfg->closed_shards, err, sizeof(err)) != PB_OK) {
		fprintf(stderr, "%s: %s\n", prog, err);
		return PB_CONFIG_ERR;
	}
	{
		int64_t ms[PB_POLICY_SCHEDULE_MAX];
		int n;

		if (pb_schedule_parse(cfg->retry_schedule, ms, &n, err, sizeof(err)) != PB_OK) {
			fprintf(stderr, "%s: retry_schedule: %s\n", prog, err);
			return PB_CONFIG_ERR;
		}
	}
	if (cfg->backoff_cap_ms < cfg->backoff_base_ms) {
		fprintf(stderr, "%s: backoff_cap_ms %ld is below backoff_base_ms %ld\n",
			prog, cfg->backoff_cap_ms, cfg->backoff_base_ms);
		return PB_CONFIG_ERR;
	}
	return PB_CONFIG_RUN;
}

/* The value of "--name=value" or "--name value"; NULL if missing. */
static const char *opt_value(char **argv, int argc, int *i, const char *eq)
{
	if (eq)
		return eq + 1;
	if (*i + 1 < argc)
		return argv[++*i];
	return NULL;
}

int pb_config_load(pb_config *cfg, unsigned who, const char *prog,
		   const char *usage, int argc, char **argv, int *positional,
		   const char *default_file)
{
	char err[PB_STR_MAX + 64];
	int i, check = 0;

	pb_config_defaults(cfg, who);
	/* The file first, so that the command line overrides it. */
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		if ((!strcmp(a, "-c") || !strcmp(a, "--config")) && i + 1 < argc)
			cfg->config_file = argv[++i];
		else if (!strncmp(a, "--config=", 9))
			cfg->config_file = a + 9;
	}
	if (cfg->config_file == NULL)
		cfg->config_file = default_file;
	if (cfg->config_file &&
	    pb_config_read_file(cfg, who, cfg->config_file, err, sizeof(err))) {
		fprintf(stderr, "%s: %s\n", prog, err);
		return PB_CONFIG_ERR;
	}
	*positional = argc;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *eq, *v;

		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			pb_config_help(who, prog, usage, stdout);
			return PB_CONFIG_EXIT;
		}
		if (!strcmp(a, "-V") || !strcmp(a, "--version")) {
			printf("%s %s\n", prog, PB_BUILD_VERSION);
			return PB_CONFIG_EXIT;
		}
		if (!strcmp(a, "-t") || !strcmp(a, "--check")) {
			check = 1;
			continue;
		}
		if (!strcmp(a, "-c") || !strcmp(a, "--config")) {
			i++;
			continue;
		}
		if (!strncmp(a, "--config=", 9))
			continue;
		if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
			*positional = i + (strcmp(a, "--") == 0);
			break;
		}
		eq = strchr(a, '=');
		if (find_opt(a + 2, eq ? (size_t)(eq - a - 2) : strlen(a + 2), who) ==
		    NULL) {
			fprintf(stderr, "%s: unknown option '%s' (see --help)\n", prog, a);
			return PB_CONFIG_ERR;
		}
		if ((v = opt_value(argv, argc, &i, eq)) == NULL) {
			fprintf(stderr, "%s: option '%s' needs a value\n", prog, a);
			return PB_CONFIG_ERR;
		}
		char name[128];
		size_t n = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
		if (n >= sizeof(name))
			n = sizeof(name) - 1;
		memcpy(name, a + 2, n);
		name[n] = '\0';
		if (pb_config_set(cfg, who, name, v, err, sizeof(err)) != PB_OK) {
			fprintf(stderr, "%s: %s\n", prog, err);
			return PB_CONFIG_ERR;
		}
	}
	if (finish(cfg, prog) != PB_CONFIG_RUN)
		return PB_CONFIG_ERR;
	if (check) {
		pb_config_print(cfg, who, stdout);
		fprintf(stderr, "%s: configuration OK\n", prog);
		return PB_CONFIG_EXIT;
	}
	return PB_CONFIG_RUN;
}

int pb_config_daemon(pb_config *cfg, unsigned who, const char *prog,
		     const char *usage, int argc, char **argv)
{
	int pos;

	int rc = pb_config_load(cfg, who, prog, usage, argc, argv, &pos, NULL);

	if (rc != PB_CONFIG_RUN)
		return rc;
	if (pos < argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", prog, argv[pos]);
		return PB_CONFIG_ERR;
	}
	if (pb_log_init(prog, cfg->log_level) != PB_OK) {
		fprintf(stderr, "%s: log_level '%s' is not debug, info, warn or error\n",
			prog, cfg->log_level);
		return PB_CONFIG_ERR;
	}
	return PB_CONFIG_RUN;
}

int pb_config_exit_status(int rc)
{
	return rc == PB_CONFIG_EXIT ? 0 : 2;
}
