# Copyright: fleet.rollout contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which ansible-playbook run this controller code belongs to, and whether a recorded run is gone.

A rollout lock records ``identify()`` of the run that took it. A later run on the same
controller may take such a lock over only when ``run_gone()`` is sure that run no longer
exists: same machine, same boot, same PID namespace, and its process has exited or its
PID now belongs to another process. Anything less certain keeps the lock (force breaks it).
"""

from __future__ import annotations

import os
import socket

_MAX_DEPTH = 64
# The kernel's PID_MAX_LIMIT: a larger "pid" is no PID, and os.kill would overflow on it.
_PID_LIMIT = 4194304


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read().strip()
    except OSError:
        return ""


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat from field 3 (state) on; None when unreadable."""
    text = _read("/proc/%d/stat" % pid)
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    if ")" not in text:
        return None
    fields = text[text.rfind(")") + 1:].split()
    return fields if len(fields) >= 20 else None


def _stat_field(pid: int, index: int) -> int | None:
    """One numeric field of /proc/<pid>/stat, counted from field 3 (state) as index 0; None when unreadable."""
    fields = _stat(pid)
    try:
        return int(fields[index]) if fields else None
    except ValueError:
        return None


def _start_time(pid: int) -> int | None:
    """Field 22, the start time in clock ticks since boot: with the PID it names one process."""
    return _stat_field(pid, 19)


def _parent(pid: int) -> int | None:
    return _stat_field(pid, 1)


def _is_playbook(pid: int) -> bool:
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            argv = handle.read().split(b"\0")[:2]
    except OSError:
        return False
    # argv[1] when ansible-playbook was started through its interpreter (python3 .../ansible-playbook).
    return any(os.path.basename(arg).startswith(b"ansible-playbook") for arg in argv)


def _playbook_pid() -> int:
    # Templating runs in worker processes forked from the main ansible-playbook process, which
    # keep its command line: the run is the top of the first chain of ansible-playbook processes
    # above us. Not the top-most one overall: a playbook started by a task of another playbook is
    # its own run, and must not be tied to the outer one.
    pid, found = os.getpid(), None
    for dummy in range(_MAX_DEPTH):
        if _is_playbook(pid):
            found = pid
        elif found is not None:
            break
        parent = _parent(pid)
        if not parent or parent == pid:
            break
        pid = parent
    if found is not None:
        return found
    # A forked worker's parent is the run; a parent of 1 means there is none left to name.
    parent = os.getppid()
    return parent if parent > 1 else os.getpid()


def _pid_namespace() -> str:
    # PIDs mean something only inside their namespace: two containers on one host share the
    # boot id (and may share an image's machine id) but not their PIDs.
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


def identify() -> dict:
    """The ansible-playbook run this code runs in, as a lock records it."""
    pid = _playbook_pid()
    return {
        "machine_id": _read("/etc/machine-id") or _read("/var/lib/dbus/machine-id"),
        "boot_id": _read("/proc/sys/kernel/random/boot_id"),
        "pid_ns": _pid_namespace(),
        "pid": pid,
        "pid_start": _start_time(pid) or 0,
        "host": socket.gethostname(),
    }


def _count(value, limit: int | None = None) -> int | None:
    """A positive int, or None (bool is an int to Python, not to us)."""
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        return None
    return value if limit is None or value <= limit else None


def _text(value) -> str:
    return value if isinstance(value, str) else ""


def run_gone(holder_info: dict | None, me: dict) -> tuple[bool, str]:
    """(True, why) only when the run recorded in a lock's info is certainly no longer running."""
    controller = holder_info.get("controller") if isinstance(holder_info, dict) else None
    if not isinstance(controller, dict):
        return False, "the lock does not record which controller run took it"
    if not isinstance(me, dict):
        return False, "this run's controller identity is unknown"
    host = _text(controller.get("host")) or "unknown host"
    for key, what in (("machine_id", "machine id"), ("boot_id", "boot id"), ("pid_ns", "PID namespace")):
        theirs, ours = _text(controller.get(key)), _text(me.get(key))
        if not theirs or not ours:
            return False, "the %s of the run that took it, or of this controller, is unknown" % what
        if theirs != ours:
            if key == "boot_id":
                return False, "it was taken on %s during another boot (or on another machine with the same " \
                              "machine id)" % host
            if key == "pid_ns":
                return False, "it was taken on %s from another PID namespace (container)" % host
            return False, "it was taken on another controller (%s)" % host
    pid, started = _count(controller.get("pid"), _PID_LIMIT), _count(controller.get("pid_start"))
    if pid is None or started is None:
        return False, "the lock does not record a usable pid and start time of its run"
    run = "its run (pid %d on this controller)" % pid
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True, "%s is no longer running" % run
    except OSError:
        pass  # EPERM: the process exists, it belongs to another user
    fields = _stat(pid)
    if fields is None:
        # Alive a moment ago, unreadable now: it may just have exited; do not guess.
        return False, "%s could not be inspected" % run
    if fields[0] in ("Z", "X"):
        return True, "%s has exited" % run
    if fields[19] != str(started):
        return True, "%s is gone: pid %d now belongs to another process" % (run, pid)
    return False, "%s is still running" % run
