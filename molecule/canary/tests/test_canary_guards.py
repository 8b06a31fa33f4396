"""What stops fleet.rollout.canary before it changes anything: bad input, the promotion's included."""

from __future__ import annotations

import pytest

from labtest import lab_hosts, rollout_snapshot, without_volatile
from rollout_run import LAB_SERVICES, playbook, refused_at_once

WEB = LAB_SERVICES["haproxy"]
LAST_APP = lab_hosts("app")[-1]


CASES = {
    "steps-falling": ({"canary_steps": [50, 10]}, "canary_steps: expected rising percentages above 0 and at most 100"),
    "steps-zero": ({"canary_steps": [0, 10]}, "canary_steps: expected rising percentages"),
    # 1 canary of 4 hosts at 100 % would carry 4 times its share of the fleet's requests.
    "steps-overload": ({"canary_steps": [10, 100]},
                       "canary_steps: 100.0 % would send each of the 1 canary host(s) 4.0 times its share of a full fleet"
                       " of 4 hosts (25.0 % each), over canary_max_host_load 2 (steps up to 50.0 % fit)"),
    "host-load-negative": ({"canary_max_host_load": -1}, "canary_max_host_load: expected how many times its share a canary host may carry, 0 or more"),
    "look-interval-negative": ({"canary_look_interval": -1}, "canary_look_interval: expected seconds, 0 or more"),
    "unknown-host": ({"canary_hosts": ["fleet-nosuchhost"]}, "canary_hosts: fleet-nosuchhost not in the play"),
    "no-stable-host": ({"canary_count": 4}, "every host of the play would be a canary"),
    "inconclusive-word": ({"canary_inconclusive": "maybe"},
                          "value of canary_inconclusive must be one of: fail, pass, got: maybe"),
    "confidence-1.5": ({"canary_confidence": 1.5}, "canary_confidence: expected a probability"),
    "min-samples-0": ({"canary_min_samples": 0}, "canary_min_samples: expected at least 1"),
    # The queries are tried once before anything changes: a placeholder without a value is refused then.
    "prometheus-unknown-placeholder": ({"canary_prometheus_url": "http://fleet-client:9090",
                                        "canary_prometheus_queries": {"canary": {"error_rate": "vector($nosuch)"},
                                                                      "baseline": {"error_rate": "vector(0)"}}},
                                       "canary_prometheus_url/canary_prometheus_queries: the queries could not be run on"
                                       " http://fleet-client:9090 from fleet-lb1: queries.canary.error_rate: unknown"
                                       " placeholder $nosuch"),
    "prometheus-no-baseline-query": ({"canary_prometheus_url": "http://fleet-client:9090",
                                      "canary_prometheus_queries": {"canary": {"error_rate": "vector(0)"}}},
                                     "canary_prometheus_queries: expected {canary: {error_rate: <PromQL>}, baseline: "
                                     "{error_rate: <PromQL>}} (latency optional) with canary_prometheus_url"),
    # The promotion runs ramped at the end of the canary; its input is checked before the first step.
    "slow-start-150": ({"ramped_slow_start": [150]},
                       "ramped_slow_start: expected a rising list of weights in percent, each 1-99"),
    "batches-150pct": ({"ramped_batches": "150%"}, "ramped_batches: '150%' is not a percentage above 0 and at most 100%"),
    "budget-word": ({"ramped_failure_budget": "lots"}, "ramped_failure_budget: expected a count or a percentage"),
}


@pytest.fixture(scope="module")
def refused(host_for):
    """Every case run (a few at a time), with what a rollout would change before and after them all."""
    before = rollout_snapshot(host_for)
    results = refused_at_once({
        case: ("fleet.rollout.canary", dict(WEB.extra_vars, rollout_version="2.0.1-bad", **extra),
               "-e", "@molecule/resources/strategy.vars.yml")
        for case, (extra, _message) in CASES.items()})
    return before, results, rollout_snapshot(host_for)


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_refused_before_any_change(refused, case):
    before, results, after = refused
    result, message = results[case], CASES[case][1]
    output = result.stdout + result.stderr
    assert result.returncode != 0
    # Long messages may be folded over lines by the output's YAML.
    assert message in " ".join(output.split()), output[-3000:]
    assert "Take the canary hosts out of rotation" not in output
    assert without_volatile(after) == without_volatile(before)


def test_a_play_without_every_server_of_the_pool_is_refused(host_for):
    """Servers left out of the play keep their weight and would skew every step's share."""
    before = rollout_snapshot(host_for)
    result = playbook("fleet.rollout.canary", dict(WEB.extra_vars, rollout_version="2.0.1-bad"),
                      "-e", "@molecule/resources/strategy.vars.yml", "--limit", "all:!" + LAST_APP)
    assert result.returncode != 0
    assert "from the play, which lacks %s (a --limit?)" % LAST_APP in result.stdout, result.stdout[-3000:]
    assert without_volatile(rollout_snapshot(host_for)) == without_volatile(before)
