/*
 * httpd.h - the metrics endpoint: GET /metrics on metrics_listen, served
 * by libmicrohttpd on a thread of its own, so a slow or stuck scraper
 * never holds up a request or a delivery. Anything else is 404 (405 for
 * a method other than GET or HEAD).
 */
#ifndef PB_HTTPD_H
#define PB_HTTPD_H

#include <stddef.h>

#include "buf.h"

/* Appends the page to out; PB_OK or the buffer's error. */
typedef int (*pb_httpd_render)(pb_buf *out, void *arg);

typedef struct pb_httpd {
	struct MHD_Daemon *d;
	pb_httpd_render render;
	void *arg;
	int err;
	char errstr[256];
} pb_httpd;

/* Listen on "host:port" (a numeric address; [v6]:port). PB_OK, or an
 * error with errstr saying what failed. */
int pb_httpd_start(pb_httpd *h, const char *listen, pb_httpd_render render,
		   void *arg);
void pb_httpd_stop(pb_httpd *h);

#endif
