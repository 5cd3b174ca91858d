"""apps/lua/outcomes.lua, promote.lua, reap.lua and stats.lua: what becomes
of what an agent held; retries coming due; a dead agent's postbacks going
back; the queue's gauges."""
import time

import pytest
import redis

from conftest import AGENT, D1, D2, K, now_ms, queue_size, register, request, triples


def held(m, s, objects=3, want=None, dest=D1, rid="rid1"):
    """A request queued and taken whole by AGENT."""
    s.enqueue([request(rid, [b"{}"] * objects, dest=dest)])
    register(m)
    return [t[0].decode() for t in triples(s.take(want=want or objects))[1:]]


# ---- outcomes ------------------------------------------------------------

def test_delivered_postbacks_leave_and_their_request_goes_with_the_last(m, s):
    x = held(m, s, 2)
    assert s.outcomes([["P", D1], ["A", x[0], "ok"]]) == [1]
    assert m.hget(K.r("rid1"), "n") == b"1"
    assert s.outcomes([["P", D1], ["A", x[1], "ok"]]) == [1]
    assert not m.exists(K.r("rid1"), K.d("rid1"), K.held(AGENT, D1), K.held(AGENT))


def test_a_request_of_one_object_goes_with_its_postback(m, s):
    x = held(m, s, 1)
    assert m.hget(K.r("rid1"), "o") == b"{}"  # one record (enqueue.lua)
    assert s.outcomes([["P", D1], ["A", x[0], "ok"]]) == [1]
    assert not m.exists(K.r("rid1"), K.held(AGENT, D1), K.held(AGENT))
    assert not m.hexists(K.client_waiting, "c1")


def test_a_retry_is_scheduled_with_its_destination_and_delay(m, s):
    x = held(m, s, 1)
    before = now_ms(m)
    sched = "%s %s 1" % (D1, x[0])
    assert s.outcomes([["P", D1], ["R", x[0], sched, 2000, 0, "fail", "http://h:80", "503"]]) == [1]
    due = m.zscore(K.scheduled, sched)
    assert before + 2000 <= due <= now_ms(m) + 2000
    assert m.hget(K.dest(D1), "fails") == b"1"
    assert m.hget(K.r("rid1"), "n") == b"1"  # not ended


def test_a_retried_postback_keeps_its_last_five_outcomes_until_it_ends(m, s):
    """What pbctl show tells: field a<i> of the request, a line per failed
    attempt, the last five; gone when the postback is delivered, and never
    written for one delivered at its first attempt."""
    x = held(m, s, 2)
    rid, i = x[0].split()
    ref = x[0]
    for attempt in range(1, 8):
        sched = "%s %s %s %d" % (D1, rid, i, attempt)
        assert s.outcomes([["P", D1], ["R", ref, sched, 1000, 0, "fail", "http://h:80",
                                       "status 50%d\nmore" % attempt]], threshold=100) == [1]
        ref = "%s %s %d" % (rid, i, attempt)   # as the agent holds it next time
        m.sadd(K.held(AGENT, D1), ref)
    lines = m.hget(K.r(rid), "a" + i).decode().split("\n")
    assert [ln.split(" ", 2)[1:] for ln in lines] == [
        [str(a), "status 50%d more" % a] for a in range(3, 8)]
    assert s.outcomes([["P", D1], ["A", x[1], "ok"]]) == [1]
    assert not m.hexists(K.r(rid), "a" + x[1].split()[1])
    assert s.outcomes([["P", D1], ["A", ref, "ok"]]) == [1]
    assert not m.exists(K.r(rid))  # the request went with its last postback


def test_a_failed_attempts_line_that_cannot_be_written_stops_nothing(m, s):
    """Every record's reference leaves its held set before any record's
    work: a line of failed attempts that cannot be written (here the
    request's key is not a hash) must not stop the batch, or the postbacks
    after it would be in no place at all."""
    x = held(m, s, 2)
    m.delete(K.r("rid1"))
    m.set(K.r("rid1"), "not a hash")
    recs = [["P", D1]] + [["R", r, "%s %s 1" % (D1, r), 1000, 0, "fail", "http://h:80", "503"]
                          for r in x]
    assert s.outcomes(recs, threshold=100) == [1, 1]
    assert m.zcard(K.scheduled) == 2 and not m.exists(K.held(AGENT, D1))


