#include "keys.h"

#include <stdio.h>

#include "pb.h"

int pb_key_join(char *out, size_t n, const char *stem, const char *part)
{
	int len = snprintf(out, n, "%s%s", stem, part);

	return len < 0 || (size_t)len >= n ? PB_ERR_LIMIT : PB_OK;
}

int pb_keys_init(pb_keys *k, const char *prefix)
{
	const struct { char *out; const char *name; } keys[] = {
		{ k->queue, ":queue" },
		{ k->ready, ":ready" },
		{ k->waiting, ":waiting" },
		{ k->wake, ":wake" },
		{ k->queue_stem, ":q:" },
		{ k->lanes_stem, ":lanes:" },
		{ k->client_ready_stem, ":cready:" },
		{ k->clients_ready, ":clients-ready" },
		{ k->request_stem, ":r:" },
		{ k->data_stem, ":d:" },
		{ k->dest_stem, ":dest:" },
		{ k->gate_stem, ":gate:" },
		{ k->scheduled, ":scheduled" },
		{ k->dead, ":dead" },
		{ k->agents, ":agents" },
		{ k->processing_stem, ":processing:" },
		{ k->held_stem, ":held:" },
		{ k->heartbeat_stem, ":agent:" },
		{ k->ingest_stem, ":ingest:" },
		{ k->idem_stem, ":idem:" },
		{ k->clients, ":clients" },
		{ k->clients_version, ":clients-version" },
		{ k->client_shares, ":client-shares" },
		{ k->client_waiting, ":client-waiting" },
		{ k->signing, ":signing" },
		{ k->signing_version, ":signing-version" },
		{ k->policies, ":policies" },
		{ k->policies_version, ":policies-version" },
		{ k->metrics_lease, ":metrics-lease" },
	};
	size_t i;

	for (i = 0; i < PB_ARRAY_LEN(keys); i++)
		if (pb_key_join(keys[i].out, PB_KEY_MAX, prefix, keys[i].name) != PB_OK)
			return PB_ERR_LIMIT;
	return PB_OK;
}
