"""The whole Redis tier stopped and started: AOF keeps the queue, the
scheduled retries and the dead letters."""

from conftest import ingest, of_mark, redis_ids
from pbcluster import wait_until


def queued_state(cluster, m):
    """Every queue, request header and data, and the waiting count, as
    they are."""
    out = {"waiting": m.get(cluster.key("waiting"))}
    for pattern in ("q:*", "lanes:*", "r:*", "d:*", "queue", "ready"):
        for k in m.scan_iter(match=cluster.key(pattern), count=1000):
            t = m.type(k)
            out[k] = (m.lrange(k, 0, -1) if t == b"list" else
                      m.hgetall(k) if t == b"hash" else
                      m.get(k) if t == b"string" else m.zrange(k, 0, -1))
    return out


def test_queue_retries_and_dead_letters_survive_a_full_redis_restart(
        cluster, receiver, mark, behave):
    agents = cluster.agent_names
    rules = {"/404": (404, {}, b"gone"), "/later": (500, {"Retry-After": "3600"}, b"later")}
    behave(lambda rec: next((v for k, v in rules.items() if k in rec["path"]),
                            (200, {}, b"ok")))
    url = receiver.url + mark
    dead = ingest(cluster, {"endpoint": {"method": "GET", "url": url + "/404"},
                            "data": [{"a": 1}]}).json()["ids"]
    later = ingest(cluster, {"endpoint": {"method": "GET", "url": url + "/later"},
                             "data": [{"a": 1}]}).json()["ids"]
    m = cluster.master()
    assert wait_until(lambda: any(dead[0].encode() in e
                                  for e in m.lrange(cluster.key("dead"), 0, -1))
                      and redis_ids(cluster).get(later[0]) == "scheduled", 20, 0.1)
    for a in agents:
        cluster.stop(a)
    try:
        queued = ingest(cluster, {"endpoint": {"method": "GET", "url": url + "/q?i={i}"},
                                  "data": [{"i": i} for i in range(50)]}).json()["ids"]
        m = cluster.master()
        before = {"queue": queued_state(cluster, m),
                  "scheduled": m.zrange(cluster.key("scheduled"), 0, -1, withscores=True),
                  "dead": m.lrange(cluster.key("dead"), 0, -1),
                  "ids": redis_ids(cluster)}
        assert any(dead[0].encode() in e for e in before["dead"])
        assert before["ids"][later[0]] == "scheduled"
        assert all(before["ids"][i] == "queued" for i in queued)

        redis_tier = [n["name"] for n in cluster.topo["redis_nodes"]]
        sentinels = [n["name"] for n in cluster.topo["sentinels"]]
        for name in sentinels + redis_tier:
            cluster.stop(name)
        for name in redis_tier + sentinels:
            cluster.start(name)
        cluster.wait_ready(90)
        m = cluster.master()
        after = {"queue": queued_state(cluster, m),
                 "scheduled": m.zrange(cluster.key("scheduled"), 0, -1, withscores=True),
                 "dead": m.lrange(cluster.key("dead"), 0, -1),
                 "ids": redis_ids(cluster)}
        assert after == before
    finally:
        for a in agents:
            cluster.start(a)
    want = set(queued)
    assert receiver.wait_for(lambda rs: want <= {r["id"] for r in of_mark(rs, mark)}, 60)
