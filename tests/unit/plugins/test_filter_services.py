"""The service model filters (pure functions)."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.fleet.rollout.plugins.filter.services import (
    host_ips,
    active_pool, find_pool, haproxy_route_entries, pool_servers, preview_pool, service_members, service_problems)

GROUPS = {"blue": ["app2", "app1"], "green": ["app3"], "empty": [], "all": ["app1", "app2", "app3"]}


def shop(**changes):
    service = {"name": "shop", "port": 80, "pools": [{"name": "blue", "group": "blue", "port": 8080},
                                                     {"name": "green", "group": "green", "port": 8080}]}
    service.update(changes)
    return service


def test_a_good_service_has_no_problem():
    assert service_problems([shop(), shop(name="api", port=81, active_pool="green")], GROUPS) == []


@pytest.mark.parametrize("services, message", [
    ([], "rollout_services: expected a non-empty list"),
    ([shop(name="../x")], "rollout_services[0].name: expected letters"),
    # A trailing newline passes a regex that ends in $ (it matches before a final newline).
    ([shop(name="shop\n")], "rollout_services[0].name: expected letters"),
    ([shop(health_path="/healthz\n")], ".health_path: expected a path"),
    ([shop(), shop()], "rollout_services[1].name: service 'shop' is defined twice"),
    ([shop(port=0)], "rollout_services[0] (shop).port: expected the LB port"),
    ([shop(), shop(name="api")], "rollout_services[1] (api).port: 80 is already used by service 'shop'"),
    ([shop(health_path="healthz")], ".health_path: expected a path"),
    ([shop(health_path="/h\n    server x 1.2.3.4:80")], ".health_path: expected a path"),
    ([shop(health_path="/h#x")], ".health_path: expected a path"),
    ([shop(pools=[])], ".pools: expected a non-empty list"),
    ([shop(pools=[{"name": "blue", "group": "nope", "port": 1}])], ".pools[0].group: 'nope' is not a group"),
    ([shop(pools=[{"name": "blue", "group": "empty", "port": 1}])], ".pools[0].group: group 'empty' has no hosts"),
    ([shop(pools=[{"name": "maintenance", "group": "blue", "port": 1}])], ".pools[0].name: expected letters"),
    ([shop(pools=[{"name": "a", "group": "blue", "port": 99999}])], ".pools[0].port: expected the app's port"),
    ([shop(active_pool="red")], ".active_pool: 'red' is not one of its pools ['blue', 'green']"),
    ([shop(retry_after=-1)], ".retry_after: expected seconds"),
    ([shop(pools=[{"name": "blue", "group": "all", "port": 8081, "slot": "main"},
                  {"name": "green", "group": "blue", "port": 8082, "slot": "green"}])], ".pools[0].slot: expected the release slot"),
    ([shop(pools=[{"name": "blue", "group": "all", "port": 8081},
                  {"name": "green", "group": "blue", "port": 8082}])],
     "rollout_services[0] (shop): pools 'blue' and 'green' share hosts ['app1', 'app2'], so each needs its own release slot"),
    ([shop(pools=[{"name": "blue", "group": "all", "port": 8081, "slot": "x"},
                  {"name": "green", "group": "all", "port": 8082, "slot": "x"}])], "so each needs its own release slot"),
    ([shop(pools=[{"name": "blue", "group": "all", "port": 8081, "slot": "blue"},
                  {"name": "green", "group": "all", "port": 8081, "slot": "green"}])], "so each needs its own port (both use 8081)"),
])
def test_each_problem_names_its_path(services, message):
    problems = service_problems(services, GROUPS)
    assert any(message in problem for problem in problems), problems


def test_pool_servers_are_sorted_with_addresses():
    hostvars = {"app1": {"ansible_host": "10.0.0.1"}, "app2": {"rollout_address": "app2.internal", "ansible_host": "x"}}
    assert pool_servers({"name": "blue", "group": "blue", "port": 8080}, GROUPS, hostvars) == [
        {"name": "app1", "address": "10.0.0.1", "port": 8080},
        {"name": "app2", "address": "app2.internal", "port": 8080},
    ]


@pytest.mark.parametrize("hostvars, message", [
    ({"app1": {"ansible_host": "10.0.0.1\n    server evil 6.6.6.6:80"}}, "ansible_host of app1 (pool blue)"),
    ({"app1": {"rollout_address": "app1 backup"}}, "rollout_address of app1 (pool blue)"),
    ({"app1": {"rollout_address": "app1;"}}, "rollout_address of app1"),
    ({"app1": {"ansible_host": "-x"}}, "ansible_host of app1"),
    ({"app1": {"ansible_host": "["}}, "ansible_host of app1"),
    ({"app1": {"ansible_host": "fe80::1%eth0\nserver x"}}, "ansible_host of app1"),
    ({"app1": {"ansible_host": "fe80::1%eth0#"}}, "ansible_host of app1"),
])
def test_a_server_address_that_could_change_the_lb_config_is_refused(hostvars, message):
    with pytest.raises(AnsibleFilterError, match="expected a host name or an IP address") as err:
        pool_servers({"name": "blue", "group": "blue", "port": 8080}, GROUPS, hostvars)
    assert message in str(err.value)


def test_ipv6_and_bracketed_addresses_are_accepted():
    hostvars = {"app1": {"ansible_host": "::1"}, "app2": {"rollout_address": "[fd00::2]"}}
    assert [s["address"] for s in pool_servers({"name": "blue", "group": "blue", "port": 1}, GROUPS, hostvars)] == \
        ["::1", "[fd00::2]"]
    for address in ("10.0.0.1", "::ffff:10.0.0.1", "fe80::1%eth0", "app_1.example.com."):
        assert pool_servers({"name": "g", "group": "green", "port": 1}, GROUPS, {"app3": {"ansible_host": address}})


def test_active_and_preview_pools():
    assert active_pool(shop()) == "blue" and active_pool(shop(active_pool="green")) == "green"
    assert preview_pool(shop(), "blue") == "green" and preview_pool(shop(), "green") == "blue"
    assert preview_pool(shop(pools=[{"name": "main", "group": "all", "port": 1}]), "main") == "main"


def test_haproxy_route_entries_close_the_preview_onto_the_route_unless_asked():
    assert haproxy_route_entries(shop(), "blue") == {"active": "be_shop_blue", "preview": "be_shop_blue"}
    assert haproxy_route_entries(shop(), "blue", True) == {"active": "be_shop_blue", "preview": "be_shop_green"}
    assert haproxy_route_entries(shop(), "green", True) == {"active": "be_shop_green", "preview": "be_shop_blue"}
    # In maintenance the preview route reaches the first pool (a release can be tried before users return).
    assert haproxy_route_entries(shop(), "maintenance", True) == {"active": "be_shop_maintenance", "preview": "be_shop_blue"}


SLOTS = shop(pools=[{"name": "blue", "group": "all", "port": 8081, "slot": "blue"},
                    {"name": "green", "group": "all", "port": 8082, "slot": "green"}])


def test_the_slots_layout_is_a_good_service():
    assert service_problems([SLOTS], GROUPS) == []


def test_members_of_some_pools_only():
    every = service_members(SLOTS, ["app1"], GROUPS, {})
    assert [(m["pool"], m["port"], m["haproxy_server"]) for m in every] == [
        ("blue", 8081, "be_shop_blue/app1"), ("green", 8082, "be_shop_green/app1")]
    green = service_members(SLOTS, ["app1"], GROUPS, {}, ["green"])
    assert [(m["pool"], m["nginx_upstream"]) for m in green] == [("green", "fleet_shop_green")]


def test_find_pool_by_name():
    assert find_pool(SLOTS, "green")["slot"] == "green"
    with pytest.raises(AnsibleFilterError, match=r"service 'shop' has no pool 'red' \(its pools: \['blue', 'green'\]\)"):
        find_pool(SLOTS, "red")


def test_host_ips_are_the_ip_literals_only_sorted_once():
    hostvars = {"lb1": {"ansible_host": "10.0.0.7"}, "lb2": {"ansible_host": "lb2.example.com"},
                "lb3": {"rollout_address": "fd00::1", "ansible_host": "10.0.0.9"}, "lb4": {},
                "lb5": {"ansible_host": "10.0.0.7"}, "lb6": {"ansible_host": "10.0.0.8\nacl x src 0.0.0.0/0"}}
    assert host_ips(["lb1", "lb2", "lb3", "lb4", "lb5", "lb6", "missing"], hostvars) == ["10.0.0.7", "fd00::1"]
    assert host_ips([], hostvars) == []
