"""apps/lua/take.lua: an agent takes postbacks fairly across ready
destinations, only while registered, past open breakers and rates."""
import pytest
import redis

from conftest import AGENT, D1, D2, K, now_ms, register, request, triples


@pytest.mark.parametrize("how", ["no heartbeat", "heartbeat too short", "not in agents"])
def test_an_agent_not_registered_takes_nothing(m, s, how):
    s.enqueue([request("rid1", [b"{}"])])
    if how == "heartbeat too short":
        register(m, ttl_ms=1000)
    elif how == "not in agents":
        m.set(K.heartbeat(AGENT), "info", px=10000)
    with pytest.raises(redis.ResponseError, match="NOTREGISTERED"):
        s.take(alive_ms=5000)
    assert m.lrange(K.q(D1, "c1"), 0, -1) == [b"rid1 0"]
    assert not m.exists(K.held(AGENT))


def test_a_take_cuts_a_run_holds_what_it_took_and_sends_data_and_header_once(m, s):
    q = request("rid1", [b'{"a":1}', b'{"bb":2}', b'{"c":3}'])
    s.enqueue([q])
    register(m)
    out = triples(s.take(want=2))
    assert out[0] == (b"@" + D1.encode(), None, None)
    assert out[1] == (b"rid1 0", b'{"a":1}', q["header"].encode())
    assert out[2] == (b"rid1 1", b'{"bb":2}', b"")
    assert m.lrange(K.q(D1, "c1"), 0, -1) == [b"rid1 2"]
    assert m.smembers(K.held(AGENT, D1)) == {b"rid1 0", b"rid1 1"}
    assert m.smembers(K.held(AGENT)) == {D1.encode()}
    assert int(m.get(K.waiting)) == 1


def test_a_request_of_one_object_comes_from_its_one_record(m, s):
    """Its object is in its hash (enqueue.lua): one read, no data key."""
    one, more = request("one", [b'{"a":1}']), request("more", [b'{"b":2}', b'{"c":3}'])
    s.enqueue([one, more])
    register(m)
    m.config_resetstat()
    out = triples(s.take(want=3))
    assert out[1:] == [(b"one 0", b'{"a":1}', one["header"].encode()),
                       (b"more 0", b'{"b":2}', more["header"].encode()),
                       (b"more 1", b'{"c":3}', b"")]
    calls = m.info("commandstats")
    assert calls["cmdstat_hmget"]["calls"] == 3  # a record each, and the breaker
    assert calls["cmdstat_getrange"]["calls"] == 2  # the index and data of "more" only


def test_a_destination_left_empty_leaves_ready(m, s):
    s.enqueue([request("rid1", [b"{}"])])
    register(m)
    assert len(triples(s.take(want=5))) == 2
    assert m.zscore(K.ready, D1) is None
    assert s.take(want=5) == []


def test_turns_are_shared_between_destinations(m, s):
    s.enqueue([request("ra", [b"{}"] * 4, dest=D1), request("rb", [b"{}"] * 4, dest=D2)])
    register(m)
    out = triples(s.take(want=4))
    got = {d: [t for t in out if t[0].startswith(b"r" + d)] for d in (b"a", b"b")}
    assert len(got[b"a"]) == 2 and len(got[b"b"]) == 2


def test_version_1_jobs_come_first_and_go_to_the_processing_list(m, s):
    m.lpush(K.queue, "1\tjob-a", "1\tjob-b")  # version 1 ingest pushed left
    s.enqueue([request("rid1", [b"{}"])])
    register(m)
    out = triples(s.take(want=2))
    assert out == [(b"1\tjob-a", None, None), (b"1\tjob-b", None, None)]
    assert m.lrange(K.processing(AGENT), 0, -1) == [b"1\tjob-b", b"1\tjob-a"]
    assert m.llen(K.q(D1, "c1")) == 1


