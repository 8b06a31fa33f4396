"""What stops a rollout before it changes anything: bad input (each message naming the variable and what
was expected) and another rollout's lock; a stale lock broken only when asked; and a batch that fails as a
whole going back without a failed request."""

from __future__ import annotations

import json
import subprocess

import pytest

from labtest import haproxy_cli, lab_hosts, rollout_snapshot, without_volatile
from rollout_run import LAB_SERVICES, docker, env, playbook, refused_at_once, reset_app, run_under_traffic

APPS = lab_hosts("app")
LBS = lab_hosts("lb")
WEB = LAB_SERVICES["haproxy"]
VARS_FILE = "@molecule/resources/strategy.vars.yml"


SAFE_VERSION = "rollout_version: expected a safe name"
CASES = {
    "batch-0": ({"ramped_batches": "0"}, "ramped_batches: '0' must be at least 1"),
    "batch-150pct": ({"ramped_batches": "150%"}, "ramped_batches: '150%' is not a percentage above 0 and at most 100%"),
    "max-unavailable-0": ({"ramped_max_unavailable": 0}, "ramped_max_unavailable: 0 must be at least 1"),
    "budget-word": ({"ramped_failure_budget": "lots"}, "ramped_failure_budget: expected a count or a percentage"),
    "unknown-app-group": ({"rollout_app_group": "nosuchgroup"}, 'rollout_app_group: "nosuchgroup" is not a group of the inventory'),
    "unknown-lb-group": ({"rollout_lb_group": "nosuchgroup"}, 'rollout_lb_group: "nosuchgroup" is not a group of the inventory'),
    "unknown-service": ({"rollout_service": "nosuchservice"}, "rollout_service: 'nosuchservice' is not one of rollout_services ['web']"),
    "unsafe-version": ({"rollout_version": "../../etc/passwd"}, SAFE_VERSION),
    "no-version": ({"rollout_version": ""}, "rollout_version: required"),
    "version-trailing-newline": ({"rollout_version": "2.0.0\n"}, SAFE_VERSION),
    "version-dot-dot": ({"rollout_version": ".."}, SAFE_VERSION),
    "version-shell": ({"rollout_version": "2.0.0;touch /tmp/owned"}, SAFE_VERSION),
    "version-300-chars": ({"rollout_version": "2" * 300}, SAFE_VERSION),
    # What YAML makes of an unquoted 2.10: the message asks for quotes.
    "version-yaml-float": ({"rollout_version": 2.1}, 'rollout_version: got the number 2.1, not a version; quote it'),
    "empty-pool": ({"rollout_services": [{"name": "web", "port": 80, "pools": []}]},
                   "rollout_services[0] (web).pools: expected a non-empty list of pools"),
    "weight-out-of-range": ({"ramped_slow_start": [150]},
                            "ramped_slow_start: expected a rising list of weights in percent, each 1-99"),
    "canary-weight-out-of-range": ({"canary_steps": [150]}, "canary_steps: expected rising percentages above 0 and at "
                                   "most 100", "fleet.rollout.canary"),
    "unknown-strategy": ({"rollout_strategy": "yolo"}, "rollout_strategy: expected one of", "fleet.rollout.deploy"),
    "sha256-missing": ({"release_sha256": ""}, "release_sha256 must be the artifact's sha256 as 64 hex digits "
                       "(required to deploy)"),
    "sha256-not-hex": ({"release_sha256": "z" * 64}, "release_sha256 must be the artifact's sha256 as 64 hex digits"),
}


@pytest.fixture(scope="module")
def refused(host_for):
    """Every case run (a few at a time), with what a rollout would change before and after them all."""
    before = rollout_snapshot(host_for)
    results = refused_at_once({
        case: ((spec[2] if len(spec) > 2 else "fleet.rollout.ramped"),
               dict(WEB.extra_vars, rollout_version="2.0.1-bad"), "-e", VARS_FILE, "-e", json.dumps(spec[0]))
        for case, spec in CASES.items()})
    return before, results, rollout_snapshot(host_for)


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_refused_before_any_change(refused, case):
    before, results, after = refused
    result, message = results[case], CASES[case][1]
    said = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0
    assert message in said, said[-3000:]
    assert without_volatile(after) == without_volatile(before)


