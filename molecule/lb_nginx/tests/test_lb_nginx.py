"""Nginx role on both LBs, in front of the release role's pools: real state only."""

from __future__ import annotations

import uuid

import pytest
from labtest import assert_active_and_hosts, http, json_lines, lab_hosts, load_json
from lost_state import check_lost_state_case, check_rollout_lock_case, lost_state_case
from preview import check_preview_case
from rollout_run import Service

LBS = lab_hosts("lb")
BLUE = lab_hosts("blue")
GREEN = lab_hosts("green")
CLIENT = lab_hosts("client")[0]


@pytest.mark.parametrize("name", LBS)
def test_config_is_valid_and_identical(host_for, name):
    host = host_for(name)
    assert host.service("nginx").is_running and host.service("nginx").is_enabled
    assert host.run("nginx -t -q").rc == 0
    first = host_for(LBS[0])
    for path in ("/etc/nginx/conf.d/fleet-rollout.conf", "/etc/nginx/fleet/catalog.routing.conf"):
        assert host.file(path).content_string == first.file(path).content_string
    assert not host.file("/etc/nginx/sites-enabled/default").exists


@pytest.mark.parametrize("name", LBS)
def test_preview_route_trusts_loopback_and_the_listed_networks_only(host_for, name):
    # The lab lists docker's networks (its client previews); the role adds loopback only.
    geo = host_for(name).file("/etc/nginx/conf.d/fleet-rollout-preview.conf").content_string
    allowed = sorted(line.split()[0] for line in geo.splitlines() if line.strip().endswith(" 1;"))
    assert allowed == sorted(["127.0.0.0/8", "::1/128", "172.16.0.0/12", "192.168.0.0/16"]), geo


@pytest.mark.parametrize("name", LBS)
def test_routing_file_and_rollout_state(host_for, name):
    host = host_for(name)
    routing = host.file("/etc/nginx/fleet/catalog.routing.conf").content_string
    assert "upstream fleet_catalog_blue {" in routing and "upstream fleet_catalog_green {" in routing
    # The preview route closed (no entry for the header) until a rollout opens it.
    assert "default fleet_catalog_blue;" in routing and " 11 " not in routing
    for app in BLUE + GREEN:
        assert "server %s:8080" % app in routing
    state = load_json(host, "/var/lib/fleet-rollout/catalog/state.json")
    assert state["active_pool"] == "blue" and state["lb"] == "nginx"


@pytest.mark.parametrize("lb", LBS)
def test_traffic_goes_to_the_active_pool_and_nowhere_else(host_for, lb):
    assert_active_and_hosts(host_for(CLIENT), "http://%s:8000" % lb, BLUE)


def test_the_preview_route_is_closed_unless_a_route_step_opens_it(host_for):
    check_preview_case(Service("nginx", "catalog", 8000, vars_file="services.vars.yml"), host_for)


@pytest.mark.parametrize("name", LBS)
def test_access_log_is_json_with_request_id_pool_and_upstream(host_for, name):
    host = host_for(name)
    marker = "/?probe=%s" % uuid.uuid4().hex
    status, headers, _body = http(host, "http://127.0.0.1:8000" + marker)
    assert status == 200
    records = [r for r in json_lines(host.file("/var/log/nginx/fleet-catalog.access.json").content_string)
               if r["uri"] == marker]
    assert len(records) == 1
    record = records[0]
    assert record["id"] == headers["x-request-id"]  # the id the app received is the one logged
    assert record["pool"] == "fleet_catalog_blue" and record["status"] == 200
    assert record["upstream"].rsplit(":", 1)[1] == "8080" and record["rt"] >= 0


@pytest.mark.parametrize("name", LBS)
def test_stub_status_only_on_localhost(host_for, name):
    host = host_for(name)
    status, _headers, body = http(host, "http://127.0.0.1:8090/stub_status")
    assert status == 200 and "Active connections" in body
    lines = host.run("ss -ltnpH").stdout.splitlines()
    assert [line.split()[3] for line in lines if line.split()[3].endswith(":8090")] == ["127.0.0.1:8090"]


# Last in the file: the case flips the service and puts it back on blue.
def test_a_lost_state_starts_where_users_are_and_a_wrong_one_is_refused(host_for):
    service = Service("nginx", "catalog", 8000, vars_file="services.vars.yml")
    check_lost_state_case(lost_state_case(service, host_for), service, "/etc/nginx/fleet/%s.routing.conf")


def test_the_role_waits_for_a_rollout_of_the_service_to_end(host_for):
    service = Service("nginx", "catalog", 8000, vars_file="services.vars.yml")
    check_rollout_lock_case(service, host_for, "/etc/nginx/fleet/%s.routing.conf")
