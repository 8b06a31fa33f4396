"""fleet.rollout.lb_request_log's timeline_only: the log read as a stream, only the per-second counts back."""

from __future__ import annotations

import json

from ansible_collections.fleet.rollout.plugins.modules import lb_request_log


def line(ts, upstream, status, pool="fleet_shop_main"):
    return json.dumps({"ts": ts, "id": "x", "client": "10.0.0.9", "service": "shop", "pool": pool,
                       "upstream": upstream, "status": status, "upstream_status": str(status), "rt": 0.01,
                       "urt": "0.010", "bytes": 10, "method": "GET", "uri": "/", "user": ""})


def test_timeline_only_streams_an_nginx_log_and_names_servers(tmp_path, run_module):
    log = tmp_path / "fleet-shop.access.json"
    log.write_text("\n".join([line(100.1, "127.0.0.1:8080", 200), line(100.5, "127.0.0.1:8081", 502),
                              "not json", line(101.2, "127.0.0.1:8080", 200), line(103.0, "127.0.0.1:8080", 200)])
                   + "\n")
    out = run_module(lb_request_log.main, {"lb": "nginx", "service": "shop", "since": 100.0, "until": 102.0,
                                           "settle": 0, "nginx_log_dir": str(tmp_path), "timeline_interval": 1,
                                           "timeline_only": True, "timeline_servers": ["localhost:8080"]})
    assert out["changed"] is False and "requests" not in out and "groups" not in out
    assert (out["since"], out["until"]) == (100.0, 102.0)
    assert [(b["t"], b["requests"], b["errors"]) for b in out["timeline"]] == [(100.0, 2, 1), (101.0, 1, 0), (102.0, 0, 0)]
    assert out["timeline"][0]["by_server"] == {"main/localhost:8080": [1, 0], "main/127.0.0.1:8081": [1, 1]}


def test_timeline_only_needs_an_interval(tmp_path, run_module):
    out = run_module(lb_request_log.main, {"lb": "nginx", "service": "shop", "since": 100.0, "until": 102.0,
                                           "settle": 0, "nginx_log_dir": str(tmp_path), "timeline_only": True})
    assert out["failed"] and out["msg"] == "timeline_only needs timeline_interval (seconds per bucket)"


def test_timeline_only_without_the_log_fails_naming_it(tmp_path, run_module):
    out = run_module(lb_request_log.main, {"lb": "nginx", "service": "shop", "since": 100.0, "until": 102.0,
                                           "settle": 0, "nginx_log_dir": str(tmp_path), "timeline_interval": 1,
                                           "timeline_only": True})
    assert out["failed"] and "fleet-shop.access.json" in out["msg"], out
