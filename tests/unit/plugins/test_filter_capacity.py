"""Servers already out of rotation, from lb_servers_info results (pure function)."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.fleet.rollout.plugins.filter.capacity import lb_out_of_rotation


def server(name, admin_state="ready", status="UP", side="main"):
    return {"pool": "main", "side": side, "server": name, "address": None, "admin_state": admin_state,
            "status": status, "in_rotation": admin_state == "ready" and status.startswith("UP")}


def test_maint_is_held_and_failing_checks_are_down_per_lb():
    results = [
        {"item": "lb1", "servers": [server("app1"), server("app2", "maint", "MAINT"), server("app3", status="DOWN")]},
        {"item": "lb2", "servers": [server("app1"), server("app2", "maint", "MAINT"), server("app3", status="DOWN 1/2")]},
    ]
    assert lb_out_of_rotation(results) == {"maint": {"app2": ["lb1", "lb2"]}, "down": {"app3": ["lb1", "lb2"]}}


def test_drains_canary_twins_and_excluded_hosts_do_not_count():
    results = [{"item": "lb1", "servers": [
        server("app1", "drain", "DRAIN"),                       # a rollout's drain, not an operator's
        server("app2", "maint", "MAINT", side="canary"),        # the sticky canary's twin
        server("app3", "maint", "MAINT"),                       # handed over out of rotation by a canary
        server("app4", status="no check"),
    ]}]
    assert lb_out_of_rotation(results, exclude=["app3"]) == {"maint": {}, "down": {}}


def test_nginx_rows_without_a_server_name_are_skipped():
    results = [{"item": "lb1", "servers": [{"pool": "main", "side": "main", "server": None, "address": "10.0.0.1:8080",
                                           "admin_state": "maint", "status": "DOWN"}]}]
    assert lb_out_of_rotation(results) == {"maint": {}, "down": {}}


@pytest.mark.parametrize("bad", [{"item": "lb1"}, "x", None])
def test_results_without_servers_are_refused(bad):
    with pytest.raises(AnsibleFilterError, match="lb_out_of_rotation"):
        lb_out_of_rotation([bad] if bad is not None else None)
