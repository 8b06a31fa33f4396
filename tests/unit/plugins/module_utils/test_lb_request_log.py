"""Reading and summing up the LB roles' per-request JSON logs."""

from __future__ import annotations

import json

from ansible_collections.fleet.rollout.plugins.module_utils._haproxy_runtime import RuntimeClient
from ansible_collections.fleet.rollout.plugins.module_utils._lb_request_log import (
    haproxy_dropped_logs, haproxy_records, nginx_records, summarize,
)


def haproxy_line(ts, backend, server, status, ta_ms, frontend="fe_shop"):
    # The haproxy role's log-format, as journald stores it (plus the notices HAProxy also prints).
    return json.dumps({"ts": ts, "id": "x", "client": "10.0.0.9", "frontend": frontend, "backend": backend,
                       "server": server, "status": status, "tw": 0, "tc": 0, "tr": 1, "ta": ta_ms, "bytes": 10,
                       "term": "--", "method": "GET", "uri": "/"})


def nginx_line(ts, pool, upstream, status, rt, service="shop"):
    return json.dumps({"ts": ts, "id": "x", "client": "10.0.0.9", "service": service, "pool": pool,
                       "upstream": upstream, "status": status, "upstream_status": "", "rt": rt, "urt": "",
                       "bytes": 10, "method": "GET", "uri": "/"})


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
