# Copyright: fleet.rollout contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What an LB answered for a service over a time window, from its own per-request JSON log.

The fleet.rollout LB roles log one JSON object per request: HAProxy to the systemd journal
(``ts`` in seconds, ``frontend``, ``backend``, ``server``, ``status``, ``ta`` in ms), nginx to
``/var/log/nginx/fleet-<service>.access.json`` (``ts``, ``service``, ``pool``, ``upstream``,
``status``, ``rt`` in seconds). Both are reduced to one record shape and summarised: answers per
route and status, failures, and the window in which requests were not served by a running app
(the maintenance page, or an error because no server answered).
"""

from __future__ import annotations

import json
import socket
import subprocess
import time

from ansible_collections.fleet.rollout.plugins.module_utils._haproxy_runtime import HAProxyRuntimeError

MAINTENANCE = "maintenance"


def haproxy_records(lines, service: str) -> list[dict]:
    """Records of ``fe_<service>`` from HAProxy's JSON log lines (other lines are skipped)."""
    return list(iter_haproxy_records(lines, service))


def iter_haproxy_records(lines, service: str):
    """``haproxy_records`` one at a time, for logs too long to hold (``lines`` may be a stream)."""
    frontend = "fe_%s" % service
    prefix = "be_%s_" % service
    for line in lines:
        entry = _json(line)
        if entry is None or entry.get("frontend") != frontend:
            continue
        backend = str(entry.get("backend", ""))
        route = backend[len(prefix):] if backend.startswith(prefix) else backend
        server = entry.get("server")
        server = None if server in (None, "", "<NOSRV>") else server
        seconds = max(_int(entry.get("ta")) or 0, 0) / 1000.0
        status = _int(entry.get("status"))
        yield {
            "ts": float(entry["ts"]),
            "status": status,
            "route": route,
            "server": server,
            "seconds": seconds,
            "attempts": [(server, status, seconds)] if server else [],
            "user": _user(entry.get("user")),
            "method": str(entry.get("method", "")),
            "path": _path(entry.get("uri")),
        }


def nginx_records(lines, service: str) -> list[dict]:
    """Records of ``service`` from the nginx role's JSON access log lines."""
    return list(iter_nginx_records(lines, service))


def iter_nginx_records(lines, service: str):
    """``nginx_records`` one at a time, for logs too long to hold (``lines`` may be a stream)."""
    prefix = "fleet_%s_" % service
    for line in lines:
        entry = _json(line)
        if entry is None or entry.get("service", service) != service:
            continue
        pool = str(entry.get("pool", ""))
        upstream = str(entry.get("upstream", "") or "")
        # $upstream_addr lists every server tried ("a:80, b:80"); the last one answered. It is the upstream's
        # name when no server could be tried at all.
        server = upstream.rsplit(",", maxsplit=1)[-1].strip()
        if ":" not in server:
            server = None
        yield {
            "ts": float(entry["ts"]),
            "id": str(entry.get("id", "")),
            "status": _int(entry.get("status")),
            "route": pool[len(prefix):] if pool.startswith(prefix) else pool,
            "server": None if server in (None, "-") else server,
            "seconds": float(entry.get("rt") or 0.0),
            "attempts": nginx_attempts(upstream, str(entry.get("upstream_status", "") or ""),
                                       str(entry.get("urt", "") or "")),
            "user": _user(entry.get("user")),
            "method": str(entry.get("method", "")),
            "path": _path(entry.get("uri")),
        }


def nginx_attempts(upstreams: str, statuses: str, times: str) -> list[tuple]:
    """(server, status, seconds) of each server nginx tried for one request, in order.

    ``$upstream_addr``, ``$upstream_status`` and ``$upstream_response_time`` list the tries with
    ", " (and " : " after an internal redirect to another upstream). A try that got no answer has
    status 502 or 504 as nginx logs it; a bare upstream name means no server could be tried.
    """
    def split(text):
        return [part.strip() for part in text.replace(" : ", ", ").split(",")] if text else []

    attempts = []
    status_list, time_list = split(statuses), split(times)
    for index, server in enumerate(split(upstreams)):
        if ":" not in server:
            continue
        status = _int(status_list[index]) if index < len(status_list) else None
        try:
            seconds = float(time_list[index]) if index < len(time_list) else 0.0
        except ValueError:
            seconds = 0.0
        attempts.append((server, status, seconds))
    return attempts


