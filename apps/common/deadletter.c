#include "deadletter.h"

#include <stdlib.h>
#include <string.h>

#include "pb.h"

/* Length of the valid UTF-8 sequence at s[0..n), or 0 if it is not one. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	size_t len, i;
	unsigned cp;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0)
		len = 2, cp = s[0] & 0x1f;
	else if ((s[0] & 0xf0) == 0xe0)
		len = 3, cp = s[0] & 0x0f;
	else if ((s[0] & 0xf8) == 0xf0)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0; /* overlong, out of range, or a surrogate */
	return len;
}

/*
 * A JSON string of s[0..n) with every byte that is not valid UTF-8 replaced
 * by U+FFFD: a job that came out of Redis broken must still make a dead
 * letter (JSON holds only UTF-8), or its outcome could never be recorded.
 */
static json_t *text(const char *s, size_t n)
{
	static const unsigned char repl[3] = { 0xef, 0xbf, 0xbd }; /* U+FFFD */
	const unsigned char *u = (const unsigned char *)s;
	json_t *j;
	char *clean, *o;
	size_t i = 0, k;

	if (s == NULL)
		return json_string("");
	if ((clean = malloc(3 * n + 1)) == NULL)
		return NULL;
	for (o = clean; i < n; i += k) {
		if ((k = utf8_seq(u + i, n - i)) == 0 || u[i] == 0) {
			memcpy(o, repl, sizeof(repl));
			o += sizeof(repl);
			k = 1;
			continue;
		}
		memcpy(o, s + i, k);
		o += k;
	}
	j = json_stringn_nocheck(clean, (size_t)(o - clean));
	free(clean);
	return j;
}

char *pb_dead_encode(const pb_dead *d)
{
	json_t *e = json_pack("{s:o, s:o, s:I, s:I, s:o, s:I, s:o, s:o, s:o}", "job",
			      text(d->job, d->job_len), "id",
			      text(d->id, d->id ? strlen(d->id) : 0), "attempts",
			      (json_int_t)d->attempts, "status", (json_int_t)d->status,
			      "error", text(d->error, d->error ? strlen(d->error) : 0),
			      "failed_at", (json_int_t)d->failed_at, "agent",
			      text(d->agent, d->agent ? strlen(d->agent) : 0), "client",
			      text(d->client, d->client ? strlen(d->client) : 0), "dest",
			      text(d->dest, d->dest ? strlen(d->dest) : 0));
	/* (json_pack releases the texts when one is NULL: out of memory) */
	char *s = e ? json_dumps(e, JSON_COMPACT) : NULL;

	json_decref(e);
	return s;
}

int pb_dead_decode(pb_dead *d, json_t **owner, const char *s, size_t len)
{
	json_int_t attempts, status, failed_at;
	json_t *e = json_loadb(s, len, 0, NULL);
	size_t job_len;

	*owner = NULL;
	if (e == NULL)
		return PB_ERR_FORMAT;
	d->client = d->dest = "";
	if (json_unpack(e, "{s:s%, s:s, s:I, s:I, s:s, s:I, s:s, s?s, s?s}", "job", &d->job,
			&job_len, "id", &d->id, "attempts", &attempts, "status",
			&status, "error", &d->error, "failed_at", &failed_at, "agent",
			&d->agent, "client", &d->client, "dest", &d->dest) != 0) {
		json_decref(e);
		return PB_ERR_FORMAT;
	}
	d->job_len = job_len;
	d->attempts = attempts;
	d->status = status;
	d->failed_at = failed_at;
	*owner = e;
	return PB_OK;
}
