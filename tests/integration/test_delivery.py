"""End to end: what a client sends through HAProxy arrives at a receiver."""
import json
import os
import re
import subprocess
import time
import uuid

import pytest
from pbcluster import BIN_DIR
from conftest import delivery_log_lines, ingest, logfmt, of_mark

SEED_QUERY = ("?title=Gopher&image=https%3A%2F%2Fblog.golang.org%2Fgopher%2F"
              "gopher.png&foo=")


def test_seed_sample_is_delivered_exactly(cluster, receiver, mark):
    body = {"endpoint": {"method": "GET", "url": receiver.url + mark +
                         "/data?title={mascot}&image={location}&foo={bar}"},
            "data": [{"mascot": "Gopher",
                      "location": "https://blog.golang.org/gopher/gopher.png"}]}
    r = ingest(cluster, body, path="/ingest.php")
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["redis_is_connected"] == "+PONG"
    assert isinstance(answer["postback_queue_size"], int)
    assert answer["accepted"] == 1 and len(answer["ids"]) == 1
    assert receiver.wait_for(lambda rs: of_mark(rs, mark), 15)
    got = of_mark(receiver.requests, mark)
    assert len(got) == 1
    assert got[0]["method"] == "GET"
    assert got[0]["path"] == mark + "/data" + SEED_QUERY
    assert got[0]["id"] == answer["ids"][0]
    assert got[0]["body"] == ""


def test_post_sends_the_data_object_as_json(cluster, receiver, mark):
    data = {"user": "ann", "n": 3, "ok": True, "x": None, "s": "caf\u00e9"}
    r = ingest(cluster, {"endpoint": {"method": "post", "url": receiver.url + mark +
                                      "/p?user={user}&n={n}"},
                         "data": [data]}, path="/i")
    assert r.status_code == 200, r.text
    assert receiver.wait_for(lambda rs: of_mark(rs, mark), 15)
    got = of_mark(receiver.requests, mark)[0]
    assert got["method"] == "POST"
    assert got["path"] == mark + "/p?user=ann&n=3"
    assert got["content_type"] == "application/json"
    assert json.loads(got["body"]) == data


def test_many_data_objects_each_delivered_once(cluster, receiver, mark):
    n = 500
    data = [{"i": i, "tag": "v%d" % i} for i in range(n)]
    r = ingest(cluster, {"endpoint": {"method": "GET", "url": receiver.url + mark +
                                      "/m?i={i}&tag={tag}"}, "data": data})
    assert r.status_code == 200, r.text
    ids = r.json()["ids"]
    assert len(set(ids)) == n
    assert receiver.wait_for(lambda rs: len(of_mark(rs, mark)) >= n, 60)
    got = of_mark(receiver.requests, mark)
    assert sorted(g["id"] for g in got) == sorted(ids)
    assert sorted(g["path"] for g in got) == sorted(
        "%s/m?i=%d&tag=v%d" % (mark, i, i) for i in range(n))


def test_every_attempt_is_logged(cluster, receiver, mark):
    r = ingest(cluster, {"endpoint": {"method": "GET", "url": receiver.url + mark +
                                      "/log?q={q}"}, "data": [{"q": "a\"b"}]})
    pid = r.json()["ids"][0]
    assert receiver.wait_for(lambda rs: of_mark(rs, mark), 15)
    lines = delivery_log_lines(cluster, pid)
    time.sleep(0.5)  # and no second line for one attempt
    lines = delivery_log_lines(cluster, pid)
    assert len(lines) == 1, lines
    fields = logfmt(lines[0])
    assert [k for k, _ in fields] == [
        "ts", "agent", "id", "client", "dest", "attempt", "age_ms", "method", "url", "status",
        "time_ms", "outcome", "body"], fields
    f = dict(fields)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", f["ts"]), f
    assert f["agent"] in cluster.agent_names and f["id"] == pid and f["client"] == "local"
    assert f["dest"] == receiver.url.rstrip("/") and int(f["age_ms"]) >= 0
    assert (f["attempt"], f["method"], f["status"], f["outcome"], f["body"]) == (
        "1", "GET", "200", "delivered", "ok")
    assert f["url"] == "%s%s/log?q=a%%22b" % (receiver.url, mark)
    assert int(f["time_ms"]) >= 0


