#include <pthread.h>
#include <string.h>

#include "pb.h"
#include "version.h"
#include "stdmetrics.h"

pb_family pb_m_build_info = {
	.name = "pb_build_info", .type = PB_GAUGE,
	.help = "1, labelled with the version this program was built from",
	.label = "version", .values = { PB_BUILD_VERSION },
};
pb_family pb_m_start_time = {
	.name = "pb_process_start_time_seconds", .type = PB_GAUGE, .scale = 1000,
	.help = "when this process started, seconds since the epoch",
};
pb_family pb_m_redis_connects = {
	.name = "pb_redis_connections_total", .type = PB_COUNTER,
	.help = "connections made to a confirmed Redis master (the first, and "
		"every reconnect after a drop or a failover)",
};
pb_family pb_m_master_changes = {
	.name = "pb_redis_master_changes_total", .type = PB_COUNTER,
	.help = "times a connection found the master at another address than "
		"before: failovers seen",
};

void pb_stdmetrics_init(void)
{
	pb_m_set(&pb_m_build_info, 0, 1);
	pb_m_set(&pb_m_start_time, 0, pb_wall_ms());
}

/* The master this process last connected to: a failover counts once per
 * process, not once per connection (ingest has one a thread). */
static pthread_mutex_t seen_mu = PTHREAD_MUTEX_INITIALIZER;
static char seen_host[256];
static int seen_port;

void pb_stdmetrics_connected(const char *host, int port)
{
	pb_m_add(&pb_m_redis_connects, 0, 1);
	pthread_mutex_lock(&seen_mu);
	if (seen_port != 0 && (seen_port != port || strcmp(seen_host, host) != 0))
		pb_m_add(&pb_m_master_changes, 0, 1);
	pb_strlcpy(seen_host, host, sizeof(seen_host));
	seen_port = port;
	pthread_mutex_unlock(&seen_mu);
}
