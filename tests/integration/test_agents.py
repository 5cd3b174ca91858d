"""Agents killed, stopped, restarted: every postback still arrives."""
import collections
import contextlib
import json
import os
import re
import signal
import time

from conftest import ROOT, delivery_log_lines, exit_status, ingest, of_mark, pbctl
from pbcluster import wait_until


def agents(cluster):
    return cluster.agent_names


def agent_log(cluster, a):
    """Agent a's log; its bytes are not all UTF-8 once a poison job passed."""
    with open(cluster.path("log", a + ".log"), errors="replace") as f:
        return f.read()


def wait_all(receiver, mark, ids, timeout):
    want = set(ids)
    return receiver.wait_for(lambda rs: want <= {r["id"] for r in of_mark(rs, mark)},
                             timeout)


def duplicates(receiver, mark):
    c = collections.Counter(r["id"] for r in of_mark(receiver.requests, mark))
    return sum(n - 1 for n in c.values())


def sigterm_all_agents(cluster):
    """SIGTERM every agent at once; returns ({agent: pid}, seconds until all
    were gone). They stay stopped until start_all_agents."""
    pids = {a: cluster.pid(a) for a in agents(cluster)}
    t0 = time.time()
    for a in agents(cluster):
        cluster.stop(a, wait=False)
    for a in agents(cluster):
        while cluster.pid(a) and time.time() - t0 < 30:
            time.sleep(0.05)
    return pids, time.time() - t0


def start_all_agents(cluster):
    for a in agents(cluster):
        cluster.start(a)


def send(cluster, receiver, mark, n, path="/a?i={i}"):
    ids = []
    for start in range(0, n, 100):
        r = ingest(cluster, {"endpoint": {"method": "GET", "url": receiver.url + mark + path},
                             "data": [{"i": i} for i in range(start, min(n, start + 100))]})
        assert r.status_code == 200, r.text
        ids += r.json()["ids"]
    return ids


def test_sigkill_every_agent_mid_delivery(cluster, receiver, mark, behave):
    behave(lambda rec: (time.sleep(1.5), (200, {}, b"slow ok"))[1])
    ids = send(cluster, receiver, mark, 300)
    # Wait until both agents hold a full load of slow deliveries.
    def both_hold_32():
        held = [int(x) for x in re.findall(r"in flight (\d+)", pbctl(cluster, "status", check=False)[1])]
        return len(held) == 2 and min(held) >= 32
    wait_until(both_hold_32, 20, 0.1)
    killed = [cluster.kill(a, signal.SIGKILL) for a in agents(cluster)]
    assert all(killed)
    # The supervisor restarts them; each takes back its own processing list.
    assert wait_all(receiver, mark, ids, 120), "not every postback arrived"
    dups = duplicates(receiver, mark)
    print("SIGKILL all agents: %d postbacks, %d duplicates" % (len(ids), dups))
    assert dups <= 2 * cluster.topo["vars"]["pb_agent_concurrency"]
    # What was in flight may all have reached the receiver before the
    # supervisor's restart pause is over: wait for the restarts themselves.
    assert wait_until(lambda: all(cluster.pid(a) and cluster.pid(a) not in killed
                                  for a in agents(cluster)), 20)


def test_sigterm_every_agent_mid_stream(cluster, receiver, mark, behave):
    behave(lambda rec: (time.sleep(0.3), (200, {}, b"ok"))[1])
    ids = send(cluster, receiver, mark, 300)
    time.sleep(1)
    pids, took = sigterm_all_agents(cluster)
    start_all_agents(cluster)
    grace = cluster.topo["vars"]["pb_agent_shutdown_grace_ms"] / 1000
    assert took < grace + 2, "agents took %.1f s to stop" % took
    for a, pid in pids.items():
        assert exit_status(cluster, pid) == "exited with status 0", a
        with open(cluster.path("log", a + ".log")) as f:
            assert "no new postbacks" in f.read()
    assert wait_all(receiver, mark, ids, 120)
    print("SIGTERM all agents: stopped in %.1f s, %d duplicates"
          % (took, duplicates(receiver, mark)))


