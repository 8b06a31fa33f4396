"""fleet.rollout.blue_green and fleet.rollout.rollback under live traffic, behind HAProxy and nginx, in the
pools layout (two host groups) and the slots layout (two release slots on every host).

Each run is ``ansible-playbook fleet.rollout.<name>`` as a user types it, while the probe sends 60
requests/s (1 in 20 of them a 2 s request) through both LBs; the asserts read the probe's records,
the LBs' rollout state and their running routing (HAProxy's map, nginx's routing file).
"""

from __future__ import annotations

import re

import pytest

from labtest import haproxy_cli, http, lab_hosts, load_json, rollout_locks
from rollout_run import STRICT_GATE, Run, Service, docker, playbook, refused_at_once, run_under_traffic

APPS = lab_hosts("app")
LBS = lab_hosts("lb")
POOL_HOSTS = {"blue": lab_hosts("blue"), "green": lab_hosts("green")}
SERVICES = [
    Service("haproxy", "shop", 80, "blue_green.vars.yml", "pools"),
    Service("haproxy", "shopslots", 82, "blue_green.vars.yml", "slots"),
    Service("nginx", "cart", 81, "blue_green.vars.yml", "pools"),
    Service("nginx", "cartslots", 83, "blue_green.vars.yml", "slots"),
]
# The failure cases run on one layout per LB kind (the mechanism is the LB's, not the layout's).
FAILURE_CASES = {"haproxy-pools", "nginx-slots"}
# Flip latency targets: HAProxy switches with one map commit, nginx with a graceful reload.
FLIP_LATENCY = {"haproxy": 0.1, "nginx": 1.0}
# A short watch after the flip keeps the suite fast; the rollout itself is the same.
FAST = {"blue_green_verify_seconds": 5}


def units(service: Service, pool: str) -> list[tuple[str, str]]:
    """(host, systemd unit) of the instances serving ``pool``."""
    if service.layout == "slots":
        return [(app, "sample-app@%s.service" % pool) for app in APPS]
    return [(app, "sample-app.service") for app in POOL_HOSTS[pool]]


def lb_state(host_for, service: Service, lb: str) -> dict:
    return load_json(host_for(lb), "/var/lib/fleet-rollout/%s/state.json" % service.name)


def running_route(host_for, service: Service, lb: str) -> str:
    """The pool the LB really routes plain requests to: HAProxy's running map, nginx's routing file."""
    if service.lb == "haproxy":
        text = haproxy_cli(host_for(lb), "show map /etc/haproxy/maps/%s.map" % service.name)
        backend = dict(line.split()[-2:] for line in text.splitlines() if line.strip())["active"]
        return backend.rsplit("_", 1)[-1]
    text = host_for(lb).file("/etc/nginx/fleet/%s.routing.conf" % service.name).content_string
    upstream = re.search(r"^\s*default\s+(\S+);", text, re.M).group(1)
    return upstream.rsplit("_", 1)[-1]


def assert_lbs_agree(host_for, service: Service, pool: str) -> None:
    """Every LB's state and running routing name ``pool``."""
    seen = {lb: (lb_state(host_for, service, lb)["active_pool"], running_route(host_for, service, lb)) for lb in LBS}
    assert set(seen.values()) == {(pool, pool)}, seen


def previewed(host_for, service: Service) -> dict[str, set]:
    """Per LB, the versions 6 requests with the preview header got, sent by the LB host to itself (trusted)."""
    preview = {"X-Rollout-Preview": "1"}
    return {lb: {http(host_for(lb), "http://127.0.0.1:%d/" % service.port, preview)[1].get("x-app-version")
                 for _n in range(6)} for lb in LBS}


def last_event(host_for, service: Service, kind: str) -> dict:
    events = [e for e in lb_state(host_for, service, LBS[0])["history"] if e.get("event") == kind]
    assert events, "no %s event in the history of %s" % (kind, service.name)
    return events[-1]


def flip_latencies(run: Run, flipped_at: dict, old_version: str) -> dict[str, float]:
    """Per LB: from the flip command to the start of the last request that still reached the old pool
    (0 when none started after the command)."""
    result = {}
    for lb, when in flipped_at.items():
        assert when, "no flip time recorded for %s: %s" % (lb, flipped_at)
        old = [r["t"] for r in run.records if lb in r["target"] and r["version"] == old_version]
        result[lb] = round(max([t - float(when) for t in old] + [0.0]), 4)
    return result


