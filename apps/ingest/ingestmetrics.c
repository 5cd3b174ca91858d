#include <stdio.h>

#include "httpd.h"
#include "ingestmetrics.h"
#include "metrics.h"
#include "pb.h"
#include "stdmetrics.h"

static const double bounds[] = { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
				 0.25, 0.5, 1, 2.5, 5, 10 };

static pb_family requests = {
	.name = "pb_ingest_requests_total", .type = PB_COUNTER,
	.help = "requests answered, by HTTP status",
	.label = "code", .values = { "200", "400", "401", "404", "405", "413", "415",
				     "500", "503", "other" },
};
static pb_family accepted = {
	.name = "pb_postbacks_accepted_total", .type = PB_COUNTER,
	.help = "postbacks acknowledged (200): queued in Redis and confirmed by "
		"wait_replicas replicas; a replayed request counts once",
};
static pb_family replays = {
	.name = "pb_ingest_replays_total", .type = PB_COUNTER,
	.help = "requests answered from their Idempotency-Key: queued before, "
		"nothing queued again",
};
static pb_family refused = {
	.name = "pb_ingest_unavailable_total", .type = PB_COUNTER,
	.help = "requests refused with 503, by reason: full (MAX_QUEUE_SIZE), "
		"not_durable (WAIT short of replicas), no_replicas, redis_down, "
		"memory_high (Redis near maxmemory)",
	.label = "reason", .values = { "full", "not_durable", "no_replicas",
				       "redis_down", "memory_high" },
};
static pb_family enqueue_seconds = {
	.name = "pb_ingest_enqueue_seconds", .type = PB_HISTOGRAM,
	.bounds = bounds, .nbounds = (int)PB_ARRAY_LEN(bounds),
	.help = "queueing one request in Redis: the script and the WAIT for "
		"replicas, one round trip each",
};

/* The shards' names are the label's values (im_start, from master_name);
 * past PB_M_VALUES - 1 shards the rest count as "other". */
static pb_family shard_taken = {
	.name = "pb_ingest_shard_taken_total", .type = PB_COUNTER,
	.help = "requests each shard answered: queued there, or a 503 it gave "
		"(WAIT short of replicas) or an Idempotency-Key's first answer",
	.label = "shard",
};
static pb_family shard_passed = {
	.name = "pb_ingest_shard_passed_total", .type = PB_COUNTER,
	.help = "requests each shard did not take (no master, no replicas in "
		"sync, full, memory high): the next shard was tried",
	.label = "shard",
};

static pb_family *const families[] = {
	PB_STD_FAMILIES, &requests, &accepted, &replays, &refused, &enqueue_seconds,
	&shard_taken, &shard_passed,
};

static pb_counts clients = {
	.name = "pb_ingest_client_postbacks_total", .label = "client",
	.help = "postbacks by client (the name its key was issued to; \"\" "
		"without a key): accepted, or refused over its share (429); the "
		"first metrics_clients seen have their own series, the rest are "
		"counted as client=\"other\"",
	.outcomes = (const char *const[]){ "accepted", "over_share", NULL },
};
static pb_counts *const tables[] = { &clients };
static pb_httpd httpd;

int im_start(const char *listen, const pb_shards *shards, long nclients)
{
	pb_m_label_shards(&shard_taken, shards);
	pb_m_label_shards(&shard_passed, shards);
	if (listen[0] != '\0' && pb_counts_init(&clients, (size_t)nclients) != PB_OK)
		return PB_ERR_NOMEM;
	return pb_httpd_serve(&httpd, listen, families, PB_ARRAY_LEN(families), tables,
			      PB_ARRAY_LEN(tables));
}

void im_stop(void)
{
	pb_httpd_stop(&httpd);
	pb_counts_free(&clients);
}

void im_answered(int status)
{
	char code[16];

	snprintf(code, sizeof(code), "%d", status);
	pb_m_add_to(&requests, code, 1);
}

void im_enqueued(const char *client, const pb_enqueue_res *res, size_t count,
		 double seconds)
{
	/* A refusal's series in refused, by enqueue status. */
	static const int reason[] = { [PB_ENQ_FULL] = 0, [PB_ENQ_NOT_DURABLE] = 1,
				      [PB_ENQ_NO_REPLICAS] = 2, [PB_ENQ_REDIS_DOWN] = 3 };

	pb_m_observe(&enqueue_seconds, 0, seconds);
	if (res->status == PB_ENQ_OK) {
		pb_m_add(&accepted, 0, (long long)count);
		pb_counts_add(&clients, client, 0, count);
	} else if (res->status == PB_ENQ_OVER_SHARE) {
		pb_counts_add(&clients, client, 1, count);
	}
	else if (res->status == PB_ENQ_REPLAY)
		pb_m_add(&replays, 0, 1);
	else if ((size_t)res->status < PB_ARRAY_LEN(reason))
		pb_m_add(&refused, reason[res->status], 1);
}

void im_memory_high(void)
{
	pb_m_add(&refused, 4, 1);
}

void im_shard(int shard, int taken)
{
	pb_m_add(taken ? &shard_taken : &shard_passed, pb_m_shard(shard), 1);
}
