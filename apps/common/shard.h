/*
 * shard.h - the shards: which Redis groups the queue is spread over, and
 * which of them is a key's home.
 *
 * A shard is one Sentinel-managed Redis group (a master, its replicas),
 * known by its master's name in Sentinel. The master_name setting lists
 * them, comma-separated, in a fixed order: "pb-master" is one shard, today's
 * cluster; "pb-master,pb-master-2" two. Every shard holds the same key
 * space (keys.h) for what was queued there.
 *
 * Where things go (docs/design.md, "Shards"):
 *   - a request without an Idempotency-Key: any shard that takes writes,
 *     in turn (even load; a full or failing shard is passed over);
 *   - a request with one: its key's home shard (pb_shard_home), and only
 *     there, so that a retry meets the first answer wherever it arrives;
 *   - cluster-wide state (client keys, ingest heartbeats): the first shard;
 *   - a closed shard (closed_shards): no new request; agents drain it.
 *
 * The home is rendezvous hashing over the shards' names: adding a shard
 * moves only the keys whose new home it is (about 1/N of them), and the
 * order in which names are listed does not matter.
 */
#ifndef PB_SHARD_H
#define PB_SHARD_H

#include <stddef.h>

#define PB_MAX_SHARDS 16
#define PB_SHARD_NAME_MAX 127

typedef struct pb_shards {
	int n;
	char name[PB_MAX_SHARDS][PB_SHARD_NAME_MAX + 1];
	/* Closed (pb_shards_close): no new requests, while the agents drain
	 * it to retire it; nobody's home. Never the first. */
	unsigned char closed[PB_MAX_SHARDS];
} pb_shards;

/*
 * "name[,name...]" into s: 1 to PB_MAX_SHARDS names of letters, digits,
 * '-', '_' and '.', none twice. PB_OK, or PB_ERR_FORMAT with why in err.
 */
int pb_shards_parse(pb_shards *s, const char *list, char *err, size_t errlen);
/*
 * Close the shards named in "name[,name...]" ("" closes none): each must
 * be one of s's and not the first (which holds the cluster-wide keys).
 * PB_OK, or PB_ERR_FORMAT with why in err.
 */
int pb_shards_close(pb_shards *s, const char *list, char *err, size_t errlen);
/* The index of the shard called name, or -1. */
int pb_shard_find(const pb_shards *s, const char *name);
/* The index of the open shard that is key[0..len)'s home: closing a
 * shard moves only the keys whose home it was. */
int pb_shard_home(const pb_shards *s, const char *key, size_t len);

#endif
