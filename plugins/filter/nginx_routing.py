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


def sticky_cookie(service: str) -> str:
    """The cookie that keeps a user on one side of a sticky split (nginx reads it as $cookie_<name>)."""
    return "fleet_%s" % service.replace("-", "_")


def new_cookie_variable(service: str) -> str:
    """Set by the routing file to the side cookie's value for a user who just drew a side, else empty;
    the server block (fleet.rollout.nginx role, which spells both names the same way) turns it into
    the Set-Cookie header."""
    return "$fleet_%s_new_cookie" % service.replace("-", "_")


def unknown_variant_variable(service: str) -> str:
    """Set by the routing file, while an A/B test runs, to the test's variants when the request's variant
    header names none of them, else empty; the server block answers such a request 400."""
    return "$fleet_%s_ab_unknown" % service.replace("-", "_")


def variant_header_variable(service: dict) -> str:
    return "$http_" + service.get("variant_header", "X-Variant").lower().replace("-", "_")


def user_variable(service: dict) -> str:
    """The nginx variable of the service's user id: ``user_id`` is {header: name} (X-User-Id by default)
    or {cookie: name}."""
    user_id = service.get("user_id") or {"header": "X-User-Id"}
    if user_id.get("cookie"):
        return "$cookie_" + user_id["cookie"]
    return "$http_" + user_id["header"].lower().replace("-", "_")


def _share(value) -> str:
    share = float(value)
    if not 0 <= share <= 100:
        raise AnsibleFilterError("nginx_routing: sticky share must be a percentage 0-100, got %r" % (value,))
    return ("%.2f" % share).rstrip("0").rstrip(".")


def nginx_routing(service: dict, groups, hostvars, active: str, preview_header: str = "X-Rollout-Preview",
                  max_fails: int = 1, fail_timeout: int = 2, keepalive: int = 16,
                  preview_guard: str = "$fleet_preview_allowed", down=None, weights=None, sticky=None,
                  ab=None, preview: bool = False) -> dict:
    """``upstreams``, ``maps`` and ``split_clients`` for nginx_upstream: one upstream per pool, the pool
    variable, and the sticky split's cookie variable.

    The variable names the upstream of the active pool, or, with ``preview``
    open, the preview pool when the request carries the preview header set to
    1 and ``preview_guard`` (a variable the nginx role sets to 1 for trusted
    source networks) is 1; ``active`` may be ``maintenance`` (the server block
    then answers 503 with Retry-After). With ``preview`` closed (the default)
    a preview request gets what every user gets.

    ``down`` (inventory hostnames) marks servers ``down``, which is how nginx drains them (with a reload).
    ``weights`` ({hostname: percent}) gives those servers that share of a full weight of 100, for a slow
    start; with any weight given, every server of the affected upstreams gets an explicit weight.

    ``sticky`` ({canary: [hostnames], share: percent, token: text}) splits the active pool's users
    in two sides: the canary hosts (a second upstream, with the other hosts as its backup should every
    canary host fail) and the rest (the canary hosts ``down`` in the pool's upstream). A user whose
    cookie (``sticky_cookie``) holds ``<token>.canary`` or ``<token>.stable`` keeps that side; any other
    user draws one (``share`` percent canary, by ``$request_id``) and gets the cookie.

    ``ab`` ({token: text, split: [{variant: pool, percent}]}) routes an A/B test: each request to the
    variant the service's ``variant_header`` names, else its cookie's for this test, else the one the
    hash of its user id (the service's ``user_id``) falls on, the user then given the cookie.
    """
    sticky = dict(sticky or {})
    if sticky and ab:
        raise AnsibleFilterError("nginx_routing: a sticky canary and an A/B test cannot split %r at once" % service["name"])
    down = set(down or [])
    weights = dict(weights or {})
    name = service["name"]
    pools = [pool["name"] for pool in service["pools"]]
    if active != MAINTENANCE and active not in pools:
        raise AnsibleFilterError("nginx_routing: active pool %r of service %r is not one of %s or %r"
                                 % (active, name, pools, MAINTENANCE))
    variable = name.replace("-", "_")
    if sticky:
        if active not in pools:
            raise AnsibleFilterError("nginx_routing: a sticky split needs a pool to split, service %r routes to %r"
                                     % (name, active))
        down |= set(sticky["canary"])
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
        if sticky and pool["name"] == active:
            canary = [server for server in servers if server["name"] in sticky["canary"]]
            if not canary:
                raise AnsibleFilterError("nginx_routing: none of the sticky canary hosts %s is in pool %r of %r"
                                         % (sorted(sticky["canary"]), active, name))
            upstreams.append({"name": upstream_name(name, active + "_canary"), "keepalive": keepalive, "servers": [
                dict({"address": "%s:%d" % (server["address"], server["port"]), "max_fails": max_fails,
                      "fail_timeout": fail_timeout}, **({} if server in canary else {"backup": True}))
                for server in servers]})
    header_variable = "$http_" + preview_header.lower().replace("-", "_")
    default = MAINTENANCE if active == MAINTENANCE else upstream_name(name, active)
    # In maintenance the preview route reaches the first pool: the new release
    # can be smoke-tested before traffic comes back.
    preview_upstream = upstream_name(name, preview_pool(service, active))
    cookie = "$cookie_" + sticky_cookie(name)
    if sticky:
        side_maps, splits, sides = _sticky_blocks(name, sticky, cookie)
        routes = {"canary": upstream_name(name, active + "_canary")}
    elif ab:
        side_maps, splits, sides = _ab_blocks(name, pools, ab, cookie, user_variable(service),
                                              variant_header_variable(service))
        routes = dict((variant, upstream_name(name, variant)) for variant in sides)
    else:
        return {
            "upstreams": upstreams,
            "maps": [
                {"source": header_variable + preview_guard, "variable": pool_variable(name), "default": default,
                 "entries": [{"key": "11", "value": preview_upstream}] if preview else []},
                {"source": cookie, "variable": new_cookie_variable(name), "default": ""},
                {"source": variant_header_variable(service), "variable": unknown_variant_variable(name), "default": ""},
            ],
            "split_clients": [],
        }
    side = "$fleet_%s_side" % variable
    pool_map = {
        # The side ends the source, so header and guard are "11" exactly when the first matches.
        "source": header_variable + preview_guard + ":" + side, "variable": pool_variable(name), "default": default,
        "entries": ([{"key": "~^11:(%s)$" % "|".join(sides), "value": preview_upstream}] if preview else [])
        + [{"key": "~:%s$" % route, "value": upstream} for route, upstream in sorted(routes.items())]}
    if not ab:
        side_maps.append({"source": variant_header_variable(service), "variable": unknown_variant_variable(name),
                          "default": ""})
    return {"upstreams": upstreams, "maps": [pool_map] + side_maps, "split_clients": splits}


