"""Fault: an app host's release state file (release-state.json) corrupt when a ramped rollout starts, under
live traffic.

The run stops before any change, naming the host and the file (the read keeps its content out of the
log but says what is wrong); nothing is drained, locked or updated. A missing file is the other case:
test_interrupted's rerun starts with one host's file gone."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from labtest import lab_hosts, rollout_snapshot, without_volatile
from rollout_run import LAB_SERVICES, Run, docker, reset_app, run_under_traffic

APPS = lab_hosts("app")
WEB = LAB_SERVICES["haproxy"]
HOST = APPS[2]
STATE = "/opt/sample-app/release-state.json"
RUN = {"rollout_version": "2.0.0", "ramped_batches": 1}


@dataclass
class Corrupt:
    run: Run
    before: dict
    after: dict


@pytest.fixture(scope="module")
def corrupt(host_for):
    reset_app("1.0.0")
    saved = docker("exec", HOST, "cat", STATE).stdout
    assert docker("exec", HOST, "sh", "-c", "printf '{broken' > %s" % STATE).returncode == 0
    try:
        before = rollout_snapshot(host_for)
        run = run_under_traffic(WEB, "ramped", RUN, report=True)
        after = rollout_snapshot(host_for)
    finally:
        docker("exec", "-i", HOST, "sh", "-c", "cat > %s" % STATE, input=saved)
    return Corrupt(run, before, after)


def test_a_corrupt_state_file_stops_the_run_before_any_change_naming_host_and_file(corrupt):
    run = corrupt.run
    print("corrupt state: %s" % run.summary())
    out = run.said
    assert run.rc != 0, out[-3000:]
    assert "%s/release-state.json is not JSON" % "/opt/sample-app" in out and HOST in out, out[-3000:]
    assert without_volatile(corrupt.after) == without_volatile(corrupt.before)
    assert len(run.records) > 0 and not run.failed, run.summary()
