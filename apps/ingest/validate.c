#include "validate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int pb_content_type_is_json(const char *ct)
{
	static const char want[] = "application/json";
	size_t n = sizeof(want) - 1;

	if (ct == NULL)
		return 0;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	if (strncasecmp(ct, want, n) != 0)
		return 0;
	ct += n;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	return *ct == '\0' || *ct == ';';
}

int pb_check_http(const char *method, const char *content_type,
		  const char *content_length, size_t max_body, char *err,
		  size_t errlen)
{
	if (method == NULL || strcmp(method, "POST") != 0) {
		snprintf(err, errlen, "method %s not allowed; use POST",
			 method ? method : "(none)");
		return 405;
	}
	if (!pb_content_type_is_json(content_type)) {
		snprintf(err, errlen,
			 "content type '%.64s' not supported; use application/json",
			 content_type ? content_type : "");
		return 415;
	}
	if (content_length && *content_length) {
		char *end;
		unsigned long long n = strtoull(content_length, &end, 10);
		if (*end != '\0' || content_length[0] == '-') {
			snprintf(err, errlen, "bad Content-Length '%.32s'",
				 content_length);
			return 400;
		}
		if (n > max_body) {
			snprintf(err, errlen,
				 "body of %llu bytes is over the limit of %zu bytes",
				 n, max_body);
			return 413;
		}
	}
	return 0;
}

static int has_scheme(const char *url, size_t len, const char *scheme)
{
	size_t n = strlen(scheme);

	return len > n && strncasecmp(url, scheme, n) == 0;
}

int pb_check_url(const char *url, size_t len, size_t max_len, char *err,
		 size_t errlen)
{
	size_t i, host;
	int depth = 0;

	if (len == 0) {
		snprintf(err, errlen, "endpoint.url is empty");
		return 400;
	}
	if (len > max_len) {
		snprintf(err, errlen, "endpoint.url is %zu bytes, over the limit of %zu",
			 len, max_len);
		return 400;
	}
	if (has_scheme(url, len, "http://"))
		host = 7;
	else if (has_scheme(url, len, "https://"))
		host = 8;
	else {
		snprintf(err, errlen, "endpoint.url must start with http:// or https://");
		return 400;
	}
	if (url[host] == '/' || url[host] == '?' || url[host] == '#' ||
	    url[host] == ':') {
		snprintf(err, errlen, "endpoint.url has no host");
		return 400;
	}
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)url[i];
		if (c == '{')
			depth++;
		else if (c == '}' && depth > 0)
			depth--;
		if (c <= 0x20 || c == 0x7f) {
			snprintf(err, errlen,
				 "endpoint.url has a space or control character at offset %zu",
				 i);
			return 400;
		}
		/* Non-ASCII may name a {key}, but the URL itself must be ASCII. */
		if (c >= 0x80 && depth == 0) {
			snprintf(err, errlen,
				 "endpoint.url has a non-ASCII byte at offset %zu; percent-encode it",
				 i);
			return 400;
		}
	}
	return 0;
}

static int check_method(pb_ingest_req *r, const json_t *m, char *err,
			size_t errlen)
{
	const char *s = json_string_value(m);

	if (s == NULL) {
		snprintf(err, errlen, "endpoint.method must be a string, GET or POST");
		return 400;
	}
	if (strcasecmp(s, "GET") == 0)
		r->method = 'G';
	else if (strcasecmp(s, "POST") == 0)
		r->method = 'P';
	else {
		snprintf(err, errlen, "endpoint.method '%.16s' is not GET or POST", s);
		return 400;
	}
	return 0;
}

