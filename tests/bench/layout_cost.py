#!/usr/bin/python3
"""What one request of 100 postbacks (the seed's sample) costs Redis to
enqueue in each queue layout, measured on a Redis of its own (no
persistence, no replicas: the command's own work) with `INFO commandstats`:

  v1          one LPUSH of 100 self-contained jobs (apps/common/job.h, 1)
  v2 fields   the request's header once, a hash field per data object, a
              reference per postback built in Lua (the first version 2)
  v2          the header once, the data objects as one string, references
              built by the ingest node (apps/ingest/enqueue.c)

Usage: tests/bench/layout_cost.py [--requests N]. Prints microseconds of
Redis time per request and bytes of memory per postback for each.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import redis

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "scripts"))
from pbcluster import free_port  # noqa: E402

SEED = json.dumps({"mascot": "Gopher",
                   "location": "https://blog.golang.org/gopher/gopher.png"},
                  separators=(",", ":"))
URL = "http://sample_domain_endpoint.com/data?title={mascot}&image={location}&foo={bar}"
HEADER = "2\tG\t1795000000000\t\t" + URL
DEST = "3f9c0a6e1d2b7c44"

V1 = "redis.call('LPUSH', KEYS[1], unpack(ARGV)) return 1"
V2_FIELDS = """
local f = {'h', ARGV[2]}
for i = 0, 99 do f[#f + 1] = tostring(i); f[#f + 1] = ARGV[3 + i] end
redis.call('HSET', KEYS[2], unpack(f))
local refs, pre = {}, ARGV[103] .. ' ' .. ARGV[1] .. ' '
for i = 0, 99 do refs[#refs + 1] = pre .. i .. ' 0' end
redis.call('RPUSH', KEYS[1], unpack(refs))
return 1"""
V2 = """
redis.call('HSET', KEYS[2], 'h', ARGV[1], 'n', 100)
redis.call('SET', KEYS[3], ARGV[2])
redis.call('RPUSH', KEYS[1], unpack(ARGV, 3))
return 1"""


def args_for(layout, k):
    rid = "6830d20021e5%04x" % k
    if layout == "v1":
        job = "1\t%s-0\t0\tG\t%s\t%s" % (rid, URL, SEED)
        return ["q"], [job] * 100
    if layout == "v2 fields":
        return ["q", "r:" + rid], [rid, HEADER] + [SEED] * 100 + [DEST]
    refs = ["%s %s %d 0 %d %d" % (DEST, rid, i, i * len(SEED), len(SEED))
            for i in range(100)]
    return ["q", "r:" + rid, "d:" + rid], [HEADER, SEED * 100] + refs


def measure(r, layout, sha, n):
    r.flushall()
    r.config_resetstat()
    base = r.info("memory")["used_memory"]
    p = r.pipeline(transaction=False)
    for k in range(n):
        keys, argv = args_for(layout, k)
        p.evalsha(sha, len(keys), *keys, *argv)
        if k % 100 == 99:
            p.execute()
            p = r.pipeline(transaction=False)
    p.execute()
    us = r.info("commandstats")["cmdstat_evalsha"]["usec"] / n
    mem = (r.info("memory")["used_memory"] - base) / (n * 100)
    return us, mem


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=3000)
    a = ap.parse_args()
    port, tmp = free_port(), tempfile.mkdtemp(prefix="pb-layout-")
    srv = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                            "--save", "", "--appendonly", "no", "--dir", tmp,
                            "--hash-max-listpack-value", "512"],
                           stdout=subprocess.DEVNULL)
    try:
        r = redis.Redis(port=port)
        for _ in range(50):
            try:
                r.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.1)
        shas = {"v1": r.script_load(V1), "v2 fields": r.script_load(V2_FIELDS),
                "v2": r.script_load(V2)}
        print("layout       Redis us/request  memory bytes/postback")
        for layout in ["v1", "v2 fields", "v2"] * 2:
            us, mem = measure(r, layout, shas[layout], a.requests)
            print("%-12s %16.1f  %21.0f" % (layout, us, mem))
    finally:
        srv.terminate()
        srv.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
