/*
 * destgate.h - with several shards, a destination's breaker and rate for
 * the whole cluster (docs/design.md, "Shards"). Each shard's take and
 * outcomes keep the destination's breaker there as with one shard; on top:
 *
 *   a probe of an open breaker, or a paced take of a destination with a
 *   rate, is granted by the destination's gate on the first shard
 *   (gate.lua): one probe at a time, one paced take a 1/rate, wherever
 *   its postbacks wait (the fetchers ask: destgate_ask);
 *   a breaker that outcomes opened or closed on one shard is written the
 *   same on every shard (breaker_mirror.lua; the recorders tell:
 *   destgate_mirror), which also frees the gate's probe.
 *
 * Any fetcher or recorder calls these, on connections of this module's
 * own (one a shard, each behind a lock of its own, found through Sentinel
 * without waiting out a failover). A shard that did not answer is left
 * alone for a second: while it fails over, an ask is refused (the turn
 * waits) and a mirror to it is lost (that shard's breaker then goes by
 * its own attempts), and no fetcher or recorder waits for it.
 * With one shard none of this is used and nothing changes.
 */
#ifndef PB_DESTGATE_H
#define PB_DESTGATE_H

#include "queue.h"

/* Before the threads start. PB_ERR_NOMEM. */
int destgate_init(void);
void destgate_cleanup(void);
/* Several shards: the take asks the gate (pb_take_gate.shared). */
int destgate_shared(void);
/* The gate's answer to a take's ask for dest: what ("probe" or "pace")
 * and ask_ms (the probe's time or the pace) as the take asked them.
 * *granted 1 or 0, *ms as pb_queue_gate; refused for a second when the
 * first shard does not answer. */
void destgate_ask(const char *dest, const char *what, long ask_ms, int *granted,
		  long *ms);
/* An outcome opened (news->open) or closed dest's breaker on one shard:
 * the same on every shard, that one too (which frees the gate's probe). */
void destgate_mirror(const char *dest, const pb_breaker_news *news);

#endif
