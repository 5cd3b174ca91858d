#!/usr/bin/python3
"""pbcluster - the local postback cluster: render its configs, supervise it.

    pbcluster.py up        start whatever is not running; return once the
                           endpoint answers (starts the supervisor if needed)
    pbcluster.py down      stop everything (gracefully: SIGTERM, then wait)
    pbcluster.py status    what runs, with PIDs, and who is master
    pbcluster.py stop NAME   stop one program and keep it stopped
    pbcluster.py start NAME  let the supervisor start it again

Topology and settings come from cluster/local.yml. State (configs, data,
logs, secrets, pid files) lives under the state folder, ./run by default.
Environment: PB_STATE_DIR (state folder), PB_PORT_OFFSET (added to every
port, so a test cluster can run beside `make run`), PB_RECEIVER=0 (no demo
receiver), PB_SHARDS=N (N shards, each a Redis group of its own under the
same Sentinels: the topology's first redis_nodes, then its shards; `make run
SHARDS=2`; a state folder keeps the number it was made with).

The supervisor restarts a program that exits, as systemd's Restart=always
would, with a back-off of 1 s doubling to 10 s while it keeps failing.
"""
import hashlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import jinja2
import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pbkeys import Keys, queue_size  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PASSWORD_USERS = ("admin", "operator", "replication", "sentinel", "sentinel_client",
                  "sentinel_peer", "sentinel_operator", "ingest", "agent", "monitor")
STOP_ORDER = ("monitor", "haproxy", "receiver", "ingest", "agent", "sentinel", "redis")
CHART_JS = "/usr/share/javascript/chart.js/chart.min.js"  # Debian's libjs-chart.js
# The daemons and pbctl; PB_BIN_DIR=build/asan runs the sanitizer builds
# (make integration-asan).
BIN_DIR = os.environ.get("PB_BIN_DIR") or os.path.join(ROOT, "build")
# The roles' defaults and the templates the daemons' configurations are made
# from; PB_CONF_ROOT=<another tree> with its PB_BIN_DIR runs that commit's
# cluster (make bench-parts BENCH_AGAINST=<commit>).
CONF_ROOT = os.environ.get("PB_CONF_ROOT") or ROOT
STOP_TIMEOUT_S = 30
# The topology's lists of hosts, each host with a name, an address and a port.
HOST_GROUPS = ("ingest_nodes", "redis_nodes", "sentinels", "agents")
# The Ansible roles whose defaults are the settings' defaults here too.
ROLES = ("cluster", "redis", "sentinel", "haproxy", "ingest", "agent")


def ansible_filters(env):
    """The filters of Ansible's that the roles' templates use, for a jinja2
    Environment that renders them here."""
    # hash: the ACL users' passwords (stored hashed).
    env.filters["hash"] = lambda s, alg: hashlib.new(alg, s.encode()).hexdigest()
    # bool: settings given as "true"/"false" (-e name=value) or as booleans.
    env.filters["bool"] = lambda v: (v if isinstance(v, bool) else
                                     str(v).lower() in ("true", "yes", "on", "1"))
    return env


def merge(base, over):
    """over on top of base: dicts merge key by key, anything else replaces."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = merge(base.get(k), v) if k in base else v
        return out
    return over


def role_defaults():
    """Every setting's default, as the Ansible roles' defaults/main.yml name
    it: the one place defaults live. Values that Ansible computes per host
    (Jinja expressions) are left out; the topology gives those."""
    out = {}
    for role in ROLES:
        with open(os.path.join(CONF_ROOT, "ansible", "roles", role, "defaults",
                               "main.yml")) as f:
            for k, v in (yaml.safe_load(f) or {}).items():
                if "{{" not in str(v):
                    out[k] = v
    return out


def load_topology(path):
    """A topology file, on top of the one its 'base' names (if any), with
    every host filled in: each node, the load balancer and the receiver get
    a host address (default: bind) and a network namespace (default: none).
    Its vars go on top of the roles' defaults."""
    with open(path) as f:
        topo = yaml.safe_load(f)
    if "base" in topo:
        topo = merge(load_topology(os.path.join(os.path.dirname(path), topo.pop("base"))),
                     topo)
    else:
        topo["vars"] = dict(role_defaults(), **(topo.get("vars") or {}))
    where = {"host": topo["bind"], "netns": None}
    topo["agents"] = [a if isinstance(a, dict) else {"name": a} for a in topo["agents"]]
    for group in HOST_GROUPS:
        topo[group] = [dict(where, **n) for n in topo[group]]
    topo["shards"] = [dict(s, redis_nodes=[dict(where, **n) for n in s["redis_nodes"]])
                      for s in topo.get("shards") or []]
    for single in ("lb", "receiver"):
        topo[single] = dict(where, **(topo.get(single) or {}))
    return topo


