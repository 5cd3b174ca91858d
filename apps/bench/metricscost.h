/*
 * metricscost.h - pb-bench --metrics-cost N: what the metrics cost an
 * agent per postback, on this machine, without a cluster: the updates one
 * delivered postback makes (metrics.h: a response class, the attempt's
 * histogram, the destination table, the outcome, the latency histogram),
 * N times, over a full destination table. make bench-metrics sets it
 * beside the CPU an agent spends on a postback.
 */
#ifndef PB_METRICSCOST_H
#define PB_METRICSCOST_H

/* Prints ns per postback (and per scrape of a full page); 0 or 1. */
int pb_metrics_cost(long n);

#endif
