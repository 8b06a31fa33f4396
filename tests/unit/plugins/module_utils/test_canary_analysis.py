"""Verdicts on generated canaries: a good one passes, an erroring or slower one fails with the numbers that say
why, a small one is inconclusive, and bad criteria are refused by name."""

from __future__ import annotations

import random

import pytest

from ansible_collections.fleet.rollout.plugins.module_utils import _canary_analysis as ca


def side(rng: random.Random, requests: int, error_rate: float = 0.0, extra: float = 0.0, slow_share: float = 0.05):
    """LB-like data: most answers take ~5 ms, ``slow_share`` of them 2 s; latencies in whole ms."""
    errors = sum(1 for _index in range(requests) if rng.random() < error_rate)
    latencies = []
    for _index in range(requests - errors):
        base = 2.0 if rng.random() < slow_share else rng.lognormvariate(-5.3, 0.3)
        latencies.append(round(base + extra, 3))
    return {"requests": requests, "errors": errors, "latencies": latencies}


@pytest.mark.parametrize("seed", range(20))
def test_a_good_canary_passes(seed):
    rng = random.Random(seed)
    result = ca.judge(side(rng, 150), side(rng, 1700))
    assert result["verdict"] == ca.PASS, result["reasons"]
    assert result["reasons"] == []


@pytest.mark.parametrize("seed", range(10))
def test_twenty_percent_errors_fail_on_ceiling_and_test(seed):
    rng = random.Random(seed)
    result = ca.judge(side(rng, 150, error_rate=0.2), side(rng, 1700))
    assert result["verdict"] == ca.FAIL
    assert any("over the 1.00 % ceiling" in r for r in result["reasons"])
    assert result["errors"]["significant"] and result["errors"]["p_value"] < 1e-6
    assert any("two-proportion z-test" in r for r in result["reasons"])


@pytest.mark.parametrize("seed", range(10))
def test_three_hundred_ms_slower_fails_on_mann_whitney(seed):
    rng = random.Random(seed)
    result = ca.judge(side(rng, 150, extra=0.3), side(rng, 1700))
    assert result["verdict"] == ca.FAIL
    assert result["latency"]["significant"] and 0.28 < result["latency"]["p50_shift"] < 0.32
    assert [r for r in result["reasons"] if "Mann-Whitney U" in r], result["reasons"]
    assert result["errors"]["significant"] is False


def test_a_significant_but_small_slowdown_passes_within_tolerance():
    rng = random.Random(4)
    result = ca.judge(side(rng, 3000, extra=0.001), side(rng, 6000))
    assert result["latency"]["significant"], result["latency"]
    assert result["verdict"] == ca.PASS
    strict = ca.judge(side(random.Random(4), 3000, extra=0.001), side(random.Random(5), 6000),
                      {"latency_tolerance": 0, "latency_tolerance_seconds": 0})
    assert strict["verdict"] == ca.FAIL


def test_baseline_errors_raise_the_bar_for_the_comparison_not_the_ceiling():
    rng = random.Random(8)
    # Both sides fail 3 % of requests (a shared dependency): the comparison passes, the ceiling does not.
    result = ca.judge(side(rng, 400, error_rate=0.03), side(rng, 4000, error_rate=0.03))
    assert result["errors"]["significant"] is False
    assert result["verdict"] == ca.FAIL and len(result["reasons"]) == 1 and "ceiling" in result["reasons"][0]
    relaxed = ca.judge(side(random.Random(8), 400, error_rate=0.03), side(random.Random(9), 4000, error_rate=0.03),
                       {"max_error_rate": 5})
    assert relaxed["verdict"] == ca.PASS


def test_too_few_canary_requests_are_inconclusive_even_when_they_look_bad():
    rng = random.Random(1)
    result = ca.judge(side(rng, 30, extra=0.3), side(rng, 600))
    assert result["verdict"] == ca.INCONCLUSIVE
    assert result["reasons"] == ["30 requests reached the canary, fewer than the 50 needed to judge it"]
    # One failed request of 10 could be bad luck for a canary within the 1 % ceiling (p = 0.096).
    one_error = {"requests": 10, "errors": 1, "latencies": [0.005] * 9}
    assert ca.judge(one_error, side(rng, 600))["verdict"] == ca.INCONCLUSIVE
    assert ca.judge(side(rng, 30), side(rng, 600), {"min_samples": 20})["verdict"] == ca.PASS


def test_a_canary_failing_every_request_fails_before_min_samples():
    result = ca.judge({"requests": 6, "errors": 6, "latencies": []}, side(random.Random(2), 600))
    assert result["verdict"] == ca.FAIL
    assert result["reasons"] == ["6 of 6 canary requests failed: its error rate is over the 1.00 % ceiling even before "
                                 "the 50 requests a verdict needs (binomial test p=1e-12 < 0.02)"]
    # Two of ten is already too many for a 1 % ceiling at 98 % confidence (p = 0.0043).
    assert ca.judge({"requests": 10, "errors": 2, "latencies": [0.005] * 8}, {"requests": 0})["verdict"] == ca.FAIL


def test_without_baseline_only_ceilings_count():
    rng = random.Random(2)
    result = ca.judge(side(rng, 500), {"requests": 0, "errors": 0, "latencies": []}, {"max_latency_p99": 3})
    assert result["verdict"] == ca.PASS and result["errors"]["p_value"] is None
    assert result["reasons"] == ["no baseline requests in the window: only the ceilings were checked"]
    slow = ca.judge(side(rng, 500, extra=2.0), {"requests": 0}, {"max_latency_p99": 3})
    assert slow["verdict"] == ca.FAIL and "p99 latency" in slow["reasons"][0]


