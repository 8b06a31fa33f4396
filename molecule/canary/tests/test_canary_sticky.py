"""A sticky canary (canary_sticky=true) under live traffic, behind HAProxy and behind nginx.

The probe plays users with cookie jars through both LBs (60 requests/s, 60 users at a time, each
replaced by a new one after 6 s): the LBs draw each new user a side and set its cookie, and from the
first step to the end of the canary every user sees one version only - across both LBs, across the
steps' share changes (live on HAProxy, a reload on nginx). The canary then waits at its gate and is
taken back (HAProxy) or promoted (nginx): the split ends, with no failed request.
"""

from __future__ import annotations

import math

import pytest

from labtest import haproxy_cli, lab_hosts, load_json
from rollout_run import LAB_SERVICES, reset_app, run_under_traffic

LBS = lab_hosts("lb")
STEPS = [20, 50]
STICKY = {"canary_sticky": True, "canary_steps": STEPS, "canary_interval": 8, "canary_min_samples": 20,
          "canary_promote": False, "ramped_batches": 3}
USERS = ("--users", "60", "--cookie-jar", "--user-lifetime", "6")
# Taken back behind HAProxy, promoted behind nginx: both ends of a sticky canary, one run each.
ENDS = {"haproxy": ("abort", "1.0.0"), "nginx": ("promote", "2.0.0")}


def history(host_for, service) -> list[dict]:
    return load_json(host_for(LBS[0]), "/var/lib/fleet-rollout/%s/state.json" % service.name)["history"]


def split_left(host_for, service) -> list[str]:
    """Per LB, what of a sticky split its config still has (the map's sticky entries, nginx's split)."""
    left = []
    for lb in LBS:
        if service.lb == "haproxy":
            entries = haproxy_cli(host_for(lb), "show map /etc/haproxy/maps/%s.map" % service.name)
            left += ["%s: %s" % (lb, line) for line in entries.splitlines() if " sticky" in line]
        else:
            routing = host_for(lb).file("/etc/nginx/fleet/%s.routing.conf" % service.name).content_string
            left += ["%s: %s" % (lb, line) for line in routing.splitlines() if "split_clients" in line]
    return left


@pytest.fixture(scope="module", params=sorted(ENDS))
def sticky(request, host_for):
    service = LAB_SERVICES[request.param]
    reset_app("1.0.0")
    canary = run_under_traffic(service, "canary", dict(STICKY, rollout_version="2.0.0"), slow_share=0,
                               probe_args=USERS)
    event = history(host_for, service)[-1]
    during = split_left(host_for, service)
    end = run_under_traffic(service, ENDS[request.param][0], {}, slow_share=0, probe_args=USERS)
    return request.param, canary, event, during, end, split_left(host_for, service)


def test_the_sticky_canary_passes_its_steps_without_a_failed_request(sticky):
    _lb, canary, event, during, _end, _left = sticky
    assert canary.rc == 0, canary.output[-3000:]
    assert canary.failed == [], canary.failed[:5]
    assert event["outcome"] == "awaiting_promotion" and event["sticky"] is True, event
    assert [(step["step"], step["verdict"]) for step in event["steps"]] == [(20.0, "pass"), (50.0, "pass")]
    assert during, "no sticky split on the LBs while the canary waits"


def test_every_user_sees_one_version_for_the_whole_canary(sticky):
    _lb, canary, event, _during, _end, _left = sticky
    split_from = event["steps"][0]["started"]
    seen: dict[str, set] = {}
    for record in canary.records:
        if record["t"] >= split_from:
            seen.setdefault(record["user"], set()).add(record["version"])
    mixed = {user: sorted(versions) for user, versions in seen.items() if len(versions) > 1}
    print("%d users in the split, %d of them on 2.0.0" % (len(seen), sum(v == {"2.0.0"} for v in seen.values())))
    assert len(seen) > 150
    assert mixed == {}


def test_new_users_draw_the_canary_at_each_steps_share(sticky):
    """Users whose first request fell in a step drew the canary at about that step's share (binomial,
    3.5 standard deviations and 2 points: it fails when the share is wrong, not by chance)."""
    _lb, canary, event, _during, _end, _left = sticky
    starts = [step["started"] for step in event["steps"]] + [canary.ended]
    first: dict[str, dict] = {}
    for record in sorted(canary.records, key=lambda r: r["t"]):
        first.setdefault(record["user"], record)
    for index, step in enumerate(STEPS):
        drawn = [r["version"] for r in first.values() if starts[index] <= r["t"] < starts[index + 1]]
        share, target = drawn.count("2.0.0") / len(drawn), step / 100.0
        print("step %d %%: %d new users, %.1f %% on the canary" % (step, len(drawn), 100 * share))
        assert len(drawn) >= 40
        assert abs(share - target) <= 3.5 * math.sqrt(target * (1 - target) / len(drawn)) + 0.02


def test_the_gate_ends_the_split_without_a_failed_request(sticky):
    lb, _canary, _event, _during, end, left = sticky
    assert end.rc == 0, end.output[-3000:]
    assert end.failed == [], end.failed[:5]
    assert left == []
    tail = [r["version"] for r in end.records if r["t"] > end.ended]
    assert tail and set(tail) == {ENDS[lb][1]}
