/*
 * httpd.h - the metrics endpoint: GET /metrics on metrics_listen, served
 * by libmicrohttpd on a thread of its own, so a slow or stuck scraper
 * never holds up a request or a delivery. Anything else is 404 (405 for
 * a method other than GET or HEAD).
 */
#ifndef PB_HTTPD_H
#define PB_HTTPD_H

#include <stddef.h>

#include "metrics.h"

typedef struct pb_httpd {
	struct MHD_Daemon *d;
	pb_family *const *fams; /* what a scrape shows: these families, */
	size_t nfams;
	pb_counts *const *tables; /* and these tables of counts */
	size_t ntables;
	int err;
	char errstr[256];
} pb_httpd;

/* Listen on "host:port" (a numeric address; [v6]:port). PB_OK, or an
 * error with errstr saying what failed. */
int pb_httpd_start(pb_httpd *h, const char *listen, pb_family *const *fams,
		   size_t nfams, pb_counts *const *tables, size_t ntables);
/*
 * What a daemon calls at start: the standard families set
 * (stdmetrics.h), then, unless listen is "" (metrics off), the endpoint
 * started and where it listens logged. PB_OK, or the error, logged.
 */
int pb_httpd_serve(pb_httpd *h, const char *listen, pb_family *const *fams,
		   size_t nfams, pb_counts *const *tables, size_t ntables);
void pb_httpd_stop(pb_httpd *h);

#endif
