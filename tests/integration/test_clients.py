"""Client keys and quotas: who may queue postbacks, and how fast.

Every ingest request carries a key issued with `pbctl keys add`; Redis keeps
its SHA-256 only. No key, a wrong one, or a revoked one: 401 with a JSON
error and nothing queued. HAProxy's quotas answer 429 with Retry-After per
client key and per source address (an HAProxy of this test's own, rendered
from the same template with small limits)."""
import hashlib
import os
import socket
import ssl
import subprocess
import time

import pytest
import requests

from conftest import ROOT, delivery_log_lines, of_mark, pbctl


def body(receiver, mark, n=1):
    return {"endpoint": {"method": "GET", "url": receiver.url + mark + "/c?i={i}"},
            "data": [{"i": i} for i in range(n)]}


def post(cluster, b, headers, **kw):
    h = {"Content-Type": "application/json"}
    h.update(headers)
    return requests.post(cluster.endpoint + "/ingest", json=b, headers=h, timeout=30, **kw)


def new_key(cluster, name):
    rc, out = pbctl(cluster, "keys", "add", name)
    key = out.splitlines()[0]
    assert key.startswith("pbk_") and len(key) == 68, out
    return key


# HAProxy spreads requests over the ingest nodes, which reload the keys each
# on its own clock (every 500 ms): a change has reached every node when
# this many requests in a row were answered alike.
IN_A_ROW = 4


def answered_alike(cluster, key, receiver, mark, status, timeout):
    """Post with key until IN_A_ROW answers in a row are status, or timeout
    seconds pass: the last answer."""
    deadline, row = time.time() + timeout, 0
    while True:
        r = post(cluster, body(receiver, mark), {"X-Api-Key": key})
        row = row + 1 if r.status_code == status else 0
        if row >= IN_A_ROW or time.time() > deadline:
            return r
        if row == 0:
            time.sleep(0.05)


def accepted(cluster, key, receiver, mark, timeout=3):
    """Wait until every ingest node takes key."""
    return answered_alike(cluster, key, receiver, mark, 200, timeout)


@pytest.mark.parametrize("headers, err", [
    ({}, "client key is required"),
    ({"Authorization": "Bearer pbk_" + "0" * 64}, "unknown or revoked"),
    ({"X-Api-Key": "not-a-key"}, "unknown or revoked"),
    ({"Authorization": "Basic dXNlcjpwYXNz"}, "malformed"),
    ({"Authorization": "Bearer " + "x" * 200}, "malformed"),
])
def test_without_a_valid_key_401_and_nothing_queued(cluster, receiver, mark, headers, err):
    r = post(cluster, body(receiver, mark, 3), headers)
    assert r.status_code == 401, r.text
    assert err in r.json()["error"], r.text
    assert r.headers["WWW-Authenticate"] == "Bearer"
    # A queued postback would reach the receiver within a second.
    time.sleep(1.5)
    assert of_mark(receiver.requests, mark) == []


OTHER = "pbk_" + "1" * 64
KEY_HEADERS = {
    "two Authorization": [("Authorization", "Bearer {key}"), ("Authorization", "Bearer " + OTHER)],
    "two X-Api-Key": [("X-Api-Key", OTHER), ("X-Api-Key", "{key}")],
    "both kinds": [("X-Api-Key", OTHER), ("Authorization", "Bearer {key}")],
    "X_Api_Key": [("X_Api_Key", "{key}")],
}


