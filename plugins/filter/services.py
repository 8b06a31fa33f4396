# Copyright: fleet.rollout contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters over ``rollout_services``, the service/pool model every role shares."""

from __future__ import annotations


import ipaddress
import re

from ansible.errors import AnsibleFilterError

SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*\Z")
# What goes into a health check line of haproxy.cfg: no spaces, quotes, '#', braces or control characters.
HEALTH_PATH = re.compile(r"^/[A-Za-z0-9._~%!$&()*+,=:@/?-]*\Z")
# Names that go into LB configs as they are (nginx reads a cookie as $cookie_<name>: no '-').
HEADER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*\Z")
COOKIE_NAME = re.compile(r"^[A-Za-z0-9_]+\Z")
# A server host name as the LB configs take it (IP addresses are checked by ipaddress). Nothing that could end
# a config line or start a comment (a newline in ansible_host would add lines to haproxy.cfg that haproxy -c
# accepts).
SERVER_NAME = re.compile(r"\A[A-Za-z0-9_][A-Za-z0-9_.-]{0,252}\Z")
# What an IP address (and an IPv6 zone such as %eth0, which ipaddress takes whatever follows the %) may hold.
SERVER_IP_CHARS = re.compile(r"\A\[?[0-9A-Fa-f:.]+(?:%[A-Za-z0-9_.-]+)?\]?\Z")


def _is_server_address(address) -> bool:
    if not isinstance(address, str):
        return False
    try:
        ipaddress.ip_address(address[1:-1] if address.startswith("[") and address.endswith("]") else address)
        return bool(SERVER_IP_CHARS.match(address))
    except ValueError:
        return bool(SERVER_NAME.match(address))


