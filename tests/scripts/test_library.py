"""The scripts as one library of Redis Functions (scripts/gen_lua.py): what
each may do while memory is full (its flags), and versions side by side."""
import pytest
import redis

import gen_lua
from conftest import AGENT, D1, K, register, request, triples


def test_full_memory_refuses_a_request_and_writes_nothing(m, s):
    s.enqueue([request("rid1", [b"{}"])])
    before = sorted(m.keys("*"))
    m.config_set("maxmemory", 1)
    try:
        with pytest.raises(redis.exceptions.ResponseError, match="^OOM"):
            s.enqueue([request("rid2", [b"{}"])])
    finally:
        m.config_set("maxmemory", 0)
    assert sorted(m.keys("*")) == before
    assert m.lrange(K.q(D1, "c1"), 0, -1) == [b"rid1 0"]


def test_full_memory_still_lets_agents_take_and_finish_postbacks(m, s):
    """allow-oom: a take and an outcome move and delete, the way out of a
    full Redis; enqueue.lua (no flag) would have been refused."""
    s.enqueue([request("rid1", [b'{"a":1}', b'{"b":2}'])])
    register(m)
    m.config_set("maxmemory", 1)
    try:
        out = triples(s.take(want=5))
        assert [t[0] for t in out[1:]] == [b"rid1 0", b"rid1 1"]
        assert s.outcomes([["P", D1], ["A", "rid1 0", "ok"], ["A", "rid1 1", "ok"]]) == [1, 1]
        assert s.promote() == 0
        assert s.reap() == 0
        assert s.held_count() == 0
        assert s.stats()[0] == 1
    finally:
        m.config_set("maxmemory", 0)
    assert not m.exists(K.r("rid1"), K.d("rid1"), K.held(AGENT, D1))


def test_read_only_functions_run_on_a_replica(server):
    """no-writes: pbctl's counts may be read where writes are refused."""
    server.config_set("replica-read-only", "yes")
    server.execute_command("REPLICAOF", "127.0.0.1", "1")  # nobody there
    try:
        assert server.fcall(gen_lua.function_name("held_count"), 2,
                            K.processing(AGENT), K.held(AGENT)) == 0
        with pytest.raises(redis.exceptions.ReadOnlyError):
            server.fcall(gen_lua.function_name("promote"), 4, K.scheduled, K.queue,
                         K.ready, K.waiting, 10, K.queue_stem)
    finally:
        server.execute_command("REPLICAOF", "NO", "ONE")


def test_a_new_version_loads_beside_the_old_one(m, s):
    """A changed library is another library with other function names:
    daemons of the old version keep calling theirs during an upgrade."""
    text = gen_lua.library()
    old = gen_lua.library_name()
    other = text.replace(gen_lua.version(), "0123456789")
    m.function_load(other)
    try:
        libs = {lib[b"library_name"] if isinstance(lib, dict) else
                dict(zip(lib[::2], lib[1::2]))[b"library_name"]
                for lib in m.function_list()}
        assert {old.encode(), b"pb_0123456789"} <= libs
        s.enqueue([request("rid1", [b"{}"])])
        assert m.fcall("pb_held_count_0123456789", 2, K.processing(AGENT),
                       K.held(AGENT)) == 0
    finally:
        m.function_delete("pb_0123456789")