@pytest.mark.parametrize("kind", sorted(KEY_HEADERS))
def test_a_request_with_more_than_one_client_key_is_400_and_nothing_queued(
        cluster, receiver, mark, kind):
    """HAProxy counts a client's quota by the key it reads and the node
    checks the key it reads: with one key header (of one value) a request,
    those are the same key, so a client cannot be counted as another."""
    import http.client
    import json
    key = cluster.client_key
    host, port = cluster.endpoint.split("//")[1].split(":")
    c = http.client.HTTPConnection(host, int(port), timeout=10)
    c.putrequest("POST", "/ingest")
    data = json.dumps(body(receiver, mark, 3)).encode()
    for name, value in [("Content-Type", "application/json"),
                        ("Content-Length", str(len(data)))] + KEY_HEADERS[kind]:
        c.putheader(name, value.format(key=key))
    c.endheaders(data)
    r = c.getresponse()
    text = r.read().decode()
    assert r.status == 400, text
    assert "one client key a request" in json.loads(text)["error"], text
    time.sleep(1.5)  # a queued postback would arrive within a second
    assert of_mark(receiver.requests, mark) == []


def test_redis_keeps_only_the_hash_of_a_key(cluster):
    key = new_key(cluster, "hashonly")
    m = cluster.master()
    fields = m.hgetall(cluster.key("clients"))
    h = hashlib.sha256(key.encode()).hexdigest()
    assert fields[h.encode()].split()[0] == b"hashonly"
    dump = b" ".join(k + b" " + v for k, v in fields.items())
    assert key.encode() not in dump
    rc, out = pbctl(cluster, "keys", "list")
    assert "hashonly" in out and h[:12] in out and key not in out
    pbctl(cluster, "keys", "revoke", "hashonly")


def test_a_key_names_its_client_in_the_delivery_log(cluster, receiver, mark):
    key = new_key(cluster, "acme-logs")
    r = accepted(cluster, key, receiver, mark)
    assert r.status_code == 200, r.text
    pid = r.json()["ids"][0]
    lines = delivery_log_lines(cluster, pid)
    assert lines and " client=acme-logs " in lines[0], lines
    # The same key as a bearer token.
    r = post(cluster, body(receiver, mark), {"Authorization": "bearer " + key})
    assert r.status_code == 200, r.text
    pbctl(cluster, "keys", "revoke", "acme-logs")


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_the_endpoint_over_tls_verifies_and_refuses_old_protocols(cluster, receiver, mark):
    """HAProxy's TLS port (a certificate make run generated): a request
    verified against that certificate is queued and delivered; a client
    without it refuses the connection; TLS 1.1 is refused by the server
    (the client here would speak it), TLS 1.2 accepted."""
    cert = cluster.path("tls", "cert.pem")
    h = dict(cluster.auth, **{"Content-Type": "application/json"})
    r = requests.post(cluster.tls_endpoint + "/ingest", json=body(receiver, mark), headers=h,
                      verify=cert, timeout=30)
    assert r.status_code == 200, r.text
    lines = delivery_log_lines(cluster, r.json()["ids"][0])
    assert lines and " client=" in lines[0], lines
    # The machine's CA bundle does not hold the local certificate.
    with pytest.raises(requests.exceptions.SSLError):
        requests.post(cluster.tls_endpoint + "/ingest", json=body(receiver, mark), headers=h,
                      verify=True, timeout=30)
    host, port = cluster.tls_endpoint.rsplit("/", 1)[1].rsplit(":", 1)

    def handshake(version):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(cert)
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")   # this client would speak TLS 1.1
        ctx.minimum_version = ctx.maximum_version = version
        with socket.create_connection((host, int(port)), timeout=10) as s:
            with ctx.wrap_socket(s, server_hostname=host) as t:
                return t.version()
    assert handshake(ssl.TLSVersion.TLSv1_2) == "TLSv1.2"
    with pytest.raises(ssl.SSLError):
        handshake(ssl.TLSVersion.TLSv1_1)


