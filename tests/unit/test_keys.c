/* The key space: every name, and what does not fit. */
#include <string.h>

#include "keys.h"
#include "pb.h"
#include "unit.h"

static void names(void)
{
	pb_keys k;
	char out[PB_KEY_MAX], small[12];

	CHECK(pb_keys_init(&k, "pb") == PB_OK, "init");
	CHECK_STR(k.queue, "pb:queue");
	CHECK_STR(k.scheduled, "pb:scheduled");
	CHECK_STR(k.dead, "pb:dead");
	CHECK_STR(k.agents, "pb:agents");
	CHECK_STR(k.ready, "pb:ready");
	CHECK_STR(k.waiting, "pb:waiting");
	CHECK_STR(k.wake, "pb:wake");
	CHECK_STR(k.queue_stem, "pb:q:");
	CHECK_STR(k.request_stem, "pb:r:");
	CHECK_STR(k.data_stem, "pb:d:");
	CHECK_STR(k.dest_stem, "pb:dest:");
	CHECK_STR(k.clients, "pb:clients");
	CHECK_STR(k.clients_version, "pb:clients-version");
	CHECK(pb_key_join(out, sizeof(out), k.processing_stem, "agent1") == PB_OK, "join");
	CHECK_STR(out, "pb:processing:agent1");
	CHECK(pb_key_join(out, sizeof(out), k.heartbeat_stem, "agent1") == PB_OK, "join");
	CHECK_STR(out, "pb:agent:agent1");
	CHECK(pb_key_join(out, sizeof(out), k.idem_stem, "k-1") == PB_OK, "join");
	CHECK_STR(out, "pb:idem:k-1");
	/* Cut off is an error, never a shorter (other) key. */
	CHECK(pb_key_join(small, sizeof(small), "pb:idem:", "abcd") == PB_ERR_LIMIT, "cut");
}

static void prefix_too_long(void)
{
	char prefix[PB_KEY_MAX];
	pb_keys k;

	memset(prefix, 'p', sizeof(prefix) - 1);
	prefix[sizeof(prefix) - 1] = '\0';
	CHECK(pb_keys_init(&k, prefix) == PB_ERR_LIMIT, "a prefix with no room");
}

void unit_tests(void)
{
	names();
	prefix_too_long();
}
