"""HAProxy role on both LBs, in front of the release role's pools: real state only."""

from __future__ import annotations

import re
import uuid

import pytest
from labtest import assert_active_and_hosts, haproxy_cli, http, json_lines, lab_hosts, load_json
from lost_state import check_lost_state_case, check_rollout_lock_case, lost_state_case
from preview import check_preview_case
from rollout_run import Service

LBS = lab_hosts("lb")
BLUE = lab_hosts("blue")
GREEN = lab_hosts("green")
CLIENT = lab_hosts("client")[0]


@pytest.mark.parametrize("name", BLUE + GREEN)
def test_release_role_serves_each_pool_its_version(host_for, name):
    host = host_for(name)
    status, headers, body = http(host, "http://127.0.0.1:8080/")
    assert status == 200
    assert headers["x-app-version"] == ("1.0.0" if name in BLUE else "2.0.0")


@pytest.mark.parametrize("name", LBS)
def test_config_is_valid_and_identical(host_for, name):
    host = host_for(name)
    assert host.service("haproxy").is_running and host.service("haproxy").is_enabled
    assert host.run("haproxy -c -q -f /etc/haproxy/haproxy.cfg").rc == 0
    assert host.file("/etc/haproxy/haproxy.cfg").content_string == host_for(LBS[0]).file("/etc/haproxy/haproxy.cfg").content_string


@pytest.mark.parametrize("name", LBS)
def test_preview_route_trusts_loopback_and_the_listed_networks_only(host_for, name):
    # As HAProxy runs it: the inline ACL's patterns. The lab lists docker's networks (its client previews);
    # the role itself adds loopback and the LB's own IP address (none here: the lab's hosts have no ansible_host).
    host = host_for(name)
    acls = haproxy_cli(host, "show acl")
    # "<id> () acl 'src' file '/etc/haproxy/haproxy.cfg' line <n>": the only src ACLs are preview_allowed.
    ids = [line.split()[0] for line in acls.splitlines() if "acl 'src'" in line]
    assert ids, acls
    for acl in ids:
        patterns = sorted(line.split()[1] for line in haproxy_cli(host, "show acl #%s" % acl).splitlines() if line.strip())
        assert patterns == sorted(["127.0.0.0/8", "::1", "172.16.0.0/12", "192.168.0.0/16"]), patterns


@pytest.mark.parametrize("name", LBS)
def test_admin_socket_is_local_only(host_for, name):
    host = host_for(name)
    sock = host.file("/run/haproxy/admin.sock")
    assert sock.is_socket and sock.mode == 0o660 and sock.group == "haproxy"
    # Reachable from the network: only HAProxy's service port (80) and the ports of the nginx services the
    # other scenarios leave on this shared fleet (read from nginx's own config: ss cannot name the process of
    # another user's socket here). Prometheus is on loopback; the admin API is the unix socket above.
    listening = [line.split()[3] for line in host.run("ss -ltnH").stdout.splitlines()]
    public = {address.rsplit(":", 1)[1] for address in listening if not address.startswith(("127.", "[::1]"))}
    nginx_ports = set(re.findall(r"^\s*listen\s+(\d+);", host.run("nginx -T 2>/dev/null || true").stdout, re.M))
    assert "80" in public and public - nginx_ports <= {"80"}, (listening, nginx_ports)
    assert "127.0.0.1:8405" in listening


@pytest.mark.parametrize("name", LBS)
def test_pool_map_and_rollout_state(host_for, name):
    host = host_for(name)
    lines = [line for line in host.file("/etc/haproxy/maps/shop.map").content_string.splitlines()
             if line and not line.startswith("#")]
    # The preview route closed (it reaches the active pool) until a rollout opens it.
    assert lines == ["active be_shop_blue", "preview be_shop_blue"]
    live = haproxy_cli(host, "show map /etc/haproxy/maps/shop.map")
    assert [line.split(None, 1)[1] for line in live.splitlines() if line.strip()] == lines
    state = load_json(host, "/var/lib/fleet-rollout/shop/state.json")
    assert state["active_pool"] == "blue" and state["lb"] == "haproxy" and set(state["pools"]) == {"blue", "green"}


