"""The shadow_problems and shadow_writes filters."""

from __future__ import annotations

import pytest

from ansible_collections.fleet.rollout.plugins.filter.shadow import shadow_problems, shadow_writes

SERVICE = {"name": "orders", "pools": [{"name": "blue", "group": "blue", "port": 8080},
                                       {"name": "green", "group": "green", "port": 8080},
                                       {"name": "slot", "group": "app", "port": 8081, "slot": "slot"}]}


def test_good_input_has_no_problems():
    assert shadow_problems("green", SERVICE, "blue") == []
    assert shadow_problems("green", SERVICE, "blue", duration="30", sample="12.5", methods=["get", "POST"],
                           environment={"DB": "scratch"}, then="blue_green", port="19081",
                           release_environment={"DB": "live", "PORT": "8080"}) == []
    # Writes isolated by other means (the shadow hosts' own database server), as the user says.
    assert shadow_problems("green", SERVICE, "blue", methods=["POST"], writes_isolated=True) == []


@pytest.mark.parametrize("environment, release_environment", [
    # Only adds a variable: the writes still go where the users' release writes.
    ({"LOG_LEVEL": "debug"}, {"DB": "live"}),
    # Sets the variable to the value it already has.
    ({"DB": "live"}, {"DB": "live"}),
    ({"DB": "scratch"}, None),
])
def test_mirrored_writes_need_an_environment_that_points_elsewhere(environment, release_environment):
    problems = shadow_problems("green", SERVICE, "blue", methods=["GET", "POST"], environment=environment,
                               release_environment=release_environment)
    assert [p for p in problems if p.startswith("shadow_release_environment: POST write, and")] == problems, problems
    assert len(problems) == 1 and "shadow_writes_isolated=true" in problems[0]


@pytest.mark.parametrize("pool, kwargs, message", [
    ("red", {}, "shadow_pool: red is not a pool of orders (its pools: blue, green, slot)"),
    ("blue", {}, "shadow_pool: blue is the active pool"),
    ("slot", {}, "shadow_pool: slot shares its hosts with the active pool"),
    ("green", {"duration": 0}, "shadow_duration: expected seconds above 0, got 0"),
    ("green", {"duration": "soon"}, "shadow_duration: expected seconds above 0"),
    ("green", {"sample": 0}, "shadow_sample_percent: expected a percent above 0, at most 100, in steps of 0.01, got 0"),
    ("green", {"sample": 100.001}, "shadow_sample_percent: expected a percent above 0"),
    ("green", {"methods": "GET"}, "shadow_methods: expected a non-empty list of GET, HEAD, POST, PUT, PATCH, DELETE,"),
    ("green", {"methods": ["GET", "PROPFIND"]}, "shadow_methods: expected a non-empty list of GET, HEAD"),
    ("green", {"methods": ["GET", "post", "DELETE"]}, "shadow_methods: POST, DELETE write"),
    ("green", {"then": "canary"}, "shadow_then: expected none, blue_green or ramped, got 'canary'"),
    ("slot", {"then": "blue_green"}, "shadow_then: blue_green flips to the idle pool, green, not shadow_pool slot"),
    ("green", {"port": 80}, "shadow_relay_port: expected a port 1024-65535, got 80"),
])
def test_each_problem_names_its_variable(pool, kwargs, message):
    problems = shadow_problems(pool, SERVICE, "blue", **kwargs)
    assert any(problem.startswith(message) for problem in problems), problems


def test_writes():
    assert shadow_writes(["GET", "head", "options", "post", "Patch"]) == ["POST", "PATCH"]
    assert shadow_writes([]) == []
