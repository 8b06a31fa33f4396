"""Reading and summing up the LB roles' per-request JSON logs."""

from __future__ import annotations

import json
import time

import pytest

from ansible_collections.fleet.rollout.plugins.module_utils._haproxy_runtime import RuntimeClient
from ansible_collections.fleet.rollout.plugins.module_utils._lb_request_log import (
    group_samples, haproxy_dropped_logs, haproxy_records, nginx_addresses, nginx_attempts, nginx_records, summarize,
    user_samples, wait_for_window,
)


def haproxy_line(ts, backend, server, status, ta_ms, frontend="fe_shop"):
    # The haproxy role's log-format, as journald stores it (plus the notices HAProxy also prints).
    return json.dumps({"ts": ts, "id": "x", "client": "10.0.0.9", "frontend": frontend, "backend": backend,
                       "server": server, "status": status, "tw": 0, "tc": 0, "tr": 1, "ta": ta_ms, "bytes": 10,
                       "term": "--", "method": "GET", "uri": "/"})


def nginx_line(ts, pool, upstream, status, rt, service="shop", upstream_status="", urt=""):
    return json.dumps({"ts": ts, "id": "x", "client": "10.0.0.9", "service": service, "pool": pool,
                       "upstream": upstream, "status": status, "upstream_status": upstream_status, "rt": rt,
                       "urt": urt, "bytes": 10, "method": "GET", "uri": "/"})


def test_haproxy_window_with_maintenance():
    lines = [
        "[NOTICE]   (1) : New worker (7) forked",
        haproxy_line(99.0, "be_shop_blue", "app1", 200, 5),             # before the window
        haproxy_line(100.0, "be_shop_blue", "app1", 200, 5),
        haproxy_line(101.0, "be_shop_maintenance", "<NOSRV>", 503, 0),
        haproxy_line(102.5, "be_shop_maintenance", "<NOSRV>", 503, 2),
        haproxy_line(103.0, "be_shop_blue", "<NOSRV>", 503, 0),          # no server up: unserved and failed
        haproxy_line(104.0, "be_shop_blue", "app2", 200, 2000),
        haproxy_line(104.0, "be_other_blue", "app2", 200, 1, frontend="fe_other"),
        "{not json",
    ]
    summary = summarize(haproxy_records(lines, "shop"), 100.0, 105.0)
    assert summary["requests"] == 5
    assert summary["by_route"] == {"blue": 3, "maintenance": 2}
    assert summary["by_status"] == {"200": 2, "503": 3}
    assert summary["by_server"] == {"app1": 1, "app2": 1}
    assert summary["failed_answers"] == 1
    assert summary["maintenance"] == {"answers": 2, "max_seconds": 0.002}
    assert summary["unserved"] == {"answers": 3, "first": 101.0, "last": 103.0, "seconds": 2.0}


def test_nginx_window_and_retried_upstreams():
    lines = [
        nginx_line(100.0, "fleet_shop_main", "10.0.0.1:8080", 200, 0.004),
        nginx_line(100.5, "maintenance", "", 503, 0.0),
        nginx_line(101.25, "maintenance", "", 503, 0.001),
        nginx_line(102.0, "fleet_shop_main", "10.0.0.1:8080, 10.0.0.2:8080", 200, 0.01),
        nginx_line(103.0, "fleet_shop_main", "fleet_shop_main", 503, 0.0),  # no live server: unserved, failed
        nginx_line(102.0, "fleet_other_main", "10.0.0.3:8080", 500, 0.01, service="other"),
    ]
    summary = summarize(nginx_records(lines, "shop"), 100.0, 110.0)
    assert summary["by_route"] == {"main": 3, "maintenance": 2}
    assert summary["by_server"] == {"10.0.0.1:8080": 1, "10.0.0.2:8080": 1}
    assert summary["failed_answers"] == 1
    assert summary["unserved"] == {"answers": 3, "first": 100.5, "last": 103.0, "seconds": 2.5}


def test_a_window_without_trouble():
    summary = summarize(nginx_records([nginx_line(1.0, "fleet_shop_main", "a:1", 200, 0.1)], "shop"), 0.0, 2.0)
    assert summary["unserved"] == {"answers": 0, "first": None, "last": None, "seconds": 0.0}
    assert summary["maintenance"] == {"answers": 0, "max_seconds": None}