@pytest.mark.parametrize("lb", LBS)
def test_traffic_goes_to_the_active_pool_and_nowhere_else(host_for, lb):
    assert_active_and_hosts(host_for(CLIENT), "http://%s" % lb, BLUE)


def test_the_preview_route_is_closed_unless_a_route_step_opens_it(host_for):
    check_preview_case(Service("haproxy", "shop", 80, vars_file="services.vars.yml"), host_for)


@pytest.mark.parametrize("name", LBS)
def test_request_log_is_json_with_id_backend_server_and_time(host_for, name):
    host = host_for(name)
    marker = "/?probe=%s" % uuid.uuid4().hex
    http(host, "http://127.0.0.1" + marker)
    records = [r for r in json_lines(host.run("journalctl -u haproxy -o cat --no-pager -n 200").stdout)
               if r.get("uri") == marker]
    assert len(records) == 1, records
    record = records[0]
    assert record["backend"] == "be_shop_blue" and record["server"] in BLUE
    assert record["status"] == 200 and record["tr"] >= 0 and record["id"]


@pytest.mark.parametrize("name", LBS)
def test_a_reload_keeps_runtime_drains(host_for, name):
    host = host_for(name)
    server = "be_shop_blue/%s" % BLUE[0]
    assert haproxy_cli(host, "set server %s state drain" % server).strip() == ""
    try:
        assert host.run("systemctl reload haproxy").rc == 0
        state = haproxy_cli(host, "show servers state be_shop_blue")
        row = [line.split() for line in state.splitlines() if " %s " % BLUE[0] in line][0]
        assert row[6] == "8"  # srv_admin_state: forced drain, carried over the reload
    finally:
        haproxy_cli(host, "set server %s state ready" % server)
        host.run("systemctl reload haproxy")


@pytest.mark.parametrize("name", LBS)
def test_a_pool_without_servers_answers_503_with_retry_after(host_for, name):
    host = host_for(name)
    for app in GREEN:
        haproxy_cli(host, "set server be_shop_green/%s state maint" % app)
    # Green through the preview route, opened here on this LB only (a rollout opens it on every LB).
    haproxy_cli(host, "set map /etc/haproxy/maps/shop.map preview be_shop_green")
    try:
        status, headers, body = http(host, "http://127.0.0.1/", {"X-Rollout-Preview": "1"})
        assert status == 503 and headers["retry-after"] == "15" and "shop is unavailable" in body
    finally:
        haproxy_cli(host, "set map /etc/haproxy/maps/shop.map preview be_shop_blue")
        for app in GREEN:
            haproxy_cli(host, "set server be_shop_green/%s state ready" % app)


@pytest.mark.parametrize("name", LBS)
def test_maintenance_backend_answers_503_with_retry_after(host_for, name):
    host = host_for(name)
    out = haproxy_cli(host, "set map /etc/haproxy/maps/shop.map preview be_shop_maintenance")
    try:
        status, headers, body = http(host, "http://127.0.0.1/", {"X-Rollout-Preview": "1"})
        assert status == 503 and headers["retry-after"] == "15" and "shop is being updated" in body
    finally:
        haproxy_cli(host, "set map /etc/haproxy/maps/shop.map preview be_shop_blue")
    assert out.strip() == ""


# Last in the file: the case flips the service and puts it back on blue.
def test_a_lost_state_starts_where_users_are_and_a_wrong_one_is_refused(host_for):
    service = Service("haproxy", "shop", 80, vars_file="services.vars.yml")
    check_lost_state_case(lost_state_case(service, host_for), service, "/etc/haproxy/maps/%s.map")


def test_the_role_waits_for_a_rollout_of_the_service_to_end(host_for):
    service = Service("haproxy", "shop", 80, vars_file="services.vars.yml")
    check_rollout_lock_case(service, host_for, "/etc/haproxy/maps/%s.map")
