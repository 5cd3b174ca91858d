#!/usr/bin/python3
"""load - a steady, bounded stream of postbacks through HAProxy.

    load.py --endpoint URL --key-file F --target URL --rate N --seconds S --out FILE
            [--objects K] [--threads T]

Sends N requests a second (K postbacks each, 2 by default, with unique data)
for at most S seconds, from T threads (8), and writes one JSON line per
request: when it was sent and answered, its status, and the acknowledged
ids. Stops early on SIGTERM.
"""
import argparse
import json
import signal
import threading
import time

import requests

THREADS = 8


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--key-file", required=True, help="the client key (secrets/client.key)")
    ap.add_argument("--cacert", help="the certificate an https endpoint is checked against")
    ap.add_argument("--target", required=True, help="URL template for the postbacks")
    ap.add_argument("--rate", type=float, default=50)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--out", required=True)
    ap.add_argument("--objects", type=int, default=2)
    ap.add_argument("--threads", type=int, default=THREADS)
    a = ap.parse_args()
    with open(a.key_file) as f:
        auth = {"Authorization": "Bearer " + f.read().strip()}
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    out = open(a.out, "w")
    lock = threading.Lock()
    t_end = time.time() + a.seconds

    def worker(k):
        s = requests.Session()
        period = a.threads / a.rate
        nxt, i = time.time(), 0
        while not stop.is_set() and time.time() < t_end:
            body = {"endpoint": {"method": "GET", "url": a.target},
                    "data": [{"k": k, "i": i + j} for j in range(a.objects)]}
            i += a.objects
            rec = {"sent": time.time()}
            try:
                # verify per request: a Session's verify loses to
                # REQUESTS_CA_BUNDLE in the environment.
                r = s.post(a.endpoint, json=body, headers=auth, timeout=15,
                           verify=a.cacert or True)
                rec["status"] = r.status_code
                if r.status_code == 200:
                    rec["ids"] = r.json()["ids"]
            except requests.RequestException as e:
                rec["status"] = 0
                rec["error"] = type(e).__name__
                s = requests.Session()
            rec["t"] = time.time()
            with lock:
                out.write(json.dumps(rec) + "\n")
                out.flush()
            nxt += period
            time.sleep(max(0.0, nxt - time.time()))

    ts = [threading.Thread(target=worker, args=(k,)) for k in range(a.threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


if __name__ == "__main__":
    main()
