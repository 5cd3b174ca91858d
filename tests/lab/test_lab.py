"""site.yml proven on real machines: idempotence, the sample end to end,
the firewall, reboots, and the loss of the Redis master's host."""
import concurrent.futures
import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid

import pytest
import requests

from conftest import ANSIBLE, ROOT, machines

sys.path.insert(0, os.path.join(ROOT, "tests", "drill"))
RUN = os.path.join(ROOT, "run", "lab")
# LAB_SECOND_RUNS=once (CI): a second site.yml changes nothing is checked
# once, after the first run, on one host of each group and the Redis hosts;
# `make lab` alone checks it on every host, and again after the password
# rotation and after the upgrade (about 5 minutes each here).
ONE_SECOND_RUN = os.environ.get("LAB_SECOND_RUNS") == "once"


# The inventory sources site.yml has deployed (the second shard's once
# test_a_second_shard_added_with_traffic_flowing_loses_nothing added it).
DEPLOYED = [machines.INVENTORY]


def playbook(log_name, *extra, book="site.yml", inventories=None):
    """Run a playbook (site.yml) against the lab (the inventory sources
    deployed, unless given); return ({host: recap counts}, its output)."""
    log = os.path.join(RUN, log_name)
    sources = [a for i in (inventories or DEPLOYED) for a in ("-i", i)]
    with open(log, "w") as f:
        p = subprocess.run(["ansible-playbook"] + sources + [book] + list(extra),
                           cwd=ANSIBLE, stdout=f, stderr=subprocess.STDOUT, timeout=900)
    text = open(log).read()
    assert p.returncode == 0, f"ansible-playbook failed, see {log}"
    recap = {}
    for m in re.finditer(r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)",
                         text, re.M):
        recap[m.group(1)] = {"ok": int(m.group(2)), "changed": int(m.group(3)),
                             "unreachable": int(m.group(4)), "failed": int(m.group(5))}
    return recap, text


class CommandLines:
    """Every command line on this host seen while the block runs, sampled
    from /proc every 0.25 s: the lab's machines are containers, so their
    processes (sudo, Ansible's module wrappers, redis-cli, pb-redis-users)
    are this host's too, as `ps` on each machine would show them."""

    def __init__(self):
        self.seen = set()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.sample, daemon=True)

    def sample(self):
        while not self.done.is_set():
            for pid in os.listdir("/proc"):
                if pid.isdigit():
                    try:
                        with open("/proc/%s/cmdline" % pid, "rb") as f:
                            self.seen.add(f.read())
                    except OSError:
                        pass
            self.done.wait(0.25)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join()


def no_secret_shown(lab, secrets, lines, logs):
    """None of secrets ({name: value}) in the command lines seen, in any
    machine's journal (sudo logs each command it runs there), or in the
    playbook's output (logs)."""
    where = []
    for name, value in secrets.items():
        v = value.encode()
        if any(v in c for c in lines.seen):
            where.append((name, "a command line"))
        if any(value in text for text in logs):
            where.append((name, "the playbook's output"))
    for host in lab.hosts:
        if host not in lab.groups.get("lab_receiver", []):
            journal = lab.ssh(host, "journalctl", "-o", "cat", "--no-pager", timeout=120).stdout
            where += [(name, host + "'s journal") for name, value in secrets.items()
                      if value in journal]
    print(f"secrets: {len(secrets)} checked in {len(lines.seen)} command lines, "
          f"{len(lab.hosts)} journals, the playbook's output")
    assert where == [], where


def post(lab, url, data, timeout=10):
    body = {"endpoint": {"method": "GET", "url": url}, "data": data}
    return requests.post(lab.endpoint, json=body, headers=lab.auth, timeout=timeout,
                         verify=lab.cacert)


def test_second_run_changes_nothing(lab):
    """site.yml again changes nothing. In CI (LAB_SECOND_RUNS=once) on one
    host of each group and every Redis host (the master comes last): the
    hosts of a group run the same tasks, and a run costs the same per
    host; `make lab` alone runs it on every host, three times."""
    hosts = set(lab.hosts) - {"receiver"}
    extra = []
    if ONE_SECOND_RUN:
        hosts = set(lab.groups["redis"]) | {lab.groups[g][0] for g in
                                             ("lb", "ingest", "sentinel", "agent", "monitoring")}
        extra = ["--limit", ",".join(sorted(hosts))]
    recap, text = playbook("ansible-second-run.log", *extra)
    assert set(recap) == hosts
    changed = {h: r["changed"] for h, r in recap.items() if r["changed"]}
    tasks = re.findall(r"^changed: \[(\S+)\].*$", text, re.M)
    assert not changed, f"a second run changed {changed}: {tasks}"


