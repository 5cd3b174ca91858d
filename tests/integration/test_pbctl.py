"""pbctl as a script, a health check and an on-call operator see it:
`status`'s verdict and exit code (0 healthy, 1 degraded, 2 down), every
command's --help, --json and refusal of bad arguments, `show` for a
postback in each state, `dests` while a breaker is open, and dead letters
selected by destination, client, error and time."""
import contextlib
import json
import re
import time

from pbcluster import wait_until
from conftest import ingest, of_mark, pbctl
from test_agents import send


def status(cluster):
    return pbctl(cluster, "status", check=False)


def test_status_exit_code_is_healthy_degraded_or_down(cluster):
    rc, out = status(cluster)
    assert rc == 0 and "health   ok\n" in out, out

    # One replica down: the cluster works with less room, 1.
    master = cluster.master_node()
    replica = next(n["name"] for n in cluster.topo["redis_nodes"] if n["name"] != master)
    cluster.stop(replica)
    try:
        assert wait_until(lambda: status(cluster)[0] == 1, 15), status(cluster)
        rc, out = status(cluster)
        assert "health   DEGRADED: a replica is down" in out, out
    finally:
        cluster.start(replica)
    assert wait_until(lambda: status(cluster)[0] == 0, 60), status(cluster)

    # Two of three Sentinels stopped: no master a majority names, 2.
    stopped = [s["name"] for s in cluster.topo["sentinels"]][:2]
    for s in stopped:
        cluster.stop(s)
    try:
        rc, out = status(cluster)
        assert rc == 2, out
        assert "health   DOWN: no master named by a majority of the Sentinels" in out, out
    finally:
        for s in stopped:
            cluster.start(s)
    assert wait_until(lambda: status(cluster)[0] == 0, 60), status(cluster)


# ---- every command: --help, --json, bad arguments ---------------------------

