"""A few seconds of the bench tool against the test cluster: its count must
close (acknowledged = delivered, nothing missing). No timing is asserted."""
import json
import os
import subprocess

from conftest import ROOT
from pbcluster import free_port


def test_bench_smoke_counts_close(cluster, tmp_path):
    report = tmp_path / "bench.json"
    p = subprocess.run(
        [os.path.join(ROOT, "build", "pb-bench"), "--endpoint", cluster.endpoint + "/ingest",
         "--listen", "127.0.0.1:%d" % free_port(), "--requests", "400",
         "--objects", "3", "--connections", "8", "--method", "POST",
         "--wait", "60", "--json", str(report),
         "--key-file", cluster.path("secrets", "client.key")],
        capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    r = json.loads(report.read_text())
    assert r["ok"] == 400 and r["acknowledged"] == 1200
    assert r["delivered"] == 1200 and r["missing"] == 0
    assert r["e2e_p50_ms"] > 0  # latencies were measured


def test_bench_refuses_bad_arguments():
    p = subprocess.run([os.path.join(ROOT, "build", "pb-bench"), "--requests", "5"],
                       capture_output=True, text=True)
    assert p.returncode == 2 and "--endpoint is required" in p.stderr
