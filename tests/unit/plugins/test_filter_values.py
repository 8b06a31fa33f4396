"""values_at: each item's value at a key, None where it has none (pure function)."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.fleet.rollout.plugins.filter.values import values_at


def test_results_without_the_key_give_none():
    results = [{"item": "lb1", "state": {"active_pool": "blue"}}, {"item": "lb2", "skipped": True},
               {"item": "lb3", "failed": True, "msg": "unreachable"}, {"item": "lb4", "state": None}]
    assert values_at(results, "state") == [{"active_pool": "blue"}, None, None, None]


def test_dotted_keys_reach_nested_values():
    hosts = [{"release_live": {"version": "1.0.0"}}, {"release_live": {}}, {}, {"release_live": "x"}]
    assert values_at(hosts, "release_live.version") == ["1.0.0", None, None, None]


def test_falsy_values_are_kept():
    assert values_at([{"servers": []}, {"servers": 0}, {"servers": ""}], "servers") == [[], 0, ""]


@pytest.mark.parametrize("items, key", [([{}], ""), ([{}], "a..b"), ([{}], None), ("abc", "a"), ({"a": 1}, "a")])
def test_bad_input_is_refused(items, key):
    with pytest.raises(AnsibleFilterError, match="values_at"):
        values_at(items, key)
