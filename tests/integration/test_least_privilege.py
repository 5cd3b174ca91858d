"""Each user of Redis and of the Sentinels may do its job and nothing more:
every command in the tables below is tried with that user's password and
must be refused (NOPERM, or NOAUTH for no user at all), or allowed."""
import pytest
import redis

import gen_lua

# Sentinel: (user or None for no AUTH, command, allowed). A client's
# password must not be able to point the master's name at a server of its
# own (SET, REMOVE, MONITOR) nor force failovers.
SENTINEL_CASES = [
    (None, ["SENTINEL", "get-master-addr-by-name", "{name}"], False),
    ("client", ["SENTINEL", "get-master-addr-by-name", "{name}"], True),
    ("client", ["PING"], True),
    ("client", ["SENTINEL", "SET", "{name}", "quorum", "1"], False),
    ("client", ["SENTINEL", "REMOVE", "{name}"], False),
    ("client", ["SENTINEL", "MONITOR", "evil", "127.0.0.1", "1", "2"], False),
    ("client", ["SENTINEL", "FAILOVER", "{name}"], False),
    ("client", ["SENTINEL", "RESET", "*"], False),
    ("client", ["SENTINEL", "CONFIG", "SET", "resolve-hostnames", "yes"], False),
    ("client", ["SENTINEL", "MASTERS"], False),
    ("client", ["ACL", "LIST"], False),
    ("client", ["SHUTDOWN"], False),
    ("operator", ["SENTINEL", "MASTER", "{name}"], True),
]

# Redis: (user, command, allowed); keys under the cluster's prefix unless
# the case says otherwise.
REDIS_CASES = [
    (None, ["GET", "{p}:queue"], False),
    ("ingest", ["LLEN", "{p}:queue"], True),
    ("ingest", ["DEL", "{p}:queue"], False),
    ("ingest", ["FLUSHALL"], False),
    ("ingest", ["CONFIG", "SET", "maxmemory", "1"], False),
    ("ingest", ["KEYS", "*"], False),
    ("ingest", ["LRANGE", "{p}:queue", "0", "-1"], False),
    # Scripts: the operator loads the library of functions; the daemons may
    # call its functions and load or run nothing of their own.
    ("ingest", ["EVAL", "return 1", "0"], False),
    ("ingest", ["EVALSHA", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "0"], False),
    ("ingest", ["SCRIPT", "LOAD", "return 1"], False),
    ("ingest", ["FUNCTION", "LOAD", "#!lua name=mine\nredis.register_function("
                "'mine', function() return 1 end)"], False),
    ("ingest", ["FUNCTION", "DELETE", "{lib}"], False),
    ("ingest", ["FUNCTION", "FLUSH"], False),
    ("ingest", ["FCALL", "{fn_enqueue}", "4", "{p}:waiting", "{p}:queue", "{p}:ready",
                "{p}:wake", "100", "{p}:q:", "60"], True),
    ("agent", ["EVAL", "return 1", "0"], False),
    ("agent", ["EVALSHA", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "0"], False),
    ("agent", ["SCRIPT", "LOAD", "return 1"], False),
    ("agent", ["FUNCTION", "LOAD", "#!lua name=mine\nredis.register_function("
               "'mine', function() return 1 end)"], False),
    ("agent", ["FUNCTION", "DELETE", "{lib}"], False),
    ("agent", ["FCALL", "{fn_held_count}", "2", "{p}:processing:agent1",
               "{p}:held:agent1"], True),
    ("operator", ["EVAL", "return 1", "0"], False),
    ("operator", ["FUNCTION", "LIST"], True),
    ("operator", ["FCALL", "{fn_held_count}", "2", "{p}:processing:agent1",
                  "{p}:held:agent1"], True),
    ("monitor", ["FCALL", "{fn_held_count}", "2", "{p}:processing:agent1",
                 "{p}:held:agent1"], False),
    ("ingest", ["LPUSH", "other:key", "x"], False),
    ("ingest", ["REPLICAOF", "NO", "ONE"], False),
    # By key (selectors in sentinel/redis-users.conf.j2): only its own keys, and
    # only with the commands it runs on them.
    ("ingest", ["HGETALL", "{p}:clients"], True),
    ("ingest", ["HSET", "{p}:clients", "h", "mallory 0"], False),
    ("ingest", ["SET", "{p}:q:0123456789abcdef", "x"], False),
    ("ingest", ["LPUSH", "{p}:processing:agent1", "x"], False),
    ("ingest", ["SREM", "{p}:held:agent1:0123456789abcdef", "x"], False),
    ("ingest", ["LPUSH", "{p}:dead", "x"], False),
    ("ingest", ["GET", "{p}:agent:agent1"], False),
    ("agent", ["LLEN", "{p}:queue"], True),
    ("agent", ["FLUSHALL"], False),
    ("agent", ["CONFIG", "GET", "*"], False),
    ("agent", ["KEYS", "*"], False),
    ("agent", ["SCRIPT", "FLUSH"], False),
    ("agent", ["LPUSH", "other:key", "x"], False),
    ("agent", ["SHUTDOWN"], False),
    ("agent", ["DEL", "{p}:queue"], False),
    ("agent", ["DEL", "{p}:dead"], False),
    ("agent", ["DEL", "{p}:q:0123456789abcdef"], False),
    ("agent", ["LRANGE", "{p}:dead", "0", "0"], False),
    ("agent", ["SET", "{p}:q:0123456789abcdef", "x"], False),
    ("agent", ["HSET", "{p}:clients", "h", "mallory 0"], False),
    ("agent", ["DEL", "{p}:r:none", "{p}:d:none"], True),
    ("agent", ["SCARD", "{p}:held:agent1:0123456789abcdef"], True),
    ("agent", ["SET", "{p}:held:agent1", "x"], False),
    ("operator", ["LRANGE", "{p}:dead", "0", "0"], True),
    ("operator", ["FLUSHALL"], False),
    ("operator", ["CONFIG", "SET", "maxmemory", "1"], False),
    ("operator", ["DEL", "{p}:queue"], False),
    ("replication", ["GET", "{p}:queue"], False),
    ("sentinel", ["GET", "{p}:queue"], False),
    ("sentinel", ["FLUSHALL"], False),
]


