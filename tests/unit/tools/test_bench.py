"""The benchmark's measures (bench/metrics.py) and its tables (bench/bench_table.py), on records whose answer
is known."""

from __future__ import annotations

import json
import sys

import pytest


@pytest.fixture(name="metrics")
def _metrics(bench_metrics):
    return bench_metrics


@pytest.fixture(name="table")
def _table(bench_table):
    return bench_table


def rec(t, status=200, version="1.0.0", dur=0.01, user=None):
    return {"t": t, "status": status, "version": version if status == 200 else None, "dur": dur, "user": user}


def test_downtime_is_the_longest_run_of_failures_start_to_end(metrics):
    records = [rec(0), rec(1, 503), rec(1.5, None, dur=2.0), rec(2, 503), rec(3), rec(4, 502), rec(5)]
    # 1.0 (first failure) to 3.5 (the end of the 2 s one that started at 1.5); the later one is short.
    assert metrics.downtime(records) == 2.5
    assert metrics.downtime([rec(0), rec(1)]) == 0.0
    assert metrics.downtime([rec(2, 503), rec(0), rec(1, 503, dur=0.5)]) == 1.01  # by start, not by order


def test_switch_window_is_how_long_users_saw_both(metrics):
    records = [rec(0), rec(1, version="2.0.0"), rec(1.5), rec(2, version="2.0.0")]
    assert metrics.switch_window(records, "1.0.0", "2.0.0") == 0.5
    assert metrics.switch_window([rec(0), rec(1, version="2.0.0")], "1.0.0", "2.0.0") == 0.0
    assert metrics.switch_window([rec(0)], "1.0.0", "2.0.0") is None


def test_exposed_share_counts_users_before_the_decision(metrics):
    records = [rec(0, user="a"), rec(1, version="2.0.0", user="a"), rec(1, user="b"), rec(2, user="c"),
               rec(5, version="2.0.0", user="b"), rec(1, 503, user="d")]
    # Before t=3: users a, b, c, d; only a got 2.0.0 (b got it after the decision).
    assert metrics.exposed_share(records, 3.0, "2.0.0") == 25.0
    assert metrics.exposed_share(records, 0.0, "2.0.0") is None


def test_task_times_sum_each_kind_of_step(metrics):
    output = "\n".join([
        "Thursday 03 December 2026  09:05:01 +0000 (0:00:01.234)       0:00:10.567 *****",
        "fleet.rollout.haproxy : Stop new requests to the servers on every LB ------------------- 0.50s",
        "fleet.rollout.haproxy : Wait until the requests in flight have finished on every LB still busy --- 1.25s",
        "fleet.rollout.nginx : Mark the servers down and reload, on every LB ----------- 0.75s",
        "fleet.rollout.nginx : Wait for the old workers on every LB still busy -------- 2.00s",
        "fleet.rollout.release : Start or restart the service ---------------------------- 0.40s",
        "fleet.rollout.release : Start or restart the service ---------------------------- 0.60s",
        "fleet.rollout.release : Wait until the service answers healthy ------------------ 1.10s",
        "fleet.rollout.haproxy : Wait until every LB sees the servers UP ----------------- 0.90s",
        "fleet.rollout.ramped : Show the plan --------------------------------------------- 0.05s",
    ])
    assert metrics.task_times(output) == {"drain": 4.5, "restart": 1.0, "gate": 2.0}