def test_sample_delivered_through_the_load_balancer(lab):
    # The seed's sample, delivered to the receiver host instead of
    # sample_domain_endpoint.com.
    url = (f"http://{lab.receiver}:8090/data?title={{mascot}}&image={{location}}"
           "&foo={bar}")
    r = post(lab, url, [{"mascot": "Gopher",
                         "location": "https://blog.golang.org/gopher/gopher.png"}])
    assert r.status_code == 200, r.text
    (pid,) = r.json()["ids"]
    seen, missing = lab.wait_received([pid], timeout=30)
    assert not missing
    got = [json.loads(line) for line in lab.ssh("receiver", "cat", "/root/received.jsonl")
           .stdout.splitlines() if pid in line]
    assert got[0]["path"] == ("/data?title=Gopher&image=https%3A%2F%2Fblog.golang.org"
                              "%2Fgopher%2Fgopher.png&foo=")
    # An agent setting the inventory sets (pb_agent_user_agent) took effect.
    assert got[0]["user_agent"] == "postback-lab/1", got[0]
    # Logged once in /var/log/postback, not copied to the journal (off by
    # default); the journal has the daemon's own lines, with priorities.
    logged = []
    for agent in lab.groups["agent"]:
        f = lab.ssh(agent, "grep", "-c", f"id={pid} ", "/var/log/postback/delivery.log",
                    check=False)
        j = lab.ssh(agent, f"journalctl -u pb-agent -o cat | grep -c 'id={pid} '", check=False)
        if f.stdout.strip() not in ("", "0"):
            logged.append((agent, f.stdout.strip(), j.stdout.strip()))
    assert len(logged) == 1 and logged[0][1] == "1" and logged[0][2] == "0", logged
    agent = logged[0][0]
    info = lab.ssh(agent, "journalctl -u pb-agent -p info..info -o cat | grep -c '^info: agent '",
                   check=False).stdout.strip()
    assert info not in ("", "0"), "the agent's start line is not in the journal at priority info"
    none = lab.ssh(agent, "journalctl -u pb-agent -p err -o cat | grep -c '^info: '",
                   check=False).stdout.strip()
    assert none in ("", "0"), "info lines logged at priority err or above"
    # An operator on a Redis host: pbctl finds its configuration by itself.
    # Freshly deployed, the cluster is healthy: exit 0 (lab.ssh checks it).
    status = lab.ssh(lab.groups["redis"][0], "pbctl", "status").stdout
    assert "master " in status and "queue    0 waiting" in status, status
    assert "health   ok\n" in status, status


def test_units_notify_are_watched_and_sandboxed(lab):
    """pb-ingest and pb-agent are Type=notify with a watchdog, running and
    pinging it; HAProxy runs unprivileged; `systemd-analyze security` of
    each is at most 2.0 on the hosts themselves."""
    units = [(h, "pb-ingest") for h in lab.groups["ingest"]] + \
            [(h, "pb-agent") for h in lab.groups["agent"]]
    for host, unit in units:
        show = dict(line.split("=", 1) for line in lab.ssh(
            host, "systemctl", "show", unit, "-p", "Type,WatchdogUSec,ActiveState,"
            "StatusText,WatchdogTimestampMonotonic").stdout.splitlines() if "=" in line)
        assert show["Type"] == "notify" and show["WatchdogUSec"] == "30s", (host, show)
        assert show["ActiveState"] == "active" and show["StatusText"], (host, show)
        assert int(show["WatchdogTimestampMonotonic"]) > 0, (host, "no watchdog ping yet")
    lb = lab.groups["lb"][0]
    users = set(lab.ssh(lb, "ps", "-o", "user=", "-C", "haproxy").stdout.split())
    assert users == {"haproxy"}, users
    for host, unit in units + [(lb, "haproxy")]:
        out = lab.ssh(host, "systemd-analyze", "security", unit + ".service").stdout
        level = float(out.rsplit("Overall exposure level for", 1)[1].split(":")[1].split()[0])
        assert level <= 2.0, (host, unit, level)