def assert_flipped(run: Run, service: Service, flipped_at: dict, old: str, new: str) -> dict[str, float]:
    assert run.rc == 0, run.output[-4000:]
    assert not run.failed, run.failed[:5]
    done = max(float(t) for t in flipped_at.values())
    after = [r for r in run.records if r["t"] > done + FLIP_LATENCY[service.lb]]
    assert after, "the probe sent nothing after the flip"
    assert {r["version"] for r in after} == {new}, {r["version"] for r in after}
    latencies = flip_latencies(run, flipped_at, old)
    assert max(latencies.values()) < FLIP_LATENCY[service.lb], latencies
    return latencies


@pytest.fixture(scope="module", params=SERVICES, ids=[s.id for s in SERVICES])
def service(request):
    return request.param


@pytest.fixture(scope="module")
def rollout(service, host_for):
    assert_lbs_agree(host_for, service, "blue")
    run = run_under_traffic(service, "blue_green", dict(STRICT_GATE, **FAST, rollout_version="2.0.0"))
    return run, last_event(host_for, service, "rollout")


@pytest.fixture(scope="module")
def rollback(service, rollout, host_for):
    run = run_under_traffic(service, "rollback", {})
    return run, last_event(host_for, service, "rollback")


def test_rollout_flips_to_green_without_a_failed_request(service, rollout, host_for):
    run, event = rollout
    latencies = assert_flipped(run, service, event["flipped_at"], "1.0.0", "2.0.0")
    print("%s flip latency per LB: %s; %s" % (service.id, latencies, run.summary()))
    assert event["outcome"] == "succeeded" and event["to_pool"] == "green"
    assert_lbs_agree(host_for, service, "green")
    state = lb_state(host_for, service, LBS[1])
    assert state["pools"]["green"]["release"] == "2.0.0"
    assert state["pools"]["blue"]["release"] == "1.0.0"
    # The flip closed the preview route: it no longer reaches the superseded release on blue.
    assert previewed(host_for, service) == {lb: {"2.0.0"} for lb in LBS}
    assert not state["preview"]
    # Nothing reached the new release before the flip, and the old pool still runs its release.
    first_new = min(r["t"] for r in run.records if r["version"] == "2.0.0")
    assert first_new >= min(float(t) for t in event["flipped_at"].values()) - 0.05
    for host, unit in units(service, "blue"):
        assert docker("exec", host, "systemctl", "is-active", unit).stdout.strip() == "active"


def test_rollback_flips_back_at_once(service, rollback, host_for):
    run, event = rollback
    latencies = assert_flipped(run, service, event["flipped_at"], "2.0.0", "1.0.0")
    print("%s rollback latency per LB: %s; %s; rollback run %.1f s" % (service.id, latencies, run.summary(), run.seconds))
    assert event["outcome"] == "succeeded" and event["release"] == "1.0.0"
    assert_lbs_agree(host_for, service, "blue")


def failure_case(service: Service, only: str = "") -> None:
    cases = {only} if only else FAILURE_CASES
    if service.id not in cases:
        pytest.skip("this failure case runs on %s" % ", ".join(sorted(cases)))


def test_a_flip_interrupted_between_the_lbs_is_routed_back_before_the_idle_pool_is_touched(service, rollback, host_for):
    """A flip stopped after the first LB (Ctrl-C, an LB lost half way) leaves that LB on green while every
    state file says blue. The next blue/green must not take green for idle and restart it under that LB's
    users: it routes that LB back to blue first, says so, and then rolls out as usual - no failed request."""
    failure_case(service, only="haproxy-pools")
    assert_lbs_agree(host_for, service, "blue")
    strayed = LBS[0]
    haproxy_cli(host_for(strayed), "set map /etc/haproxy/maps/%s.map active be_%s_green" % (service.name, service.name))
    assert running_route(host_for, service, strayed) == "green"
    assert [lb_state(host_for, service, lb)["active_pool"] for lb in LBS] == ["blue"] * len(LBS)
    run = run_under_traffic(service, "blue_green", dict(STRICT_GATE, **FAST, rollout_version="2.0.0"))
    print("%s after an interrupted flip: %s" % (service.id, run.summary()))
    assert run.rc == 0, run.output[-4000:]
    assert "%s routes %s otherwise than to blue with the preview route closed" % (strayed, service.name) \
        in " ".join(run.output.split()), run.output[-4000:]
    # Green restarted with 2.0.0 only once no LB sent users to it: not one request failed.
    assert not run.failed, run.failed[:5]
    assert last_event(host_for, service, "rollout")["outcome"] == "succeeded"
    assert_lbs_agree(host_for, service, "green")
    assert rollout_locks(service.name) == {lb: False for lb in LBS}
    back = playbook("fleet.rollout.rollback", service.extra_vars, "-e", "@molecule/resources/%s" % service.vars_file)
    assert back.returncode == 0, back.stdout[-3000:]
    assert_lbs_agree(host_for, service, "blue")