def test_a_revoked_key_stops_working_within_a_second(cluster, receiver, mark):
    key = new_key(cluster, "revoked-soon")
    other = new_key(cluster, "stays")
    assert accepted(cluster, key, receiver, mark).status_code == 200
    assert accepted(cluster, other, receiver, mark).status_code == 200
    rc, out = pbctl(cluster, "keys", "revoke", "revoked-soon")
    assert "1 key(s) revoked" in out
    t0 = time.time()
    r = answered_alike(cluster, key, receiver, mark, 401, 1.0)
    took = time.time() - t0
    assert r.status_code == 401, "the revoked key still worked after a second"
    print("revoked key refused by every node after %.2f s" % took)
    # Both nodes refuse it (HAProxy spreads requests over them), the other
    # client goes on.
    for _ in range(6):
        assert post(cluster, body(receiver, mark), {"X-Api-Key": key}).status_code == 401
        assert post(cluster, body(receiver, mark), {"X-Api-Key": other}).status_code == 200
    pbctl(cluster, "keys", "revoke", "stays")
    rc, out = pbctl(cluster, "keys", "revoke", "stays", check=False)
    assert rc == 1 and "no key matches" in out


def test_idempotency_keys_are_scoped_per_client(cluster, receiver, mark):
    a, b = new_key(cluster, "idem-a"), new_key(cluster, "idem-b")
    assert accepted(cluster, a, receiver, mark).status_code == 200
    assert accepted(cluster, b, receiver, mark).status_code == 200
    idem = {"Idempotency-Key": "order-" + mark.strip("/t")}
    ra1 = post(cluster, body(receiver, mark), dict(idem, **{"X-Api-Key": a}))
    ra2 = post(cluster, body(receiver, mark), dict(idem, **{"X-Api-Key": a}))
    rb = post(cluster, body(receiver, mark), dict(idem, **{"X-Api-Key": b}))
    assert ra1.status_code == ra2.status_code == rb.status_code == 200
    # The same client's second try is the first one's answer; another
    # client's request with the same key is a request of its own.
    assert ra1.json()["request_id"] == ra2.json()["request_id"]
    assert rb.json()["request_id"] != ra1.json()["request_id"]
    for k in ("idem-a", "idem-b"):
        pbctl(cluster, "keys", "revoke", k)


def test_keys_add_refuses_a_bad_name(cluster):
    rc, out = pbctl(cluster, "keys", "add", "no spaces:here", check=False)
    assert rc == 2 and "client name" in out


# ---- quotas (HAProxy) -------------------------------------------------------

QUOTA = {"pb_quota_rate_per_client": 5, "pb_quota_rate_per_source": 40,
         "pb_quota_conn_per_source": 64}


