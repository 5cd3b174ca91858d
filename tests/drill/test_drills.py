"""Failover drills: every acknowledged postback must wait in Redis across
the fault and arrive after it (see runner.py for how each is counted).

    make drill                 every drill, then run/drill/summary.{md,json}
    make drill DRILL=master_sigkill
"""
import signal

from runner import demoted, drill, partition, restart, stop_one, wait_new_master


def kill_master(c):
    m = c.master_node()
    c.stop(m, sig=signal.SIGKILL)  # stays down until healed
    return {"old": m, "new": wait_new_master(c, m)}


def test_master_sigkill(lab):
    drill(lab, "master_sigkill", kill_master, restart, hold=10, check=demoted)


def test_master_pause(lab):
    def pause(c):
        m = c.master_node()
        c.kill(m, signal.SIGSTOP)
        return {"old": m}

    def resume(c, state):
        m = c.master_node()
        state["new"] = m if m != state["old"] else None
        c.kill(state["old"], signal.SIGCONT)
    down_after_s = lab.topo["vars"]["pb_sentinel_down_after_ms"] / 1000.0
    drill(lab, "master_pause", pause, resume, hold=down_after_s + 7, check=demoted)


def test_master_partition(lab):
    """The master's host is cut off from everyone but ingest1, agent1 and
    the client side, which keep using it: it must not acknowledge writes a
    failover throws away (min-replicas-to-write + WAIT), and when the
    partition heals nothing the new master acknowledged may be lost."""
    cut, heal = partition(lab.net, lambda c: c.master_node(), keep_clients=True)
    drill(lab, "master_partition", cut, heal, hold=15, check=demoted)


def test_ingest_host_killed(lab):
    drill(lab, "ingest_killed", stop_one(lambda c: "ingest1"), restart, hold=8)


def test_agent_host_killed(lab):
    drill(lab, "agent_killed", stop_one(lambda c: "agent1"), restart, hold=10)


def test_sentinel_killed(lab):
    drill(lab, "sentinel_killed", stop_one(lambda c: c.topo["sentinels"][0]["name"]),
          restart, hold=8)


def test_replica_killed(lab):
    def a_replica(c):
        return next(n["name"] for n in c.topo["redis_nodes"]
                    if n["name"] != c.master_node())
    drill(lab, "replica_killed", stop_one(a_replica), restart, hold=8)


def test_redis_tier_restart(lab):
    def stop_tier(c):
        names = [n["name"] for n in c.topo["sentinels"] + c.topo["redis_nodes"]]
        for n in names:
            c.stop(n)
        return {"names": names}

    def start_tier(c, state):
        for n in reversed(state["names"]):
            c.start(n)
        c.wait_ready(120)
    drill(lab, "redis_tier_restart", stop_tier, start_tier, hold=3)


def test_planned_switchover(lab):
    """pbctl switchover under load. (SENTINEL FAILOVER alone lost 74
    acknowledged postbacks here: see cmd_switchover in apps/ctl/main.c.)"""
    def switch(c):
        old = c.master_node()
        p = c.pbctl("switchover")
        assert p.returncode == 0, p.stdout + p.stderr
        print(p.stdout.strip())
        return {"old": old, "new": wait_new_master(c, old)}
    drill(lab, "switchover", switch, lambda c, s: None, hold=5, check=demoted)