def test_dead_letter_replay_delivers_once_the_receiver_recovers(
        cluster, receiver, mark, behave):
    state = {"up": False}
    behave(lambda rec: (200, {}, b"ok") if state["up"] else (500, {}, b"down"))
    ids = send(cluster, receiver, mark, 2)
    wait_until(lambda: all(i in pbctl(cluster, "dead", "list", "1000")[1] for i in ids), 30)
    _, shown = pbctl(cluster, "dead", "show", ids[0])
    assert '"status": 500' in shown and '"attempts": 5' in shown
    state["up"] = True
    _, out = pbctl(cluster, "dead", "replay", ids[0])
    assert "replayed: 1" in out
    assert receiver.wait_for(lambda rs: [r for r in of_mark(rs, mark)
                                         if r["id"] == ids[0] and r["status"] == 200], 20)
    _, out = pbctl(cluster, "dead", "purge", ids[1])
    assert "purged: 1" in out
    _, out = pbctl(cluster, "dead", "list", "1000")
    assert ids[0] not in out and ids[1] not in out
    time.sleep(1)
    assert [r["id"] for r in of_mark(receiver.requests, mark) if r["status"] == 200] == [ids[0]]
    # The replayed postback started again at attempt 1.
    lines = [l for l in delivery_log_lines(cluster, ids[0], want=6)
             if "outcome=delivered" in l]
    assert len(lines) == 1 and " attempt=1 " in lines[0], lines


def test_grace_over_hands_back_what_is_in_flight(cluster, receiver, mark, behave):
    """Deliveries slower than the grace: the agents stop waiting, give their
    postbacks back to the queue, exit 0; the postbacks arrive later."""
    behave(lambda rec: (time.sleep(6), (200, {}, b"slow"))[1])
    ids = send(cluster, receiver, mark, 40)
    time.sleep(1.5)
    pids, took = sigterm_all_agents(cluster)
    grace = cluster.topo["vars"]["pb_agent_shutdown_grace_ms"] / 1000
    behave(lambda rec: (200, {}, b"ok"))
    start_all_agents(cluster)
    assert grace <= took < grace + 3, "stopped after %.1f s" % took
    handed = 0
    for a, pid in pids.items():
        assert exit_status(cluster, pid) == "exited with status 0", a
        with open(cluster.path("log", a + ".log")) as f:
            m = re.findall(r"grace period over: handing back (\d+)", f.read())
        handed += int(m[-1]) if m else 0
    assert handed > 0
    assert wait_all(receiver, mark, ids, 60)
    print("grace over: %d handed back, %d duplicates" % (handed, duplicates(receiver, mark)))


def test_agent_that_never_returns_is_reaped_by_the_others(cluster, receiver, mark, behave):
    """An agent host dies for good: once its heartbeat expires, another agent
    moves what it held back to the queue."""
    behave(lambda rec: (time.sleep(1), (200, {}, b"ok"))[1])
    ids = send(cluster, receiver, mark, 100)
    # The victim is an agent holding postbacks: one fetch may take them all.
    def holding():
        held = re.findall(r"agent\s+(\S+)\s+alive in flight (\d+)",
                          pbctl(cluster, "status", check=False)[1])
        return next((a for a, n in held if int(n) > 0), None)
    victim = wait_until(holding, 10, every=0.1)
    assert victim, "no agent held anything"
    survivor = next(a for a in agents(cluster) if a != victim)
    cluster.stop(victim, sig=signal.SIGKILL)  # and it stays down
    try:
        # What it was delivering may reach the receiver anyway; what counts
        # is that its processing list is taken back once the heartbeat expires.
        ttl = cluster.topo["vars"]["pb_agent_heartbeat_ttl_ms"] / 1000
        listed = lambda: re.search(r"agent\s+%s\s" % victim, pbctl(cluster, "status", check=False)[1])
        assert wait_until(lambda: not listed(), ttl + 30, every=0.5), \
            pbctl(cluster, "status", check=False)[1]
        assert wait_all(receiver, mark, ids, 60), "held postbacks never came back"
        with open(cluster.path("log", survivor + ".log")) as f:
            assert "from agents whose heartbeat expired" in f.read()
    finally:
        cluster.start(victim)


