#include "job.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "clientkey.h"
#include "pb.h"

_Static_assert(PB_RID_MAX + 1 + PB_INDEX_MAX <= PB_ID_MAX,
	       "a request id and an index make a postback id");

const char *pb_method_name(char method)
{
	return method == 'P' ? "POST" : "GET";
}

int pb_id_valid(const char *s, size_t n)
{
	return pb_token_valid(s, n, PB_ID_MAX, "-_.:");
}

int pb_job_encode(pb_buf *out, const char *id, unsigned attempts, char method,
		  const char *url, size_t url_len, const char *data,
		  size_t data_len)
{
	int rc;

	if (method != 'G' && method != 'P')
		return PB_ERR_FORMAT;
	if (!pb_id_valid(id, strlen(id)))
		return PB_ERR_FORMAT;
	if (memchr(url, '\t', url_len))
		return PB_ERR_FORMAT;
	rc = pb_buf_printf(out, "%c\t%s\t%u\t%c\t", PB_JOB_VERSION, id,
			   attempts, method);
	if (rc == PB_OK)
		rc = pb_buf_append(out, url, url_len);
	if (rc == PB_OK)
		rc = pb_buf_putc(out, '\t');
	if (rc == PB_OK)
		rc = pb_buf_append(out, data, data_len);
	return rc;
}

int pb_job_reencode(pb_buf *out, const pb_job *job, unsigned attempts)
{
	return pb_job_encode(out, job->id, attempts, job->method, job->url,
			     job->url_len, job->data, job->data_len);
}

/* The field from *p up to the next tab; advances *p past the tab. */
static int next_field(const char **p, const char *end, const char **f,
		      size_t *flen)
{
	const char *tab = memchr(*p, '\t', (size_t)(end - *p));

	if (tab == NULL)
		return PB_ERR_FORMAT;
	*f = *p;
	*flen = (size_t)(tab - *p);
	*p = tab + 1;
	return PB_OK;
}

/* f[0..n) as a decimal number of 1 to max digits. */
static int digits(const char *f, size_t n, size_t max, unsigned long long *out)
{
	size_t i;

	if (n == 0 || n > max)
		return PB_ERR_FORMAT;
	*out = 0;
	for (i = 0; i < n; i++) {
		if (f[i] < '0' || f[i] > '9')
			return PB_ERR_FORMAT;
		*out = *out * 10 + (unsigned long long)(f[i] - '0');
	}
	return PB_OK;
}

int pb_job_decode(pb_job *job, const char *raw, size_t len)
{
	const char *p = raw, *end = raw + len, *f;
	size_t n;
	unsigned long long attempts;

	memset(job, 0, sizeof(*job));
	job->client = "";
	if (next_field(&p, end, &f, &n) || n != 1 || f[0] != PB_JOB_VERSION)
		return PB_ERR_FORMAT;
	if (next_field(&p, end, &f, &n) || !pb_id_valid(f, n))
		return PB_ERR_FORMAT; /* it goes into a header and the logs */
	memcpy(job->id, f, n);
	job->id[n] = '\0';
	if (next_field(&p, end, &f, &n) || digits(f, n, 6, &attempts) != PB_OK)
		return PB_ERR_FORMAT;
	job->attempts = (unsigned)attempts;
	if (next_field(&p, end, &f, &n) || n != 1 || (f[0] != 'G' && f[0] != 'P'))
		return PB_ERR_FORMAT;
	job->method = f[0];
	if (next_field(&p, end, &job->url, &job->url_len) || job->url_len == 0)
		return PB_ERR_FORMAT;
	job->data = p;
	job->data_len = (size_t)(end - p);
	if (job->data_len < 2 || job->data[0] != '{')
		return PB_ERR_FORMAT;
	return PB_OK;
}

/* ---- version 2 ------------------------------------------------------------ */

