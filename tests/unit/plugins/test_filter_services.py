"""The service model filters (pure functions)."""

from __future__ import annotations

import pytest

from ansible_collections.fleet.rollout.plugins.filter.services import active_pool, pool_servers, preview_pool, service_problems

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


def test_active_and_preview_pools():
    assert active_pool(shop()) == "blue" and active_pool(shop(active_pool="green")) == "green"
    assert preview_pool(shop(), "blue") == "green" and preview_pool(shop(), "green") == "blue"
    assert preview_pool(shop(pools=[{"name": "main", "group": "all", "port": 1}]), "main") == "main"
