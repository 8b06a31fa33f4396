"""Capacity a ramped rollout finds missing, or loses on the way, behind HAProxy under live traffic.

- An operator holds one host in MAINT and another host's service is down (HAProxy sees it DOWN): the
  rollout leaves the MAINT host alone (not updated, still in MAINT), updates the DOWN one first, and
  never takes out the hosts left in rotation at once; with ``ramped_max_unavailable`` leaving no room
  beside the held host, it is refused before any change, naming the variable and the host.
- A host stops answering in its batch (its container paused once drained): it counts against the
  failure budget (1 here), the rollout goes on with the other hosts, the host stays out of rotation on
  every LB, and a rerun once it answers again finishes it.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass

import pytest

from labtest import (HAPROXY_CLI, PROJECT, assert_lbs_agree_unlocked, haproxy_servers as servers, haproxy_stat as stat, lab_hosts,
                     lb_views, live_version, rollout_locks, wait_for)
from rollout_run import LAB_SERVICES, Run, docker, playbook, reset_app, run_under_traffic

APPS = lab_hosts("app")
LBS = lab_hosts("lb")
WEB = LAB_SERVICES["haproxy"]
HELD, DOWN, LOST = APPS[1], APPS[2], APPS[1]
STATE_FILE = "/var/lib/fleet-rollout/web/state.json"
HOLD_HOOK = os.path.join(PROJECT, "molecule", "resources", "hold_hook.yml")


def runtime(lb: str, command: str) -> None:
    result = docker("exec", lb, "python3", "-c", HAPROXY_CLI, "/run/haproxy/admin.sock", command)
    assert result.returncode == 0, result.stderr


@dataclass
class Capacity:
    run: Run
    servers_after: dict
    versions_after: dict
    refused: object
    views: dict


@pytest.fixture(scope="module")
def capacity():
    reset_app("1.0.0")
    for lb in LBS:
        runtime(lb, "set server be_web_main/%s state maint" % HELD)
    docker("exec", DOWN, "systemctl", "stop", "sample-app")
    try:
        wait_for(lambda: all(stat(lb)[DOWN]["status"].startswith("DOWN") for lb in LBS), what="%s DOWN" % DOWN)
        refused = playbook("fleet.rollout.ramped", dict(WEB.extra_vars, rollout_version="2.0.0", ramped_max_unavailable=1),
                           "-e", "@molecule/resources/strategy.vars.yml")
        run = run_under_traffic(WEB, "ramped", {"rollout_version": "2.0.0", "ramped_batches": 1}, report=True)
        after = {lb: servers(lb) for lb in LBS}
        versions = {app: live_version(app) for app in APPS}
        views = lb_views()
    finally:
        for lb in LBS:
            runtime(lb, "set server be_web_main/%s state ready" % HELD)
        docker("exec", DOWN, "systemctl", "start", "sample-app")
    return Capacity(run, after, versions, refused, views)


def test_no_room_beside_a_held_host_is_refused_before_any_change(capacity):
    out = " ".join(capacity.refused.stdout.split())
    assert capacity.refused.returncode != 0, out[-2000:]
    assert "ramped_max_unavailable: 1 host is out of rotation already (%s)" % HELD in out, out[-2000:]
    assert HELD in out and "Take the rollout lock" not in out, out[-2000:]


def test_the_held_host_stays_in_maint_and_is_not_updated(capacity):
    run = capacity.run
    assert run.rc == 0, run.output[-4000:]
    for lb in LBS:
        assert capacity.servers_after[lb][HELD].startswith("MAINT"), capacity.servers_after
    assert capacity.versions_after[HELD] == "1.0.0", capacity.versions_after
    out = " ".join(run.output.split())
    assert "held in MAINT by an operator (not updated, left in MAINT): %s" % HELD in out, out[-3000:]
    assert "1 held in MAINT by an operator (not updated: %s)" % HELD in out, out[-3000:]
    assert_lbs_agree_unlocked(capacity.views)


def test_the_down_host_is_updated_first_and_every_other_host_is_back_up(capacity):
    out = " ".join(capacity.run.output.split())
    assert "DOWN on an LB now (updated first): %s" % DOWN in out, out[-3000:]
    batches = out.split("batch(es): ", 1)[1].split('"', 1)[0]
    assert batches.split(" | ")[0] == DOWN, batches
    for app in APPS:
        if app != HELD:
            assert capacity.versions_after[app] == "2.0.0", capacity.versions_after
            for lb in LBS:
                assert capacity.servers_after[lb][app] == "UP/100", capacity.servers_after


def test_no_request_failed_while_capacity_was_short(capacity):
    run = capacity.run
    assert len(run.records) > 0 and not run.failed, run.summary()
    # The held host got nothing, and the LBs never had more than the held one and a batch out at once.
    assert not any(r["host"] == HELD for r in run.records)
    assert max(run.out_of_rotation().values()) <= 3, run.out_of_rotation()


@dataclass
class Lost:
    run: Run
    paused_at: float
    servers_during: dict
    last: dict
    rerun: object
    servers_after: dict
    versions_after: dict
    locks_during: dict
    views_after: dict


@pytest.fixture(scope="module")
def lost(capacity):  # after the capacity runs (they share the fleet)
    reset_app("1.0.0")

    def pause_once_drained():
        # In rotation first, then drained on every LB (DRAIN, no session left): nothing of users' is on it
        # when it stops answering.
        wait_for(lambda: all(stat(lb)[LOST]["status"] == "UP" for lb in LBS), timeout=60, what="%s UP" % LOST)
        wait_for(lambda: all(stat(lb)[LOST]["status"] == "DRAIN" and stat(lb)[LOST]["scur"] == "0" for lb in LBS),
                 timeout=120, what="%s drained" % LOST)
        docker("pause", LOST)
        return time.time()

    try:
        # The host waits 6 s before its switch (hold_hook.yml): the pause lands in its batch, not after it.
        run = run_under_traffic(WEB, "ramped", {"rollout_version": "2.0.0", "ramped_batches": 1, "ramped_failure_budget": 1,
                                                "ramped_host_timeout": 5, "release_health_timeout": 10,
                                                "release_hooks": {"before_activate": [HOLD_HOOK]}, "lab_hold_hosts": [LOST]},
                                during=pause_once_drained, during_after_s=0, report=True)
        during = {lb: servers(lb) for lb in LBS}
        locks_during = rollout_locks()
        last = json.loads(docker("exec", LBS[0], "cat", STATE_FILE).stdout)["history"][-1]
    finally:
        docker("unpause", LOST)
    rerun = playbook("fleet.rollout.ramped", dict(WEB.extra_vars, rollout_version="2.0.0"),
                     "-e", "@molecule/resources/strategy.vars.yml")
    after = {lb: servers(lb) for lb in LBS}
    return Lost(run, run.during or 0.0, during, last, rerun, after, {app: live_version(app) for app in APPS}, locks_during,
                lb_views())


def test_a_host_that_stops_answering_counts_against_the_budget_and_the_rollout_goes_on(lost):
    assert lost.paused_at, lost.run.output[-3000:]
    out = " ".join(lost.run.output.split())
    assert lost.run.rc == 0, out[-4000:]
    assert "1 failed (budget 1)" in out and "%s, which stopped answering and stay out of rotation" % LOST in out, out[-3000:]
    assert lost.last["outcome"] == "succeeded" and lost.last["failed"] == [LOST], lost.last
    assert "stopped answering" in lost.last["hosts"][LOST]["reason"], lost.last["hosts"][LOST]
    assert lost.locks_during == {lb: False for lb in LBS}, lost.locks_during


def test_the_host_that_stopped_answering_stays_out_of_rotation_and_the_others_are_up(lost):
    for lb in LBS:
        assert not lost.servers_during[lb][LOST].startswith("UP"), lost.servers_during
        for app in APPS:
            if app != LOST:
                assert lost.servers_during[lb][app] == "UP/100", lost.servers_during


def test_no_request_failed_when_the_host_stopped_answering(lost):
    assert len(lost.run.records) > 0 and not lost.run.failed, lost.run.summary()


def test_a_rerun_once_it_answers_finishes_it(lost):
    out = " ".join(lost.rerun.stdout.split())
    assert lost.rerun.returncode == 0, out[-4000:]
    assert set(lost.versions_after.values()) == {"2.0.0"}, lost.versions_after
    for lb in LBS:
        assert set(lost.servers_after[lb].values()) == {"UP/100"}, lost.servers_after
    assert_lbs_agree_unlocked(lost.views_after)