def test_delivery_log_rotates_and_the_agent_writes_to_the_new_file(lab):
    # logrotate runs hourly on the agents, so maxsize acts within the hour.
    for agent in lab.groups["agent"]:
        cal = lab.ssh(agent, "systemctl", "show", "-p", "TimersCalendar", "logrotate.timer").stdout
        assert "OnCalendar=hourly" in cal or "*-*-* *:00:00" in cal, cal
    for agent in lab.groups["agent"]:
        size = int(lab.ssh(agent, "stat", "-c", "%s", "/var/log/postback/delivery.log").stdout)
        lab.ssh(agent, "logrotate", "--force", "/etc/logrotate.d/pb-agent")
        rotated = lab.ssh(agent, "test", "-s", "/var/log/postback/delivery.log.1", check=False)
        # notifempty: an agent that has delivered nothing yet keeps its file.
        assert (rotated.returncode == 0) == (size > 0), (agent, size)
    r = post(lab, f"http://{lab.receiver}:8090/rotated?n={{n}}", [{"n": i} for i in range(20)])
    assert r.status_code == 200, r.text
    ids = r.json()["ids"]
    _, missing = lab.wait_received(ids, timeout=30)
    assert not missing
    time.sleep(1)   # the agents flush their log once per loop turn
    logged = 0
    for agent in lab.groups["agent"]:
        new = lab.ssh(agent, "cat", "/var/log/postback/delivery.log").stdout
        old = lab.ssh(agent, "cat", "/var/log/postback/delivery.log.1", check=False).stdout
        assert not any(f"id={i} " in old for i in ids)
        logged += sum(1 for i in ids if f"id={i} " in new)
    assert logged == len(ids)


def can_connect(lab, src, addr, port, user=None):
    """Whether src (a lab host, or None for the controller) reaches addr:port
    (as user, on src)."""
    probe = f"timeout 3 bash -c 'exec 3<>/dev/tcp/{addr}/{port}' 2>/dev/null"
    if user:
        probe = f"runuser -u {user} -- {probe}"
    if src is None:
        return subprocess.run(["bash", "-c", probe]).returncode == 0
    return lab.ssh(src, probe, check=False).returncode == 0


def test_firewall_opens_each_port_to_exactly_who_needs_it(lab):
    redis1, ingest1 = lab.hosts["redis1"], lab.hosts["ingest1"]
    sentinel1 = lab.hosts[lab.groups["sentinel"][0]]
    monitoring = lab.groups["monitoring"][0]
    # (whether it may connect, from where (None: the controller), to, port, as)
    probes = [
        (True, None, lab.lb, 8080, None),           # clients: anyone
        (True, None, lab.lb, 8404, None),           # stats: the admin address
        (False, "receiver", lab.lb, 8404, None),
        (True, lab.groups["lb"][0], ingest1, 9001, None),  # FastCGI: the LB only
        (False, "agent1", ingest1, 9001, None),
        (False, None, ingest1, 9001, None),
        (False, "agent1", redis1, 26390, None),     # no Sentinel beside Redis
        (False, "agent1", sentinel1, 6390, None),
        (True, None, lab.hosts[monitoring], 9090, None),
        (False, "receiver", lab.hosts[monitoring], 9090, None),
    ]
    # With pb_tls, other users' connections to Redis and the Sentinels go to
    # the local stunnel: probe as stunnel itself, whose are not redirected.
    through = "stunnel4" if lab.tls else None
    for addr, port in ((redis1, 6390), (sentinel1, 26390)):  # the cluster only
        probes += [(True, "agent1", addr, port, through), (True, "ingest2", addr, port, through),
                   (False, None, addr, port, None), (False, "receiver", addr, port, None)]
    # Metrics: the monitoring host only (here lb1, beside HAProxy).
    for addr, port in ((ingest1, 9301), (lab.hosts["agent1"], 9302)):
        probes += [(True, monitoring, addr, port, None), (False, "receiver", addr, port, None),
                   (False, None, addr, port, None)]
    # At once: a refused probe waits out its 3 s (the firewall drops).
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(probes)) as pool:
        got = list(pool.map(lambda p: can_connect(lab, *p[1:]), probes))
    wrong = ["%s -> %s:%d%s: %s" % (p[1] or "controller", p[2], p[3],
                                    " as " + p[4] if p[4] else "",
                                    "connected" if ok else "refused")
             for p, ok in zip(probes, got) if ok != p[0]]
    assert wrong == [], wrong


