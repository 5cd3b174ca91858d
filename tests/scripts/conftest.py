"""The Redis scripts alone (apps/lua), against a real redis-server started
here (on a Unix socket in a temporary folder, no persistence), not through
the daemons. The server has the cluster's ACL users (rendered from
sentinel/redis-users.conf.j2 as the roles render it) and the library the
programs call loaded (scripts/gen_lua.py library(), as `pbctl functions
load` loads it), and each helper below calls a function as the C callers
do: as its caller's Redis user (the script's `-- caller:` line), so that a
command that user may not run fails here, and with its arguments by the
names the script gives them (gen_lua.signature), never by position."""
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time

import pytest
import redis

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

import gen_lua  # noqa: E402
import jinja2  # noqa: E402
from pbcluster import ansible_filters  # noqa: E402
from pbkeys import Keys, queue_size  # noqa: E402

K = Keys("pb")
AGENT = "agent-1"
D1, D2 = "0123456789abcdef", "fedcba9876543210"  # destination ids (dest.h)


USERS = ("admin", "operator", "replication", "sentinel", "ingest", "agent", "monitor")


def users_conf():
    """The ACL users as the Redis servers of the cluster have them, each
    with its name as its password."""
    env = ansible_filters(jinja2.Environment(
        loader=jinja2.FileSystemLoader(os.path.join(ROOT, "sentinel")),
        undefined=jinja2.StrictUndefined))
    return env.get_template("redis-users.conf.j2").render(
        redis_passwords={u: u for u in USERS}, pb_key_prefix=K.prefix,
        pb_redis_daemons_may_eval=False)


