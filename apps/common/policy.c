/*
 * policy.c - a destination's delivery rules as text (policy.h): one table
 * of fields, each with its reader and writer.
 */
#include "policy.h"

#include <ctype.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pb.h"

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return rc;
}

/* ---- schedule ---------------------------------------------------------- */

/* One delay, "<number><unit>", into *ms. */
static int delay_parse(const char *s, int64_t *ms)
{
	static const struct { const char *unit; int64_t ms; } units[] = {
		{ "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 }, { "d", 86400000 },
	};
	char num[16];
	size_t digits = strspn(s, "0123456789"), i;
	long v;

	if (digits == 0 || digits >= sizeof(num))
		return PB_ERR_FORMAT;
	memcpy(num, s, digits);
	num[digits] = '\0';
	if (pb_parse_long(num, 0, 1000000000L, &v) != PB_OK)
		return PB_ERR_FORMAT;
	for (i = 0; i < PB_ARRAY_LEN(units); i++)
		if (strcmp(s + digits, units[i].unit) == 0) {
			*ms = (int64_t)v * units[i].ms;
			return *ms <= PB_POLICY_DELAY_MAX_MS ? PB_OK : PB_ERR_LIMIT;
		}
	return PB_ERR_FORMAT;
}

int pb_schedule_parse(const char *s, int64_t *ms, int *n, char *err, size_t errlen)
{
	char word[32];
	const char *p = s;

	*n = 0;
	while (*p) {
		size_t len = strcspn(p, ",");
		int rc;

		if (len == 0 || len >= sizeof(word))
			return fail(err, errlen, PB_ERR_FORMAT,
				    "%s: an empty or overlong delay", s);
		if (*n == PB_POLICY_SCHEDULE_MAX)
			return fail(err, errlen, PB_ERR_LIMIT,
				    "%s: more than %d delays", s,
				    PB_POLICY_SCHEDULE_MAX);
		memcpy(word, p, len);
		word[len] = '\0';
		rc = delay_parse(word, &ms[*n]);
		if (rc != PB_OK)
			return fail(err, errlen, rc,
				    "delay %s is not a number with a unit "
				    "(ms, s, m, h, d) up to 30 days", word);
		++*n;
		p += len;
		if (*p == ',' && *++p == '\0')
			return fail(err, errlen, PB_ERR_FORMAT, "%s ends with a comma", s);
	}
	return PB_OK;
}

static void delay_write(pb_buf *out, int64_t ms)
{
	static const struct { const char *unit; int64_t ms; } units[] = {
		{ "d", 86400000 }, { "h", 3600000 }, { "m", 60000 }, { "s", 1000 },
	};
	size_t i;

	for (i = 0; i < PB_ARRAY_LEN(units); i++)
		if (ms > 0 && ms % units[i].ms == 0) {
			pb_buf_printf(out, "%lld%s", (long long)(ms / units[i].ms), units[i].unit);
			return;
		}
	pb_buf_printf(out, "%lldms", (long long)ms);
}

/* ---- the fields -------------------------------------------------------- */

static const struct { const char *name; unsigned bit; } failures[] = {
	{ "5xx", PB_FAIL_5XX }, { "429", PB_FAIL_429 }, { "408", PB_FAIL_408 },
	{ "timeout", PB_FAIL_TIMEOUT }, { "connect", PB_FAIL_CONNECT },
};

static int read_schedule(pb_policy *p, const char *v, char *err, size_t errlen)
{
	char why[200];
	int rc = pb_schedule_parse(v, p->schedule_ms, &p->n_schedule, why, sizeof(why));

	return rc == PB_OK ? PB_OK : fail(err, errlen, rc, "schedule %s", why);
}

static int read_retry_on(pb_policy *p, const char *v, char *err, size_t errlen)
{
	unsigned bits = 0;
	const char *w = v;

	if (strcmp(v, "none") == 0) {
		p->retry_on = 0;
		return PB_OK;
	}
	while (*w) {
		size_t len = strcspn(w, ","), i;

		for (i = 0; i < PB_ARRAY_LEN(failures); i++)
			if (strlen(failures[i].name) == len && !strncmp(w, failures[i].name, len))
				break;
		if (i == PB_ARRAY_LEN(failures))
			return fail(err, errlen, PB_ERR_FORMAT,
				    "retry_on %s: not a list of 5xx, 429, 408, timeout, connect "
				    "(or none)", v);
		bits |= failures[i].bit;
		w += len + (w[len] == ',');
	}
	p->retry_on = bits;
	return PB_OK;
}

static int read_choice(int *out, const char *name, const char *v, const char *a,
		       const char *b, char *err, size_t errlen)
{
	if (strcmp(v, a) == 0 || strcmp(v, b) == 0) {
		*out = strcmp(v, b) == 0;
		return PB_OK;
	}
	return fail(err, errlen, PB_ERR_FORMAT, "%s %s: %s or %s", name, v, a, b);
}

static int read_410(pb_policy *p, const char *v, char *err, size_t errlen)
{
	return read_choice(&p->on_410, "on_410", v, "park", "dead", err, errlen);
}

static int read_sign(pb_policy *p, const char *v, char *err, size_t errlen)
{
	return read_choice(&p->sign, "sign", v, "client", "off", err, errlen);
}

/* A header's name: an HTTP token, none of those the agent sets itself. */
static int header_name_ok(const char *s, size_t n)
{
	static const char *const own[] = {
		"host", "content-length", "content-type", "transfer-encoding", "connection",
		"expect", "user-agent", "x-postback-id", "webhook-id", "webhook-timestamp",
		"webhook-signature",
	};
	size_t i;

	if (!pb_token_valid(s, n, 64, "!#$%&'*+-.^_`|~"))
		return 0;
	for (i = 0; i < PB_ARRAY_LEN(own); i++)
		if (strlen(own[i]) == n && strncasecmp(s, own[i], n) == 0)
			return 0;
	return 1;
}

/* "Name: value" (or "Name:" to remove Name), printable ASCII only. */
static int read_header(pb_policy *p, const char *v, char *err, size_t errlen)
{
	const char *colon = strchr(v, ':'), *val, *c;
	size_t name_len;
	int i, at = -1;

	if (colon == NULL || !header_name_ok(v, (size_t)(colon - v)))
		return fail(err, errlen, PB_ERR_FORMAT,
			    "header: \"Name: value\" with an HTTP token for a name, not one "
			    "the agent sets itself (Host, Content-Type, webhook-*, ...)");
	name_len = (size_t)(colon - v);
	for (val = colon + 1; *val == ' '; val++)
		;
	for (c = val; *c; c++)
		if (!isprint((unsigned char)*c))
			return fail(err, errlen, PB_ERR_FORMAT,
				    "header: the value of %.*s holds a control character",
				    (int)(colon - v), v);
	if (strlen(v) >= PB_POLICY_HEADER_MAX)
		return fail(err, errlen, PB_ERR_LIMIT, "header: longer than %d bytes",
			    PB_POLICY_HEADER_MAX - 1);
	for (i = 0; i < p->n_headers; i++)
		if (strncasecmp(p->headers[i], v, name_len) == 0 && p->headers[i][name_len] == ':')
			at = i;
	if (*val == '\0') { /* "Name:": remove */
		if (at >= 0) {
			memmove(p->headers[at], p->headers[at + 1],
				(size_t)(p->n_headers - at - 1) * sizeof(p->headers[0]));
			p->n_headers--;
		}
		return PB_OK;
	}
	if (at < 0) {
		if (p->n_headers == PB_POLICY_HEADERS_MAX)
			return fail(err, errlen, PB_ERR_LIMIT, "header: at most %d",
				    PB_POLICY_HEADERS_MAX);
		at = p->n_headers++;
	}
	snprintf(p->headers[at], sizeof(p->headers[at]), "%.*s: %s", (int)name_len, v, val);
	return PB_OK;
}

static int read_url(pb_policy *p, const char *v, char *err, size_t errlen)
{
	if (strstr(v, "://") == NULL || strlen(v) >= sizeof(p->url))
		return fail(err, errlen, PB_ERR_FORMAT, "url %s: not a scheme://host:port", v);
	pb_strlcpy(p->url, v, sizeof(p->url));
	return PB_OK;
}

static void write_url(const pb_policy *p, pb_buf *out)
{
	pb_buf_puts(out, p->url);
}

static void write_schedule(const pb_policy *p, pb_buf *out)
{
	int i;

	for (i = 0; i < p->n_schedule; i++) {
		if (i)
			pb_buf_putc(out, ',');
		delay_write(out, p->schedule_ms[i]);
	}
}

static void write_retry_on(const pb_policy *p, pb_buf *out)
{
	size_t i, n = 0;

	for (i = 0; i < PB_ARRAY_LEN(failures); i++)
		if (p->retry_on & failures[i].bit)
			pb_buf_printf(out, "%s%s", n++ ? "," : "", failures[i].name);
	if (n == 0)
		pb_buf_puts(out, "none");
}

static void write_410(const pb_policy *p, pb_buf *out)
{
	pb_buf_puts(out, p->on_410 == PB_410_DEAD ? "dead" : "park");
}

static void write_sign(const pb_policy *p, pb_buf *out)
{
	pb_buf_puts(out, p->sign == PB_SIGN_OFF ? "off" : "client");
}

/*
 * Every field: its reader and writer, or, for a number (read NULL), where
 * it lies in pb_policy and its bounds. The header lines are written apart
 * (pb_policy_write), each its own line.
 */
static const struct field {
	const char *name;
	unsigned bit;
	int (*read)(pb_policy *p, const char *v, char *err, size_t errlen);
	void (*write)(const pb_policy *p, pb_buf *out);
	size_t num;
	long min, max;
} fields[] = {
	{ "url", PB_POL_URL, read_url, write_url, 0, 0, 0 },
	{ "schedule", PB_POL_SCHEDULE, read_schedule, write_schedule, 0, 0, 0 },
	{ "retry_on", PB_POL_RETRY_ON, read_retry_on, write_retry_on, 0, 0, 0 },
	{ "timeout_ms", PB_POL_TIMEOUT, NULL, NULL, offsetof(pb_policy, timeout_ms), 10, 3600000 },
	{ "max_attempts", PB_POL_MAX_ATTEMPTS, NULL, NULL, offsetof(pb_policy, max_attempts), 1,
	  1000 },
	{ "max_age_s", PB_POL_MAX_AGE, NULL, NULL, offsetof(pb_policy, max_age_s), 0, 31536000 },
	{ "on_410", PB_POL_ON_410, read_410, write_410, 0, 0, 0 },
	{ "sign", PB_POL_SIGN, read_sign, write_sign, 0, 0, 0 },
	{ "header", PB_POL_HEADER, read_header, NULL, 0, 0, 0 },
};

static long *number(pb_policy *p, const struct field *f)
{
	return (long *)(void *)((char *)p + f->num);
}

static long number_of(const pb_policy *p, const struct field *f)
{
	return *(const long *)(const void *)((const char *)p + f->num);
}

static int read_field(pb_policy *p, const struct field *f, const char *v, char *err,
		      size_t errlen)
{
	if (f->read)
		return f->read(p, v, err, errlen);
	if (pb_parse_long(v, f->min, f->max, number(p, f)) == PB_OK)
		return PB_OK;
	return fail(err, errlen, PB_ERR_FORMAT, "%s %s is not a number in %ld..%ld", f->name,
		    v, f->min, f->max);
}

/* Unset: back to the defaults' value. */
static void reset_field(pb_policy *p, const pb_policy *d, const struct field *f)
{
	if (f->read == NULL) {
		*number(p, f) = number_of(d, f);
		return;
	}
	switch (f->bit) {
	case PB_POL_SCHEDULE:
		p->n_schedule = d->n_schedule;
		memcpy(p->schedule_ms, d->schedule_ms, sizeof(p->schedule_ms));
		break;
	case PB_POL_RETRY_ON: p->retry_on = d->retry_on; break;
	case PB_POL_ON_410: p->on_410 = d->on_410; break;
	case PB_POL_SIGN: p->sign = d->sign; break;
	case PB_POL_HEADER: p->n_headers = 0; break;
	case PB_POL_URL: p->url[0] = '\0'; break;
	}
}

int pb_policy_assign(pb_policy *p, const pb_policy *defaults, const char *line,
		     size_t n, char *err, size_t errlen)
{
	char copy[PB_POLICY_HEADER_MAX + 32];
	const char *eq = memchr(line, '=', n);
	size_t name_len, i;
	int rc;

	if (n >= sizeof(copy))
		return fail(err, errlen, PB_ERR_LIMIT, "a policy line longer than %zu bytes",
			    sizeof(copy) - 1);
	if (eq == NULL)
		return fail(err, errlen, PB_ERR_FORMAT, "%.*s: not FIELD=VALUE", (int)n, line);
	name_len = (size_t)(eq - line);
	memcpy(copy, line, n);
	copy[n] = '\0';
	for (i = 0; i < PB_ARRAY_LEN(fields); i++)
		if (strlen(fields[i].name) == name_len && !strncmp(line, fields[i].name, name_len))
			break;
	if (i == PB_ARRAY_LEN(fields)) {
		copy[name_len] = '\0';
		return fail(err, errlen, PB_ERR_FORMAT,
			    "%s: no such field (schedule, retry_on, timeout_ms, max_attempts, "
			    "max_age_s, on_410, sign, header, url)", copy);
	}
	if (copy[name_len + 1] == '\0') { /* "name=": unset */
		reset_field(p, defaults, &fields[i]);
		p->set &= ~fields[i].bit;
		return PB_OK;
	}
	rc = read_field(p, &fields[i], copy + name_len + 1, err, errlen);
	if (rc != PB_OK)
		return rc;
	p->set |= fields[i].bit;
	if (fields[i].bit == PB_POL_HEADER && p->n_headers == 0)
		p->set &= ~PB_POL_HEADER;
	return PB_OK;
}

int pb_policy_read(pb_policy *p, const pb_policy *defaults, const char *text, size_t n,
		   char *err, size_t errlen)
{
	size_t at = 0;

	if (n > PB_POLICY_TEXT_MAX)
		return fail(err, errlen, PB_ERR_LIMIT, "a policy longer than %d bytes",
			    PB_POLICY_TEXT_MAX);
	while (at < n) {
		const char *nl = memchr(text + at, '\n', n - at);
		size_t len = nl ? (size_t)(nl - (text + at)) : n - at;
		int rc = len ? pb_policy_assign(p, defaults, text + at, len, err, errlen) : PB_OK;

		if (rc != PB_OK)
			return rc;
		at += len + 1;
	}
	return PB_OK;
}

int pb_policy_write(const pb_policy *p, pb_buf *out, int mask_secrets)
{
	size_t i;
	int h;

	for (i = 0; i < PB_ARRAY_LEN(fields); i++) {
		if (!(p->set & fields[i].bit) || fields[i].bit == PB_POL_HEADER)
			continue;
		pb_buf_printf(out, "%s=", fields[i].name);
		if (fields[i].write)
			fields[i].write(p, out);
		else
			pb_buf_printf(out, "%ld", number_of(p, &fields[i]));
		pb_buf_putc(out, '\n');
	}
	for (h = 0; h < p->n_headers && (p->set & PB_POL_HEADER); h++) {
		const char *colon = strchr(p->headers[h], ':');

		if (mask_secrets)
			pb_buf_printf(out, "header=%.*s: (secret)\n",
				      (int)(colon - p->headers[h]), p->headers[h]);
		else
			pb_buf_printf(out, "header=%s\n", p->headers[h]);
	}
	return pb_buf_err(out);
}
