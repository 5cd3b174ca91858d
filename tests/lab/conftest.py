"""The lab's tests run against machines that `make lab` (run.sh) made and
provisioned with site.yml; they talk to them over SSH and through HAProxy,
as an operator would."""
import json
import os
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import lab as machines  # noqa: E402

ROOT = machines.ROOT
ANSIBLE = os.path.join(ROOT, "ansible")
SECRETS = os.path.join(ANSIBLE, "secrets", "lab")
RECEIVER_PORT = 8090
# Hosts whose clients reach Redis and the Sentinels through stunnel with
# pb_tls (roles/cluster/defaults/main.yml, pb_tls_tunnel_groups).
TUNNEL_GROUPS = ("ingest", "agent", "redis", "monitoring")


class Lab:
    def __init__(self):
        # What site.yml has deployed: the first shard's inventory until a
        # test adds the second (deployed()).
        self.inventories = [machines.INVENTORY]
        self.deployed(self.inventories)

    def deployed(self, inventories):
        """The machines and groups of these inventory sources are the
        cluster now (site.yml ran with them)."""
        self.inventories = list(inventories)
        inv = machines.Inventory(self.inventories)
        self.bridge, self.hosts, self.groups = inv.bridge, inv.hosts, inv.groups
        self.tls = inv.tls
        self.lb = self.hosts[self.groups["lb"][0]]
        self.receiver = self.hosts[self.groups["lab_receiver"][0]]
        # The lab's HAProxy speaks TLS on the client port, with a certificate
        # run.sh made for the lab (pb_haproxy_tls_cert in its inventory).
        self.endpoint = f"https://{self.lb}:8080/ingest"
        self.cacert = os.path.join(ROOT, "run", "lab", "tls", "cert.pem")

    def ssh(self, name, *cmd, check=True, timeout=120, input=None):
        return machines.ssh(self.hosts[name], *cmd, check=check, timeout=timeout, input=input)

    def secret(self, user):
        with open(os.path.join(SECRETS, user)) as f:
            return f.read().strip()

    def cli(self, name):
        """redis-cli and its options for name's own Redis or Sentinel, at
        the host's address: in clear where stunnel carries it (pb_tls: the
        hosts of pb_tls_tunnel_groups), with TLS itself elsewhere."""
        tunnelled = any(name in self.groups.get(g, []) for g in TUNNEL_GROUPS)
        tls = ["--tls", "--cacert", "/etc/postback/tls/ca.pem"] if self.tls and not tunnelled else []
        return ["redis-cli", "--no-auth-warning", *tls, "-h", self.hosts[name]]

    def redis_cli(self, name, *args, sentinel=False, check=True):
        """redis-cli on a Redis or Sentinel host, to its own Redis or Sentinel."""
        if sentinel:
            env, user, port = self.secret("sentinel_client"), ["--user", "client"], "26390"
        else:
            env, user, port = self.secret("admin"), ["--user", "admin"], "6390"
        # The password on redis-cli's standard input (--askpass), as the
        # roles give it: no secret on a command line here either.
        p = self.ssh(name, *self.cli(name), "--askpass", *user, "-p", port, *args,
                     check=check, timeout=20, input=env + "\n")
        return p.stdout.split()

    def master(self, shard="pbmaster"):
        """The shard's master's host name, as a majority of the Sentinels
        names it (one that was cut off may still name an old master), or
        None."""
        by_addr = {a: n for n, a in self.hosts.items()}
        named = []
        for name in self.groups["sentinel"]:
            try:
                out = self.redis_cli(name, "SENTINEL", "get-master-addr-by-name",
                                     shard, sentinel=True, check=False)
            except (RuntimeError, subprocess.TimeoutExpired):
                continue
            if len(out) == 2:
                named.append(by_addr.get(out[0]))
        need = len(self.groups["sentinel"]) // 2 + 1
        return next((n for n in set(named) if n and named.count(n) >= need), None)

    def received(self):
        """{postback id: times received} from the receiver's log."""
        out = self.ssh("receiver", "cat", "/root/received.jsonl", check=False).stdout
        seen = {}
        for line in out.splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            seen[rec["id"]] = seen.get(rec["id"], 0) + 1
        return seen

    def wait_received(self, ids, timeout=90):
        deadline = time.time() + timeout
        while True:
            seen = self.received()
            missing = [i for i in ids if i not in seen]
            if not missing or time.time() > deadline:
                return seen, missing
            time.sleep(1)


@pytest.fixture(scope="session")
def lab():
    lab = Lab()
    # The endpoint postbacks are delivered to: receiver.py on its own host.
    key = machines.KEY
    subprocess.run(["scp", "-q", "-i", key] + machines.SSH_OPTS +
                   [os.path.join(ROOT, "scripts", "receiver.py"),
                    f"root@{lab.receiver}:/root/receiver.py"], check=True)
    lab.ssh("receiver", "systemctl stop pb-receiver 2>/dev/null; rm -f /root/received.jsonl; "
            f"systemd-run --quiet --unit=pb-receiver /usr/bin/python3 /root/receiver.py "
            f"--bind 0.0.0.0 --port {RECEIVER_PORT} --log /root/received.jsonl")
    # A client key, issued as an operator would: pbctl on a Redis host.
    key = lab.ssh(lab.groups["redis"][0], "pbctl", "keys", "add", "lab-tests").stdout.strip()
    lab.auth = {"Authorization": "Bearer " + key}
    time.sleep(1.5)  # the ingest nodes reload keys every 500 ms
    return lab