def group_samples(records, groups: dict, since: float, until: float) -> dict:
    """Per group of servers, what its servers answered in [since, until]: requests, errors, latencies.

    Each try of a server counts for that server's group (nginx may try several for one request), so
    a canary server whose failures another server hid by a retry is still seen failing. An error is
    a 5xx status or no status; latencies are those of the tries that did not fail;
    ``consecutive_errors`` is the longest run of the group's tries that failed one after another.
    ``groups`` maps a group name to server names as the log has them (HAProxy server names, nginx
    ``address:port``). A server in two groups is an error.
    """
    owner = {}
    for name, servers in groups.items():
        for server in servers:
            if server in owner and owner[server] != name:
                raise ValueError("groups: server %s is in both %s and %s" % (server, owner[server], name))
            owner[server] = name
    samples = {name: {"requests": 0, "errors": 0, "latencies": [], "consecutive_errors": 0} for name in groups}
    run = dict.fromkeys(groups, 0)
    for record in sorted((r for r in records if since <= r["ts"] <= until), key=lambda r: r["ts"]):
        for server, status, seconds in record.get("attempts", []):
            group = owner.get(server)
            if group is None:
                continue
            sample = samples[group]
            sample["requests"] += 1
            if status is None or status >= 500:
                sample["errors"] += 1
                run[group] += 1
                sample["consecutive_errors"] = max(sample["consecutive_errors"], run[group])
            else:
                run[group] = 0
                sample["latencies"].append(seconds)
    return samples


def _user(value) -> str:
    """The user id a log line carries; "" for none (HAProxy logs an unset variable as "-")."""
    return "" if value in (None, "-") else str(value)


def _path(uri) -> str:
    return str(uri or "").split("?", 1)[0]


def user_samples(records, since: float, until: float, goal: dict | None = None) -> dict:
    """Per route (an A/B test's variant) and user id, in [since, until]: requests, errors (5xx or no
    answer) and conversions - requests to ``goal`` ({method, path}) answered below 400. Requests
    without a user id count under the id "". The input of fleet.rollout.ab_report, one per LB."""
    method = (goal or {}).get("method", "").upper()
    path = (goal or {}).get("path")
    users: dict[str, dict[str, dict]] = {}
    for record in records:
        if not since <= record["ts"] <= until or record["route"] == MAINTENANCE:
            continue
        counts = users.setdefault(record["route"], {}).setdefault(
            record.get("user", ""), {"requests": 0, "errors": 0, "conversions": 0})
        counts["requests"] += 1
        status = record["status"]
        if status is None or status >= 500:
            counts["errors"] += 1
        elif (path is not None and status < 400 and record.get("path") == path
              and (not method or record.get("method", "").upper() == method)):
            counts["conversions"] += 1
    return users


def summarize(records, since: float, until: float) -> dict:
    """Answers in [since, until]: totals per route and status, failures, and the unserved window."""
    window = sorted((r for r in records if since <= r["ts"] <= until), key=lambda r: r["ts"])
    by_route: dict[str, int] = {}
    by_status: dict[str, int] = {}
    by_server: dict[str, int] = {}
    unserved = []
    failed = run = longest_run = 0
    for record in window:
        by_route[record["route"]] = by_route.get(record["route"], 0) + 1
        by_status[str(record["status"])] = by_status.get(str(record["status"]), 0) + 1
        if record["server"]:
            by_server[record["server"]] = by_server.get(record["server"], 0) + 1
        maintenance = record["route"] == MAINTENANCE
        error = record["status"] is None or record["status"] >= 500
        if maintenance or (error and not record["server"]):
            unserved.append(record)
        if error and not maintenance:
            failed += 1
            run += 1
            longest_run = max(longest_run, run)
        elif not maintenance:
            run = 0
    first = unserved[0]["ts"] if unserved else None
    last = max((r["ts"] + r["seconds"] for r in unserved), default=None)
    maintenance_answers = [r for r in window if r["route"] == MAINTENANCE]
    return {
        "since": since,
        "until": until,
        "requests": len(window),
        "by_route": by_route,
        "by_status": by_status,
        "by_server": by_server,
        "failed_answers": failed,
        "consecutive_failed": longest_run,
        "maintenance": {
            "answers": len(maintenance_answers),
            "max_seconds": max((r["seconds"] for r in maintenance_answers), default=None),
        },
        "unserved": {
            "answers": len(unserved),
            "first": first,
            "last": last,
            "seconds": round(last - first, 3) if unserved else 0.0,
        },
    }


