"""Hosts as network namespaces on one private bridge (see the test-hosts
notes): each host of the topology gets its namespace, a veth into the
bridge and its address. The build machine keeps the bridge's gateway
address, so the drill runner reaches every host. Everything made here is
removed by down(), also after a failure."""
import ipaddress
import subprocess
import time

from pbcluster import HOST_GROUPS


def run(*cmd, check=True):
    return subprocess.run(cmd, check=check, capture_output=True, text=True)


class NetLab:
    def __init__(self, topo):
        net = topo["network"]
        self.bridge = net["bridge"]
        self.gateway = net["gateway"]
        self.prefix = ipaddress.ip_interface(self.gateway).network.prefixlen
        hosts = {}
        for group in HOST_GROUPS:
            for n in topo[group]:
                hosts[n["netns"]] = n["host"]
        for shard in topo.get("shards") or []:
            for n in shard["redis_nodes"]:
                hosts[n["netns"]] = n["host"]
        for single in ("lb", "receiver", "client"):
            hosts[topo[single]["netns"]] = topo[single]["host"]
        self.hosts = hosts  # netns -> address

    @staticmethod
    def veth(ns):
        return ("v" + ns)[:15]

    def up(self):
        self.down()
        run("ip", "link", "add", self.bridge, "type", "bridge")
        run("ip", "addr", "add", self.gateway, "dev", self.bridge)
        run("ip", "link", "set", self.bridge, "up")
        for ns, addr in self.hosts.items():
            run("ip", "netns", "add", ns)
            run("ip", "link", "add", self.veth(ns), "type", "veth", "peer", "name",
                "eth0", "netns", ns)
            run("ip", "link", "set", self.veth(ns), "master", self.bridge, "up")
            run("ip", "-n", ns, "addr", "add", "%s/%d" % (addr, self.prefix), "dev", "eth0")
            run("ip", "-n", ns, "link", "set", "eth0", "up")
            run("ip", "-n", ns, "link", "set", "lo", "up")

    def down(self):
        for ns in self.hosts:
            # Deleting the namespace frees its veth only later: delete the
            # pair now, so that up() can make it again at once.
            run("ip", "link", "del", self.veth(ns), check=False)
            run("ip", "netns", "del", ns, check=False)
        run("ip", "link", "del", self.bridge, check=False)
        deadline = time.time() + 10
        while time.time() < deadline and any(
                run("ip", "link", "show", self.veth(ns), check=False).returncode == 0
                for ns in self.hosts):
            time.sleep(0.1)

    def cut(self, ns, others):
        """Partition host ns from the hosts (namespaces) in others, both ways."""
        for o in others:
            run("ip", "-n", ns, "route", "add", "blackhole", self.hosts[o] + "/32")
            run("ip", "-n", o, "route", "add", "blackhole", self.hosts[ns] + "/32")

    def heal(self, ns, others):
        for o in others:
            run("ip", "-n", ns, "route", "del", "blackhole", self.hosts[o] + "/32",
                check=False)
            run("ip", "-n", o, "route", "del", "blackhole", self.hosts[ns] + "/32",
                check=False)