def test_failed_smoke_test_never_flips(service, rollback, host_for):
    """2.0.1-bad passes its health check but fails 30 % of requests: the preview smoke test stops it."""
    failure_case(service, only="haproxy-pools")
    run = run_under_traffic(service, "blue_green", dict(FAST, rollout_version="2.0.1-bad"))
    print("%s bad release: %s" % (service.id, run.summary()))
    assert run.rc != 0
    assert "failed the smoke test" in run.output
    assert re.search(r"of 20 smoke requests to http://127\.0\.0\.1:%d/ failed: \d+ x status 5\d\d" % service.port,
                     run.output), run.output[-3000:]
    assert "Traffic stays on blue" in run.output
    assert not run.failed, run.failed[:5]
    assert {r["version"] for r in run.records} == {"1.0.0"}
    assert_lbs_agree(host_for, service, "blue")
    assert last_event(host_for, service, "rollout")["outcome"] == "failed"
    assert lb_state(host_for, service, LBS[0])["pools"]["green"] == {"release": "2.0.1-bad", "status": "failed"}
    # The undo closed the preview route the smoke test went through: the refused release is not reachable.
    assert previewed(host_for, service) == {lb: {"1.0.0"} for lb in LBS}
    # Green is UP but runs a release that failed: a rollback refuses to send users to it.
    refused = playbook("fleet.rollout.rollback", dict(service.extra_vars, rollback_pool="green"),
                       "-e", "@molecule/resources/%s" % service.vars_file)
    assert refused.returncode != 0
    assert "Not flipping back: pool green of %s runs 2.0.1-bad, which failed its rollout" % service.name \
        in refused.stdout, refused.stdout[-3000:]
    assert_lbs_agree(host_for, service, "blue")


def test_one_idle_host_failing_its_gate_stops_the_flip(service, rollback, host_for):
    """The last host of the idle pool never answers its health gate: no flip, users stay on 1.0.0."""
    failure_case(service, only="nginx-slots")
    failing = POOL_HOSTS["green"][-1]
    gate = "{{ 'http://127.0.0.1:9/' if inventory_hostname == '%s' else 'http://127.0.0.1:' ~ lab_app_port ~ '/' }}" % failing
    run = run_under_traffic(service, "blue_green", dict(FAST, rollout_version="2.0.0", release_health_url=gate,
                                                        release_health_timeout=3))
    print("%s one idle host fails: %s" % (service.id, run.summary()))
    assert run.rc != 0
    assert failing in run.output and "health gate" in run.output, run.output[-3000:]
    assert "Traffic is on pool blue" in run.output
    assert not run.failed, run.failed[:5]
    assert {r["version"] for r in run.records} == {"1.0.0"}
    assert_lbs_agree(host_for, service, "blue")
    event = last_event(host_for, service, "rollout")
    assert event["outcome"] == "failed" and event["flipped_at"] == {}
    assert lb_state(host_for, service, LBS[0])["pools"]["green"]["status"] == "failed"


