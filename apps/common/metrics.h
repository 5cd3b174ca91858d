/*
 * metrics.h - counters, gauges and histograms, and their Prometheus text.
 *
 * A daemon declares its metric families as static pb_family values (the
 * name, the help line, the type, at most one label with a fixed list of
 * values) and updates them from any thread: every cell is an atomic
 * integer, so an update is one relaxed atomic add and never takes a lock
 * on the delivery path. pb_metrics_render() writes them in the Prometheus
 * text exposition format; httpd.h serves that on metrics_listen.
 *
 * Every label value is declared up front, so no label can grow without
 * limit: a value that is not in the list is counted under the last one
 * (conventionally "other"). Destinations, which are not known up front,
 * have their own bounded table (pb_dest_counts, below).
 *
 * Histograms keep seconds as integer microseconds; their buckets are the
 * family's bounds, in seconds.
 */
#ifndef PB_METRICS_H
#define PB_METRICS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include "buf.h"
#include "shard.h"

#define PB_M_VALUES 12  /* label values of one family, at most */
#define PB_M_BUCKETS 16 /* histogram bounds, at most */
#define PB_M_RENDER_MAX ((size_t)1 << 20) /* a scrape's text, at most */

enum pb_mtype { PB_COUNTER, PB_GAUGE, PB_HISTOGRAM };

typedef struct pb_family {
	const char *name;  /* pb_..., base units, _total for counters */
	const char *help;
	enum pb_mtype type;
	const char *label;                 /* NULL: one unlabelled series */
	const char *values[PB_M_VALUES];   /* the label's values, NULL-ended */
	const double *bounds;              /* histograms: bucket upper bounds, s */
	int nbounds;
	int scale;   /* gauges: a stored 1 is 1/scale of the unit (0 = 1) */
	atomic_int hidden; /* 1: not rendered (a gauge only one process exports) */
	/* Cells, per label value. */
	atomic_llong v[PB_M_VALUES];                     /* counter, gauge */
	atomic_ullong b[PB_M_VALUES][PB_M_BUCKETS + 1];  /* per bucket, +Inf last */
	atomic_ullong sum_us[PB_M_VALUES];
} pb_family;

/* Index of a label value in f (the last value when it is not listed). */
int pb_m_index(const pb_family *f, const char *value);
/* A family by shard: its label's values are the shards' names; past
 * PB_M_VALUES - 1 shards the rest are "other" (pb_m_shard: the index). */
void pb_m_label_shards(pb_family *f, const pb_shards *s);
int pb_m_shard(int shard);
void pb_m_add(pb_family *f, int i, long long delta);
void pb_m_set(pb_family *f, int i, long long value);
void pb_m_observe(pb_family *f, int i, double seconds);
/* The same, by the label's value. */
void pb_m_add_to(pb_family *f, const char *value, long long delta);

/*
 * Counts per value of one label (a destination, a client) and outcome,
 * bounded: the first `cap` values seen get a series each, the rest are
 * counted as "other". Locked (values are looked up by name), so it is
 * updated once per attempt or request, not per byte.
 */
typedef struct pb_counts {
	const char *name, *help;  /* family name and help */
	const char *label;        /* "destination", "client" */
	const char *const *outcomes; /* NULL-ended, at most PB_M_VALUES */
	pthread_mutex_t mu;
	size_t cap, n;
	struct pb_count_row {
		char *key;            /* the label's value */
		unsigned long long c[PB_M_VALUES];
	} *rows;                  /* cap + 1: the last is "other" */
} pb_counts;

int pb_counts_init(pb_counts *d, size_t cap);
/* n more of outcome (its index in outcomes) for the label's value key. */
void pb_counts_add(pb_counts *d, const char *key, int outcome, unsigned long long n);
void pb_counts_free(pb_counts *d);

/* Every family (those not hidden) and the tables of counts, in the text
 * format, appended to out (whose limit bounds it). */
int pb_metrics_render(pb_buf *out, pb_family *const *fams, size_t n,
		      pb_counts *const *tables, size_t ntables);
/* A label value with \, " and newline escaped, as the format wants. */
void pb_m_escape(pb_buf *out, const char *s);

#endif
