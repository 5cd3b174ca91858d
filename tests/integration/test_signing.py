"""Signed deliveries (apps/common/sign.h, Standard Webhooks v1): every
postback of a client that `pbctl keys sign` turned on carries webhook-id,
webhook-timestamp and webhook-signature, which the Standard Webhooks
reference library (npm package "standardwebhooks", installed here) accepts;
a changed body, id or an old timestamp it refuses; during a rotation both
secrets verify, after `--retire` only the new one."""
import json
import os
import subprocess
import time
import uuid

import pytest

from conftest import ROOT, ingest, of_mark, pbctl

HERE = os.path.dirname(os.path.abspath(__file__))
NPM_DIR = os.path.join(ROOT, "run", "npm")
PACKAGE = "standardwebhooks@1.3.0"


@pytest.fixture(scope="module")
def verifier():
    """verify(messages) -> ["ok" | "fail ...", ...] by the reference library."""
    if not os.path.exists(os.path.join(NPM_DIR, "node_modules", "standardwebhooks")):
        os.makedirs(NPM_DIR, exist_ok=True)
        p = subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund",
                            "--prefix", NPM_DIR, PACKAGE],
                           capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, "npm install %s: %s" % (PACKAGE, p.stderr[-2000:])
    script = os.path.join(NPM_DIR, "verify.mjs")
    with open(os.path.join(HERE, "webhooks", "verify.mjs")) as f, open(script, "w") as out:
        out.write(f.read())

    def verify(messages):
        p = subprocess.run(["node", script], input="".join(json.dumps(m) + "\n" for m in messages),
                           capture_output=True, text=True, timeout=120, cwd=NPM_DIR)
        assert p.returncode == 0, p.stderr
        return p.stdout.splitlines()
    return verify


@pytest.fixture
def signed_client(cluster):
    """A client of its own, its key as request headers; signing off and
    its key revoked after."""
    name = "signed-" + uuid.uuid4().hex[:8]
    key = pbctl(cluster, "keys", "add", name)[1].splitlines()[0].strip()
    yield name, {"Authorization": "Bearer " + key}
    pbctl(cluster, "keys", "sign", name, "--off")
    pbctl(cluster, "keys", "revoke", name)


def sign(cluster, name, *opts):
    p = cluster.pbctl("keys", "sign", name, *opts, "--json")
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def send(cluster, receiver, mark, headers, n, method):
    ids = []
    for start in range(0, n, 100):
        r = ingest(cluster, {"endpoint": {"method": method,
                                          "url": receiver.url + mark + "/s?i={i}"},
                             "data": [{"i": i, "text": "é \" {}"} for i in range(start, min(n, start + 100))]},
                   headers=headers)
        assert r.status_code == 200, r.text
        ids += r.json()["ids"]
    return ids


def arrived(receiver, mark, ids, timeout=60):
    want = set(ids)
    assert receiver.wait_for(lambda rs: want <= {r["id"] for r in of_mark(rs, mark)}, timeout)
    got = {}
    for r in of_mark(receiver.requests, mark):
        if r["id"] in want:
            got[r["id"]] = r
    return list(got.values())


def message(rec, secret, **change):
    m = {"secret": secret, "id": rec.get("webhook-id"), "timestamp": rec.get("webhook-timestamp"),
         "signature": rec.get("webhook-signature"), "body": rec["body"]}
    m.update(change)
    return m


def test_signed_postbacks_verify_with_the_reference_library(cluster, receiver, verifier,
                                                            signed_client):
    name, headers = signed_client
    mark = "/t/" + uuid.uuid4().hex[:12]
    first = sign(cluster, name)
    assert first["signing_secrets"] == 1 and first["secret"].startswith("whsec_"), first
    assert "on" in pbctl(cluster, "keys", "list")[1]
    time.sleep(1.5)  # agents read the secrets again within a second of a change
    ids = send(cluster, receiver, mark, headers, 500, "GET") + \
        send(cluster, receiver, mark, headers, 500, "POST")
    recs = arrived(receiver, mark, ids)
    assert len(recs) == 1000
    assert all(r["webhook-id"] == r["id"] for r in recs), recs[:2]
    assert {r["method"] for r in recs} == {"GET", "POST"}
    said = verifier([message(r, first["secret"]) for r in recs])
    assert said == ["ok"] * 1000, [s for s in said if s != "ok"][:5]

    post = next(r for r in recs if r["method"] == "POST")
    old = str(int(post["webhook-timestamp"]) - 600)
    said = verifier([message(post, first["secret"], body=post["body"] + " "),
                     message(post, first["secret"], id=post["id"] + "x"),
                     message(post, first["secret"], timestamp=old),
                     message(post, "whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB")])
    assert all(s.startswith("fail") for s in said), said

    # A rotation: both secrets sign until the old one is retired.
    second = sign(cluster, name)
    assert second["signing_secrets"] == 2 and second["secret"] != first["secret"]
    time.sleep(1.5)
    recs = arrived(receiver, mark, send(cluster, receiver, mark, headers, 50, "POST"))
    assert all(len(r["webhook-signature"].split()) == 2 for r in recs), recs[0]
    said = verifier([message(r, s) for r in recs for s in (first["secret"], second["secret"])])
    assert said == ["ok"] * 100, said[:4]
    assert sign(cluster, name, "--retire")["signing_secrets"] == 1
    time.sleep(1.5)
    recs = arrived(receiver, mark, send(cluster, receiver, mark, headers, 50, "GET"))
    said = verifier([message(r, second["secret"]) for r in recs] +
                    [message(r, first["secret"]) for r in recs])
    assert said[:50] == ["ok"] * 50 and all(s.startswith("fail") for s in said[50:]), said[48:52]

    # Off: unsigned again; other clients' postbacks never were.
    assert sign(cluster, name, "--off")["signing_secrets"] == 0
    time.sleep(1.5)
    recs = arrived(receiver, mark, send(cluster, receiver, mark, headers, 5, "GET"))
    assert not any("webhook-signature" in r for r in recs), recs[0]
    recs = arrived(receiver, mark, send(cluster, receiver, mark, cluster.auth, 5, "GET"))
    assert not any("webhook-signature" in r for r in recs), recs[0]


def test_keys_sign_refuses_an_unknown_client_and_no_daemon_logs_a_secret(cluster):
    """(After the test above: its secrets were in Redis and the agents.)"""
    p = cluster.pbctl("keys", "sign", "nobody-" + uuid.uuid4().hex[:6])
    assert p.returncode == 1 and "no client" in p.stderr, p.stderr
    p = cluster.pbctl("keys", "sign", "no spaces")
    assert p.returncode == 2, p.stderr
    logs = cluster.path("log")
    said = [f for f in os.listdir(logs) if f.endswith(".log") and
            "whsec_" in open(os.path.join(logs, f), errors="replace").read()]
    assert not said, said