def commands(cluster):
    """The commands `pbctl --help` lists, as argument lists."""
    p = cluster.pbctl("--help")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.split("commands:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    names = [re.split(r"\s{2,}", ln.strip())[0] for ln in lines if ln.startswith("  ")]
    # "dead list [N]" -> ["dead", "list"]: the words before the arguments
    return [[w for w in n.split() if re.fullmatch(r"[a-z]+", w)] for n in names]


def test_every_command_has_help_and_refuses_bad_arguments_with_exit_2(cluster):
    cmds = commands(cluster)
    assert ["show"] in cmds and ["dests"] in cmds and ["dead", "replay"] in cmds, cmds
    for c in cmds:
        p = cluster.pbctl(*c, "--help")
        assert p.returncode == 0 and p.stdout.startswith("usage: pbctl " + " ".join(c)), \
            (c, p.stdout, p.stderr)
        p = cluster.pbctl(*c, "--no-such-option")
        assert p.returncode == 2 and "unknown option '--no-such-option'" in p.stderr, (c, p.stderr)
        p = cluster.pbctl(*c, "--json=yes")
        assert p.returncode == 2 and "--json takes no value" in p.stderr, (c, p.stderr)
    for args, said in ((["nosuch"], "unknown command 'nosuch'"),
                       (["dead", "nosuch"], "unknown command 'dead nosuch'"),
                       (["keys"], None),  # keys alone lists them: fine
                       (["status", "extra"], "unexpected argument 'extra'"),
                       (["drain", "--timeout=0"], "--timeout takes 1 to 86400, not '0'"),
                       (["drain", "--timeout", "soon"], "--timeout takes 1 to 86400"),
                       (["dead", "list", "0"], "dead list takes 1 to 1000000"),
                       (["dead", "list", "--since", "yesterday"], "--since takes a time ago"),
                       (["dead", "replay"], "takes an ID, --all, or a filter"),
                       (["dead", "replay", "x-1", "--all"], "an ID or --all, not both"),
                       (["show"], "pbctl show needs ID"),
                       (["show", "no-dash-here-x"], "is no postback id"),
                       (["breakers", "open", "ftp:/x"], "neither a URL nor a destination id"),
                       (["breakers", "rate", "http://h.example/", "lots"], "takes 0 to 1000000"),
                       (["keys", "revoke", "--hash", "abc"], "8 digits at least")):
        p = cluster.pbctl(*args)
        if said is None:
            assert p.returncode == 0, (args, p.stderr)
            continue
        assert p.returncode == 2 and said in p.stderr, (args, p.returncode, p.stderr)
    # --help is never an argument: no key issued for a client "--help".
    assert cluster.pbctl("keys", "add", "--help").returncode == 0
    assert "--help" not in pbctl(cluster, "keys", "list")[1]
    # --opt=value is read (a wait of 1 s, not the default 300).
    t0 = time.time()
    cluster.pbctl("drain", "--timeout=1")
    assert time.time() - t0 < 30


def as_json(cluster, *args, rc=0):
    """pbctl's answer with --json, parsed; its exit code must be rc (None:
    any)."""
    p = cluster.pbctl(*args, "--json")
    assert rc is None or p.returncode == rc, (args, p.returncode, p.stdout, p.stderr)
    return json.loads(p.stdout)


def shard0(doc):
    """The first shard's part of an answer of a command run on every shard."""
    assert doc["exit"] == doc["shards"][0]["exit"], doc
    return doc["shards"][0]


def test_every_command_answers_json(cluster, receiver, mark):
    st = shard0(as_json(cluster, "status"))
    assert st["health"] == "ok" and st["master"]["addr"] and len(st["replicas"]) == 2, st
    assert {a["agent"] for a in st["agents"]} == set(cluster.agent_names), st
    assert st["queue"]["waiting"] >= 0 and st["ingest"], st
    for args, field in ((["dests"], "destinations"), (["dead", "list"], "dead"),
                        (["ids"], "postbacks"), (["breakers"], "breakers"),
                        (["functions"], "libraries")):
        doc = shard0(as_json(cluster, *args))
        assert isinstance(doc[field], list), (args, doc)
    # (other tests' retries may still be scheduled: drained or not, it says)
    doc = shard0(as_json(cluster, "drain", "--timeout", "2", rc=None))
    assert doc["drained"] == (doc["exit"] == 0) and "scheduled" in doc, doc
    assert as_json(cluster, "show", "nosuchrequest-0", rc=1)["shards"][0]["state"] == "unknown"
    key = as_json(cluster, "keys", "add", "json-" + mark[-6:])
    assert key["client"] == "json-" + mark[-6:] and len(key["sha256"]) == 64, key
    assert any(k["client"] == key["client"] for k in as_json(cluster, "keys", "list")["keys"])
    assert as_json(cluster, "keys", "revoke", key["client"]) == {"revoked": 1}
    dest = "http://json-%s.example:81/" % mark[-6:]
    assert as_json(cluster, "breakers", "rate", dest, "7")["shards"][0]["rate"] == 7
    assert as_json(cluster, "breakers", "rate", dest, "0")["shards"][0]["done"] == "rate"
    libs = shard0(as_json(cluster, "functions", "load"))
    assert libs["loaded"] == "already" and libs["library"].startswith("pb_"), libs


# ---- show, dests, dead letters by destination --------------------------------

def show(cluster, pid, rc=0):
    return shard0(as_json(cluster, "show", pid, rc=rc))


def test_show_follows_a_postback_in_each_state(cluster, receiver, mark, behave):
    """Queued behind an open breaker, in flight at an agent, scheduled after
    a failure (with that failure), dead, and delivered while its request
    still has a postback left; an id nobody knows is exit 1."""
    answers = {"0": (500, {"Retry-After": "60"}, b"later"), "1": (400, {}, b"no"),
               "3": (200, {}, b"at once")}
    behave(lambda rec: answers.get(rec["path"][-1]) or (time.sleep(4), (200, {}, b"ok"))[1])
    retry, dead, held, done = send(cluster, receiver, mark, 4)
    want = {retry: "scheduled", dead: "dead", held: "in-flight"}
    assert wait_until(lambda: all(show(cluster, i)["state"] == s for i, s in want.items()), 15), \
        {i: show(cluster, i) for i in want}
    s = show(cluster, retry)
    assert s["attempts"] == 1 and s["due"] and s["url"].endswith(mark + "/a?i=0"), s
    assert [(f["attempt"], f["reason"]) for f in s["failed_attempts"]] == [(1, "status 500")], s
    assert s["client"] and s["dest"] and s["data"] == {"i": 0}, s
    s = show(cluster, held)
    assert s["agent"] in cluster.agent_names, s
    assert show(cluster, dead)["dead"]["status"] == 400
    assert wait_until(lambda: show(cluster, done)["state"] == "delivered", 10), show(cluster, done)
    text = pbctl(cluster, "show", retry)[1]
    assert "state      scheduled" in text and "attempt 1  status 500" in text, text
    assert show(cluster, "nosuchrequest-3", rc=1)["state"] == "unknown"

    # Queued: its destination parked.
    with parked(cluster, receiver, mark + "/q", 3) as ids:
        s = show(cluster, ids[2])
        assert s["state"] == "queued" and s["ahead"] == 0 and s["attempts"] == 0, s
    pbctl(cluster, "dead", "purge", dead)


@contextlib.contextmanager
def parked(cluster, receiver, path, n):
    """n postbacks to path on a destination of their own (the receiver as
    localhost) whose breaker an operator opened; the breaker closed after,
    and all of them delivered."""
    url = receiver.url.replace("127.0.0.1", "localhost")
    pbctl(cluster, "breakers", "open", url, "--for", "60")
    ids = []
    try:
        r = ingest(cluster, {"endpoint": {"method": "GET", "url": url + path + "?i={i}"},
                             "data": [{"i": i} for i in range(n)]})
        ids = r.json()["ids"]
        yield ids
    finally:
        pbctl(cluster, "breakers", "close", url)
    assert receiver.wait_for(lambda rs: set(ids) <= {r["id"] for r in rs}, 20)


def test_dests_shows_a_destination_whose_breaker_is_open(cluster, receiver, mark):
    with parked(cluster, receiver, mark + "/d", 25):
        time.sleep(1.2)
        rows = shard0(as_json(cluster, "dests"))["destinations"]
        d = next((d for d in rows if "//localhost:" in d["url"]), None)
        assert d and d["breaker"] == "open" and d["waiting"] == 25, rows
        assert d["oldest_age_s"] >= 1 and d["until"], d
        text = pbctl(cluster, "dests")[1]
        assert d["dest"] in text and "open" in text, text


def test_dead_replay_by_destination_replays_only_its_letters(cluster, receiver, mark, behave):
    up = {"on": False}
    behave(lambda rec: (200, {}, b"ok") if up["on"] else (400, {}, b"no"))
    here = send(cluster, receiver, mark, 3)
    url = receiver.url.replace("127.0.0.1", "localhost")
    r = ingest(cluster, {"endpoint": {"method": "GET", "url": url + mark + "/b?i={i}"},
                         "data": [{"i": i} for i in range(2)]})
    there = r.json()["ids"]

    def letters(*filters):
        return {d["id"] for d in shard0(as_json(cluster, "dead", "list", "1000", *filters))["dead"]}
    assert wait_until(lambda: set(here + there) <= letters(), 20), letters()
    assert set(here) <= letters("--dest", receiver.url) and not set(there) & letters(
        "--dest", receiver.url)
    assert set(here + there) <= letters("--error", "status 400", "--since", "5m")
    assert not letters("--until", "2020-01-01T00:00:00Z")
    client = shard0(as_json(cluster, "dead", "list", "1"))["dead"][0]["client"]
    assert client and set(here + there) <= letters("--client", client)
    assert not letters("--client", "nobody-" + mark[-6:])
    up["on"] = True
    done = shard0(as_json(cluster, "dead", "replay", "--dest", receiver.url, "--since", "10m"))
    assert set(here) <= set(done["ids"]) and not set(there) & set(done["ids"]), done
    assert done["replayed"] == len(done["ids"]), done
    def delivered():
        return {r["id"] for r in of_mark(receiver.requests, mark) if r["status"] == 200}
    assert wait_until(lambda: set(here) <= delivered(), 20), delivered()
    time.sleep(1)
    assert not delivered() & set(there)
    assert set(there) <= letters()
    left = shard0(as_json(cluster, "dead", "list", "1000", "--dest", url))["dead"]
    purged = shard0(as_json(cluster, "dead", "purge", "--dest", url))
    assert set(there) <= set(purged["ids"]) == {d["id"] for d in left}, (purged, left)
    assert not letters("--dest", url)
