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


def side(cost, speed, invalid=()):
    """A round of one side: every CPU figure cost, every throughput speed."""
    r = {(key + "_us" if part else key): ({part: cost} if part else speed)
         for _, key, part in parts.AB_FIGURES}
    return dict(r, invalid=list(invalid))


def verdicts(text):
    return {row.split(" | ")[0].lstrip("| "): row.rstrip(" |").rsplit("| ", 1)[1]
            for row in text.splitlines()
            if row.startswith("| ") and ("<=" in row or ">=" in row)}


@pytest.mark.parametrize("new, wanted", [
    (side(70.0, 120.0), "met"),      # cheaper by 0.7, faster by 1.2
    (side(90.0, 120.0), "missed"),   # cheaper by 0.9 only: ingest, no work missed
])
def test_a_run_against_the_base_judges_its_targets(new, wanted):
    text, ok = parts.against_table(parts.BASE + "abcde", "new", {
        parts.BASE + "abcde": [side(100.0, 100.0)] * 3, "new": [new] * 3})
    v = verdicts(text)
    assert ok
    assert v["ingest of 1 object: cluster CPU a request, us"] == wanted
    assert v["ingest of 100 objects, postbacks/s"] == "met"
    assert len(v) == len(parts.BASE_TARGETS)


def test_a_run_against_the_base_with_an_invalid_round_judges_nothing():
    text, ok = parts.against_table(parts.BASE, "new", {
        parts.BASE: [side(100.0, 100.0)] * 3,
        "new": [side(70.0, 120.0)] * 2 + [side(70.0, 120.0, ["1 AOF rewrite(s)"])]})
    assert not ok
    assert set(verdicts(text).values()) == {"invalid"}
    assert "new round 3 invalid: 1 AOF rewrite(s)" in text


def test_a_run_against_another_commit_compares_without_judging():
    text, ok = parts.against_table("0123abc", "new", {
        "0123abc": [side(100.0, 100.0)], "new": [side(50.0, 200.0)]})
    assert ok and verdicts(text) == {}
    assert "| ingest of 1 object: cluster CPU a request, us | 100.0 | 50.0 | 0.500 |" in text
