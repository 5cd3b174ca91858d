#include "netpolicy.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "pb.h"

/* The address bytes of sa (4 or 16) and its family; IPv4-mapped IPv6
 * addresses count as the IPv4 address they carry. */
static const unsigned char *addr_bytes(const struct sockaddr *sa, int *family)
{
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
						  0xff, 0xff };

	if (sa->sa_family == AF_INET) {
		*family = AF_INET;
		return (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;
	}
	if (sa->sa_family == AF_INET6) {
		const unsigned char *a =
			((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
		if (memcmp(a, mapped, sizeof(mapped)) == 0) {
			*family = AF_INET;
			return a + 12;
		}
		*family = AF_INET6;
		return a;
	}
	*family = 0;
	return NULL;
}

static int prefix_match(const unsigned char *a, const unsigned char *net,
			int bits)
{
	int full = bits / 8, rest = bits % 8;

	if (memcmp(a, net, (size_t)full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	return ((a[full] ^ net[full]) & (0xff << (8 - rest))) == 0;
}

/* Special-use ranges that must not be reachable from client data. */
static const struct {
	int family;
	const char *net;
	int bits;
} special[] = {
	{ AF_INET, "0.0.0.0", 8 },      { AF_INET, "10.0.0.0", 8 },
	{ AF_INET, "100.64.0.0", 10 },  { AF_INET, "127.0.0.0", 8 },
	{ AF_INET, "169.254.0.0", 16 }, { AF_INET, "172.16.0.0", 12 },
	{ AF_INET, "192.0.0.0", 24 },   { AF_INET, "192.168.0.0", 16 },
	{ AF_INET, "198.18.0.0", 15 },  { AF_INET, "224.0.0.0", 4 },
	{ AF_INET, "240.0.0.0", 4 },
	/* Documentation (TEST-NET-1, -2, -3): never a partner, and a
	 * deployment may number its own networks from them. */
	{ AF_INET, "192.0.2.0", 24 },   { AF_INET, "198.51.100.0", 24 },
	{ AF_INET, "203.0.113.0", 24 },
	/* IPv6: unspecified, loopback and IPv4-compatible (::a.b.c.d); the
	 * prefixes that carry or translate to an IPv4 address (IPv4-translated
	 * ::ffff:0:a.b.c.d, NAT64, 6to4, Teredo), which would reach any IPv4
	 * range above through a gateway; discard-only; documentation; unique
	 * local; site-local (deprecated); link-local; multicast. */
	{ AF_INET6, "::", 96 },         { AF_INET6, "::ffff:0:0:0", 96 },
	{ AF_INET6, "64:ff9b::", 96 },  { AF_INET6, "64:ff9b:1::", 48 },
	{ AF_INET6, "2002::", 16 },     { AF_INET6, "2001::", 32 },
	{ AF_INET6, "100::", 64 },      { AF_INET6, "2001:db8::", 32 },
	{ AF_INET6, "fc00::", 7 },
	{ AF_INET6, "fec0::", 10 },     { AF_INET6, "fe80::", 10 },
	{ AF_INET6, "ff00::", 8 },
};

int pb_addr_is_private(const struct sockaddr *sa)
{
	unsigned char net[16];
	const unsigned char *a;
	int family;
	size_t i;

	if ((a = addr_bytes(sa, &family)) == NULL)
		return 1; /* not IP at all: refuse */
	for (i = 0; i < PB_ARRAY_LEN(special); i++) {
		if (special[i].family != family)
			continue;
		inet_pton(family, special[i].net, net);
		if (prefix_match(a, net, special[i].bits))
			return 1;
	}
	return 0;
}

static int parse_cidr(const char *s, size_t len, pb_cidr *c)
{
	char tmp[64];
	char *slash;
	long bits;

	if (len == 0 || len >= sizeof(tmp))
		return PB_ERR_FORMAT;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	slash = strchr(tmp, '/');
	if (slash)
		*slash = '\0';
	c->family = strchr(tmp, ':') ? AF_INET6 : AF_INET;
	if (inet_pton(c->family, tmp, c->addr) != 1)
		return PB_ERR_FORMAT;
	bits = c->family == AF_INET ? 32 : 128;
	if (slash && pb_parse_long(slash + 1, 0, bits, &bits) != PB_OK)
		return PB_ERR_FORMAT;
	c->bits = (int)bits;
	return PB_OK;
}

/* A list of ranges, "10.1.2.0/24,fd00::/8,192.0.2.7", into out[0..max). */
static int parse_list(const char *s, pb_cidr *out, int max, int *n)
{
	*n = 0;
	while (*s) {
		const char *comma = strchr(s, ',');
		size_t len = comma ? (size_t)(comma - s) : strlen(s);

		while (len > 0 && *s == ' ')
			s++, len--;
		while (len > 0 && s[len - 1] == ' ')
			len--;
		if (*n == max)
			return PB_ERR_LIMIT;
		if (parse_cidr(s, len, &out[*n]) != PB_OK)
			return PB_ERR_FORMAT;
		++*n;
		s = comma ? comma + 1 : s + strlen(s);
	}
	return PB_OK;
}

int pb_netpolicy_init(pb_netpolicy *p, int allow_private, const char *allow,
		      const char *deny)
{
	int rc;

	memset(p, 0, sizeof(*p));
	p->allow_private = allow_private;
	rc = parse_list(allow, p->allow, PB_POLICY_MAX_RANGES, &p->nallow);
	return rc != PB_OK ? rc : parse_list(deny, p->deny, PB_POLICY_MAX_DENIED, &p->ndeny);
}

static int in_ranges(const unsigned char *a, int family, const pb_cidr *r, int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (r[i].family == family && prefix_match(a, r[i].addr, r[i].bits))
			return 1;
	return 0;
}

int pb_netpolicy_allows(const pb_netpolicy *p, const struct sockaddr *sa)
{
	const unsigned char *a;
	int family;

	if ((a = addr_bytes(sa, &family)) == NULL)
		return 0;
	/* Public: anywhere but the cluster's own hosts. */
	if (!pb_addr_is_private(sa))
		return !in_ranges(a, family, p->deny, p->ndeny);
	return p->allow_private || in_ranges(a, family, p->allow, p->nallow);
}