def test_agents_egress_reaches_only_redis_sentinels_and_allowed_destinations(lab):
    """The firewall's second line behind allow_private: pb-agent's sockets
    reach Redis, the Sentinels and the allowed receiver, and no other
    private address (HAProxy's port on lb1, open to everyone else)."""
    agent, redis1 = lab.groups["agent"][0], lab.hosts["redis1"]
    sentinel1 = lab.hosts[lab.groups["sentinel"][0]]
    assert can_connect(lab, agent, redis1, 6390, user="pb-agent")
    assert can_connect(lab, agent, sentinel1, 26390, user="pb-agent")
    assert can_connect(lab, agent, lab.receiver, 8090, user="pb-agent")
    assert not can_connect(lab, agent, lab.lb, 8080, user="pb-agent")
    assert can_connect(lab, agent, lab.lb, 8080)  # other users: not filtered


def test_agents_ask_port_53_of_their_resolvers_only(lab):
    """pb-agent's name lookups go to the host's name servers, and port 53
    of any other host is closed to it (a DNS tunnel out of a compromised
    agent host): a listener on the receiver's port 53 is reached by other
    users, not by pb-agent."""
    agent, name = lab.groups["agent"][0], lab.groups["lab_receiver"][0]
    lab.ssh(name, "systemd-run", "--unit", "pb-lab-port53", "python3", "-m", "http.server",
            "53", "--bind", lab.receiver)
    try:
        deadline = time.time() + 15
        while not can_connect(lab, agent, lab.receiver, 53) and time.time() < deadline:
            time.sleep(0.5)
        assert can_connect(lab, agent, lab.receiver, 53), "the listener never came up"
        assert not can_connect(lab, agent, lab.receiver, 53, user="pb-agent")
    finally:
        lab.ssh(name, "systemctl", "stop", "pb-lab-port53", check=False)


SECRET_NAMES = ("admin", "operator", "replication", "sentinel", "sentinel_client",
                "sentinel_peer", "sentinel_operator", "ingest", "agent", "monitor")


def test_no_password_crosses_the_lab_bridge_in_clear(lab):
    """#16 (pb_tls): every link between the hosts is TLS. A capture of the
    lab's bridge while postbacks flow and every kind of client logs in again
    (an agent and an ingest node restarted, the replicas' links to the
    master and the Sentinels' cut, a Sentinel restarted, pbctl run, the
    exporter scraping) holds none of the cluster's passwords nor the client
    key; it does hold clear text where there is some (the postback to the
    receiver, plain HTTP by its template), so it saw the payloads."""
    if not lab.tls:
        pytest.skip("the lab inventory has pb_tls off")
    pcap = os.path.join(RUN, "bridge.pcap")
    cap = subprocess.Popen(["tcpdump", "-i", lab.bridge, "-s", "0", "-U", "-w", pcap,
                            "not port 22"], stderr=subprocess.DEVNULL)
    try:
        time.sleep(2)
        marker = uuid.uuid4().hex
        master = lab.master()
        lab.ssh(lab.groups["agent"][0], "systemctl", "restart", "pb-agent")
        lab.ssh(lab.groups["ingest"][0], "systemctl", "restart", "pb-ingest")
        for h in lab.groups["redis"]:
            if h != master:
                lab.redis_cli(h, "CLIENT", "KILL", "TYPE", "master")
        lab.redis_cli(master, "CLIENT", "KILL", "USER", "sentinel")
        lab.ssh(lab.groups["sentinel"][0], "systemctl", "restart", "redis-sentinel")
        # Its exit code says the restarted Sentinel may not answer yet.
        lab.ssh(lab.groups["redis"][0], "pbctl", "status", check=False)
        time.sleep(3)
        r = post(lab, f"http://{lab.receiver}:8090/capture/{marker}?k={{k}}",
                 [{"k": i} for i in range(20)])
        assert r.status_code == 200, r.text
        _, missing = lab.wait_received(r.json()["ids"], timeout=60)
        assert not missing
        time.sleep(8)   # the Sentinels' periodic links, the exporter's scrapes
    finally:
        cap.terminate()
        cap.wait(timeout=10)
    with open(pcap, "rb") as f:
        data = f.read()
    assert marker.encode() in data, "the capture saw no payload in clear at all"
    ports = subprocess.run(["tcpdump", "-nr", pcap, "-q"], capture_output=True,
                           text=True).stdout
    for port in (6390, 26390, 9001):
        assert f".{port}:" in ports or f".{port} " in ports, f"no traffic on port {port} captured"
    secrets = {n: lab.secret(n) for n in SECRET_NAMES}
    secrets["client key"] = lab.auth["Authorization"].split()[1]
    leaked = sorted(n for n, s in secrets.items() if s.encode() in data)
    print(f"\ncapture: {len(data)} bytes on {lab.bridge}, {len(secrets)} secrets, "
          f"{len(leaked)} in clear")
    assert leaked == [], f"in clear on the bridge: {leaked}"


