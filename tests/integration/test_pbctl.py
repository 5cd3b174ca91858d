"""pbctl as a script and a health check sees it: `status`'s verdict and
exit code (0 healthy, 1 degraded, 2 down)."""
from pbcluster import wait_until
from conftest import pbctl


def status(cluster):
    return pbctl(cluster, "status", check=False)


def test_status_exit_code_is_healthy_degraded_or_down(cluster):
    rc, out = status(cluster)
    assert rc == 0 and "health   ok\n" in out, out

    # One replica down: the cluster works with less room, 1.
    master = cluster.master_node()
    replica = next(n["name"] for n in cluster.topo["redis_nodes"] if n["name"] != master)
    cluster.stop(replica)
    try:
        assert wait_until(lambda: status(cluster)[0] == 1, 15), status(cluster)
        rc, out = status(cluster)
        assert "health   DEGRADED: a replica is down" in out, out
    finally:
        cluster.start(replica)
    assert wait_until(lambda: status(cluster)[0] == 0, 60), status(cluster)

    # Two of three Sentinels stopped: no master a majority names, 2.
    stopped = [s["name"] for s in cluster.topo["sentinels"]][:2]
    for s in stopped:
        cluster.stop(s)
    try:
        rc, out = status(cluster)
        assert rc == 2, out
        assert "health   DOWN: no master named by a majority of the Sentinels" in out, out
    finally:
        for s in stopped:
            cluster.start(s)
    assert wait_until(lambda: status(cluster)[0] == 0, 60), status(cluster)
