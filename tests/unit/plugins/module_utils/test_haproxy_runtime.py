"""Parsers and client of the HAProxy runtime API (pure parts and a real socket)."""

from __future__ import annotations

import socket

import pytest

from ansible_collections.fleet.rollout.plugins.module_utils import _haproxy_runtime as rt
from ansible_collections.fleet.rollout.plugins.module_utils import _haproxy_server as hs


def test_show_stat_is_parsed_by_header_not_position():
    text = ("# svname,pxname,status,scur,qcur\n"
            "a,be,UP,3,0\n"
            "FRONTEND,fe,OPEN,1,\n")
    rows = rt.parse_csv_stat(text)
    assert rows[0] == {"svname": "a", "pxname": "be", "status": "UP", "scur": "3", "qcur": "0"}
    assert rows[1]["qcur"] == ""
    with pytest.raises(rt.HAProxyRuntimeError, match="unexpected 'show stat'"):
        rt.parse_csv_stat("Unknown command\n")


def test_servers_state_and_map_dump_parsers():
    text = "1\n# be_id be_name srv_id srv_name srv_admin_state\n3 be 1 a 8\n3 be 2 b 0\n"
    assert [row["srv_admin_state"] for row in rt.parse_servers_state(text)] == ["8", "0"]
    assert rt.parse_map_dump("0x1 svc be_blue\n0x2 0:9 be canary x\n\n") == [("svc", "be_blue"), ("0:9", "be canary x")]


@pytest.mark.parametrize("spec, family", [("/run/haproxy/admin.sock", socket.AF_UNIX),
                                          ("unix:///x.sock", socket.AF_UNIX),
                                          ("tcp://127.0.0.1:9999", socket.AF_INET),
                                          ("tcp://[::1]:9999", socket.AF_INET6)])
def test_socket_specs(spec, family):
    assert rt.parse_socket(spec)[0] == family


@pytest.mark.parametrize("spec", ["relative.sock", "tcp://host", "tcp://:80", "tcp://h:port"])
def test_bad_socket_specs_are_clear_errors(spec):
    with pytest.raises(rt.HAProxyRuntimeError, match="socket"):
        rt.parse_socket(spec)


def test_missing_socket_says_what_to_check(tmp_path):
    client = rt.RuntimeClient(str(tmp_path / "nope.sock"))
    with pytest.raises(rt.HAProxyRuntimeError, match="does not exist: is HAProxy running"):
        client.check()


def test_set_command_output_is_an_error(haproxy_lab, run_app):
    url = run_app()[1]
    lab = haproxy_lab({"be": ["a %s" % url[len("http://"):]]})
    client = rt.RuntimeClient(lab.socket)
    client.run_set("set server be/a weight 7")
    with pytest.raises(rt.HAProxyCommandError, match="No such server"):
        client.run_set("set server be/zz weight 7")
    with pytest.raises(rt.HAProxyCommandError, match="between 0 and 256"):
        client.run_set("set server be/a weight 300")
    with pytest.raises(rt.HAProxyRuntimeError, match="line break"):
        client.execute("show info\nshow stat")


def server(backend, name, admin=0, weight=10, iweight=10, status="UP", sessions=0, op_state=2):
    return hs.Server(backend, name, admin, op_state, weight, iweight, status, sessions, 0)


def test_targets_by_name_backend_wildcard_and_exact():
    servers = {s.key: s for s in [server("be1", "a"), server("be1", "b"), server("be2", "a"), server("be2", "c")]}
    assert hs.resolve_targets(["a"], servers) == ["be1/a", "be2/a"]
    assert hs.resolve_targets(["be1/*", "be1/a"], servers) == ["be1/a", "be1/b"]
    assert hs.resolve_targets(["be2/c"], servers) == ["be2/c"]
    with pytest.raises(hs.TargetError, match=r"no HAProxy server matches 'zz', 'be3/\*'; servers that exist: be1/a, be1/b"):
        hs.resolve_targets(["zz", "be3/*", "a"], servers)


WEIGHTS = [("0", 10, 0), ("256", 1, 256), ("50%", 10, 5), ("100%", 7, 7), ("150%", 100, 150), (" 33% ", 3, 0)]


@pytest.mark.parametrize("spec, initial, expected", WEIGHTS)
def test_weights(spec, initial, expected):
    assert hs.parse_weight(spec, initial) == expected


@pytest.mark.parametrize("spec", ["257", "-1", "abc", "50%%", "300%"])
def test_bad_weights(spec):
    with pytest.raises(ValueError, match="weight"):
        hs.parse_weight(spec, 100)


def test_plan_sends_only_what_differs():
    servers = {s.key: s for s in [server("be", "a"), server("be", "b", admin=hs.ADMIN_FDRAIN, weight=5)]}
    changes = hs.plan(["be/a", "be/b"], servers, "drain", "50%")
    assert changes[0].commands == ["set server be/a state drain", "set server be/a weight 5"]
    assert changes[1].commands == []
    assert hs.plan(["be/b"], servers, None, None)[0].commands == []


def test_back_into_rotation_at_the_new_weight_first():
    servers = {s.key: s for s in [server("be", "a", admin=hs.ADMIN_FMAINT, weight=100, iweight=100)]}
    assert hs.plan(["be/a"], servers, "ready", "5%")[0].commands == ["set server be/a weight 5", "set server be/a state ready"]
    servers = {s.key: s for s in [server("be", "a", weight=100, iweight=100)]}
    assert hs.plan(["be/a"], servers, "drain", "5")[0].commands == ["set server be/a state drain", "set server be/a weight 5"]


def test_maint_and_down_servers_are_out_of_service():
    assert server("be", "a", admin=hs.ADMIN_FMAINT).out_of_service
    assert server("be", "a", status="DOWN", op_state=0).out_of_service
    assert server("be", "a", status="DRAIN", op_state=0).out_of_service
    assert not server("be", "a", admin=hs.ADMIN_FDRAIN, status="DRAIN").out_of_service
    assert server("be", "a", admin=hs.ADMIN_FMAINT | hs.ADMIN_FDRAIN).mode == "maint"


def test_show_info_of_a_real_haproxy(haproxy_lab, run_app):
    url = run_app()[1]
    lab = haproxy_lab({"be": ["a %s" % url[len("http://"):]]})
    info = rt.RuntimeClient(lab.socket).show_info()
    assert info["Name"] == "HAProxy" and int(info["Pid"]) > 0
    assert info["DroppedLogs"] == "0"
    with pytest.raises(rt.HAProxyRuntimeError, match="unexpected 'show info'"):
        rt.parse_info("\n\n")
