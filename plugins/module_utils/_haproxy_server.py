# Copyright: fleet.rollout contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Set the admin state and weight of many HAProxy servers, and wait for drains.

The logic behind ``fleet.rollout.haproxy_server``; pure functions where
possible so the planning is testable without a socket.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ansible_collections.fleet.rollout.plugins.module_utils._atomic_file import write_atomic
from ansible_collections.fleet.rollout.plugins.module_utils._haproxy_runtime import HAProxyRuntimeError

# srv_admin_state bits (HAProxy src/server.h, enum srv_admin).
ADMIN_FMAINT = 0x01  # forced maintenance (set server ... state maint)
ADMIN_FDRAIN = 0x08  # forced drain (set server ... state drain)
ADMIN_ANY_MAINT = 0x01 | 0x02 | 0x04 | 0x20 | 0x40  # forced, inherited, config, resolution, hostname

OP_STOPPED = 0  # srv_op_state: health checks say down
CHECK_CONFIGURED = 0x02  # srv_check_state / srv_agent_state bits (CHK_ST_*)
CHECK_ENABLED = 0x04

STATES = ("ready", "drain", "maint")
MAX_WEIGHT = 256


class TargetError(HAProxyRuntimeError):
    """A selector matched no server; the message lists what exists."""


@dataclass
class Server:
    backend: str
    server: str
    admin_state: int
    op_state: int
    weight: int
    initial_weight: int
    status: str = ""
    sessions: int = 0
    queued: int = 0
    check_state: int = 0
    agent_state: int = 0

    @property
    def key(self) -> str:
        return "%s/%s" % (self.backend, self.server)

    @property
    def mode(self) -> str:
        """The admin state a user sets: maint wins over drain."""
        if self.admin_state & ADMIN_FMAINT:
            return "maint"
        if self.admin_state & ADMIN_FDRAIN:
            return "drain"
        return "ready"

    @property
    def out_of_service(self) -> bool:
        """No new traffic can reach it: in maintenance or failing its checks."""
        return (bool(self.admin_state & ADMIN_ANY_MAINT) or self.op_state == OP_STOPPED
                or self.status.startswith(("DOWN", "MAINT")))

    def checks(self, kind: str) -> bool | None:
        """Whether health (or agent) checks run; None when none are configured."""
        bits = self.check_state if kind == "health" else self.agent_state
        if not bits & CHECK_CONFIGURED:
            return None
        return bool(bits & CHECK_ENABLED)

    def snapshot(self) -> dict:
        return {
            "admin_state": self.mode,
            "health_checks": self.checks("health"),
            "agent_checks": self.checks("agent"),
            "status": self.status,
            "weight": self.weight,
            "initial_weight": self.initial_weight,
            "sessions": self.sessions,
            "queued": self.queued,
        }


@dataclass
class Change:
    server: Server
    state: str
    weight: int
    commands: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.commands)


def read_servers(client) -> dict[str, Server]:
    """Every server of every backend, from ``show servers state`` joined with ``show stat``."""
    stats = {(row["pxname"], row["svname"]): row for row in client.show_stat()}
    servers = {}
    for row in client.show_servers_state():
        name = (row["be_name"], row["srv_name"])
        stat = stats.get(name, {})
        server = Server(
            backend=name[0],
            server=name[1],
            admin_state=int(row["srv_admin_state"]),
            op_state=int(row["srv_op_state"]),
            weight=int(row["srv_uweight"]),
            initial_weight=int(row["srv_iweight"]),
            status=stat.get("status", ""),
            sessions=_int(stat.get("scur")),
            queued=_int(stat.get("qcur")),
            check_state=_int(row.get("srv_check_state")),
            agent_state=_int(row.get("srv_agent_state")),
        )
        servers[server.key] = server
    return servers


