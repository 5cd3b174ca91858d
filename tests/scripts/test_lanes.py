"""Lanes (apps/lua/prelude.lua): a destination's postbacks wait in a lane
per client, and its turns go round its clients (take.lua), so that one
client's backlog for a partner does not stand in front of another's
postbacks for it. Every way back to a queue finds the postback's lane from
its request's client."""
from conftest import AGENT, D1, D2, K, now_ms, register, request, triples


def rids(out):
    """The request ids of a take's references, in order."""
    return [t[0].split()[0] for t in triples(out) if not t[0].startswith(b"@")]


def test_a_clients_first_postback_waits_one_turn_not_behind_anothers_backlog(m, s):
    s.enqueue([request("big", [b"{}"] * 100, client="a")])
    s.enqueue([request("small", [b"{}"], client="b")])
    assert m.lrange(K.lanes(D1), 0, -1) == [b"a", b"b"]
    register(m)
    # Room for one postback a take (the destination's slots are full but
    # one): a's backlog gets one turn, then b's postback has its own.
    assert rids(s.take(want=1)) == [b"big"]
    assert rids(s.take(want=1)) == [b"small"]
    assert m.lrange(K.lanes(D1), 0, -1) == [b"a"]  # b's lane emptied: unlisted
    assert rids(s.take(want=1)) == [b"big"]


def test_a_take_shares_its_room_between_the_lanes_and_rotates_them(m, s):
    for c in ("a", "b", "c"):
        s.enqueue([request("r" + c, [b"{}"] * 10, client=c)])
    register(m)
    # 7 over 3 lanes: 3, 2, 2 and every lane served: the order stands.
    got = rids(s.take(want=7))
    assert [got.count(r) for r in (b"ra", b"rb", b"rc")] == [3, 2, 2]
    assert m.lrange(K.lanes(D1), 0, -1) == [b"a", b"b", b"c"]
    # 2 over 3: a and b served, so c comes first next time.
    assert sorted(rids(s.take(want=2))) == [b"ra", b"rb"]
    assert m.lrange(K.lanes(D1), 0, -1) == [b"c", b"a", b"b"]
    assert rids(s.take(want=1)) == [b"rc"]


def test_what_a_lane_cannot_use_goes_to_the_others_and_empty_lanes_leave(m, s):
    s.enqueue([request("ra", [b"{}"], client="a"), request("rb", [b"{}"] * 10, client="b")])
    register(m)
    got = rids(s.take(want=6))
    assert got.count(b"ra") == 1 and got.count(b"rb") == 5
    assert m.lrange(K.lanes(D1), 0, -1) == [b"b"]
    assert len(rids(s.take(want=10))) == 5
    assert not m.exists(K.lanes(D1)) and m.zscore(K.ready, D1) is None
    assert int(m.get(K.waiting)) == 0


def test_handed_back_reclaimed_and_retried_postbacks_go_to_their_clients_lanes(m, s):
    s.enqueue([request("ra", [b"{}"] * 2, client="a"), request("rb", [b"{}"] * 2, client="b")])
    register(m)
    out = [t[0].decode() for t in triples(s.take(want=4))[1:]]
    assert not m.exists(K.lanes(D1))
    a0, b0 = [x for x in out if x.startswith("ra")][0], [x for x in out if x.startswith("rb")][0]
    # Handed back: to the head of its client's lane, which is listed again.
    assert s.outcomes([["P", D1], ["H", a0]]) == [1]
    assert m.lrange(K.q(D1, "a"), 0, -1) == [a0.encode()]
    # A retry come due: to the tail of its client's lane.
    assert s.outcomes([["P", D1], ["R", b0, "%s %s 1" % (D1, b0), 0, 0, "", "", "503"]]) == [1]
    assert s.promote() == 1
    assert m.lrange(K.q(D1, "b"), 0, -1) == [(b0 + " 1").encode()]
    # Reclaimed from an agent that died: each to its own client's lane.
    m.delete(K.heartbeat(AGENT))
    assert s.reap() == 2
    assert len(m.lrange(K.q(D1, "a"), 0, -1)) == 2 and len(m.lrange(K.q(D1, "b"), 0, -1)) == 2
    assert sorted(m.lrange(K.lanes(D1), 0, -1)) == [b"a", b"b"]
    assert int(m.get(K.waiting)) == 4
    assert sorted(s.ids()[0]) == sorted(m.lrange(K.q(D1, "a"), 0, -1) +
                                        m.lrange(K.q(D1, "b"), 0, -1))


