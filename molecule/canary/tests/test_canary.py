"""fleet.rollout.canary under live traffic, behind HAProxy and behind nginx.

Each run is ``ansible-playbook fleet.rollout.canary`` as a user types it, while the probe sends 60
requests/s (1 in 20 of them a 2 s request) through both LBs and every LB is sampled. A good release is
promoted with no failed request and the canary's share of the requests follows each step; a bad one
(30 % errors behind HAProxy, +300 ms behind nginx) fails its first step and is rolled back, having
reached only a small share of the users.
"""

from __future__ import annotations

import glob
import json
import os
import shutil

import pytest

from labtest import PROJECT, EventReceiver, load_json, lab_hosts
from rollout_run import LAB_SERVICES, reset_app, rollout_status, run_under_traffic

APPS = lab_hosts("app")
LBS = lab_hosts("lb")
CANARY = APPS[0]
# The default steps for 1 canary of 4 hosts: up to twice its share of a full fleet (canary_max_host_load 2).
STEPS = [5, 10, 25, 50]
# The good release: the default steps behind HAProxy (canary_steps left empty), two of them behind nginx (a
# shorter suite).
GOOD_STEPS = {"haproxy": STEPS, "nginx": [10, 50]}
GIVEN_STEPS = {"haproxy": [], "nginx": GOOD_STEPS["nginx"]}
INTERVAL = 8
# At 60 requests/s a 5 % step gets ~24 canary requests in 8 s: judge on 20.
FAST = {"canary_steps": STEPS, "canary_interval": INTERVAL, "canary_min_samples": 20,
        # The promotion (fleet.rollout.ramped) updates the three stable hosts in one batch: a shorter suite.
        "ramped_batches": 3}
# The bad release's knobs, for that release only (a rollback to 1.0.0 must not inherit them).
BAD = {
    "errors": {"SAMPLE_APP_ERROR_RATE": "{{ '0.3' if release_version == '2.0.1-bad' else '0' }}",
               "SAMPLE_APP_LATENCY_MS": "0"},
    "latency": {"SAMPLE_APP_ERROR_RATE": "0",
                "SAMPLE_APP_LATENCY_MS": "{{ '300' if release_version == '2.0.1-bad' else '0' }}"},
}
# Each bad kind behind one LB kind, so both LBs see a bad canary and the suite stays short.
BAD_CASES = {"errors": LAB_SERVICES["haproxy"], "latency": LAB_SERVICES["nginx"]}


@pytest.fixture(scope="module", params=sorted(LAB_SERVICES))
def service(request):
    return LAB_SERVICES[request.param]


@pytest.fixture(scope="module")
def receiver():
    """The rollout events' webhook (on the controller); every canary run of this module sends to it."""
    hook = EventReceiver()
    yield hook
    hook.close()


def notify(receiver, name: str, broken: bool = False) -> dict:
    """Events to the receiver (and, with ``broken``, to a port nothing listens on) and to a task file that keeps
    them in a file of its own, fresh for the run ``name``."""
    events_file = os.path.join(PROJECT, "build", "rollout-events-%s.jsonl" % name)
    if os.path.exists(events_file):
        os.remove(events_file)
    return {"rollout_notify_webhooks": [receiver.url] + (["http://127.0.0.1:9/closed"] if broken else []),
            "rollout_notify_tasks": [os.path.join(PROJECT, "molecule", "resources", "notify_hook.yml")],
            "rollout_notify_timeout": 2, "lab_events_file": events_file}


