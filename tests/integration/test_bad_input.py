"""Bad input: a clear 4xx with a JSON error, and nothing enqueued."""
import socket
import time

import pytest
import requests

from conftest import of_mark


def good(receiver, mark):
    return {"endpoint": {"method": "GET", "url": receiver.url + mark + "/x?a={a}"},
            "data": [{"a": 1}]}


def cases(receiver, mark):
    g = good(receiver, mark)
    ep = g["endpoint"]
    return [
        # (name, method, path, content type, body bytes, status, error part)
        ("get", "GET", "/ingest", "application/json", None, 405, "not allowed"),
        ("put", "PUT", "/ingest", "application/json", b"{}", 405, "not allowed"),
        ("form", "POST", "/ingest", "application/x-www-form-urlencoded", b"a=1",
         415, "application/json"),
        ("no type", "POST", "/ingest", None, b"{}", 415, "application/json"),
        ("malformed", "POST", "/ingest", "application/json", b"{\"endpoint\":", 400,
         "malformed JSON"),
        ("not object", "POST", "/i", "application/json", b"[1]", 400,
         "JSON object"),
        ("bad method", "POST", "/ingest", "application/json",
         ('{"endpoint":{"method":"TRACE","url":"%s"},"data":[{}]}' % ep["url"]).encode(),
         400, "not GET or POST"),
        ("bad scheme", "POST", "/ingest", "application/json",
         b'{"endpoint":{"method":"GET","url":"file:///etc/passwd"},"data":[{}]}',
         400, "http:// or https://"),
        ("empty data", "POST", "/ingest.php", "application/json",
         ('{"endpoint":{"method":"GET","url":"%s"},"data":[]}' % ep["url"]).encode(),
         400, "data is empty"),
        ("nested value", "POST", "/ingest", "application/json",
         ('{"endpoint":{"method":"GET","url":"%s"},"data":[{"a":1},{"a":{"b":2}}]}'
          % ep["url"]).encode(), 400, "data[1].a"),
        ("too big", "POST", "/ingest", "application/json",
         b'{"x":"' + b"a" * (1024 * 1024) + b'"}', 413, "over the limit"),
        ("unknown path", "POST", "/other", "application/json", b"{}", 404,
         "no such path"),
    ]


@pytest.mark.parametrize("index", range(12))
def test_bad_request_is_refused_and_nothing_enqueued(cluster, receiver, mark, index):
    name, method, path, ctype, body, status, err = cases(receiver, mark)[index]
    master = cluster.master()
    before = master.llen(cluster.key("queue"))
    headers = {"Content-Type": ctype} if ctype else {}
    r = requests.request(method, cluster.endpoint + path, data=body,
                         headers=headers, timeout=30)
    assert r.status_code == status, (name, r.text)
    assert r.headers["Content-Type"].startswith("application/json"), name
    assert err in r.json()["error"], (name, r.text)
    if status == 405:
        assert r.headers.get("Allow") == "POST"
    time.sleep(0.3)
    assert master.llen(cluster.key("queue")) <= before
    assert of_mark(receiver.requests, mark) == []


def test_chunked_body_is_411(cluster, receiver, mark):
    """HAProxy 2.6 cannot pass a chunked body to FastCGI: it says so (411)
    at once, maybe before the client has sent everything, so this client
    reads the answer whatever the send did."""
    head = (b"POST /ingest HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
    chunk = b"a" * 65536
    s = socket.create_connection((cluster.bind, cluster.topo["haproxy_port"]), timeout=30)
    try:
        s.sendall(head)
        for _ in range(20):
            s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        s.sendall(b"0\r\n\r\n")
    except OSError:
        pass
    answer = b""
    try:
        while True:
            got = s.recv(65536)
            if not got:
                break
            answer += got
    except OSError:
        pass
    s.close()
    status = answer.split(b"\r\n", 1)[0]
    assert b" 411 " in status, answer[:300]
    assert b"send Content-Length" in answer
    time.sleep(0.3)
    assert of_mark(receiver.requests, mark) == []


def test_idempotency_key_must_be_sane(cluster, receiver, mark):
    r = requests.post(cluster.endpoint + "/ingest", json=good(receiver, mark),
                      headers={"Idempotency-Key": "x" * 200}, timeout=30)
    assert r.status_code == 400 and "Idempotency-Key" in r.json()["error"]
    time.sleep(0.3)
    assert of_mark(receiver.requests, mark) == []