def acl_rules(m, user):
    """A user's rules as ACL LIST shows them, one argument of ACL SETUSER
    each (a selector, in parentheses, is one)."""
    line = next(l.decode() if isinstance(l, bytes) else l for l in m.acl_list()
                if (l.decode() if isinstance(l, bytes) else l).startswith("user %s " % user))
    out, depth, cur = [], 0, ""
    for ch in line[len("user %s " % user):]:
        if ch == " " and depth == 0:
            out.append(cur)
            cur = ""
            continue
        depth += ch == "("
        depth -= ch == ")"
        cur += ch
    return out + [cur] if cur else out


def test_an_agent_reaped_while_cut_off_takes_nothing_until_registered(cluster, receiver, mark):
    """A partition's heal: the other side reaped the agents (heartbeats gone,
    ids out of the agents set) and they cannot register yet. They must take
    nothing: a job in the list of an agent no reaper knows would be seen by
    nobody (`pbctl ids` included) until that agent restarts."""
    m = cluster.redis(cluster.master_node())
    # Their heartbeats cannot land (as on a master that refuses writes): the
    # agent user without SET on the heartbeats, SADD on the agents set.
    rules = acl_rules(m, "agent")
    m.execute_command("ACL", "SETUSER", "agent", "reset", *[
        r.replace(" +set", "") if "%s:agent:*" % cluster.topo["vars"]["pb_key_prefix"] in r
        else r.replace(" +sadd", "") if r.endswith("agents +sismember +sadd +srem +smembers)")
        else r for r in rules])
    try:
        for a in agents(cluster):
            m.delete(cluster.key("agent:" + a))
            m.srem(cluster.key("agents"), a)
        # A reap needs an expired heartbeat, and an agent blocks for a new
        # postback only while its heartbeat outlives the block: let the
        # blocks begun before this simulated reap end (250 ms) first.
        time.sleep(1)
        ids = send(cluster, receiver, mark, 20)
        time.sleep(2)  # an agent takes a waiting postback within milliseconds
        held = pbctl(cluster, "ids")[1]
        states = dict(line.split("\t")[1::-1] for line in held.splitlines() if "\t" in line)
        assert {i: states.get(i) for i in ids} == {i: "queued" for i in ids}, held
        assert not of_mark(receiver.requests, mark), "delivered while unregistered"
    finally:
        m.execute_command("ACL", "SETUSER", "agent", "reset", *rules)
    assert wait_all(receiver, mark, ids, 20), "not delivered once registered again"
    assert any("registering before taking" in agent_log(cluster, a) for a in agents(cluster)), \
        "no agent said it was not registered"


def test_pbctl_ids_says_where_each_postback_is(cluster, receiver, mark, behave):
    """One postback waits for a retry, one is dead, one is being delivered:
    `pbctl ids` lists each under its state (and the in-flight one under the
    agent that holds it)."""
    # A 500 with Retry-After: this postback waits (a 429 or 503 would
    # pause the whole destination, every other test's too).
    answers = {"0": (500, {"Retry-After": "60"}, b"later"), "1": (400, {}, b"no")}
    behave(lambda rec: answers.get(rec["path"][-1]) or (time.sleep(4), (200, {}, b"ok"))[1])
    retry, dead, held = send(cluster, receiver, mark, 3)

    def states():
        rows = [l.split("\t") for l in pbctl(cluster, "ids")[1].splitlines()]
        return {r[1]: (r[0], r[2]) for r in rows if len(r) == 3}
    want = {retry: "scheduled", dead: "dead", held: "in-flight"}
    got = wait_until(lambda: (s := states()) and all(
        s.get(i, ("",))[0] == st for i, st in want.items()) and s, 10)
    assert got, states()
    assert got[held][1] in agents(cluster), got[held]
    pbctl(cluster, "dead", "purge", dead)


