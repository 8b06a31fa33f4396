"""fleet.rollout.canary_analysis as a task runs it: the verdict and its numbers, never a failed task."""

from __future__ import annotations

from ansible_collections.fleet.rollout.plugins.modules import canary_analysis

GOOD = {"requests": 200, "errors": 0, "latencies": [0.004, 0.005, 0.006, 0.005] * 50}
BASELINE = {"requests": 2000, "errors": 2, "latencies": [0.004, 0.005, 0.006, 0.005, 0.007] * 399 + [0.005] * 3}


def test_a_good_canary_passes(run_module):
    out = run_module(canary_analysis.main, {"canary": GOOD, "baseline": BASELINE})
    assert "failed" not in out and out["changed"] is False
    assert out["verdict"] == "pass" and out["reasons"] == []
    assert out["canary"]["requests"] == 200 and out["baseline"]["error_rate"] == 0.1
    assert out["criteria"]["confidence"] == 0.98 and out["criteria"]["max_latency_p99"] is None
    assert out["summary"].startswith("PASS: canary 200 req, errors 0.00 %, p50 0.005 s; baseline 2000 req")


def test_an_erroring_slow_canary_fails_with_reasons_but_the_task_does_not(run_module):
    bad = {"requests": 200, "errors": 40, "latencies": [0.305, 0.306] * 80}
    out = run_module(canary_analysis.main, {"canary": bad, "baseline": BASELINE, "max_latency_p99": 0.2})
    assert "failed" not in out
    assert out["verdict"] == "fail"
    assert len(out["reasons"]) == 4, out["reasons"]
    assert out["errors"]["significant"] and out["latency"]["significant"]
    assert out["summary"].startswith("FAIL: canary 200 req, errors 20.00 %, p50 0.305 s")


def test_bad_criteria_fail_the_task_naming_the_option(run_module):
    out = run_module(canary_analysis.main, {"canary": GOOD, "baseline": BASELINE, "confidence": 2})
    assert out["failed"] is True and out["msg"].startswith("confidence: expected a probability")
    out = run_module(canary_analysis.main, {"canary": {"errors": 1}, "baseline": BASELINE})
    assert out["failed"] is True and "requests" in out["msg"]