def test_a_429_pauses_its_destination(m, s):
    x = held(m, s, 2, want=1)
    before = now_ms(m)
    sched = "%s %s 1" % (D1, x[0])
    s.outcomes([["P", D1], ["R", x[0], sched, 1000, 30000, "", "http://h:80", "429"]])
    assert m.zscore(K.ready, D1) >= before + 30000


def test_a_park_opens_the_breaker_for_its_length_at_once(m, s):
    """A 410 under on_410=park: the breaker opens at the first one (no
    threshold), for the length the record's pause carries, and the postback
    is scheduled again, not dead."""
    x = held(m, s, 3, want=1)
    before = now_ms(m)
    park = 10 * 365 * 86400 * 1000
    assert s.outcomes([["P", D1], ["R", x[0], "%s %s 1" % (D1, x[0]), 0, park, "park",
                        "http://h:80", "status 410: parked"]], threshold=100) == [2]
    b = m.hgetall(K.dest(D1))
    assert b[b"state"] == b"open" and int(b[b"until"]) >= before + park
    assert m.zscore(K.ready, D1) == int(b[b"until"])
    assert m.zcard(K.scheduled) == 1 and m.llen(K.dead) == 0


def test_a_policy_is_stored_and_every_change_raises_the_version(m, s):
    assert s.policy_set("set", D1, "max_attempts=3\n") == 1
    assert m.hget(K.policies, D1) == b"max_attempts=3\n" and m.get(K.policies_version) == b"1"
    assert s.policy_set("clear", D1) == 0
    assert not m.exists(K.policies) and m.get(K.policies_version) == b"2"
    with pytest.raises(redis.ResponseError, match="set or clear"):
        s.policy_set("drop", D1)


def test_the_thresholdth_failure_opens_the_breaker_and_an_ok_closes_it(m, s):
    x = held(m, s, 4, want=3)  # one still waiting: the destination stays ready
    recs = [["P", D1]] + [["R", r, "%s %s 1" % (D1, r), 1000, 0, "fail", "http://h:80", "refused"]
                          for r in x[:2]]
    assert s.outcomes(recs, threshold=2, cooldown=60000) == [1, 2]
    b = m.hgetall(K.dest(D1))
    assert b[b"state"] == b"open" and b[b"url"] == b"http://h:80" and b[b"reason"] == b"refused"
    assert m.zscore(K.ready, D1) == int(b[b"until"])
    # Kept while open, and twice the cooldown past its "until".
    assert 60000 + 110000 < m.pttl(K.dest(D1)) <= 60000 + 120000
    before = now_ms(m)
    assert s.outcomes([["P", D1], ["A", x[2], "ok"]]) == [3]
    # Closed with nothing to remember: gone, and the destination ready now.
    assert not m.exists(K.dest(D1))
    assert before <= m.zscore(K.ready, D1) <= now_ms(m)


def test_a_failure_below_the_threshold_is_forgotten_later_or_by_a_success(m, s):
    x = held(m, s, 2)
    rec = ["R", x[0], "%s %s 1" % (D1, x[0]), 1000, 0, "fail", "http://h:80", "refused"]
    assert s.outcomes([["P", D1], rec], threshold=5, cooldown=1000) == [1]
    assert m.hget(K.dest(D1), "fails") == b"1"
    assert 1000 < m.pttl(K.dest(D1)) <= 2000  # twice the cooldown
    assert s.outcomes([["P", D1], ["A", x[1], "ok"]]) == [1]
    assert not m.exists(K.dest(D1))


