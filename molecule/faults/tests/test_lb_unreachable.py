"""Fault: an LB that stops answering in the middle of a ramped rollout (its container paused in batch 1).

The run must stop with a line naming that LB, put every host it took out back into rotation on the LB
that still answers, record the run there and give its lock back there; once the LB answers again, a
plain rerun (no rollout_lock_force) takes over the lock the dead run left on it and completes."""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass

import pytest

from labtest import PROJECT, LAB_INVENTORY, haproxy_servers, lab_hosts, load_json
from rollout_run import LAB_SERVICES, docker, env, playbook, reset_app

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
    stopped: subprocess.CompletedProcess
    paused_at: float
    lb1_servers: dict
    lb1_lock: bool
    lb1_last: dict
    rerun: subprocess.CompletedProcess
    servers_after: dict


@pytest.fixture(scope="module")
def fault(host_for):
    reset_app("1.0.0")
    lb1, lb2 = LBS
    command = ["ansible-playbook", "fleet.rollout.ramped", "-i", LAB_INVENTORY, "-e", json.dumps(RUN),
               "-e", "@molecule/resources/strategy.vars.yml"]
    run = subprocess.Popen(command, cwd=PROJECT, env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    paused_at = 0.0
    try:
        deadline = time.time() + 120
        # Batch 1 has begun once lb1 drains a server.
        while time.time() < deadline and run.poll() is None:
            if any(not state.startswith("UP") for state in haproxy_servers(lb1).values()):
                docker("pause", lb2)
                paused_at = time.time()
                break
            time.sleep(0.2)
        output = run.communicate(timeout=600)[0]
        stopped = subprocess.CompletedProcess(command, run.returncode, output, "")
        lb1_servers = haproxy_servers(lb1)
        lb1_lock = host_for(lb1).file("/var/lib/fleet-rollout/web/lock.json").exists
        lb1_last = load_json(host_for(lb1), "/var/lib/fleet-rollout/web/state.json")["history"][-1]
    finally:
        docker("unpause", lb2)
    rerun = playbook("fleet.rollout.ramped", RUN, "-e", "@molecule/resources/strategy.vars.yml")
    after = {lb: haproxy_servers(lb) for lb in LBS}
    return Fault(stopped, paused_at, lb1_servers, lb1_lock, lb1_last, rerun, after)


def failure_line(output: str) -> str:
    """The message the run failed with: its last fatal task's msg, on one line."""
    last = output.rsplit("fatal: [", 1)[-1].split("PLAY RECAP", 1)[0]
    return " ".join(last.split())


def test_the_run_stops_naming_the_lb_it_cannot_reach(fault):
    assert fault.paused_at, "batch 1 never began: " + fault.stopped.stdout[-3000:]
    assert fault.stopped.returncode != 0, fault.stopped.stdout[-3000:]
    line = failure_line(fault.stopped.stdout)
    # The step that met the paused LB, and the cleanup, both name it.
    assert "could not reach LB %s while draining" % LBS[1] in line or \
        "could not reach LB %s while putting" % LBS[1] in line, line
    assert "Could not reach %s" % LBS[1] in line and "%s cleaned up" % LBS[0] in line, line
    assert "deserialization" not in line, line


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
        assert not host_for(lb).file("/var/lib/fleet-rollout/web/lock.json").exists
    for app in APPS:
        assert load_json(host_for(app), "/opt/sample-app/release-state.json")["slots"]["main"]["version"] == "2.0.0"