def metrics_listen(node):
    """A daemon's metrics_listen: its host and metrics_port ("" = off)."""
    return "%s:%d" % (node["host"], node["metrics_port"]) if "metrics_port" in node else ""


def shift_ports(value, offset):
    """Add offset to every integer under a key that names a port."""
    if isinstance(value, dict):
        return {k: (v + offset if (k == "port" or k.endswith("_port"))
                    and isinstance(v, int) else shift_ports(v, offset))
                for k, v in value.items()}
    if isinstance(value, list):
        return [shift_ports(v, offset) for v in value]
    return value


# Where each cluster the repository starts puts its ports (added to those
# of the topology), so that any of them runs beside any other: no port of
# one is a port of another, and none lies in the kernel's range for
# outgoing connections (tests/lint/port_offsets.py checks both).
PORT_OFFSETS = {
    "run": 0,                # make run
    "test": 2000,            # make test's session cluster (tests/integration)
    "test-shards": 2500,     # test_shards.py's two-shard cluster
    "test-metrics": 4000,    # test_metrics.py's cluster with Prometheus
    "bench": 5100,           # make bench, make bench-metrics
    "bench-parts": 5500,     # make bench-parts
    "outage": 6000,          # make outage (tests/outage)
}


def ports_of(value):
    """Every port named in a topology (see shift_ports)."""
    if isinstance(value, dict):
        for k, v in value.items():
            if (k == "port" or k.endswith("_port")) and isinstance(v, int):
                yield v
            else:
                yield from ports_of(v)
    elif isinstance(value, list):
        for v in value:
            yield from ports_of(v)