def test_failures_of_many_destinations_leave_nothing_once_they_lapse(m, s):
    """A client can name any number of destinations: each one's breaker
    lapses (here its cooldown is 50 ms), the queues and ready empty."""
    ds = ["%016x" % (0xa000 + i) for i in range(200)]
    s.enqueue([request("rid%d" % i, [b"{}"], dest=d) for i, d in enumerate(ds)])
    register(m)
    recs = []
    for _ in range(3):  # a take looks at 100 destinations at most
        for ref, _, _ in triples(s.take(want=200, cap=1)):
            if ref.startswith(b"@"):
                recs.append(["P", ref[1:].decode()])
            else:
                recs.append(["D", ref.decode(), '{"id":"x"}', "fail", "http://h:80", "refused"])
    assert len(recs) == 400
    assert s.outcomes(recs, threshold=1, cooldown=50) == [2] * 200
    assert len(m.keys(K.dest_stem + "*")) == 200
    time.sleep(0.2)
    assert m.keys(K.dest_stem + "*") == []
    for _ in range(3):  # an empty destination leaves ready at its next turn
        assert s.take(want=10) == []
    assert m.zcard(K.ready) == 0 and m.keys(K.queue_stem + "*") == []


def test_a_dead_letter_is_pushed_and_ends_its_postback(m, s):
    x = held(m, s, 1)
    assert s.outcomes([["P", D1], ["D", x[0], '{"id":"rid1-0"}', "", "http://h:80", "410"]]) == [1]
    assert m.lrange(K.dead, 0, -1) == [b'{"id":"rid1-0"}']
    assert not m.exists(K.r("rid1"))


def test_a_clients_count_goes_down_as_its_postbacks_end_and_is_gone_at_zero(m, s):
    """Delivered and dead postbacks end: their client's count goes down; a
    retry or a hand-back leaves it; at 0 the client leaves the counts."""
    s.enqueue([request("ra", [b"{}"] * 4, client="a"), request("rb", [b"{}"], client="b")])
    register(m)
    refs = [t[0].decode() for t in triples(s.take(want=5)) if not t[0].startswith(b"@")]
    assert m.hgetall(K.client_waiting) == {b"a": b"4", b"b": b"1"}
    a = [x for x in refs if x.startswith("ra ")]
    b = [x for x in refs if x.startswith("rb ")]
    sched = "%s %s 1" % (D1, a[1])
    assert s.outcomes([["P", D1], ["A", a[0], "ok"],
                       ["R", a[1], sched, 1000, 0, "fail", "http://h:80", "503"],
                       ["H", a[2]], ["D", a[3], '{"id":"x"}', "", "http://h:80", "410"],
                       ["A", b[0], "ok"]]) == [1, 1, 1, 1, 1]
    assert m.hgetall(K.client_waiting) == {b"a": b"2"}  # the retry, the handed back


def test_handed_back_goes_to_the_head_of_its_queue(m, s):
    x = held(m, s, 3, want=2)
    assert s.outcomes([["P", D1], ["H", x[1]], ["H", x[0]]]) == [1, 1]
    assert m.lrange(K.q(D1, "c1"), 0, -1) == [x[0].encode(), x[1].encode(), b"rid1 2"]
    assert queue_size(m, K) == 3
    assert m.zscore(K.ready, D1) is not None


def test_what_is_no_longer_held_is_not_done_twice(m, s):
    x = held(m, s, 1)
    m.delete(K.held(AGENT, D1))  # a failover lost the take
    assert s.outcomes([["P", D1], ["A", x[0], "ok"], ["D", x[0], "{}", "", "", ""]]) == [0, 0]
    assert m.hget(K.r("rid1"), "n") == b"1" and m.llen(K.dead) == 0


def test_an_unknown_record_kind_is_refused_before_anything_is_written(m, s):
    x = held(m, s, 1)
    with pytest.raises(redis.ResponseError, match="outcome kind Z"):
        s.outcomes([["P", D1], ["A", x[0], "ok"], ["Z", x[0]]])
    assert m.smembers(K.held(AGENT, D1)) == {x[0].encode()}


def test_version_1_jobs_are_acknowledged_from_the_processing_list(m, s):
    m.lpush(K.queue, "1\tjob-a")
    register(m)
    s.take(want=1)
    assert s.outcomes([["P", ""], ["H", "1\tjob-a"]]) == [1]
    assert m.lrange(K.queue, 0, -1) == [b"1\tjob-a"]
    assert m.llen(K.processing(AGENT)) == 0


# ---- promote -------------------------------------------------------------

