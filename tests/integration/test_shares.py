"""A share of the queue per client (docs/design.md, "A share per client"):
a client past its share is answered 429 with nothing queued while another
client is never refused, and every client's count is exact: what it has
queued, and nothing once all of it is delivered."""
import json
import time

import requests

from conftest import client_counts, ingest, of_mark, pbctl, redis_ids

SHARE = 300
PER_REQUEST = 50


def post_as(cluster, key, url, n):
    return requests.post(cluster.endpoint + "/ingest",
                         json={"endpoint": {"method": "GET", "url": url},
                               "data": [{"i": i} for i in range(n)]},
                         headers={"Authorization": "Bearer " + key}, timeout=30)


def test_a_client_over_its_share_gets_429_and_another_is_never_refused(cluster, receiver,
                                                                         mark):
    rc, out = pbctl(cluster, "keys", "add", "greedy")
    greedy = out.splitlines()[0].strip()
    pbctl(cluster, "keys", "share", "greedy", str(SHARE))
    assert "greedy" in pbctl(cluster, "keys", "list")[1]
    time.sleep(1.2)  # the ingest nodes reload the keys and shares
    url = receiver.url + mark + "/share?i={i}"
    for a in cluster.agent_names:
        cluster.stop(a)
    try:
        before = redis_ids(cluster)
        answers = [post_as(cluster, greedy, url, PER_REQUEST) for _ in range(10)]
        codes = [a.status_code for a in answers]
        assert codes == [200] * (SHARE // PER_REQUEST) + [429] * (10 - SHARE // PER_REQUEST), codes
        over = answers[-1]
        assert over.headers.get("Retry-After") and over.json()["client_queued"] == SHARE, \
            over.text
        # Nothing of a refused request was queued: exactly the accepted ones.
        accepted = {i for a in answers if a.status_code == 200 for i in a.json()["ids"]}
        assert set(redis_ids(cluster)) - set(before) == accepted
        assert client_counts(cluster).get("greedy") == SHARE
        # Another client is not affected.
        for _ in range(10):
            r = ingest(cluster, {"endpoint": {"method": "GET", "url": url},
                                 "data": [{"i": i} for i in range(PER_REQUEST)]})
            assert r.status_code == 200, r.text
    finally:
        for a in cluster.agent_names:
            cluster.start(a)
    assert receiver.wait_for(lambda rs: len(of_mark(rs, mark)) >= SHARE + 10 * PER_REQUEST, 60)
    # Delivered: the greedy client counts nothing, and may send again.
    assert receiver.wait_for(lambda _: "greedy" not in client_counts(cluster), 10), \
        client_counts(cluster)
    assert post_as(cluster, greedy, url, PER_REQUEST).status_code == 200
    pbctl(cluster, "keys", "share", "greedy", "0")
    pbctl(cluster, "keys", "revoke", "greedy")


def test_the_clients_counts_are_what_they_have_in_redis(cluster, receiver, mark):
    """The clients' counts add up to the postbacks in Redis that are not
    dead letters (queued, scheduled, in flight), after every test before
    this one (retries, dead letters, reclaims, restarts, failovers): they
    do not drift."""
    def exact():
        held = [i for i, st in redis_ids(cluster).items() if st != "dead"]
        return sum(client_counts(cluster).values()) == len(held)
    assert receiver.wait_for(lambda _: exact(), 60), \
        (client_counts(cluster), len(redis_ids(cluster)))
    # And client by client: counted again from the postbacks, nothing to
    # correct.
    p = cluster.pbctl("clients", "--reconcile", "--json")
    out = json.loads(p.stdout)
    assert p.returncode == 0 and all(s["corrected"] == [] for s in out["shards"]), (out, p.stderr)


def test_a_count_that_drifted_is_corrected(cluster):
    m = cluster.master()
    m.hincrby(cluster.key("client-waiting"), "drifted", 7)
    out = json.loads(cluster.pbctl("clients", "--reconcile", "--json").stdout)
    corrected = [c for shard in out["shards"] for c in shard["corrected"]]
    assert {"client": "drifted", "was": 7, "now": 0} in corrected, out
    assert "drifted" not in client_counts(cluster)
