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
