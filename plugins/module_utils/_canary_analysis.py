# Copyright: fleet.rollout contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Judge a canary against its baseline: pass, fail or inconclusive, with the numbers.

The logic behind ``fleet.rollout.canary_analysis``. Both sides are the requests an LB answered in
the same window - the canary's servers and the stable (baseline) servers - as counts of requests
and errors and the latencies of the answered requests. Judging the canary against the baseline of
the same window, not against a fixed number, cancels what both sides share (load, time of day, a
slow database).

- Errors: the canary's error rate must stay at or under ``max_error_rate`` (percent), and must not
  be higher than the baseline's by more than ``error_rate_tolerance`` points with statistical
  significance (one-sided pooled two-proportion z-test, p < 1 - ``confidence``).
- Latency: the canary must not be slower with significance (one-sided Mann-Whitney U, as Kayenta
  judges canaries) by more than the tolerance: its median latency may exceed the baseline's by
  ``latency_tolerance`` percent or ``latency_tolerance_seconds``, whichever is larger. An optional
  ``max_latency_p99`` caps the canary's 99th percentile outright.
- Too few canary requests (``min_samples``) make the verdict inconclusive, and the caller decides
  whether to wait longer; unless its errors already show, with the same confidence, that its
  error rate is over the ceiling (one-sided binomial test): a canary failing every request fails
  at once.
- ``max_consecutive_errors`` (0: none) is a hard rule on top: that many canary requests failing one
  after another fail it, at any look, however few requests came.

While the step's window runs, an interim look (``interim``) only asks whether the canary's errors
already show its error rate over the ceiling, by a sequential test whose false-fail rate stays within
1 - ``confidence`` however often it looks (``_sequential``): a bad canary is stopped seconds into its
step, and a good one is judged in full at the window's end.