def test_a_poison_job_is_dead_lettered_and_blocks_nothing(cluster, receiver, mark):
    """A job that comes out of Redis broken — an id with CR LF that would
    become a header, bytes that are not UTF-8 — goes to the dead letters with
    its reason; the postbacks around it are delivered and recorded."""
    m = cluster.redis(cluster.master_node())
    poison = b"1\tp" + mark.encode()[-8:] + b"\r\nX-Evil: 1\t0\tG\thttp://x/\xff\t{}"
    before = send(cluster, receiver, mark, 30)
    m.lpush(cluster.key("queue"), poison)
    after = send(cluster, receiver, mark, 30)
    assert wait_all(receiver, mark, before + after, 30), "postbacks around it not delivered"
    dead = lambda: [json.loads(d) for d in m.lrange(cluster.key("dead"), 0, 50)
                    if mark.encode()[-8:] in d]
    assert wait_until(dead, 10), "the poison job was not dead-lettered"
    (rec,) = dead()
    assert rec["error"] == "malformed job" and "\ufffd" in rec["job"], rec
    # Its CR LF did not make a log line of its own.
    for a in agents(cluster):
        assert not any(l.startswith("X-Evil") for l in agent_log(cluster, a).splitlines()), a
    # Every outcome recorded: nothing of ours left waiting or held.
    held = lambda: [l for l in pbctl(cluster, "ids")[1].splitlines()
                    if l.split("\t")[1:2] and l.split("\t")[1] in set(before + after)]
    assert wait_until(lambda: not held(), 10), held()



# Admin's script: queue the jobs, then keep the master busy for ARGV[1]
# seconds, longer than an agent waits for a reply. The agents blocked in
# BLMOVE are served only after it: their moves happen, their replies go to
# connections the agents have closed.
BUSY_PUSH = """
redis.call('LPUSH', KEYS[1], unpack(ARGV, 2))
local t = redis.call('TIME')
local until_us = (t[1] + ARGV[1]) * 1000000 + t[2]
repeat t = redis.call('TIME') until t[1] * 1000000 + t[2] >= until_us
return 1
"""


@contextlib.contextmanager
def no_failover(cluster, down_after_ms=20000):
    """Every Sentinel's down-after raised for the block, restored after: a
    master kept busy on purpose is not failed over."""
    name = cluster.topo["vars"]["pb_master_name"]
    was = cluster.topo["vars"]["pb_sentinel_down_after_ms"]
    sentinels = [cluster.sentinel(a, user="operator") for a in cluster.sentinel_addrs()]
    try:
        for s in sentinels:
            s.execute_command("SENTINEL", "SET", name, "down-after-milliseconds", down_after_ms)
        yield
    finally:
        for s in sentinels:
            s.execute_command("SENTINEL", "SET", name, "down-after-milliseconds", was)


def test_a_take_whose_reply_was_lost_is_returned(cluster, receiver, mark):
    """A move Redis made whose reply the agent never got (it gave up
    waiting): the postback is in the agent's list, not in its hands. The
    agent reconciles its own list after such a take and every postback is
    delivered, no agent restarted."""
    # An agent an earlier test killed may still wait for its restart.
    assert wait_until(lambda: all(cluster.pid(a) for a in agents(cluster)), 30), \
        "agents not running"
    pids = {a: cluster.pid(a) for a in agents(cluster)}
    def lost_takes():
        return sum(agent_log(cluster, a).count("a take lost its connection")
                   for a in agents(cluster))
    before = lost_takes()
    m = cluster.redis(cluster.master_node(), timeout=15)
    # Busy for 4 s, well past the agents' reply timeout (250 ms block + 2 s):
    # every command an agent sends in the first 1.75 s loses its reply, and
    # an agent idle in its take sends one every 250 ms. Short of Redis'
    # busy-reply threshold (5 s); the Sentinels are told to wait, so no
    # failover. An agent may be heartbeating or registering instead at that
    # instant (a heartbeat that loses its reply is another path), so the
    # test tries again, up to three rounds, until a take is what lost it;
    # every round must deliver everything.
    for round_ in range(3):
        time.sleep(1)  # the agents idle in their take, blocked on the wake list
        ids = ["lost%s-%d-%d" % (mark[-8:], round_, i) for i in range(4)]
        jobs = ["1\t%s\t0\tG\t%s%s/l?i=%d\t{}" % (i, receiver.url, mark, n)
                for n, i in enumerate(ids)]
        with no_failover(cluster):
            m.eval(BUSY_PUSH, 1, cluster.key("queue"), 4.0, *jobs)
            assert wait_all(receiver, mark, ids, 30), \
                "postbacks left behind by lost replies (round %d)" % round_
        assert {a: cluster.pid(a) for a in agents(cluster)} == pids, "an agent restarted"
        if wait_until(lambda: lost_takes() > before, 3):
            break
    assert lost_takes() > before, "no take lost its reply in three rounds"