/* The next space-separated word of [*p, end) into out (n bytes, NUL). */
static int next_word(const char **p, const char *end, char sep, char *out,
		     size_t n)
{
	const char *e = memchr(*p, sep, (size_t)(end - *p));
	size_t len;

	if (e == NULL)
		e = end;
	len = (size_t)(e - *p);
	if (len == 0 || len >= n)
		return PB_ERR_FORMAT;
	memcpy(out, *p, len);
	out[len] = '\0';
	*p = e < end ? e + 1 : e;
	return PB_OK;
}

int pb_ref_encode(pb_buf *out, const pb_ref *r)
{
	return pb_buf_printf(out, "%s %s %s %u %lu %lu", r->dest, r->rid, r->index,
			     r->attempts, r->offset, r->length);
}

int pb_ref_decode(pb_ref *ref, const char *s, size_t n)
{
	const char *p = s, *end = s + n;
	unsigned long long v, att, off, len;
	char w[3][16];

	memset(ref, 0, sizeof(*ref));
	if (next_word(&p, end, ' ', ref->dest, sizeof(ref->dest)) != PB_OK ||
	    !pb_dest_id_valid(ref->dest, strlen(ref->dest)) ||
	    next_word(&p, end, ' ', ref->rid, sizeof(ref->rid)) != PB_OK ||
	    !pb_id_valid(ref->rid, strlen(ref->rid)) ||
	    next_word(&p, end, ' ', ref->index, sizeof(ref->index)) != PB_OK ||
	    digits(ref->index, strlen(ref->index), PB_INDEX_MAX, &v) != PB_OK ||
	    next_word(&p, end, ' ', w[0], 8) != PB_OK ||
	    digits(w[0], strlen(w[0]), 6, &att) != PB_OK ||
	    next_word(&p, end, ' ', w[1], sizeof(w[1])) != PB_OK ||
	    digits(w[1], strlen(w[1]), 10, &off) != PB_OK ||
	    next_word(&p, end, ' ', w[2], sizeof(w[2])) != PB_OK || p != end ||
	    digits(w[2], strlen(w[2]), 10, &len) != PB_OK || len == 0)
		return PB_ERR_FORMAT;
	ref->attempts = (unsigned)att;
	ref->offset = (unsigned long)off;
	ref->length = (unsigned long)len;
	return PB_OK;
}

int pb_reqhdr_encode(pb_buf *out, char method, int64_t enqueued_ms,
		     const char *client, const char *url, size_t url_len)
{
	int rc;

	if ((method != 'G' && method != 'P') || memchr(url, '\t', url_len) ||
	    strchr(client, '\t'))
		return PB_ERR_FORMAT;
	rc = pb_buf_printf(out, "%c\t%c\t%lld\t%s\t", PB_JOB_V2, method,
			   (long long)enqueued_ms, client);
	if (rc == PB_OK)
		rc = pb_buf_append(out, url, url_len);
	return rc;
}

/* The header's fields into job (version 2 and 3 share it). */
static int header_decode(pb_job *job, const char *hdr, size_t hdr_len)
{
	const char *p, *end, *f;
	unsigned long long ms;
	size_t n;

	if (hdr == NULL)
		return PB_ERR_FORMAT;
	p = hdr;
	end = hdr + hdr_len;
	if (next_field(&p, end, &f, &n) || n != 1 || f[0] != PB_JOB_V2)
		return PB_ERR_FORMAT;
	if (next_field(&p, end, &f, &n) || n != 1 || (f[0] != 'G' && f[0] != 'P'))
		return PB_ERR_FORMAT;
	job->method = f[0];
	if (next_field(&p, end, &f, &n) || digits(f, n, 15, &ms) != PB_OK)
		return PB_ERR_FORMAT;
	job->enqueued_ms = (int64_t)ms;
	if (next_field(&p, end, &f, &n) || (n > 0 && !pb_client_name_valid(f, n)))
		return PB_ERR_FORMAT; /* it goes into the delivery log */
	job->client = f;
	job->client_len = n;
	job->url = p;
	job->url_len = (size_t)(end - p);
	return job->url_len == 0 ? PB_ERR_FORMAT : PB_OK;
}

