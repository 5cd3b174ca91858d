#include <pthread.h>
#include <string.h>

#include "agent.h"
#include "agentmetrics.h"
#include "httpd.h"
#include "log.h"
#include "metrics.h"
#include "pb.h"
#include "stdmetrics.h"

#define METRICS_QUEUE_MS 5000 /* how often the lease holder reads the queue */
#define LEASE_MS 15000        /* ... and how long its lease outlives it */

/* Seconds, from a millisecond to a day: attempts, round trips, latency. */
static const double fast[] = { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
			       0.25, 0.5, 1, 2.5, 5, 10, 30 };
static const double slow[] = { 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300,
			       900, 3600, 21600, 86400 };
#define FAST .bounds = fast, .nbounds = (int)PB_ARRAY_LEN(fast)
#define SLOW .bounds = slow, .nbounds = (int)PB_ARRAY_LEN(slow)

/* In the order of enum pb_outcome. */
static pb_family attempts = {
	.name = "pb_delivery_attempts_total", .type = PB_COUNTER,
	.help = "attempts whose outcome is recorded in Redis: delivered, retry "
		"(scheduled again) or dead (a dead letter)",
	.label = "outcome", .values = { "delivered", "retry", "dead" },
};
static pb_family responses = {
	.name = "pb_delivery_responses_total", .type = PB_COUNTER,
	.help = "attempts by the partner's answer: its status class, or none "
		"(no answer: refused, timed out, reset, not allowed)",
	.label = "class", .values = { "1xx", "2xx", "3xx", "4xx", "5xx", "none" },
};
static pb_family attempt_seconds = {
	.name = "pb_delivery_attempt_seconds", .type = PB_HISTOGRAM, FAST,
	.help = "one HTTP attempt, from its start to its answer or failure",
};
static pb_family latency = {
	.name = "pb_delivery_latency_seconds", .type = PB_HISTOGRAM, SLOW,
	.help = "from the ingest node's acknowledgement to the delivery being "
		"recorded (version 2 postbacks)",
};
static pb_family record_seconds = {
	.name = "pb_record_seconds", .type = PB_HISTOGRAM, FAST,
	.help = "one round trip recording a batch of outcomes in Redis (with "
		"the master's fsync)",
};
static pb_family take_seconds = {
	.name = "pb_take_seconds", .type = PB_HISTOGRAM, FAST,
	.help = "one take that returned postbacks, round trip (an idle agent's "
		"includes its wait for work)",
};
static pb_family in_flight = {
	.name = "pb_delivery_in_flight", .type = PB_GAUGE,
	.help = "postbacks this agent holds: taken, outcome not yet recorded",
};
static pb_family breaker = {
	.name = "pb_breaker_transitions_total", .type = PB_COUNTER,
	.help = "destination breakers this agent opened or closed",
	.label = "to", .values = { "open", "closed" },
};
/* The cluster's: shown by the agents holding a shard's lease (keys.h). */
static pb_family queue = {
	.name = "pb_queue_postbacks", .type = PB_GAUGE, .hidden = 1,
	.help = "postbacks in Redis by state: waiting (queued for delivery), "
		"scheduled (retries not yet due), in_flight (held by agents), "
		"dead (dead letters)",
	.label = "state", .values = { "waiting", "scheduled", "in_flight", "dead" },
};
static pb_family oldest = {
	.name = "pb_queue_oldest_waiting_seconds", .type = PB_GAUGE, .hidden = 1,
	.scale = 1000,
	.help = "age of the oldest postback at the head of a destination's queue "
		"(0: none waiting)",
};
static pb_family blocked = {
	.name = "pb_destinations_blocked", .type = PB_GAUGE, .hidden = 1,
	.help = "destinations with postbacks waiting that no agent may take from "
		"now: an open breaker or a rate limit",
};
/* Each shard's waiting postbacks: an agent shows what it read of the
 * shards whose lease it holds, 0 for the others, so that summed over the
 * agents each shard is counted once. */
static pb_family shard_waiting = {
	.name = "pb_queue_shard_waiting", .type = PB_GAUGE,
	.help = "postbacks waiting on each shard, as the agent holding its lease "
		"read them (the other agents show 0: sum by shard)",
	.label = "shard",
};
static pb_family exporter = {
	.name = "pb_queue_exporter", .type = PB_GAUGE,
	.help = "how many shards' queue gauges this agent shows (it holds their "
		"lease): summed over the agents, each shard should be counted once",
};
static pb_family nshards = {
	.name = "pb_agent_shards", .type = PB_GAUGE,
	.help = "the shards this agent serves (master_name's names)",
};

static pb_family *const families[] = {
	PB_STD_FAMILIES, &attempts, &responses, &attempt_seconds, &latency,
	&record_seconds, &take_seconds, &in_flight, &breaker, &queue, &oldest,
	&blocked, &shard_waiting, &exporter, &nshards,
};

static pb_counts dests = {
	.name = "pb_delivery_destination_attempts_total", .label = "destination",
	.help = "attempts by destination (scheme://host:port) and outcome; the "
		"first metrics_destinations seen have their own series, the rest "
		"are counted as destination=\"other\"",
	.outcomes = (const char *const[]){ "delivered", "retry", "dead", NULL },
};
static pb_counts clients = {
	.name = "pb_delivery_client_attempts_total", .label = "client",
	.help = "attempts by client (whose key queued the postback; \"\" without "
		"one) and outcome; the first metrics_clients seen have their own "
		"series, the rest are counted as client=\"other\"",
	.outcomes = (const char *const[]){ "delivered", "retry", "dead", NULL },
};
static pb_counts *const tables[] = { &dests, &clients };
static pb_httpd httpd;

