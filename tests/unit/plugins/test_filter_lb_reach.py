"""lb_failed and lb_failure_message: naming the LBs where a step failed or that did not answer."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.fleet.rollout.plugins.filter.lb_reach import lb_failed, lb_failure_message

RESULTS = [
    {"item": "lb1", "changed": True, "failed": False},
    {"item": "lb2", "unreachable": True, "msg": "Failed to connect to the host via docker:\n container is paused"},
    {"item": "lb2", "unreachable": True, "msg": "again"},
    {"item": "lb3", "failed": True,
     "msg": "The fleet.rollout.haproxy_server action failed to execute in the expected time frame (30) and was terminated"},
    {"item": "lb4", "failed": True, "msg": "be_web_main/app1: still 2 sessions after 300 s"},
    {"item": "lb5", "failed": True, "msg": "Module result deserialization failed: No start of json char found"},
]


def test_lists_each_lb_that_failed_or_did_not_answer_once():
    assert lb_failed(RESULTS) == ["lb2", "lb3", "lb4", "lb5"]
    assert lb_failed([{"item": "lb1", "failed": False}, {"item": "lb2", "skipped": True}]) == []


def test_message_tells_no_answer_from_a_failure_with_the_step_and_what_was_said():
    message = lb_failure_message(RESULTS, "draining app1")
    assert message.startswith("could not reach LB lb2, lb3, lb5 while draining app1 (lb2: Failed to connect")
    assert "container is paused" in message and "lb3: no answer within the step's timeout" in message
    assert "lb5: no module result came back" in message and "deserialization" not in message
    assert "again" not in message
    assert "; draining app1 failed on LB lb4 (lb4: be_web_main/app1: still 2 sessions after 300 s)" in message
    assert lb_failure_message([{"item": "lb1"}], "x") == ""


def test_refuses_what_is_not_a_loop_result():
    with pytest.raises(AnsibleFilterError, match="expected the results of a loop"):
        lb_failed({"results": []})
