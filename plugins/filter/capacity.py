# Copyright: fleet.rollout contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Capacity a rollout finds missing before it starts: servers an operator holds in maintenance and
servers the LBs' health checks see DOWN, from fleet.rollout.lb_servers_info on every LB."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError


def lb_out_of_rotation(results, exclude=None) -> dict[str, dict[str, list[str]]]:
    """``{"maint": {host: [LB, ...]}, "down": {host: [LB, ...]}}`` from a loop of lb_servers_info over
    the LBs: ``maint`` the servers in MAINT on an LB (HAProxy's forced maintenance: an operator's, since
    a rollout drains with DRAIN), ``down`` those in rotation whose health checks fail. Only the main
    backend counts (a sticky canary's twin follows it); hosts in ``exclude`` are left out."""
    if not isinstance(results, list):
        raise AnsibleFilterError("lb_out_of_rotation: expected the results of a loop of"
                                 " fleet.rollout.lb_servers_info over the LBs, got %s" % type(results).__name__)
    exclude = set(exclude or [])
    found: dict[str, dict[str, list[str]]] = {"maint": {}, "down": {}}
    for result in results:
        if isinstance(result, dict) and result.get("skipped"):
            continue
        if not isinstance(result, dict) or "item" not in result or not isinstance(result.get("servers"), list):
            raise AnsibleFilterError("lb_out_of_rotation: each result needs the LB host as its item and the"
                                     " servers lb_servers_info read, got %r" % (result,))
        for server in result["servers"]:
            host = server.get("server")
            if not host or host in exclude or server.get("side", "main") != "main":
                continue
            if server.get("admin_state") == "maint":
                kind = "maint"
            elif str(server.get("status") or "").partition(" ")[0] == "DOWN":
                kind = "down"
            else:
                continue
            found[kind].setdefault(host, []).append(result["item"])
    return found


class FilterModule:
    def filters(self):
        return {"lb_out_of_rotation": lb_out_of_rotation}