def _is_port(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535


def service_problems(services, groups) -> list[str]:
    """Every way ``services`` is malformed for this inventory, as messages naming the path."""
    problems: list[str] = []
    if not isinstance(services, list) or not services:
        return ["rollout_services: expected a non-empty list of services, got %r" % (services,)]
    names = set()
    ports = {}
    for index, service in enumerate(services):
        where = "rollout_services[%d]" % index
        if not isinstance(service, dict):
            problems.append("%s: expected a dict with name, port and pools" % where)
            continue
        name = service.get("name")
        if not isinstance(name, str) or not SAFE_NAME.match(name):
            problems.append("%s.name: expected letters, digits, '_' and '-', got %r" % (where, name))
        elif name in names:
            problems.append("%s.name: service %r is defined twice" % (where, name))
        else:
            names.add(name)
            where = "rollout_services[%d] (%s)" % (index, name)
        port = service.get("port")
        if not _is_port(port):
            problems.append("%s.port: expected the LB port, 1-65535, got %r" % (where, port))
        elif port in ports:
            problems.append("%s.port: %d is already used by service %r" % (where, port, ports[port]))
        else:
            ports[port] = name
        health = service.get("health_path", "/healthz")
        if not isinstance(health, str) or not HEALTH_PATH.match(health):
            problems.append("%s.health_path: expected a path such as /healthz, got %r" % (where, health))
        pools = service.get("pools")
        if not isinstance(pools, list) or not pools:
            problems.append("%s.pools: expected a non-empty list of pools ({name, group, port})" % where)
            continue
        pool_names = []
        for pindex, pool in enumerate(pools):
            pwhere = "%s.pools[%d]" % (where, pindex)
            if not isinstance(pool, dict):
                problems.append("%s: expected a dict with name, group and port" % pwhere)
                continue
            pname = pool.get("name")
            if not isinstance(pname, str) or not SAFE_NAME.match(pname) or pname == "maintenance":
                problems.append("%s.name: expected letters, digits, '_' and '-' (not 'maintenance'), got %r" % (pwhere, pname))
            elif pname in pool_names:
                problems.append("%s.name: pool %r is defined twice" % (pwhere, pname))
            else:
                pool_names.append(pname)
            group = pool.get("group")
            if not isinstance(group, str) or group not in groups:
                problems.append("%s.group: %r is not a group of the inventory" % (pwhere, group))
            elif not groups[group]:
                problems.append("%s.group: group %r has no hosts" % (pwhere, group))
            if not _is_port(pool.get("port")):
                problems.append("%s.port: expected the app's port, 1-65535, got %r" % (pwhere, pool.get("port")))
            slot = pool.get("slot")
            if slot is not None and (not isinstance(slot, str) or not SAFE_NAME.match(slot) or slot == "main"):
                problems.append("%s.slot: expected the release slot the pool runs in, such as blue (letters, digits, "
                                "'_' and '-'; not 'main'), got %r" % (pwhere, slot))
        problems.extend(_slot_problems(where, [p for p in pools if isinstance(p, dict)], groups))
        active = service.get("active_pool", pool_names[0] if pool_names else None)
        if pool_names and active not in pool_names:
            problems.append("%s.active_pool: %r is not one of its pools %s" % (where, active, pool_names))
        problems.extend(_user_problems(where, service))
        retry_after = service.get("retry_after", 30)
        if not isinstance(retry_after, int) or isinstance(retry_after, bool) or retry_after < 0:
            problems.append("%s.retry_after: expected seconds (an integer >= 0), got %r" % (where, retry_after))
    return problems


def _user_problems(where: str, service: dict) -> list[str]:
    """How users are told apart (user_id) and the A/B override header (variant_header)."""
    problems = []
    user_id = service.get("user_id")
    if user_id is not None:
        kinds = sorted(user_id) if isinstance(user_id, dict) else []
        name = user_id.get(kinds[0]) if len(kinds) == 1 else None
        pattern = HEADER_NAME if kinds == ["header"] else COOKIE_NAME
        if kinds not in (["header"], ["cookie"]) or not isinstance(name, str) or not pattern.match(name):
            problems.append("%s.user_id: expected {header: X-User-Id} or {cookie: uid} (letters, digits, '_'; '-' in a "
                            "header), got %r" % (where, user_id))
    header = service.get("variant_header", "X-Variant")
    if not isinstance(header, str) or not HEADER_NAME.match(header):
        problems.append("%s.variant_header: expected a header name such as X-Variant, got %r" % (where, header))
    return problems


def _slot_problems(where: str, pools: list[dict], groups) -> list[str]:
    """Pools that share hosts must each run in their own release slot, on their own port."""
    problems = []
    for first, pool in enumerate(pools):
        for other in pools[first + 1:]:
            hosts, others = groups.get(pool.get("group"), []), groups.get(other.get("group"), [])
            if not isinstance(hosts, list) or not isinstance(others, list) or not set(hosts) & set(others):
                continue
            shared = sorted(set(hosts) & set(others))
            pair = "%s: pools %r and %r share hosts %s" % (where, pool.get("name"), other.get("name"), shared)
            if not pool.get("slot") or not other.get("slot") or pool.get("slot") == other.get("slot"):
                problems.append("%s, so each needs its own release slot (slot: blue / slot: green)" % pair)
            if pool.get("port") == other.get("port"):
                problems.append("%s, so each needs its own port (both use %r)" % (pair, pool.get("port")))
    return problems


def _address(host: str, hostvars) -> tuple[str | None, str]:
    """Where ``host`` is reached, and the variable that says so: ``rollout_address``, else ``ansible_host``;
    (None, "the inventory name") without either."""
    hvars = hostvars[host] if host in hostvars else {}
    for name in ("rollout_address", "ansible_host"):
        if hvars.get(name):
            return hvars[name], name
    return None, "the inventory name"


def pool_servers(pool: dict, groups, hostvars) -> list[dict]:
    """The servers of a pool: inventory hostname, address (``rollout_address``, ``ansible_host`` or the
    hostname) and the pool's port, sorted by name so every LB renders the same config."""
    servers = []
    for host in sorted(groups[pool["group"]]):
        address, source = _address(host, hostvars)
        address = address or host
        if not _is_server_address(address):
            raise AnsibleFilterError("%s of %s (pool %s): expected a host name or an IP address, got %r"
                                     % (source, host, pool.get("name"), address))
        servers.append({"name": host, "address": address, "port": pool["port"]})
    return servers


def service_members(service: dict, hosts, groups, hostvars, pools=None) -> list[dict]:
    """Where ``hosts`` serve ``service``: one entry per pool that has the host (of ``pools`` only, when
    given), with its address, port and its names on each LB (the HAProxy ``backend/server``, the same in
    the pool's canary backend of a sticky split, and the nginx upstream)."""
    wanted = set(hosts)
    members = []
    for pool in service["pools"]:
        if pools is not None and pool["name"] not in pools:
            continue
        for server in pool_servers(pool, groups, hostvars):
            if server["name"] in wanted:
                members.append(dict(server, host=server["name"], pool=pool["name"],
                                    haproxy_server="be_%s_%s/%s" % (service["name"], pool["name"], server["name"]),
                                    haproxy_canary_server="be_%s_%s_canary/%s" % (service["name"], pool["name"],
                                                                                  server["name"]),
                                    nginx_upstream="fleet_%s_%s" % (service["name"], pool["name"])))
    return members


def covered_pools(service: dict, hosts, groups) -> list[str]:
    """The pools of ``service`` whose every server is one of ``hosts`` (such as the hosts now on a release)."""
    chosen = set(hosts)
    return [pool["name"] for pool in service["pools"] if set(groups[pool["group"]]) <= chosen]


def find_pool(service: dict, name: str) -> dict:
    """The pool called ``name`` of ``service``."""
    for pool in service["pools"]:
        if pool["name"] == name:
            return pool
    raise AnsibleFilterError("find_pool: service %r has no pool %r (its pools: %s)"
                             % (service.get("name"), name, [pool["name"] for pool in service["pools"]]))


def active_pool(service: dict) -> str:
    """The pool a service starts on: ``active_pool`` or its first pool."""
    return service.get("active_pool") or service["pools"][0]["name"]


def host_ips(hosts, hostvars) -> list[str]:
    """The IP addresses ``hosts`` are reached at (``rollout_address``, else ``ansible_host``), sorted, without
    duplicates: literals only, since a source ACL (HAProxy ``src``, nginx ``geo``) takes no host names."""
    found = set()
    for host in hosts or []:
        try:
            found.add(str(ipaddress.ip_address(_address(host, hostvars)[0])))
        except ValueError:
            continue
    return sorted(found)


def preview_pool(service: dict, active: str) -> str:
    """The pool the preview route reaches: the first pool that is not active (the active one if alone)."""
    for pool in service["pools"]:
        if pool["name"] != active:
            return pool["name"]
    return active


def haproxy_route_entries(service: dict, route: str, preview: bool = False) -> dict:
    """A service's HAProxy pool map: ``active`` names the backend of ``route`` (a pool, or ``maintenance``);
    ``preview`` names the preview pool's backend when the preview route is open, else the same as ``active``
    (closed, a preview request gets what every user gets). One rule for the map the LB role creates and the
    one a route step writes."""
    backend = "be_%s_%%s" % service["name"]
    return {"active": backend % route, "preview": backend % (preview_pool(service, route) if preview else route)}


class FilterModule:
    def filters(self):
        return {
            "haproxy_route_entries": haproxy_route_entries,
            "service_problems": service_problems,
            "pool_servers": pool_servers,
            "service_members": service_members,
            "covered_pools": covered_pools,
            "active_pool": active_pool,
            "preview_pool": preview_pool,
            "host_ips": host_ips,
            "find_pool": find_pool,
        }