def test_prometheus_scrapes_every_target_and_serves_the_dashboard(lab):
    prom = "http://%s:9090" % lab.hosts[lab.groups["monitoring"][0]]
    want = {("pb-ingest", h) for h in lab.groups["ingest"]} | \
        {("pb-agent", h) for h in lab.groups["agent"]} | \
        {("haproxy", h) for h in lab.groups["lb"]} | \
        {("redis", h) for h in lab.groups["redis"]} | \
        {("sentinel", h) for h in lab.groups["sentinel"]}
    by_addr = {a: h for h, a in lab.hosts.items()}
    deadline, got = time.time() + 90, {}
    while time.time() < deadline:
        targets = requests.get(prom + "/api/v1/targets", timeout=10).json()
        got = {(t["labels"]["job"], by_addr.get(t["labels"]["instance"].split(":")[0])):
               (t["health"], t["lastError"]) for t in targets["data"]["activeTargets"]}
        if want <= set(got) and all(got[w][0] == "up" for w in want):
            break
        time.sleep(3)
    assert want <= set(got), f"not scraped: {want - set(got)}"
    down = {w: got[w] for w in want if got[w][0] != "up"}
    assert not down, f"targets not up: {down}"
    # One agent, not each, shows the cluster's queue.
    q = requests.get(prom + "/api/v1/query", params={"query": "sum(pb_queue_exporter)"},
                     timeout=10).json()["data"]["result"]
    assert q and float(q[0]["value"][1]) == 1, q
    page = requests.get(prom + "/user/index.html", timeout=10)
    assert page.status_code == 200 and "dashboard.js" in page.text
    assert requests.get(prom + "/user/chart.min.js", timeout=10).status_code == 200


SERVICES = {"lb": ["haproxy", "nftables"],
            "monitoring": ["prometheus", "prometheus-redis-exporter"], "ingest": ["pb-ingest", "nftables"],
            "redis": ["redis-server", "nftables"],
            "sentinel": ["redis-sentinel", "nftables"],
            "agent": ["pb-agent", "nftables"]}


def services_of(lab, name):
    return [s for g, ss in SERVICES.items() if name in lab.groups[g] for s in ss]


def test_rebooted_hosts_come_back_with_their_services(lab):
    master = lab.master()
    replica = next(n for n in lab.groups["redis_shard1"] if n != master)
    hosts = [lab.groups["lb"][0], lab.groups["ingest"][0], replica, lab.groups["agent"][0]]
    boot_ids = {h: lab.ssh(h, "cat", "/proc/sys/kernel/random/boot_id").stdout for h in hosts}
    for h in hosts:
        lab.ssh(h, "systemctl", "reboot", check=False)
    # A host answers SSH until its shutdown reaches sshd (a Redis server
    # writing its AOF first takes seconds on a busy machine): wait for a
    # new boot id, not for the first answer.
    def boot_id(h):
        try:
            return lab.ssh(h, "cat", "/proc/sys/kernel/random/boot_id", check=False,
                           timeout=10).stdout
        except subprocess.TimeoutExpired:
            return ""  # on its way down or up

    deadline = time.time() + 180
    for h in hosts:
        while boot_id(h) in (boot_ids[h], ""):
            assert time.time() < deadline, f"{h} did not reboot"
            time.sleep(1)
    machines.wait_ssh({h: lab.hosts[h] for h in hosts}, timeout=180)
    for h in hosts:
        for svc in services_of(lab, h):
            state = lab.ssh(h, "systemctl", "is-active", svc, check=False).stdout.strip()
            assert state == "active", f"{h}: {svc} is {state} after the reboot"
    # The replica rejoins as a replica; the cluster delivers again.
    deadline = time.time() + 60
    while lab.redis_cli(replica, "ROLE")[0] != "slave" and time.time() < deadline:
        time.sleep(1)
    assert lab.redis_cli(replica, "ROLE")[0] == "slave"
    deadline = time.time() + 60
    while True:
        try:
            r = post(lab, f"http://{lab.receiver}:8090/after-reboot?n={{n}}", [{"n": 1}])
            if r.status_code == 200:
                break
        except requests.RequestException:
            pass
        assert time.time() < deadline, "no 200 from the load balancer after the reboot"
        time.sleep(1)
    _, missing = lab.wait_received(r.json()["ids"], timeout=60)
    assert not missing


