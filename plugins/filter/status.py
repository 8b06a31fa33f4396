# Copyright: fleet.rollout contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``rollout_status``: what a service looks like now, from every LB and every app host, as data and a table."""

from __future__ import annotations

import datetime

from ansible_collections.fleet.rollout.plugins.filter.services import pool_servers


def _when(epoch) -> str:
    try:
        return datetime.datetime.fromtimestamp(float(epoch), datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (TypeError, ValueError, OverflowError, OSError):
        return "?"


def _on_lb(rows, pool: str, server: dict) -> dict | None:
    """The LB's row for ``server`` of ``pool``: HAProxy names servers by host, nginx by address."""
    address = "%s:%s" % (server["address"], server["port"])
    for row in rows or []:
        if row.get("pool") == pool and row.get("side", "main") == "main" \
                and (row.get("server") == server["name"] or row.get("address") == address):
            return row
    return None


def _lb_cell(row: dict | None) -> str:
    if row is None:
        return "not on LB"
    state = row.get("status") or "?"
    if row.get("admin_state") in ("drain", "maint") and not state.upper().startswith(("MAINT", "DRAIN", "DOWN")):
        state = "%s %s" % (row["admin_state"].upper(), state)
    cell = "%s w=%s" % (state, row.get("weight"))
    if row.get("sessions"):
        cell += " s=%d" % row["sessions"]
    return cell


def _event_line(event: dict) -> str:
    what = event.get("strategy") or event.get("event") or "?"
    version = event.get("version") or event.get("release") or ""
    outcome = event.get("outcome") or ""
    extra = []
    for key in ("pool", "from_pool", "to_pool", "winner", "failed_step"):
        if event.get(key) not in (None, "", []):
            extra.append("%s=%s" % (key, event[key]))
    if event.get("error"):
        extra.append("error: %s" % str(event["error"])[:80])
    owner = event.get("owner") or ""
    tail = ("  " + ", ".join(extra)) if extra else ""
    return "  %s  %-10s %-12s %-14s %s%s" % (_when(event.get("time")), what, version, outcome, owner, tail)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip()
             for row in [header] + rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return lines


def rollout_status(service: dict, lb_states: dict, lb_servers: dict, locks: dict, releases: dict, groups, hostvars,
                   history: int = 5, now: float | None = None) -> dict:
    """The status of ``service``: ``hosts`` (one row per pool member: live and previous release of its slot,
    its state on each LB), ``active_pool``, ``lock``, ``history``, ``problems`` and ``table`` (lines to print).

    ``lb_states``: {LB: rollout state or None}; ``lb_servers``: {LB: lb_servers_info's servers, or None when
    it could not be read}; ``locks``: {LB: rollout_lock's holder (None when free)}; ``releases``: {host: the
    release role's state (its ``slots``), or None when unreadable}.
    """
    lbs = list(lb_states)
    problems = []
    missing = [lb for lb in lbs if not lb_states[lb]]
    if missing:
        problems.append("no rollout state for %s on %s: unreachable or unreadable (see above), or not set up with "
                        "fleet.rollout.haproxy or fleet.rollout.nginx" % (service["name"], ", ".join(missing)))
    states = [lb_states[lb] for lb in lbs if lb_states[lb]]
    actives = sorted({str(state.get("active_pool")) for state in states})
    lb_types = sorted({str(state.get("lb")) for state in states})
    if len(actives) > 1:
        problems.append("the LBs disagree on the active pool: %s"
                        % ", ".join("%s on %s" % (lb_states[lb].get("active_pool"), lb) for lb in lbs if lb_states[lb]))
    unreadable = [lb for lb in lbs if lb_states[lb] and lb_servers.get(lb) is None]
    if unreadable:
        problems.append("could not read the servers on %s" % ", ".join(unreadable))

    pool_releases = (states[0].get("pools") if states else None) or {}
    hosts = []
    for pool in service["pools"]:
        slot = pool.get("slot") or "main"
        for server in pool_servers(pool, groups, hostvars):
            release = releases.get(server["name"])
            slot_state = ((release or {}).get("slots") or {}).get(slot) or {}
            hosts.append({
                "host": server["name"],
                "pool": pool["name"],
                "slot": slot,
                "port": server["port"],
                "live": slot_state.get("version") if release is not None else None,
                "previous": slot_state.get("previous") if release is not None else None,
                "readable": release is not None,
                "lbs": {lb: _on_lb(lb_servers.get(lb), pool["name"], server) for lb in lbs},
            })
    for row in hosts:
        gone = [lb for lb in lbs if lb_servers.get(lb) is not None and row["lbs"][lb] is None]
        if gone and states:
            problems.append("%s (pool %s) is not among the servers of %s" % (row["host"], row["pool"], ", ".join(gone)))

    holders = {lb: locks.get(lb) for lb in lbs if locks.get(lb)}
    current = now if now is not None else datetime.datetime.now(datetime.timezone.utc).timestamp()
    lock = None
    if holders:
        holder = next(iter(holders.values()))
        # A corrupt lock file (fleet.rollout.rollout_lock says why) never expires: only force takes it.
        expired = "corrupt" not in holder and float(holder.get("expires", 0) or 0) <= current
        lock = dict(holder, lbs=sorted(holders), expired=expired)
    events = [event for event in (states[0].get("history") or [] if states else [])
              if isinstance(event, dict) and event.get("event") in ("rollout", "rollback")]
    recent = events[-history:] if history > 0 else []

    title = "service %s: %s on %s, active pool %s" % (
        service["name"], "/".join(lb_types) or "?", ", ".join(lbs), " / ".join(actives) or "?")
    header = ["host", "pool", "slot", "live", "previous", "pool release"] + lbs
    rows = []
    for row in hosts:
        marker = " *" if actives and row["pool"] == actives[0] and len(actives) == 1 else ""
        pool_release = pool_releases.get(row["pool"]) or {}
        recorded = pool_release.get("release") or "-"
        if pool_release.get("status"):
            recorded += " (%s)" % pool_release["status"]
        rows.append([row["host"], row["pool"] + marker, row["slot"],
                     (row["live"] or "-") if row["readable"] else "unreadable",
                     row["previous"] or "-", recorded] + [_lb_cell(row["lbs"][lb]) for lb in lbs])
    lines = [title] + _table(header, rows) + ["  (* the active pool; w = weight, s = open sessions)"]
    if lock and lock.get("corrupt"):
        lines.append("rollout lock: CORRUPT lock file (%s): every rollout is refused until rollout_lock_force=true"
                     % lock["corrupt"])
    elif lock:
        info = lock.get("info") or {}
        detail = ", ".join("%s=%s" % (key, info[key]) for key in sorted(info) if info[key] not in (None, "", [], {}))
        lines.append("rollout running: %s%s, taken %s, expires %s%s" % (
            lock.get("owner"), " (%s)" % detail if detail else "", _when(lock.get("started")),
            _when(lock.get("expires")), " - EXPIRED: a run died; the next rollout takes it over" if expired else ""))
    else:
        lines.append("rollout running: none")
    lines.append("last rollouts:" if recent else "last rollouts: none recorded")
    lines += [_event_line(event) for event in reversed(recent)]
    lines += ["PROBLEM: " + problem for problem in problems]
    return {"service": service["name"], "lb": lb_types[0] if len(lb_types) == 1 else None,
            "active_pool": actives[0] if len(actives) == 1 else None, "hosts": hosts, "lock": lock,
            "history": recent, "problems": problems, "table": lines}


class FilterModule:
    def filters(self):
        return {"rollout_status": rollout_status}
