#include "job.h"

#include <string.h>

#include "pb.h"

const char *pb_method_name(char method)
{
	return method == 'P' ? "POST" : "GET";
}

int pb_id_valid(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > PB_ID_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= 'A' && s[i] <= 'Z') || s[i] == '-' || s[i] == '_' ||
		      s[i] == '.' || s[i] == ':'))
			return 0;
	return 1;
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

int pb_job_decode(pb_job *job, const char *raw, size_t len)
{
	const char *p = raw, *end = raw + len, *f;
	size_t n, i;
	unsigned long attempts = 0;

	memset(job, 0, sizeof(*job));
	if (next_field(&p, end, &f, &n) || n != 1 || f[0] != PB_JOB_VERSION)
		return PB_ERR_FORMAT;
	if (next_field(&p, end, &f, &n) || !pb_id_valid(f, n))
		return PB_ERR_FORMAT; /* it goes into a header and the logs */
	memcpy(job->id, f, n);
	job->id[n] = '\0';
	if (next_field(&p, end, &f, &n) || n == 0 || n > 6)
		return PB_ERR_FORMAT;
	for (i = 0; i < n; i++) {
		if (f[i] < '0' || f[i] > '9')
			return PB_ERR_FORMAT;
		attempts = attempts * 10 + (unsigned long)(f[i] - '0');
	}
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
