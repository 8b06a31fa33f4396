"""A sticky canary (canary_sticky=true) at the manual gate (canary_promote=false), under live traffic,
behind HAProxy and behind nginx.

The probe plays users with cookie jars through both LBs (60 requests/s, 60 users at a time, each
replaced by a new one after 6 s): the LBs draw each new user a side and set its cookie, and from the
first step to the end of the canary every user sees one version only - across both LBs, across the
steps' share changes (live on HAProxy, a reload on nginx). The canary then waits at its gate - a version
passed to fleet.rollout.promote or fleet.rollout.abort is refused and changes nothing - and is taken back
(HAProxy, fleet.rollout.abort) or promoted (nginx, fleet.rollout.promote), both reading the waiting
canary from the history: the split ends, with no failed request, and then there is nothing left to
promote or abort.
"""

from __future__ import annotations

import math

import pytest

from labtest import haproxy_cli, lab_hosts, load_json
from rollout_run import LAB_SERVICES, playbook, reset_app, run_under_traffic

APPS = lab_hosts("app")
LBS = lab_hosts("lb")
CANARY = APPS[0]
VARS_FILE = "@molecule/resources/strategy.vars.yml"
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


def live_versions(host_for) -> dict[str, str]:
    return {app: load_json(host_for(app), "/opt/sample-app/release-state.json")["slots"]["main"]["version"]
            for app in APPS}


def gate(service, name: str, **extra):
    """fleet.rollout.promote or fleet.rollout.abort, as a user runs it at the gate."""
    return playbook("fleet.rollout.%s" % name, dict(service.extra_vars, **extra), "-e", VARS_FILE)


@pytest.fixture(scope="module", params=sorted(ENDS))
def sticky(request, host_for):
    service = LAB_SERVICES[request.param]
    reset_app("1.0.0")
    canary = run_under_traffic(service, "canary", dict(STICKY, rollout_version="2.0.0"), slow_share=0,
                               probe_args=USERS)
    event = history(host_for, service)[-1]
    during = split_left(host_for, service)
    waiting = {"versions": live_versions(host_for), "history": len(history(host_for, service)),
               # Versions passed to the gate are refused: an extra variable would override the history.
               "refused": {"promote": gate(service, "promote", rollout_version="9.9.9"),
                           "abort": gate(service, "abort", rollout_version="2.0.0")}}
    waiting["after_refused"] = live_versions(host_for), split_left(host_for, service)
    end = run_under_traffic(service, ENDS[request.param][0], {}, slow_share=0, probe_args=USERS)
    return request.param, canary, event, during, end, split_left(host_for, service), waiting


def test_the_sticky_canary_passes_its_steps_without_a_failed_request(sticky):
    _lb, canary, event, during, _end, _left, _waiting = sticky
    assert canary.rc == 0, canary.output[-3000:]
    assert canary.failed == [], canary.failed[:5]
    assert event["outcome"] == "awaiting_promotion" and event["sticky"] is True, event
    assert [(step["step"], step["verdict"]) for step in event["steps"]] == [(20.0, "pass"), (50.0, "pass")]
    assert during, "no sticky split on the LBs while the canary waits"


def test_every_user_sees_one_version_for_the_whole_canary(sticky):
    _lb, canary, event, _during, _end, _left, _waiting = sticky
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
    3.5 standard deviations and 2 points: it fails when the share is wrong, not by chance). A step's
    users are those who came after its split was on every LB ('started') and before the next step began
    changing the LBs ('routed'): in between, some LBs draw at one share and some at the other."""
    _lb, canary, event, _during, _end, _left, _waiting = sticky
    windows = [(step["started"], after["routed"]) for step, after in zip(event["steps"], event["steps"][1:])]
    windows.append((event["steps"][-1]["started"], canary.ended))
    first: dict[str, dict] = {}
    for record in sorted(canary.records, key=lambda r: r["t"]):
        first.setdefault(record["user"], record)
    for (start, end), step in zip(windows, STEPS):
        drawn = [r["version"] for r in first.values() if start <= r["t"] < end]
        share, target = drawn.count("2.0.0") / len(drawn), step / 100.0
        print("step %d %%: %d new users, %.1f %% on the canary" % (step, len(drawn), 100 * share))
        assert len(drawn) >= 40
        assert abs(share - target) <= 3.5 * math.sqrt(target * (1 - target) / len(drawn)) + 0.02


def test_the_gate_ends_the_split_without_a_failed_request(sticky):
    lb, _canary, _event, _during, end, left, _waiting = sticky
    assert end.rc == 0, end.output[-3000:]
    assert end.failed == [], end.failed[:5]
    assert left == []
    tail = [r["version"] for r in end.records if r["t"] > end.ended]
    assert tail and set(tail) == {ENDS[lb][1]}
    if ENDS[lb][0] == "promote":
        assert "promoting the canary of store to 2.0.0 (%s" % CANARY in end.output, end.output[-3000:]


def test_the_canary_waits_at_its_last_step(sticky):
    _lb, canary, event, _during, _end, _left, waiting = sticky
    assert "fleet.rollout.promote" in canary.output and "fleet.rollout.abort" in canary.output
    assert waiting["versions"] == {app: "2.0.0" if app == CANARY else "1.0.0" for app in APPS}
    assert event["canary"] == [CANARY]


def test_a_version_passed_to_the_gate_is_refused_and_changes_nothing(sticky):
    _lb, _canary, _event, during, _end, _left, waiting = sticky
    refused = waiting["refused"]
    assert refused["promote"].returncode != 0 and refused["abort"].returncode != 0
    assert "rollout_version: the canary that waits runs 2.0.0, not 9.9.9" in refused["promote"].stdout, \
        refused["promote"].stdout[-3000:]
    assert "rollout_version: not to be passed; fleet.rollout.abort goes back" in refused["abort"].stdout
    assert waiting["after_refused"] == (waiting["versions"], during)


def test_the_gate_leaves_every_host_on_one_release_in_the_history(sticky, host_for):
    lb, _canary, _event, _during, end, _left, waiting = sticky
    service = LAB_SERVICES[lb]
    version = ENDS[lb][1]
    assert live_versions(host_for) == {app: version for app in APPS}
    after = history(host_for, service)
    assert len(after) > waiting["history"]
    assert after[-1]["strategy"] == "ramped" and after[-1]["version"] == version and after[-1]["outcome"] == "succeeded"
    if ENDS[lb][0] == "abort":
        assert "every host back on 1.0.0" in end.output, end.output[-3000:]
    for sample in (end.samples[lb_host][-1] for lb_host in LBS):
        assert {tuple(v) for v in sample["servers"].values()} == {("UP", 100)}, sample


@pytest.mark.parametrize("name", ["promote", "abort"])
def test_nothing_left_to_promote_or_abort_is_refused(sticky, name):
    lb = sticky[0]
    result = gate(LAB_SERVICES[lb], name)
    assert result.returncode != 0
    assert "No canary of %s waits for promotion" % LAB_SERVICES[lb].name in result.stdout, result.stdout[-3000:]
