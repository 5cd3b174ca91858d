"""Bad input: a clear 4xx with a JSON error, and nothing enqueued."""
import os
import socket
import time

import pytest
import requests

from conftest import ROOT, of_mark, waiting


def good(receiver, mark):
    return {"endpoint": {"method": "GET", "url": receiver.url + mark + "/x?a={a}"},
            "data": [{"a": 1}]}


# HTTP-level cases: (name, method, path, content type, body, status, error part).
HTTP_CASES = [
    ("get", "GET", "/ingest", "application/json", None, 405, "not allowed"),
    ("put", "PUT", "/ingest", "application/json", b"{}", 405, "not allowed"),
    ("form", "POST", "/ingest", "application/x-www-form-urlencoded", b"a=1",
     415, "application/json"),
    ("no type", "POST", "/ingest", None, b"{}", 415, "application/json"),
    ("too big", "POST", "/ingest", "application/json",
     b'{"x":"' + b"a" * (1024 * 1024) + b'"}', 413, "over the limit"),
    ("unknown path", "POST", "/other", "application/json", b"{}", 404, "no such path"),
]


def body_cases():
    """The refused bodies of tests/unit/golden/bodies.tsv, which the unit
    test of the validation reads too: (status, error part, body)."""
    with open(os.path.join(ROOT, "tests", "unit", "golden", "bodies.tsv")) as f:
        rows = [line.rstrip("\n").split("\t", 4) for line in f
                if line.strip() and not line.startswith("#")]
    return [(int(r[0]), r[1], r[4].encode()) for r in rows if r[0] != "0"]


def refused_and_nothing_queued(cluster, receiver, mark, method, path, ctype, body,
                               status, err):
    master = cluster.master()
    before = waiting(cluster, master)
    headers = dict(cluster.auth, **({"Content-Type": ctype} if ctype else {}))
    r = requests.request(method, cluster.endpoint + path, data=body,
                         headers=headers, timeout=30)
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    assert err in r.json()["error"], r.text
    if status == 405:
        assert r.headers.get("Allow") == "POST"
    time.sleep(0.3)
    assert waiting(cluster, master) <= before
    assert of_mark(receiver.requests, mark) == []


@pytest.mark.parametrize("case", HTTP_CASES, ids=[c[0] for c in HTTP_CASES])
def test_bad_request_is_refused_and_nothing_enqueued(cluster, receiver, mark, case):
    _, method, path, ctype, body, status, err = case
    refused_and_nothing_queued(cluster, receiver, mark, method, path, ctype, body,
                               status, err)


@pytest.mark.parametrize("case", body_cases(), ids=[c[1] for c in body_cases()])
def test_bad_body_is_refused_and_nothing_enqueued(cluster, receiver, mark, case):
    status, err, body = case
    refused_and_nothing_queued(cluster, receiver, mark, "POST", "/ingest",
                               "application/json", body, status, err)


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
                      headers=dict(cluster.auth, **{"Idempotency-Key": "x" * 200}),
                      timeout=30)
    assert r.status_code == 400 and "Idempotency-Key" in r.json()["error"]
    time.sleep(0.3)
    assert of_mark(receiver.requests, mark) == []