def test_dropped_log_lines_come_from_haproxy_or_are_unknown(haproxy_lab, run_app, tmp_path):
    url = run_app()[1]
    lab = haproxy_lab({"be": ["a %s" % url[len("http://"):]]})
    assert haproxy_dropped_logs(RuntimeClient(lab.socket)) == 0
    assert haproxy_dropped_logs(RuntimeClient(str(tmp_path / "none.sock"))) is None


def test_group_samples_from_haproxy():
    lines = [
        haproxy_line(100.0, "be_shop_main", "app1", 200, 5),
        haproxy_line(100.1, "be_shop_main", "app1", 500, 7),
        haproxy_line(100.2, "be_shop_main", "app2", 200, 9),
        haproxy_line(100.3, "be_shop_main", "app3", 200, 4),         # in no group
        haproxy_line(100.4, "be_shop_main", "<NOSRV>", 503, 0),      # no server: no group's
        haproxy_line(120.0, "be_shop_main", "app1", 200, 5),         # after the window
    ]
    samples = group_samples(haproxy_records(lines, "shop"), {"canary": ["app1"], "baseline": ["app2"]}, 100, 110)
    assert samples == {"canary": {"requests": 2, "errors": 1, "latencies": [0.005], "consecutive_errors": 1},
                       "baseline": {"requests": 1, "errors": 0, "latencies": [0.009], "consecutive_errors": 0}}


def test_consecutive_errors_are_the_longest_run_in_time_order():
    # Log lines out of time order (journald merges workers): the run is counted in the order of the requests.
    statuses = {100.0: 500, 100.4: 500, 100.1: 500, 100.2: 200, 100.3: 503, 100.5: 500, 100.6: 502, 100.7: 200}
    lines = [haproxy_line(ts, "be_shop_main", "app1", status, 5) for ts, status in statuses.items()]
    lines.insert(3, haproxy_line(100.35, "be_shop_main", "app2", 200, 5))  # another group's success breaks no run
    samples = group_samples(haproxy_records(lines, "shop"), {"canary": ["app1"], "baseline": ["app2"]}, 100, 110)
    assert samples["canary"]["errors"] == 6
    assert samples["canary"]["consecutive_errors"] == 4  # 100.3, 100.4, 100.5, 100.6
    assert samples["baseline"]["consecutive_errors"] == 0
    # The answers as users got them: app2's success at 100.35 ends a run (100.4-100.6 is the longest), the
    # maintenance page neither counts nor breaks one.
    summary = summarize(haproxy_records(lines + [haproxy_line(100.45, "be_shop_maintenance", "<NOSRV>", 503, 0)],
                                        "shop"), 100, 110)
    assert summary["failed_answers"] == 6 and summary["consecutive_failed"] == 3


def test_group_samples_count_every_nginx_try():
    lines = [
        nginx_line(100.0, "fleet_shop_main", "10.0.0.1:8080", 200, 0.004, upstream_status="200", urt="0.004"),
        # The canary refused the connection (502 as nginx logs the try); nginx retried on the baseline.
        nginx_line(100.1, "fleet_shop_main", "10.0.0.1:8080, 10.0.0.2:8080", 200, 0.01,
                   upstream_status="502, 200", urt="0.000, 0.009"),
        nginx_line(100.2, "fleet_shop_main", "fleet_shop_main", 502, 0.0, upstream_status="502", urt="0.000"),
    ]
    records = nginx_records(lines, "shop")
    assert records[1]["attempts"] == [("10.0.0.1:8080", 502, 0.0), ("10.0.0.2:8080", 200, 0.009)]
    samples = group_samples(records, {"canary": ["10.0.0.1:8080"], "baseline": ["10.0.0.2:8080"]}, 0, 200)
    assert samples == {"canary": {"requests": 2, "errors": 1, "latencies": [0.004], "consecutive_errors": 1},
                       "baseline": {"requests": 1, "errors": 0, "latencies": [0.009], "consecutive_errors": 0}}


def test_nginx_tries_across_an_internal_redirect_and_odd_values():
    assert nginx_attempts("10.0.0.1:80 : 10.0.0.2:80", "504 : 200", "5.001 : 0.002") == [
        ("10.0.0.1:80", 504, 5.001), ("10.0.0.2:80", 200, 0.002)]
    assert nginx_attempts("10.0.0.1:80", "", "-") == [("10.0.0.1:80", None, 0.0)]
    assert nginx_attempts("", "", "") == []


def test_a_server_in_two_groups_is_an_error():
    with pytest.raises(ValueError, match="server app1 is in both canary and baseline"):
        group_samples([], {"canary": ["app1"], "baseline": ["app1"]}, 0, 1)