def timeline(records, since: float, until: float, interval: float, names: dict | None = None) -> list[dict]:
    """Answers in [since, until] in buckets of ``interval`` seconds (by when each was answered): per bucket
    ``t`` (its start), ``requests``, ``errors`` (5xx other than the maintenance page, or no answer),
    ``maintenance`` and ``by_server`` ({"route/server": [requests, errors]}, the route being the pool, so a host
    in two pools - release slots - counts apart in each); ``names`` renames servers (nginx logs the ``ip:port``
    it reached: give {ip:port: name}). Every bucket of the window is there, empty or not."""
    if interval <= 0:
        raise ValueError("timeline_interval: expected seconds above 0, got %s" % interval)
    names = names or {}
    count = max(int((until - since) // interval) + 1, 1)
    buckets = [{"t": round(since + i * interval, 3), "requests": 0, "errors": 0, "maintenance": 0, "by_server": {}}
               for i in range(count)]
    for record in records:
        if not since <= record["ts"] <= until:
            continue
        bucket = buckets[min(int((record["ts"] - since) // interval), count - 1)]
        bucket["requests"] += 1
        maintenance = record["route"] == MAINTENANCE
        error = (record["status"] is None or record["status"] >= 500) and not maintenance
        bucket["errors"] += int(error)
        bucket["maintenance"] += int(maintenance)
        if record["server"]:
            name = "%s/%s" % (record["route"], names.get(record["server"], record["server"]))
            counts = bucket["by_server"].setdefault(name, [0, 0])
            counts[0] += 1
            counts[1] += int(error)
    return buckets


def nginx_addresses(servers) -> dict:
    """Each ``host:port`` as the ``ip:port`` strings nginx logs for it, resolved on this (the LB) host.

    nginx resolves its upstream servers' names when it loads its config and logs the addresses;
    a name that does not resolve keeps only itself.
    """
    addresses = {}
    for server in servers:
        host, sep, port = server.rpartition(":")
        found = {server}
        if sep and port.isdigit():
            try:
                for info in socket.getaddrinfo(host.strip("[]"), int(port), proto=socket.IPPROTO_TCP):
                    ip = info[4][0]
                    found.add("[%s]:%s" % (ip, port) if ":" in ip else "%s:%s" % (ip, port))
            except (OSError, UnicodeError):
                pass
        addresses[server] = sorted(found)
    return addresses


def read_haproxy_journal(unit: str, since: float, journalctl: str = "journalctl") -> list[str]:
    """HAProxy's log lines in the journal from a second before ``since`` to the end.

    The journal's own timestamps are when journald received a line, which can lag HAProxy's by
    seconds on a busy host: only the start is bounded by them (a line is received after its request
    began), the window's end is left to the records' own ``ts``. ``--sync`` first makes journald
    store what it has been sent.
    """
    return list(stream_haproxy_journal(unit, since, journalctl))


def haproxy_dropped_logs(client) -> int | None:
    """HAProxy's count of log lines it could not write (``DroppedLogs``, since it started).

    HAProxy writes its log to stdout without blocking and drops a line when the reader (journald) is
    behind, so a rising count means the records read from the journal are short by that many.
    ``None`` when the runtime API cannot be read.
    """
    try:
        return int(client.show_info()["DroppedLogs"])
    except (HAProxyRuntimeError, OSError, KeyError, ValueError):
        return None


def wait_for_window(service: str, since: float, until: float | None, settle: float) -> float:
    """Check a log window of ``service`` and wait until its last requests are written (``settle`` seconds past its
    end); returns its end (now when ``until`` is not given). ValueError on a window that ends before it starts or a
    service name that is not one."""
    now = time.time()
    until = now if until is None else until
    if until < since:
        raise ValueError("until (%s) is before since (%s)" % (until, since))
    if "/" in service or service.startswith("."):
        raise ValueError("service: expected a service name, got %r" % service)
    if until + settle > now:
        time.sleep(until + settle - now)
    return until


def stream_haproxy_journal(unit: str, since: float, journalctl: str = "journalctl"):
    """``read_haproxy_journal`` one line at a time (a long window of a busy LB does not fit in memory);
    OSError at the end when journalctl failed."""
    subprocess.run([journalctl, "--sync"], capture_output=True, check=False)
    command = [journalctl, "--unit", unit, "--output", "cat", "--no-pager", "--quiet", "--since", "@%d" % int(since - 1)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace") as process:
        for line in process.stdout:
            yield line.rstrip("\n")
        error = process.stderr.read()
    if process.returncode != 0:
        raise OSError("%s failed: %s" % (" ".join(command), error.strip()))


def stream_file_lines(path: str):
    """A file's lines one at a time."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            yield line.rstrip("\n")


def read_file_lines(path: str) -> list[str]:
    return list(stream_file_lines(path))


def _json(line):
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    return entry if isinstance(entry, dict) and "ts" in entry else None


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