static int check_data(pb_ingest_req *r, size_t max_objects, char *err,
		      size_t errlen)
{
	size_t i;
	json_t *obj;

	if (!json_is_array(r->data)) {
		snprintf(err, errlen, "data must be an array of objects");
		return 400;
	}
	if ((r->count = json_array_size(r->data)) == 0) {
		snprintf(err, errlen, "data is empty; send at least one object");
		return 400;
	}
	if (r->count > max_objects) {
		snprintf(err, errlen, "data has %zu objects; at most %zu in one request",
			 r->count, max_objects);
		return 413;
	}
	json_array_foreach(r->data, i, obj) {
		const char *key;
		json_t *v;

		if (!json_is_object(obj)) {
			snprintf(err, errlen, "data[%zu] must be an object", i);
			return 400;
		}
		json_object_foreach(obj, key, v) {
			if (json_is_object(v) || json_is_array(v)) {
				snprintf(err, errlen,
					 "data[%zu].%.64s must be a string, number, boolean or null",
					 i, key);
				return 400;
			}
		}
	}
	return 0;
}

/*
 * Objects and arrays a request may hold: the body, endpoint and data, the
 * data's objects, and a few to spare. Counted before jansson builds its
 * tree, where each costs a hundred bytes and more: 1 MiB of "[{},{},...]"
 * would take about 74 MB of heap, for a request refused anyway.
 */
enum { CONTAINERS_SPARE = 8 };

/* Whether body holds more than limit objects and arrays (outside strings). */
static int over_containers(const char *body, size_t len, size_t limit)
{
	size_t i, n = 0;
	int in_string = 0;

	for (i = 0; i < len; i++) {
		char ch = body[i];

		if (in_string) {
			if (ch == '\\')
				i++; /* the escaped character is no quote */
			else if (ch == '"')
				in_string = 0;
		} else if (ch == '"') {
			in_string = 1;
		} else if ((ch == '{' || ch == '[') && ++n > limit) {
			return 1;
		}
	}
	return 0;
}

/* The body's keys are endpoint and data: anything else is a mistake of
 * the client's (a misspelt key would go unnoticed) or a way to make the
 * node parse what it does not use. */
static int check_keys(const json_t *root, char *err, size_t errlen)
{
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)root, key, v) {
		(void)v;
		if (strcmp(key, "endpoint") != 0 && strcmp(key, "data") != 0) {
			snprintf(err, errlen, "unknown key '%.64s'; a body holds endpoint "
				 "and data only", key);
			return 400;
		}
	}
	return 0;
}

int pb_parse_ingest(pb_ingest_req *r, const char *body, size_t len,
		    size_t max_url, size_t max_objects, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *ep, *url;
	int status;

	memset(r, 0, sizeof(*r));
	if (len == 0) {
		snprintf(err, errlen, "empty body; send a JSON object");
		return 400;
	}
	if (over_containers(body, len, max_objects + CONTAINERS_SPARE)) {
		snprintf(err, errlen, "more than %zu objects and arrays in the body "
			 "(data holds at most %zu objects, each flat)",
			 max_objects + CONTAINERS_SPARE, max_objects);
		return 413;
	}
	r->root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (r->root == NULL) {
		snprintf(err, errlen, "malformed JSON at line %d column %d: %s",
			 jerr.line, jerr.column, jerr.text);
		return 400;
	}
	if (!json_is_object(r->root)) {
		snprintf(err, errlen, "body must be a JSON object with endpoint and data");
		return 400;
	}
	if ((status = check_keys(r->root, err, errlen)))
		return status;
	ep = json_object_get(r->root, "endpoint");
	if (!json_is_object(ep)) {
		snprintf(err, errlen, "endpoint must be an object with method and url");
		return 400;
	}
	if ((status = check_method(r, json_object_get(ep, "method"), err, errlen)))
		return status;
	url = json_object_get(ep, "url");
	if (!json_is_string(url)) {
		snprintf(err, errlen, "endpoint.url must be a string");
		return 400;
	}
	r->url = json_string_value(url);
	r->url_len = json_string_length(url);
	if ((status = pb_check_url(r->url, r->url_len, max_url, err, errlen)))
		return status;
	r->data = json_object_get(r->root, "data");
	return check_data(r, max_objects, err, errlen);
}

void pb_ingest_req_free(pb_ingest_req *r)
{
	json_decref(r->root);
	memset(r, 0, sizeof(*r));
}
