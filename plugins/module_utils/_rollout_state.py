# Copyright: fleet.rollout contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rollout state of a service, kept on each LB host as one JSON file.

The LB is where the truth about traffic lives, so that is where the active
pool, the release per pool and the history are kept (DESIGN principle 6):
``<state_dir>/<service>/state.json``, written atomically.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import json
import os
import re
import time

from ansible_collections.fleet.rollout.plugins.module_utils._atomic_file import read_text, write_atomic

SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\Z")
HISTORY_LIMIT = 50


class StateError(ValueError):
    pass


def state_path(state_dir: str, service: str) -> str:
    if not SAFE_NAME.match(service or ""):
        raise StateError("service %r: use letters, digits, '.', '_' and '-', starting with a letter or digit" % service)
    return os.path.join(state_dir, service, "state.json")


def load(path: str) -> dict | None:
    text = read_text(path)
    if text is None:
        return None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise StateError("%s is not valid JSON (%s); fix or remove it" % (path, exc)) from exc
    if not isinstance(data, dict):
        raise StateError("%s must hold a JSON object" % path)
    return data


def dump(data: dict) -> str:
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def merge(base: dict, changes: dict) -> dict:
    """Recursive dict merge: nested dicts merge, anything else replaces."""
    result = copy.deepcopy(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


@contextlib.contextmanager
def locked(path: str, exclusive: bool):
    """Serialize read-modify-write of one service's state between concurrent runs on this host."""
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        if not exclusive:
            yield
            return
        os.makedirs(directory, mode=0o755, exist_ok=True)
    with open(os.path.join(directory, ".state.lock"), "a", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def converge(state_dir: str, service: str, initial: dict | None = None, update: dict | None = None,
             event: dict | None = None, check_mode: bool = False, now=time.time) -> dict:
    """Create the state with ``initial`` when absent, merge ``update``, append ``event`` to the history.

    With none of the three it only reads: an absent state stays absent (``state`` is None).
    """
    path = state_path(state_dir, service)
    writing = bool(initial or update or event) and not check_mode
    with locked(path, exclusive=writing):
        current = load(path)
        before = dump(current) if current is not None else ""
        if current is None and not (initial or update or event):
            return {"changed": False, "state_file": path, "state": None, "created": False,
                    "diff": {"before": "", "after": "", "before_header": path, "after_header": path}}
        data = current if current is not None else merge({"service": service, "history": []}, initial or {})
        if update:
            data = merge(data, update)
        if event:
            history = list(data.get("history", []))
            history.append(dict(event, time=round(now(), 3)))
            data["history"] = history[-HISTORY_LIMIT:]
        after = dump(data)
        changed = after != before
        if changed and not check_mode:
            os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
            write_atomic(path, after, mode=0o644)
    return {
        "changed": changed,
        "state_file": path,
        "state": data,
        "created": current is None,
        "diff": {"before": before, "after": after, "before_header": path, "after_header": path},
    }