int am_start(void)
{
	pb_m_label_shards(&shard_waiting, &cfg.shards);
	if (cfg.metrics_listen[0] != '\0' &&
	    (pb_counts_init(&dests, (size_t)cfg.metrics_destinations) != PB_OK ||
	     pb_counts_init(&clients, (size_t)cfg.metrics_clients) != PB_OK)) {
		pb_error("metrics: out of memory for %ld destinations and %ld clients",
			 cfg.metrics_destinations, cfg.metrics_clients);
		return PB_ERR_NOMEM;
	}
	return pb_httpd_serve(&httpd, cfg.metrics_listen, families,
			      PB_ARRAY_LEN(families), tables, PB_ARRAY_LEN(tables));
}

void am_stop(void)
{
	pb_httpd_stop(&httpd);
	pb_counts_free(&dests);
	pb_counts_free(&clients);
}

void am_attempt(const job *jb, double seconds)
{
	int class = jb->status >= 100 && jb->status < 600 ? (int)(jb->status / 100) - 1
							   : 5;
	char client[PB_CLIENT_NAME_MAX + 1];

	pb_m_add(&responses, class, 1);
	pb_m_observe(&attempt_seconds, 0, seconds);
	if (jb->dname.name[0] != '\0')
		pb_counts_add(&dests, jb->dname.name, (int)jb->outcome, 1);
	pb_counts_add(&clients, job_client(jb, client), (int)jb->outcome, 1);
}

void am_recorded(const job *jb)
{
	if (jb->handback)
		return;
	pb_m_add(&attempts, (int)jb->outcome, 1);
	if (jb->outcome == PB_DELIVERED && jb->j.enqueued_ms > 0)
		pb_m_observe(&latency, 0,
			     (double)(pb_wall_ms() - jb->j.enqueued_ms) / 1000.0);
}

void am_breaker(int opened)
{
	pb_m_add(&breaker, opened ? 0 : 1, 1);
}

void am_record_round(double seconds)
{
	pb_m_observe(&record_seconds, 0, seconds);
}

void am_take_round(double seconds)
{
	pb_m_observe(&take_seconds, 0, seconds);
}

void am_in_flight(long held)
{
	pb_m_set(&in_flight, 0, held);
}

/*
 * Each shard's queue as its lease holder last read it. An agent shows the
 * sum over the shards whose lease it holds (the oldest: their maximum),
 * and pb_queue_exporter says how many those are: summed over the agents,
 * every shard is counted once (pb_agent_shards says how many there are).
 */
static struct {
	pthread_mutex_t mu;
	int64_t next[PB_MAX_SHARDS]; /* each only its shard's fetcher's */
	int holder[PB_MAX_SHARDS];
	pb_queue_stats s[PB_MAX_SHARDS];
} Q = { .mu = PTHREAD_MUTEX_INITIALIZER };

/* Under Q.mu. */
static void show_queue(void)
{
	long long waiting = 0, scheduled = 0, held = 0, dead = 0, old = 0,
		  blocks = 0, by_shard[PB_M_VALUES] = { 0 };
	int s, shown = 0;

	for (s = 0; s < cfg.shards.n; s++) {
		const pb_queue_stats *q = &Q.s[s];

		if (!Q.holder[s])
			continue;
		by_shard[pb_m_shard(s)] += q->waiting;
		shown++;
		waiting += q->waiting, scheduled += q->scheduled;
		held += q->in_flight, dead += q->dead, blocks += q->blocked;
		if (q->oldest_ms > old)
			old = q->oldest_ms;
	}
	if (shown) {
		pb_m_set(&queue, 0, waiting);
		pb_m_set(&queue, 1, scheduled);
		pb_m_set(&queue, 2, held);
		pb_m_set(&queue, 3, dead);
		pb_m_set(&oldest, 0, old);
		pb_m_set(&blocked, 0, blocks);
	}
	atomic_store(&queue.hidden, !shown);
	atomic_store(&oldest.hidden, !shown);
	atomic_store(&blocked.hidden, !shown);
	for (s = 0; s < cfg.shards.n && s < PB_M_VALUES; s++)
		pb_m_set(&shard_waiting, s, by_shard[s]);
	pb_m_set(&exporter, 0, shown);
	pb_m_set(&nshards, 0, cfg.shards.n);
}

void am_queue_tick(pb_redis *r)
{
	pb_queue_stats s;
	int64_t now = pb_now_ms();
	int rc, sh = r->shard;

	if (cfg.metrics_listen[0] == '\0' || now < Q.next[sh])
		return;
	Q.next[sh] = now + METRICS_QUEUE_MS;
	rc = pb_queue_stats_get(r, &keys, LEASE_MS, &s);
	if (rc != PB_OK)
		pb_debug("queue metrics of shard %s: %s", r->master_name, r->errstr);
	pthread_mutex_lock(&Q.mu);
	Q.holder[sh] = rc == PB_OK && s.holder;
	if (Q.holder[sh])
		Q.s[sh] = s;
	show_queue();
	pthread_mutex_unlock(&Q.mu);
}