def test_a_lane_queued_before_lanes_existed_is_found_and_listed(m, s):
    """A release before lanes pushed to <p>:q:<d> and listed nothing: the
    take finds that lane beside the listed ones, and ids counts it."""
    s.enqueue([request("new", [b"{}"] * 3, client="a")])
    s.enqueue([request("old", [b"{}"] * 3, client="")])
    m.lrem(K.lanes(D1), 0, "")  # as the old release left it: unlisted
    m.rpush(K.q(D1), "older 0")
    m.incr(K.waiting)
    assert len(s.ids()[0]) == 3  # the run "new 0-2", "old 0-2", "older 0"
    register(m)
    got = rids(s.take(want=2))
    assert sorted(got) == [b"new", b"old"]
    assert m.lrange(K.lanes(D1), 0, -1) == [b"a", b""]
    assert len(rids(s.take(want=10))) == 5
    assert not m.exists(K.lanes(D1), K.q(D1), K.q(D1, "a"))


def test_the_oldest_head_is_read_from_a_destinations_first_lane(m, s):
    t = now_ms(m)
    s.enqueue([request("ra", [b"{}"], client="a", enqueued_ms=t - 5000)])
    s.enqueue([request("rb", [b"{}"], client="b", enqueued_ms=t - 1000)])
    register(m)
    st = s.stats()
    assert st[0] == 1 and 5000 <= st[5] < 6000


def test_the_clients_counts_are_made_again_from_the_postbacks(m, s):
    """pbctl clients --reconcile: waiting in lanes (runs counted out),
    scheduled, held by an agent; a count that drifted is corrected, one of
    a client with nothing left removed, the others left as they are."""
    s.enqueue([request("ra", [b"{}"] * 5, client="a"), request("rb", [b"{}"] * 3, client="b")])
    register(m)
    out = [t[0].decode() for t in triples(s.take(want=4))[1:]]
    held_a = [x for x in out if x.startswith("ra")]
    assert s.outcomes([["P", D1], ["R", held_a[0], "%s %s 1" % (D1, held_a[0]), 60000, 0,
                                   "", "", "503"]]) == [1]
    assert m.hgetall(K.client_waiting) == {b"a": b"5", b"b": b"3"}
    assert s.clients_recount() == {}  # exact: nothing to correct
    m.hset(K.client_waiting, mapping={"a": 9, "gone": 4})
    m.hdel(K.client_waiting, "b")
    assert s.clients_recount() == {"a": (9, 5), "b": (0, 3), "gone": (4, 0)}
    assert m.hgetall(K.client_waiting) == {b"a": b"5", b"b": b"3"}


# ---- turns between clients (take.lua) ------------------------------------

def dest(i):
    return "%016x" % (0xd000 + i)


def test_a_client_with_one_destination_is_not_behind_anothers_thousands(m, s):
    """Client a has postbacks for 300 destinations ready before client b's
    one destination: b still gets a client's part of the very next take
    (ready's own order would have served a's first 100 first)."""
    s.enqueue([request("ra%d" % i, [b"{}"], client="a", dest=dest(i)) for i in range(300)])
    s.enqueue([request("rb", [b"{}"] * 30, client="b", dest=D1)])
    assert m.zrange(K.clients_ready, 0, -1) == [b"a", b"b"]
    assert m.zcard(K.client_ready_stem + "a") == 300
    register(m)
    got = rids(s.take(want=30))
    assert got.count(b"rb") >= 30 // 3, got  # a's part, b's part, the rest's
    # Served clients go behind: b, served, is behind a now.
    assert m.zrange(K.clients_ready, 0, -1)[-1] in (b"a", b"b")


def test_a_destination_that_waits_leaves_its_clients_window(m, s):
    s.enqueue([request("rb", [b"{}"], client="b", dest=D1)])
    later = now_ms(m) + 60000
    m.zadd(K.ready, {D1: later}, xx=True)  # a pause: a 429's Retry-After
    register(m)
    s.take(want=5)
    assert m.zscore(K.client_ready_stem + "b", D1) == later
    assert m.llen(K.q(D1, "b")) == 1


def test_every_client_index_empties_with_its_lanes(m, s):
    s.enqueue([request("ra", [b"{}"] * 2, client="a"), request("rb", [b"{}"], client="b",
                                                                 dest=D2)])
    register(m)
    assert len(rids(s.take(want=10))) == 3
    assert not m.exists(K.clients_ready, K.client_ready_stem + "a",
                        K.client_ready_stem + "b", K.lanes(D1), K.lanes(D2))


def test_a_stale_client_entry_is_dropped(m, s):
    m.zadd(K.client_ready_stem + "ghost", {D1: 0})
    m.zadd(K.clients_ready, {"ghost": 0})
    register(m)
    assert s.take(want=5) == []
    assert not m.exists(K.client_ready_stem + "ghost", K.clients_ready)
