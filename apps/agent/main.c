/*
 * pb-agent - the delivery agent: settings, signals, start and stop. What
 * each thread does, and what they share: agent.h.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <jansson.h>

#include "agent.h"
#include "agentmetrics.h"
#include "destgate.h"
#include "log.h"
#include "sdnotify.h"
#include "pb.h"
#include "policies.h"
#include "signers.h"

pb_config cfg;
pb_queue_keys keys;
atomic_int stopping;
atomic_int reopen_log;
atomic_int recorder_quit;
_Atomic int64_t fetch_turn_ms;

static sigset_t sigs;

static void *signal_main(void *arg)
{
	int sig;

	(void)arg;
	for (;;) {
		if (sigwait(&sigs, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			reopen_log = 1;
			deliver_wake();
		} else {
			pb_info("%s: no new postbacks; finishing those in flight "
				"(grace %ld ms)", strsignal(sig), cfg.shutdown_grace_ms);
			pb_sd_stopping("finishing the deliveries in flight");
			stopping = 1;
			handover_wake();
		}
	}
	return NULL;
}

static int start_thread(pthread_t *t, void *(*fn)(void *), void *arg)
{
	if (pthread_create(t, NULL, fn, arg) != 0) {
		pb_error("cannot start a thread: %s", strerror(errno));
		return PB_ERR_NOMEM;
	}
	return PB_OK;
}

/*
 * Descriptors: a socket per delivery in flight, as many kept alive for
 * reuse (CURLMOPT_MAXCONNECTS), and a few for Redis and the logs. A soft
 * limit of 1024 (a shell's, or systemd's default) is short of that at
 * concurrency 512: raise it as far as the hard limit allows, and say so
 * when that is not enough (the unit's LimitNOFILE is derived the same way).
 */
static void raise_fd_limit(void)
{
	rlim_t want = (rlim_t)cfg.concurrency * 2 + 256;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
		return;
	rl.rlim_cur = rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want ? rl.rlim_max
									 : want;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < want)
		pb_warn("open files limited to %llu, %llu wanted for concurrency %ld: "
			"deliveries may fail with 'too many open files'",
			(unsigned long long)rl.rlim_cur, (unsigned long long)want,
			cfg.concurrency);
}

/* The configuration's delivery rules, which every destination has where
 * its own policy (pbctl policy set) sets nothing. */
static int policies_setup(void)
{
	pb_policy d = { .backoff_base_ms = cfg.backoff_base_ms,
			.backoff_cap_ms = cfg.backoff_cap_ms, .retry_on = PB_FAIL_ALL,
			.timeout_ms = cfg.http_timeout_ms, .max_attempts = cfg.max_attempts,
			.max_age_s = cfg.max_age_s, .on_410 = PB_410_PARK,
			.sign = PB_SIGN_CLIENT };
	char err[256];

	if (pb_schedule_parse(cfg.retry_schedule, d.schedule_ms, &d.n_schedule, err,
			      sizeof(err)) != PB_OK) {
		pb_error("retry_schedule: %s", err);
		return PB_ERR_FORMAT;
	}
	policies_init(&d);
	return PB_OK;
}

static int setup(void)
{
	char host[128];

	if (cfg.agent_id[0] == '\0') {
		if (gethostname(host, sizeof(host)) != 0)
			pb_strlcpy(host, "agent", sizeof(host));
		host[sizeof(host) - 1] = '\0';
		pb_strlcpy(cfg.agent_id, host, sizeof(cfg.agent_id));
	}
	if (strpbrk(cfg.agent_id, " \t:{}\"=") != NULL) {
		pb_error("agent_id '%s': no spaces, quotes, '=', ':' or braces", cfg.agent_id);
		return PB_ERR_FORMAT;
	}
	if (strcmp(cfg.delivery_log_format, "logfmt") != 0 &&
	    strcmp(cfg.delivery_log_format, "json") != 0) {
		pb_error("delivery_log_format '%s': logfmt or json", cfg.delivery_log_format);
		return PB_ERR_FORMAT;
	}
	if (pb_queue_keys_init(&keys, cfg.key_prefix, cfg.agent_id) != PB_OK) {
		pb_error("key_prefix '%s' with agent_id '%s': key names too long",
			 cfg.key_prefix, cfg.agent_id);
		return PB_ERR_LIMIT;
	}
	raise_fd_limit();
	if (policies_setup() != PB_OK)
		return PB_ERR_FORMAT;
	if (handover_init(cfg.concurrency, cfg.max_in_flight_per_destination,
			  cfg.shards.n, deliver_wake) != PB_OK) {
		pb_error("out of memory for %ld destinations", cfg.concurrency);
		return PB_ERR_NOMEM;
	}
	if (destgate_init() != PB_OK) {
		pb_error("out of memory for %d shards' gates", cfg.shards.n);
		return PB_ERR_NOMEM;
	}
	return deliver_init();
}

