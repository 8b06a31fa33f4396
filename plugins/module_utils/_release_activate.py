# Copyright: fleet.rollout contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Activate an installed release on a host in one round trip, and undo it when it fails.

The release role used to do this in about fifteen tasks (write the environment file and the unit,
switch the link in two commands, restart, gate, compose and write the release state, remove old
releases, and as many again to roll back). Inside a rollout batch, while the host is out of rotation,
each task is a round trip; here the same steps run on the host, so a batch costs the restart and the
health gate and little else. What is decided and recorded is the same: outcome, history, previous
release, keep-N, and a failed activation puts back the link, the files and the service as they were.

Standard library only: it runs on the managed node. systemctl and the clock are passed in, so the
decisions can be unit-tested; the real thing runs in the release and strategy scenarios.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import time

from ansible_collections.fleet.rollout.plugins.module_utils._atomic_file import read_text, write_atomic
from ansible_collections.fleet.rollout.plugins.module_utils._health_gate import GateFailed, wait_healthy
from ansible_collections.fleet.rollout.plugins.module_utils._release_info import read_releases, read_state


class ActivationFailed(Exception):
    """The activation failed and was undone (as far as it could be); ``result`` says what happened."""

    def __init__(self, message: str, result: dict):
        super().__init__(message)
        self.result = result


