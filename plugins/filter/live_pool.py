# Copyright: fleet.rollout contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pool an LB host routes a service's users to, read from its own routing (HAProxy's pool map,
nginx's routing file). The LB roles start a lost rollout state from it, and refuse a state that
disagrees with it: either way the state would send the next rollout to the pool that serves users."""

from __future__ import annotations

import base64
import re

from ansible.errors import AnsibleFilterError

from ansible_collections.fleet.rollout.plugins.filter.nginx_routing import MAINTENANCE, pool_variable, upstream_name
from ansible_collections.fleet.rollout.plugins.module_utils._haproxy_map import parse_file

_NGINX_MAP = re.compile(r"^\s*map\s+\S+\s+(\$\S+)\s*\{\s*$")
_NGINX_ENTRY = re.compile(r"^\s*(\S+)\s+(\S+?)\s*;\s*$")


def _haproxy(text: str, service: str) -> str | None:
    """The ``active`` entry of the pool map: ``be_<service>_<pool>``."""
    prefix = "be_%s_" % service
    backend = dict(parse_file(text)).get("active", "")
    return backend[len(prefix):] if backend.startswith(prefix) and len(backend) > len(prefix) else None


def _nginx_pool_map(text: str, service: str):
    """(key, value) of each line of the service's pool variable map, unquoted, ``default`` with the rest."""
    variable, inside = pool_variable(service), False
    for line in text.splitlines():
        if not inside:
            match = _NGINX_MAP.match(line)
            inside = bool(match) and match.group(1) == variable
            continue
        if line.strip() == "}":
            inside = False
            continue
        match = _NGINX_ENTRY.match(line)
        if match:
            yield match.group(1).strip("\"'"), match.group(2).strip("\"'")


def _nginx(text: str, service: str) -> str | None:
    """The default of the service's pool variable: its active pool's upstream, or ``maintenance``."""
    prefix = upstream_name(service, "")
    for key, value in _nginx_pool_map(text, service):
        if key == "default":
            if value == MAINTENANCE:
                return value
            return value[len(prefix):] if value.startswith(prefix) and len(value) > len(prefix) else None
    return None


def _haproxy_preview(text: str) -> bool:
    """Open when the pool map's ``preview`` entry names another backend than ``active``."""
    entries = dict(parse_file(text))
    return bool(entries.get("preview")) and entries.get("preview") != entries.get("active")


def _nginx_preview(text: str, service: str) -> bool:
    """Open when the service's pool variable has an entry for the preview header (key ``11``, or ``~^11:``
    with a split): nginx_routing writes one only while the preview route is open."""
    return any(key == "11" or key.startswith("~^11:") for key, _value in _nginx_pool_map(text, service))


def live_pool(text, service: str, lb: str) -> str | None:
    """The pool (or ``maintenance``) ``text``, the LB's routing of ``service``, sends users to; None when
    there is no routing (``text`` None or empty) or it names none."""
    if lb not in ("haproxy", "nginx"):
        raise AnsibleFilterError("live_pool: lb must be haproxy or nginx, got %r" % (lb,))
    if not isinstance(service, str) or not service:
        raise AnsibleFilterError("live_pool: expected a service name, got %r" % (service,))
    if text is None:
        return None
    if not isinstance(text, str):
        raise AnsibleFilterError("live_pool: expected the routing's text, got %s" % type(text).__name__)
    return _haproxy(text, service) if lb == "haproxy" else _nginx(text, service)


def _routings(results, name: str):
    """(service name, routing text) from the registered results of ansible.builtin.slurp looped over the
    services (each item a service), for the files that exist."""
    if not isinstance(results, list):
        raise AnsibleFilterError("%s: expected the results of a slurp loop over the services, got %s"
                                 % (name, type(results).__name__))
    for result in results:
        if not isinstance(result, dict) or not isinstance(result.get("item"), dict) or "name" not in result["item"]:
            raise AnsibleFilterError("%s: each result needs its service as the item, got %r" % (name, result))
        content = result.get("content")
        if not content or result.get("skipped"):
            continue
        try:
            yield result["item"]["name"], base64.b64decode(content).decode("utf-8")
        except (ValueError, UnicodeDecodeError) as error:
            raise AnsibleFilterError("%s: the routing of %r is not base64 UTF-8 text: %s"
                                     % (name, result["item"]["name"], error)) from error


def live_pools(results, lb: str) -> dict[str, str]:
    """{service: pool} from the registered results of ansible.builtin.slurp looped over the services
    (each item a service): the services whose routing exists and names a pool or ``maintenance``."""
    found = {}
    for service, text in _routings(results, "live_pools"):
        pool = live_pool(text, service, lb)
        if pool:
            found[service] = pool
    return found


def live_previews(results, lb: str) -> dict[str, bool]:
    """{service: whether its preview route is open} from the same results, for the services whose routing
    exists. Read from the routing, not the rollout state: every step that writes the routing without asking
    for the preview route closes it (a split, a drain on nginx), and only a route step records that."""
    if lb not in ("haproxy", "nginx"):
        raise AnsibleFilterError("live_previews: lb must be haproxy or nginx, got %r" % (lb,))
    return {service: _haproxy_preview(text) if lb == "haproxy" else _nginx_preview(text, service)
            for service, text in _routings(results, "live_previews")}


class FilterModule:
    def filters(self):
        return {"live_pool": live_pool, "live_pools": live_pools, "live_previews": live_previews}
