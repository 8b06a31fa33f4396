# Copyright: fleet.rollout contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The nginx routing of a service, as fleet.rollout.nginx_upstream takes it."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.fleet.rollout.plugins.filter.services import pool_servers, preview_pool

MAINTENANCE = "maintenance"


def upstream_name(service: str, pool: str) -> str:
    return "fleet_%s_%s" % (service, pool)


def pool_variable(service: str) -> str:
    return "$fleet_%s_pool" % service.replace("-", "_")


def nginx_routing(service: dict, groups, hostvars, active: str, preview_header: str = "X-Rollout-Preview",
                  max_fails: int = 1, fail_timeout: int = 2, keepalive: int = 16,
                  preview_guard: str = "$fleet_preview_allowed", down=None, weights=None) -> dict:
    """``upstreams`` and ``maps`` for nginx_upstream: one upstream per pool, and the pool variable.

    The variable names the upstream of the active pool, or the preview pool
    when the request carries the preview header set to 1 and ``preview_guard``
    (a variable the nginx role sets to 1 for trusted source networks) is 1;
    ``active`` may be ``maintenance`` (the server block then answers 503 with
    Retry-After).

    ``down`` (inventory hostnames) marks servers ``down``, which is how nginx drains them (with a reload).
    ``weights`` ({hostname: percent}) gives those servers that share of a full weight of 100, for a slow
    start; with any weight given, every server of the affected upstreams gets an explicit weight.
    """
    down = set(down or [])
    weights = dict(weights or {})
    name = service["name"]
    pools = [pool["name"] for pool in service["pools"]]
    if active != MAINTENANCE and active not in pools:
        raise AnsibleFilterError("nginx_routing: active pool %r of service %r is not one of %s or %r"
                                 % (active, name, pools, MAINTENANCE))
    upstreams = []
    for pool in service["pools"]:
        servers = pool_servers(pool, groups, hostvars)
        weighted = any(server["name"] in weights for server in servers)
        rendered = []
        for server in servers:
            entry = {"address": "%s:%d" % (server["address"], server["port"]),
                     "max_fails": max_fails, "fail_timeout": fail_timeout}
            if server["name"] in down:
                entry["down"] = True
            if weighted:
                entry["weight"] = max(1, min(100, int(weights.get(server["name"], 100))))
            rendered.append(entry)
        upstreams.append({"name": upstream_name(name, pool["name"]), "keepalive": keepalive, "servers": rendered})
    header_variable = "$http_" + preview_header.lower().replace("-", "_")
    default = MAINTENANCE if active == MAINTENANCE else upstream_name(name, active)
    # In maintenance the preview route reaches the first pool: the new release
    # can be smoke-tested before traffic comes back.
    preview = upstream_name(name, preview_pool(service, active))
    return {
        "upstreams": upstreams,
        "maps": [{
            "source": header_variable + preview_guard,
            "variable": pool_variable(name),
            "default": default,
            "entries": [{"key": "11", "value": preview}],
        }],
    }


class FilterModule:
    def filters(self):
        return {"nginx_routing": nginx_routing}
