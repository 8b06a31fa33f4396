# Copyright: fleet.rollout contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What one LB does with a service's servers right now, read without changing anything.

HAProxy answers from its runtime (``show servers state`` + ``show stat``), so
the result is what it routes by, including drains and weights set at runtime.
nginx has no runtime API in the open-source build: the routing include file
the ``nginx_upstream`` module owns *is* what the running workers use once
reloaded, so the file is read (its mtime is returned to show when it changed).
"""

from __future__ import annotations

import os
import re

from ansible_collections.fleet.rollout.plugins.module_utils._haproxy_server import read_servers

HAPROXY_PREFIX = "be_%s_"
NGINX_PREFIX = "fleet_%s_"
CANARY_SUFFIX = "_canary"

_UPSTREAM = re.compile(r"^\s*upstream\s+(\S+)\s*\{\s*$")
_SERVER = re.compile(r"^\s*server\s+(\S+)((?:\s+[^;\s]+)*)\s*;\s*$")


class LBServersError(Exception):
    pass


def _pool_of(name: str, prefix: str) -> tuple[str, str] | None:
    """(pool, side) of a backend or upstream name of the service, None when it is another service's."""
    if not name.startswith(prefix):
        return None
    rest = name[len(prefix):]
    if rest.endswith(CANARY_SUFFIX) and len(rest) > len(CANARY_SUFFIX):
        return rest[:-len(CANARY_SUFFIX)], "canary"
    return rest, "main"


def haproxy_servers(client, service: str) -> list[dict]:
    """Every server of the service's backends (``be_<service>_<pool>`` and its sticky-canary twin)."""
    rows = []
    for server in read_servers(client).values():
        pool = _pool_of(server.backend, HAPROXY_PREFIX % service)
        if pool is None:
            continue
        snapshot = server.snapshot()
        status = snapshot["status"] or ("MAINT" if server.out_of_service else "UP")
        rows.append({
            "pool": pool[0],
            "side": pool[1],
            "server": server.server,
            "address": None,
            "admin_state": snapshot["admin_state"],
            "status": status,
            "in_rotation": not server.out_of_service and snapshot["admin_state"] == "ready" and server.weight > 0,
            "weight": server.weight,
            "initial_weight": server.initial_weight,
            "sessions": snapshot["sessions"],
        })
    return sorted(rows, key=lambda row: (row["pool"], row["side"], row["server"]))


def parse_nginx_routing(text: str, service: str) -> list[dict]:
    """The servers of the service's upstreams (``fleet_<service>_<pool>``) in a routing file's text."""
    prefix = NGINX_PREFIX % service
    rows = []
    upstream = None
    for line in text.splitlines():
        if upstream is None:
            match = _UPSTREAM.match(line)
            if match:
                upstream = _pool_of(match.group(1), prefix) or ("", "other")
            continue
        if line.strip() == "}":
            upstream = None
            continue
        match = _SERVER.match(line)
        if not match or upstream[1] == "other":
            continue
        flags = match.group(2).split()
        weight = 1
        for flag in flags:
            if flag.startswith("weight="):
                weight = int(flag.split("=", 1)[1])
        down = "down" in flags
        rows.append({
            "pool": upstream[0],
            "side": upstream[1],
            "server": None,
            "address": match.group(1),
            "admin_state": "maint" if down else "ready",
            "status": "DOWN" if down else ("BACKUP" if "backup" in flags else "UP"),
            "in_rotation": not down and "backup" not in flags,
            "weight": 0 if down else weight,
            "initial_weight": None,
            "sessions": None,
        })
    return rows


def nginx_servers(path: str, service: str) -> tuple[list[dict], float]:
    """The servers in the routing file at ``path`` and the file's mtime."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        mtime = os.stat(path).st_mtime
    except FileNotFoundError:
        raise LBServersError("%s does not exist: is the LB set up for service %s by fleet.rollout.nginx?"
                             % (path, service)) from None
    except OSError as exc:
        raise LBServersError("cannot read %s: %s" % (path, exc)) from None
    return parse_nginx_routing(text, service), mtime
