# Copyright: fleet.rollout contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a drain still waits for, on each LB, from one round of waiting (haproxy_server or
nginx_upstream with on_timeout=report), so the wait can say how far it is."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError


def _left(result: dict) -> dict[str, int]:
    if "servers" in result:  # fleet.rollout.haproxy_server
        return {server["name"]: int(server["after"].get("sessions") or 0) + int(server["after"].get("queued") or 0)
                for server in result["servers"] if server.get("drained") is False and not server.get("forced")}
    if result.get("workers_left"):  # fleet.rollout.nginx_upstream
        busy = {"old nginx workers": int(result["workers_left"])}
        busy.update((address, count) for address, count in sorted((result.get("connections_left") or {}).items())
                    if count)
        return busy
    return {}


def drain_left(results) -> dict[str, dict[str, int]]:
    """{LB host: {server (or "old nginx workers"): sessions left}} for every LB still busy."""
    if not isinstance(results, list):
        raise AnsibleFilterError("drain_left: expected the results of a drain task's loop over the LBs, got %s"
                                 % type(results).__name__)
    left = {}
    for result in results:
        if not isinstance(result, dict) or "item" not in result:
            raise AnsibleFilterError("drain_left: each result needs the LB host as its item, got %r" % (result,))
        if result.get("skipped"):
            continue
        busy = _left(result)
        if busy:
            left[result["item"]] = busy
    return left


def _number(value, name: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError("drain_progress: %s must be a number of seconds, got %r" % (name, value)) from exc


def drain_progress(results, service: str, previous: dict | None, interval, timeout) -> dict:
    """After a round of waiting that left something in flight: what is left, the line to print, and the next
    round (on the LBs still busy, ``window`` seconds at most, ``final`` when it reaches the drain timeout).
    Every earlier round waited its whole window (something was left), so ``rounds`` x ``interval`` is how long
    the drain has lasted without reading a clock."""
    interval, timeout = _number(interval, "interval"), _number(timeout, "timeout")
    if interval <= 0:
        raise AnsibleFilterError("drain_progress: interval must be above 0 seconds, got %s" % interval)
    rounds = int((previous or {}).get("rounds", 0)) + 1
    elapsed = min(rounds * interval, timeout)
    left = drain_left(results)
    remaining = max(timeout - elapsed, 0.1)
    lines = []
    for lb, busy in left.items():
        lines.append("%s: %s" % (lb, ", ".join("%s %d" % (what, count) for what, count in busy.items())))
    return {
        "rounds": rounds,
        "left": left,
        "busy": list(left),
        "window": round(min(interval, remaining), 1),
        "final": remaining <= interval,
        "message": "%s: draining for %d s (up to %s s); still in flight: %s" % (
            service, round(elapsed), ("%g" % timeout), "; ".join(lines)),
    }


class FilterModule:
    def filters(self):
        return {"drain_left": drain_left, "drain_progress": drain_progress}
