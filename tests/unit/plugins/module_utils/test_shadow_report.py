"""The shadow report's join and judgement, on log lines as the nginx role and the shadow relay write them."""

from __future__ import annotations

import json

import pytest

from ansible_collections.fleet.rollout.plugins.module_utils._shadow_report import (
    build_report, relay_records, rows, summary_line,
)


def access(ts, rid, status=200, urt="0.010", method="GET", uri="/"):
    return json.dumps({"ts": ts, "id": rid, "service": "shop", "pool": "fleet_shop_blue", "upstream": "10.0.0.1:8080",
                       "status": status, "upstream_status": str(status), "rt": 0.012, "urt": urt, "method": method,
                       "uri": uri, "user": ""})


def relay(ts, rid, status=200, rt=0.02, error=None, method="GET", uri="/"):
    return json.dumps({"ts": ts, "id": rid, "method": method, "uri": uri, "target": "10.0.0.3:8080", "status": status,
                       "rt": rt, "version": "2.0.0", "error": error})


def row(status=200, shadow_status=200, primary_seconds=0.01, shadow_seconds=0.01, error=None, path="/", rid="x"):
    return {"id": rid, "method": "GET", "path": path, "primary_status": status, "primary_seconds": primary_seconds,
            "shadow_status": shadow_status, "shadow_seconds": shadow_seconds, "shadow_error": error}


def test_rows_join_by_request_id_within_the_window():
    access_lines = [access(100.5, "a"), access(101.0, "b", status=201, method="POST", uri="/orders?x=1"),
                    access(102.0, "c"), access(99.0, "early"), "not json"]
    relay_lines = [relay(100.5, "a", rt=0.03), relay(101.0, "b", status=500, method="POST", uri="/orders?x=1"),
                   relay(101.5, "zzz"), relay(99.0, "early"), relay(103.5, "late"), "{broken"]
    joined = rows(access_lines, relay_lines, "shop", 100.0, 103.0)
    assert joined["primary_requests"] == 3
    assert joined["unmatched"] == 1
    assert [r["id"] for r in joined["rows"]] == ["a", "b"]
    assert joined["rows"][0] == {"id": "a", "method": "GET", "path": "/", "primary_status": 200, "primary_seconds": 0.01,
                                 "shadow_status": 200, "shadow_seconds": 0.03, "shadow_error": None}
    assert joined["rows"][1]["path"] == "/orders" and joined["rows"][1]["shadow_status"] == 500


def test_relay_records_keep_no_answer_as_none():
    records = relay_records([relay(1.0, "a", status=None, rt=0.001, error="ConnectionRefusedError: refused"),
                             relay(1.0, "", status=200)])
    assert records == [{"ts": 1.0, "id": "a", "method": "GET", "path": "/", "status": None, "seconds": 0.001,
                        "error": "ConnectionRefusedError: refused"}]


def test_a_good_shadow_passes():
    report = build_report([row(rid=str(i)) for i in range(200)], primary_requests=400)
    assert report["verdict"] == "pass" and report["passed"] and report["reasons"] == []
    assert (report["mirrored"], report["compared"], report["sent"], report["primary_requests"]) == (200, 200, 200, 400)
    assert report["latency"]["difference"] == {"p50": 0.0, "p95": 0.0, "p99": 0.0}
    assert summary_line(report).startswith("PASS: 200 compared (200 mirrored, 0 dropped)")


def test_errors_mismatches_and_top_paths():
    rows_ = ([row()] * 80 + [row(shadow_status=500, path="/checkout")] * 12
             + [row(shadow_status=404, path="/")] * 3
             + [row(shadow_status=None, shadow_seconds=None, error="TimeoutError: timed out")] * 5)
    report = build_report(rows_, {"min_compared": 10})
    assert report["sent"] == 100 and report["compared"] == 95
    assert report["shadow_failed"] == 17 and report["shadow_error_rate"] == 17.0
    assert report["status_mismatches"] == 15 and report["mismatch_rate"] == round(100 * 15 / 95, 4)
    assert report["top_mismatches"][0] == {"method": "GET", "path": "/checkout", "primary_status": 200,
                                           "shadow_status": 500, "requests": 12}
    assert report["shadow_errors"] == {"TimeoutError: timed out": 5}
    assert report["verdict"] == "fail"
    assert any(reason.startswith("shadow error rate 17.00 % above max_error_rate") for reason in report["reasons"])
    assert any(reason.startswith("status mismatch rate 15.79 %") for reason in report["reasons"])


def test_latency_dropped_and_too_few():
    slow = [row(shadow_seconds=2.0)] * 50
    report = build_report(slow + [row(shadow_status=None, shadow_seconds=None, error="dropped")] * 10)
    assert report["dropped"] == 10 and report["sent"] == 50 and report["shadow_failed"] == 0
    assert report["dropped_rate"] == round(100 * 10 / 60, 4)
    assert report["latency"]["shadow"]["p99"] == 2.0 and report["latency"]["difference"]["p99"] == 1.99
    reasons = " ".join(report["reasons"])
    assert "50 requests compared, fewer than min_compared (100)" in reasons
    assert "more than max_latency_increase (0.25 s)" in reasons
    assert "the relay dropped 16.67 %" in reasons


def test_nothing_mirrored_fails_without_dividing_by_zero():
    report = build_report([])
    assert report["verdict"] == "fail" and report["shadow_error_rate"] == 0.0
    assert report["latency"]["primary"] == {"p50": None, "p95": None, "p99": None}
    assert "p50/p95/p99 primary -/-/- s" in summary_line(report)


@pytest.mark.parametrize("criteria, message", [
    ({"max_error_rate": 120}, "max_error_rate must be a percentage between 0 and 100"),
    ({"max_latency_increase": -1}, "max_latency_increase must be 0 or more seconds"),
    ({"min_compared": 0}, "min_compared must be at least 1"),
])
def test_bad_criteria(criteria, message):
    with pytest.raises(ValueError, match=message):
        build_report([], criteria)