def ephemeral_range():
    """The kernel's range of local ports for outgoing connections."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = f.read().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def check_ports(topo, offset):
    """Refuse ports the kernel may hand to an outgoing connection: a
    daemon started later finds its port taken by some client's socket
    (a CI run lost a cluster's Sentinels that way, at port 36890)."""
    low, high = ephemeral_range()
    clash = sorted(p for p in set(ports_of(topo)) if low <= p <= high)
    if clash:
        raise ValueError("port offset %d puts ports %s in the kernel's range for "
                         "outgoing connections (%d-%d, net.ipv4.ip_local_port_range): "
                         "choose an offset that keeps them below %d"
                         % (offset, ", ".join(map(str, clash)), low, high, low))


class Program:
    def __init__(self, name, kind, argv, conf, netns=None, env=None):
        self.name, self.kind, self.conf, self.env = name, kind, conf, env
        # "ip netns exec" execs the program: the PID stays the program's.
        self.argv = (["ip", "netns", "exec", netns] + argv) if netns else argv
        self.next_start = 0.0
        self.backoff = 1.0
        self.started_at = 0.0


class Cluster:
    def __init__(self, state=None, offset=None, overrides=None,
                 receiver=None, topology=None, metrics=None, shards=None):
        self.state = os.path.abspath(state or os.environ.get(
            "PB_STATE_DIR", os.path.join(ROOT, "run")))
        # A state folder remembers how its cluster was made, so that the
        # supervisor and later commands (status, down) see the same one.
        saved = os.path.join(self.state, "cluster.json")
        if os.path.exists(saved) and offset is None and overrides is None:
            with open(saved) as f:
                s = json.load(f)
            offset, overrides, receiver = s["offset"], s["overrides"], s["receiver"]
            saved_topology, metrics = s.get("topology"), s.get("metrics", True)
            shards = s.get("shards", 1)
        else:
            saved_topology = None
        shards = int(shards or os.environ.get("PB_SHARDS") or 1)
        self.overrides = overrides or {}
        self.offset = int(offset if offset is not None
                          else os.environ.get("PB_PORT_OFFSET", "0"))
        self.topology = os.path.abspath(topology or saved_topology or
                                        os.path.join(ROOT, "cluster", "local.yml"))
        topo = shift_ports(load_topology(self.topology), self.offset)
        check_ports(topo, self.offset)
        topo["vars"].update(overrides or {})
        # metrics: True (default) everything; "endpoints": the daemons'
        # /metrics but no Prometheus nor exporter; False: none of it (make
        # bench-metrics compares them).
        self.metrics = True if metrics is None else metrics
        if self.metrics is not True:
            topo.pop("prometheus_port", None)
        if self.metrics is False:
            for n in topo["ingest_nodes"] + topo["agents"]:
                n.pop("metrics_port", None)
        # The shards: the first is the topology's redis_nodes under
        # pb_master_name, the others its shards, as many as asked for.
        if not 1 <= shards <= 1 + len(topo["shards"]):
            raise ValueError("%d shards asked for; the topology %s has %d"
                             % (shards, self.topology, 1 + len(topo["shards"])))
        self.shards = [{"name": topo["vars"]["pb_master_name"],
                        "redis_nodes": topo["redis_nodes"]}] + topo["shards"][:shards - 1]
        self.topo = topo
        self.receiver = (os.environ.get("PB_RECEIVER", "1") != "0"
                         if receiver is None else receiver)
        self.bind = topo["bind"]
        for sub in ("conf", "data", "log", "pid", "secrets", "disabled"):
            os.makedirs(self.path(sub), exist_ok=True)
        with open(saved + ".tmp", "w") as f:
            json.dump({"offset": self.offset, "overrides": self.overrides,
                       "receiver": self.receiver, "topology": self.topology,
                       "metrics": self.metrics, "shards": len(self.shards)}, f)
        os.replace(saved + ".tmp", saved)

    # ---- paths and names ------------------------------------------------
    def path(self, *parts):
        return os.path.join(self.state, *parts)

    @property
    def endpoint(self):
        return "http://%s:%d" % (self.topo["lb"]["host"], self.topo["haproxy_port"])

    @property
    def tls_endpoint(self):
        """The endpoint over TLS (its certificate: tls/cert.pem), or None."""
        port = self.topo.get("haproxy_tls_port")
        return "https://%s:%d" % (self.topo["lb"]["host"], port) if port else None

    def make_tls(self):
        """A self-signed certificate for HAProxy's TLS port, made once:
        tls/haproxy.pem (certificate and key, for HAProxy), tls/cert.pem
        (for clients to verify it with)."""
        d = self.path("tls")
        pem = os.path.join(d, "haproxy.pem")
        if os.path.exists(pem):
            return pem
        os.makedirs(d, mode=0o700, exist_ok=True)
        cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-days", "825",
                        "-subj", "/CN=postback local cluster", "-addext",
                        "subjectAltName=IP:%s,IP:127.0.0.1" % self.topo["lb"]["host"],
                        "-keyout", key, "-out", cert],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        fd = os.open(pem + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(open(cert).read() + open(key).read())
        os.replace(pem + ".tmp", pem)
        return pem

    @property
    def receiver_url(self):
        return "http://%s:%d" % (self.topo["receiver"]["host"], self.topo["receiver_port"])

    @property
    def agent_names(self):
        return [a["name"] for a in self.topo["agents"]]

    def key(self, name):
        """A Redis key of the cluster's key space (apps/common/keys.h), e.g.
        key('queue')."""
        return "%s:%s" % (self.topo["vars"]["pb_key_prefix"], name)

    @property
    def keys(self):
        """The key space's names (scripts/pbkeys.py, from keys.c)."""
        return Keys(self.topo["vars"]["pb_key_prefix"])

    def queue_size(self, m=None):
        """What max_queue_size bounds, on m or the master."""
        return queue_size(m or self.master(), self.keys)

    def password(self, user):
        with open(self.path("secrets", user + ".pass")) as f:
            return f.read().strip()

    @property
    def client_key(self):
        """The local client's key (secrets/client.key; `pbctl keys add`
        issued it when the cluster first came up)."""
        with open(self.path("secrets", "client.key")) as f:
            return f.read().strip()

    @property
    def auth(self):
        """The header that carries the local client's key."""
        return {"Authorization": "Bearer " + self.client_key}

    def ensure_client_key(self, name="local"):
        """A client key for this cluster in secrets/client.key, issued with
        `pbctl keys add` the first time; registered again (its hash, as
        pbctl writes it) if Redis lost it, e.g. to a test's FLUSHALL. Then
        waits until the ingest nodes had time to load it."""
        path = self.path("secrets", "client.key")
        if not os.path.exists(path):
            p = self.pbctl("keys", "add", name)
            if p.returncode != 0:
                raise RuntimeError("pbctl keys add: %s" % p.stderr)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(p.stdout.strip() + "\n")
        else:
            h = hashlib.sha256(self.client_key.encode()).hexdigest()
            m = self.master()
            if m.hexists(self.key("clients"), h):
                return
            m.hset(self.key("clients"), h, "%s %d" % (name, time.time() * 1000))
            m.incr(self.key("clients-version"))
        # Ingest nodes look for changes every client_keys_refresh_ms (500).
        time.sleep(1.2)

    def sentinel_addrs(self):
        return [(n["host"], n["port"]) for n in self.topo["sentinels"]]

    def node_at(self, host, port):
        """The name of the Redis node at host:port, or None."""
        return next((n["name"] for n in self.redis_nodes
                     if n["host"] == host and n["port"] == int(port)), None)

    # ---- rendering --------------------------------------------------------
    def make_secrets(self):
        for user in PASSWORD_USERS:
            p = self.path("secrets", user + ".pass")
            if not os.path.exists(p):
                fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as f:
                    f.write(secrets.token_hex(24) + "\n")

    @property
    def redis_nodes(self):
        """Every shard's Redis nodes."""
        return [n for s in self.shards for n in s["redis_nodes"]]

    def template_vars(self):
        v = dict(self.topo["vars"])
        v["pb_master_names"] = [s["name"] for s in self.shards]
        v["pb_sentinels"] = ",".join("%s:%d" % a for a in self.sentinel_addrs())
        # What the inventory's groups give the roles (cluster role,
        # defaults): every host of the cluster, the receiver aside.
        hosts = [n["host"] for g in HOST_GROUPS for n in self.topo[g]]
        hosts += [n["host"] for n in self.redis_nodes] + [self.topo["lb"]["host"]]
        v["pb_cluster_addresses"] = sorted(set(hosts))
        v["pb_monitoring_addresses"] = []
        v["pb_secrets_dir"] = self.path("secrets")
        v["redis_passwords"] = {u: self.password(u) for u in PASSWORD_USERS}
        return v

    def render(self, template, out, extra, once=False, keep=None):
        """Render template to out. once: never again once it exists (Sentinel
        owns its file after the first start). keep: a function that carries
        what the program learned at run time from the old file into the new
        text (Redis: its replicaof line)."""
        if once and os.path.exists(out):
            return
        # The templates' own folder too: what they include is named as the
        # roles' templates folders (which hold them all) name it.
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(
                                     [CONF_ROOT,
                                      os.path.dirname(os.path.join(CONF_ROOT, template))]),
                                 undefined=jinja2.StrictUndefined,
                                 keep_trailing_newline=True, trim_blocks=True)
        ansible_filters(env)
        text = env.get_template(template).render(**extra)
        if keep and os.path.exists(out):
            with open(out) as f:
                text = keep(f.read(), text)
        tmp = out + ".tmp"
        # Owner only: the configs hold the Redis and Sentinel passwords.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, out)

    def programs(self):
        """Render every config and return the programs, in start order."""
        self.make_secrets()
        base = self.template_vars()
        conf = lambda name: self.path("conf", name)
        progs = []
        for shard in self.shards:
            master = shard["redis_nodes"][0]
            for n in shard["redis_nodes"]:
                d = self.path("data", n["name"])
                os.makedirs(d, exist_ok=True)
                # A running Redis owns its file (CONFIG REWRITE); a stopped
                # one gets the template again, with the role Sentinel last
                # gave it.
                self.render("sentinel/redis.conf.j2", conf(n["name"] + ".conf"), dict(
                    base, redis_bind=n["host"], redis_port=n["port"], redis_dir=d,
                    redis_replicaof=None if n is master else
                    "%s %d" % (master["host"], master["port"])),
                    once=bool(self.pid(n["name"])), keep=keep_replicaof)
                progs.append(Program(n["name"], "redis",
                                     ["redis-server", conf(n["name"] + ".conf")],
                                     conf(n["name"] + ".conf"), n["netns"]))
        for n in self.topo["sentinels"]:
            name = n["name"]
            d = self.path("data", name)
            os.makedirs(d, exist_ok=True)
            self.render("sentinel/sentinel.conf.j2", conf(name + ".conf"), dict(
                base, sentinel_bind=n["host"], sentinel_port=n["port"],
                sentinel_dir=d, sentinel_masters=[
                    {"name": s["name"], "host": s["redis_nodes"][0]["host"],
                     "port": s["redis_nodes"][0]["port"]} for s in self.shards]),
                once=True)
            progs.append(Program(name, "sentinel",
                                 ["redis-sentinel", conf(name + ".conf")],
                                 conf(name + ".conf"), n["netns"]))
        for n in self.topo["ingest_nodes"]:
            c = conf(n["name"] + ".conf")
            self.render("apps/conf/pb-ingest.conf.j2", c, dict(
                base, ingest_listen="%s:%d" % (n["host"], n["port"]),
                ingest_metrics_listen=metrics_listen(n)))
            progs.append(Program(n["name"], "ingest",
                                 [os.path.join(BIN_DIR, "pb-ingest"), "-c", c], c,
                                 n["netns"]))
        for a in self.topo["agents"]:
            c = conf(a["name"] + ".conf")
            self.render("apps/conf/pb-agent.conf.j2", c, dict(
                base, agent_id=a["name"], agent_metrics_listen=metrics_listen(a),
                agent_delivery_log=self.path("log", a["name"] + ".delivery.log")))
            progs.append(Program(a["name"], "agent",
                                 [os.path.join(BIN_DIR, "pb-agent"), "-c", c], c,
                                 a["netns"]))
        # pbctl is no daemon: its settings are rendered for the operator.
        self.render("apps/conf/pbctl.conf.j2", conf("pbctl.conf"), base)
        c = conf("haproxy.cfg")
        self.render("haproxy/haproxy.cfg.j2", c, dict(
            base, haproxy_bind=self.topo["lb"]["host"],
            haproxy_port=self.topo["haproxy_port"],
            haproxy_tls_port=self.topo.get("haproxy_tls_port") or "",
            haproxy_tls_cert=self.make_tls() if self.topo.get("haproxy_tls_port") else "",
            haproxy_stats_port=self.topo["haproxy_stats_port"],
            haproxy_errorfile_503=os.path.join(CONF_ROOT, "haproxy", "503.json.http"),
            ingest_nodes=self.topo["ingest_nodes"]))
        subprocess.run(["haproxy", "-c", "-q", "-f", c], check=True)
        progs.append(Program("haproxy", "haproxy", ["haproxy", "-db", "-f", c], c,
                             self.topo["lb"]["netns"]))
        if "prometheus_port" in self.topo:
            progs += self.monitoring(base)
        if self.receiver:
            progs.append(Program("receiver", "receiver", [
                sys.executable, os.path.join(ROOT, "scripts", "receiver.py"),
                "--bind", self.topo["receiver"]["host"],
                "--port", str(self.topo["receiver_port"]),
                "--log", self.path("log", "receiver.requests.log"),
                "--delay-ms", str(self.topo["receiver"].get("delay_ms", 0)),
                "--refuse-file", self.path("receiver.refuse")], self.state,
                self.topo["receiver"]["netns"]))
        return progs

    def monitoring(self, base):
        """Prometheus (with the alert rules and the dashboard) and one redis
        exporter for every Redis server and Sentinel."""
        t = self.topo
        exporter = "%s:%d" % (t["bind"], t["redis_exporter_port"])
        prom = "%s:%d" % (t["bind"], t["prometheus_port"])
        hostports = lambda group: ["%s:%d" % (n["host"], n["port"]) for n in t[group]]
        c = self.path("conf", "prometheus.yml")
        self.render("monitoring/prometheus.yml.j2", c, dict(
            base, prometheus_listen=prom,
            prometheus_rules_file=os.path.join(ROOT, "monitoring", "alerts.yml"),
            prometheus_ingest_targets=[metrics_listen(n) for n in t["ingest_nodes"]
                                       if "metrics_port" in n],
            prometheus_agent_targets=[metrics_listen(a) for a in t["agents"]
                                      if "metrics_port" in a],
            prometheus_haproxy_targets=["%s:%d" % (t["lb"]["host"], t["haproxy_stats_port"])],
            prometheus_redis_targets=["%s:%d" % (n["host"], n["port"])
                                      for n in self.redis_nodes],
            prometheus_sentinel_targets=hostports("sentinels"),
            redis_exporter_listen=exporter))
        subprocess.run(["promtool", "check", "config", c], check=True,
                       stdout=subprocess.DEVNULL)
        # The dashboard, served by Prometheus at /user/: same origin as
        # the API it reads.
        dash = self.path("dashboard")
        os.makedirs(dash, exist_ok=True)
        src = os.path.join(ROOT, "monitoring", "dashboard")
        links = {f: os.path.join(src, f) for f in os.listdir(src)}
        links["chart.min.js"] = CHART_JS
        for name, target in links.items():
            link = os.path.join(dash, name)
            if os.path.lexists(link):
                os.unlink(link)
            os.symlink(target, link)
        return [
            Program("redis-exporter", "monitor", [
                "prometheus-redis-exporter", "-web.listen-address", exporter,
                "-redis.addr", "", "-redis.user", "monitor", "-config-command", "-"],
                None, t["lb"]["netns"], env={"REDIS_PASSWORD": self.password("monitor")}),
            Program("prometheus", "monitor", [
                "prometheus", "--config.file", c, "--web.listen-address", prom,
                "--storage.tsdb.path", self.path("data", "prometheus"),
                "--storage.tsdb.retention.time", "2d", "--web.user-assets", dash,
                "--web.enable-lifecycle"], c, t["lb"]["netns"]),
        ]

    # ---- processes -------------------------------------------------------
    def pid(self, name):
        try:
            with open(self.path("pid", name + ".pid")) as f:
                pid = int(f.read())
            with open("/proc/%d/stat" % pid) as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return None
            # Every program runs in the state folder (Redis moves to its data
            # folder inside it): a reused PID does not. Redis rewrites its
            # command line, so that would be no help.
            cwd = os.readlink("/proc/%d/cwd" % pid)
        except (OSError, ValueError, IndexError):
            return None
        inside = cwd == self.state or cwd.startswith(self.state + os.sep)
        return pid if inside else None

    def supervisor_pid(self):
        return self.pid("supervisor")

    def disabled(self, name):
        return os.path.exists(self.path("disabled", name))

    def stop(self, name, sig=signal.SIGTERM, wait=True):
        """Stop one program and keep it stopped until start(name)."""
        open(self.path("disabled", name), "w").close()
        pid = self.pid(name)
        if pid:
            os.kill(pid, sig)
            deadline = time.time() + STOP_TIMEOUT_S
            while wait and self.pid(name) and time.time() < deadline:
                time.sleep(0.05)

    def start(self, name):
        try:
            os.unlink(self.path("disabled", name))
        except FileNotFoundError:
            pass

    def pbctl(self, *args, timeout=120):
        """Run the operator tool against this cluster (a CompletedProcess)."""
        return subprocess.run([os.path.join(BIN_DIR, "pbctl"), "-c",
                               self.path("conf", "pbctl.conf")] + list(args),
                              capture_output=True, text=True, timeout=timeout)

    def receiver_refuse(self, until):
        """The demo receiver answers 503 with Retry-After up to the Unix
        time until (a partner down for maintenance), from now on."""
        with open(self.path("receiver.refuse.tmp"), "w") as f:
            f.write("%.3f\n" % until)
        os.replace(self.path("receiver.refuse.tmp"), self.path("receiver.refuse"))

    def receiver_accept(self):
        try:
            os.unlink(self.path("receiver.refuse"))
        except FileNotFoundError:
            pass

    def kill(self, name, sig=signal.SIGKILL):
        """Signal one program; the supervisor restarts it if it dies."""
        pid = self.pid(name)
        if pid:
            os.kill(pid, sig)
        return pid

    # ---- the supervisor ----------------------------------------------------
    def supervise(self):
        progs = self.programs()
        stopping = []
        signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
        signal.signal(signal.SIGINT, lambda *_: stopping.append(1))
        with open(self.path("pid", "supervisor.pid"), "w") as f:
            f.write(str(os.getpid()))
        log("supervisor: started, state in %s" % self.state)
        while not stopping:
            reap()
            now = time.time()
            for p in progs:
                if self.disabled(p.name) or self.pid(p.name) or now < p.next_start:
                    continue
                if p.started_at:
                    # It died. Quick deaths back off, long runs reset.
                    p.backoff = 1.0 if now - p.started_at > 10 else min(p.backoff * 2, 10)
                    log("supervisor: %s exited; restarted in %.0f s" % (p.name, p.backoff))
                    p.started_at = 0
                    p.next_start = now + p.backoff
                    continue
                self.spawn(p)
            time.sleep(0.2)
        self.stop_all(progs)
        log("supervisor: stopped")
        os.unlink(self.path("pid", "supervisor.pid"))

    def spawn(self, p):
        out = open(self.path("log", p.name + ".log"), "ab")
        # umask 077: Redis and Sentinel rewrite their configs (passwords
        # in them) as 0644 less the umask.
        proc = subprocess.Popen(p.argv, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=self.state, umask=0o077,
                                env=dict(os.environ, **p.env) if p.env else None)
        out.close()
        with open(self.path("pid", p.name + ".pid"), "w") as f:
            f.write(str(proc.pid))
        p.started_at = time.time()
        log("supervisor: started %s (pid %d)" % (p.name, proc.pid))

    def stop_all(self, progs):
        for kind in STOP_ORDER:
            pids = [(p.name, self.pid(p.name)) for p in progs if p.kind == kind]
            pids = [(n, pid) for n, pid in pids if pid]
            for n, pid in pids:
                os.kill(pid, signal.SIGTERM)
            deadline = time.time() + STOP_TIMEOUT_S
            while any(self.pid(n) for n, _ in pids) and time.time() < deadline:
                reap()
                time.sleep(0.05)
            for n, _ in pids:
                pid = self.pid(n)
                if pid:
                    log("supervisor: %s did not stop in %d s; SIGKILL" % (n, STOP_TIMEOUT_S))
                    os.kill(pid, signal.SIGKILL)
            reap()

    # ---- up / down ----------------------------------------------------------
    def up(self, timeout=60):
        """Start whatever is not running, also what `stop NAME` stopped."""
        self.programs()  # render and check before anything starts
        for name in os.listdir(self.path("disabled")):
            self.start(name)
        if not self.supervisor_pid():
            out = open(self.path("log", "supervisor.log"), "ab")
            subprocess.Popen([sys.executable, os.path.abspath(__file__),
                              "_supervise", self.state],
                             stdout=out, stderr=subprocess.STDOUT, cwd=self.state,
                             stdin=subprocess.DEVNULL, start_new_session=True)
            out.close()
        self.wait_ready(timeout)

    def down(self):
        pid = self.supervisor_pid()
        if pid:
            os.kill(pid, signal.SIGTERM)
            deadline = time.time() + STOP_TIMEOUT_S * len(STOP_ORDER)
            while self.supervisor_pid() and time.time() < deadline:
                time.sleep(0.1)

    def redis(self, node, user="admin", timeout=5, **kw):
        """A client for the Redis node named node (e.g. 'redis1')."""
        import redis
        n = next(n for n in self.redis_nodes if n["name"] == node)
        return redis.Redis(host=n["host"], port=n["port"], username=user,
                           password=self.password(user), socket_timeout=timeout,
                           socket_connect_timeout=timeout, **kw)

    def sentinel(self, addr, timeout=5, user="client"):
        """A client for the Sentinel at addr, as its ACL user user: 'client'
        (where is the master) or 'operator' (anything)."""
        import redis
        return redis.Redis(host=addr[0], port=addr[1], username=user,
                           password=self.password("sentinel_" + user),
                           socket_timeout=timeout, socket_connect_timeout=timeout,
                           decode_responses=True)

    def role(self, node, timeout=5):
        """What the node says it is ('master', 'slave'), or None if it does
        not answer."""
        try:
            return self.redis(node, timeout=timeout).execute_command("ROLE")[0].decode()
        except Exception:
            return None

    def sentinel_views(self, timeout=5, shard=0):
        """{sentinel name: the Redis node it names master of the shard, or
        None when it does not answer or names no node of ours}."""
        views = {}
        for n in self.topo["sentinels"]:
            try:
                host, port = self.sentinel((n["host"], n["port"]), timeout).execute_command(
                    "SENTINEL", "get-master-addr-by-name", self.shards[shard]["name"])
                views[n["name"]] = self.node_at(host, port)
            except Exception:
                views[n["name"]] = None
        return views

    def master_node(self, timeout=5, shard=0):
        """The Redis node a majority of all Sentinels names master of the
        shard, or None. One Sentinel is not the cluster: one that was cut
        off still names the master it knew."""
        views = [v for v in self.sentinel_views(timeout, shard).values() if v]
        need = len(self.topo["sentinels"]) // 2 + 1
        return next((v for v in set(views) if views.count(v) >= need), None)

    def master(self, shard=0):
        node = self.master_node(shard=shard)
        return self.redis(node) if node else None

    def wait_ready(self, timeout=60):
        deadline = time.time() + timeout
        s = len(self.topo["sentinels"])

        def sentinels_agree():
            for shard in self.shards:
                n = len(shard["redis_nodes"])
                for addr in self.sentinel_addrs():
                    m = self.sentinel(addr, user="operator").execute_command(
                        "SENTINEL", "MASTER", shard["name"])
                    m = dict(zip(m[::2], m[1::2]))
                    if (int(m["num-other-sentinels"]) < s - 1 or
                            int(m["num-slaves"]) < n - 1 or m["flags"] != "master"):
                        return False
            return True

        def replicas_online():
            # Writes need min-replicas-to-write good replicas: wait for all.
            for i, shard in enumerate(self.shards):
                n = len(shard["redis_nodes"])
                info = self.master(i).info("replication")
                online = sum(1 for k, v in info.items() if k.startswith("slave")
                             and isinstance(v, dict) and v.get("state") == "online")
                if online < n - 1 or info.get("min_slaves_good_slaves", n) < 1:
                    return False
            return True

        def healthy():
            with urllib.request.urlopen(self.endpoint + "/health", timeout=2) as r:
                return r.status == 200

        def functions_loaded():
            # As a deployment does: the operator loads this version's
            # library (the daemons may only call it) on every shard's master.
            p = self.pbctl("functions", "load", timeout=10)
            return p.returncode == 0

        for what, check in (("sentinels", sentinels_agree),
                            ("replicas", replicas_online),
                            ("functions", functions_loaded), ("endpoint", healthy)):
            while True:
                try:
                    if check():
                        break
                except Exception:
                    pass
                if time.time() > deadline:
                    raise TimeoutError("cluster in %s: %s not ready after %d s; see %s"
                                       % (self.state, what, timeout, self.path("log")))
                time.sleep(0.2)
        self.ensure_client_key()

    def ingest_servers(self):
        """HAProxy's row of each ingest node (its stats page, as CSV:
        status, connect, reuse, used_conn_cur, idle_conn_cur, ...), by name."""
        url = "http://%s:%d/;csv" % (self.topo["lb"]["host"], self.topo["haproxy_stats_port"])
        with urllib.request.urlopen(url, timeout=2) as r:
            rows = r.read().decode().splitlines()
        head = rows[0].lstrip("# ").split(",")
        rows = [dict(zip(head, line.split(","))) for line in rows[1:]]
        names = {n["name"] for n in self.topo["ingest_nodes"]}
        return {x["svname"]: x for x in rows
                if x["pxname"] == "pb_ingest" and x["svname"] in names}

    def ingest_nodes_down(self):
        """The ingest nodes HAProxy does not send requests to now: a node
        restarted a moment ago is down there until its health checks pass
        (rise 2, inter 1s)."""
        names = {n["name"] for n in self.topo["ingest_nodes"]}
        up = {k for k, x in self.ingest_servers().items() if x["status"].startswith("UP")}
        return sorted(names - up)

    def ingest_nodes_listening(self):
        """The ingest nodes whose FastCGI port takes a connection now."""
        names = []
        for n in self.topo["ingest_nodes"]:
            try:
                socket.create_connection((n["host"], n["port"]), timeout=1).close()
                names.append(n["name"])
            except OSError:
                pass
        return sorted(names)

    def wait_ingest_up(self, timeout=30):
        """Until every ingest node listens and HAProxy sends to it. HAProxy's
        word alone is not enough right after a node stopped: it marks a node
        down only after two failed checks (fall 2, inter 1s), so one that
        has just exited still reads UP there, and requests sent then are
        refused (a CI run met it between the SIGTERM test's restart and
        the next test)."""
        names = sorted(n["name"] for n in self.topo["ingest_nodes"])

        def up():
            try:
                return (self.ingest_nodes_listening() == names and
                        not self.ingest_nodes_down())
            except OSError:
                return False
        if not wait_until(up, timeout):
            raise TimeoutError("ingest nodes: listening %s, down in HAProxy %s, after %d s"
                               % (self.ingest_nodes_listening(), self.ingest_nodes_down(),
                                  timeout))

    def status(self):
        rows = []
        for p in self.programs():
            pid = self.pid(p.name)
            rows.append("%-10s %-8s %s" % (p.name, "pid %d" % pid if pid else
                                           "disabled" if self.disabled(p.name) else "down", p.conf))
        return rows


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, timeout, every=0.2):
    """Call pred until it is true or timeout seconds have passed; its last
    value (for tests and drills that wait on the cluster)."""
    deadline = time.time() + timeout
    while not (ok := pred()) and time.time() < deadline:
        time.sleep(every)
    return ok


