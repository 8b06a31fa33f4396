"""Fault: a ramped rollout interrupted (SIGINT, as Ctrl-C or an AWX cancel sends it) between the drain
of its first batch and the batch's return to rotation, under live traffic.

Nothing of the run's own cleanup runs after SIGINT: the batch is left drained on both LBs and the lock
is held by a run that is gone. Users lose nothing (the drained host has no request left). A plain rerun
from the same controller takes the lock over, naming the dead run, puts the drained host back and
finishes, again without a failed request; then nothing is left drained, in MAINT or locked.

Before the rerun one host not updated yet also loses its release state file (release-state.json): the
live link still says which release runs, so the rerun goes on and rewrites the file (the same rerun
proves both; a second rollout of its own would only repeat the first one's asserts)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass

import pytest

from labtest import (LAB_INVENTORY, PROJECT, assert_lbs_agree_unlocked, haproxy_servers, haproxy_stat, lab_hosts, lb_views,
                     live_version, load_json, rollout_locks)
from rollout_run import LAB_SERVICES, Run, docker, reset_app, run_under_traffic

APPS = lab_hosts("app")
LBS = lab_hosts("lb")
WEB = LAB_SERVICES["haproxy"]
RUN = {"rollout_version": "2.0.0", "ramped_batches": 1}
# The host whose release state file goes missing before the rerun: one the interrupted run never reached.
LOST_STATE = APPS[2]
STATE = "/opt/sample-app/release-state.json"
HOLD_HOOK = os.path.join(PROJECT, "molecule", "resources", "hold_hook.yml")


def drained_everywhere() -> str | None:
    """The app host drained on every LB with no request left on it, if any."""
    stats = [haproxy_stat(lb) for lb in LBS]
    for app in APPS:
        if all(stat[app]["status"] == "DRAIN" and stat[app]["scur"] == "0" for stat in stats):
            return app
    return None


def interrupt_once_drained() -> tuple[str, float]:
    """SIGINT to the ansible-playbook process of this lab once a host is drained on every LB."""
    deadline = time.time() + 120
    host = drained_everywhere()
    while host is None:
        assert time.time() < deadline, "no host was drained on every LB within 120 s"
        time.sleep(0.2)
        host = drained_everywhere()
    pattern = "ansible-playbook fleet.rollout.ramped -i %s " % LAB_INVENTORY
    pid = subprocess.run(["pgrep", "-o", "-f", pattern], capture_output=True, text=True, check=True).stdout.split()[0]
    os.kill(int(pid), signal.SIGINT)
    return host, time.time()


@dataclass
class Interrupted:
    run: Run
    host: str
    left: dict
    locks: dict
    rerun: Run
    after: dict
    versions_after: dict
    views_after: dict


@pytest.fixture(scope="module")
def interrupted():
    reset_app("1.0.0")
    # Each host waits 6 s before its switch (hold_hook.yml): the interrupt lands between the first batch's drain
    # and its return to rotation, however slow the machine is.
    run = run_under_traffic(WEB, "ramped", dict(RUN, release_hooks={"before_activate": [HOLD_HOOK]}, lab_hold_hosts=APPS),
                            during=interrupt_once_drained, during_after_s=0, report=True)
    assert run.during, run.output[-3000:]
    host, _at = run.during
    # The run is gone; give HAProxy a moment so the states read are settled ones.
    time.sleep(1)
    left = {lb: haproxy_servers(lb) for lb in LBS}
    held = rollout_locks()
    assert host != LOST_STATE and live_version(LOST_STATE) == "1.0.0"
    assert docker("exec", LOST_STATE, "rm", "-f", STATE).returncode == 0
    # The rerun's batch size is its own (two hosts at a time: what it proves does not depend on it).
    rerun = run_under_traffic(WEB, "ramped", dict(RUN, ramped_batches=2), report=True)
    return Interrupted(run, host, left, held, rerun, {lb: haproxy_servers(lb) for lb in LBS},
                       {app: live_version(app) for app in APPS}, lb_views())


def test_the_interrupted_run_stops_and_users_lose_nothing(interrupted):
    run = interrupted.run
    print("interrupted: %s" % run.summary())
    assert run.rc != 0, run.output[-3000:]
    assert len(run.records) > 0 and not run.failed, run.summary()


def test_it_leaves_the_batch_drained_and_its_lock_as_documented(interrupted):
    for lb in LBS:
        assert interrupted.left[lb][interrupted.host].startswith("DRAIN"), interrupted.left
        others = {app: state for app, state in interrupted.left[lb].items() if app != interrupted.host}
        assert set(others.values()) == {"UP/100"}, interrupted.left
    assert interrupted.locks == {lb: True for lb in LBS}


def test_a_rerun_takes_the_lock_over_and_leaves_nothing_drained_or_locked(interrupted, host_for):
    rerun = interrupted.rerun
    print("rerun: %s" % rerun.summary())
    out = rerun.said
    assert rerun.rc == 0, out[-4000:]
    assert "Took over the lock of" in out and "is no longer running" in out, out[-3000:]
    assert len(rerun.records) > 0 and not rerun.failed, rerun.summary()
    assert interrupted.after == {lb: {app: "UP/100" for app in APPS} for lb in LBS}, interrupted.after
    assert set(interrupted.versions_after.values()) == {"2.0.0"}, interrupted.versions_after
    last = load_json(host_for(LBS[0]), "/var/lib/fleet-rollout/web/state.json")["history"][-1]
    assert last["outcome"] == "succeeded", last
    assert_lbs_agree_unlocked(interrupted.views_after)


def test_a_missing_state_file_is_rewritten_and_the_rollout_finishes(interrupted):
    """The host that lost its release-state.json before the rerun was updated like the others, and its file is
    back, naming the release."""
    assert interrupted.rerun.rc == 0, interrupted.rerun.output[-3000:]
    assert interrupted.versions_after[LOST_STATE] == "2.0.0", interrupted.versions_after