def ansible_lb(module_args: dict) -> subprocess.CompletedProcess:
    return subprocess.run(["ansible", "lb", "-m", "fleet.rollout.rollout_lock", "-a", json.dumps(module_args)],
                          env=env(), capture_output=True, text=True, check=False)


def test_a_second_rollout_is_refused_while_one_holds_the_lock(host_for):
    holder = {"service": "web", "owner": "alice@ops (AWX job 7)", "info": {"strategy": "ramped", "version": "9.9.9"}}
    taken = ansible_lb(holder)
    assert taken.returncode == 0, taken.stdout
    try:
        before = rollout_snapshot(host_for)
        result = playbook("fleet.rollout.ramped", dict(WEB.extra_vars, rollout_version="2.0.1-bad"), "-e", VARS_FILE)
        assert result.returncode != 0
        assert "Not starting: web is being rolled out by alice@ops (AWX job 7) since" in result.stdout, result.stdout[-3000:]
        assert "rollout_lock_force=true" in result.stdout
        after = rollout_snapshot(host_for)
        assert without_volatile(after) == without_volatile(before)
        # alice still holds it on both LBs.
        for lb in LBS:
            assert "alice@ops" in host_for(lb).file("/var/lib/fleet-rollout/web/lock.json").content_string
    finally:
        ansible_lb(dict(holder, state="released"))


def test_a_stale_lock_is_broken_only_when_asked(host_for):
    holder = {"service": "web", "owner": "bob@gone", "ttl": 3600}
    assert ansible_lb(holder).returncode == 0
    try:
        live = json.loads(host_for(APPS[0]).file("/opt/sample-app/release-state.json").content_string)
        version = live["slots"]["main"]["version"]
        # Nothing to roll out (every host is on this version), so only the lock is at stake.
        result = playbook("fleet.rollout.ramped", dict(WEB.extra_vars, rollout_version=version, rollout_lock_force=True),
                          "-e", VARS_FILE)
        assert result.returncode == 0, result.stdout[-3000:]
        assert "Took over the lock of bob@gone on %s (rollout_lock_force)" % LBS[0] in result.stdout
        for lb in LBS:
            assert not host_for(lb).file("/var/lib/fleet-rollout/web/lock.json").exists
    finally:
        ansible_lb(dict(holder, state="released", force=True))


FAIL_FILE = "/opt/sample-app-fail-health"


@pytest.fixture(scope="module")
def one_host_fails():
    """Batch "50%" where one host of the first batch fails its gate (its /healthz answers 503 while a file
    exists on it) and the other passes: over a budget of 0, the batch fails as a whole."""
    reset_app("2.0.0")
    docker("exec", APPS[1], "touch", FAIL_FILE)
    try:
        return run_under_traffic(WEB, "ramped", {
            "rollout_version": "1.0.0", "ramped_batches": "50%", "release_health_timeout": 5,
            "release_environment": {"SAMPLE_APP_PORT": "8080", "SAMPLE_APP_DATA_DIR": "data",
                                    "SAMPLE_APP_FAIL_FILE": FAIL_FILE},
        }, report=True)
    finally:
        docker("exec", APPS[1], "rm", "-f", FAIL_FILE)


def test_a_failed_batch_goes_back_whole_without_a_failed_request(one_host_fails, host_for):
    run = one_host_fails
    assert run.rc != 0
    assert "stopped in batch 1 of 2: 1 host(s) failed, the failure budget is 0" in run.output, run.output[-3000:]
    assert "%s: fleet.rollout.release: sample-app 1.0.0 failed on %s" % (APPS[1], APPS[1]) in run.output
    # The host that passed its gate went back too: the whole batch is on its previous release.
    assert "Back on the previous release: %s, %s." % (APPS[0], APPS[1]) in run.output
    for app in APPS:
        assert json.loads(host_for(app).file("/opt/sample-app/release-state.json").content_string)["slots"]["main"][
            "version"] == "2.0.0"
    # Users never saw 1.0.0 (the batch was out of rotation from its drain to its rollback) nor a failure,
    # and every host is back in rotation.
    assert run.failed == [] and {r["version"] for r in run.records} == {"2.0.0"}
    for lb in LBS:
        states = {line.split()[3]: line.split()[5:8] for line in haproxy_cli(host_for(lb), "show servers state be_web_main")
                  .splitlines()[2:] if line.strip()}
        assert states == {app: ["2", "0", "100"] for app in APPS}, states