/* Each shard's connections, and its fetcher and recorder threads. */
static int start_shards(shard_worker *sws)
{
	char name[64];
	int s;

	for (s = 0; s < cfg.shards.n; s++) {
		shard_worker *sw = &sws[s];
		sw->shard = s;
		sw->name = cfg.shards.name[s];
		snprintf(name, sizeof(name), cfg.shards.n > 1 ? "agent-fetch-%d"
			 : "agent-fetch", s);
		pb_redis_init_shard(&sw->fetch, &cfg, name, s);
		snprintf(name, sizeof(name), cfg.shards.n > 1 ? "agent-record-%d"
			 : "agent-record", s);
		pb_redis_init_shard(&sw->record, &cfg, name, s);
		sw->fetch.stop = &stopping;
		sw->record.stop = &recorder_quit;
		if (start_thread(&sw->fetcher, fetcher_main, sw) != PB_OK)
			return PB_ERR_NOMEM;
		sw->fetcher_started = 1;
		if (start_thread(&sw->recorder, recorder_main, sw) != PB_OK)
			return PB_ERR_NOMEM;
		sw->recorder_started = 1;
	}
	return PB_OK;
}

/* After the deliverer: every fetcher has stopped; the recorders finish
 * what is left, then the agent leaves each shard (pb_queue_leave). */
static void stop_shards(shard_worker *sws)
{
	int s;

	for (s = 0; s < cfg.shards.n; s++)
		if (sws[s].fetcher_started)
			pthread_join(sws[s].fetcher, NULL);
	record_finish();
	for (s = 0; s < cfg.shards.n; s++) {
		shard_worker *sw = &sws[s];

		if (sw->recorder_started)
			pthread_join(sw->recorder, NULL);
		sw->record.stop = NULL;
		if (sw->fetcher_started)
			pb_queue_leave(&sw->record, &keys);
		pb_redis_close(&sw->fetch);
		pb_redis_close(&sw->record);
	}
}

int main(int argc, char **argv)
{
	shard_worker sws[PB_MAX_SHARDS];
	pthread_t sigthread;
	int rc;

	if ((rc = pb_config_daemon(&cfg, PB_FOR_AGENT, "pb-agent",
				   "Delivery agent: takes postbacks from Redis and "
				   "delivers them over HTTP.",
				   argc, argv)) != PB_CONFIG_RUN)
		return pb_config_exit_status(rc);
	json_object_seed(0); /* before threads: jansson's rule */
	if (setup() != PB_OK)
		return 1;
	/* Every thread inherits this mask (the metrics server's too); the
	 * signal thread takes them. */
	pb_block_signals(&sigs);
	if (am_start() != PB_OK)
		return 1;

	pb_info("agent %s: %d shard(s) '%s' via %s, %ld in flight, %ld "
		"attempts, log %s", cfg.agent_id, cfg.shards.n, cfg.master_name,
		cfg.sentinels, cfg.concurrency, cfg.max_attempts, cfg.delivery_log);

	memset(sws, 0, sizeof(sws));
	if (start_thread(&sigthread, signal_main, NULL) != PB_OK ||
	    start_shards(sws) != PB_OK)
		return 1;
	pb_sd_ready("delivering");
	deliver_loop();
	stop_shards(sws);
	record_report();
	deliver_cleanup();
	signers_free();
	policies_free();
	destgate_cleanup();
	handover_cleanup();
	am_stop();
	return 0;
}
