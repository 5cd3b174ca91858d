/*
 * netpolicy.h - which addresses the agent may deliver to.
 *
 * A postback's URL comes from a client, so without a policy any client
 * could make the agents call into the operator's own network. Loopback,
 * private (RFC 1918, RFC 4193), link-local, CGNAT, unspecified and
 * multicast addresses are refused unless allow_private is set or the
 * address falls in an allow-listed CIDR range. The check runs on the
 * address curl is about to connect to, after DNS, so a name that resolves
 * to a private address is refused too. The cluster's own hosts are
 * refused too where their addresses are public (deny: the roles list
 * them), so that no client can make the agents call HAProxy, Redis or a
 * metrics port of the cluster by its public address.
 */
#ifndef PB_NETPOLICY_H
#define PB_NETPOLICY_H

#include <netinet/in.h>
#include <sys/socket.h>

#define PB_POLICY_MAX_RANGES 32
#define PB_POLICY_MAX_DENIED 1024

typedef struct pb_cidr {
	int family;             /* AF_INET or AF_INET6 */
	unsigned char addr[16];
	int bits;
} pb_cidr;

typedef struct pb_netpolicy {
	int allow_private;
	pb_cidr allow[PB_POLICY_MAX_RANGES];
	int nallow;
	pb_cidr deny[PB_POLICY_MAX_DENIED];
	int ndeny;
} pb_netpolicy;

/* Parse "10.1.2.0/24,fd00::/8,192.0.2.7" into p->allow, and the same form
 * into p->deny (public addresses refused all the same): PB_OK,
 * PB_ERR_FORMAT (bad input) or PB_ERR_LIMIT (too many ranges). */
int pb_netpolicy_init(pb_netpolicy *p, int allow_private, const char *allow,
		      const char *deny);
/* 1 if the address is special-use (loopback, private, link-local...). */
int pb_addr_is_private(const struct sockaddr *sa);
/* 1 if the agent may connect to sa. */
int pb_netpolicy_allows(const pb_netpolicy *p, const struct sockaddr *sa);

#endif
