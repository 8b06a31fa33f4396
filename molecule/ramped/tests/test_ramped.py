"""fleet.rollout.ramped under live traffic, behind HAProxy and behind nginx.

Each run is ``ansible-playbook fleet.rollout.ramped`` as a user types it, while the probe sends 60
requests/s (1 in 20 of them a long one) through both LBs and every LB is sampled; the asserts read
the probe's records, the samples, the playbook's output and the hosts.
"""

from __future__ import annotations

import re

import pytest

from labtest import haproxy_cli, lab_hosts, load_json
from rollout_run import LAB_SERVICES, STRICT_GATE, playbook, reset_app, run_under_traffic

APPS = lab_hosts("app")
LBS = lab_hosts("lb")
APP_NAME = "(?:%s)" % "|".join(re.escape(app) for app in APPS)


@pytest.fixture(scope="module", params=sorted(LAB_SERVICES))
def service(request):
    return LAB_SERVICES[request.param]


def second_rollout(service):
    """Start another rollout of the same service, as a second operator would."""
    def start():
        return playbook("fleet.rollout.ramped", dict(service.extra_vars, rollout_version="2.0.0",
                                                     rollout_owner="bob@second-terminal"),
                        "-e", "@molecule/resources/strategy.vars.yml")
    return start


# One rollout per LB kind, each with its own batch shape: behind HAProxy two hosts at a time with a slow
# start (runtime weights), behind nginx one host at a time (a reload per drain) while a second operator tries
# to start the same rollout; the bad release runs behind nginx (HAProxy's failed batch is in molecule/faults/tests/test_refused.py).
# Both report a drain's progress every half second; the long requests (1 in 20) last 5 s, so those in flight
# at a drain outlive its first round and show in it.
RUNS = {
    "haproxy": {"ramped_batches": "50%", "ramped_max_unavailable": 2, "ramped_slow_start": [50],
                "ramped_slow_start_interval": 2, "lb_drain_progress_interval": 0.5},
    "nginx": {"ramped_batches": 1, "ramped_max_unavailable": 1, "rollout_owner": "alice@first-terminal",
              "lb_drain_progress_interval": 0.5},
}


@pytest.fixture(scope="module")
def rollout(service):
    reset_app("1.0.0")
    second = second_rollout(service) if "rollout_owner" in RUNS[service.lb] else None
    return run_under_traffic(service, "ramped", dict(STRICT_GATE, rollout_version="2.0.0", **RUNS[service.lb]),
                             during=second, slow_s=5)


def only_behind(service, lb: str) -> None:
    if service.lb != lb:
        pytest.skip("this run is behind %s (one rollout shape per LB kind)" % lb)


@pytest.fixture(scope="module")
def bad_release(service, rollout):
    only_behind(service, "nginx")
    # Starts where the rollout ended: every host on 2.0.0.
    return run_under_traffic(service, "ramped", dict(STRICT_GATE, rollout_version="2.0.1-bad",
                                                     ramped_batches="50%"))


def live_versions(host_for) -> dict[str, str]:
    return {app: load_json(host_for(app), "/opt/sample-app/release-state.json")["slots"]["main"]["version"]
            for app in APPS}


def in_rotation(host_for, service) -> dict[str, dict[str, str]]:
    """Per LB host, the state of each app server of the service right now."""
    seen = {}
    for lb in LBS:
        if service.lb == "haproxy":
            lines = haproxy_cli(host_for(lb), "show stat").splitlines()
            head = lines[0].lstrip("# ").split(",")
            rows = [dict(zip(head, line.split(","))) for line in lines[1:] if line]
            seen[lb] = {row["svname"]: "%s/%s" % (row["status"], row["weight"]) for row in rows
                        if row["pxname"] == "be_%s_main" % service.name and row["svname"] != "BACKEND"}
        else:
            text = host_for(lb).file("/etc/nginx/fleet/%s.routing.conf" % service.name).content_string
            seen[lb] = {line.split()[1].split(":")[0]: ("DOWN" if " down" in line else "UP/100")
                        for line in text.splitlines() if line.strip().startswith("server ")}
    return seen


def all_up(host_for, service) -> bool:
    return all(state == "UP/100" for states in in_rotation(host_for, service).values() for state in states.values())


def drain_starts(run, lb: str) -> dict[str, float]:
    """When each server was first seen out of rotation on ``lb``."""
    starts: dict[str, float] = {}
    for sample in run.samples[lb]:
        for name, (status, _weight) in sample.get("servers", {}).items():
            if status != "UP" and name not in starts:
                starts[name] = sample["t"]
    return starts


def test_rollout_succeeds_with_no_failed_request(rollout):
    run = rollout
    assert run.rc == 0, run.output[-4000:]
    assert len(run.records) >= 60 * run.seconds * 0.9, run.summary()
    assert run.failed == [], run.failed[:5]


def test_every_request_after_the_run_is_served_by_the_new_release(rollout):
    run = rollout
    after = [r for r in run.records if r["t"] > run.ended]
    assert len(after) > 100
    assert {r["version"] for r in after} == {"2.0.0"}
    # ... and during the run both versions served: this was a rolling update under traffic.
    assert {r["version"] for r in run.records if run.started < r["t"] < run.ended} >= {"1.0.0", "2.0.0"}


def test_never_more_than_max_unavailable_out_of_rotation(rollout, service):
    run, limit = rollout, RUNS[service.lb]["ramped_max_unavailable"]
    most = run.out_of_rotation()
    assert set(most) == set(LBS) and all(len(run.samples[lb]) > 5 * run.seconds for lb in LBS)
    # Each LB saw servers leave (the samples can see a drain) and never more than the limit at once.
    assert all(1 <= count <= limit for count in most.values()), most


