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


def test_downtime_is_per_lb_so_one_lb_down_does_not_vanish_between_the_other_s_answers(metrics):
    # LB a fails for 3 s (requests 0.0, 0.1, ... 2.9) while LB b answers every request in between.
    records = [dict(rec(i / 10.0, 503), target="a") for i in range(30)]
    records += [dict(rec(i / 10.0 + 0.05), target="b") for i in range(30)]
    assert metrics.downtime_by_target(records) == {"a": 2.91, "b": 0.0}
    assert metrics.downtime(records) == 2.91


def test_a_4xx_answer_is_a_failed_request(metrics):
    assert metrics.is_failed(rec(0, 404), fail_on_4xx=True) and metrics.is_failed(rec(0, None), fail_on_4xx=True)
    assert not metrics.is_failed(rec(0, 200), fail_on_4xx=True) and not metrics.is_failed(rec(0, 302), fail_on_4xx=True)
    assert metrics.downtime([rec(0), rec(1, 404), rec(2)]) == 0.01


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


def test_median_spread_and_ratio(metrics):
    assert metrics.median([41.0, 39.5, 40.2]) == 40.2
    assert metrics.median([4, 1, 3, 2]) == 2.5
    assert metrics.median([7.0]) == 7.0
    assert metrics.median([]) is None
    assert metrics.spread([41.0, 39.5, 40.2]) == (39.5, 41.0)
    assert metrics.spread([]) is None
    assert metrics.ratio(70.2, 40.2) == 1.75
    assert metrics.ratio(117.1, 76.8) == 1.52
    assert metrics.ratio(1.0, 3.0, digits=3) == 0.333
    assert metrics.ratio(None, 40.0) is None
    assert metrics.ratio(40.0, None) is None
    assert metrics.ratio(40.0, 0) is None


def test_batch_count_takes_sizes_as_serial_does(metrics):
    assert [metrics.batch_count(hosts, "25%") for hosts in (4, 8, 16)] == [4, 4, 4]
    assert metrics.batch_count(4, 1) == 4
    assert metrics.batch_count(5, 2) == 3
    assert metrics.batch_count(3, "25%") == 3  # rounded down to 0, at least 1
    assert metrics.batch_count(10, "100%") == 1


def test_a_comparison_is_medians_over_the_runs_that_succeeded(metrics):
    peer = metrics.side_summary("peer", "bench/peer_plain.yml", 1, [
        {"rc": 0, "sent": 4000, "failed": 0, "wall_s": 41.0},
        {"rc": 2, "sent": 300, "failed": 3, "wall_s": 5.0},  # failed early: says nothing about the wall time
        {"rc": 0, "sent": 4100, "failed": 0, "wall_s": 39.4},
    ])
    assert peer["ok_runs"] == 2 and len(peer["runs"]) == 3
    assert (peer["median_wall_s"], peer["min_wall_s"], peer["max_wall_s"]) == (40.2, 39.4, 41.0)
    ours = metrics.side_summary("ours", "fleet.rollout.ramped", 1, [
        {"rc": 0, "sent": 7000, "failed": 0, "wall_s": 70.2}, {"rc": 0, "sent": 7100, "failed": 0, "wall_s": 68.0},
        {"rc": 0, "sent": 7300, "failed": 0, "wall_s": 72.9}])
    assert (ours["median_wall_s"], ours["min_wall_s"], ours["max_wall_s"]) == (70.2, 68.0, 72.9)
    found = metrics.comparison(peer, ours)
    assert found["sides"] == [peer, ours]
    assert found["ratio_ours_peer"] == 1.75
    nothing = metrics.side_summary("peer", "bench/peer_plain.yml", 1, [{"rc": 2, "sent": 1, "failed": 1, "wall_s": 3.0}])
    assert nothing["ok_runs"] == 0 and nothing["median_wall_s"] is None and nothing["min_wall_s"] is None
    assert metrics.comparison(nothing, ours)["ratio_ours_peer"] is None


