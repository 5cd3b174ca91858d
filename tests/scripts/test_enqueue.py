"""apps/lua/enqueue.lua: a round of requests, each queued whole, refused
whole, or answered from an earlier try."""
import pytest
import redis

from conftest import D1, D2, K, queue_size, request


def test_a_request_is_queued_whole(m, s):
    q = request("rid1", [b'{"a":1}', b'{"a":2}', b'{"a":3}'])
    assert s.enqueue([q]) == [[1, 3]]
    assert m.lrange(K.q(D1, "c1"), 0, -1) == [b"rid1 0-2"]
    assert m.zscore(K.ready, D1) > 0  # ready since now (the master's clock)
    assert queue_size(m, K) == 3
    assert m.hgetall(K.r("rid1")) == {b"h": q["header"].encode(), b"n": b"3"}
    assert m.get(K.d("rid1")) == q["index"] + q["objects"]
    assert m.lrange(K.wake, 0, -1) == [b"1"]


def test_a_request_of_one_object_is_one_record(m, s):
    q = request("rid1", [b'{"a":1}'])
    assert s.enqueue([q]) == [[1, 1]]
    assert m.hgetall(K.r("rid1")) == {b"h": q["header"].encode(), b"n": b"1",
                                      b"o": b'{"a":1}'}
    assert not m.exists(K.d("rid1"))
    assert m.lrange(K.q(D1, "c1"), 0, -1) == [b"rid1 0"]


def test_runs_go_to_their_destinations_in_request_order(m, s):
    a = request("ra", [b"{}", b"{}"], runs=[(D1, "ra 0"), (D2, "ra 1")])
    b = request("rb", [b"{}"], runs=[(D1, "rb 0")])
    assert s.enqueue([a, b]) == [[1, 2], [1, 3]]
    assert m.lrange(K.q(D1, "c1"), 0, -1) == [b"ra 0", b"rb 0"]
    assert m.lrange(K.q(D2, "c1"), 0, -1) == [b"ra 1"]
    assert int(m.get(K.waiting)) == 3


def test_a_full_queue_refuses_the_request_and_writes_nothing(m, s):
    m.set(K.waiting, 8)
    m.rpush(K.queue, "1\tv1 job")  # a version 1 job counts too: size 9
    assert s.enqueue([request("rid1", [b"{}", b"{}"])], max_size=10) == [[0, 9]]
    assert not m.exists(K.q(D1, "c1"), K.r("rid1"), K.d("rid1"), K.wake)
    assert queue_size(m, K) == 9


def test_each_request_of_a_round_is_decided_alone(m, s):
    big, small = request("big", [b"{}"] * 3), request("small", [b"{}"])
    assert s.enqueue([big, small], max_size=2) == [[0, 0], [1, 1]]
    assert m.lrange(K.q(D1, "c1"), 0, -1) == [b"small 0"]
    assert not m.exists(K.r("big"))


def test_a_second_try_after_a_lost_reply_queues_nothing_twice(m, s):
    q = request("rid1", [b"{}", b"{}"])
    assert s.enqueue([q]) == [[1, 2]]
    assert s.enqueue([q], again=1) == [[1, 2]]
    assert m.lrange(K.q(D1, "c1"), 0, -1) == [b"rid1 0-1"]
    assert int(m.get(K.waiting)) == 2


def test_an_idempotency_key_answers_a_replay_with_the_first(m, s):
    idem = K.idem_stem + "c1:k1"
    first = request("rid1", [b"{}"], idem=idem, idem_value="rid1")
    again = request("rid2", [b"{}"], idem=idem, idem_value="rid2")
    assert s.enqueue([first]) == [[1, 1]]
    assert m.get(idem) == b"rid1 1"
    assert 0 < m.ttl(idem) <= 60
    assert s.enqueue([again]) == [[2, 1, b"rid1 1"]]
    assert not m.exists(K.r("rid2"))
    assert m.llen(K.q(D1, "c1")) == 1


def test_a_key_twice_in_one_round_is_a_replay_of_the_first(m, s):
    idem = K.idem_stem + "c1:k1"
    a = request("rid1", [b"{}"], idem=idem, idem_value="rid1")
    b = request("rid2", [b"{}"], idem=idem, idem_value="rid2")
    assert s.enqueue([a, b]) == [[1, 1], [2, 1, b"rid1 1"]]
    assert m.llen(K.q(D1, "c1")) == 1 and not m.exists(K.r("rid2"))


def test_a_wake_token_already_there_is_not_pushed_again(m, s):
    m.lpush(K.wake, 1)
    s.enqueue([request("rid1", [b"{}"])])
    assert m.llen(K.wake) == 1


def test_a_round_stopped_part_way_marks_no_request_stored(m, s):
    m.set(K.q(D2, "c1"), "not a list")
    a = request("ra", [b"{}"], dest=D1)
    b = request("rb", [b"{}"], dest=D2, idem=K.idem_stem + "c1:k", idem_value="rb")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        s.enqueue([a, b])
    assert not m.exists(K.r("ra"), K.d("ra"), K.r("rb"), K.d("rb"),
                        K.idem_stem + "c1:k")


# ---- a share per client --------------------------------------------------

def test_each_client_counts_its_postbacks_and_one_over_its_share_is_refused(m, s):
    """A request that would take its client past the share it carries is
    refused whole ({3, size, queued}), nothing queued; another client, and
    a request that fits, are not affected, also in the same round."""
    a1 = request("a1", [b"{}"] * 3, client="a", share=4)
    assert s.enqueue([a1]) == [[1, 3]]
    assert m.hgetall(K.client_waiting) == {b"a": b"3"}
    a2 = request("a2", [b"{}"] * 2, client="a", share=4)
    b1 = request("b1", [b"{}"] * 2, client="b", share=4)
    a3 = request("a3", [b"{}"], client="a", share=4)
    assert s.enqueue([a2, b1, a3]) == [[3, 3, 3], [1, 5], [1, 6]]
    assert not m.exists(K.r("a2"), K.d("a2"))
    assert m.lrange(K.q(D1, "a"), 0, -1) == [b"a1 0-2", b"a3 0"]
    assert m.lrange(K.q(D1, "b"), 0, -1) == [b"b1 0-1"]
    assert m.lrange(K.lanes(D1), 0, -1) == [b"a", b"b"]
    assert m.hgetall(K.client_waiting) == {b"a": b"4", b"b": b"2"}
    # Share 0: no limit of its own (max_queue_size still holds).
    assert s.enqueue([request("a4", [b"{}"] * 5, client="a")]) == [[1, 11]]
    assert m.hget(K.client_waiting, "a") == b"9"


def test_a_replay_or_a_second_try_counts_nothing_twice(m, s):
    q = request("rid1", [b"{}", b"{}"], client="a", idem=K.idem_stem + "a:k1",
                idem_value="rid1 2", share=10)
    assert s.enqueue([q]) == [[1, 2]]
    assert s.enqueue([q]) == [[2, 2, b"rid1 2 2"]]  # the key: a replay
    q2 = request("rid2", [b"{}"], client="a", share=10)
    assert s.enqueue([q2]) == [[1, 3]]
    assert s.enqueue([q2], again=1) == [[1, 3]]  # its hash is there: a second try
    assert m.hget(K.client_waiting, "a") == b"3"
