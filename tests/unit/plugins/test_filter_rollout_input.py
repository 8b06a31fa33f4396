"""Shared strategy input checks, service members and the nginx routing of drained servers (pure functions)."""

from __future__ import annotations

from ansible_collections.fleet.rollout.plugins.filter.nginx_routing import nginx_routing
from ansible_collections.fleet.rollout.plugins.filter.rollout_input import rollout_input_problems, rollout_service
from ansible_collections.fleet.rollout.plugins.filter.services import covered_pools, service_members

GROUPS = {"app": ["app1", "app2", "app3"], "blue": ["app1"], "green": ["app2"], "lb": ["lb1", "lb2"], "empty": []}
HOSTVARS = {"app1": {"ansible_host": "10.0.0.1"}}
WEB = {"name": "web", "port": 80, "pools": [{"name": "main", "group": "app", "port": 8080}]}
SHOP = {"name": "shop", "port": 81, "pools": [{"name": "blue", "group": "blue", "port": 8080},
                                              {"name": "green", "group": "green", "port": 8081}]}


def problems(version="2.0.0", services=None, name="", lb_group="lb", hosts=("app1", "app2")):
    return rollout_input_problems(version, [WEB] if services is None else services, name, lb_group, list(hosts),
                                  GROUPS, HOSTVARS)


def test_good_input():
    assert problems() == []
    assert problems(services=[WEB, SHOP], name="shop") == []


def test_each_problem_names_its_variable():
    assert problems(version="../etc") == [
        "rollout_version: expected a safe name (letters, digits, '.', '_', '-'; not starting with '.' or '-'; "
        "no '/'), got '../etc'"]
    assert problems(version=None) == ["rollout_version: required, the release to roll out (such as 2.0.0)"]
    # YAML reads an unquoted 2.10 as the number 2.1: refused rather than rolled out as 2.1.
    assert problems(version=2.10) == [
        'rollout_version: got the number 2.1, not a version; quote it (rollout_version: "2.10"): YAML reads an '
        'unquoted 2.10 as the number 2.1']
    assert problems(version=3) == []
    assert problems(services=[WEB, SHOP]) == [
        "rollout_service: required when rollout_services has more than one service ['web', 'shop']"]
    assert problems(name="nope") == ["rollout_service: 'nope' is not one of rollout_services ['web']"]
    assert problems(lb_group="lbs") == ["rollout_lb_group: 'lbs' is not a group of the inventory"]
    assert problems(lb_group="empty") == ["rollout_lb_group: group 'empty' has no hosts"]
    assert problems(services=[WEB, SHOP], name="shop", hosts=["app1", "app3"]) == [
        "the play's hosts ['app3'] are not servers of service 'shop' (its pools use groups ['blue', 'green']): "
        "target the app group of the service"]
    assert problems(services=[{"name": "x"}])[0].startswith("rollout_services[0] (x).port")


def test_rollout_service_lookup():
    assert rollout_service([WEB]) is WEB
    assert rollout_service([WEB, SHOP], "shop") is SHOP
    assert rollout_service([WEB, SHOP]) is None


def test_service_members_name_each_server_on_each_lb():
    assert service_members(SHOP, ["app1", "app2", "app9"], GROUPS, HOSTVARS) == [
        {"name": "app1", "host": "app1", "address": "10.0.0.1", "port": 8080, "pool": "blue",
         "haproxy_server": "be_shop_blue/app1", "haproxy_canary_server": "be_shop_blue_canary/app1",
         "nginx_upstream": "fleet_shop_blue"},
        {"name": "app2", "host": "app2", "address": "app2", "port": 8081, "pool": "green",
         "haproxy_server": "be_shop_green/app2", "haproxy_canary_server": "be_shop_green_canary/app2",
         "nginx_upstream": "fleet_shop_green"},
    ]


def test_nginx_routing_marks_drained_servers_down_and_weighs_slow_starts():
    plain = nginx_routing(WEB, GROUPS, HOSTVARS, "main")
    assert all("down" not in s and "weight" not in s for s in plain["upstreams"][0]["servers"])
    drained = nginx_routing(WEB, GROUPS, HOSTVARS, "main", down=["app2"])
    assert [s.get("down", False) for s in drained["upstreams"][0]["servers"]] == [False, True, False]
    weighed = nginx_routing(WEB, GROUPS, HOSTVARS, "main", weights={"app3": 10})
    assert [s["weight"] for s in weighed["upstreams"][0]["servers"]] == [100, 100, 10]
    # Without weights the output is the LB role's, byte for byte: no weight key at all.
    assert nginx_routing(WEB, GROUPS, HOSTVARS, "main", down=[], weights={}) == plain


def test_covered_pools_are_those_with_every_server_among_the_hosts():
    assert covered_pools(SHOP, ["app1", "app2"], GROUPS) == ["blue", "green"]
    assert covered_pools(SHOP, ["app1"], GROUPS) == ["blue"]
    assert covered_pools(WEB, ["app1", "app2"], GROUPS) == []


def test_nginx_routing_sticky_split_refuses_what_it_cannot_route():
    split = nginx_routing(WEB, GROUPS, HOSTVARS, "main", sticky={"canary": ["app3"], "share": 12.5, "token": "2.0.0-1"})
    canary = [u for u in split["upstreams"] if u["name"] == "fleet_web_main_canary"][0]["servers"]
    # The canary upstream falls back on the stable hosts; the stable side has the canary down.
    assert [bool(server.get("backup")) for server in canary] == [True, True, False]
    assert [bool(server.get("down")) for server in split["upstreams"][0]["servers"]] == [False, False, True]
    assert split["split_clients"][0]["buckets"] == [{"percent": "12.5", "value": "canary"}, {"value": "stable"}]
    for sticky, active, message in (
            ({"canary": ["app9"], "share": 10, "token": "t"}, "main", "none of the sticky canary hosts"),
            ({"canary": ["app3"], "share": 101, "token": "t"}, "main", "percentage 0-100"),
            ({"canary": ["app3"], "share": 10, "token": "t"}, "maintenance", "needs a pool to split")):
        try:
            nginx_routing(WEB, GROUPS, HOSTVARS, active, sticky=sticky)
        except Exception as exc:  # pylint: disable=broad-except
            assert message in str(exc), exc
        else:
            raise AssertionError("accepted %r" % (sticky,))
