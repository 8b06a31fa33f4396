"""drain_left: what one round of a drain wait says is left, for HAProxy and nginx results."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.fleet.rollout.plugins.filter.drain import drain_left


def haproxy(lb, *servers):
    return {"item": lb, "changed": False, "servers": [
        {"name": name, "drained": drained, "forced": forced, "after": {"sessions": sessions, "queued": queued}}
        for name, drained, forced, sessions, queued in servers]}


def test_haproxy_counts_sessions_and_queue_of_servers_not_drained():
    results = [
        haproxy("lb1", ("be_web/app1", False, False, 2, 1), ("be_web/app2", True, False, 0, 0)),
        haproxy("lb2", ("be_web/app1", True, False, 0, 0), ("be_web/app2", True, False, 0, 0)),
    ]
    assert drain_left(results) == {"lb1": {"be_web/app1": 3}}


def test_haproxy_forced_servers_are_not_waited_for():
    assert drain_left([haproxy("lb1", ("be_web/app1", False, True, 0, 0))]) == {}


def test_nginx_counts_old_workers_and_their_connections():
    results = [
        {"item": "lb1", "workers_left": 2, "connections_left": {"app2:8080": 0, "app1:8080": 3}},
        {"item": "lb2", "workers_left": 0, "connections_left": {"app1:8080": 0}},
        {"item": "lb3", "workers_left": 1, "connections_left": None},  # /proc hid the sockets
        {"item": "lb4", "workers_left": None, "connections_left": None},  # nginx not running
    ]
    assert drain_left(results) == {"lb1": {"old nginx workers": 2, "app1:8080": 3}, "lb3": {"old nginx workers": 1}}


def test_skipped_results_and_empty_rounds():
    assert drain_left([{"item": "lb1", "skipped": True}]) == {}
    assert drain_left([]) == {}


@pytest.mark.parametrize("bad", [None, {"results": []}, [{"servers": []}], ["lb1"]])
def test_bad_input_names_what_was_expected(bad):
    with pytest.raises(AnsibleFilterError, match="drain_left"):
        drain_left(bad)


# --- drain_progress: the rounds of a long drain -----------------------------------------------------------

from ansible_collections.fleet.rollout.plugins.filter.drain import drain_progress  # noqa: E402  pylint: disable=wrong-import-position


def test_progress_names_what_is_left_and_sizes_the_next_round():
    results = [haproxy("lb1", ("be_web/app1", False, False, 2, 0)), haproxy("lb2", ("be_web/app1", True, False, 0, 0))]
    first = drain_progress(results, "web", None, 10, 300)
    assert first["message"] == "web: draining for 10 s (up to 300 s); still in flight: lb1: be_web/app1 2"
    assert first["busy"] == ["lb1"] and first["window"] == 10 and not first["final"] and first["rounds"] == 1
    second = drain_progress(results, "web", first, 10, 300)
    assert second["rounds"] == 2 and "draining for 20 s" in second["message"]


def test_progress_last_round_is_final_and_ends_at_the_timeout():
    results = [haproxy("lb1", ("be_web/app1", False, False, 1, 0))]
    progress = drain_progress(results, "web", {"rounds": 2}, 10, 35)
    # 30 s waited, 5 s left: the next round is the last, of 5 s.
    assert progress["final"] and progress["window"] == 5


def test_progress_refuses_a_bad_interval():
    with pytest.raises(AnsibleFilterError, match="interval must be above 0"):
        drain_progress([], "web", None, 0, 300)
    with pytest.raises(AnsibleFilterError, match="timeout must be a number"):
        drain_progress([], "web", None, 1, "soon")
