/*
 * validate.h - what the ingest node accepts, as pure functions.
 *
 * Two stages, both free of I/O so the unit tests can drive every case:
 * pb_check_http() looks at the request line and headers before any body is
 * read (405, 415, 413), pb_parse_ingest() at the body (400). Each returns
 * 0 when the request may go on, or the HTTP status to answer with and a
 * message in err that names the problem.
 */
#ifndef PB_VALIDATE_H
#define PB_VALIDATE_H

#include <jansson.h>
#include <stddef.h>

typedef struct pb_ingest_req {
	json_t *root;    /* the parsed body; owns url and data */
	char method;     /* 'G' or 'P' */
	const char *url; /* endpoint.url, validated */
	size_t url_len;
	json_t *data;    /* the non-empty array of flat objects */
	size_t count;
} pb_ingest_req;

/* 1 for application/json (any case, parameters allowed), else 0. */
int pb_content_type_is_json(const char *ct);

/* method, content_type and content_length may be NULL (absent). */
int pb_check_http(const char *method, const char *content_type,
		  const char *content_length, size_t max_body, char *err,
		  size_t errlen);

/* A URL template: http or https, a host, no spaces or control characters. */
int pb_check_url(const char *url, size_t len, size_t max_len, char *err,
		 size_t errlen);

/* 400 for what is wrong (a key other than endpoint and data too), 413 for
 * more than max_objects data objects, or more objects and arrays in all
 * than such a request holds (counted before parsing). */
int pb_parse_ingest(pb_ingest_req *r, const char *body, size_t len,
		    size_t max_url, size_t max_objects, char *err, size_t errlen);
void pb_ingest_req_free(pb_ingest_req *r);

#endif
