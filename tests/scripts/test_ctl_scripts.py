"""The scripts pbctl runs: dead_take, ids, held_count, breaker_set,
keys_add, keys_revoke and signing_set (apps/lua)."""
import pytest
import redis

from conftest import AGENT, D1, D2, K, now_ms, register, request


def test_a_dead_letter_is_replayed_once(m, s):
    m.lpush(K.dead, "letter-a", "letter-b")
    assert s.dead_take("letter-a", "1\tjob-a") == 1
    assert s.dead_take("letter-a", "1\tjob-a") == 0  # a second replay finds nothing
    assert m.lrange(K.queue, 0, -1) == [b"1\tjob-a"]
    assert m.lrange(K.dead, 0, -1) == [b"letter-b"]


def test_a_dead_letter_is_purged(m, s):
    m.lpush(K.dead, "letter-a")
    assert s.dead_take("letter-a") == 1
    assert not m.exists(K.dead, K.queue)


def test_ids_sees_every_place_once(m, s):
    s.enqueue([request("ra", [b"{}"] * 2, dest=D1), request("rb", [b"{}"], dest=D2)])
    register(m)
    s.take(want=1, rooms=[(D2, 0)])
    m.lpush(K.queue, "1\tv1")
    m.zadd(K.scheduled, {"%s rc 0 1" % D1: 1})
    m.lpush(K.dead, "{}")
    m.lpush(K.processing(AGENT), "1\tv1held")
    queued, scheduled, dead, agent, holds = s.ids()
    assert sorted(queued) == [b"1\tv1", b"ra 1", b"rb 0"]
    assert scheduled == [("%s rc 0 1" % D1).encode()] and dead == [b"{}"]
    assert agent == AGENT.encode() and sorted(holds) == [b"1\tv1held", b"ra 0"]


def test_held_count_adds_the_list_and_every_held_set(m, s):
    s.enqueue([request("ra", [b"{}"] * 2, dest=D1), request("rb", [b"{}"], dest=D2)])
    register(m)
    s.take(want=3)
    m.lpush(K.processing(AGENT), "1\tv1held")
    assert s.held_count() == 4
    assert s.held_count(agent="nobody") == 0


def test_an_operator_opens_and_closes_a_breaker(m, s):
    m.zadd(K.ready, {D1: 0})
    before = now_ms(m)
    assert s.breaker_set("open", 60000, D1, url="http://h:80") == 1
    b = m.hgetall(K.dest(D1))
    assert b[b"state"] == b"open" and b[b"url"] == b"http://h:80"
    assert b[b"reason"] == b"opened by an operator"
    assert int(b[b"until"]) >= before + 60000 and m.zscore(K.ready, D1) == int(b[b"until"])
    assert 60000 + 19000 < m.pttl(K.dest(D1)) <= 60000 + 20000  # twice the cooldown past
    s.breaker_set("close", 0, D1)
    assert not m.exists(K.dest(D1))  # nothing left to say
    assert before <= m.zscore(K.ready, D1) <= now_ms(m)


def test_a_breaker_on_a_destination_not_ready_does_not_make_it_ready(m, s):
    s.breaker_set("close", 0, D2)
    assert m.zscore(K.ready, D2) is None


def test_an_operator_sets_and_clears_a_rate(m, s):
    s.breaker_set("rate", 5, D1)
    assert m.hget(K.dest(D1), "rate") == b"5"
    assert m.pttl(K.dest(D1)) == -1  # an operator's setting does not lapse
    s.breaker_set("rate", 0, D1)
    assert not m.exists(K.dest(D1))


def test_every_change_to_the_keys_moves_their_version(m, s):
    assert s.keys_add("aa11", "alice 1") == 1
    assert s.keys_add("bb22", "bob 2") == 1
    assert s.keys_add("bb33", "bob 3") == 1
    assert int(m.get(K.clients_version)) == 3
    assert s.keys_revoke("name", "bob") == 2
    assert int(m.get(K.clients_version)) == 4
    assert s.keys_revoke("hash", "aa") == 1
    assert int(m.get(K.clients_version)) == 5
    assert s.keys_revoke("name", "carol") == 0
    assert int(m.get(K.clients_version)) == 5  # nothing went: no reload
    assert m.hlen(K.clients) == 0


def test_signing_secrets_rotate_newest_first_and_each_change_moves_the_version(m, s):
    assert s.signing_set("add", "acme", "whsec_A") == 1
    assert m.hget(K.signing, "acme") == b"whsec_A"
    assert s.signing_set("add", "acme", "whsec_B") == 2
    assert m.hget(K.signing, "acme") == b"whsec_B whsec_A"
    assert s.signing_set("add", "acme", "whsec_C") == 2   # never more than two
    assert m.hget(K.signing, "acme") == b"whsec_C whsec_B"
    assert s.signing_set("retire", "acme") == 1
    assert m.hget(K.signing, "acme") == b"whsec_C"
    assert s.signing_set("off", "acme") == 0
    assert not m.exists(K.signing)
    assert m.get(K.signing_version) == b"5"
    with pytest.raises(redis.ResponseError, match="add, retire or off"):
        s.signing_set("sometimes", "acme")