def test_a_postback_past_max_age_is_logged_as_never_sent(cluster, receiver, mark):
    """A postback that waited past max_age_s is dead without a request:
    its line says sent=no and how many attempts it had, and nothing
    reaches the receiver. Its request's header is made old by hand while
    no agent runs (the enqueue time is in it: apps/common/job.h)."""
    for a in cluster.agent_names:
        cluster.stop(a)
    try:
        r = ingest(cluster, {"endpoint": {"method": "GET", "url": receiver.url + mark + "/old"},
                             "data": [{}]})
        assert r.status_code == 200, r.text
        m = cluster.master()
        key = cluster.key("r:" + r.json()["request_id"])
        version, method, enqueued, rest = m.hget(key, "h").split(b"\t", 3)
        old = int(enqueued) - 2 * 86400 * 1000
        m.hset(key, "h", b"\t".join([version, method, str(old).encode(), rest]))
    finally:
        for a in cluster.agent_names:
            cluster.start(a)
    pid = r.json()["ids"][0]
    lines = delivery_log_lines(cluster, pid, timeout=20)
    assert len(lines) == 1, lines
    fields = logfmt(lines[0])
    assert [k for k, _ in fields] == ["ts", "agent", "id", "client", "dest", "attempts",
                                      "age_ms", "sent", "outcome", "error"], fields
    f = dict(fields)
    assert (f["attempts"], f["sent"], f["outcome"]) == ("0", "no", "dead"), f
    assert f["dest"] == receiver.url.rstrip("/"), f
    assert f["error"].startswith("expired: older than max_age_s") and \
        int(f["age_ms"]) > 2 * 86400 * 1000 - 60000, f
    assert not of_mark(receiver.requests, mark)


@pytest.mark.parametrize("fmt,redact", [("logfmt", True), ("json", True), ("json", False)])
def test_the_delivery_log_in_json_and_redacted(cluster, receiver, mark, behave, tmp_path, fmt,
                                                redact):
    """An agent of its own (the cluster's agents stopped) with
    delivery_log_format and log_redact_query/log_redact_body set on its
    command line: every line parses (JSON or strict logfmt) with the usual
    fields; redacted, neither the query value nor the answer's body appears
    in its delivery log or its own log, the URL keeps its parameter names
    and the line says how long the body was."""
    secret_q, secret_b = "q" + uuid.uuid4().hex, "b" + uuid.uuid4().hex
    answer = ("answer " + secret_b).encode()
    behave(lambda rec: (200, {}, answer))
    dlog, elog = tmp_path / "delivery.log", tmp_path / "agent.log"
    yes = "yes" if redact else "no"
    for a in cluster.agent_names:
        cluster.stop(a)
    with open(elog, "w") as err:
        agent = subprocess.Popen(
            [os.path.join(BIN_DIR, "pb-agent"), "-c", cluster.path("conf", "agent1.conf"),
             "--agent_id=logtest", "--metrics_listen=", "--delivery_log=%s" % dlog,
             "--delivery_log_format=%s" % fmt, "--log_redact_query=%s" % yes,
             "--log_redact_body=%s" % yes], stdout=err, stderr=err)
    try:
        r = ingest(cluster, {"endpoint": {"method": "GET",
                                          "url": receiver.url + mark + "/r?token={t}&x=1"},
                             "data": [{"t": secret_q}]})
        assert r.status_code == 200, r.text
        pid = r.json()["ids"][0]
        assert receiver.wait_for(lambda rs: of_mark(rs, mark), 15)
        deadline = time.time() + 10
        while pid not in (dlog.read_text() if dlog.exists() else "") and time.time() < deadline:
            time.sleep(0.1)
    finally:
        agent.terminate()
        agent.wait(timeout=30)
        for a in cluster.agent_names:
            cluster.start(a)
    lines = [l for l in dlog.read_text().splitlines() if pid in l]
    assert len(lines) == 1, lines
    f = json.loads(lines[0]) if fmt == "json" else dict(logfmt(lines[0]))
    assert (f["agent"], f["id"], f["outcome"]) == ("logtest", pid, "delivered"), f
    if fmt == "json":
        assert (f["attempt"], f["status"]) == (1, 200) and isinstance(f["time_ms"], int), f
    text = dlog.read_text() + elog.read_text()
    if redact:
        assert secret_q not in text and secret_b not in text
        assert f["url"] == receiver.url + mark + "/r?token=*&x=*", f
        assert "body" not in f and int(f["body_bytes"]) == len(answer), f
    else:
        assert f["url"] == receiver.url + mark + "/r?token=%s&x=1" % secret_q, f
        assert f["body"] == answer.decode(), f