def utc_stamp(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def switch_link(link: str, target: str) -> None:
    """Point ``link`` at ``target`` in one rename(2): readers see the old or the new release, never none."""
    staging = link + ".next"
    if os.path.lexists(staging):
        os.unlink(staging)
    os.symlink(target, staging)
    os.replace(staging, link)


def write_file(path: str, content: str, mode: int) -> None:
    write_atomic(path, content, mode=mode)
    # write_atomic keeps an existing file's mode; the role's files have a fixed one (the environment holds secrets).
    os.chmod(path, mode)
    if os.geteuid() == 0:
        os.chown(path, 0, 0)


def previous_after(slot_state: dict, target: str, live_before: str, switched: bool, rollback: bool) -> str | None:
    """The slot's previous release once ``target`` is live. After a rollback it is what was live before the
    release rolled back to, so a second rollback steps further back (as ansistrano does)."""
    if not switched:
        return slot_state.get("previous")
    if rollback:
        lineage = [entry for entry in slot_state.get("history", [])
                   if entry.get("version") == target and entry.get("outcome") in ("deployed", "rolled_back")]
        return lineage[-1].get("previous") if lineage else None
    return live_before or None


def compose_state(state: dict, service: str, root: str, slot: str, releases_dir: str, unit: str, current: str,
                  target: str, target_sha256: str, live_before: str, live_after: str, previous: str | None,
                  outcome: str, history_size: int, now: float) -> dict:
    """The release state file after this run: the slot's live release, its previous one and its history."""
    slot_state = (state.get("slots") or {}).get(slot) or {}
    stamp = utc_stamp(now)
    history = list(slot_state.get("history") or [])
    if outcome:
        history.append({"time": stamp, "version": target, "outcome": outcome, "from": live_before or None,
                        "previous": previous})
    new_slot = {
        "version": live_after,
        "previous": previous,
        "path": "%s/%s" % (releases_dir, live_after),
        "sha256": target_sha256 if live_after == target else slot_state.get("sha256"),
        "unit": unit,
        "current": current,
        "since": slot_state.get("since", stamp) if slot_state.get("version", "") == live_after else stamp,
        "history": history[-history_size:],
    }
    slots = dict(state.get("slots") or {})
    slots[slot] = new_slot
    return dict(state, service=service, root=root, slots=slots)


def releases_to_remove(releases: dict, keep: int, protected: set[str]) -> list[str]:
    """Installed releases beyond the ``keep`` newest (by the time their marker was written), except the
    protected ones (live or previous in any slot, and this run's)."""
    installed = sorted((name for name, info in releases.items() if info.get("sha256") and not name.startswith(".")),
                       key=lambda name: releases[name].get("mtime") or 0, reverse=True)
    return [name for name in installed[keep:] if name not in protected]


def protected_releases(state: dict, *more: str) -> set[str]:
    slots = (state.get("slots") or {}).values()
    return {name for name in [s.get("version") for s in slots] + [s.get("previous") for s in slots] + list(more) if name}


def linked_releases(root: str, releases_dir: str) -> set[str]:
    """The releases a live link points at (``current`` and every slot's): protected even when the state file
    that names them is missing, so that cleaning one slot never removes another slot's live release."""
    releases = os.path.realpath(releases_dir)
    links = [os.path.join(root, "current")] + glob.glob(os.path.join(glob.escape(root), "slots", "*", "current"))
    return {os.path.basename(target) for target in (os.path.realpath(link) for link in links if os.path.islink(link))
            if os.path.dirname(target) == releases}


class Activation:
    """One activation of ``version`` in a slot (see the module's documentation for every parameter)."""

    def __init__(self, params: dict, systemctl, now=time.time, gate=wait_healthy):
        self.p = params
        self.systemctl = systemctl
        self.now = now
        self.gate = gate
        self.releases_dir = params["releases_dir"]
        self.live_before = params.get("live_before") or ""
        self.target = params["version"]
        self.steps: list[str] = []

    # --- host operations -------------------------------------------------------------------------------
    def _systemctl(self, *args: str) -> None:
        rc, out, err = self.systemctl(list(args))
        if rc != 0:
            raise RuntimeError("systemctl %s: %s" % (" ".join(args), (err or out or "exit %d" % rc).strip()))

    def _active(self) -> bool:
        rc, out, _err = self.systemctl(["is-active", self.p["unit"]])
        return rc == 0 and out.strip() == "active"

    def _gate(self) -> dict:
        health = self.p["health"]
        return self.gate(health["url"], successes=health["successes"], timeout=health["timeout"],
                         interval=health["interval"])

    # --- the run ---------------------------------------------------------------------------------------
    def plan(self) -> dict:
        """What this run changes: files whose content differs, the link, and how the service (re)starts."""
        files = [f for f in self.p.get("files") or [] if read_text(f["path"]) != f["content"]]
        switch = self.live_before != self.target
        config_changed = bool(files)
        unit_changed = any(f.get("unit") for f in files)
        if config_changed:
            action = "restart"
        elif switch:
            action = "reload" if self.p.get("restart_mode") == "reload" and self._active() else "restart"
        else:
            action = "start"
        return {"files": files, "switch": switch, "config_changed": config_changed, "daemon_reload": unit_changed,
                "action": action}

    def _target_dir(self, version: str) -> str:
        return "%s/%s" % (self.releases_dir, version)

    def run(self, check_mode: bool = False) -> dict:
        plan = self.plan()
        rollback = bool(self.p.get("rollback"))
        outcome = ("rolled_back" if rollback else "deployed") if plan["switch"] else (
            "reconfigured" if plan["config_changed"] else "")
        result = {"changed": plan["switch"] or plan["config_changed"], "outcome": outcome or "unchanged",
                  "switched": plan["switch"], "files_changed": [f["path"] for f in plan["files"]],
                  "action": plan["action"], "removed": [], "steps": self.steps}
        if check_mode:
            result.update(version=self.target, previous=None, state=None, gate=None)
            return result
        if not os.path.isdir(self._target_dir(self.target)):
            raise ActivationFailed("%s is not installed in %s on %s: install (stage) it first"
                                   % (self.target, self.releases_dir, self.p.get("host") or "the host"), result)
        originals = {f["path"]: read_text(f["path"]) for f in plan["files"]}
        try:
            self._apply(plan)
            gate = self._gate()
        except (GateFailed, RuntimeError, OSError) as exc:
            failed_step = self.steps[-1] if self.steps else "activation"
            raise self._undo(plan, originals, exc, failed_step, result) from exc
        started = plan["action"] == "start" and not plan["switch"]
        result["changed"] = result["changed"] or (started and "started" in self.steps)
        result["gate"] = gate
        recorded = self._record(outcome, plan["switch"], rollback)
        result["changed"] = result["changed"] or recorded.pop("state_written")
        result.update(recorded)
        return result

    def restore(self, error: str, failed_step: str) -> ActivationFailed:
        """Undo an activation that failed after this module's own run (an after_activate hook) or before it
        (a before_activate hook): ``files`` hold the content from before the run."""
        files = [f for f in self.p.get("files") or [] if read_text(f["path"]) != f["content"]]
        plan = {"files": files, "switch": self.live_before != self.target,
                "config_changed": bool(self.p.get("config_changed")), "daemon_reload": any(f.get("unit") for f in files),
                "action": "restart"}
        result = {"changed": True, "switched": False, "files_changed": [f["path"] for f in files], "steps": self.steps}
        return self._undo(plan, {f["path"]: f["content"] for f in files}, error, failed_step, result)

    def _apply(self, plan: dict) -> None:
        for spec in plan["files"]:
            self.steps.append("write %s" % spec["path"])
            write_file(spec["path"], spec["content"], int(spec.get("mode") or "0644", 8))
        if plan["daemon_reload"]:
            self.steps.append("systemctl daemon-reload")
            self._systemctl("daemon-reload")
        if plan["switch"]:
            self.steps.append("switch %s to %s" % (self.p["current_link"], self.target))
            switch_link(self.p["current_link"], self._target_dir(self.target))
        unit = self.p["unit"]
        if plan["action"] == "start":
            self.steps.append("start %s" % unit)
            if not self._active():
                self._systemctl("start", unit)
                self.steps.append("started")
        else:
            self.steps.append("%s %s" % (plan["action"], unit))
            self._systemctl(plan["action"], unit)
        self.steps.append("enable %s" % unit)
        self._systemctl("enable", unit)
        self.steps.append("health gate %s" % self.p["health"]["url"])

    def _record(self, outcome: str, switched: bool, rollback: bool, live_after: str | None = None,
                previous: str | None = None, use_previous: bool = False) -> dict:
        state_file = self.p["state_file"]
        state = read_state(state_file)
        slot_state = (state.get("slots") or {}).get(self.p["slot"]) or {}
        live_after = live_after or self.target
        if not use_previous:
            previous = previous_after(slot_state, self.target, self.live_before, switched, rollback)
        new_state = compose_state(
            state, self.p["service"], self.p["root"], self.p["slot"], self.releases_dir, self.p["unit"],
            self.p["current_link"], self.target, (self.p.get("sha256") or "").lower(), self.live_before, live_after,
            previous, outcome if outcome != "unchanged" else "", int(self.p.get("history_size") or 20), self.now())
        written = new_state != state
        if written:
            write_file(state_file, json.dumps(new_state, indent=2, sort_keys=True) + "\n", 0o644)
        removed = []
        keep = self.p.get("keep")
        if keep and outcome != "failed":
            releases = read_releases(self.releases_dir, self.p.get("marker") or ".release-sha256", [])
            protected = protected_releases(new_state, self.target, self.live_before) | linked_releases(
                self.p["root"], self.releases_dir)
            for name in releases_to_remove(releases, int(keep), protected):
                shutil.rmtree(os.path.join(self.releases_dir, name), ignore_errors=True)
                removed.append(name)
        return {"version": live_after, "previous": previous, "state": new_state, "removed": removed,
                "state_written": written}

    def _undo(self, plan: dict, originals: dict, error: Exception, failed_step: str, result: dict) -> ActivationFailed:
        """Put the slot back on what was live (link, files, service), gate it, record the failure."""
        can_go_back = plan["switch"] and bool(self.live_before)
        restore = bool(self.live_before) and (plan["switch"] or plan["config_changed"])
        regate = None
        undo_error = None
        if restore:
            try:
                for path, content in originals.items():
                    if content is not None:
                        spec = next(f for f in plan["files"] if f["path"] == path)
                        write_file(path, content, int(spec.get("mode") or "0644", 8))
                if plan["daemon_reload"]:
                    self._systemctl("daemon-reload")
                if can_go_back:
                    switch_link(self.p["current_link"], self._target_dir(self.live_before))
                self._systemctl("restart", self.p["unit"])
                regate = self._gate()
            except GateFailed as exc:
                regate = dict(exc.result, healthy=False, msg=str(exc))
            except (RuntimeError, OSError) as exc:
                undo_error = str(exc)
        removed = []
        state = read_state(self.p["state_file"])
        if self.p.get("remove_failed") and can_go_back and self.target not in protected_releases(state):
            shutil.rmtree(self._target_dir(self.target), ignore_errors=True)
            removed.append(self.target)
        slot_state = (state.get("slots") or {}).get(self.p["slot"]) or {}
        recorded = self._record("failed", False, False, live_after=self.live_before or self.target,
                                previous=slot_state.get("previous") if self.live_before else None, use_previous=True)
        healthy = bool(regate and regate.get("healthy")) and undo_error is None
        why = undo_error or (regate or {}).get("msg", "")
        if can_go_back:
            after = "rolled back to %s, %s" % (
                self.live_before, "which is healthy again" if healthy else "which is NOT healthy either: " + why)
        elif restore:
            after = ("the release did not change; its previous environment file and unit were put back and %s "
                     "restarted: %s" % (self.p["unit"], "healthy again" if healthy else "NOT healthy: " + why))
        elif self.live_before:
            after = "nothing had changed: %s was already on %s" % (self.p["unit"], self.target)
        else:
            after = "there is no previous release to go back to: %s stays on %s" % (self.p["unit"], self.target)
        message = 'fleet.rollout.release: %s %s failed on %s (slot %s) at "%s": %s -- %s' % (
            self.p["service"], self.target, self.p.get("host") or "the host", self.p["slot"], failed_step, error,
            after)
        recorded.pop("state_written")
        result.update(recorded, outcome="failed", changed=True, removed=removed, regate=regate,
                      back_healthy=healthy)
        return ActivationFailed(message, result)