def test_an_open_breaker_is_skipped_until_its_time_then_probed_once(m, s):
    s.enqueue([request("rid1", [b"{}"] * 3)])
    register(m)
    until = now_ms(m) + 60000
    m.hset(K.dest(D1), mapping={"state": "open", "until": until})
    # Nothing to take: the reply says when the next turn comes (ms).
    [next_ms] = s.take(want=3)
    assert 59000 <= next_ms <= 60000
    assert m.zscore(K.ready, D1) == until
    # Its time has come: one postback, the probe, and the breaker half open.
    m.hset(K.dest(D1), "until", 0)
    m.zadd(K.ready, {D1: 0})
    out = triples(s.take(want=3, probe_ms=5000))
    assert [t[0] for t in out[1:]] == [b"rid1 0"]
    b = m.hgetall(K.dest(D1))
    assert b[b"state"] == b"half" and b[b"probe"] == AGENT.encode()
    assert int(b[b"until"]) >= now_ms(m) + 4000
    assert m.zscore(K.ready, D1) == int(b[b"until"])


def test_a_rate_gives_one_postback_a_turn(m, s):
    s.enqueue([request("rid1", [b"{}"] * 3)])
    register(m)
    m.hset(K.dest(D1), "rate", 2)
    before = now_ms(m)
    assert len(triples(s.take(want=3))) == 2
    assert m.zscore(K.ready, D1) >= before + 500
    [next_ms] = s.take(want=3)  # not before its next turn, in that many ms
    assert 0 <= next_ms <= 500


def test_no_room_left_for_a_waiting_destination_says_capped(m, s):
    s.enqueue([request("rid1", [b"{}"] * 3)])
    register(m)
    assert s.take(want=3, rooms=[(D1, 0)]) == [b"CAPPED"]
    out = s.take(want=3, cap=1)
    assert len(triples(out)) == 2 and out[-1] == b"CAPPED"


def test_a_reference_whose_request_is_gone_comes_without_data(m, s):
    m.rpush(K.q(D1), "gone 0")
    m.incr(K.waiting)
    m.zadd(K.ready, {D1: 0})
    register(m)
    assert triples(s.take(want=1))[1] == (b"gone 0", None, None)
    assert m.smembers(K.held(AGENT, D1)) == {b"gone 0"}


# ---- several shards: probes and paces are the gate's (gate.lua) ----------


def test_a_shared_take_asks_the_gate_before_a_probe(m, s):
    """With several shards an open breaker whose time has come is not
    probed on this shard's word: the take answers an ask and moves the
    destination on by the probe's time; a granted answer takes the probe
    (half open), a refused one leaves the destination for as long as the
    gate said."""
    s.enqueue([request("rid1", [b"{}"] * 3)])
    register(m)
    m.hset(K.dest(D1), mapping={"state": "open", "until": 0})
    before = now_ms(m)
    assert triples(s.take(want=3, shared=True, probe_ms=5000)) == [
        (b"?" + D1.encode(), b"probe", 5000)]
    assert m.hget(K.dest(D1), "state") == b"open" and m.llen(K.q(D1, "c1")) == 1
    assert m.zscore(K.ready, D1) >= before + 5000
    # Refused: it waits as long as the gate said, and asks nothing meanwhile.
    [next_ms] = s.take(want=3, shared=True, answers=[(D1, False, 60000)])
    assert 59000 <= next_ms <= 60000
    assert m.zscore(K.ready, D1) >= before + 60000
    # Granted: one postback, the probe, whatever its score.
    out = triples(s.take(want=3, shared=True, answers=[(D1, True, 5000)]))
    assert [t[0] for t in out] == [b"@" + D1.encode(), b"rid1 0"]
    assert m.hget(K.dest(D1), "state") == b"half"


def test_a_shared_take_paces_a_rated_destination_by_the_gate(m, s):
    s.enqueue([request("rid1", [b"{}"] * 3)])
    register(m)
    m.hset(K.dest(D1), "rate", 4)
    before = now_ms(m)
    assert triples(s.take(want=3, shared=True)) == [(b"?" + D1.encode(), b"pace", 250)]
    assert m.zscore(K.ready, D1) >= before + 250
    out = triples(s.take(want=3, shared=True, answers=[(D1, True, 700)]))
    assert [t[0] for t in out] == [b"@" + D1.encode(), b"rid1 0"]
    assert m.zscore(K.ready, D1) >= before + 700  # the gate's pace, not this shard's


def test_one_shard_takes_as_before_without_the_gate(m, s):
    s.enqueue([request("rid1", [b"{}"] * 3)])
    register(m)
    m.hset(K.dest(D1), "rate", 4)
    out = triples(s.take(want=3))
    assert [t[0] for t in out] == [b"@" + D1.encode(), b"rid1 0"]
