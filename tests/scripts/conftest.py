"""The Redis scripts alone (apps/lua), against a real redis-server started
here (on a Unix socket in a temporary folder, no persistence), not through
the daemons. Each script runs as the programs send it: the prelude, then
its file (scripts/gen_lua.py source()); each helper below passes the
arguments in the order the C callers do, by name."""
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
from pbkeys import Keys, queue_size  # noqa: E402

K = Keys("pb")
AGENT = "agent-1"
D1, D2 = "0123456789abcdef", "fedcba9876543210"  # destination ids (dest.h)


@pytest.fixture(scope="session")
def server():
    tmp = tempfile.mkdtemp(prefix="pb-lua-")
    sock = os.path.join(tmp, "redis.sock")
    p = subprocess.Popen(["redis-server", "--port", "0", "--unixsocket", sock,
                          "--save", "", "--appendonly", "no", "--dir", tmp],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        m = redis.Redis(unix_socket_path=sock)
        deadline = time.time() + 10
        while True:
            try:
                m.ping()
                break
            except redis.ConnectionError:
                if time.time() > deadline or p.poll() is not None:
                    raise
                time.sleep(0.05)
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

    def call(self, name, keys, args):
        return self.m.eval(gen_lua.source(name), len(keys), *keys, *args)

    # ---- ingest ----------------------------------------------------------
    def enqueue(self, requests, max_size=1000, idem_s=60):
        """requests: dicts made by request()."""
        args = [max_size, K.queue_stem, idem_s]
        for q in requests:
            args += [K.r(q["rid"]), K.d(q["rid"]), q.get("idem", ""),
                     q.get("idem_value", ""), q["header"], q["n"], q["index"],
                     q["objects"], len(q["runs"])]
            for dest, element in q["runs"]:
                args += [dest, element]
        return self.call("enqueue", [K.waiting, K.queue, K.ready, K.wake], args)

    # ---- agent -----------------------------------------------------------
    def take(self, want=10, alive_ms=0, cap=100, probe_ms=5000, rooms=(),
             agent=AGENT):
        args = [want, alive_ms, agent, cap, K.queue_stem, K.request_stem,
                K.dest_stem, probe_ms, K.data_stem, K.held(agent)]
        for d, room in rooms:
            args += [d, room]
        return self.call("take", [K.ready, K.processing(agent), K.heartbeat(agent),
                                  K.agents, K.queue, K.waiting], args)

    def outcomes(self, records, threshold=3, cooldown=10000, agent=AGENT):
        """records: lists of words (job of outcomes.lua's header)."""
        args = [K.request_stem, K.data_stem, K.dest_stem, K.queue_stem,
                threshold, cooldown, K.held(agent)]
        for rec in records:
            args += list(rec)
        return self.call("outcomes", [K.processing(agent), K.queue, K.ready,
                                      K.waiting, K.scheduled, K.dead], args)

    def promote(self, limit=100):
        return self.call("promote", [K.scheduled, K.queue, K.ready, K.waiting],
                         [limit, K.queue_stem])

    def reap(self, only=""):
        return self.call("reap", [K.agents, K.queue, K.ready, K.waiting],
                         [K.processing_stem, only, K.heartbeat_stem, K.queue_stem,
                          K.held_stem])

    def stats(self, heads=10, lease_ms=5000, agent=AGENT):
        return self.call("stats", [K.metrics_lease, K.waiting, K.queue, K.scheduled,
                                   K.dead, K.agents, K.ready],
                         [agent, lease_ms, K.processing_stem, K.queue_stem,
                          K.request_stem, heads, K.held_stem])

    # ---- pbctl -----------------------------------------------------------
    def dead_take(self, letter, job=""):
        return self.call("dead_take", [K.dead, K.queue], [letter, job])

    def ids(self):
        return self.call("ids", [K.queue, K.scheduled, K.dead, K.agents, K.ready],
                         [K.processing_stem, K.queue_stem, K.held_stem])

    def held_count(self, agent=AGENT):
        return self.call("held_count", [K.processing(agent), K.held(agent)], [])

    def breaker_set(self, what, n, d, url=""):
        return self.call("breaker_set", [K.dest(d), K.ready], [what, n, url, d])

    def keys_add(self, digest, entry):
        return self.call("keys_add", [K.clients, K.clients_version], [digest, entry])

    def keys_revoke(self, by, what):
        return self.call("keys_revoke", [K.clients, K.clients_version], [by, what])


@pytest.fixture
def s(m):
    return Scripts(m)


def request(rid, objects, dest=D1, enqueued_ms=1000, client="c1", idem="",
            idem_value="", runs=None):
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
            "idem": idem, "idem_value": idem_value, "runs": runs}


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
