#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "httpd.h"
#include "log.h"
#include "metrics.h"
#include "pb.h"
#include "stdmetrics.h"

#define CONNECTIONS_MAX 16 /* scrapers: Prometheus, an operator's curl */
#define TIMEOUT_S 10

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status,
			     const char *type, char *body, size_t len,
			     enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *r;
	enum MHD_Result rc;

	r = MHD_create_response_from_buffer(len, body, mode);
	if (r == NULL) {
		if (mode == MHD_RESPMEM_MUST_FREE)
			free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	rc = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
				  const char *url, const char *method,
				  const char *version, const char *upload,
				  size_t *upload_len, void **state)
{
	static char not_found[] = "not found: the metrics are at /metrics\n";
	static char not_allowed[] = "method not allowed\n";
	pb_httpd *h = cls;
	pb_buf page;

	(void)version;
	(void)upload;
	if (*state == NULL) { /* headers only so far; the body (none) next */
		*state = h;
		return MHD_YES;
	}
	*upload_len = 0;
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", not_allowed,
			     strlen(not_allowed), MHD_RESPMEM_PERSISTENT);
	if (strcmp(url, "/metrics") != 0)
		return reply(c, MHD_HTTP_NOT_FOUND, "text/plain", not_found,
			     strlen(not_found), MHD_RESPMEM_PERSISTENT);
	pb_buf_init(&page, PB_M_RENDER_MAX);
	if (pb_metrics_render(&page, h->fams, h->nfams, h->tables, h->ntables) != PB_OK ||
	    page.data == NULL) {
		pb_buf_free(&page);
		return MHD_NO; /* the scrape fails; Prometheus marks it so */
	}
	return reply(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8",
		     page.data, page.len, MHD_RESPMEM_MUST_FREE);
}

static int resolve(pb_httpd *h, const char *listen, struct sockaddr_storage *ss)
{
	char host[256];
	const char *colon = strrchr(listen, ':');
	struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV,
				  .ai_socktype = SOCK_STREAM }, *ai;
	long port;
	size_t hl;

	if (colon == NULL || pb_parse_long(colon + 1, 1, 65535, &port) != PB_OK) {
		snprintf(h->errstr, sizeof(h->errstr),
			 "metrics_listen '%s': not host:port", listen);
		return PB_ERR_FORMAT;
	}
	hl = (size_t)(colon - listen);
	if (hl >= 2 && listen[0] == '[' && listen[hl - 1] == ']') {
		listen++;
		hl -= 2;
	}
	if (hl == 0 || hl >= sizeof(host)) {
		snprintf(h->errstr, sizeof(h->errstr),
			 "metrics_listen '%s': no address", listen);
		return PB_ERR_FORMAT;
	}
	memcpy(host, listen, hl);
	host[hl] = '\0';
	if (getaddrinfo(host, colon + 1, &hints, &ai) != 0) {
		snprintf(h->errstr, sizeof(h->errstr),
			 "metrics_listen: '%s' is not a numeric address", host);
		return PB_ERR_FORMAT;
	}
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	freeaddrinfo(ai);
	return PB_OK;
}

int pb_httpd_start(pb_httpd *h, const char *listen, pb_family *const *fams,
		   size_t nfams, pb_counts *const *tables, size_t ntables)
{
	struct sockaddr_storage ss;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL;

	h->fams = fams;
	h->nfams = nfams;
	h->tables = tables;
	h->ntables = ntables;
	h->d = NULL;
	if ((h->err = resolve(h, listen, &ss)) != PB_OK)
		return h->err;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	h->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h,
				MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
				MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONNECTIONS_MAX,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)TIMEOUT_S,
				MHD_OPTION_END);
	if (h->d == NULL) {
		snprintf(h->errstr, sizeof(h->errstr),
			 "metrics_listen %s: cannot listen: %s", listen,
			 strerror(errno));
		return h->err = PB_ERR_IO;
	}
	return PB_OK;
}

int pb_httpd_serve(pb_httpd *h, const char *listen, pb_family *const *fams,
		   size_t nfams, pb_counts *const *tables, size_t ntables)
{
	pb_stdmetrics_init();
	if (listen[0] == '\0')
		return PB_OK;
	if (pb_httpd_start(h, listen, fams, nfams, tables, ntables) != PB_OK) {
		pb_error("%s", h->errstr);
		return h->err;
	}
	pb_info("metrics on http://%s/metrics", listen);
	return PB_OK;
}

void pb_httpd_stop(pb_httpd *h)
{
	if (h->d != NULL)
		MHD_stop_daemon(h->d);
	h->d = NULL;
}
