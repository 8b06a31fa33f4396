"""The sequential error-ceiling test against simulation: its false-fail rate over many looks stays within
its bound where repeated fixed-sample tests do not, and it catches bad releases within a few requests."""

from __future__ import annotations

import math
import statistics

import numpy
import pytest

from ansible_collections.fleet.rollout.plugins.module_utils import _sequential as seq
from ansible_collections.fleet.rollout.plugins.module_utils._statistics import binomial_sf

ALPHA = 0.02  # canary_confidence 0.98
WINDOWS = 10000
# A step's window as the lab sees it: 60 req/s with 5 % to the canary is 3 canary requests/s; a look
# every 3 s over a 100 s window is 33 looks of 9 requests, 300 requests in all.
WINDOW, LOOK = 300, 9


def first_failing(judge, requests: int) -> int:
    """The fewest errors of ``requests`` that ``judge(errors, requests)`` fails (``requests + 1`` when none):
    both judges fail more errors once they fail some, so a window is failed at a look exactly when its
    errors reach this number."""
    return next((errors for errors in range(requests + 1) if judge(errors, requests)), requests + 1)


def good_windows_failed(judge, ceiling: float, seed: int) -> float:
    """The share of ``WINDOWS`` windows of a release erring at exactly ``ceiling`` (the worst release that
    must pass) that ``judge(errors, requests)`` fails at any of its looks."""
    looks = list(range(LOOK, WINDOW + 1, LOOK))
    thresholds = numpy.array([first_failing(judge, requests) for requests in looks])
    errors = numpy.random.default_rng(seed).binomial(LOOK, ceiling, size=(WINDOWS, len(looks))).cumsum(axis=1)
    return float((errors >= thresholds).any(axis=1).mean())


# The binomial standard error of a rate of ALPHA measured over WINDOWS windows, times 3.
SLACK = 3 * math.sqrt(ALPHA * (1 - ALPHA) / WINDOWS)


@pytest.mark.parametrize("ceiling", [0.01, 0.05])
def test_a_release_at_its_ceiling_is_failed_at_most_alpha_of_the_time_over_every_look(ceiling):
    rate = good_windows_failed(lambda e, n: seq.ceiling_broken(e, n, ceiling, ALPHA), ceiling, seed=7)
    assert rate <= ALPHA + SLACK, rate


def test_the_same_looks_with_a_fixed_sample_test_fail_good_releases_far_more_often():
    """The simulation can see the inflation the sequential test avoids: a one-sided binomial test at ALPHA,
    taken at every look, fails a release at its ceiling well over ALPHA of the time."""
    ceiling = 0.05
    rate = good_windows_failed(lambda e, n: binomial_sf(e, n, ceiling) < ALPHA, ceiling, seed=7)
    assert rate > 2 * ALPHA, rate


def requests_to_catch(error_rate: float, ceiling: float, seed: int, runs: int = 2000) -> list[int]:
    """For each of ``runs`` bad releases, the requests it took to fail it, looking after every request
    (``WINDOW`` * 10 + 1 when never)."""
    most = WINDOW * 10

    def judge(errors: int, requests: int) -> bool:
        return seq.ceiling_broken(errors, requests, ceiling, ALPHA)

    thresholds = numpy.array([first_failing(judge, requests) for requests in range(1, most + 1)])
    errors = (numpy.random.default_rng(seed).random((runs, most)) < error_rate).cumsum(axis=1)
    failed = errors >= thresholds
    return [int(row.argmax()) + 1 if row.any() else most + 1 for row in failed]


def test_a_release_failing_30_percent_is_caught_within_a_few_requests():
    caught = requests_to_catch(0.30, 0.01, seed=3)
    # At 3 canary requests/s: the median bad release is caught in ~3 s, 9 in 10 in ~7 s.
    assert statistics.median(caught) <= 10 and sorted(caught)[int(0.9 * len(caught))] <= 20, sorted(caught)[::40]


def test_a_release_failing_5_percent_against_a_1_percent_ceiling_is_caught_within_a_step():
    caught = requests_to_catch(0.05, 0.01, seed=3)
    assert statistics.median(caught) <= 200 and sorted(caught)[int(0.9 * len(caught))] <= 400, sorted(caught)[::40]


def test_no_request_is_no_evidence_and_more_errors_are_more():
    assert seq.log_evidence(0, 0, 0.01) == 0.0 and seq.always_valid_p(0, 0, 0.01) == 1.0
    assert seq.log_evidence(0, 100, 0.01) < 0 and seq.always_valid_p(0, 100, 0.01) == 1.0
    values = [seq.log_evidence(errors, 50, 0.01) for errors in range(51)]
    assert values == sorted(values) and len(set(values)) == 51
    # always_valid_p crosses alpha exactly where ceiling_broken turns.
    for errors in range(11):
        assert (seq.always_valid_p(errors, 40, 0.05) <= ALPHA) == seq.ceiling_broken(errors, 40, 0.05, ALPHA)


def test_edge_ceilings():
    # A 0 % ceiling: one error proves it broken, none says nothing.
    assert seq.ceiling_broken(1, 1, 0.0, ALPHA) and not seq.ceiling_broken(0, 500, 0.0, ALPHA)
    # From 99.9 % up nothing is judged over it, not even every request failing.
    assert not seq.ceiling_broken(100, 100, 1.0, ALPHA) and not seq.ceiling_broken(100, 100, 0.999, ALPHA)
    assert seq.alternatives(0.0) == [] and seq.alternatives(1.0) == []
    rates = seq.alternatives(0.01)
    assert rates == sorted(rates) and rates[0] > 0.01 and rates[-2] < seq.TOP_ALTERNATIVE <= rates[-1] < 0.8
    # A high ceiling still has an alternative over it.
    assert seq.alternatives(0.9) == [pytest.approx(18 / 19)] and seq.alternatives(0.998) == [pytest.approx(998 / 999)]


@pytest.mark.parametrize("call, message", [
    (lambda: seq.log_evidence(3, 2, 0.01), "expected 0 <= errors <= requests, got 3 errors of 2 requests"),
    (lambda: seq.log_evidence(-1, 2, 0.01), "expected 0 <= errors <= requests"),
    (lambda: seq.log_evidence(0, 2, 1.5), "ceiling: expected a probability from 0 to 1, got 1.5"),
    (lambda: seq.ceiling_broken(0, 2, 0.01, 0.0), "alpha: expected a probability between 0 and 1"),
    (lambda: seq.ceiling_broken(0, 2, 0.01, 1.0), "alpha: expected a probability between 0 and 1"),
])
def test_bad_input_is_refused_naming_what(call, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call()
