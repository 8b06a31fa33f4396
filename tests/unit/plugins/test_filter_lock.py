"""lock_run_gone and the controller_run lookup, as playbooks use them: through Ansible's plugin loaders."""

from __future__ import annotations

import subprocess

from ansible.plugins.loader import filter_loader, lookup_loader

from ansible_collections.fleet.rollout.plugins.filter.lock import lock_run_gone


def me() -> dict:
    return lookup_loader.get("fleet.rollout.controller_run").run([], variables={})[0]


def holder(controller: dict | None) -> dict:
    """A holder as fleet.rollout.rollout_lock returns it."""
    info = {"strategy": "canary"}
    if controller is not None:
        info["controller"] = controller
    return {"owner": "ops@ctl", "started": 1700000000.0, "expires": 1700003600.0, "info": info}


def start_of(pid: int) -> int:
    with open("/proc/%d/stat" % pid, encoding="utf-8") as handle:
        return int(handle.read().rsplit(")", 1)[1].split()[19])


def test_lookup_returns_one_identity():
    found = lookup_loader.get("fleet.rollout.controller_run").run([], variables={})
    assert len(found) == 1
    assert {"machine_id", "boot_id", "pid_ns", "pid", "pid_start", "host"} == set(found[0])


def test_filter_is_registered():
    assert filter_loader.get("fleet.rollout.lock_run_gone").j2_function is lock_run_gone


def test_gone_and_live_runs():
    proc = subprocess.Popen(["sleep", "30"])
    try:
        lock = holder(dict(me(), pid=proc.pid, pid_start=start_of(proc.pid)))
        assert lock_run_gone(lock, me()) == {
            "gone": False, "why": "its run (pid %d on this controller) is still running" % proc.pid}
    finally:
        proc.kill()
        proc.wait()
    assert lock_run_gone(lock, me()) == {
        "gone": True, "why": "its run (pid %d on this controller) is no longer running" % proc.pid}


def test_without_a_lock_or_a_record_nothing_is_gone():
    assert lock_run_gone(None, me()) == {"gone": False, "why": "no lock is held"}
    assert lock_run_gone(holder(None), me()) == {
        "gone": False, "why": "the lock does not record which controller run took it"}
    assert lock_run_gone({"owner": "x", "info": None}, me())["gone"] is False
    assert lock_run_gone(holder({"pid": "1"}), None)["gone"] is False