@pytest.fixture
def quota_haproxy(cluster):
    """An HAProxy of this test's own in front of the same ingest nodes, from
    the same template, with small quotas; its endpoint."""
    port = cluster.topo["haproxy_port"] + 50
    conf = cluster.path("conf", "haproxy-quota.cfg")
    cluster.render("haproxy/haproxy.cfg.j2", conf, dict(
        cluster.template_vars(), **QUOTA, haproxy_bind=cluster.bind, haproxy_port=port,
        haproxy_stats_port=port + 1,
        haproxy_errorfile_503=os.path.join(ROOT, "haproxy", "503.json.http"),
        ingest_nodes=cluster.topo["ingest_nodes"]))
    log = open(cluster.path("log", "haproxy-quota.log"), "ab")
    p = subprocess.Popen(["haproxy", "-db", "-f", conf], stdout=log, stderr=log)
    url = "http://%s:%d" % (cluster.bind, port)
    try:
        deadline = time.time() + 10
        while True:
            try:
                if requests.get(url + "/health", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.time() < deadline, "the quota HAProxy did not come up"
            time.sleep(0.1)
        time.sleep(2.5)  # its health checks mark the nodes up (rise 2, 1 s)
        yield url
    finally:
        p.terminate()
        p.wait(timeout=10)
        log.close()


def burst(url, headers, b, n):
    """n requests as fast as one connection sends them: their answers."""
    out = []
    with requests.Session() as s:
        for _ in range(n):
            r = s.post(url + "/ingest", json=b, timeout=10,
                       headers=dict({"Content-Type": "application/json"}, **headers))
            out.append(r)
    return out


def test_a_client_over_its_rate_gets_429_and_another_is_unaffected(
        cluster, receiver, mark, quota_haproxy):
    greedy, calm = new_key(cluster, "greedy"), new_key(cluster, "calm")
    assert accepted(cluster, greedy, receiver, mark).status_code == 200
    assert accepted(cluster, calm, receiver, mark).status_code == 200
    time.sleep(1.1)  # the rates above are in another second by now
    rs = burst(quota_haproxy, {"X-Api-Key": greedy}, body(receiver, mark), 15)
    codes = [r.status_code for r in rs]
    limited = [r for r in rs if r.status_code == 429]
    print("greedy client, 15 requests at once:", codes)
    assert limited and codes.count(200) >= 5, codes
    assert limited[0].headers["Retry-After"] == "1"
    assert "requests/s for this client key" in limited[0].json()["error"]
    # Same second, same source address: the other client is not limited.
    calm_codes = [r.status_code for r in
                  burst(quota_haproxy, {"Authorization": "Bearer " + calm},
                        body(receiver, mark), 4)]
    assert calm_codes == [200] * 4, calm_codes
    # The refused ones queued nothing: exactly the accepted postbacks arrive.
    ids = {i for r in rs if r.status_code == 200 for i in r.json()["ids"]}
    assert receiver.wait_for(lambda reqs: ids <= {q["id"] for q in reqs}, 20)
    for k in ("greedy", "calm"):
        pbctl(cluster, "keys", "revoke", k)


def test_a_source_over_its_rate_gets_429_whatever_keys_it_makes_up(
        cluster, receiver, mark, quota_haproxy):
    time.sleep(1.1)
    codes = []
    with requests.Session() as s:
        for i in range(60):
            r = s.post(quota_haproxy + "/ingest", json=body(receiver, mark), timeout=10,
                       headers={"Content-Type": "application/json",
                                "X-Api-Key": "pbk_made_up_%d" % i})
            codes.append(r.status_code)
            if r.status_code == 429:
                assert "requests/s from this address" in r.json()["error"]
                assert r.headers["Retry-After"] == "1"
    print("made-up keys, one address:", codes.count(401), "x 401,", codes.count(429), "x 429")
    assert 429 in codes and set(codes) <= {401, 429}, codes


def test_a_node_that_cannot_confirm_its_keys_refuses_them_all(cluster, receiver, mark):
    """Fail closed: while a node cannot reload the keys (here the hash is
    made unreadable and its version moved, as a revocation does), it keeps
    its table only for 40 refreshes (20 s); then every request is 503, so a
    key revoked meanwhile does not keep working. Once Redis answers again
    the same key is taken; only the requests answered 200 were delivered."""
    m = cluster.master()
    clients, version = cluster.key("clients"), cluster.key("clients-version")
    saved = cluster.key("clients-saved-by-test")
    key = cluster.client_key
    ok = 0

    def until_in_a_row(status, timeout):
        nonlocal ok
        deadline, row = time.time() + timeout, 0
        while row < IN_A_ROW and time.time() < deadline:
            r = post(cluster, body(receiver, mark), {"X-Api-Key": key})
            ok += r.status_code == 200
            row = row + 1 if r.status_code == status else 0
            time.sleep(0.2)
        return r

    m.rename(clients, saved)
    m.set(clients, "not a hash")
    m.incr(version)
    try:
        r = until_in_a_row(503, 40)
        assert r.status_code == 503 and "not confirmed" in r.json()["error"], r.text
    finally:
        m.delete(clients)
        m.rename(saved, clients)
        m.incr(version)
    assert until_in_a_row(200, 10).status_code == 200
    assert receiver.wait_for(lambda rs: len(of_mark(rs, mark)) >= ok, 10)
    time.sleep(1)
    assert len(of_mark(receiver.requests, mark)) == ok