def _peer_comparison(metrics):
    peer = metrics.side_summary("peer", "bench/peer_plain.yml", 1, [
        {"rc": 0, "sent": 4000, "failed": 0, "wall_s": 41.0}, {"rc": 0, "sent": 4100, "failed": 2, "wall_s": 39.5},
        {"rc": 2, "sent": 300, "failed": 3, "wall_s": 5.0}])
    ours = metrics.side_summary("ours", "fleet.rollout.ramped", 1, [
        {"rc": 0, "sent": 7000, "failed": 0, "wall_s": 70.2}, {"rc": 0, "sent": 7100, "failed": 0, "wall_s": 68.0},
        {"rc": 0, "sent": 7300, "failed": 0, "wall_s": 72.9}])
    return dict(metrics.comparison(peer, ours), batch_size=1, runs_each=3, service="web", lb="haproxy")


def test_the_peer_comparison_table(table, metrics):
    results = {"machine": "Linux, 2 cores", "when": "2026-12-03 09:00:00 UTC", "rate": 100.0, "strategies": [],
               "peer": _peer_comparison(metrics)}
    text = table.tables(results)
    assert "3 runs each" in text and "service web (HAProxy)" in text
    assert "| side | batch size | runs | median wall | min–max | sent / failed per run |" in text
    assert "| peer: `bench/peer_plain.yml` | 1 | 3 (1 failed) | 40.2 s | 39.5–41.0 s " \
        "| 4,000 / 0, 4,100 / 2, 300 / 3 (rc 2) |" in text
    assert "| ours: `fleet.rollout.ramped` | 1 | 3 | 70.2 s | 68.0–72.9 s | 7,000 / 0, 7,100 / 0, 7,300 / 0 |" in text
    assert "\nratio ours/peer (median): 1.75×\n" in text
    assert "(2.0.0 already installed)" in text  # results from before the key: measured that way
    results["peer"]["release_preinstalled"] = False
    assert "(2.0.0 on no host: both sides upload and unpack it)" in table.tables(results)
    results["peer"]["ratio_ours_peer"] = None
    assert "ratio ours/peer (median): - (a side has no successful run)" in table.tables(results)


def test_results_of_the_single_peer_run_still_make_a_table(table):
    results = {"machine": "Linux, 2 cores", "when": "2026-12-03 09:00:00 UTC", "rate": 100.0,
               "strategies": [{"strategy": "ramped", "lb": "haproxy", "decision": "none", "extra_hosts": 0,
                               "switch_window_s": 4.4, "rollout": {"rc": 0, "sent": 7309, "failed": 0,
                                                                   "downtime_s": 0.0, "wall_s": 68.2, "reloads": 0}}],
               "peer": {"sent": 4559, "failed": 0, "downtime_s": 0.0, "wall_s": 40.5, "reloads": 0,
                        "playbook": "bench/peer_rolling.yml"}}
    text = table.tables(results)
    assert "| peer: `bench/peer_rolling.yml` | 4,559 | 0 | 0.0 s | 40.5 s | 0 |" in text
    assert "| ours: `fleet.rollout.ramped` | 7,309 | 0 | 0.0 s | 68.2 s | 0 |" in text
    assert "ratio ours/peer" not in text


def test_the_scaling_table_has_the_overhead_per_batch_and_the_wall_time_ratio(table):
    results = {"machine": "Linux, 2 cores", "when": "2026-12-03 09:00:00 UTC", "rate": 100.0, "strategies": [],
               "scaling": [
                   {"hosts": 4, "rc": 0, "wall_s": 76.8, "drain_s": 6.7, "restart_s": 2.4, "gate_s": 11.7,
                    "overhead_s": 56.0, "overhead_per_host_s": 13.99, "batches": 4, "overhead_per_batch_s": 14.0},
                   {"hosts": 8, "rc": 0, "wall_s": 67.7, "overhead_s": 56.9, "overhead_per_host_s": 7.11, "batches": 4,
                    "overhead_per_batch_s": 14.23},
                   {"hosts": 16, "rc": 0, "wall_s": 117.1, "overhead_s": 104.3, "overhead_per_host_s": 6.52,
                    "batches": 4, "overhead_per_batch_s": 26.07}]}
    text = table.tables(results)
    assert "| overhead per host | batches | overhead per batch |" in text
    assert "| 4 | 76.8 s | 6.7 s | 2.4 s | 11.7 s | 56.0 s | 13.99 s | 4 | 14.0 s |" in text
    assert "| 16 | 117.1 s | - | - | - | 104.3 s | 6.52 s | 4 | 26.07 s |" in text
    assert "\nwall time 16 hosts / 4 hosts: 1.52× (4× the hosts)\n" in text
    # A failed run gives no ratio.
    results["scaling"][2]["rc"] = 2
    assert "wall time 8 hosts / 4 hosts: 0.88×" in table.tables(results)
    results["scaling"] = results["scaling"][:1]
    assert " hosts / " not in table.tables(results)


