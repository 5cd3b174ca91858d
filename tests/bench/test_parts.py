"""tests/bench/parts.py's judgement, on made-up rounds: a measurement that
cannot be trusted is invalid and never judged met (make tools-test)."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import parts  # noqa: E402


def snap(cpu, total=10.0, idle=1.0):
    return {"parts": dict(cpu), "total": total, "idle": idle}


def a_round(ingest_x=1.5, delivery_x=0.3, invalid=()):
    return {"ingest_1_x": ingest_x, "delivery_x": delivery_x, "invalid": list(invalid)}


@pytest.mark.parametrize("res, requests, objects, wanted", [
    ({"ok": 10, "acknowledged": 0}, 10, 0, []),
    ({"ok": 9, "acknowledged": 0}, 10, 0, ["x: 9 of 10 requests answered 200"]),
    ({"ok": 10, "acknowledged": 1000, "delivered": 1000, "missing": 0}, 10, 100, []),
    ({"ok": 10, "acknowledged": 990, "delivered": 990, "missing": 0}, 10, 100,
     ["x: 990 of 1000 postbacks acknowledged", "x: 990 of 1000 postbacks delivered, 0 missing"]),
    ({"ok": 10, "acknowledged": 1000, "delivered": 999, "missing": 1}, 10, 100,
     ["x: 999 of 1000 postbacks delivered, 1 missing"]),
])
def test_counts_that_do_not_add_up_make_a_round_invalid(res, requests, objects, wanted):
    invalid = []
    parts.counted(res, requests, objects, "x", invalid)
    assert invalid == wanted


def test_the_cluster_is_every_part_but_the_load_generator():
    invalid = []
    a = snap({"haproxy": 1.0, "agents": 2.0, parts.LOADGEN: 5.0})
    b = snap({"haproxy": 2.0, "agents": 4.0, parts.LOADGEN: 9.0}, total=20.0, idle=2.0)
    out = parts.per_unit(a, b, 1000, invalid, "x")
    assert out["haproxy"] == 1000.0 and out["agents"] == 2000.0
    assert out["cluster"] == 3000.0
    assert invalid == []


def test_a_part_whose_time_went_backwards_makes_the_round_invalid():
    invalid = []
    out = parts.per_unit(snap({"redis master": 3.0}), snap({"redis master": 1.0}), 1000,
                         invalid, "ingest")
    assert out["cluster"] < 0
    assert invalid == ["ingest: redis master's CPU time went backwards (-2.000 s)"]


@pytest.mark.parametrize("rounds, verdicts, valid", [
    ([a_round(1.5, 0.3)] * 3, ["met", "met"], True),
    ([a_round(2.5, 0.3)] * 3, ["missed", "met"], True),
    # A negative figure from a bad round is below any target: invalid, not met.
    ([a_round(-0.5, -0.1, ["ingest: redis master's CPU time went backwards"])] * 3,
     ["invalid", "invalid"], False),
    ([a_round(), a_round(), a_round(invalid=["1 AOF rewrite(s) on the Redis nodes"])],
     ["invalid", "invalid"], False),
])
def test_targets_are_judged_only_when_every_round_is_valid(rounds, verdicts, valid):
    text, ok = parts.judge(rounds)
    rows = [line for line in text.splitlines() if line.startswith("| ") and "<=" in line]
    assert [row.rstrip(" |").rsplit("| ", 1)[1] for row in rows] == verdicts
    assert ok == valid
    if not valid:
        assert "invalid: " in text
