"""lb_failed and lb_failure_message: naming the LBs where a step failed or that did not answer; lb_share and
lb_results: a step on every LB shared out among the play hosts, and its results put back together."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.fleet.rollout.plugins.filter.lb_reach import lb_failed, lb_failure_message, lb_results, lb_share

RESULTS = [
    {"item": "lb1", "changed": True, "failed": False},
    {"item": "lb2", "unreachable": True, "msg": "Failed to connect to the host via docker:\n container is paused"},
    {"item": "lb2", "unreachable": True, "msg": "again"},
    {"item": "lb3", "failed": True,
     "msg": "The fleet.rollout.haproxy_server action failed to execute in the expected time frame (30) and was terminated"},
    {"item": "lb4", "failed": True, "msg": "be_web_main/app1: still 2 sessions after 300 s"},
    {"item": "lb5", "failed": True, "msg": "Module result deserialization failed: No start of json char found"},
    {"item": "lb6", "failed": True, "msg": "Timed out after 40 second(s).", "timedout": {"period": 40}},
    # The module's own timeout: that LB answered.
    {"item": "lb7", "failed": True, "msg": "drain timed out after 4.0s: be_web_main/app1 (3 sessions, 0 queued) still "
                                           "busy (a forced drain would cut their sessions)"},
]


def test_lists_each_lb_that_failed_or_did_not_answer_once():
    assert lb_failed(RESULTS) == ["lb2", "lb3", "lb4", "lb5", "lb6", "lb7"]
    assert lb_failed([{"item": "lb1", "failed": False}, {"item": "lb2", "skipped": True}]) == []


def test_message_tells_no_answer_from_a_failure_with_the_step_and_what_was_said():
    message = lb_failure_message(RESULTS, "draining app1")
    assert message.startswith("could not reach LB lb2, lb3, lb5, lb6 while draining app1 (lb2: Failed to connect")
    assert "container is paused" in message and "lb3: no answer within the step's timeout" in message
    assert "lb6: no answer within the step's timeout" in message
    assert "draining app1 failed on LB lb4, lb7 (" in message and "lb7: drain timed out after 4.0s" in message
    assert "lb5: no module result came back" in message and "deserialization" not in message
    assert "again" not in message
    assert "; draining app1 failed on LB lb4, lb7 (lb4: be_web_main/app1: still 2 sessions after 300 s; lb7:" in message
    assert lb_failure_message([{"item": "lb1"}], "x") == ""


def test_refuses_what_is_not_a_loop_result():
    with pytest.raises(AnsibleFilterError, match="expected the results of a loop"):
        lb_failed({"results": []})


@pytest.mark.parametrize("lbs, hosts, expected", [
    # A host per LB: each calls one, all at once; the hosts beyond the LBs call none.
    (["lb1", "lb2"], ["a1", "a2", "a3", "a4"], {"a1": ["lb1"], "a2": ["lb2"], "a3": [], "a4": []}),
    # More LBs than hosts: every LB still called, by exactly one host.
    (["lb1", "lb2", "lb3"], ["a1", "a2"], {"a1": ["lb1", "lb3"], "a2": ["lb2"]}),
    (["lb1"], ["a1"], {"a1": ["lb1"]}),
    ([], ["a1", "a2"], {"a1": [], "a2": []}),
])
def test_shares_every_lb_out_to_exactly_one_play_host(lbs, hosts, expected):
    shares = {host: lb_share(lbs, hosts, host) for host in hosts}
    assert shares == expected
    assert sorted(lb for share in shares.values() for lb in share) == sorted(lbs)


def test_a_host_outside_the_play_calls_no_lb():
    assert lb_share(["lb1", "lb2"], ["a1", "a2"], "a9") == []


def test_share_refuses_what_is_not_a_list():
    with pytest.raises(AnsibleFilterError, match="lb_share: expected the LB hosts and the play's hosts as lists"):
        lb_share("lb1", ["a1"], "a1")


def test_results_put_the_shares_back_together_once_per_lb():
    hostvars = {
        "a1": {"step": {"results": [{"item": "lb1", "changed": True}]}},
        "a2": {"step": {"results": [{"item": "lb2", "unreachable": True, "msg": "paused"}]}},
        # A host with nothing to call registers a skipped loop.
        "a3": {"step": {"results": [], "skipped": True}},
        # A host the step did not run on (it left the play) holds no result.
        "a4": {},
    }
    merged = lb_results(["a1", "a2", "a3", "a4"], hostvars, "step")
    assert [r["item"] for r in merged] == ["lb1", "lb2"]
    assert lb_failed(merged) == ["lb2"]


def test_results_of_a_run_once_loop_read_the_same_from_every_copy():
    # A run_once loop's register: every host holds the same results.
    results = {"results": [{"item": "lb1", "changed": True}, {"item": "lb2", "failed": True, "msg": "x"}]}
    hostvars = {"a1": {"step": results}, "a2": {"step": results}}
    assert lb_results(["a1", "a2"], hostvars, "step") == results["results"]


def test_an_lb_without_a_result_counts_as_failed():
    """A result that went missing (the host that called the LB left the play, or its register was lost) is
    never taken for a step that went well: the LB is named as failed."""
    hostvars = {"a1": {"step": {"results": [{"item": "lb1", "changed": True}]}},
                "a2": {"step": {"results": [], "skipped": True}}}
    merged = lb_results(["a1", "a2"], hostvars, "step", ["lb1", "lb2"])
    assert [r["item"] for r in merged] == ["lb1", "lb2"]
    assert lb_failed(merged) == ["lb2"]
    assert "drain" in lb_failure_message(merged, "draining app1") and "lb2" in lb_failure_message(merged, "draining app1")
