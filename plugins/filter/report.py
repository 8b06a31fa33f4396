# Copyright: fleet.rollout contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``rollout_report_input``: what fleet.rollout.rollout_report needs to tell which version served a request."""

from __future__ import annotations

from ansible_collections.fleet.rollout.plugins.filter.services import pool_servers


def rollout_report_input(service: dict, lb: str, releases: dict, groups, hostvars) -> dict:
    """``servers`` ({"pool/server" as the LB logs name it: [host, slot]}), ``timeline_servers`` (the
    ``host:port`` names to give nginx's log) and ``releases`` ({"host/slot": that slot's release history})."""
    servers = {}
    timeline_servers = []
    for pool in service["pools"]:
        slot = pool.get("slot") or "main"
        for server in pool_servers(pool, groups, hostvars):
            name = server["name"] if lb == "haproxy" else "%s:%s" % (server["address"], server["port"])
            servers["%s/%s" % (pool["name"], name)] = [server["name"], slot]
            # The sticky canary's side of the pool logs its own route.
            servers["%s_canary/%s" % (pool["name"], name)] = [server["name"], slot]
            if lb != "haproxy":
                timeline_servers.append(name)
    histories = {}
    for host, state in (releases or {}).items():
        for slot, data in ((state or {}).get("slots") or {}).items():
            histories["%s/%s" % (host, slot)] = (data or {}).get("history") or []
    return {"servers": servers, "timeline_servers": sorted(set(timeline_servers)), "releases": histories}


class FilterModule:
    def filters(self):
        return {"rollout_report_input": rollout_report_input}