def test_nginx_addresses_resolve_names_as_nginx_does():
    addresses = nginx_addresses(["localhost:8080", "127.0.0.1:81", "no-such-host.invalid:80", "bare"])
    assert "127.0.0.1:8080" in addresses["localhost:8080"]
    assert addresses["127.0.0.1:81"] == ["127.0.0.1:81"]
    assert addresses["no-such-host.invalid:80"] == ["no-such-host.invalid:80"]
    assert addresses["bare"] == ["bare"]


def test_user_samples_count_requests_errors_and_conversions_per_variant_and_user():
    def line(ts, backend, status, user, method="GET", uri="/"):
        entry = json.loads(haproxy_line(ts, backend, "app1", status, 3))
        entry.update(user=user, method=method, uri=uri)
        return json.dumps(entry)

    haproxy = haproxy_records([
        line(100, "be_shop_a", 200, "u1"), line(101, "be_shop_a", 200, "u1", uri="/checkout?x=1"),
        line(101, "be_shop_a", 500, "u1", uri="/checkout"), line(102, "be_shop_b", 200, "u2", "POST", "/checkout"),
        line(102, "be_shop_b", 200, "-"), line(103, "be_shop_maintenance", 503, "u3"),
        line(200, "be_shop_b", 200, "u9", uri="/checkout"),                      # after the window
    ], "shop")
    goal = {"method": "GET", "path": "/checkout"}
    assert user_samples(haproxy, 100, 110, goal) == {
        "a": {"u1": {"requests": 3, "errors": 1, "conversions": 1}},
        "b": {"u2": {"requests": 1, "errors": 0, "conversions": 0}, "": {"requests": 1, "errors": 0, "conversions": 0}},
    }
    entry = json.loads(nginx_line(100, "fleet_shop_b", "10.0.0.3:8080", 200, 0.01))
    entry.update(user="u7", uri="/checkout")
    assert user_samples(nginx_records([json.dumps(entry)], "shop"), 99, 101, goal) == {
        "b": {"u7": {"requests": 1, "errors": 0, "conversions": 1}}}


def test_wait_for_window_checks_and_waits_for_the_last_lines():
    started = time.time()
    assert wait_for_window("shop", started - 10, started, 0.3) == started
    assert time.time() - started >= 0.29
    assert wait_for_window("shop", 1.0, None, 0.0) >= started
    with pytest.raises(ValueError, match=r"until \(1.0\) is before since \(2.0\)"):
        wait_for_window("shop", 2.0, 1.0, 0.0)
    with pytest.raises(ValueError, match="service: expected a service name, got '../x'"):
        wait_for_window("../x", 1.0, 2.0, 0.0)


def test_timeline_buckets_every_second_of_the_window_per_pool_and_server():
    from ansible_collections.fleet.rollout.plugins.module_utils._lb_request_log import timeline

    lines = [nginx_line(100.2, "fleet_shop_blue", "10.0.0.1:8080", 200, 0.01),
             nginx_line(100.7, "fleet_shop_blue", "10.0.0.2:8080", 502, 0.01),
             nginx_line(101.1, "fleet_shop_green", "10.0.0.1:8081", 200, 0.01),
             nginx_line(102.9, "maintenance", "-", 503, 0.0),
             nginx_line(103.5, "fleet_shop_blue", "10.0.0.1:8080", 200, 0.01),  # after the window
             nginx_line(99.9, "fleet_shop_blue", "10.0.0.1:8080", 200, 0.01)]  # before it
    buckets = timeline(nginx_records(lines, "shop"), 100.0, 103.0, 1.0,
                       {"10.0.0.1:8080": "app1:8080", "10.0.0.1:8081": "app1:8081"})
    assert [b["t"] for b in buckets] == [100.0, 101.0, 102.0, 103.0]
    assert [(b["requests"], b["errors"], b["maintenance"]) for b in buckets] == [(2, 1, 0), (1, 0, 0), (1, 0, 1), (0, 0, 0)]
    # The same host in two pools (release slots) counts apart; an unnamed address keeps its own name.
    assert buckets[0]["by_server"] == {"blue/app1:8080": [1, 0], "blue/10.0.0.2:8080": [1, 1]}
    assert buckets[1]["by_server"] == {"green/app1:8081": [1, 0]}
    assert buckets[2]["by_server"] == {}
    with pytest.raises(ValueError, match="timeline_interval: expected seconds above 0"):
        timeline([], 0.0, 1.0, 0)
