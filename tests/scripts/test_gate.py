"""apps/lua/gate.lua and breaker_mirror.lua: with several shards, a
destination's probes and paced takes are granted for the whole cluster,
and a breaker opened or closed on one shard is written on every other."""
from conftest import D1, K, now_ms


def test_one_probe_at_a_time_until_released(m, s):
    assert s.gate("probe", 5000) == [1, 5000]
    granted, wait = s.gate("probe", 5000)
    assert granted == 0 and 4000 < wait <= 5000
    assert s.gate("release", 0) == [1, 0]
    assert s.gate("probe", 5000)[0] == 1


def test_paced_takes_one_a_pace_and_the_gate_lapses(m, s):
    granted, next_ms = s.gate("pace", 300)
    assert granted == 1 and 140 <= next_ms <= 150  # up to half a pace early
    granted, wait = s.gate("pace", 300)
    assert granted == 0 and 100 < wait <= 150
    assert 0 < m.pttl(K.gate_stem + D1) <= 300
    # Asked half a pace early, granted; the pace is kept from when the
    # take was due, not from when it was asked.
    due = int(m.hget(K.gate_stem + D1, "next"))
    m.hset(K.gate_stem + D1, "next", now_ms(m) + 150)
    assert s.gate("pace", 300)[0] == 1
    assert int(m.hget(K.gate_stem + D1, "next")) - now_ms(m) >= 440
    assert due > 0
    m.hset(K.gate_stem + D1, "next", 0)  # its pace is over
    assert s.gate("pace", 300)[0] == 1
    # A probe and a pace are counted apart; the hash lives as the later.
    assert s.gate("probe", 5000)[0] == 1
    assert m.pttl(K.gate_stem + D1) > 4000


def test_a_mirror_opens_a_closed_breaker_and_never_shortens_an_open_one(m, s):
    m.zadd(K.ready, {D1: 0})
    m.hset(K.gate_stem + D1, "probe", now_ms(m) + 60000)
    assert s.breaker_mirror("open", ms=2000, reason="status 503", url="http://x:80") == 1
    b = m.hgetall(K.dest(D1))
    assert b[b"state"] == b"open" and b[b"url"] == b"http://x:80"
    assert m.zscore(K.ready, D1) == int(b[b"until"]) >= now_ms(m) + 1500
    assert m.pttl(K.dest(D1)) > 0  # it lapses as the agents' breakers do
    assert m.hget(K.gate_stem + D1, "probe") is None  # the probe is over
    s.breaker_set("open", 60000, D1)  # an operator's, for longer
    assert s.breaker_mirror("open", ms=2000) == 0
    assert int(m.hget(K.dest(D1), "until")) >= now_ms(m) + 50000


def test_a_mirror_closes_an_open_breaker_and_forgets_failures(m, s):
    m.zadd(K.ready, {D1: 10 ** 13})
    m.hset(K.dest(D1), mapping={"state": "open", "until": 10 ** 13, "fails": 7})
    assert s.breaker_mirror("close") == 1
    assert not m.exists(K.dest(D1))  # closed and clean: nothing to keep
    assert m.zscore(K.ready, D1) <= now_ms(m)
    m.hset(K.dest(D1), mapping={"state": "closed", "fails": 3})
    assert s.breaker_mirror("close") == 0
    assert not m.exists(K.dest(D1))
