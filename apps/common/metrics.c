#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "pb.h"

static int nvalues(const pb_family *f)
{
	int n = 0;

	if (f->label == NULL)
		return 1;
	while (n < PB_M_VALUES && f->values[n] != NULL)
		n++;
	return n > 0 ? n : 1;
}

void pb_m_label_shards(pb_family *f, const pb_shards *s)
{
	int i;

	for (i = 0; i < s->n && i < PB_M_VALUES - 1; i++)
		f->values[i] = s->name[i];
	if (s->n > PB_M_VALUES - 1)
		f->values[PB_M_VALUES - 1] = "other";
}

int pb_m_shard(int shard)
{
	return shard < PB_M_VALUES - 1 ? shard : PB_M_VALUES - 1;
}

int pb_m_index(const pb_family *f, const char *value)
{
	int i, n = nvalues(f);

	for (i = 0; i < n && f->label != NULL; i++)
		if (strcmp(f->values[i], value) == 0)
			return i;
	return n - 1;
}

static int clamp(const pb_family *f, int i)
{
	int n = nvalues(f);

	return i < 0 ? 0 : i >= n ? n - 1 : i;
}

void pb_m_add(pb_family *f, int i, long long delta)
{
	atomic_fetch_add_explicit(&f->v[clamp(f, i)], delta, memory_order_relaxed);
}

void pb_m_set(pb_family *f, int i, long long value)
{
	atomic_store_explicit(&f->v[clamp(f, i)], value, memory_order_relaxed);
}

void pb_m_add_to(pb_family *f, const char *value, long long delta)
{
	pb_m_add(f, pb_m_index(f, value), delta);
}

void pb_m_observe(pb_family *f, int i, double seconds)
{
	int k = 0;

	i = clamp(f, i);
	if (!(seconds >= 0)) /* NaN too */
		seconds = 0;
	while (k < f->nbounds && k < PB_M_BUCKETS && seconds > f->bounds[k])
		k++;
	atomic_fetch_add_explicit(&f->b[i][k], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&f->sum_us[i],
				  (unsigned long long)llround(seconds * 1e6),
				  memory_order_relaxed);
}

/* ---- counts by a label's value (destinations, clients) ------------------- */

int pb_counts_init(pb_counts *d, size_t cap)
{
	pthread_mutex_init(&d->mu, NULL);
	d->cap = cap;
	d->n = 0;
	d->rows = calloc(cap + 1, sizeof(*d->rows));
	return d->rows ? PB_OK : PB_ERR_NOMEM;
}

void pb_counts_add(pb_counts *d, const char *key, int outcome, unsigned long long n)
{
	size_t i;

	if (d->rows == NULL || outcome < 0 || outcome >= PB_M_VALUES)
		return;
	pthread_mutex_lock(&d->mu);
	for (i = 0; i < d->n; i++)
		if (strcmp(d->rows[i].key, key) == 0)
			break;
	if (i == d->n && d->n < d->cap && (d->rows[i].key = strdup(key)) != NULL)
		d->n++;
	if (i == d->n) /* full (or out of memory): "other" */
		i = d->cap;
	d->rows[i].c[outcome] += n;
	pthread_mutex_unlock(&d->mu);
}

void pb_counts_free(pb_counts *d)
{
	size_t i;

	if (d->rows == NULL)
		return;
	for (i = 0; i < d->n; i++)
		free(d->rows[i].key);
	free(d->rows);
	d->rows = NULL;
	pthread_mutex_destroy(&d->mu);
}

/* ---- the text format ----------------------------------------------------- */

void pb_m_escape(pb_buf *out, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			pb_buf_putc(out, '\\');
		if (*s == '\n') {
			pb_buf_puts(out, "\\n");
			continue;
		}
		pb_buf_putc(out, *s);
	}
}

static void header(pb_buf *out, const char *name, const char *help,
		   const char *type)
{
	pb_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{label="value"[,le="..."]} */
static void series(pb_buf *out, const pb_family *f, const char *suffix, int i,
		   const char *le)
{
	pb_buf_printf(out, "%s%s", f->name, suffix);
	if (f->label == NULL && le == NULL) {
		pb_buf_putc(out, ' ');
		return;
	}
	pb_buf_putc(out, '{');
	if (f->label != NULL) {
		pb_buf_printf(out, "%s=\"", f->label);
		pb_m_escape(out, f->values[i]);
		pb_buf_putc(out, '"');
	}
	if (le != NULL)
		pb_buf_printf(out, "%sle=\"%s\"", f->label ? "," : "", le);
	pb_buf_puts(out, "} ");
}

static void render_histogram(pb_buf *out, pb_family *f, int i)
{
	unsigned long long cum = 0;
	char le[32];
	int k, nb = f->nbounds < PB_M_BUCKETS ? f->nbounds : PB_M_BUCKETS;

	for (k = 0; k <= nb; k++) {
		cum += atomic_load_explicit(&f->b[i][k], memory_order_relaxed);
		if (k < nb)
			snprintf(le, sizeof(le), "%g", f->bounds[k]);
		else
			pb_strlcpy(le, "+Inf", sizeof(le));
		series(out, f, "_bucket", i, le);
		pb_buf_printf(out, "%llu\n", cum);
	}
	series(out, f, "_sum", i, NULL);
	pb_buf_printf(out, "%.6f\n",
		      (double)atomic_load_explicit(&f->sum_us[i], memory_order_relaxed) / 1e6);
	series(out, f, "_count", i, NULL);
	pb_buf_printf(out, "%llu\n", cum);
}

static void render_family(pb_buf *out, pb_family *f)
{
	static const char *types[] = { "counter", "gauge", "histogram" };
	int i, n = nvalues(f);

	header(out, f->name, f->help, types[f->type]);
	for (i = 0; i < n; i++) {
		long long v;

		if (f->type == PB_HISTOGRAM) {
			render_histogram(out, f, i);
			continue;
		}
		v = atomic_load_explicit(&f->v[i], memory_order_relaxed);
		series(out, f, "", i, NULL);
		if (f->scale > 1)
			pb_buf_printf(out, "%.3f\n", (double)v / f->scale);
		else
			pb_buf_printf(out, "%lld\n", v);
	}
}

static void render_counts(pb_buf *out, pb_counts *d)
{
	size_t i;
	int k;

	header(out, d->name, d->help, "counter");
	pthread_mutex_lock(&d->mu);
	for (i = 0; i <= d->cap; i++) {
		if (i == d->n && i < d->cap)
			i = d->cap; /* unused rows: on to "other" */
		for (k = 0; k < PB_M_VALUES && d->outcomes[k] != NULL; k++) {
			pb_buf_printf(out, "%s{%s=\"", d->name, d->label);
			pb_m_escape(out, i < d->cap ? d->rows[i].key : "other");
			pb_buf_printf(out, "\",outcome=\"%s\"} %llu\n", d->outcomes[k],
				      d->rows[i].c[k]);
		}
	}
	pthread_mutex_unlock(&d->mu);
}

int pb_metrics_render(pb_buf *out, pb_family *const *fams, size_t n,
		      pb_counts *const *tables, size_t ntables)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!fams[i]->hidden)
			render_family(out, fams[i]);
	for (i = 0; i < ntables; i++)
		if (tables[i]->rows != NULL)
			render_counts(out, tables[i]);
	return pb_buf_err(out);
}