A significant but small difference passes: with thousands of requests the tests find differences
no user notices, so the tolerance says how much worse is too much.
"""

from __future__ import annotations

from ansible_collections.fleet.rollout.plugins.module_utils._sequential import always_valid_p
from ansible_collections.fleet.rollout.plugins.module_utils._statistics import (
    binomial_sf, mann_whitney_u, percentile, two_proportion_z,
)

PASS, FAIL, INCONCLUSIVE = "pass", "fail", "inconclusive"

CRITERIA = {
    "max_error_rate": 1.0,
    "error_rate_tolerance": 1.0,
    "confidence": 0.98,
    "latency_tolerance": 10.0,
    "latency_tolerance_seconds": 0.005,
    "max_latency_p99": None,
    "min_samples": 50,
    "max_consecutive_errors": 0,
}


def check_criteria(criteria: dict) -> dict:
    """The criteria with defaults filled in; ValueError naming the criterion that is out of range."""
    merged = dict(CRITERIA)
    merged.update({k: v for k, v in criteria.items() if v is not None or k == "max_latency_p99"})
    unknown = sorted(set(merged) - set(CRITERIA))
    if unknown:
        raise ValueError("unknown criteria: %s" % ", ".join(unknown))
    for name in ("max_error_rate", "error_rate_tolerance"):
        if not 0 <= float(merged[name]) <= 100:
            raise ValueError("%s: expected a percentage between 0 and 100, got %r" % (name, merged[name]))
    if not 0.5 <= float(merged["confidence"]) < 1:
        raise ValueError("confidence: expected a probability from 0.5 up to (not including) 1, got %r"
                         % merged["confidence"])
    for name in ("latency_tolerance", "latency_tolerance_seconds"):
        if float(merged[name]) < 0:
            raise ValueError("%s: expected a number >= 0, got %r" % (name, merged[name]))
    if merged["max_latency_p99"] is not None and float(merged["max_latency_p99"]) <= 0:
        raise ValueError("max_latency_p99: expected seconds > 0, got %r" % merged["max_latency_p99"])
    if int(merged["min_samples"]) < 1:
        raise ValueError("min_samples: expected at least 1, got %r" % merged["min_samples"])
    if int(merged["max_consecutive_errors"]) < 0:
        raise ValueError("max_consecutive_errors: expected a count >= 0 (0: no limit), got %r"
                         % merged["max_consecutive_errors"])
    return merged


def check_side(name: str, side: dict) -> dict:
    """A side as ``{requests, errors, latencies, consecutive_errors}``; ValueError naming what does not add up."""
    requests, errors = int(side.get("requests") or 0), int(side.get("errors") or 0)
    consecutive = int(side.get("consecutive_errors") or 0)
    latencies = [float(v) for v in side.get("latencies") or []]
    if requests < 0 or not 0 <= errors <= requests:
        raise ValueError("%s: expected 0 <= errors <= requests, got %d errors of %d requests" % (name, errors, requests))
    if len(latencies) > requests:
        raise ValueError("%s: %d latencies for %d requests; latencies are those of answered requests"
                         % (name, len(latencies), requests))
    if any(v < 0 for v in latencies):
        raise ValueError("%s: latencies must be seconds >= 0" % name)
    if not 0 <= consecutive <= errors:
        raise ValueError("%s: expected 0 <= consecutive_errors <= errors, got %d consecutive of %d errors"
                         % (name, consecutive, errors))
    return {"requests": requests, "errors": errors, "latencies": latencies, "consecutive_errors": consecutive}


def describe(side: dict) -> dict:
    """Counts, error rate (percent) and latency percentiles (seconds) of one side."""
    latencies = side["latencies"]
    rate = 100.0 * side["errors"] / side["requests"] if side["requests"] else None
    return {
        "requests": side["requests"],
        "errors": side["errors"],
        "consecutive_errors": side["consecutive_errors"],
        "error_rate": None if rate is None else round(rate, 4),
        "latency": {
            "samples": len(latencies),
            "p50": _round(percentile(latencies, 50)),
            "p95": _round(percentile(latencies, 95)),
            "p99": _round(percentile(latencies, 99)),
        },
    }


def judge(canary: dict, baseline: dict, criteria: dict | None = None, interim: bool = False) -> dict:
    """The verdict on ``canary`` against ``baseline`` (each ``{requests, errors, latencies}``); with
    ``interim``, a look while the window still runs: fail when the sequential test shows the error
    ceiling broken, else inconclusive (judged again later)."""
    c = check_criteria(criteria or {})
    canary, baseline = check_side("canary", canary), check_side("baseline", baseline)
    alpha = 1.0 - float(c["confidence"])
    result = _skeleton(canary, baseline, c)
    if interim:
        return _interim(result, canary, c, alpha)
    failures, notes = [], []

    canary_rate = result["canary"]["error_rate"]
    errors = result["errors"]
    if canary_rate is not None and canary_rate > float(c["max_error_rate"]):
        failures.append("canary error rate %.2f %% is over the %.2f %% ceiling (%d of %d requests)"
                        % (canary_rate, float(c["max_error_rate"]), canary["errors"], canary["requests"]))
    if canary["requests"] and baseline["requests"]:
        z, p = two_proportion_z(canary["errors"], canary["requests"], baseline["errors"], baseline["requests"])
        difference = canary_rate - result["baseline"]["error_rate"]
        errors.update(z=round(z, 4), p_value=p, significant=p < alpha, difference=round(difference, 4))
        if p < alpha and difference > float(c["error_rate_tolerance"]):
            failures.append("canary error rate %.2f %% is higher than the baseline's %.2f %% (+%.2f points, "
                            "two-proportion z-test p=%.2g < %.2g)"
                            % (canary_rate, result["baseline"]["error_rate"], difference, p, alpha))

    latency = result["latency"]
    if canary["latencies"] and baseline["latencies"]:
        u, p = mann_whitney_u(canary["latencies"], baseline["latencies"], alternative="greater")
        base_p50 = result["baseline"]["latency"]["p50"]
        shift = result["canary"]["latency"]["p50"] - base_p50
        allowed = max(base_p50 * float(c["latency_tolerance"]) / 100.0, float(c["latency_tolerance_seconds"]))
        latency.update(u=u, p_value=p, significant=p < alpha, p50_shift=_round(shift), allowed_shift=_round(allowed))
        if p < alpha and shift > allowed:
            failures.append("canary is slower: median %.3f s against the baseline's %.3f s (+%.3f s, allowed "
                            "+%.3f s; Mann-Whitney U p=%.2g < %.2g)"
                            % (result["canary"]["latency"]["p50"], base_p50, shift, allowed, p, alpha))
    p99 = result["canary"]["latency"]["p99"]
    if c["max_latency_p99"] is not None and p99 is not None and p99 > float(c["max_latency_p99"]):
        failures.append("canary p99 latency %.3f s is over the %.3f s ceiling" % (p99, float(c["max_latency_p99"])))

    if not baseline["requests"]:
        notes.append("no baseline requests in the window: only the ceilings were checked")
    # Below min_samples, errors fail the canary only when they show with the test's confidence that
    # its error rate is over the ceiling (binomial test): 5 failures in 5 requests do, 1 in 10 does not.
    below = canary["requests"] < int(c["min_samples"])
    p_over = binomial_sf(canary["errors"], canary["requests"], float(c["max_error_rate"]) / 100.0) if below else None
    if below and canary["errors"] and p_over < alpha:
        verdict = FAIL
        failures = ["%d of %d canary requests failed: its error rate is over the %.2f %% ceiling even before the %d "
                    "requests a verdict needs (binomial test p=%.2g < %.2g)"
                    % (canary["errors"], canary["requests"], float(c["max_error_rate"]), int(c["min_samples"]),
                       p_over, alpha)]
    elif below:
        verdict = INCONCLUSIVE
        notes.insert(0, "%d requests reached the canary, fewer than the %d needed to judge it"
                     % (canary["requests"], int(c["min_samples"])))
        failures = []  # too few requests to blame the canary for anything yet
    else:
        verdict = FAIL if failures else PASS
    streak = _streak_failure(canary, c)
    if streak:
        verdict, failures = FAIL, [streak] + (failures if verdict == FAIL else [])
        notes = [n for n in notes if "fewer than" not in n]
    result.update(verdict=verdict, reasons=failures + notes)
    return result


def _streak_failure(canary: dict, c: dict) -> str | None:
    """The reason a run of failed canary requests breaks ``max_consecutive_errors``, or None (no limit: 0).
    A hard rule on top of the tests, as Argo Rollouts' failure limit: however few requests came, that many
    failures in a row end the canary."""
    limit = int(c["max_consecutive_errors"])
    if limit and canary["consecutive_errors"] >= limit:
        return ("%d canary requests failed one after another (max_consecutive_errors %d)"
                % (canary["consecutive_errors"], limit))
    return None


def _skeleton(canary: dict, baseline: dict, c: dict) -> dict:
    """The result before any test: both sides described, the comparisons not made yet (None)."""
    return {"canary": describe(canary), "baseline": describe(baseline), "criteria": c,
            "errors": {"ceiling": float(c["max_error_rate"]), "z": None, "p_value": None, "significant": False,
                       "difference": None},
            "latency": {"u": None, "p_value": None, "significant": False, "p50_shift": None, "allowed_shift": None}}


def _interim(result: dict, canary: dict, c: dict, alpha: float) -> dict:
    ceiling = float(c["max_error_rate"])
    p = always_valid_p(canary["errors"], canary["requests"], ceiling / 100.0)
    result["interim"] = True
    result["errors"].update(sequential_p=p, significant=p < alpha)
    reasons = []
    if p < alpha:
        reasons.append("%d of %d canary requests failed while the step ran: its error rate is over the %.2f %% ceiling "
                       "(sequential test, always-valid p=%.2g < %.2g)"
                       % (canary["errors"], canary["requests"], ceiling, p, alpha))
    streak = _streak_failure(canary, c)
    if streak:
        reasons.append(streak + " while the step ran")
    if reasons:
        result.update(verdict=FAIL, reasons=reasons)
    else:
        result.update(verdict=INCONCLUSIVE, reasons=["the step's window still runs: judged in full at its end"])
    return result


def summary_line(result: dict) -> str:
    """One line a person reads as the rollout goes: verdict, sizes, error rates, medians."""
    canary, baseline = result["canary"], result["baseline"]

    def side(name, data):
        rate = "-" if data["error_rate"] is None else "%.2f %%" % data["error_rate"]
        p50 = "-" if data["latency"]["p50"] is None else "%.3f s" % data["latency"]["p50"]
        return "%s %d req, errors %s, p50 %s" % (name, data["requests"], rate, p50)

    return "%s: %s; %s%s" % (result["verdict"].upper(), side("canary", canary), side("baseline", baseline),
                             (" - " + "; ".join(result["reasons"])) if result["reasons"] else "")


def _round(value):
    return None if value is None else round(value, 6)