int pb_job_from_v2(pb_job *job, const char *ref, size_t ref_len,
		   const char *hdr, size_t hdr_len, const char *data,
		   size_t data_len)
{
	pb_ref r;

	memset(job, 0, sizeof(*job));
	if (pb_ref_decode(&r, ref, ref_len) != PB_OK)
		return PB_ERR_FORMAT;
	return pb_job_from_ref(job, &r, 0, hdr, hdr_len, data, data_len);
}

/* ---- version 3 ------------------------------------------------------------ */

int pb_ref3_encode(pb_buf *out, const pb_ref *r)
{
	if (r->attempts == 0)
		return pb_buf_printf(out, "%s %s", r->rid, r->index);
	return pb_buf_printf(out, "%s %s %u", r->rid, r->index, r->attempts);
}

int pb_ref3_sched_encode(pb_buf *out, const pb_ref *r)
{
	if (!pb_dest_id_valid(r->dest, strlen(r->dest)))
		return PB_ERR_FORMAT;
	return pb_buf_printf(out, "%s %s %s %u", r->dest, r->rid, r->index,
			     r->attempts);
}

int pb_ref3_decode(pb_ref *ref, const char *s, size_t n)
{
	const char *p = s, *end = s + n;
	unsigned long long v, att = 0;
	char w[8];

	memset(ref, 0, sizeof(*ref));
	if (n == 0 || memchr(s, '\0', n))
		return PB_ERR_FORMAT; /* the words are read as C strings */
	/* Numbers without leading zeros: one way to write each reference, so
	 * that removing one by value finds it. */
	if (next_word(&p, end, ' ', ref->rid, sizeof(ref->rid)) != PB_OK ||
	    !pb_id_valid(ref->rid, strlen(ref->rid)) ||
	    next_word(&p, end, ' ', ref->index, sizeof(ref->index)) != PB_OK ||
	    digits(ref->index, strlen(ref->index), PB_INDEX_MAX, &v) != PB_OK ||
	    (ref->index[0] == '0' && ref->index[1] != '\0'))
		return PB_ERR_FORMAT;
	/* A space at the very end leaves p == end too: not a reference. */
	if (p != end && (next_word(&p, end, ' ', w, sizeof(w)) != PB_OK ||
			 digits(w, strlen(w), 6, &att) != PB_OK || att == 0 ||
			 w[0] == '0' || p != end))
		return PB_ERR_FORMAT;
	if (s[n - 1] == ' ')
		return PB_ERR_FORMAT;
	ref->attempts = (unsigned)att;
	return PB_OK;
}

int pb_ref3_sched_decode(pb_ref *ref, const char *s, size_t n)
{
	const size_t skip = PB_DEST_ID_LEN + 1;

	if (n <= skip || s[PB_DEST_ID_LEN] != ' ' || !pb_dest_id_valid(s, PB_DEST_ID_LEN) ||
	    pb_ref3_decode(ref, s + skip, n - skip) != PB_OK)
		return PB_ERR_FORMAT;
	memcpy(ref->dest, s, PB_DEST_ID_LEN);
	ref->dest[PB_DEST_ID_LEN] = '\0';
	return PB_OK;
}

int pb_run3_encode(pb_buf *out, const char *rid, size_t first, size_t count)
{
	if (count == 0)
		return PB_ERR_FORMAT;
	if (count == 1)
		return pb_buf_printf(out, "%s %zu", rid, first);
	return pb_buf_printf(out, "%s %zu-%zu", rid, first, first + count - 1);
}