def test_numbers_and_summary_line():
    result = ca.judge({"requests": 100, "errors": 1, "latencies": [0.01] * 99},
                      {"requests": 1000, "errors": 0, "latencies": [0.01] * 1000})
    assert result["canary"] == {"requests": 100, "errors": 1, "consecutive_errors": 0, "error_rate": 1.0,
                                "latency": {"samples": 99, "p50": 0.01, "p95": 0.01, "p99": 0.01}}
    assert result["verdict"] == ca.PASS  # 1 % is at, not over, the ceiling
    assert ca.summary_line(result) == ("PASS: canary 100 req, errors 1.00 %, p50 0.010 s; "
                                       "baseline 1000 req, errors 0.00 %, p50 0.010 s")


@pytest.mark.parametrize("criteria, message", [
    ({"confidence": 1.0}, "confidence: expected a probability"),
    ({"max_error_rate": 120}, "max_error_rate: expected a percentage"),
    ({"latency_tolerance": -1}, "latency_tolerance: expected a number >= 0"),
    ({"min_samples": 0}, "min_samples: expected at least 1"),
    ({"max_consecutive_errors": -1}, "max_consecutive_errors: expected a count >= 0"),
    ({"max_latency_p99": 0}, "max_latency_p99: expected seconds > 0"),
    ({"p_value": 0.1}, "unknown criteria: p_value"),
])
def test_bad_criteria_are_named(criteria, message):
    with pytest.raises(ValueError, match=message):
        ca.judge({"requests": 1}, {"requests": 1}, criteria)


@pytest.mark.parametrize("canary, message", [
    ({"requests": 5, "errors": 6}, "canary: expected 0 <= errors <= requests"),
    ({"requests": 1, "latencies": [0.1, 0.2]}, "canary: 2 latencies for 1 requests"),
    ({"requests": 1, "latencies": [-0.1]}, "canary: latencies must be seconds >= 0"),
    ({"requests": 5, "errors": 2, "consecutive_errors": 3}, "canary: expected 0 <= consecutive_errors <= errors"),
])
def test_bad_sides_are_named(canary, message):
    with pytest.raises(ValueError, match=message):
        ca.judge(canary, {"requests": 1})


def test_an_interim_look_fails_only_errors_that_prove_the_ceiling_broken():
    rng = random.Random(5)
    # 4 of 12 canary requests failed (the lab's bad release at 5 %, a few seconds into its step).
    bad = ca.judge({"requests": 12, "errors": 4, "latencies": [0.005] * 8}, side(rng, 240), interim=True)
    assert bad["verdict"] == ca.FAIL and bad["interim"], bad
    assert bad["errors"]["sequential_p"] < 0.02 and bad["errors"]["significant"]
    assert "4 of 12 canary requests failed while the step ran" in bad["reasons"][0]
    assert "sequential test, always-valid p=" in bad["reasons"][0]
    # 1 of 12 does not prove a 1 % ceiling broken; a far slower canary is not judged before the window's end.
    for canary in ({"requests": 12, "errors": 1, "latencies": [0.005] * 11},
                   side(rng, 60, extra=0.3)):
        result = ca.judge(canary, side(rng, 240), interim=True)
        assert result["verdict"] == ca.INCONCLUSIVE, result
        assert result["reasons"] == ["the step's window still runs: judged in full at its end"]
    # The same slow canary at the window's end fails on its latency.
    assert ca.judge(side(random.Random(9), 60, extra=0.3), side(random.Random(9), 240))["verdict"] == ca.FAIL


def test_an_interim_look_keeps_the_criteria_checks():
    with pytest.raises(ValueError, match="max_error_rate: expected a percentage"):
        ca.judge({"requests": 1}, {"requests": 1}, {"max_error_rate": 120}, interim=True)


def test_a_run_of_failures_trips_the_consecutive_limit_at_any_look():
    rng = random.Random(3)
    # 5 failures in a row among 8 requests: too few for the tests at the end, and the sequential test at
    # a 30 % ceiling cannot tell yet - the hard limit ends the canary at either kind of look.
    canary = {"requests": 8, "errors": 5, "consecutive_errors": 5, "latencies": [0.005] * 3}
    criteria = {"max_error_rate": 30, "max_consecutive_errors": 5}
    for interim in (True, False):
        result = ca.judge(canary, side(rng, 240), criteria, interim=interim)
        assert result["verdict"] == ca.FAIL, result
        assert result["reasons"][0].startswith("5 canary requests failed one after another (max_consecutive_errors 5)")
        assert not any("fewer than" in reason for reason in result["reasons"])
    # One short of the limit, or no limit (0): nothing to fail on yet.
    for limit in (6, 0):
        result = ca.judge(canary, side(rng, 240), dict(criteria, max_consecutive_errors=limit), interim=True)
        assert result["verdict"] == ca.INCONCLUSIVE, result
    # A good canary of 150 requests with no run of failures passes with a limit set.
    good = dict(side(rng, 150), consecutive_errors=0)
    assert ca.judge(good, side(rng, 1700), {"max_consecutive_errors": 3})["verdict"] == ca.PASS
