/*
 * job.h - the postback as it travels through Redis.
 *
 * One list element per postback, small and self-contained, readable in
 * redis-cli:
 *
 *     1 TAB <id> TAB <attempts> TAB <G|P> TAB <url template> TAB <data JSON>
 *
 * "1" is the format version. attempts counts the deliveries already tried.
 * The URL template never holds a tab (the ingest node refuses control
 * characters in URLs) and compact JSON never holds a raw tab, so splitting
 * on the first five tabs is unambiguous. The template is filled by the agent,
 * not the ingest node, so what crosses the network is the request's own data.
 *
 * Version 2 (docs/history/queue-layout-v2.md) keeps what a request's postbacks
 * share once, and queues a small reference per postback:
 *
 *     request header (hash field "h"):  2 TAB <G|P> TAB <enqueued ms> TAB <client> TAB <url template>
 *     data (one string a request):      the data objects' compact JSON, back to back
 *     reference (in the lists):         <destination id> SP <request id> SP <index> SP <attempts> SP <offset> SP <length>
 *
 * offset and length say where the postback's data object is in its
 * request's data string (GETRANGE: no search, no per-postback field).
 * The postback's id is "<request id>-<index>", as in version 1.
 *
 * Version 3 (what ingest nodes write now) keeps in a reference only what
 * is not known from where it lies: the destination is in the name of the
 * queue or processing set that holds it, and where the data object lies
 * is in an index at the head of the request's data:
 *
 *     request header:  as version 2
 *     data:            index, then the data objects back to back; the
 *                      index is n + 1 offsets (from the start of the
 *                      string) of 4 bytes each, little-endian, the last
 *                      one the string's end
 *     reference:       <request id> SP <index> [SP <attempts>]
 *                      (attempts left out while 0)
 *     run:             <request id> SP <first> - <last>
 *                      (a queue element for postbacks first to last of a
 *                      request, all to one destination and untried: what
 *                      an ingest node queues; a take cuts references off
 *                      its head; a run of one is a reference)
 *     scheduled:       <destination id> SP <request id> SP <index> SP <attempts>
 *                      (a retry waits outside its queue, so it says where
 *                      it goes back to)
 *
 * A request of one object (since 0.2.0) is one record: its hash holds the
 * object itself (field "o") beside its header and count, and it has no
 * data string; its reference is "<request id> 0" as above. A reader looks
 * for "o" first (enqueue.lua, take.lua).
 *
 * A reference is acknowledged by removing it, by value, from a set: some
 * 15 bytes, not the job. The forms differ in their number of words (2 or
 * 3, 4, 6; a run's second word has a '-'), so every version is told apart
 * without a tag. Agents read all
 * three: an upgrade finds the older ones in Redis.
 */
#ifndef PB_JOB_H
#define PB_JOB_H

#include <stddef.h>

#include <stdint.h>

#include "buf.h"
#include "dest.h"

#define PB_JOB_VERSION '1'
#define PB_JOB_V2 '2'
#define PB_INDEX_ENTRY ((size_t)4) /* bytes of an offset in a version 3 data index */
#define PB_ID_MAX 40
#define PB_RID_MAX 32    /* a request id; "-<index>" follows in an id */
#define PB_INDEX_MAX 7   /* digits of a data object's index */

typedef struct pb_job {
	char id[PB_ID_MAX + 1];
	unsigned attempts;
	char method;      /* 'G' (GET) or 'P' (POST) */
	const char *url;  /* template; points into the encoded job */
	size_t url_len;
	const char *data; /* compact JSON object; points into the encoded job */
	size_t data_len;
	/* Version 2 only (version 1: 0 and ""). */
	int64_t enqueued_ms; /* when the ingest node queued it, epoch ms */
	const char *client;  /* whose key queued it (clientkey.h); points into
				the header; "" when anonymous or version 1 */
	size_t client_len;
	char dest[PB_DEST_ID_LEN + 1];
} pb_job;

/* A version 2 reference, decoded. */
typedef struct pb_ref {
	char dest[PB_DEST_ID_LEN + 1];
	char rid[PB_RID_MAX + 1];
	char index[PB_INDEX_MAX + 1];
	unsigned attempts;
	unsigned long offset, length; /* of its data in the request's data */
} pb_ref;

/* 1 if s[0..n) may be a postback id: 1 to PB_ID_MAX of [A-Za-z0-9._:-]
 * (it goes into the X-Postback-Id header and the logs as it is). */
int pb_id_valid(const char *s, size_t n);

int pb_job_encode(pb_buf *out, const char *id, unsigned attempts, char method,
		  const char *url, size_t url_len, const char *data,
		  size_t data_len);
/* Parse raw[0..len). The job points into raw: keep raw alive. */
int pb_job_decode(pb_job *job, const char *raw, size_t len);
/* The same job with another attempt count. */
int pb_job_reencode(pb_buf *out, const pb_job *job, unsigned attempts);
const char *pb_method_name(char method);

/* Version 2: a reference, and a request's header. */
int pb_ref_encode(pb_buf *out, const pb_ref *ref);
int pb_ref_decode(pb_ref *ref, const char *s, size_t n);
int pb_reqhdr_encode(pb_buf *out, char method, int64_t enqueued_ms,
		     const char *client, const char *url, size_t url_len);
/*
 * Version 3. The reference's dest is left "" (it is not in it); attempts
 * 0 is left out. The scheduled form carries ref->dest and the attempts.
 */
int pb_ref3_encode(pb_buf *out, const pb_ref *ref);
int pb_ref3_sched_encode(pb_buf *out, const pb_ref *ref);
int pb_ref3_decode(pb_ref *ref, const char *s, size_t n);
/* The scheduled form: ref->dest, then a reference. */
int pb_ref3_sched_decode(pb_ref *ref, const char *s, size_t n);
/* A run of count postbacks from first (count 1: a reference). */
int pb_run3_encode(pb_buf *out, const char *rid, size_t first, size_t count);
/* A run, or a reference as a run of one: the first's reference (no
 * attempts), *count. */
int pb_run3_decode(pb_ref *first, unsigned long *count, const char *s,
		   size_t n);
/* The data index for n objects at offs[i] (from the first object's start),
 * lens[i] bytes each, as the data string's head. */
int pb_data_index_encode(pb_buf *out, const size_t *offs, const size_t *lens,
			 size_t n);
/* The job a version 3 reference of destination dest stands for: its own
 * data object (as the take cut it), its request's header. */
int pb_job_from_v3(pb_job *job, const char *dest, const char *ref,
		   size_t ref_len, const char *hdr, size_t hdr_len,
		   const char *data, size_t data_len);

/*
 * The job a version 2 reference stands for, from its request's header and
 * its data (as the take returns them). The job points into hdr and data.
 */
int pb_job_from_v2(pb_job *job, const char *ref, size_t ref_len,
		   const char *hdr, size_t hdr_len, const char *data,
		   size_t data_len);
/*
 * The same from a reference already decoded (pb_ref_decode, or
 * pb_ref3_decode with ref->dest set by the caller: v3 1): what the two
 * above do after decoding theirs.
 */
int pb_job_from_ref(pb_job *job, const pb_ref *ref, int v3, const char *hdr,
		    size_t hdr_len, const char *data, size_t data_len);

#endif
