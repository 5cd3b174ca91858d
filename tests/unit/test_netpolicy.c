/* Which destination addresses the agent may reach. */
#include <arpa/inet.h>

#include "netpolicy.h"
#include "pb.h"
#include "unit.h"

static int allows(const pb_netpolicy *p, const char *ip)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (strchr(ip, ':')) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		a->sin6_family = AF_INET6;
		inet_pton(AF_INET6, ip, &a->sin6_addr);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		a->sin_family = AF_INET;
		inet_pton(AF_INET, ip, &a->sin_addr);
	}
	return pb_netpolicy_allows(p, (struct sockaddr *)&ss);
}

void unit_tests(void)
{
	static const struct { const char *ip; int allowed; } cases[] = {
		{ "93.184.216.34", 1 }, { "8.8.8.8", 1 }, { "2001:db8::1", 0 },
		{ "127.0.0.1", 0 },     { "10.1.2.3", 0 }, { "172.16.0.1", 0 },
		{ "172.31.255.255", 0 }, { "172.32.0.1", 1 }, { "192.168.1.1", 0 },
		{ "169.254.169.254", 0 }, { "100.64.0.1", 0 }, { "0.0.0.0", 0 },
		{ "224.0.0.1", 0 },     { "::1", 0 },      { "::", 0 },
		{ "fe80::1", 0 },       { "fd00::1", 0 },  { "::ffff:127.0.0.1", 0 },
		{ "::ffff:93.184.216.34", 1 },
		/* IPv6 ways to an IPv4 address, and older special ranges */
		{ "::7f00:1", 0 },            /* IPv4-compatible ::127.0.0.1 */
		{ "64:ff9b::7f00:1", 0 },     /* NAT64 of 127.0.0.1 */
		{ "64:ff9b::5db8:d822", 0 },  /* NAT64 of a public one: still via a gateway */
		{ "64:ff9b:1::a00:1", 0 },    /* local-use NAT64 */
		{ "2002:7f00:1::1", 0 },      /* 6to4 */
		{ "2001:0:4136:e378::1", 0 }, /* Teredo */
		{ "100::1", 0 },              /* discard-only */
		{ "fec0::1", 0 },             /* site-local */
		{ "2606:4700::1111", 1 },     /* an ordinary global address */
		{ "::ffff:0:7f00:1", 0 },     /* IPv4-translated 127.0.0.1 */
		{ "::ffff:0:808:808", 0 },    /* IPv4-translated, even of a public address */
		{ "192.0.2.1", 0 },           /* documentation (TEST-NET-1) */
		{ "198.51.100.7", 0 },        /* TEST-NET-2 */
		{ "203.0.113.200", 0 },       /* TEST-NET-3 */
		{ "2001:4860::8888", 1 },     /* next to Teredo, not in it */
	};
	pb_netpolicy p;
	size_t i;

	CHECK(pb_netpolicy_init(&p, 0, "", "") == PB_OK, "empty allow list");
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		CHECK(allows(&p, cases[i].ip) == cases[i].allowed, "%s", cases[i].ip);
	CHECK(pb_netpolicy_init(&p, 0, "10.1.0.0/16, 127.0.0.1,fd00::/8", "") == PB_OK,
	      "allow list parses");
	CHECK(allows(&p, "10.1.2.3") && !allows(&p, "10.2.0.1"), "cidr");
	CHECK(allows(&p, "127.0.0.1") && !allows(&p, "127.0.0.2"), "host");
	CHECK(allows(&p, "fd12::1") && !allows(&p, "fe80::1"), "v6 cidr");
	CHECK(pb_netpolicy_init(&p, 1, "", "") == PB_OK && allows(&p, "127.0.0.1"),
	      "allow_private");
	CHECK(pb_netpolicy_init(&p, 0, "10.0.0.0/33", "") == PB_ERR_FORMAT, "bad prefix");
	CHECK(pb_netpolicy_init(&p, 0, "10.0.0.0/", "") == PB_ERR_FORMAT, "no prefix");
	CHECK(pb_netpolicy_init(&p, 0, "nonsense", "") == PB_ERR_FORMAT, "bad address");
	/* The cluster's own public hosts are refused; private ones go by
	 * allow_private and the allow list as before (a local cluster's
	 * 127.0.0.1 stays reachable when allowed). */
	CHECK(pb_netpolicy_init(&p, 1, "", "203.0.114.7, 198.51.101.0/24,2a00:1450::/32,127.0.0.1") ==
	      PB_OK, "deny list parses");
	CHECK(!allows(&p, "203.0.114.7") && allows(&p, "203.0.114.8"), "a host of the cluster");
	CHECK(!allows(&p, "198.51.101.200") && !allows(&p, "2a00:1450::1"), "its ranges");
	CHECK(allows(&p, "127.0.0.1") && allows(&p, "8.8.8.8"), "private allowed, others public");
	CHECK(pb_netpolicy_init(&p, 0, "", "203.0.114.7/40") == PB_ERR_FORMAT, "bad deny");
}