def test_the_table_shows_every_measure_and_the_doc_gets_it(table, metrics, tmp_path):
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
        "peer": _peer_comparison(metrics),
        "scaling": [{"hosts": 4, "wall_s": 60.0, "drain_s": 2.0, "restart_s": 4.0, "gate_s": 8.0, "overhead_s": 46.0,
                     "overhead_per_host_s": 11.5, "batches": 4, "overhead_per_batch_s": 11.5},
                    {"hosts": 16, "wall_s": 90.0, "drain_s": 2.0, "restart_s": 4.0, "gate_s": 8.0, "overhead_s": 76.0,
                     "overhead_per_host_s": 4.75, "batches": 4, "overhead_per_batch_s": 19.0}],
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
    assert "| peer: `bench/peer_plain.yml` | 1 | 3 (1 failed) | 40.2 s | 39.5–41.0 s " in text
    assert "ratio ours/peer (median): 1.75×" in text
    assert "| 4 | 60.0 s | 2.0 s | 4.0 s | 8.0 s | 46.0 s | 11.5 s | 4 | 11.5 s |" in text
    assert "wall time 16 hosts / 4 hosts: 1.50× (4× the hosts)" in text
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


def test_a_bad_release_is_measured_from_its_first_failure(metrics):
    bad = [{"t": t, "status": status, "version": "2.0.1-bad", "dur": 0.01} for t, status in
           ((10.0, 200), (10.5, 500), (11.0, 200), (13.2, 500), (14.0, 200))]
    records = [rec(t) for t in (9.0, 12.0, 15.0, 19.0, 21.0)] + bad
    found = metrics.bad_release(records, ended=20.0, rc=2, outcome="failed")
    # First failure 10.5; the bad release's last answer started at 14.0; the run (its rollback) ended at 20.0.
    assert found == {"rolled_back": True, "first_failure_to_last_bad_s": 3.5, "first_failure_to_run_end_s": 9.5,
                     "back_on_old": True}
    # A run that did not fail did not roll back; the bad release still answering after the run is no way back.
    late = metrics.bad_release(records + [dict(bad[0], t=22.0)], ended=20.0, rc=0, outcome="succeeded")
    assert late["rolled_back"] is False and late["back_on_old"] is False
    # A run that failed before it started (no rollback recorded) is no rollback either.
    assert metrics.bad_release(records, ended=20.0, rc=2, outcome="succeeded")["rolled_back"] is False
    assert metrics.bad_release([rec(1.0)], ended=5.0, rc=2)["first_failure_to_run_end_s"] is None


def test_the_bad_release_table(table):
    results = {"machine": "Linux, 2 cores", "when": "2026-12-07 09:00:00 UTC", "rate": 100.0, "strategies": [],
               "bad_releases": [
                   {"strategy": "canary_bad", "lb": "haproxy", "bad": True,
                    "rollout": {"rc": 2, "sent": 3100, "failed": 6, "downtime_s": 0.0, "wall_s": 41.0},
                    "bad_release": {"rolled_back": True, "first_failure_to_last_bad_s": 5.3,
                                    "first_failure_to_run_end_s": 14.2, "back_on_old": True}},
                   {"strategy": "blue_green_bad", "lb": "haproxy", "bad": True,
                    "rollout": {"rc": 0, "sent": 3000, "failed": 900, "downtime_s": 0.0, "wall_s": 50.0},
                    "bad_release": {"rolled_back": False, "first_failure_to_last_bad_s": 30.0,
                                    "first_failure_to_run_end_s": 31.0, "back_on_old": False}}]}
    text = table.tables(results)
    assert "| strategy | LB | sent | failed | first failure → last bad answer | first failure → run end |" in text
    assert "| canary_bad | haproxy | 3,100 | 6 | 5.3 s | 14.2 s | yes | yes |" in text
    assert "| blue_green_bad | haproxy | 3,000 | 900 | 30.0 s | 31.0 s | **no** | **no** |" in text
    assert "**Bad release**" not in table.tables(dict(results, bad_releases=[]))