def test_the_table_shows_every_measure_and_the_doc_gets_it(table, tmp_path):
    results = {
        "machine": "Linux, 2 cores", "when": "2026-12-03 09:00:00 UTC", "rate": 100.0, "bench_seconds": 1500,
        "matrix": "each",
        "strategies": [
            {"strategy": "blue_green", "lb": "haproxy", "decision": "flip", "exposed_before_decision_pct": 0.0,
             "extra_hosts": 2, "switch_window_s": 0.29,
             "rollout": {"rc": 0, "sent": 5162, "failed": 0, "downtime_s": 0.0, "wall_s": 46.6, "reloads": 0},
             "rollback": {"rc": 0, "sent": 2217, "failed": 0, "wall_s": 17.2, "reloads": 0, "playbook": "rollback",
                          "users_on_new_until_s": 6.2}},
            {"strategy": "canary_sticky", "lb": "haproxy", "decision": "verdict", "exposed_before_decision_pct": 9.4,
             "extra_hosts": 0, "switch_window_s": 140.2,
             "rollout": {"rc": 0, "sent": 15383, "failed": 0, "downtime_s": 0.0, "wall_s": 148.9, "reloads": 0}},
            {"strategy": "recreate", "lb": "nginx", "decision": "none", "exposed_before_decision_pct": None,
             "extra_hosts": 0, "switch_window_s": 0.0,
             "rollout": {"rc": 0, "sent": 3000, "failed": 1400, "downtime_s": 23.9, "wall_s": 47.5, "reloads": 3},
             "rollback": {"rc": 2, "sent": 10, "failed": 10, "wall_s": 5.0, "reloads": 1, "playbook": "recreate"}},
            # A "rollback" after which users still got 2.0.0.
            {"strategy": "ab_test", "lb": "nginx", "decision": "marker", "exposed_before_decision_pct": 47.6,
             "extra_hosts": 2, "switch_window_s": 60.0,
             "rollout": {"rc": 0, "sent": 7445, "failed": 0, "downtime_s": 0.0, "wall_s": 70.2, "reloads": 4},
             "rollback": {"rc": 0, "sent": 2418, "failed": 0, "wall_s": 19.2, "reloads": 2, "playbook": "rollback",
                          "users_on_new_until_s": 22.3, "back_on_old": False}},
        ],
        "peer": {"sent": 6000, "failed": 12, "downtime_s": 0.02, "wall_s": 70.0, "reloads": 0},
        "scaling": [{"hosts": 4, "wall_s": 60.0, "drain_s": 2.0, "restart_s": 4.0, "gate_s": 8.0, "overhead_s": 46.0,
                     "overhead_per_host_s": 11.5}],
        "lb_operations": {"servers": 50, "ours_seconds": 1.37, "peer_seconds": 21.02, "ratio": 15.4},
    }
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\n<!-- bench:strategies -->\nold table\n<!-- /bench:strategies -->\n\nafter\n")
    text = table.tables(results)
    assert "| blue_green | haproxy | 5,162 | 0 | 0.0 s | 46.6 s | 0.3 s | 0.0 % | 2 | 0 | flip back | 2,217 / 0 | 6.2 s | 0 |" \
        in text
    assert "| recreate | nginx | 3,000 | 1,400 | 23.9 s | 47.5 s | 0.0 s | n/a (no decision point) | 0 | 3 | recreate" in text
    assert "*run failed: rollout rc 0, rollback rc 2*" in text
    # A run with no rollback of its own: nothing measured, nothing failed.
    assert "| canary_sticky | haproxy | 15,383 | 0 | 0.0 s | 148.9 s | 140.2 s | 9.4 % | 0 | 0 | - (none of its own) " \
        "| - / - | - | - |" in text
    assert text.count("run failed") == 1
    assert "| flip back | 2,418 / 0 | never | 2 |" in text
    assert "each strategy behind one LB kind (column LB), both kinds covered" in text
    assert "| peer: `bench/peer_rolling.yml` | 6,000 | 12 | 0.02 s | 70.0 s | 0 |" in text
    assert "| 4 | 60.0 s | 2.0 s | 4.0 s | 8.0 s | 46.0 s | 11.5 s |" in text
    assert "**15.4×**" in text
    argv = sys.argv
    sys.argv = ["bench_table.py", str(path), "--docs", str(doc)]
    try:
        assert table.main() == 0
    finally:
        sys.argv = argv
    assert (tmp_path / "results.md").read_text() == text
    updated = doc.read_text()
    assert "old table" not in updated and text in updated and updated.endswith("<!-- /bench:strategies -->\n\nafter\n")
