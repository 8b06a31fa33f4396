# Copyright: fleet.rollout contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One rollout of a service at a time: a lock with owner and expiry on the LB host.

``<state_dir>/<service>/lock.json`` holds who runs the rollout, since when
and until when the lock is valid. A lock past its expiry is stale: the next
rollout may take it over (and says so). A live lock held by someone else is
refused with the holder's name; ``force`` breaks it explicitly.
"""

from __future__ import annotations

import json
import os
import time

from ansible_collections.fleet.rollout.plugins.module_utils._atomic_file import read_text, write_atomic
from ansible_collections.fleet.rollout.plugins.module_utils._rollout_state import StateError, locked, state_path


class LockHeld(StateError):
    def __init__(self, message: str, holder: dict):
        super().__init__(message)
        self.holder = holder


def lock_path(state_dir: str, service: str) -> str:
    return os.path.join(os.path.dirname(state_path(state_dir, service)), "lock.json")


# A lock is for one rollout: a week is far longer than any, and bounds what a typo (or 1e12) can hold.
MAX_TTL = 7 * 24 * 3600.0


def _corrupt(reason: str) -> dict:
    return {"owner": "(corrupt lock file: %s)" % reason, "corrupt": reason}


def _is_time(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _read(path: str) -> dict | None:
    """The lock's holder; a file this module did not write whole is "corrupt" (never taken without force)."""
    text = read_text(path)
    if text is None:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return _corrupt("not JSON")
    if not isinstance(data, dict):
        return _corrupt("not a JSON object")
    if not isinstance(data.get("owner"), str) or not data["owner"]:
        return _corrupt("no owner")
    for key in ("expires", "started"):
        if not _is_time(data.get(key)):
            return _corrupt("%s is %s, not a time" % (key, json.dumps(data.get(key))))
    return data


def _when(epoch) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(epoch or 0)))


def converge(state_dir: str, service: str, state: str, owner: str, ttl: float = 3600.0, force: bool = False,
             info: dict | None = None, check_mode: bool = False, now=time.time, take_over: str | None = None) -> dict:
    """``state``: ``acquired`` (take or refresh), ``released`` (give back) or ``query`` (read only).
    ``take_over`` names a holder known to be gone: its lock is taken over, and only its (checked under the
    file lock, so a run that took the lock meanwhile is refused as usual)."""
    if state != "query" and not owner:
        raise StateError("owner must name who takes or gives back the lock, got an empty one")
    if not 0 < ttl <= MAX_TTL:
        raise StateError("ttl must be above 0 and at most %d seconds (7 days), got %g" % (MAX_TTL, ttl))
    path = lock_path(state_dir, service)
    current_time = now()
    with locked(state_path(state_dir, service), exclusive=not check_mode and state != "query"):
        holder = _read(path)
        corrupt = holder is not None and "corrupt" in holder
        stale = holder is not None and not corrupt and holder["expires"] <= current_time
        ours = holder is not None and holder.get("owner") == owner
        result = {"changed": False, "lock_file": path, "holder": holder, "stale": stale, "broken": None}
        if state == "query":
            return result
        if state == "acquired":
            gone = take_over is not None and holder is not None and holder.get("owner") == take_over
            if corrupt and not force:
                raise LockHeld(
                    "the rollout lock of %s (%s) is corrupt: %s. fleet.rollout did not write it so; check that no "
                    "rollout of %s is running, then take it with force=true." % (
                        service, path, holder["corrupt"], service), holder)
            if holder is not None and not ours and not stale and not force and not gone:
                raise LockHeld(
                    "%s is being rolled out by %s since %s (lock valid until %s, %s). Wait for it to finish, or, if "
                    "that run is gone, break the lock with force=true." % (
                        service, holder.get("owner"), _when(holder.get("started")), _when(holder.get("expires")),
                        path), holder)
            lock = {
                "owner": owner,
                "started": holder.get("started") if ours and not stale else round(current_time, 3),
                "expires": round(current_time + ttl, 3),
                "info": info or {},
            }
            if holder is not None and not ours:
                result["broken"] = holder
            result.update(changed=True, holder=lock)
            if not check_mode:
                os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
                write_atomic(path, json.dumps(lock, indent=2, sort_keys=True) + "\n", mode=0o644)
            return result
        # released
        if holder is None:
            return result
        if not ours and not force:
            raise LockHeld("the lock of %s belongs to %s, not %s: not releasing it (force=true breaks it)"
                           % (service, holder.get("owner"), owner), holder)
        result.update(changed=True, holder=None, broken=None if ours else holder)
        if not check_mode:
            os.unlink(path)
        return result
