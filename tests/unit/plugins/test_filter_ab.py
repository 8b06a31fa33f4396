"""An A/B test's input checks, its split in order and its HAProxy hash ranges (pure functions)."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.fleet.rollout.plugins.filter.ab import ab_problems, ab_ranges, ab_split

EXP = {"name": "exp", "port": 80, "pools": [
    {"name": "a", "group": "blue", "port": 8080},
    {"name": "b", "group": "green", "port": 8080},
    {"name": "c", "group": "blue", "port": 8081},
]}
GROUPS = {"blue": ["app1", "app2"], "green": ["app3", "app4"]}
PLAY = ["app1", "app2", "app3", "app4"]
GOAL = {"method": "GET", "path": "/checkout"}


def test_ranges_cover_the_hash_space_in_order_and_move_few_users():
    assert ab_ranges([{"variant": "a", "percent": 70}, {"variant": "b", "percent": 30}]) == {"0:6999": "a", "7000:9999": "b"}
    assert ab_ranges([{"variant": "a", "percent": 33.33}, {"variant": "b", "percent": 33.33},
                      {"variant": "c", "percent": 33.34}]) == {"0:3332": "a", "3333:6665": "b", "6666:9999": "c"}
    assert ab_ranges([{"variant": "a", "percent": 0}, {"variant": "b", "percent": 100}]) == {"0:9999": "b"}
    with pytest.raises(AnsibleFilterError, match="add up to 90, not 100"):
        ab_ranges([{"variant": "a", "percent": 40}, {"variant": "b", "percent": 50}])
    with pytest.raises(AnsibleFilterError, match="steps of 0.01"):
        ab_ranges([{"variant": "a", "percent": 50.001}, {"variant": "b", "percent": 49.999}])


def test_the_split_follows_the_pool_order():
    assert ab_split({"b": 30, "a": 70}, EXP) == [{"variant": "a", "percent": 70.0}, {"variant": "b", "percent": 30.0}]


def test_good_input_has_no_problem():
    assert ab_problems({"a": 50, "b": 50}, EXP, GROUPS, PLAY, versions={"b": "2.0.0"}, control="a", goal=GOAL) == []


@pytest.mark.parametrize("split, kwargs, message", [
    ({"a": 60, "b": 50}, {}, "ab_test_split: the percentages add up to 110, not 100"),
    ({"a": 100}, {}, "ab_test_split: expected two variants or more"),
    ({"a": 50, "z": 50}, {}, "ab_test_split: 'z' is not a pool of service exp"),
    ({"a": 50, "c": 50}, {}, "host app1 is in both a and c"),
    ({"a": "half", "b": 50}, {}, "ab_test_split.a: expected a percent above 0, at most 100"),
    ({"a": 0, "b": 100}, {}, "ab_test_split.a: expected a percent above 0, at most 100, in steps of 0.01, got 0"),
    ({"a": 50, "b": 50}, {"versions": {"c": "2.0.0"}}, "ab_test_versions: 'c' is not a variant of the split"),
    ({"a": 50, "b": 50}, {"versions": {"b": "../x"}}, "ab_test_versions.b: expected a release name"),
    ({"a": 50, "b": 50}, {"versions": {"b": "2.0.0\n"}}, "ab_test_versions.b: expected a release name"),
    ({"a": 50, "b": 50}, {"control": "z"}, "ab_test_control: 'z' is not a variant"),
    ({"a": 50, "b": 50}, {"goal": {"path": "checkout"}}, "ab_test_goal: expected"),
    ({"a": 50, "b": 50}, {"name": "a b"}, "ab_test_name: expected"),
])
def test_each_problem_names_its_variable(split, kwargs, message):
    options = dict({"versions": {}, "goal": GOAL}, **kwargs)
    problems = ab_problems(split, EXP, GROUPS, PLAY, **options)
    assert any(message in problem for problem in problems), problems


def test_hosts_outside_the_play_are_a_problem():
    problems = ab_problems({"a": 50, "b": 50}, EXP, GROUPS, ["app1", "app2"], versions={}, goal=GOAL)
    assert problems == ["ab_test_split: host app3 of variant b is not in the play",
                        "ab_test_split: host app4 of variant b is not in the play"]
