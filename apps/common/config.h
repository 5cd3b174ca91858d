/*
 * config.h - one configuration for every postback program.
 *
 * All settings live in one table (config.c): name, type, default, bounds,
 * which programs use it, and a line of help. The same table drives the
 * config file parser, the command-line overrides, --help and --check, so a
 * setting is declared once. A file holds "name = value" lines ('#' starts a
 * comment); the command line takes --name=value or --name value, with '-'
 * and '_' alike in names. Later sources win: defaults, file, command line.
 */
#ifndef PB_CONFIG_H
#define PB_CONFIG_H

#include <stdio.h>

#include "shard.h"

#define PB_STR_MAX 1024
/* A list as long as a cluster's hosts (deny_destinations): ~1,000 IPv4. */
#define PB_LIST_MAX 16384

/* Which programs a setting applies to. */
#define PB_FOR_INGEST 1u
#define PB_FOR_AGENT 2u
#define PB_FOR_CTL 4u
#define PB_FOR_ALL (PB_FOR_INGEST | PB_FOR_AGENT | PB_FOR_CTL)

typedef struct pb_config {
	/* Redis through Sentinel (every program) */
	char sentinels[PB_STR_MAX];
	char master_name[PB_STR_MAX]; /* one name a shard (shard.h) */
	char closed_shards[PB_STR_MAX]; /* of them, taking no new requests */
	char redis_user[128];
	char redis_password_file[PB_STR_MAX];
	char sentinel_user[128];
	char sentinel_password_file[PB_STR_MAX];
	long connect_timeout_ms;
	long command_timeout_ms;
	long failover_wait_ms;
	char key_prefix[64];
	char log_level[16];
	char metrics_listen[256];
	/* ingest node */
	char listen[256];
	long threads;
	long backlog;
	long max_queue_size;
	long client_share_pct;
	long max_body_bytes;
	long max_url_bytes;
	long max_objects;
	long redis_memory_high_pct;
	long max_request_job_bytes;
	long wait_replicas;
	long wait_timeout_ms;
	long retry_after_s;
	long idempotency_window_s;
	long shutdown_drain_ms;
	int require_client_key;
	long client_keys_refresh_ms;
	/* delivery agent */
	char agent_id[128];
	long concurrency;
	long fetch_batch;
	long max_in_flight_per_destination;
	long breaker_failures;
	long breaker_cooldown_ms;
	long max_age_s;
	long http_connect_timeout_ms;
	long http_timeout_ms;
	long max_attempts;
	long backoff_base_ms;
	long backoff_cap_ms;
	char retry_schedule[PB_STR_MAX];
	long retry_after_max_s;
	char unmatched_default[PB_STR_MAX];
	long log_body_bytes;
	char delivery_log[PB_STR_MAX];
	long shutdown_grace_ms;
	long heartbeat_ttl_ms;
	int allow_private;
	int delivery_log_stdout;
	char delivery_log_format[16];
	int log_redact_query;
	int log_redact_body;
	char allow_destinations[PB_STR_MAX];
	char deny_destinations[PB_LIST_MAX];
	char user_agent[128];
	long metrics_destinations;
	long metrics_clients;

	/* master_name's names, parsed after loading. */
	pb_shards shards;
	/* Filled from the *_file settings after loading; never printed. */
	char redis_password[256];
	char sentinel_password[256];
	/* Set by the command line. */
	const char *config_file;
} pb_config;

enum pb_config_result {
	PB_CONFIG_RUN = 0,  /* go on */
	PB_CONFIG_EXIT = 1, /* --help, --version or --check done: exit 0 */
	PB_CONFIG_ERR = 2,  /* the message is printed: exit 2 */
};

/*
 * Fill cfg from defaults, the config file (-c FILE) and the command line.
 * prog names the program for --help and messages; usage is one line that
 * says what the program does, printed by --help above the settings;
 * positional receives the first non-option argument index (or argc);
 * default_file is read when no -c is given (NULL: none).
 */
int pb_config_load(pb_config *cfg, unsigned who, const char *prog,
		   const char *usage, int argc, char **argv, int *positional,
		   const char *default_file);
/*
 * What a daemon does first: load the settings (no positional arguments
 * allowed) and start logging. PB_CONFIG_RUN to go on; otherwise the process
 * exits with pb_config_exit_status() of the result.
 */
int pb_config_daemon(pb_config *cfg, unsigned who, const char *prog,
		     const char *usage, int argc, char **argv);
/* 0 for PB_CONFIG_EXIT (--help and the like), 2 for PB_CONFIG_ERR. */
int pb_config_exit_status(int rc);
/* Apply one "name", "value" pair; returns PB_OK or writes why into err. */
int pb_config_set(pb_config *cfg, unsigned who, const char *name,
		  const char *value, char *err, size_t errlen);
int pb_config_defaults(pb_config *cfg, unsigned who);
int pb_config_read_file(pb_config *cfg, unsigned who, const char *path,
			char *err, size_t errlen);
/* Write the effective settings, one "name = value" a line. */
void pb_config_print(const pb_config *cfg, unsigned who, FILE *out);
void pb_config_help(unsigned who, const char *prog, const char *usage,
		    FILE *out);

#endif