def keep_replicaof(old, new):
    """The replicaof line of the old Redis config (or its absence: master)
    replaces the new one's: Sentinel's choice outlives a re-render."""
    def strip(text):
        return [l for l in text.splitlines() if not l.startswith("replicaof ")]
    ours = [l for l in old.splitlines() if l.startswith("replicaof ")]
    return "\n".join(strip(new) + ours) + "\n"


def reap():
    """Collect exited children and log how each ended."""
    try:
        while True:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid <= 0:
                return
            if os.WIFSIGNALED(status):
                log("supervisor: pid %d killed by signal %d" % (pid, os.WTERMSIG(status)))
            else:
                log("supervisor: pid %d exited with status %d"
                    % (pid, os.WEXITSTATUS(status)))
    except ChildProcessError:
        pass


def log(msg):
    print(time.strftime("%Y-%m-%dT%H:%M:%S ") + msg, flush=True)


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__)
        return 0 if len(argv) >= 2 else 2
    cmd = argv[1]
    if cmd == "_supervise":
        Cluster(state=argv[2]).supervise()
        return 0
    c = Cluster()
    if cmd == "up":
        c.up()
        prom = "http://%s:%s" % (c.bind, c.topo.get("prometheus_port", "-"))
        print(USAGE.format(endpoint=c.endpoint, tls_endpoint=c.tls_endpoint or "-",
                           cert=os.path.relpath(c.path("tls", "cert.pem")),
                           receiver=c.receiver_url,
                           state=os.path.relpath(c.state), port=c.topo["haproxy_stats_port"],
                           bind=c.topo["lb"]["host"], prometheus=prom,
                           keyfile=os.path.relpath(c.path("secrets", "client.key"))))
    elif cmd == "down":
        c.down()
        print("stopped")
    elif cmd == "status":
        print("\n".join(c.status()))
        for i, s in enumerate(c.shards):
            print("master of %s: %s" % (s["name"], c.master_node(shard=i)))
    elif cmd in ("stop", "start") and len(argv) == 3:
        getattr(c, cmd)(argv[2])
    else:
        print("pbcluster: unknown command %r (see --help)" % " ".join(argv[1:]), file=sys.stderr)
        return 2
    return 0