def test_due_retries_go_to_the_tail_of_their_queue_and_later_ones_wait(m, s):
    m.rpush(K.q(D1), "rid0 0")
    t = now_ms(m)
    m.zadd(K.scheduled, {"%s rid1 0 1" % D1: t - 1, "%s rid2 0 1" % D1: t + 60000,
                         "1\tv1job": t - 1})
    assert s.promote() == 2
    assert m.lrange(K.q(D1), 0, -1) == [b"rid0 0", b"rid1 0 1"]
    assert m.lrange(K.queue, 0, -1) == [b"1\tv1job"]
    assert int(m.get(K.waiting)) == 1  # the reference; the v1 job counts by its list
    assert m.zrange(K.scheduled, 0, -1) == [("%s rid2 0 1" % D1).encode()]
    assert t <= m.zscore(K.ready, D1) <= now_ms(m)


def test_a_retry_come_due_waits_its_turn_behind_destinations_already_waiting(m, s):
    """Ready is ordered by when a destination became ready or was last
    served: a failing destination's retries cannot keep cutting in front
    of a busy one."""
    s.enqueue([request("rid1", [b"{}"] * 3, dest=D2)])
    time.sleep(0.002)
    t = now_ms(m)
    m.zadd(K.scheduled, {"%s rid9 0 1" % D1: t - 1})
    assert s.promote() == 1
    assert m.zscore(K.ready, D2) < m.zscore(K.ready, D1)
    register(m)
    out = triples(s.take(want=2, cap=1))
    assert [x[0] for x in out] == [b"@" + D2.encode(), b"rid1 0", b"@" + D1.encode(), b"rid9 0 1"]


def test_promote_moves_at_most_its_limit(m, s):
    t = now_ms(m)
    m.zadd(K.scheduled, {"%s rid%d 0 1" % (D1, i): t - 10 for i in range(5)})
    assert s.promote(limit=2) == 2
    assert m.zcard(K.scheduled) == 3


# ---- reap ----------------------------------------------------------------

def test_a_dead_agents_postbacks_go_back_to_the_head_and_it_is_forgotten(m, s):
    x = held(m, s, 3, want=2)
    m.lpush(K.processing(AGENT), "1\tv1job")
    m.delete(K.heartbeat(AGENT))  # its heartbeat expired
    assert s.reap() == 3
    assert sorted(m.lrange(K.q(D1, "c1"), 0, 1)) == sorted(r.encode() for r in x)
    assert m.lrange(K.q(D1, "c1"), -1, -1) == [b"rid1 2"]
    assert m.lrange(K.queue, 0, -1) == [b"1\tv1job"]
    assert queue_size(m, K) == 4
    assert not m.exists(K.held(AGENT), K.held(AGENT, D1), K.processing(AGENT))
    assert not m.sismember(K.agents, AGENT)


def test_a_live_agent_is_left_alone(m, s):
    held(m, s, 2)
    assert s.reap() == 0
    assert m.scard(K.held(AGENT, D1)) == 2 and m.sismember(K.agents, AGENT)


def test_an_agent_reclaims_its_own_and_stays_registered(m, s):
    held(m, s, 2)
    assert s.reap(only=AGENT) == 2
    assert m.llen(K.q(D1, "c1")) == 2 and not m.exists(K.held(AGENT))
    assert m.sismember(K.agents, AGENT)


# ---- stats ---------------------------------------------------------------

def test_stats_count_each_place_once_for_the_lease_holder(m, s):
    t = now_ms(m)
    s.enqueue([request("old", [b"{}"] * 2, dest=D1, enqueued_ms=t - 5000),
               request("new", [b"{}"], dest=D2, enqueued_ms=t - 1000)])
    register(m)
    s.take(want=1, rooms=[(D2, 0)])  # one of D1's: held
    m.zadd(K.scheduled, {"%s x 0 1" % D1: t + 1000})
    m.lpush(K.dead, "{}")
    m.zadd(K.ready, {D2: t + 60000})  # held back (a pause)
    ok, waiting, scheduled, in_flight, dead, oldest, blocked = s.stats()
    assert (ok, waiting, scheduled, in_flight, dead, blocked) == (1, 2, 1, 1, 1, 1)
    assert 5000 <= oldest < 10000
    assert s.stats(agent="agent-2") == [0]  # the lease is agent-1's
    assert m.get(K.metrics_lease) == AGENT.encode()
