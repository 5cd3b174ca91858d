/*
 * clients.h - the client keys this ingest node accepts.
 *
 * A copy of <p>:clients (keys.h, clientkey.h), with each client's share of
 * the queue from <p>:client-shares, in memory, so that checking a
 * request's key costs no round trip: a thread of its own asks Redis for
 * <p>:clients-version every client_keys_refresh_ms and reloads the hash
 * when it changed (pbctl raises it with every change), when the master
 * changed, and once a minute regardless. A revoked key is refused within
 * client_keys_refresh_ms plus one reload. The table answers only while
 * Redis confirmed it (its version read, and reloaded if it moved) within
 * the last 40 refreshes (20 s by default): a node that cannot reload
 * (the hash unreadable, Redis unreachable) refuses every key (503) rather
 * than keep a revoked one working.
 *
 * The same thread writes the node's heartbeat, <p>:ingest:<node> (keys.h),
 * every NODE_BEAT_MS: its pid, version and address, for `pbctl status`.
 */
#ifndef PB_CLIENTS_H
#define PB_CLIENTS_H

#include <stdatomic.h>

#include "clientkey.h"
#include "config.h"
#include "keys.h"

/* Start the thread; node names this node (its heartbeat's key). PB_OK,
 * or PB_ERR_NOMEM if it cannot start. */
int pb_clients_start(const pb_config *cfg, const pb_keys *k, const char *node,
		     const atomic_int *stopping);
void pb_clients_stop(void);
/*
 * The client whose key hashes to hash (clientkey.h) into name, and the
 * share of the queue an operator gave it into *share (pbctl keys share;
 * 0: the default, client_share_pct): PB_OK;
 * PB_ERR_NOTFOUND, no such key; PB_ERR_IO, the keys have not been loaded
 * yet (Redis not reached since the start); PB_ERR_TIMEOUT, Redis has not
 * confirmed them for 40 refreshes.
 */
int pb_clients_lookup(const char *hash, char name[PB_CLIENT_NAME_MAX + 1],
		      long *share);

#endif