def test_bad_release_after_the_flip_is_flipped_back(service, rollback, host_for):
    """Without the smoke test 2.0.1-bad goes live; the watch after the flip sees its failures and flips back."""
    failure_case(service)
    # Looks every 2 s while the 5 s watch runs: the first one already proves 30 % errors over the 5 % ceiling.
    run = run_under_traffic(service, "blue_green", dict(FAST, rollout_version="2.0.1-bad", blue_green_smoke_requests=0,
                                                        blue_green_max_error_rate=5, blue_green_look_interval=2))
    event = last_event(host_for, service, "rollout")
    print("%s bad release live: %s; event %s" % (service.id, run.summary(), {k: event.get(k) for k in (
        "outcome", "flipped_at", "flipped_back_at", "verify")}))
    assert run.rc != 0
    assert "was flipped back" in run.output and "blue_green_max_error_rate 5" in run.output, run.output[-3000:]
    assert event["outcome"] == "flipped_back"
    assert_lbs_agree(host_for, service, "blue")
    flipped = min(float(t) for t in event["flipped_at"].values())
    back = max(float(t) for t in event["flipped_back_at"].values())
    # Users met the bad release only between the flip and the flip back, and 1.0.0 serves again after it.
    bad = [r for r in run.records if r["version"] == "2.0.1-bad"]
    assert bad and min(r["t"] for r in bad) >= flipped - 0.05
    assert max(r["t"] for r in bad) <= back + FLIP_LATENCY[service.lb]
    assert all(r["t"] >= flipped - 0.05 and r["t"] <= back + FLIP_LATENCY[service.lb] for r in run.failed)
    # Flipped back at a look while the watch ran, before its 5 s were up.
    out = " ".join(run.output.split())
    proved = re.search(r"failed through the LBs in the first ([0-9.]+) s after the flip to green, which already proves "
                       r"the error rate over blue_green_max_error_rate 5", out)
    assert proved and float(proved.group(1)) < FAST["blue_green_verify_seconds"], out[-3000:]
    print("%s bad release live: proved bad %s s after the flip, flipped back %.1f s after it, %d failed requests"
          % (service.id, proved.group(1), back - flipped, len(run.failed)))
    assert {r["version"] for r in run.records if r["t"] > back + FLIP_LATENCY[service.lb]} == {"1.0.0"}


def test_a_dry_run_watch_reports_the_flip_back_it_would_have_made(service, rollback, host_for):
    """blue_green_analysis_mode=dry_run: 2.0.1-bad goes live and stays live. The run says why the watch would have
    flipped back - here the hard rule, 2 failed answers one after another (blue_green_max_consecutive_errors), under
    a 50 % ceiling its 30 % errors cannot break - and the LB state records it; a rollback then takes it back."""
    failure_case(service, only="haproxy-pools")
    run = run_under_traffic(service, "blue_green", dict(
        FAST, rollout_version="2.0.1-bad", blue_green_smoke_requests=0, blue_green_max_error_rate=50,
        blue_green_max_consecutive_errors=2, blue_green_look_interval=2, blue_green_analysis_mode="dry_run"))
    event = last_event(host_for, service, "rollout")
    stayed = {lb: running_route(host_for, service, lb) for lb in LBS}
    back = run_under_traffic(service, "rollback", {})
    print("%s dry run: %s; would_flip_back %s" % (service.id, run.summary(), event.get("would_flip_back")))
    out = " ".join(run.output.split())
    assert run.rc == 0, out[-3000:]
    assert "DRY RUN of the watch after the flip: it would have flipped back" in out, out[-3000:]
    assert "one after another (blue_green_max_consecutive_errors 2)" in out, out[-3000:]
    assert event["outcome"] == "succeeded" and event["analysis_mode"] == "dry_run", event
    # The look's verdict came while the watch ran, and its end judged the whole window too.
    assert any("in the first" in reason for reason in event["would_flip_back"]), event["would_flip_back"]
    assert any("in the 5.0 s after the flip" in reason for reason in event["would_flip_back"]), event["would_flip_back"]
    # Nothing was acted on: green served the bad release to the run's end.
    assert stayed == {lb: "green" for lb in LBS}
    assert any(r["version"] == "2.0.1-bad" for r in run.records if r["t"] > run.ended - 2)
    assert back.rc == 0, back.output[-3000:]
    assert_lbs_agree(host_for, service, "blue")


def test_a_watch_that_saw_no_request_flips_back(service, rollback, host_for):
    """No traffic at all after the flip: the watch goes on for a second window, then fails and flips back - it
    never passes on no data."""
    failure_case(service, only="haproxy-pools")
    run = playbook("fleet.rollout.blue_green", dict(service.extra_vars, rollout_version="2.0.0",
                                                    blue_green_verify_seconds=2),
                   "-e", "@molecule/resources/%s" % service.vars_file)
    out = " ".join(run.stdout.split())
    assert run.returncode != 0, out[-3000:]
    assert "Only 0 requests came through the LBs in the 4.0 s after the flip to green" in out, out[-3000:]
    assert "blue_green_verify_min_requests 10" in out and "was flipped back" in out, out[-3000:]
    assert last_event(host_for, service, "rollout")["outcome"] == "flipped_back"
    assert_lbs_agree(host_for, service, "blue")


