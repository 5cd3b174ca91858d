/* The metrics' text format: counters, labels, histograms, destinations. */
#include <string.h>

#include "metrics.h"
#include "pb.h"
#include "unit.h"

static const double bounds[] = { 0.01, 0.1, 1 };

static pb_family plain = { .name = "t_events_total", .type = PB_COUNTER,
			   .help = "events" };
static pb_family labelled = { .name = "t_answers_total", .type = PB_COUNTER,
			      .help = "answers", .label = "code",
			      .values = { "200", "503", "other" } };
static pb_family seconds = { .name = "t_age_seconds", .type = PB_GAUGE,
			     .help = "age", .scale = 1000 };
static pb_family hist = { .name = "t_wait_seconds", .type = PB_HISTOGRAM,
			  .help = "wait", .bounds = bounds, .nbounds = 3 };
static pb_family hidden = { .name = "t_hidden", .type = PB_GAUGE, .help = "x",
			    .hidden = 1 };

static int contains(const pb_buf *b, const char *line)
{
	return strstr(pb_buf_str(b), line) != NULL;
}

static void text(void)
{
	pb_family *const fams[] = { &plain, &labelled, &seconds, &hist, &hidden };
	static const struct { const char *line; } want[] = {
		{ "# HELP t_events_total events\n# TYPE t_events_total counter\n" },
		{ "\nt_events_total 3\n" },
		{ "t_answers_total{code=\"200\"} 2\n" },
		{ "t_answers_total{code=\"503\"} 0\n" },
		{ "t_answers_total{code=\"other\"} 1\n" }, /* 404 is not listed */
		{ "t_age_seconds 1.500\n" },
		{ "# TYPE t_wait_seconds histogram\n" },
		{ "t_wait_seconds_bucket{le=\"0.01\"} 1\n" },
		{ "t_wait_seconds_bucket{le=\"0.1\"} 1\n" }, /* cumulative */
		{ "t_wait_seconds_bucket{le=\"1\"} 3\n" },   /* 1 is in le=1 */
		{ "t_wait_seconds_bucket{le=\"+Inf\"} 4\n" },
		{ "t_wait_seconds_sum 7.505000\n" },
		{ "t_wait_seconds_count 4\n" },
	};
	pb_buf b;
	size_t i;

	pb_m_add(&plain, 0, 2);
	pb_m_add(&plain, 7, 1); /* an index out of range: the last series */
	pb_m_add_to(&labelled, "200", 2);
	pb_m_add_to(&labelled, "404", 1);
	pb_m_set(&seconds, 0, 1500);
	pb_m_observe(&hist, 0, 0.005);
	pb_m_observe(&hist, 0, 0.5);
	pb_m_observe(&hist, 0, 1);
	pb_m_observe(&hist, 0, 6);
	pb_m_set(&hidden, 0, 1);
	pb_buf_init(&b, PB_M_RENDER_MAX);
	CHECK(pb_metrics_render(&b, fams, PB_ARRAY_LEN(fams), NULL, 0) == PB_OK, "render");
	for (i = 0; i < PB_ARRAY_LEN(want); i++)
		CHECK(contains(&b, want[i].line), "want '%s' in:\n%s", want[i].line,
		      pb_buf_str(&b));
	CHECK(!contains(&b, "t_hidden"), "a hidden family is not shown");
	pb_buf_free(&b);

	/* The buffer's limit bounds the page: an error, not an overflow. */
	pb_buf_init(&b, 64);
	CHECK(pb_metrics_render(&b, fams, PB_ARRAY_LEN(fams), NULL, 0) == PB_ERR_LIMIT,
	      "a page over its limit fails");
	pb_buf_free(&b);
}

static void destinations(void)
{
	pb_counts d = { .name = "t_dest_total", .help = "by destination", .label = "destination",
			     .outcomes = (const char *const[]){ "ok", "failed", NULL } };
	pb_counts *const tables[] = { &d };
	pb_buf b;

	CHECK(pb_counts_init(&d, 2) == PB_OK, "init");
	pb_counts_add(&d, "http://a:80", 0, 1);
	pb_counts_add(&d, "http://a:80", 0, 1);
	pb_counts_add(&d, "http://b\"q:80", 1, 1);
	pb_counts_add(&d, "http://c:80", 1, 1); /* past cap 2: other */
	pb_counts_add(&d, "http://d:80", 0, 1);
	pb_counts_add(&d, "http://a:80", 99, 1); /* no such outcome: ignored */
	pb_buf_init(&b, PB_M_RENDER_MAX);
	CHECK(pb_metrics_render(&b, NULL, 0, tables, 1) == PB_OK, "render");
	CHECK(contains(&b, "t_dest_total{destination=\"http://a:80\",outcome=\"ok\"} 2\n"),
	      "%s", pb_buf_str(&b));
	CHECK(contains(&b, "t_dest_total{destination=\"http://b\\\"q:80\",outcome=\"failed\"} 1\n"),
	      "escaped: %s", pb_buf_str(&b));
	CHECK(contains(&b, "t_dest_total{destination=\"other\",outcome=\"ok\"} 1\n") &&
	      contains(&b, "t_dest_total{destination=\"other\",outcome=\"failed\"} 1\n"),
	      "the rest is other: %s", pb_buf_str(&b));
	CHECK(!contains(&b, "http://c:80") && !contains(&b, "http://d:80"),
	      "no series past the cap");
	pb_buf_free(&b);
	pb_counts_free(&d);
}

/* A table by another label, counted n at a time (an ingest node adds a
 * request's postbacks at once); two tables render one after the other. */
static void clients(void)
{
	pb_counts c = { .name = "t_client_total", .help = "by client", .label = "client",
			.outcomes = (const char *const[]){ "accepted", NULL } };
	pb_counts d = { .name = "t_dest_total", .help = "by destination",
			.label = "destination",
			.outcomes = (const char *const[]){ "ok", NULL } };
	pb_counts *const tables[] = { &c, &d };
	pb_buf b;

	CHECK(pb_counts_init(&c, 1) == PB_OK && pb_counts_init(&d, 1) == PB_OK, "init");
	pb_counts_add(&c, "shop", 0, 100);
	pb_counts_add(&c, "shop", 0, 1);
	pb_counts_add(&c, "", 0, 2); /* past cap 1: other */
	pb_counts_add(&d, "http://a:80", 0, 1);
	pb_buf_init(&b, PB_M_RENDER_MAX);
	CHECK(pb_metrics_render(&b, NULL, 0, tables, 2) == PB_OK, "render");
	CHECK(contains(&b, "# TYPE t_client_total counter\n"
			   "t_client_total{client=\"shop\",outcome=\"accepted\"} 101\n"
			   "t_client_total{client=\"other\",outcome=\"accepted\"} 2\n"),
	      "%s", pb_buf_str(&b));
	CHECK(contains(&b, "t_dest_total{destination=\"http://a:80\",outcome=\"ok\"} 1\n"),
	      "the second table: %s", pb_buf_str(&b));
	pb_buf_free(&b);
	pb_counts_free(&c);
	pb_counts_free(&d);
}

void unit_tests(void)
{
	text();
	destinations();
	clients();
}
