"""The manual gate: fleet.rollout.canary with canary_promote=false stops after its last step; then
fleet.rollout.abort takes it back, or fleet.rollout.promote sends it everywhere - both under live
traffic, both reading the waiting canary from the history, neither given a version."""

from __future__ import annotations

import pytest

from labtest import haproxy_cli, lab_hosts, load_json
from rollout_run import LAB_SERVICES, playbook, reset_app, run_under_traffic

APPS = lab_hosts("app")
LBS = lab_hosts("lb")
CANARY = APPS[0]
WEB = LAB_SERVICES["haproxy"]
VARS_FILE = "@molecule/resources/strategy.vars.yml"
GATED = {"canary_steps": [10, 50], "canary_interval": 8, "canary_min_samples": 20, "canary_promote": False,
         "ramped_batches": 3}


def history(host_for) -> list[dict]:
    return load_json(host_for(LBS[0]), "/var/lib/fleet-rollout/web/state.json")["history"]


def live_versions(host_for) -> dict[str, str]:
    return {app: load_json(host_for(app), "/opt/sample-app/release-state.json")["slots"]["main"]["version"]
            for app in APPS}


def weights(host_for) -> dict[str, dict[str, str]]:
    """Per LB, each server's state and current weight."""
    seen = {}
    for lb in LBS:
        lines = haproxy_cli(host_for(lb), "show stat").splitlines()
        head = lines[0].lstrip("# ").split(",")
        rows = [dict(zip(head, line.split(","))) for line in lines[1:] if line]
        seen[lb] = {row["svname"]: "%s/%s" % (row["status"], row["weight"]) for row in rows
                    if row["pxname"] == "be_web_main" and row["svname"] != "BACKEND"}
    return seen


@pytest.fixture(scope="module")
def aborted(host_for):
    reset_app("1.0.0")
    waiting = run_under_traffic(WEB, "canary", dict(GATED, rollout_version="2.0.0"))
    waiting_versions, waiting_weights = live_versions(host_for), weights(host_for)
    waiting_event, before_abort = history(host_for)[-1], len(history(host_for))
    abort = run_under_traffic(WEB, "abort", {})
    return waiting, waiting_versions, waiting_weights, (waiting_event, before_abort), abort


@pytest.fixture(scope="module")
def promoted(host_for, aborted):
    waiting = run_under_traffic(WEB, "canary", dict(GATED, rollout_version="2.0.0"))
    # Versions passed to the gate are refused, and change nothing: an extra variable would override the history.
    refused = {
        "promote": playbook("fleet.rollout.promote", dict(WEB.extra_vars, rollout_version="9.9.9"), "-e", VARS_FILE),
        "abort": playbook("fleet.rollout.abort", dict(WEB.extra_vars, rollout_version="2.0.0"), "-e", VARS_FILE),
    }
    refused_left = live_versions(host_for), weights(host_for)
    promote = run_under_traffic(WEB, "promote", {})
    return waiting, promote, refused, refused_left


def test_the_canary_waits_at_its_last_step(aborted):
    waiting, versions, lb_weights, (event, _count), _abort = aborted
    assert waiting.rc == 0, waiting.output[-4000:]
    assert waiting.failed == [], waiting.failed[:5]
    assert event["strategy"] == "canary" and event["outcome"] == "awaiting_promotion", event
    assert [step["verdict"] for step in event["steps"]] == ["pass", "pass"], [s["summary"] for s in event["steps"]]
    assert "fleet.rollout.promote" in waiting.output and "fleet.rollout.abort" in waiting.output
    assert versions == {app: "2.0.0" if app == CANARY else "1.0.0" for app in APPS}
    # Left at the last step: the canary's weight is half of the total on every LB.
    for lb in LBS:
        assert {state.split("/")[0] for state in lb_weights[lb].values()} == {"UP"}, lb_weights
        numbers = {app: int(state.split("/")[1]) for app, state in lb_weights[lb].items()}
        assert abs(numbers[CANARY] / sum(numbers.values()) - 0.5) < 0.02, lb_weights


def test_abort_takes_it_back_without_a_failed_request(aborted, host_for):
    _waiting, _versions, _weights, (_event, before), abort = aborted
    assert abort.rc == 0, abort.output[-4000:]
    assert abort.failed == [], abort.failed[:5]
    assert len(abort.records) > 100
    assert "every host back on 1.0.0" in abort.output
    assert live_versions(host_for) == {app: "1.0.0" for app in APPS}
    tail = [r for r in abort.records if r["t"] > abort.ended]
    assert tail and {r["version"] for r in tail} == {"1.0.0"}
    assert all(state == "UP/100" for per_lb in weights(host_for).values() for state in per_lb.values())
    event = history(host_for)[-1]
    assert len(history(host_for)) == before + 1
    assert event["strategy"] == "ramped" and event["version"] == "1.0.0" and event["outcome"] == "succeeded", event


def test_a_version_passed_to_the_gate_is_refused(promoted):
    _waiting, _promote, refused, (versions, lb_weights) = promoted
    assert refused["promote"].returncode != 0 and refused["abort"].returncode != 0
    assert "rollout_version: the canary that waits runs 2.0.0, not 9.9.9" in refused["promote"].stdout
    assert "rollout_version: not to be passed; fleet.rollout.abort goes back" in refused["abort"].stdout
    assert versions == {app: "2.0.0" if app == CANARY else "1.0.0" for app in APPS}
    for per_lb in lb_weights.values():
        numbers = {app: int(state.split("/")[1]) for app, state in per_lb.items()}
        assert abs(numbers[CANARY] / sum(numbers.values()) - 0.5) < 0.02, lb_weights


def test_promote_finishes_it_without_a_failed_request(promoted, host_for):
    waiting, promote, _refused, _left = promoted
    assert waiting.rc == 0 and waiting.failed == []
    assert promote.rc == 0, promote.output[-4000:]
    assert promote.failed == [], promote.failed[:5]
    assert "promoting the canary of web to 2.0.0 (%s, passed 2 step(s)" % CANARY in promote.output
    assert live_versions(host_for) == {app: "2.0.0" for app in APPS}
    tail = [r for r in promote.records if r["t"] > promote.ended]
    assert tail and {r["version"] for r in tail} == {"2.0.0"}
    assert all(state == "UP/100" for per_lb in weights(host_for).values() for state in per_lb.values())
    assert history(host_for)[-1]["strategy"] == "ramped" and history(host_for)[-1]["version"] == "2.0.0"


@pytest.mark.parametrize("name, extra, message", [
    ("promote", {}, "No canary of web waits for promotion: the last rollout the LBs recorded is"),
    ("abort", {}, "No canary of web waits for promotion"),
], ids=["promote", "abort"])
def test_nothing_to_promote_or_abort_is_refused(promoted, name, extra, message):
    result = playbook("fleet.rollout.%s" % name, dict(WEB.extra_vars, **extra), "-e", VARS_FILE)
    assert result.returncode != 0
    assert message in result.stdout, result.stdout[-3000:]