def hook_events(run_vars: dict) -> list[dict]:
    with open(run_vars["lab_events_file"], encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


@pytest.fixture(scope="module")
def good(service, receiver):
    """The good release through the one entry point (fleet.rollout.deploy), with fleet.rollout.status
    run while the canary's steps go on; its events go to a webhook, a dead one and a task file."""
    reset_app("1.0.0")
    shutil.rmtree(report_dir(service), ignore_errors=True)
    run_vars = dict(FAST, rollout_strategy="canary", rollout_version="2.0.0", canary_steps=GIVEN_STEPS[service.lb],
                    rollout_report_dir=report_dir(service), **notify(receiver, "good-%s" % service.lb, broken=True))
    run = run_under_traffic(service, "deploy", run_vars, during=lambda: rollout_status(service), during_after_s=20)
    run.vars = run_vars
    return run


def report_dir(service) -> str:
    return os.path.join(PROJECT, "build", "rollout-reports", "canary-%s" % service.lb)


@pytest.fixture(scope="module", params=sorted(BAD_CASES))
def bad(request, receiver):
    service = BAD_CASES[request.param]
    reset_app("1.0.0")
    environment = dict(BAD[request.param], SAMPLE_APP_PORT="8080", SAMPLE_APP_DATA_DIR="data")
    # The looks while the step runs fail it within seconds (the sequential test); the window's end, should they
    # not, judges at least 40 requests, which all answer well with 30 % errors 1 time in 1.6 million (0.7^40).
    samples = {"canary_min_samples": 40} if request.param == "errors" else {}
    run_vars = dict(FAST, rollout_version="2.0.1-bad", release_environment=environment, **samples,
                    **notify(receiver, "bad-%s" % request.param))
    run = run_under_traffic(service, "canary", run_vars)
    run.vars = run_vars
    return request.param, service, run


def last_event(host_for, service) -> dict:
    return load_json(host_for(LBS[0]), "/var/lib/fleet-rollout/%s/state.json" % service.name)["history"][-1]


def live_versions(host_for) -> dict[str, str]:
    return {app: load_json(host_for(app), "/opt/sample-app/release-state.json")["slots"]["main"]["version"]
            for app in APPS}


def in_window(run, start: float, end: float) -> list[dict]:
    """Probe records of requests sent in [start, end]. The 2 s ones count too: the LB chose their server when
    they were sent, and leaving them out would skew the share (a few 2 s requests more on one server
    than on another are a few points of its share)."""
    return [r for r in run.records if start <= r["t"] <= end]


def test_good_canary_is_promoted_without_a_failed_request(good, host_for, service):
    assert good.rc == 0, good.output[-5000:]
    assert len(good.records) >= 60 * good.seconds * 0.9
    assert good.failed == [], good.failed[:5]
    event = last_event(host_for, service)
    assert event["strategy"] == "canary" and event["outcome"] == "promoted" and event["canary"] == [CANARY]
    steps = GOOD_STEPS[service.lb]
    assert [step["step"] for step in event["steps"]] == steps
    assert [step["verdict"] for step in event["steps"]] == ["pass"] * len(steps), [s["summary"] for s in event["steps"]]
    assert live_versions(host_for) == {app: "2.0.0" for app in APPS}
    # Promoted: after the run every request is served by 2.0.0, by every host at full weight.
    tail = [r for r in good.records if r["t"] > good.ended]
    assert tail and {r["version"] for r in tail} == {"2.0.0"}
    for lb in LBS:
        assert {tuple(v) for v in good.samples[lb][-1]["servers"].values()} == {("UP", 100)}
        state = load_json(host_for(lb), "/var/lib/fleet-rollout/%s/state.json" % service.name)
        assert state["pools"]["main"]["release"] == "2.0.0"
        # The lock is given back (the promotion's ramped run kept it for the canary, which gave it back).
        assert not host_for(lb).file("/var/lib/fleet-rollout/%s/lock.json" % service.name).exists


def test_status_during_the_run_shows_the_lock_and_the_weights_the_lbs_route_by(good, service):
    """fleet.rollout.status in the middle of the canary: the running rollout (owner, strategy, version,
    step) and, on every LB, each host's weight as the LB sampler saw it at that moment."""
    status = good.during
    assert "fleet.rollout.deploy: canary of 2.0.0" in good.output
    lock = status.data["lock"]
    assert lock is not None and lock["info"]["strategy"] == "canary" and lock["info"]["version"] == "2.0.0", lock
    assert sorted(lock["lbs"]) == LBS and not lock["expired"]
    assert "rollout running: %s" % lock["owner"] in status.output
    assert status.data["problems"] == [] and status.data["active_pool"] == "main"
    rows = {row["host"]: row for row in status.data["hosts"]}
    assert sorted(rows) == APPS
    for lb in LBS:
        window = [s["servers"] for s in good.samples[lb]
                  if "servers" in s and status.started - 0.5 <= s["t"] <= status.ended + 0.5]
        assert window
        for host, row in rows.items():
            if not row["lbs"][lb]["in_rotation"]:
                # Out of rotation (the canary host while its release goes in): the sampler saw it so too.
                assert any(servers[host][0] != "UP" for servers in window), (lb, host, row["lbs"][lb])
                continue
            seen = {servers[host][1] for servers in window if servers[host][0] == "UP"}
            if service.lb == "nginx" and 100 in seen:
                seen.add(1)  # the sampler reads a server without weight= as 100; nginx's default weight is 1
            assert row["lbs"][lb]["weight"] in seen, (lb, host, row["lbs"][lb], seen)
    # Mid-canary the canary host takes a share below the others' (or is out of rotation while it is released).
    canary = rows[CANARY]["lbs"][LBS[0]]
    stable = rows[APPS[1]]["lbs"][LBS[0]]
    assert not canary["in_rotation"] or canary["weight"] < stable["weight"], (canary, stable)


def test_status_after_the_run_shows_every_host_on_the_release(good, service):
    status = rollout_status(service)
    assert status.data["lock"] is None and "rollout running: none" in status.output
    assert status.data["problems"] == []
    for row in status.data["hosts"]:
        assert (row["live"], row["previous"]) == ("2.0.0", "1.0.0"), row
        for lb in LBS:
            assert row["lbs"][lb]["in_rotation"], (lb, row)
    # Every host back at its full weight: 100 on HAProxy, nginx's default (no weight= written) on nginx.
    full = 100 if service.lb == "haproxy" else 1
    assert {row["lbs"][lb]["weight"] for row in status.data["hosts"] for lb in LBS} == {full}
    last = status.data["history"][-1]
    assert (last["strategy"], last["version"], last["outcome"]) == ("canary", "2.0.0", "promoted")
    assert any(line.split()[3:6] == ["canary", "2.0.0", "promoted"] for line in status.data["table"])


def test_the_run_report_counts_what_users_got_per_version_with_the_steps(good, service):
    """The report the run wrote on the controller: its counts agree with the probe's, each step's share of
    2.0.0 is what users got, its steps and verdicts are marked, and the PNG is there."""
    found = glob.glob(os.path.join(report_dir(service), "*.json"))
    assert len(found) == 1, found
    with open(found[0], encoding="utf-8") as handle:
        report = json.load(handle)
    run = report["run"]
    assert (run["strategy"], run["version"], run["outcome"]) == ("canary", "2.0.0", "promoted")
    assert good.started <= run["since"] <= run["until"] <= good.ended + 1
    assert report["lbs"] == LBS and report["lbs_unread"] == []
    totals = report["totals"]
    assert totals["errors"] == 0 and set(totals["by_version"]) == {"1.0.0", "2.0.0"}, totals
    sent = [r for r in good.records if run["since"] <= r["t"] <= run["until"]]
    assert abs(totals["requests"] - len(sent)) <= 0.03 * len(sent), (totals["requests"], len(sent))
    steps = GOOD_STEPS[service.lb]
    assert [m["label"] for m in report["marks"] if m["kind"] == "step"] == ["step %d %%" % s for s in steps]
    assert [m["label"] for m in report["marks"] if m["kind"] == "verdict"] == ["PASS"] * len(steps)
    # Within each step (its first second and its last left out), the report's share of 2.0.0 is the probe's.
    starts = [m["t"] for m in report["marks"] if m["kind"] == "step"]
    judged = [m["t"] for m in report["marks"] if m["kind"] == "verdict"]
    for step, start, end in zip(steps, starts, judged):
        buckets = [b for b in report["series"] if start + 1 <= b["t"] and b["t"] + 1 <= end - 1]
        new = sum(b["by_version"].get("2.0.0", [0])[0] for b in buckets)
        total = sum(n for b in buckets for n, _e in b["by_version"].values())
        probe = [r for r in good.records if start + 1 <= r["t"] <= end - 1 and r["status"] == 200]
        probe_new = sum(1 for r in probe if r["version"] == "2.0.0")
        assert abs(100.0 * new / total - 100.0 * probe_new / len(probe)) <= 3.0, (step, new, total, probe_new, len(probe))
    # From the last step (50 %) on, 2.0.0 keeps at least the canary's share of a full fleet (1 of 4 hosts): the
    # promotion restores every weight, then takes the stable hosts out of traffic before they change. Requests
    # sent before it may still finish on 1.0.0 (2 s ones): 3 s margin.
    after = [b for b in report["series"] if b["t"] >= starts[-1] + 3 and b["by_version"]]
    shares = [100.0 * b["by_version"].get("2.0.0", [0])[0] / sum(n for n, _e in b["by_version"].values()) for b in after]
    assert after and min(shares) >= 100.0 / len(APPS) - 5, \
        [(round(b["t"] - run["since"]), b["by_version"]) for b in after if b["by_version"].get("2.0.0", [0])[0] * 4
         < sum(n for n, _e in b["by_version"].values())][:10]
    # Once the promotion is done (the run's last 2 s), everything comes from 2.0.0.
    assert {r["version"] for r in good.records if good.ended - 2 <= r["t"] and r["status"] == 200} == {"2.0.0"}
    with open(found[0][:-5] + ".png", "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    text = open(found[0][:-5] + ".md", encoding="utf-8").read()
    assert text.startswith("# canary of %s 2.0.0: promoted" % service.name)
    assert "rollout report: %s" % found[0][:-5] + ".md" in " ".join(good.output.split())


def test_canary_share_follows_each_step(good, host_for, service):
    """The share of requests the canary served in each step is the step's weight, within 3 points."""
    event = last_event(host_for, service)
    shares = []
    for step in event["steps"]:
        records = in_window(good, step["started"] + 0.5, step["judged"] - 1.0)
        served = [r for r in records if r["status"] == 200]
        canary = sum(1 for r in served if r["version"] == "2.0.0")
        shares.append((step["step"], round(100.0 * canary / len(served), 1), len(served)))
        assert abs(100.0 * canary / len(served) - step["step"]) <= 3.0, shares
        # The verdict printed as the rollout went carries the numbers.
        assert step["summary"].startswith("PASS: canary %d req" % step["canary"]["requests"])
        assert step["canary"]["requests"] >= 20
    print("canary share per step (step %%, served %%, requests): %s" % shares)
    steps = GOOD_STEPS[service.lb]
    assert "canary step 1 of %d (%d %%" % (len(steps), steps[0]) in good.output and "PASS: canary" in good.output


def test_the_good_canary_says_each_step_and_its_promotion_to_webhooks_and_task_files(good, host_for, service, receiver):
    """rollout_notify_*: started, one step event per step with its verdict, promoted (with the report's path) -
    to the webhook and, the same events, to the task file; a webhook nothing listens on is a warning only."""
    assert good.rc == 0, good.output[-3000:]
    run_id = last_event(host_for, service)["run"]
    events = receiver.of_run(run_id)
    steps = GOOD_STEPS[service.lb]
    assert [e["event"] for e in events] == ["started"] + ["step"] * len(steps) + ["promoted"], events
    assert [(e["step"]["weight"], e["verdict"]) for e in events[1:-1]] == [(float(w), "pass") for w in steps], events
    assert {(e["service"], e["strategy"], e["version"]) for e in events} == {(service.name, "canary", "2.0.0")}
    last = events[-1]
    assert last["outcome"] == "promoted" and last["report"] and os.path.exists(last["report"]), last
    assert last["message"] == "canary of %s to 2.0.0: promoted" % service.name
    assert [(e["event"], e["time"]) for e in hook_events(good.vars)] == [(e["event"], e["time"]) for e in events]
    assert "webhook 2 of 2 did not take the started event" in good.said
    assert "127.0.0.1:9" not in good.output  # a webhook's URL (often a token) is never said


def test_bad_canary_fails_its_first_step_and_is_rolled_back(bad, host_for):
    kind, service, run = bad
    assert run.rc != 0
    event = last_event(host_for, service)
    assert event["strategy"] == "canary" and event["outcome"] == "failed"
    assert [step["verdict"] for step in event["steps"]] == ["fail"], event["steps"]
    step = event["steps"][0]
    if kind == "errors":
        assert step["canary"]["error_rate"] > 5 and step["errors"]["significant"], step
        assert any("ceiling" in reason for reason in step["reasons"])
    else:
        assert step["latency"]["p50_shift"] > 0.25 and step["latency"]["significant"], step
        assert any("Mann-Whitney" in reason for reason in step["reasons"])
        assert step["canary"]["errors"] == 0
    assert event["rolled_back"] == [CANARY]
    assert "failed its analysis" in run.output and "were never touched" in run.output
    # Everything is served by 1.0.0 afterwards, by every host in rotation at full weight.
    assert live_versions(host_for) == {app: "1.0.0" for app in APPS}
    tail = [r for r in run.records if r["t"] > run.ended]
    assert tail and {r["version"] for r in tail} == {"1.0.0"}
    for lb in LBS:
        assert {tuple(v) for v in run.samples[lb][-1]["servers"].values()} == {("UP", 100)}
        assert not host_for(lb).file("/var/lib/fleet-rollout/%s/lock.json" % service.name).exists


def test_the_bad_canary_says_its_failed_step_and_that_it_was_rolled_back(bad, host_for, receiver):
    _kind, service, run = bad
    events = receiver.of_run(last_event(host_for, service)["run"])
    assert [(e["event"], e["verdict"]) for e in events] == [("started", None), ("step", "fail"), ("rolled_back", None)]
    assert events[1]["step"]["index"] == 1 and events[1]["step"]["reasons"], events[1]
    assert events[-1]["outcome"] == "failed" and "failed its analysis" in events[-1]["error"], events[-1]
    assert [e["event"] for e in hook_events(run.vars)] == ["started", "step", "rolled_back"]


def test_bad_release_reached_few_users(bad, host_for):
    """The bad version served no more than the first step's share of the requests sent while it was in
    rotation (plus 3 points), and only a sliver of the whole run's."""
    kind, service, run = bad
    event = last_event(host_for, service)
    step = event["steps"][0]
    bad_served = [r for r in run.records if r["version"] == "2.0.1-bad"]
    first, last = min((r["t"] for r in bad_served), default=0), max((r["t"] for r in bad_served), default=0)
    in_rotation = [r for r in run.records if first <= r["t"] <= last]
    assert bad_served, "the bad canary never got traffic: the analysis was not what stopped it"
    exposure = 100.0 * len(bad_served) / len(in_rotation)
    overall = 100.0 * len(bad_served) / len(run.records)
    # The canary leaves rotation on every LB within seconds of the verdict.
    out_after = last - step["judged"]
    print("%s: bad version served %d of %d requests while in rotation (%.2f %%), %.2f %% of the run's %d; "
          "failed requests %d; last request to it %.1f s after the verdict"
          % (kind, len(bad_served), len(in_rotation), exposure, overall, len(run.records), len(run.failed), out_after))
    assert out_after < 15.0
    assert exposure <= STEPS[0] + 3.0
    assert overall < STEPS[0]
    if kind == "errors":
        # Only the canary's own answers failed; the stable hosts answered everything else.
        others = [r for r in run.failed if r["host"] != CANARY or r["version"] != "2.0.1-bad"]
        assert others == [], others[:5]
        # Looked at every canary_look_interval seconds, the step failed as soon as its errors proved the ceiling
        # broken, not at the window's end: few users met a failure, and not for long.
        assert any("while the step ran" in reason for reason in step["reasons"]), step["reasons"]
        cut_off = last - min(r["t"] for r in run.failed)
        print("errors: %d failed requests; the last request to the bad canary %.1f s after the first failure"
              % (len(run.failed), cut_off))
        assert len(run.failed) <= 10 and cut_off <= 10.0, (len(run.failed), cut_off)
    else:
        assert run.failed == []
