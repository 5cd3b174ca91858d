"""A real local cluster (Redis + 3 Sentinels + HAProxy + ingest nodes +
agents, from Debian's packages and build/) for the integration tests, in
its own state folder and with every port shifted (PORT_OFFSETS["test"]),
so it runs beside a `make run` cluster. A receiver started here, in-process, takes the
deliveries."""
import json
import os
import shutil
import sys
import uuid

import pytest
import requests

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

from pbcluster import PORT_OFFSETS, Cluster  # noqa: E402
from receiver import Receiver  # noqa: E402

OFFSET = int(os.environ.get("PB_TEST_PORT_OFFSET", PORT_OFFSETS["test"]))
# make fairness raises it, for a backlog of 100,000 (test_fairness.py).
MAX_QUEUE = int(os.environ.get("PB_TEST_MAX_QUEUE", "20000"))

# Test-sized settings; everything else is cluster/local.yml.
OVERRIDES = {
    "pb_max_queue_size": MAX_QUEUE,
    # One client sends everything here (the 10,000 failing hosts alone
    # take half the queue): no default share; test_shares.py gives one.
    "pb_client_share_pct": 100,
    # The tests' retries: quick backoff, five attempts (the default
    # schedule spreads a day; test_policies.py tests schedules).
    "pb_agent_retry_schedule": "",
    "pb_agent_max_attempts": 5,
    "pb_agent_backoff_base_ms": 200,
    "pb_agent_backoff_cap_ms": 1000,
    "pb_agent_heartbeat_ttl_ms": 3000,
    "pb_agent_shutdown_grace_ms": 3000,
    "pb_agent_breaker_cooldown_ms": 2000,
}


@pytest.fixture(scope="session")
def cluster():
    state = os.path.join(ROOT, "run", "test-integration")
    shutil.rmtree(state, ignore_errors=True)
    c = Cluster(state=state, offset=OFFSET, overrides=OVERRIDES, receiver=False)
    try:
        c.up(timeout=90)
        yield c
    finally:
        c.down()


# What the receiver answers, per test: path prefix -> respond(record).
RULES = {}


def respond(rec):
    for prefix, rule in list(RULES.items()):
        if rec["path"].startswith(prefix):
            return rule(rec)
    return 200, {}, b"ok"


@pytest.fixture(scope="session")
def receiver(cluster):
    r = Receiver(cluster.bind, cluster.topo["receiver_port"], respond=respond).start()
    yield r
    r.stop()


@pytest.fixture
def behave(mark):
    """behave(rule): the receiver answers this test's requests with rule."""
    def set_rule(rule):
        RULES[mark] = rule
    yield set_rule
    RULES.pop(mark, None)


@pytest.fixture
def mark():
    """A path prefix no other test uses, to pick this test's deliveries."""
    return "/t/" + uuid.uuid4().hex[:12]


def ingest(cluster, body, path="/ingest", headers=None, **kw):
    h = {"Content-Type": "application/json"}
    h.update(cluster.auth)
    h.update(headers or {})
    return requests.post(cluster.endpoint + path, json=body, headers=h,
                         timeout=kw.pop("timeout", 30), **kw)


def of_mark(requests_, mark):
    return [r for r in requests_ if r["path"].startswith(mark)]


def waiting(cluster, m=None):
    """Postbacks queued (keys.h): the waiting count and version 1 jobs."""
    return cluster.queue_size(m)


def postbacks_in(element):
    """How many postbacks one queue element stands for: a run
    "<rid> <first>-<last>" (apps/common/job.h) many, anything else one."""
    words = element.split(b" ")
    if len(words) == 2 and b"-" in words[1]:
        first, last = words[1].split(b"-")
        return int(last) - int(first) + 1
    return 1


def queued(cluster, m=None):
    """Postbacks queued, counted one by one: every destination's queue and
    the version 1 queue. The waiting count must always say the same."""
    m = m or cluster.master()
    return sum(postbacks_in(x) for k in m.scan_iter(match=cluster.key("q:*"), count=1000)
               for x in m.lrange(k, 0, -1)) + m.llen(cluster.key("queue"))


def redis_ids(cluster, state=None):
    """`pbctl ids` as {id: state}, of one state only if given."""
    out = {}
    for line in pbctl(cluster, "ids")[1].splitlines():
        st, i, _ = (line.split("\t") + ["", ""])[:3]
        if state is None or st == state:
            out[i] = st
    return out


def client_counts(cluster):
    """pbctl clients --json: {client: postbacks not yet ended (waiting,
    scheduled, in flight)}, summed over the shards."""
    out = {}
    for shard in json.loads(pbctl(cluster, "clients", "--json")[1])["shards"]:
        for client, n in shard["queued"].items():
            out[client] = out.get(client, 0) + n
    return out


def pbctl(cluster, *args, check=True):
    """Run the operator tool against this cluster; returns (rc, output)."""
    p = cluster.pbctl(*args)
    if check:
        assert p.returncode == 0, (args, p.stdout, p.stderr)
    return p.returncode, p.stdout + p.stderr


def exit_status(cluster, pid, timeout=10):
    """How the supervisor saw pid end: 'exited with status N' or 'killed by
    signal N' (it reaps every 0.2 s), or None."""
    import re
    import time
    deadline = time.time() + timeout
    while time.time() < deadline:
        with open(cluster.path("log", "supervisor.log")) as f:
            m = re.search(r"pid %d (exited with status \d+|killed by signal \d+)" % pid,
                          f.read())
        if m:
            return m.group(1)
        time.sleep(0.1)
    return None


LOGFMT_PAIR = None


def logfmt(line):
    """A delivery log line parsed as strict logfmt: [(key, value)] in order.
    Every field is key=value; a key is [a-z_]+; a value is bare (no space,
    quote or '=') or quoted, with \\ \\" \\n \\r \\t \\xHH escapes only.
    Anything else raises ValueError, naming where."""
    import re
    global LOGFMT_PAIR
    if LOGFMT_PAIR is None:
        LOGFMT_PAIR = re.compile(r'([a-z_]+)=(?:"((?:[^"\\\x00-\x1f]|\\["\\nrt]|\\x[0-9a-fA-F]{2})*)"'
                                 r'|([^\s"=]*))(?: |$)')
    line = line.rstrip("\n")
    out, pos = [], 0
    while pos < len(line):
        m = LOGFMT_PAIR.match(line, pos)
        if not m:
            raise ValueError("not logfmt at %d: %r" % (pos, line[pos:pos + 40]))
        out.append((m.group(1), m.group(2) if m.group(2) is not None else m.group(3)))
        pos = m.end()
    if line.endswith(" ") or not out:
        raise ValueError("not logfmt: %r" % line)
    return out


def delivery_log_lines(cluster, pid, want=1, timeout=10):
    """The agents' delivery log lines for postback pid, waiting until there
    are want of them (an agent writes its line after the receiver answers)."""
    import time
    deadline = time.time() + timeout
    while True:
        lines = []
        for agent in cluster.agent_names:
            with open(cluster.path("log", agent + ".delivery.log")) as f:
                lines += [l for l in f if " id=%s " % pid in l]
        if len(lines) >= want or time.time() >= deadline:
            return lines
        time.sleep(0.1)
