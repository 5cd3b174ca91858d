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
 */
#ifndef PB_JOB_H
#define PB_JOB_H

#include <stddef.h>

#include "buf.h"

#define PB_JOB_VERSION '1'
#define PB_ID_MAX 40

typedef struct pb_job {
	char id[PB_ID_MAX + 1];
	unsigned attempts;
	char method;      /* 'G' (GET) or 'P' (POST) */
	const char *url;  /* template; points into the encoded job */
	size_t url_len;
	const char *data; /* compact JSON object; points into the encoded job */
	size_t data_len;
} pb_job;

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

#endif