def run(client, argv):
    """True if the server ran argv: it answered, or failed it for a reason
    of its own (wrong type, no such master); False if it refused (NOPERM,
    NOAUTH)."""
    try:
        client.execute_command(*argv)
        return True
    except (redis.exceptions.NoPermissionError, redis.exceptions.AuthenticationError):
        return False
    except redis.exceptions.ResponseError as e:
        return str(e).startswith(("NOPERM", "NOAUTH")) is False


def fill(argv, cluster):
    v = cluster.topo["vars"]
    fns = {"fn_" + n: gen_lua.function_name(n) for n in gen_lua.names()}
    return [a.format(name=v["pb_master_name"], p=v["pb_key_prefix"],
                     lib=gen_lua.library_name(), **fns) for a in argv]


@pytest.mark.parametrize("user,argv,allowed", SENTINEL_CASES,
                         ids=["%s %s" % (c[0], " ".join(c[1][:2])) for c in SENTINEL_CASES])
def test_sentinel_user_may_do_only_its_job(cluster, user, argv, allowed):
    host, port = cluster.sentinel_addrs()[0]
    s = (cluster.sentinel((host, port), user=user) if user else
         redis.Redis(host=host, port=port, socket_timeout=5))
    assert run(s, fill(argv, cluster)) == allowed, (user, argv)


@pytest.mark.parametrize("user,argv,allowed", REDIS_CASES,
                         ids=["%s %s" % (c[0], " ".join(c[1][:2])) for c in REDIS_CASES])
def test_redis_user_may_do_only_its_job(cluster, user, argv, allowed):
    node = cluster.master_node()
    if user:
        r = cluster.redis(node, user=user)
    else:
        n = next(n for n in cluster.topo["redis_nodes"] if n["name"] == node)
        r = redis.Redis(host=n["host"], port=n["port"], socket_timeout=5)
    assert run(r, fill(argv, cluster)) == allowed, (user, argv)


def test_rendered_configs_are_readable_by_their_owner_only(cluster):
    """The configs hold every Redis and Sentinel password: no group or
    other bits on any of them."""
    import os
    import stat
    confs = os.listdir(cluster.path("conf"))
    assert confs, "no configs rendered"
    loose = {n: oct(stat.S_IMODE(os.stat(cluster.path("conf", n)).st_mode))
             for n in confs if os.stat(cluster.path("conf", n)).st_mode & 0o077}
    assert not loose, loose


# The passwords a config must hold in clear: what its server sends to
# another (a replica's masterauth; a Sentinel's to the Redis servers and to
# its peers). Every ACL user's own password is stored as its SHA-256.
CLEAR = {"redis": {"replication"}, "sentinel": {"sentinel", "sentinel_peer"}}


def test_configs_hold_acl_passwords_only_hashed(cluster):
    import hashlib
    from pbcluster import PASSWORD_USERS
    for kind, nodes in (("redis", cluster.topo["redis_nodes"]),
                        ("sentinel", cluster.topo["sentinels"])):
        for n in nodes:
            with open(cluster.path("conf", n["name"] + ".conf")) as f:
                text = f.read()
            for user in PASSWORD_USERS:
                pw = cluster.password(user)
                if user not in CLEAR[kind]:
                    assert pw not in text, (n["name"], user, "in clear")
            # ... and the users are there, by hash.
            assert hashlib.sha256(cluster.password(
                "admin" if kind == "redis" else "sentinel_operator").encode()
            ).hexdigest() in text, n["name"]


# A function runs with its caller's permissions: a library loaded by
# someone else (here the admin, as a compromised deployment would) gets a
# daemon no further than the commands above.
SCRIPT_CASES = [
    ("ingest", "{p}:q:0123456789abcdef", "SET"),
    ("ingest", "{p}:clients", "HSET"),
    ("agent", "{p}:dead", "DEL"),
    ("agent", "{p}:queue", "DEL"),
]


@pytest.mark.parametrize("user,key,cmd", SCRIPT_CASES,
                         ids=["%s %s %s" % c for c in SCRIPT_CASES])
def test_a_function_gets_no_further_than_its_caller(cluster, user, key, cmd):
    key = fill([key], cluster)[0]
    admin = cluster.master()
    before = admin.dump(key)
    body = {"SET": "redis.call('SET', keys[1], 'x')",
            "HSET": "redis.call('HSET', keys[1], 'h', 'mallory 0')",
            "DEL": "redis.call('DEL', keys[1])"}[cmd]
    admin.function_load("#!lua name=hostile\nredis.register_function('hostile', "
                        "function(keys) %s end)" % body, replace=True)
    try:
        r = cluster.redis(cluster.master_node(), user=user)
        with pytest.raises(redis.exceptions.ResponseError) as e:
            r.fcall("hostile", 1, key)
        assert "user executing the script can't" in str(e.value), e.value
    finally:
        admin.function_delete("hostile")
    assert admin.dump(key) == before