def test_long_requests_in_flight_at_a_drain_complete(rollout):
    run = rollout
    overlapping = []
    for lb in LBS:
        starts = drain_starts(run, lb)
        for r in run.records:
            # A long request through this LB that its server was serving when the LB began to drain it.
            if r["path"].startswith("/slow") and r["target"].startswith("http://%s:" % lb) \
                    and r["host"] in starts and r["t"] < starts[r["host"]] < r["t"] + r["dur"]:
                overlapping.append(r)
    slow = sorted({(r["target"], r["host"]) for r in run.records if r["path"].startswith("/slow")})
    assert overlapping, "no long request was in flight on a server when it was drained; drains %s; slow ones on %s" % (
        {lb: drain_starts(run, lb) for lb in LBS}, slow)
    assert all(r["status"] == 200 and r["dur"] >= 2.0 for r in overlapping), overlapping[:3]


PROGRESS = re.compile(r"(\w+): draining for (\d+) s \(up to [0-9.]+ s\); still in flight: (.*?)'")


def test_a_drain_with_requests_in_flight_says_what_is_left(rollout, service):
    # The debug lines as the operator reads them (the YAML callback folds long ones).
    lines = PROGRESS.findall(re.sub(r"\s+", " ", rollout.output))
    assert lines, "no drain progress in the output"
    assert {line[0] for line in lines} == {service.name}
    for _name, _seconds, left in lines:
        for per_lb in left.split("; "):
            lb, _sep, what = per_lb.partition(": ")
            assert lb in LBS, left
            counts = dict((name, int(count)) for name, count in
                          (item.rsplit(" ", 1) for item in what.split(", ")))
            if service.lb == "haproxy":
                # Sessions still open on servers of the batch being drained (0 on one whose last poll just saw
                # it empty: an UP server counts as drained after two empty polls in a row).
                assert counts and all(re.fullmatch(r"be_%s_main/%s" % (service.name, APP_NAME), name) and n >= 0
                                      for name, n in counts.items()), left
            else:
                # nginx: old workers still running, and their connections to the drained server (from /proc).
                assert counts.pop("old nginx workers") >= 1, left
                assert all(re.fullmatch(APP_NAME + ":8080", name) and n >= 1 for name, n in counts.items()), left
    if service.lb == "haproxy":
        assert any(re.search(APP_NAME + " [1-9]", line[2]) for line in lines), "no line counted a session"
    else:
        assert any(":8080" in line[2] for line in lines), "no line counted a connection to a server"


def test_a_second_rollout_during_the_first_is_refused_with_the_owner(rollout, service):
    only_behind(service, "nginx")
    second = rollout.during
    assert second.returncode != 0
    assert "Not starting: %s is being rolled out by alice@first-terminal [run " % service.name in second.stdout, \
        second.stdout[-3000:]
    # ... and the first one went on undisturbed.
    assert rollout.rc == 0 and rollout.failed == []


def test_slow_start_gave_half_weight_first(rollout, service):
    only_behind(service, "haproxy")
    # HAProxy: weight 50 of 100 on the runtime API; nginx: weight=50 in the routing file.
    weights = {weight for lb in LBS for sample in rollout.samples[lb]
               for status, weight in sample.get("servers", {}).values() if status == "UP"}
    assert 50 in weights and 100 in weights, weights


def test_after_the_rollout_every_host_runs_the_release_and_is_in_rotation(rollout, host_for, service):
    assert set(live_versions(host_for).values()) == {"2.0.0"}
    assert all_up(host_for, service), in_rotation(host_for, service)


def test_the_lb_state_records_the_rollout(rollout, host_for, service):
    for lb in LBS:
        state = load_json(host_for(lb), "/var/lib/fleet-rollout/%s/state.json" % service.name)
        last = state["history"][-1]
        assert last["event"] == "rollout" and last["strategy"] == "ramped" and last["outcome"] == "succeeded"
        assert last["version"] == "2.0.0" and set(last["hosts"]) == set(APPS)
        assert state["pools"]["main"]["release"] == "2.0.0"
        assert not host_for(lb).file("/var/lib/fleet-rollout/%s/lock.json" % service.name).exists


def test_a_bad_release_is_rolled_back_without_a_failed_request(bad_release, host_for, service):
    assert bad_release.rc != 0
    assert bad_release.failed == [], bad_release.failed[:5]
    out = bad_release.output
    assert "ramped rollout of %s to 2.0.1-bad stopped in batch 1 of 2" % service.name in out
    assert "did not answer healthy 30 times in a row" in out
    # Users never saw the bad release, and everything is as before: 2.0.0, in rotation on both LBs.
    assert "2.0.1-bad" not in {r["version"] for r in bad_release.records}
    assert set(live_versions(host_for).values()) == {"2.0.0"}
    assert all_up(host_for, service), in_rotation(host_for, service)
    assert {r["version"] for r in bad_release.records if r["t"] > bad_release.ended} == {"2.0.0"}


def test_a_rerun_skips_hosts_already_on_the_release(rollout, service):
    result = playbook("fleet.rollout.ramped", dict(service.extra_vars, rollout_version="2.0.0"),
                      "-e", "@molecule/resources/strategy.vars.yml")
    assert result.returncode == 0, result.stdout[-3000:]
    assert "0 batch(es): none" in result.stdout
    assert "already on 2.0.0 and healthy: %s" % ", ".join(APPS) in result.stdout
