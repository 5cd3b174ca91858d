/*
 * What a client sends: the body of an ingest request, then each data
 * object it was accepted with through the template and the destination,
 * as the ingest node does. Invariants: a 0 answer has 1..max objects, a
 * URL that passed pb_check_url, and flat objects.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "dest.h"
#include "pb.h"
#include "template.h"
#include "validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t n)
{
	pb_ingest_req r;
	char err[256];
	pb_buf url;
	pb_dest d;
	size_t i;
	int status = pb_parse_ingest(&r, (const char *)in, n, 8192, 64, err, sizeof(err));

	if (status != 0) { /* the request is the caller's to free either way */
		if (status != 400 && status != 413)
			abort();
		pb_ingest_req_free(&r);
		return 0;
	}
	if (r.count < 1 || r.count > 64 || json_array_size(r.data) != r.count ||
	    pb_check_url(r.url, r.url_len, 8192, err, sizeof(err)) != 0)
		abort();
	pb_buf_init(&url, 65536);
	for (i = 0; i < r.count; i++) {
		pb_buf_reset(&url);
		if (pb_template_fill(&url, r.url, r.url_len, json_array_get(r.data, i), "") ==
		    PB_OK)
			(void)pb_dest_of(&d, url.data ? url.data : "", url.len);
	}
	pb_buf_free(&url);
	pb_ingest_req_free(&r);
	return 0;
}
