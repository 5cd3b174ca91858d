#!/usr/bin/python3
"""egress_ranges - the agents' egress firewall (the firewall role's
nftables.conf.j2) refuses exactly the ranges pb-agent refuses itself
(apps/agent/netpolicy.c): two lines of one policy must not drift apart."""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
    with open(os.path.join(ROOT, "apps", "agent", "netpolicy.c")) as f:
        c = {"%s/%s" % (net, bits) for net, bits in
             re.findall(r'\{ AF_INET6?, "([0-9a-f.:]+)", (\d+) \}', f.read())}
    with open(os.path.join(ROOT, "ansible", "roles", "firewall", "templates",
                           "nftables.conf.j2")) as f:
        nft = set()
        for line in f:
            if "reject" in line and re.search(r"ip6? daddr \{", line):
                nft |= {r.strip() for r in line.split("{", 1)[1].split("}")[0].split(",")}
    if c != nft:
        print("egress-ranges: netpolicy.c only: %s; nftables.conf.j2 only: %s"
              % (sorted(c - nft), sorted(nft - c)))
        return 1
    print("egress-ranges: %d ranges, the same in netpolicy.c and the firewall" % len(c))
    return 0


if __name__ == "__main__":
    sys.exit(main())