int pb_run3_decode(pb_ref *ref, unsigned long *count, const char *s, size_t n)
{
	const char *sp = memchr(s, ' ', n), *dash;
	unsigned long long a, b;
	size_t rn;

	memset(ref, 0, sizeof(*ref));
	*count = 0;
	if (n == 0 || memchr(s, '\0', n))
		return PB_ERR_FORMAT;
	if (pb_ref3_decode(ref, s, n) == PB_OK) {
		if (ref->attempts != 0)
			return PB_ERR_FORMAT; /* a retry is no run */
		*count = 1;
		return PB_OK;
	}
	if (sp == NULL || (rn = (size_t)(sp - s)) == 0 || rn > PB_RID_MAX ||
	    !pb_id_valid(s, rn) ||
	    (dash = memchr(sp + 1, '-', n - rn - 1)) == NULL ||
	    digits(sp + 1, (size_t)(dash - sp - 1), PB_INDEX_MAX, &a) != PB_OK ||
	    digits(dash + 1, (size_t)(s + n - dash - 1), PB_INDEX_MAX, &b) != PB_OK ||
	    b <= a)
		return PB_ERR_FORMAT;
	memset(ref, 0, sizeof(*ref));
	memcpy(ref->rid, s, rn);
	snprintf(ref->index, sizeof(ref->index), "%llu", a);
	*count = (unsigned long)(b - a + 1);
	return PB_OK;
}

int pb_data_index_encode(pb_buf *out, const size_t *offs, const size_t *lens,
			 size_t n)
{
	size_t head = (n + 1) * PB_INDEX_ENTRY, i, at;
	unsigned char e[PB_INDEX_ENTRY];
	int rc = PB_OK;

	for (i = 0; i <= n && rc == PB_OK; i++) {
		at = head + (i < n ? offs[i] : (n ? offs[n - 1] + lens[n - 1] : 0));
		if (at > UINT32_MAX)
			return PB_ERR_LIMIT;
		e[0] = (unsigned char)(at & 0xff);
		e[1] = (unsigned char)((at >> 8) & 0xff);
		e[2] = (unsigned char)((at >> 16) & 0xff);
		e[3] = (unsigned char)((at >> 24) & 0xff);
		rc = pb_buf_append(out, (const char *)e, sizeof(e));
	}
	return rc;
}

int pb_job_from_v3(pb_job *job, const char *dest, const char *ref,
		   size_t ref_len, const char *hdr, size_t hdr_len,
		   const char *data, size_t data_len)
{
	pb_ref r;

	memset(job, 0, sizeof(*job));
	job->client = "";
	if (pb_ref3_decode(&r, ref, ref_len) != PB_OK ||
	    pb_strlcpy(r.dest, dest, sizeof(r.dest)) != PB_OK)
		return PB_ERR_FORMAT;
	return pb_job_from_ref(job, &r, 1, hdr, hdr_len, data, data_len);
}

int pb_job_from_ref(pb_job *job, const pb_ref *r, int v3, const char *hdr,
		    size_t hdr_len, const char *data, size_t data_len)
{
	memset(job, 0, sizeof(*job));
	job->client = "";
	if (!pb_dest_id_valid(r->dest, strlen(r->dest)))
		return PB_ERR_FORMAT;
	/* Both fit: PB_RID_MAX + 1 + PB_INDEX_MAX <= PB_ID_MAX. */
	snprintf(job->id, sizeof(job->id), "%s-%s", r->rid, r->index);
	memcpy(job->dest, r->dest, sizeof(job->dest));
	job->attempts = r->attempts;
	if (header_decode(job, hdr, hdr_len) != PB_OK)
		return PB_ERR_FORMAT;
	job->data = data;
	job->data_len = data_len;
	/* Version 2 says how long its data is; version 3's index said it. */
	if (data == NULL || data_len < 2 || data[0] != '{' ||
	    (!v3 && data_len != r->length))
		return PB_ERR_FORMAT;
	return PB_OK;
}