def _sticky_blocks(name: str, sticky: dict, cookie: str) -> tuple[list, list, list]:
    """A sticky canary's maps and draw: $fleet_<service>_side is canary or stable."""
    variable = name.replace("-", "_")
    token, draw, side = sticky["token"], "$fleet_%s_draw" % variable, "$fleet_%s_side" % variable
    kept = [token + ".canary", token + ".stable"]
    share = _share(sticky["share"])
    maps = [
        {"source": cookie, "variable": side, "default": draw,
         "entries": [{"key": kept[0], "value": "canary"}, {"key": kept[1], "value": "stable"}]},
        {"source": cookie, "variable": new_cookie_variable(name), "default": token + "." + draw,
         "entries": [{"key": kept[0], "value": ""}, {"key": kept[1], "value": ""}]},
    ]
    # $request_id is random: a user without a side draws one at the share.
    splits = [{"key": "${request_id}", "variable": draw,
               "buckets": ([{"percent": share, "value": "canary"}] if float(share) > 0 else [])
               + ([{"value": "stable"}] if float(share) < 100 else [])}]
    return maps, splits, ["canary", "stable"]


def _ab_blocks(name: str, pools: list, ab: dict, cookie: str, user_variable: str,
               variant_header: str) -> tuple[list, list, list]:
    """An A/B test's maps and hash split: $fleet_<service>_side is the variant (a pool) the request
    goes to - the one the variant header names, else the cookie's for this test, else the one the
    MurmurHash2 of the user id (``$request_id`` without one: a random draw) falls on."""
    variable = name.replace("-", "_")
    token, split = ab["token"], ab["split"]
    variants = [entry["variant"] for entry in split]
    unknown = sorted(set(variants) - set(pools))
    if unknown:
        raise AnsibleFilterError("nginx_routing: A/B variants %s are not pools of %r (its pools: %s)"
                                 % (unknown, name, pools))
    total = sum(float(_share(entry["percent"])) for entry in split)
    if abs(total - 100.0) > 1e-9:
        raise AnsibleFilterError("nginx_routing: the A/B split must add up to 100 percent, got %s" % total)
    key, hashed = "$fleet_%s_ab_key" % variable, "$fleet_%s_ab_hashed" % variable
    asked, kept = "$fleet_%s_ab_asked" % variable, "$fleet_%s_ab_kept" % variable
    maps = [
        {"source": user_variable, "variable": key, "default": user_variable,
         "entries": [{"key": "", "value": "$request_id"}]},
        {"source": variant_header, "variable": asked, "default": "",
         "entries": [{"key": variant, "value": variant} for variant in variants]},
        # A header naming no variant is a mistake (QA's): answered 400 with the test's variants.
        {"source": variant_header, "variable": unknown_variant_variable(name), "default": ",".join(variants),
         "entries": [{"key": "", "value": ""}] + [{"key": variant, "value": ""} for variant in variants]},
        {"source": cookie, "variable": kept, "default": "",
         "entries": [{"key": token + "." + variant, "value": variant} for variant in variants]},
        # Asked first, then kept, then hashed: the first non-empty of the three.
        {"source": "%s:%s:%s" % (asked, kept, hashed), "variable": "$fleet_%s_side" % variable, "default": "",
         "entries": [{"key": "~^([^:]+):", "value": "$1"}, {"key": "~^:([^:]+):", "value": "$1"},
                     {"key": "~^::(.+)$", "value": "$1"}]},
        # A user asking for a variant, kept by the cookie, or refused (unknown variant) is given no cookie.
        {"source": asked + kept + unknown_variant_variable(name), "variable": new_cookie_variable(name), "default": "",
         "entries": [{"key": "", "value": token + "." + hashed}]},
    ]
    buckets = [{"percent": _share(entry["percent"]), "value": entry["variant"]} for entry in split[:-1]]
    splits = [{"key": key, "variable": hashed, "buckets": buckets + [{"value": split[-1]["variant"]}]}]
    return maps, splits, variants


class FilterModule:
    def filters(self):
        return {"nginx_routing": nginx_routing}
