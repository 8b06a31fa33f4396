"""canary_analysis_mode: dry_run under live traffic: the bad release's errors are judged as they would be, the run
says when the canary would have been rolled back, and nothing is acted on - the canary stays at its last step,
waiting at the gate, until fleet.rollout.abort takes it back."""

from __future__ import annotations

import pytest

from labtest import lab_hosts, load_json
from rollout_run import LAB_SERVICES, playbook, reset_app, run_under_traffic

APPS = lab_hosts("app")
LBS = lab_hosts("lb")
CANARY = APPS[0]
WEB = LAB_SERVICES["haproxy"]
ERRORS = {"SAMPLE_APP_ERROR_RATE": "{{ '0.2' if release_version == '2.0.1-bad' else '0' }}",
          "SAMPLE_APP_LATENCY_MS": "0", "SAMPLE_APP_PORT": "8080", "SAMPLE_APP_DATA_DIR": "data"}


def live_version(host_for, host: str) -> str:
    return load_json(host_for(host), "/opt/sample-app/release-state.json")["slots"]["main"]["version"]


@pytest.fixture(scope="module")
def dry_run(host_for):
    reset_app("1.0.0")
    run = run_under_traffic(WEB, "canary", {
        "rollout_version": "2.0.1-bad", "release_environment": ERRORS, "canary_analysis_mode": "dry_run",
        "canary_steps": [5], "canary_interval": 8, "canary_min_samples": 20, "canary_promote": False,
        # Any failed canary request trips the hard rule: the look that first saw one names it.
        "canary_max_consecutive_errors": 1})
    event = load_json(host_for(LBS[0]), "/var/lib/fleet-rollout/web/state.json")["history"][-1]
    stayed = live_version(host_for, CANARY)
    aborted = playbook("fleet.rollout.abort", WEB.extra_vars, "-e", "@molecule/resources/strategy.vars.yml")
    return run, event, stayed, aborted


def test_the_dry_run_reports_when_the_canary_would_have_been_rolled_back(dry_run):
    run, event, _stayed, _aborted = dry_run
    assert run.rc == 0, run.output[-4000:]
    out = " ".join(run.output.split())
    assert "ANALYSIS IN DRY RUN" in out
    step = event["steps"][0]
    assert step["analysis_mode"] == "dry_run" and step["would_count_as"] == "fail", step
    # A look while the step ran would have failed the canary seconds into it, here on the hard rule (any failed
    # request, canary_max_consecutive_errors 1); the sequential test's looks are test_canary.py's bad release.
    assert step["would_fail_at"] is not None and step["would_fail_at"]["t"] - step["started"] < 8, step
    assert any("failed one after another (max_consecutive_errors 1) while the step ran" in reason
               for reason in step["would_fail_at"]["reasons"]), step
    assert "DRY RUN, not acted on: this step would have failed the canary" in out, out[-3000:]
    assert "DRY RUN of the analysis: the canary would have been rolled back at step 5" in out, out[-3000:]


def test_nothing_was_acted_on_until_the_abort(dry_run, host_for):
    run, event, stayed, aborted = dry_run
    assert event["outcome"] == "awaiting_promotion" and event["rolled_back"] == []
    assert stayed == "2.0.1-bad"
    # Still served at the step's share as the run ended.
    assert any(r["version"] == "2.0.1-bad" for r in run.records if r["t"] > run.ended - 5)
    assert aborted.returncode == 0, aborted.stdout[-3000:]
    assert {app: live_version(host_for, app) for app in APPS} == {app: "1.0.0" for app in APPS}