USAGE = """\
The postback cluster is up.

  endpoint   {endpoint}/ingest  (also /ingest.php and /i)
             {tls_endpoint}/ingest  (TLS; its self-signed certificate: {cert},
             curl --cacert {cert} ...)
  stats      http://{bind}:{port}/  (its metrics: /metrics)
  dashboard  {prometheus}/user/index.html  (Prometheus: {prometheus}/, alerts: /alerts)
  receiver   {receiver}  (a demo receiver; what it gets: {state}/log/receiver.requests.log)

Try it (every request carries a client key; this one is the local client's,
issued with `pbctl keys add local` into {keyfile}):

  curl -s {endpoint}/ingest -H "Authorization: Bearer $(cat {keyfile})" \\
    -H 'Content-Type: application/json' -d '{{
    "endpoint": {{"method": "GET",
                 "url": "{receiver}/data?title={{mascot}}&image={{location}}&foo={{bar}}"}},
    "data": [{{"mascot": "Gopher", "location": "https://blog.golang.org/gopher/gopher.png"}}]}}'

Delivery log, one line per attempt:  {state}/log/agent1.delivery.log, {state}/log/agent2.delivery.log
Daemon logs:                          {state}/log/<program>.log
Stop it:                              make stop
"""

if __name__ == "__main__":
    sys.exit(main(sys.argv))
