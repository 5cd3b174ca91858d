/*
 * heldjob.h - a postback this agent holds: made from what a take returned,
 * its reference decoded once, given its outcome, freed.
 *
 * The one file of the agent that knows the record versions (job.h): a
 * version 1 job, a version 2 or 3 reference. The threads see a decoded
 * pb_job, a destination id ("" for version 1), whether it can be tried,
 * and what to write back for a retry or a dead letter.
 *
 * A job passes from the fetcher (made) to the deliverer (tried, decided)
 * to the recorder (recorded, freed); one thread at a time owns it
 * (handover.h).
 */
#ifndef PB_HELDJOB_H
#define PB_HELDJOB_H

#include <stdint.h>

#include <curl/curl.h>
#include <hiredis/hiredis.h>

#include "buf.h"
#include "clientkey.h"
#include "dest.h"
#include "job.h"
#include "retry.h"

/* Whether a job can be tried, known once it is made (job_set_header). */
enum job_state {
	JOB_OK,        /* decoded: j holds it */
	JOB_DATA_GONE, /* a reference that outlived its request's data */
	JOB_MALFORMED  /* not a job or reference of any version */
};

typedef struct job {
	struct job *next;   /* in the handover's or the recorder's list */
	struct job *run_prev, *run_next; /* in the deliverer's running list */
	char *raw;          /* a version 1 job or a version 2 or 3 reference,
			       exactly as it is in Redis */
	size_t raw_len;
	char *hdr, *data;   /* a reference's request's header, its data
			       (NULL when its request's data was gone) */
	size_t hdr_len, data_len;
	char dest[PB_DEST_ID_LEN + 1]; /* a reference's destination; "" for
					  version 1 */
	int shard;          /* the shard it was taken from (shard.h): its
			       outcome is recorded there */
	enum job_state state;
	pb_job j;           /* decoded; points into raw or hdr and data */
	/* The attempt (deliver.c). */
	CURL *easy;
	struct curl_slist *headers;
	pb_buf url;
	pb_buf resp;        /* the first log_body_bytes of the answer */
	int64_t started_ms;
	int refused;        /* an address of the destination was not allowed */
	int opened;         /* ... and one that was, connected to */
	int reached;        /* the attempt asked DNS or opened a connection */
	long status;
	int transport_ok;
	int timed_out;      /* ... not: the attempt's time ran out */
	char error[CURL_ERROR_SIZE];
	/* The outcome, once known, waiting to be recorded in Redis. */
	enum pb_outcome outcome;
	pb_buf retry_job;   /* PB_RETRY: what is scheduled (job_schedule) */
	/* What it says of its destination's breaker (retry.h, queue.h). */
	enum pb_signal sig;
	pb_dest dname;      /* the filled URL's destination */
	char reason[128];
	long long pause_ms; /* a 429's Retry-After: the destination waits */
	long long delay_ms;
	int handback;       /* stopping: give it back untried */

	/* Private to heldjob.c: the reference, decoded once. */
	int form;           /* 1, 2 or 3 */
	pb_ref ref;
} job;

/*
 * A job from one triple of a take (pb_queue_take): x the job or reference,
 * data its request's data (nil when gone), dest the destination the take
 * said it came from. Its header comes next (job_set_header). NULL when out
 * of memory.
 */
job *job_new(const redisReply *x, const redisReply *data, const char *dest,
	     size_t log_body_bytes);
/* The request id of a reference (its length in *n); NULL for version 1. */
const char *job_rid(const job *jb, size_t *n);
/* The client that queued it (clientkey.h), as a C string in out; "" when
 * none is known. Returns out. */
const char *job_client(const job *jb, char out[PB_CLIENT_NAME_MAX + 1]);
/*
 * Its request's header (a copy of hdr[0..n); hdr NULL for none), and the
 * decoding: jb->state and jb->j. PB_ERR_NOMEM, else PB_OK (a job that
 * cannot be tried says so in its state).
 */
int job_set_header(job *jb, const char *hdr, size_t n);
/* What a retry schedules into jb->retry_job: the job with attempts spent. */
int job_schedule(job *jb, unsigned attempts);
/* jb as a version 1 job into out (initialised here, with its bound; the
 * caller frees it), for a dead letter: it stands alone (its request's keys
 * go with its last postback) and a replay queues it as it is.
 * PB_ERR_FORMAT when jb is a version 1 job already or was not decoded. */
int job_standalone(const job *jb, pb_buf *out);
/* Any thread: the HTTP request is released before a job is recorded. */
void job_free(job *jb);

#endif