def stream(lab, name, seconds):
    """load.py through the lab's HAProxy at 40 requests/s (2 postbacks
    each) for at most seconds: (the process, its output file)."""
    out = os.path.join(RUN, name + "-load.jsonl")
    key_file = os.path.join(RUN, "client.key")
    with os.fdopen(os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        f.write(lab.auth["Authorization"].split()[1] + "\n")
    run_id = uuid.uuid4().hex[:8]
    return subprocess.Popen(
        ["/usr/bin/python3", os.path.join(ROOT, "tests", "drill", "load.py"),
         "--endpoint", lab.endpoint, "--key-file", key_file, "--cacert", lab.cacert,
         "--rate", "40",
         "--seconds", str(seconds), "--out", out,
         "--target", f"http://{lab.receiver}:8090/{name}/{run_id}?k={{k}}&i={{i}}"]), out


def all_delivered(lab, out, what, least, timeout):
    """Every postback load.py acknowledged (its file out) reaches the
    receiver: at least least acknowledged, none missing after timeout
    seconds; prints what (the run) with the counts."""
    records = [json.loads(line) for line in open(out)]
    acked = [i for r in records if r["status"] == 200 for i in r["ids"]]
    refused = sum(1 for r in records if r["status"] != 200)
    assert len(acked) > least, f"too little load got through: {len(acked)} acknowledged"
    seen, missing = lab.wait_received(acked, timeout=timeout)
    dup = sum(seen[i] - 1 for i in acked if seen.get(i, 0) > 1)
    print(f"\n{what}: {len(acked)} acknowledged, {len(acked) - len(missing)} delivered, "
          f"{len(missing)} lost, {dup} duplicates, {refused} requests refused (503/errors)")
    assert not missing, f"{len(missing)} acknowledged postbacks never delivered"


def test_master_host_stopped_fails_over_and_loses_nothing(lab):
    old = lab.master()
    assert old
    load, out = stream(lab, "failover", 30)
    try:
        time.sleep(6)
        machines.stop(old, kill=True)                   # the host crashes
        deadline = time.time() + 60
        new = None
        while time.time() < deadline:
            new = lab.master()
            if new and new != old:
                break
            time.sleep(1)
        assert new and new != old, "Sentinel did not fail over"
        load.wait(timeout=90)
    finally:
        if load.poll() is None:
            load.terminate()
            load.wait()
    try:
        all_delivered(lab, out, f"failover {old} -> {new}", 500, 120)
    finally:
        # The old master's host comes back (also when the above failed: the
        # tests after this one need every host).
        machines.boot(old, lab.bridge)
        machines.wait_ssh({old: lab.hosts[old]}, timeout=120)
    # ... as a replica of the new master.
    deadline = time.time() + 90
    while time.time() < deadline:
        role = lab.redis_cli(old, "ROLE", check=False)
        if role and role[0] == "slave" and role[1] == lab.hosts[new]:
            break
        time.sleep(1)
    assert role[0] == "slave" and role[1] == lab.hosts[new], role


def auth_results(lab, host, port, creds):
    """{(user, password): accepted?} for each pair, tried on host's own Redis
    or Sentinel (port) with a fresh connection each."""
    cli = " ".join(lab.cli(host))
    script = "; ".join(
        f"echo {u}/{i} $(REDISCLI_AUTH={pw} {cli} --user {u} -p {port} PING 2>&1)"
        for i, (u, pw) in enumerate(creds))
    out = lab.ssh(host, script).stdout
    got = {}
    for line in out.splitlines():
        key, _, reply = line.partition(" ")
        u, i = key.split("/")
        got[creds[int(i)]] = reply.strip() == "PONG"
    assert len(got) == len(creds), out
    return got


def idem_keys(lab, host):
    """How many Idempotency-Keys the Redis on host holds."""
    return len(lab.redis_cli(host, "--scan", "--pattern", "'pb:idem:*'"))


def test_a_second_shard_added_with_traffic_flowing_loses_nothing(lab):
    """#32: the running one-shard cluster gets a second shard - its hosts
    added to the inventory (shard2.yml), site.yml run with
    pb_bootstrap_shards - while postbacks stream in. Afterwards every
    Sentinel watches it and names its first host master, pbctl status is
    healthy on both shards, requests go to both (Idempotency-Keys have
    homes on each), and every acknowledged postback is delivered."""
    if machines.SHARDS < 2:
        pytest.skip("LAB_SHARDS=1: the lab has one shard")
    both = [machines.INVENTORY, machines.SHARD2]
    load, out = stream(lab, "add-shard", 900)
    try:
        time.sleep(5)
        t0 = time.time()
        recap, text = playbook("ansible-add-shard.log", "-e",
                               '{"pb_bootstrap_shards": ["pbmaster2"]}', inventories=both)
        took = time.time() - t0
        time.sleep(5)
    finally:
        load.terminate()
        load.wait(timeout=30)
    DEPLOYED[:] = both
    lab.deployed(both)
    assert lab.master("pbmaster2") == lab.groups["redis_shard2"][0]
    for s in lab.groups["sentinel"]:
        names = lab.redis_cli(s, "SENTINEL", "get-master-addr-by-name", "pbmaster2",
                              sentinel=True)
        assert names[0] == lab.hosts[lab.groups["redis_shard2"][0]], (s, names)
    status = lab.ssh(lab.groups["redis"][0], "pbctl", "status").stdout  # exit 0
    assert status.count("== shard ") == 2 and status.count("health   ok") == 2, status
    all_delivered(lab, out, f"a second shard added in {took:.0f} s", 1000, 180)
    firsts = {h: idem_keys(lab, h) for h in (lab.master(), lab.master("pbmaster2"))}
    for i in range(16):
        r = requests.post(lab.endpoint, json={"endpoint": {
            "method": "GET", "url": f"http://{lab.receiver}:8090/shards?n={{n}}"},
            "data": [{"n": i}]}, headers=dict(lab.auth, **{"Idempotency-Key": uuid.uuid4().hex}),
            timeout=10, verify=lab.cacert)
        assert r.status_code == 200, r.text
    grown = {h: idem_keys(lab, h) - n for h, n in firsts.items()}
    assert all(g > 0 for g in grown.values()) and sum(grown.values()) == 16, grown


def test_password_rotation_with_traffic_flowing_loses_nothing(lab):
    """#17: rotate-passwords.yml while postbacks stream in. Afterwards every
    password is new, every Redis and Sentinel user refuses its old one and
    takes the new one, no Redis or Sentinel restarted, every acknowledged
    postback is delivered, and site.yml then changes nothing. (Before the
    upgrade drill, whose changed Redis setting a later run would undo.)"""
    redis_users = {"admin": "admin", "operator": "operator", "replication": "replication",
                   "sentinel": "sentinel", "ingest": "ingest", "agent": "agent",
                   "monitor": "monitor"}
    sentinel_users = {"peer": "sentinel_peer", "client": "sentinel_client",
                      "operator": "sentinel_operator", "monitor": "monitor"}
    names = sorted(set(redis_users.values()) | set(sentinel_users.values()))
    old = {n: lab.secret(n) for n in names}
    servers = [(h, 6390, redis_users) for h in lab.groups["redis"]] + \
              [(h, 26390, sentinel_users) for h in lab.groups["sentinel"]]
    load, out = stream(lab, "rotation", 900)
    try:
        time.sleep(5)
        t0 = time.time()
        with CommandLines() as lines:
            recap, text = playbook("ansible-rotation.log", book="rotate-passwords.yml")
        took = time.time() - t0
        time.sleep(5)
    finally:
        load.terminate()
        load.wait(timeout=30)
    new = {n: lab.secret(n) for n in names}
    assert [n for n in names if new[n] == old[n]] == []
    # #31: the secrets go to the tools on their standard input (no_log),
    # never on a command line, in the environment of a command Ansible
    # builds, or in a log: old and new alike.
    no_secret_shown(lab, dict({"old " + n: v for n, v in old.items()},
                              **{"new " + n: v for n, v in new.items()}), lines, [text])
    assert [f for f in os.listdir(os.path.join(ROOT, "ansible", "secrets", "lab"))
            if f.endswith(".previous")] == []
    wrong = []
    for host, port, users in servers:
        creds = [(u, old[s]) for u, s in users.items()] + [(u, new[s]) for u, s in users.items()]
        for (u, pw), ok in auth_results(lab, host, port, creds).items():
            if ok != (pw == new[users[u]]):
                wrong.append(f"{u}@{host}:{port} {'old' if pw == old[users[u]] else 'new'} "
                             f"{'accepted' if ok else 'refused'}")
    assert wrong == [], wrong
    for h in lab.groups["redis"]:
        info = lab.redis_cli(h, "INFO", "server")
        uptime = int(next(t for t in info if t.startswith("uptime_in_seconds:")).split(":")[1])
        assert uptime > took, (h, uptime, "restarted by the rotation")
    all_delivered(lab, out, f"password rotation of {len(names)} passwords in {took:.0f} s",
                  1000, 180)
    if ONE_SECOND_RUN:
        return
    recap, text = playbook("ansible-rotation-second-run.log")
    changed = {h: r["changed"] for h, r in recap.items() if r["changed"]}
    assert not changed, f"site.yml after the rotation changed {changed}: " \
        f"{re.findall(r'^changed: .*$', text, re.M)}"


def test_upgrade_rolls_through_the_cluster_and_loses_nothing(lab):
    """#17's upgrade drill: version N runs and postbacks stream in; version
    N+1 is built (the same code, a newer version) and site.yml runs again,
    with a Redis setting changed too, so every Redis server restarts. After
    it every ingest node and agent runs N+1 (pbctl status), the master
    handed its role to a replica before its restart, every acknowledged
    postback is delivered, and a second run changes nothing."""
    extra = ["-e", "pb_redis_maxmemory=1100mb"]
    old_master = lab.master()
    assert old_master
    redis_host = lab.groups["redis"][0]
    load, out = stream(lab, "upgrade", 900)
    try:
        time.sleep(5)
        env = dict(os.environ, PB_VERSION_SUFFIX=".1")
        deb = subprocess.run([os.path.join(ROOT, "scripts", "mkdeb.sh")], env=env, cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout.strip()
        new_version = subprocess.run([os.path.join(ROOT, "scripts", "version.sh")], env=env,
                                     capture_output=True, text=True, check=True).stdout.strip()
        assert new_version in deb
        t0 = time.time()
        with CommandLines() as lines:  # a site.yml run that restarts every server
            recap, text = playbook("ansible-upgrade.log", *extra)
        took = time.time() - t0
        time.sleep(5)
    finally:
        load.terminate()
        load.wait(timeout=30)
    status = lab.ssh(redis_host, "pbctl", "status", check=False).stdout
    versions = re.findall(r'"version":"([^"]+)"', status)
    # The ingest nodes once (they beat on the first shard), every agent on
    # each shard.
    shards = len(re.findall(r"^== shard ", status, re.M)) or 1
    assert len(versions) == len(lab.groups["ingest"]) + shards * len(lab.groups["agent"]), status
    assert set(versions) == {new_version}, status
    # The master handed its role over before its restart: it is a replica
    # now, and every Redis server restarted during the run.
    assert re.search(r"Move the master role to a replica before the restart\] \*+\n"
                     r"(?:(?!TASK|RUNNING HANDLER).*\n)*?changed: \[%s\]" % old_master, text), \
        "no switchover before the master's restart"
    new_master = lab.master()
    assert new_master and new_master != old_master
    role = lab.redis_cli(old_master, "ROLE", check=False)
    assert role[0] == "slave", role
    for h in lab.groups["redis"]:
        info = lab.redis_cli(h, "INFO", "server")
        uptime = int(next(t for t in info if t.startswith("uptime_in_seconds:")).split(":")[1])
        assert uptime < took + 30, (h, uptime, "not restarted by the upgrade")
    all_delivered(lab, out, f"upgrade to {new_version} in {took:.0f} s, "
                  f"master {old_master} -> {new_master}", 1000, 180)
    no_secret_shown(lab, {n: lab.secret(n) for n in SECRET_NAMES}, lines, [text])
    if ONE_SECOND_RUN:
        return
    recap, text = playbook("ansible-upgrade-second-run.log", *extra)
    changed = {h: r["changed"] for h, r in recap.items() if r["changed"]}
    assert not changed, f"a second run after the upgrade changed {changed}: " \
        f"{re.findall(r'^changed: .*$', text, re.M)}"