def _int(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def resolve_targets(selectors: list[str], servers: dict[str, Server]) -> list[str]:
    """Expand ``backend/server``, ``backend/*`` and bare ``server`` names.

    A bare name means that server in every backend that has it. Order of
    first appearance is kept and duplicates are dropped.
    """
    backends: dict[str, list[str]] = {}
    for key, server in servers.items():
        backends.setdefault(server.backend, []).append(key)
    result: list[str] = []
    missing = []
    for selector in selectors:
        if "/" in selector:
            backend, name = selector.split("/", 1)
            if name == "*":
                found = backends.get(backend, [])
            else:
                found = [selector] if selector in servers else []
        else:
            found = [key for key, server in servers.items() if server.server == selector]
        if not found:
            missing.append(selector)
        for key in found:
            if key not in result:
                result.append(key)
    if missing:
        existing = ", ".join(sorted(servers)) or "(none)"
        raise TargetError("no HAProxy server matches %s; servers that exist: %s"
                          % (", ".join(repr(m) for m in missing), existing))
    return result


def parse_weight(spec, initial_weight: int) -> int:
    """``"50"`` → 50; ``"50%"`` → 50 % of the configured (initial) weight."""
    text = str(spec).strip()
    try:
        if text.endswith("%"):
            percent = float(text[:-1])
            if not 0 <= percent <= 100 * MAX_WEIGHT:
                raise ValueError
            value = int(initial_weight * percent / 100)
        else:
            value = int(text)
    except ValueError:
        raise ValueError("weight %r: expected an integer 0-%d or a percentage such as '50%%'" % (spec, MAX_WEIGHT)) from None
    if not 0 <= value <= MAX_WEIGHT:
        raise ValueError("weight %r gives %d; HAProxy weights are 0-%d" % (spec, value, MAX_WEIGHT))
    return value


def plan(targets: list[str], servers: dict[str, Server], state: str | None, weight,
         health_checks: bool | None = None, agent_checks: bool | None = None) -> list[Change]:
    """The commands that bring each server where asked; nothing for what already is.

    Raises TargetError, before anything is sent, when checks that are not
    configured are to be enabled (HAProxy would refuse half-way through).
    """
    changes = []
    unconfigured = []
    for key in targets:
        server = servers[key]
        want_state = state or server.mode
        want_weight = server.weight if weight is None else parse_weight(weight, server.initial_weight)
        change = Change(server, want_state, want_weight)
        state_command = "set server %s state %s" % (key, want_state) if want_state != server.mode else None
        weight_command = "set server %s weight %d" % (key, want_weight) if want_weight != server.weight else None
        # Back into rotation at the new weight, never briefly at the old one
        # (a canary at 5 % must not take its full share for a moment).
        ordered = [weight_command, state_command] if want_state == "ready" else [state_command, weight_command]
        change.commands.extend(command for command in ordered if command)
        for kind, wanted in (("health", health_checks), ("agent", agent_checks)):
            current = server.checks(kind)
            if wanted is None or current == wanted or (current is None and not wanted):
                continue
            if current is None:
                unconfigured.append("%s (%s)" % (key, kind))
                continue
            change.commands.append("%s %s %s" % ("enable" if wanted else "disable", kind, key))
        changes.append(change)
    if unconfigured:
        raise TargetError("cannot enable checks that the HAProxy config does not define: %s" % ", ".join(unconfigured))
    return changes


def apply(client, changes: list[Change]) -> None:
    for change in changes:
        for command in change.commands:
            client.run_set(command)


def wait_drained(client, keys: list[str], timeout: float, poll_interval: float, polls_required: int,
                 clock=time.monotonic, sleep=time.sleep) -> tuple[dict[str, float | None], dict[str, Server]]:
    """Wait until every server has no session and no queue.

    An UP server in drain can still get requests that carry its persistence
    cookie, so it counts as drained after ``polls_required`` consecutive empty
    polls. A server that is DOWN or in maintenance receives nothing new: one
    empty poll is enough (waiting on its *status*, as other tools do, never
    ends). Returns seconds until drained per server (None where it timed out)
    and the servers as the last poll saw them.
    """
    started = clock()
    streak = {key: 0 for key in keys}
    drained: dict[str, float | None] = {key: None for key in keys}
    while True:
        current = read_servers(client)
        now = clock()
        for key in keys:
            if drained[key] is not None:
                continue
            server = current.get(key)
            if server is None:
                raise TargetError("server %s disappeared while draining" % key)
            if server.sessions == 0 and server.queued == 0:
                streak[key] += 1
                if server.out_of_service or streak[key] >= polls_required:
                    drained[key] = round(now - started, 3)
            else:
                streak[key] = 0
        if all(value is not None for value in drained.values()) or now - started >= timeout:
            return drained, current
        sleep(min(poll_interval, max(0.0, timeout - (now - started))) or poll_interval)


def force_down(client, keys: list[str]) -> None:
    """Put servers in maintenance and cut their remaining sessions."""
    for key in keys:
        client.run_set("set server %s state maint" % key)
        client.run_set("shutdown sessions server %s" % key)


def persist_state(client, path: str) -> None:
    """Save ``show servers state`` where ``server-state-file`` points, so a reload keeps it."""
    write_atomic(path, client.show_servers_state_raw(), mode=0o640)


def diff_view(changes: list[Change], after: dict[str, Server] | None) -> dict:
    before_lines = []
    after_lines = []
    for change in changes:
        if not change.changed:
            continue
        key = change.server.key
        before_lines.append("%s: state=%s weight=%d\n" % (key, change.server.mode, change.server.weight))
        if after is not None and key in after:
            now = after[key]
            after_lines.append("%s: state=%s weight=%d\n" % (key, now.mode, now.weight))
        else:
            after_lines.append("%s: state=%s weight=%d\n" % (key, change.state, change.weight))
    return {"before": "".join(before_lines), "after": "".join(after_lines)}


class DrainTimeout(HAProxyRuntimeError):
    def __init__(self, message: str, result: dict):
        super().__init__(message)
        self.result = result


def converge(client, selectors: list[str], state: str | None = None, weight=None, wait: bool = True,
             drain_timeout: float = 300.0, poll_interval: float = 1.0, drained_polls: int = 2,
             on_timeout: str = "fail", persist_path: str | None = None, check_mode: bool = False,
             health_checks: bool | None = None, agent_checks: bool | None = None,
             shutdown_sessions: bool = False) -> dict:
    """Bring the selected servers to ``state``/``weight``; the module's whole job.

    Raises DrainTimeout (carrying the partial result) when a drain times out
    and ``on_timeout`` is ``fail``; with ``report`` the result says what is left.
    """
    servers = read_servers(client)
    targets = resolve_targets(selectors, servers)
    changes = plan(targets, servers, state, weight, health_checks, agent_checks)
    changed = any(change.changed for change in changes)
    waiting = wait and state in ("drain", "maint")
    drained: dict[str, float | None] = {}
    last_seen: dict[str, Server] | None = None
    # shutdown_sessions (with maint): cut what is still open instead of waiting for it.
    cut = [change.server.key for change in changes
           if shutdown_sessions and (change.server.sessions or change.server.queued)]
    forced = list(cut)
    changed = changed or bool(cut)
    if not check_mode:
        try:
            apply(client, changes)
        except HAProxyRuntimeError:
            # Some servers may have changed already: save that, so a reload
            # cannot silently undo half a change.
            if persist_path:
                persist_state(client, persist_path)
            raise
        for key in cut:
            client.run_set("shutdown sessions server %s" % key)
        if waiting:
            drained, last_seen = wait_drained(client, targets, drain_timeout, poll_interval, drained_polls)
            late = [key for key, seconds in drained.items() if seconds is None]
            if late and on_timeout == "force":
                force_down(client, late)
                forced += late
                changed = True
        if changed and persist_path:
            persist_state(client, persist_path)
    # The drain's last poll already shows the end state, unless sessions were cut after it.
    after = None if check_mode else last_seen if last_seen is not None and not forced else read_servers(client)
    result = {
        "changed": changed,
        "servers": [_server_result(change, after, drained, forced, waiting and not check_mode) for change in changes],
        "diff": diff_view(changes, after),
    }
    late = [key for key, seconds in drained.items() if seconds is None and key not in forced]
    if late and on_timeout != "report":
        details = ", ".join("%s (%d sessions, %d queued)" % (key, after[key].sessions, after[key].queued) for key in late)
        # Worded for a rollout too, whose cleanup puts these servers back in rotation: their state is in the
        # result, and each caller names its own knob for forcing (on_timeout here, *_on_drain_timeout above).
        raise DrainTimeout("drain timed out after %ss: %s still busy (a forced drain would cut their sessions)"
                           % (drain_timeout, details), result)
    return result


def _server_result(change: Change, after, drained, forced, waited: bool) -> dict:
    key = change.server.key
    if after is not None:
        now = after[key].snapshot()
    else:
        now = dict(change.server.snapshot(), admin_state=change.state, weight=change.weight)
    return {
        "name": key,
        "backend": change.server.backend,
        "server": change.server.server,
        "changed": change.changed or key in forced,
        "before": change.server.snapshot(),
        "after": now,
        "drained": (drained.get(key) is not None) if waited else None,
        "drain_seconds": drained.get(key) if waited else None,
        "forced": key in forced,
    }
