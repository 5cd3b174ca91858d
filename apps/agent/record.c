/*
 * record.c - the recorder thread: outcomes into Redis, all that finished
 * during its last round trip in one pipeline.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "agentmetrics.h"
#include "clientkey.h"
#include "deadletter.h"
#include "destgate.h"
#include "log.h"
#include "pb.h"

static struct { /* every shard's recorder counts here */
	atomic_ullong delivered, retried, dead, handed_back;
} stats;

/*
 * jb's record for outcomes.lua (queue.h). A dead letter stands alone, as a
 * version 1 job: its request's keys go with its last postback, and a
 * replay queues the job as it is; *letter is malloc'ed, the caller frees.
 */
static int outcome_of(job *jb, pb_queue_outcome *o, char **letter)
{
	static const char *signals[] = { "", "ok", "fail", "park" };
	char client[PB_CLIENT_NAME_MAX + 1];
	pb_dead d;
	pb_buf alone;

	*letter = NULL;
	*o = (pb_queue_outcome){ .x = jb->raw, .len = jb->raw_len, .dest = jb->dest,
		.b = { signals[jb->sig], jb->dname.name, jb->reason, jb->pause_ms } };
	if (jb->handback) {
		o->kind = PB_OUT_HANDBACK;
		return PB_OK;
	}
	switch (jb->outcome) {
	case PB_DELIVERED:
		o->kind = PB_OUT_ACK;
		return PB_OK;
	case PB_RETRY:
		o->kind = PB_OUT_RETRY;
		o->extra = jb->retry_job.data, o->extra_len = jb->retry_job.len;
		o->delay_ms = jb->delay_ms;
		return PB_OK;
	case PB_DEAD:
		break;
	}
	d = (pb_dead){ jb->raw, jb->raw_len, jb->j.id, (long long)jb->j.attempts + 1,
		       jb->status, jb->error, pb_wall_ms(), keys.agent_id,
		       job_client(jb, client), jb->dest[0] ? jb->dest : jb->dname.id };
	if (job_standalone(jb, &alone) == PB_OK)
		d.job = alone.data, d.job_len = alone.len;
	*letter = pb_dead_encode(&d);
	pb_buf_free(&alone);
	if (*letter == NULL)
		return PB_ERR_NOMEM;
	o->kind = PB_OUT_DEAD;
	o->extra = *letter, o->extra_len = strlen(*letter);
	return PB_OK;
}

static void count(const job *jb)
{
	if (jb->handback)
		stats.handed_back++;
	else if (jb->outcome == PB_DELIVERED)
		stats.delivered++;
	else if (jb->outcome == PB_RETRY)
		stats.retried++;
	else
		stats.dead++;
}

/* Append one call for up to PB_OUTCOMES_MAX jobs from *list on; *list
 * moves past them. */
static int append_chunk(pb_redis *r, job **list)
{
	pb_queue_outcome o[PB_OUTCOMES_MAX] = { 0 };
	char *letters[PB_OUTCOMES_MAX];
	job *jb = *list;
	int n = 0, rc = PB_OK, i;

	for (; jb && n < PB_OUTCOMES_MAX && rc == PB_OK; jb = jb->next, n++)
		rc = outcome_of(jb, &o[n], &letters[n]);
	if (rc == PB_OK)
		rc = pb_queue_append_outcomes(r, &keys, o, n);
	for (i = 0; i < n; i++)
		free(letters[i]);
	*list = jb;
	return rc;
}

/* What the recording of one job said. A breaker it opened or closed is
 * opened or closed on every shard (destgate.h). */
static void recorded(const job *jb, const redisReply *x)
{
	pb_breaker_news news;

	if (x->type != REDIS_REPLY_INTEGER)
		return;
	if (x->integer == 2 || x->integer == 3) {
		am_breaker(x->integer == 2);
		news = (pb_breaker_news){ x->integer == 2,
					  jb->sig == PB_SIG_PARK ? PB_PARK_MS : cfg.breaker_cooldown_ms,
					  jb->reason, jb->dname.name };
		if (destgate_shared())
			destgate_mirror(jb->dest[0] ? jb->dest : jb->dname.id, &news);
	}
	if (x->integer == 2 && jb->sig == PB_SIG_PARK)
		pb_warn("%s answered 410 Gone: parked, its postbacks wait in Redis "
			"until an operator closes its breaker (pbctl breakers close)",
			jb->dname.name);
	else if (x->integer == 2)
		pb_warn("breaker open for %s (%s): its postbacks wait in Redis, "
			"one probe every %ld ms", jb->dname.name, jb->reason,
			cfg.breaker_cooldown_ms);
	else if (x->integer == 3)
		pb_info("breaker closed for %s: it answered", jb->dname.name);
}

/*
 * Send a list of outcomes in one pipeline of function calls, each for up
 * to PB_OUTCOMES_MAX of them. On any failure all of them go again later:
 * the function removes from what the agent holds first, so repeating one
 * that already landed changes nothing.
 */
static int record_list(pb_redis *r, job *list)
{
	redisReply *reply;
	job *jb, *rest;
	int calls = 0, rc = PB_OK;
	size_t i;

	for (rest = list; rest; calls++)
		if (append_chunk(r, &rest) != PB_OK)
			return PB_ERR_IO;
	for (jb = list; calls > 0; calls--) {
		if (pb_redis_get_reply(r, &reply) != PB_OK)
			return PB_ERR_IO;
		if (reply->type == REDIS_REPLY_ERROR) {
			pb_error("recording %s's outcome and later ones: %s",
				 jb->j.id, reply->str);
			rc = PB_ERR_IO; /* and drop the connection: unread replies */
		} else if (reply->type == REDIS_REPLY_ARRAY) {
			for (i = 0; i < reply->elements && jb; i++, jb = jb->next)
				recorded(jb, reply->element[i]);
		}
		freeReplyObject(reply);
		if (rc != PB_OK)
			return rc;
	}
	return PB_OK;
}

void *recorder_main(void *arg)
{
	shard_worker *sw = arg;
	pb_redis *r = &sw->record;
	job *list, *jb, *nx;
	long n;
	int64_t t0;

	while ((list = handover_wait_finished(sw->shard, &recorder_quit)) != NULL) {
		for (n = 0, jb = list; jb; jb = jb->next)
			n++;
		t0 = pb_now_us();
		if (record_list(r, list) != PB_OK) {
			pb_warn("cannot record %ld outcome(s) on shard %s yet, will "
				"retry: %s", n, sw->name, r->errstr);
			pb_redis_drop(r);
			handover_unfinish(sw->shard, list);
			if (recorder_quit)
				break; /* they stay held in Redis */
			pb_sleep_ms(OUTCOME_RETRY_MS, &recorder_quit);
			continue;
		}
		am_record_round((double)(pb_now_us() - t0) / 1e6);
		am_in_flight(handover_recorded(sw->shard, n));
		for (jb = list; jb; jb = nx) {
			nx = jb->next;
			count(jb);
			am_recorded(jb);
			job_free(jb);
		}
	}
	return NULL;
}

void record_finish(void)
{
	handover_quit(&recorder_quit);
}

void record_report(void)
{
	pb_info("stopped: %llu delivered, %llu retries scheduled, %llu dead, "
		"%llu handed back", (unsigned long long)stats.delivered,
		(unsigned long long)stats.retried, (unsigned long long)stats.dead,
		(unsigned long long)stats.handed_back);
}
