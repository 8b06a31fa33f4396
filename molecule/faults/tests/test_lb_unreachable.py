"""Fault: an LB that stops answering in the middle of a ramped rollout (its container paused in batch 1),
under the probe's traffic through both LBs.

The run must stop with a line naming that LB, put every host it took out back into rotation on the LB
that still answers, record the run there and give its lock back there; once the LB answers again, a
plain rerun (no rollout_lock_force) takes over the lock the dead run left on it and completes."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass

import pytest

from labtest import assert_lbs_agree_unlocked, haproxy_servers, lab_hosts, lb_views, load_json
from rollout_run import LAB_SERVICES, Run, docker, playbook, reset_app, run_under_traffic

APPS = lab_hosts("app")
LBS = lab_hosts("lb")
WEB = LAB_SERVICES["haproxy"]
RUN = dict(WEB.extra_vars, rollout_version="2.0.0", ramped_batches=1, ramped_max_unavailable=1,
           # A batch long enough to be caught in: the health gate takes 3 s.
           release_health_successes=4, release_health_interval=1,
           # How long a step (and the cleanup) waits on the paused LB before naming it: short, for a short test.
           lb_step_timeout=10)


@dataclass
class Fault:
    stopped: Run
    paused_at: float
    lb1_servers: dict
    lb1_lock: bool
    lb1_last: dict
    rerun: subprocess.CompletedProcess
    servers_after: dict
    views_after: dict


@pytest.fixture(scope="module")
def fault(host_for):
    reset_app("1.0.0")
    lb1, lb2 = LBS

    def pause_lb2_in_batch_1():
        # Batch 1 has begun once lb1 drains a server.
        deadline = time.time() + 120
        while time.time() < deadline:
            if any(not state.startswith("UP") for state in haproxy_servers(lb1).values()):
                pausing = time.time()  # lb2 freezes between this and the command's return
                docker("pause", lb2)
                return pausing
            time.sleep(0.2)
        return 0.0

    def left_on_lb1_then_unpause_lb2():
        # What the stopped run left on the LB that answers, read before the rerun and before lb2 is back.
        try:
            return (haproxy_servers(lb1), host_for(lb1).file("/var/lib/fleet-rollout/web/lock.json").exists,
                    load_json(host_for(lb1), "/var/lib/fleet-rollout/web/state.json")["history"][-1])
        finally:
            docker("unpause", lb2)

    try:
        stopped = run_under_traffic(WEB, "ramped", RUN, during=pause_lb2_in_batch_1, during_after_s=0,
                                    after=left_on_lb1_then_unpause_lb2, report=True)
    finally:
        docker("unpause", lb2)
    # The rerun only has to finish (and take the lock over): two hosts a batch and a quick gate, a shorter suite.
    rerun = playbook("fleet.rollout.ramped", dict(RUN, ramped_batches=2, release_health_successes=1),
                     "-e", "@molecule/resources/strategy.vars.yml")
    after = {lb: haproxy_servers(lb) for lb in LBS}
    return Fault(stopped, stopped.during or 0.0, *stopped.after, rerun, after, lb_views())


def failure_line(output: str) -> str:
    """The message the run failed with: its last fatal task's msg, on one line."""
    last = output.rsplit("fatal: [", 1)[-1].split("PLAY RECAP", 1)[0]
    return " ".join(last.split())


def test_the_run_stops_naming_the_lb_it_cannot_reach(fault):
    assert fault.paused_at, "batch 1 never began: " + fault.stopped.output[-3000:]
    assert fault.stopped.rc != 0, fault.stopped.output[-3000:]
    line = failure_line(fault.stopped.output)
    # The step that met the paused LB, and the cleanup, both name it.
    assert "could not reach LB %s while draining" % LBS[1] in line or \
        "could not reach LB %s while putting" % LBS[1] in line, line
    assert "Could not reach %s" % LBS[1] in line and "%s cleaned up" % LBS[0] in line, line
    assert "deserialization" not in line, line


def test_users_of_the_lb_that_answers_lost_no_request(fault):
    """Allowance: the requests sent to the paused LB (they wait on it, and may time out); through the LB
    that answers, not one fails while the run stops and cleans up."""
    through = {lb: [r for r in fault.stopped.records if "//%s:" % lb in r["target"]] for lb in LBS}
    print("LB paused mid-batch: %s; through %s %d requests, %d failed; through %s (paused) %d, %d failed" % (
        fault.stopped.summary(), LBS[0], len(through[LBS[0]]), sum(r in fault.stopped.failed for r in through[LBS[0]]),
        LBS[1], len(through[LBS[1]]), sum(r in fault.stopped.failed for r in through[LBS[1]])))
    assert len(through[LBS[0]]) > 0 and len(through[LBS[0]]) + len(through[LBS[1]]) == len(fault.stopped.records)
    assert not [r for r in fault.stopped.failed if r in through[LBS[0]]], fault.stopped.failed[:5]
    # The failures there are: requests to the paused LB, in flight on it when it froze (a slow one takes 2 s)
    # or sent while it was frozen.
    early = [r for r in fault.stopped.failed
             if r["t"] + (2.0 if r["path"].startswith("/slow") else 0.0) + 0.5 < fault.paused_at]
    assert not early, (fault.paused_at, early[:5])


def test_the_lb_that_answers_has_every_host_back_in_rotation_and_no_lock(fault):
    assert fault.lb1_servers and set(fault.lb1_servers.values()) == {"UP/100"}, fault.lb1_servers
    assert not fault.lb1_lock


def test_the_lb_that_answers_recorded_the_stopped_run(fault):
    assert fault.lb1_last["strategy"] == "ramped" and fault.lb1_last["outcome"] == "stopped", fault.lb1_last
    assert fault.lb1_last["version"] == "2.0.0"


def test_a_rerun_without_force_takes_over_the_dead_runs_lock_and_completes(fault, host_for):
    out = " ".join(fault.rerun.stdout.split())
    assert fault.rerun.returncode == 0, out[-4000:]
    assert "Took over the lock of" in out and "is no longer running" in out, out[-3000:]
    for lb in LBS:
        assert set(fault.servers_after[lb].values()) == {"UP/100"}, fault.servers_after
    assert_lbs_agree_unlocked(fault.views_after)  # no lock left, every LB the same
    for app in APPS:
        assert load_json(host_for(app), "/opt/sample-app/release-state.json")["slots"]["main"]["version"] == "2.0.0"