def test_status_shows_every_daemon_and_its_version(cluster):
    """`pbctl status` names each ingest node and agent alive, with the
    version it runs (an upgrade's check that every host took it)."""
    import subprocess
    version = subprocess.run([os.path.join(ROOT, "scripts", "version.sh")],
                             capture_output=True, text=True, check=True).stdout.strip()
    def daemons():
        out = pbctl(cluster, "status", check=False)[1]
        return (out, re.findall(r"^ingest\s+(\S+)\s+(\{.*\})$", out, re.M),
                re.findall(r"^agent\s+(\S+)\s+alive in flight \d+\s+(\{.*\})$", out, re.M))
    # An earlier test may have just restarted an agent: it registers again
    # with its first heartbeat.
    wait_until(lambda: len(daemons()[2]) == len(cluster.agent_names), 30)
    out, ingests, agents_ = daemons()
    listens = {"%s:%d" % (n["host"], n["port"]) for n in cluster.topo["ingest_nodes"]}
    assert {json.loads(i)["listen"] for _, i in ingests} == listens, out
    assert {a for a, _ in agents_} == set(cluster.agent_names), out
    for _, info in ingests + agents_:
        assert json.loads(info)["version"] == version, out


def test_an_upgrade_finds_version_2_references_and_delivers_them(cluster, receiver, mark):
    """What an agent before version 3 left in Redis (apps/common/job.h):
    version 2 references with offsets, their request's data without an
    index, one in an old agent's processing list, one retry scheduled. The
    agents of today deliver all of them once, count them down, and the
    request's keys go with the last."""
    for a in agents(cluster):
        cluster.stop(a)
    try:
        # A request of today gives the destination's id: its queue's name.
        r = ingest(cluster, {"endpoint": {"method": "GET", "url": receiver.url + mark + "/n"},
                             "data": [{}]})
        assert r.status_code == 200, r.text
        m = cluster.master()
        # (a lane: "<p>:q:<d>:<client>")
        d = next(k for k in m.scan_iter(match=cluster.key("q:*"))).decode().split(":")[2]
        rid, objs = "old%s" % mark[-6:], [b'{"i":%d}' % i for i in range(4)]
        offs = [sum(len(o) for o in objs[:i]) for i in range(4)]
        ref = ["%s %s %d %d %d %d" % (d, rid, i, 1 if i == 3 else 0, offs[i], len(objs[i]))
               for i in range(4)]
        header = "2\tG\t%d\t\t%s%s/v2?i={i}" % (int(time.time() * 1000), receiver.url, mark)
        m.hset(cluster.key("r:" + rid), mapping={"h": header, "n": 4})
        m.set(cluster.key("d:" + rid), b"".join(objs))
        m.rpush(cluster.key("q:" + d), ref[0], ref[1])
        m.incrby(cluster.key("waiting"), 2)
        m.zadd(cluster.key("ready"), {d: 0}, nx=True)
        m.rpush(cluster.key("processing:" + agents(cluster)[0]), ref[2])
        m.sadd(cluster.key("agents"), agents(cluster)[0])
        m.zadd(cluster.key("scheduled"), {ref[3]: 0})
    finally:
        for a in agents(cluster):
            cluster.start(a)
    ids = ["%s-%d" % (rid, i) for i in range(4)] + r.json()["ids"]
    assert wait_all(receiver, mark, ids, 30), "a version 2 reference was not delivered"
    got = {g["path"].split("?")[0].rsplit("/", 1)[1] + g["id"]
           for g in of_mark(receiver.requests, mark)}
    assert {"v2%s-%d" % (rid, i) for i in range(4)} <= got, got
    assert duplicates(receiver, mark) == 0
    assert wait_until(lambda: not m.exists(cluster.key("r:" + rid), cluster.key("d:" + rid)), 10)