def test_old_pool_stopped_after_the_window_then_rollback_is_refused(service, rollback, host_for):
    """blue_green_stop_idle_after stops the old pool once the rollout succeeded, closing a preview route kept
    open to it first (a preview request then gets the live release, not a 503); a rollback to a pool that is
    down is then refused and changes nothing."""
    failure_case(service, only="haproxy-pools")
    run = run_under_traffic(service, "blue_green", dict(STRICT_GATE, **FAST, rollout_version="2.0.0",
                                                        blue_green_stop_idle_after=0, blue_green_keep_preview=True))
    assert run.rc == 0, run.output[-3000:]
    assert not run.failed, run.failed[:5]
    assert last_event(host_for, service, "rollout")["outcome"] == "succeeded"
    assert_lbs_agree(host_for, service, "green")
    for lb in LBS:
        assert lb_state(host_for, service, lb).get("preview") is False, lb
        answers = [http(host_for(lb), "http://127.0.0.1:%d/" % service.port, {"X-Rollout-Preview": "1"})
                   for _n in range(6)]
        assert {(status, headers.get("x-app-version")) for status, headers, _body in answers} == {(200, "2.0.0")}, lb
    stopped = units(service, "blue")
    try:
        for host, unit in stopped:
            assert docker("exec", host, "systemctl", "is-active", unit).stdout.strip() == "inactive", (host, unit)
        before = {lb: lb_state(host_for, service, lb)["pools"] for lb in LBS}
        refused = run_under_traffic(service, "rollback", {"rollback_verify_timeout": 3}, slow_share=0, tail_s=1)
        print("%s rollback to a stopped pool: %s" % (service.id, refused.summary()))
        assert refused.rc != 0
        assert "Not flipping back: pool blue" in refused.output, refused.output[-3000:]
        assert "Nothing changed: traffic stays on green" in refused.output
        assert not refused.failed, refused.failed[:5]
        assert {r["version"] for r in refused.records} == {"2.0.0"}
        assert_lbs_agree(host_for, service, "green")
        assert {lb: lb_state(host_for, service, lb)["pools"] for lb in LBS} == before
    finally:
        for host, unit in stopped:
            docker("exec", host, "systemctl", "start", unit)
        back = playbook("fleet.rollout.rollback", dict(service.extra_vars, rollback_verify_timeout=30),
                        "-e", "@molecule/resources/%s" % service.vars_file)
        assert back.returncode == 0, back.stdout[-3000:]


BAD_INPUT = {
    "error-rate-150": ("blue_green", {"blue_green_max_error_rate": 150},
                       "blue_green_max_error_rate: expected a percentage 0-100, got 150"),
    "smoke-path": ("blue_green", {"blue_green_smoke_path": "no-slash"}, "blue_green_smoke_path: expected a path starting with /"),
    "idle-pool-not-in-play": ("blue_green", {"rollout_app_group": "blue"},
                              "the hosts of pool green %s are not in the play" % ", ".join(POOL_HOSTS["green"])),
    "rollback-unknown-pool": ("rollback", {"rollback_pool": "red"}, "rollback_pool: red is not one of the pools [\"blue\", \"green\"] of shop"),
    "ramped-on-slots": ("ramped", {"rollout_service": "shopslots"}, "Service shopslots runs its pools in release slots"),
}


@pytest.fixture(scope="module")
def refused(host_for):
    """Every bad input case run (a few at a time), with the LB state of shop and shopslots before and after."""
    def states():
        return {lb: (lb_state(host_for, SERVICES[0], lb), lb_state(host_for, SERVICES[1], lb)) for lb in LBS}
    before = states()
    results = refused_at_once({
        case: ("fleet.rollout.%s" % name, dict(SERVICES[0].extra_vars, rollout_version="2.0.0", **extra),
               "-e", "@molecule/resources/blue_green.vars.yml")
        for case, (name, extra, _message) in BAD_INPUT.items()})
    return before, results, states()


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_bad_input_is_refused_before_any_change(refused, case):
    before, results, after = refused
    result, message = results[case], BAD_INPUT[case][2]
    assert result.returncode != 0
    assert message in result.stdout + result.stderr, (result.stdout + result.stderr)[-3000:]
    assert after == before
