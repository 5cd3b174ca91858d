/* pbctl's reading of INFO replication. */
#include "pb.h"
#include "replinfo.h"
#include "unit.h"

static void parses(void)
{
	static const char text[] =
		"# Replication\r\nrole:master\r\nconnected_slaves:2\r\n"
		"min_slaves_good_slaves:2\r\n"
		"slave0:ip=192.168.56.22,port=6390,state=online,offset=900,lag=0\r\n"
		"slave1:ip=192.168.56.23,port=6390,state=wait_bgsave,offset=0,lag=1\r\n"
		"master_failover_state:no-failover\r\nmaster_repl_offset:1000\r\n"
		"second_repl_offset:-1\r\n";
	pb_repl_info info;

	CHECK(pb_repl_info_parse(text, &info) == PB_OK, "parse");
	CHECK(info.master_offset == 1000, "%ld", info.master_offset);
	CHECK(info.nreplicas == 2, "%d", info.nreplicas);
	CHECK_STR(info.replicas[0].ip, "192.168.56.22");
	CHECK(info.replicas[0].port == 6390 && info.replicas[0].offset == 900, "r0");
	CHECK_STR(info.replicas[1].state, "wait_bgsave");
	/* Only online replicas count: 100 bytes behind, not 1000. */
	CHECK(pb_repl_info_behind(&info) == 100, "%ld", pb_repl_info_behind(&info));
}

static void refuses(void)
{
	static const char *bad[] = {
		"role:master\r\n",                                  /* no offset */
		"master_repl_offset:x\r\n",
		"master_repl_offset:5\r\nslave0:ip=a,port=1,state=online,offset=z,lag=0\r\n",
		"master_repl_offset:5\r\nslave0:ip=a,port=1,offset=3,lag=0\r\n",
	};
	pb_repl_info info;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(pb_repl_info_parse(bad[i], &info) == PB_ERR_FORMAT, "'%s'", bad[i]);
	CHECK(pb_repl_info_parse("master_repl_offset:7\n", &info) == PB_OK, "no replicas");
	CHECK(pb_repl_info_behind(&info) == -1, "none online");
}

void unit_tests(void)
{
	parses();
	refuses();
}
