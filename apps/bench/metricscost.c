#include <stdio.h>

#include "metrics.h"
#include "metricscost.h"
#include "pb.h"

#define DESTS 100 /* metrics_destinations' default: the table full */

static const double bounds[] = { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
				 0.25, 0.5, 1, 2.5, 5, 10, 30 };
/* Shaped as the agent's (agentmetrics.c). */
static pb_family outcomes = { .name = "x_attempts_total", .type = PB_COUNTER,
			      .help = "x", .label = "outcome",
			      .values = { "delivered", "retry", "dead" } };
static pb_family classes = { .name = "x_responses_total", .type = PB_COUNTER,
			     .help = "x", .label = "class",
			     .values = { "1xx", "2xx", "3xx", "4xx", "5xx", "none" } };
static pb_family attempt = { .name = "x_attempt_seconds", .type = PB_HISTOGRAM,
			     .help = "x", .bounds = bounds, .nbounds = 14 };
static pb_family latency = { .name = "x_latency_seconds", .type = PB_HISTOGRAM,
			     .help = "x", .bounds = bounds, .nbounds = 14 };

int pb_metrics_cost(long n)
{
	pb_family *const fams[] = { &outcomes, &classes, &attempt, &latency };
	pb_counts d = { .name = "x_dest_total", .help = "x", .label = "destination",
			     .outcomes = (const char *const[]){ "delivered", "retry",
								"dead", NULL } };
	char names[DESTS][48];
	int64_t t0, t1;
	pb_buf page;
	long i;
	int k;

	pb_counts *const tables[] = { &d };

	if (pb_counts_init(&d, DESTS) != PB_OK)
		return 1;
	for (k = 0; k < DESTS; k++) {
		snprintf(names[k], sizeof(names[k]), "https://partner-%03d.example:443", k);
		pb_counts_add(&d, names[k], 0, 1);
	}
	t0 = pb_now_us();
	for (i = 0; i < n; i++) {
		k = (int)(i % DESTS);
		pb_m_add(&classes, 1, 1);
		pb_m_observe(&attempt, 0, 0.002 * (double)(k + 1));
		pb_counts_add(&d, names[k], 0, 1);
		pb_m_add(&outcomes, 0, 1);
		pb_m_observe(&latency, 0, 0.01 * (double)(k + 1));
	}
	t1 = pb_now_us();
	pb_buf_init(&page, PB_M_RENDER_MAX);
	pb_metrics_render(&page, fams, PB_ARRAY_LEN(fams), tables, 1);
	printf("{\"postbacks\": %ld, \"ns_per_postback\": %.1f, \"scrape_us\": %lld, "
	       "\"page_bytes\": %zu}\n", n, 1000.0 * (double)(t1 - t0) / (double)n,
	       (long long)(pb_now_us() - t1), page.len);
	pb_buf_free(&page);
	pb_counts_free(&d);
	return 0;
}