@pytest.fixture(scope="session")
def server():
    tmp = tempfile.mkdtemp(prefix="pb-lua-")
    sock = os.path.join(tmp, "redis.sock")
    conf = os.path.join(tmp, "redis.conf")
    with open(conf, "w") as f:
        f.write("port 0\nunixsocket %s\nsave \"\"\nappendonly no\ndir %s\n%s"
                % (sock, tmp, users_conf()))
    p = subprocess.Popen(["redis-server", conf],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        m = redis.Redis(unix_socket_path=sock, username="admin", password="admin")
        m.as_user = {u: redis.Redis(unix_socket_path=sock, username=u, password=u)
                     for u in gen_lua.CALLERS}
        deadline = time.time() + 10
        while True:
            try:
                m.ping()
                break
            except redis.ConnectionError:
                if time.time() > deadline or p.poll() is not None:
                    raise
                time.sleep(0.05)
        m.function_load(gen_lua.library())
        yield m
    finally:
        p.terminate()
        p.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def m(server):
    """The server, empty."""
    server.flushall()
    return server


def now_ms(m):
    s, us = m.time()
    return s * 1000 + us // 1000


class Scripts:
    def __init__(self, m):
        self.m = m

    def call(self, name, rest=(), **named):
        """FCALL the function of apps/lua/<name>.lua with its KEYS and ARGV
        by name; rest: the ARGV past the named ones."""
        sig = gen_lua.signature(name)
        assert sorted(named) == sorted(sig.keys + sig.args), (name, sorted(named))
        assert sig.rest or not rest, name
        keys = [named[k] for k in sig.keys]
        args = [named[a] for a in sig.args] + list(rest)
        return self.m.as_user[sig.caller].fcall(gen_lua.function_name(name), len(keys),
                                                *keys, *args)

    # ---- ingest ----------------------------------------------------------
    def enqueue(self, requests, max_size=1000, idem_s=60, again=0):
        """requests: dicts made by request(); again: the round was sent
        before."""
        rest = []
        for q in requests:
            rest += [K.r(q["rid"]), K.d(q["rid"]), q.get("idem", ""),
                     q.get("idem_value", ""), q["header"], q["n"], q["index"],
                     q["objects"], q.get("share", 0), len(q["runs"])]
            for dest, element in q["runs"]:
                rest += [dest, element]
        return self.call("enqueue", rest, waiting=K.waiting, v1_queue=K.queue,
                         ready=K.ready, wake=K.wake, counts=K.client_waiting, max=max_size,
                         qstem=K.queue_stem, idem_s=idem_s, lstem=K.lanes_stem,
                         crstem=K.client_ready_stem, clients_ready=K.clients_ready,
                         again=again)

    # ---- agent -----------------------------------------------------------
    def take(self, want=10, alive_ms=0, cap=100, probe_ms=5000, rooms=(),
             agent=AGENT, shared=False, answers=()):
        """answers: the gate's, (destination, granted, ms) triples."""
        rest = [x for a in answers for x in (a[0], int(a[1]), a[2])]
        rest += [x for d, room in rooms for x in (d, room)]
        return self.call("take", rest, ready=K.ready, v1_processing=K.processing(agent),
                         heartbeat=K.heartbeat(agent), agents=K.agents,
                         v1_queue=K.queue, waiting=K.waiting, want=want,
                         alive_ms=alive_ms, agent=agent, cap=cap,
                         qstem=K.queue_stem, rstem=K.request_stem,
                         bstem=K.dest_stem, probe_ms=probe_ms,
                         dstem=K.data_stem, held=K.held(agent),
                         shared=int(shared), answers=len(answers),
                         lstem=K.lanes_stem, crstem=K.client_ready_stem,
                         clients_ready=K.clients_ready)

    def gate(self, what, ms, d=D1):
        return self.call("gate", k=K.gate_stem + d, what=what, ms=ms)

    def breaker_mirror(self, what, d=D1, ms=0, reason="", url="", cooldown=10000):
        return self.call("breaker_mirror", k=K.dest(d), ready=K.ready,
                         gate=K.gate_stem + d, what=what, ms=ms, reason=reason,
                         url=url, d=d, cooldown=cooldown)

    def outcomes(self, records, threshold=3, cooldown=10000, agent=AGENT):
        """records: lists of words (job of outcomes.lua's header)."""
        rest = [w for rec in records for w in rec]
        return self.call("outcomes", rest, v1_processing=K.processing(agent),
                         v1_queue=K.queue, ready=K.ready, waiting=K.waiting,
                         scheduled=K.scheduled, dead=K.dead, counts=K.client_waiting,
                         rstem=K.request_stem, dstem=K.data_stem,
                         bstem=K.dest_stem, qstem=K.queue_stem,
                         threshold=threshold, cooldown=cooldown,
                         held=K.held(agent), lstem=K.lanes_stem,
                         crstem=K.client_ready_stem, clients_ready=K.clients_ready)

    def promote(self, limit=100):
        return self.call("promote", scheduled=K.scheduled, v1_queue=K.queue,
                         ready=K.ready, waiting=K.waiting, limit=limit,
                         qstem=K.queue_stem, lstem=K.lanes_stem, rstem=K.request_stem,
                         crstem=K.client_ready_stem, clients_ready=K.clients_ready)

    def reap(self, only=""):
        return self.call("reap", agents=K.agents, v1_queue=K.queue, ready=K.ready,
                         waiting=K.waiting, pstem=K.processing_stem, only=only,
                         hbstem=K.heartbeat_stem, qstem=K.queue_stem,
                         hstem=K.held_stem, lstem=K.lanes_stem, rstem=K.request_stem,
                         crstem=K.client_ready_stem, clients_ready=K.clients_ready)

    def stats(self, heads=10, lease_ms=5000, agent=AGENT):
        return self.call("stats", lease=K.metrics_lease, waiting=K.waiting,
                         v1_queue=K.queue, scheduled=K.scheduled, dead=K.dead,
                         agents=K.agents, ready=K.ready, agent=agent,
                         lease_ms=lease_ms, pstem=K.processing_stem,
                         qstem=K.queue_stem, rstem=K.request_stem, heads=heads,
                         hstem=K.held_stem, lstem=K.lanes_stem)

    # ---- pbctl -----------------------------------------------------------
    def dead_take(self, letter, job=""):
        return self.call("dead_take", dead=K.dead, v1_queue=K.queue, letter=letter,
                         job=job)

    def ids(self):
        return self.call("ids", v1_queue=K.queue, scheduled=K.scheduled, dead=K.dead,
                         agents=K.agents, ready=K.ready, pstem=K.processing_stem,
                         qstem=K.queue_stem, hstem=K.held_stem, lstem=K.lanes_stem)

    def held_count(self, agent=AGENT):
        return self.call("held_count", processing=K.processing(agent),
                         held=K.held(agent))

    def breaker_set(self, what, n, d, url="", cooldown=10000):
        return self.call("breaker_set", k=K.dest(d), ready=K.ready, what=what, n=n,
                         url=url, d=d, cooldown=cooldown)

    def keys_add(self, digest, entry):
        return self.call("keys_add", clients=K.clients, version=K.clients_version,
                         hash=digest, entry=entry)

    def signing_set(self, what, client, secret=""):
        return self.call("signing_set", signing=K.signing, version=K.signing_version,
                         what=what, client=client, secret=secret)

    def clients_recount(self):
        out = self.call("clients_recount", counts=K.client_waiting, ready=K.ready,
                        scheduled=K.scheduled, agents=K.agents, qstem=K.queue_stem,
                        lstem=K.lanes_stem, rstem=K.request_stem, hstem=K.held_stem)
        return {out[i].decode(): (out[i + 1], out[i + 2]) for i in range(0, len(out), 3)}

    def policy_set(self, what, d, text=""):
        return self.call("policy_set", policies=K.policies, version=K.policies_version,
                         what=what, d=d, text=text)

    def keys_revoke(self, by, what):
        return self.call("keys_revoke", clients=K.clients, version=K.clients_version,
                         by=by, what=what)


@pytest.fixture
def s(m):
    return Scripts(m)


def request(rid, objects, dest=D1, enqueued_ms=1000, client="c1", idem="",
            idem_value="", runs=None, share=0):
    """A request as an ingest node records it (job.h, version 3): its header,
    its data (index, then the objects) and one run of all its postbacks to
    dest, unless runs says otherwise."""
    n = len(objects)
    head = 4 * (n + 1)
    offs, at = [], head
    for o in objects:
        offs.append(at)
        at += len(o)
    index = struct.pack("<%dI" % (n + 1), *(offs + [at]))
    if runs is None:
        runs = [(dest, "%s 0-%d" % (rid, n - 1) if n > 1 else "%s 0" % rid)]
    return {"rid": rid, "n": n, "index": index, "objects": b"".join(objects),
            "header": "2\tP\t%d\t%s\thttp://example.test/{x}" % (enqueued_ms, client),
            "idem": idem, "idem_value": idem_value, "runs": runs, "share": share}


def register(m, agent=AGENT, ttl_ms=10000):
    """An agent as its heartbeat makes it: its key with a TTL, its id in the
    agents set."""
    m.set(K.heartbeat(agent), "info", px=ttl_ms)
    m.sadd(K.agents, agent)


def triples(reply):
    """take's reply as (reference, data, header) tuples, in order."""
    return [tuple(reply[i:i + 3]) for i in range(0, len(reply) - len(reply) % 3, 3)]


__all__ = ["K", "AGENT", "D1", "D2", "queue_size", "request", "register", "triples",
           "now_ms"]
