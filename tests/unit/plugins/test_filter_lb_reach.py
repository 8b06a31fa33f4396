"""lb_unreachable and lb_unreachable_message: naming the LBs a step could not reach."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.fleet.rollout.plugins.filter.lb_reach import lb_unreachable, lb_unreachable_message

RESULTS = [
    {"item": "lb1", "changed": True},
    {"item": "lb2", "unreachable": True, "msg": "Failed to connect to the host via docker:\n container is paused"},
    {"item": "lb2", "unreachable": True, "msg": "again"},
]


def test_lists_the_lbs_not_reached():
    assert lb_unreachable(RESULTS) == ["lb2", "lb2"]
    assert lb_unreachable([{"item": "lb1"}]) == []


def test_message_names_each_lb_once_with_the_step_and_the_reason():
    message = lb_unreachable_message(RESULTS, "draining app1")
    assert message.startswith("could not reach LB lb2 while draining app1 (lb2: Failed to connect")
    assert "container is paused" in message and "again" not in message
    assert lb_unreachable_message([{"item": "lb1"}], "x") == ""


def test_refuses_what_is_not_a_loop_result():
    with pytest.raises(AnsibleFilterError, match="expected the results of a loop"):
        lb_unreachable({"results": []})
