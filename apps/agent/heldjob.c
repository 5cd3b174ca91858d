/*
 * heldjob.c - a postback this agent holds (heldjob.h): the only place in
 * the agent that tells the record versions apart.
 */
#include "heldjob.h"

#include <stdlib.h>
#include <string.h>

#include "pb.h"

/* A copy of a string reply, NUL-terminated; *p NULL for a nil reply. */
static int copy_bytes(const char *s, size_t n, char **p, size_t *len)
{
	*p = NULL, *len = 0;
	if (s == NULL)
		return PB_OK;
	if ((*p = malloc(n + 1)) == NULL)
		return PB_ERR_NOMEM;
	memcpy(*p, s, n);
	(*p)[n] = '\0';
	*len = n;
	return PB_OK;
}

static int copy_reply(const redisReply *x, char **p, size_t *len)
{
	if (x == NULL || x->type != REDIS_REPLY_STRING)
		return copy_bytes(NULL, 0, p, len);
	return copy_bytes(x->str, x->len, p, len);
}

/*
 * Which form raw is, its reference decoded: version 1 starts "1<TAB>";
 * version 3 is a reference of two or three words; version 2 starts with
 * its destination's id. A reference is held in the set of the destination
 * whose queue the take found it in (dest), and is recorded there.
 */
static void classify(job *jb, const char *dest)
{
	pb_strlcpy(jb->dest, dest, sizeof(jb->dest));
	if (jb->raw_len > 1 && jb->raw[0] == PB_JOB_VERSION && jb->raw[1] == '\t') {
		jb->form = 1;
	} else if (pb_ref3_decode(&jb->ref, jb->raw, jb->raw_len) == PB_OK) {
		jb->form = 3;
		pb_strlcpy(jb->ref.dest, dest, sizeof(jb->ref.dest));
	} else {
		jb->form = 2; /* or nothing: it fails to decode as version 2 */
		if (pb_ref_decode(&jb->ref, jb->raw, jb->raw_len) != PB_OK)
			memset(&jb->ref, 0, sizeof(jb->ref));
		else if (jb->dest[0] == '\0')
			memcpy(jb->dest, jb->ref.dest, sizeof(jb->dest));
	}
}

job *job_new(const redisReply *x, const redisReply *data, const char *dest,
	     size_t log_body_bytes)
{
	job *jb = calloc(1, sizeof(*jb));

	if (jb == NULL)
		return NULL;
	if (copy_reply(x, &jb->raw, &jb->raw_len) != PB_OK ||
	    copy_reply(data, &jb->data, &jb->data_len) != PB_OK || jb->raw == NULL) {
		job_free(jb);
		return NULL;
	}
	classify(jb, dest);
	pb_buf_init(&jb->url, 65536);
	pb_buf_init(&jb->resp, log_body_bytes);
	/* The job again with another attempt count (a few digits more), or
	 * a version 3 reference with its destination before it. */
	pb_buf_init(&jb->retry_job, jb->raw_len + PB_DEST_ID_LEN + 32);
	return jb;
}

const char *job_client(const job *jb, char out[PB_CLIENT_NAME_MAX + 1])
{
	out[0] = '\0';
	if (jb->j.client && jb->j.client_len <= PB_CLIENT_NAME_MAX) {
		memcpy(out, jb->j.client, jb->j.client_len);
		out[jb->j.client_len] = '\0';
	}
	return out;
}

const char *job_rid(const job *jb, size_t *n)
{
	if (jb->form == 1 || jb->ref.rid[0] == '\0')
		return *n = 0, NULL;
	*n = strlen(jb->ref.rid);
	return jb->ref.rid;
}

int job_set_header(job *jb, const char *hdr, size_t n)
{
	int rc;

	if (copy_bytes(hdr, n, &jb->hdr, &jb->hdr_len) != PB_OK)
		return PB_ERR_NOMEM;
	if (jb->form == 1)
		rc = pb_job_decode(&jb->j, jb->raw, jb->raw_len);
	else if (jb->ref.rid[0] == '\0') /* not a reference after all */
		rc = PB_ERR_FORMAT, memset(&jb->j, 0, sizeof(jb->j));
	else
		rc = pb_job_from_ref(&jb->j, &jb->ref, jb->form == 3, jb->hdr,
				     jb->hdr_len, jb->data, jb->data_len);
	/* Decoded as far as it goes, its id found if it has one. */
	if (jb->form != 1 && jb->data == NULL)
		jb->state = JOB_DATA_GONE;
	else
		jb->state = rc == PB_OK ? JOB_OK : JOB_MALFORMED;
	return PB_OK;
}

int job_schedule(job *jb, unsigned attempts)
{
	pb_ref ref = jb->ref;

	pb_buf_reset(&jb->retry_job);
	if (jb->form == 1)
		return pb_job_reencode(&jb->retry_job, &jb->j, attempts);
	ref.attempts = attempts;
	if (jb->form == 3)
		return pb_ref3_sched_encode(&jb->retry_job, &ref);
	return pb_ref_encode(&jb->retry_job, &ref);
}

int job_standalone(const job *jb, pb_buf *out)
{
	/* Its id, attempts and method, its request's URL template (in the
	 * header) and its data object. */
	pb_buf_init(out, PB_ID_MAX + 32 + jb->hdr_len + jb->j.data_len);
	if (jb->form == 1 || jb->j.url == NULL)
		return PB_ERR_FORMAT; /* a version 1 job is its own record */
	return pb_job_encode(out, jb->j.id, jb->j.attempts, jb->j.method,
			     jb->j.url, jb->j.url_len, jb->j.data, jb->j.data_len);
}

void job_free(job *jb)
{
	curl_slist_free_all(jb->headers);
	pb_buf_free(&jb->url);
	pb_buf_free(&jb->resp);
	pb_buf_free(&jb->retry_job);
	free(jb->raw);
	free(jb->hdr);
	free(jb->data);
	free(jb);
}
