"""fleet.rollout.lb_servers_info against a real HAProxy and a real nginx, changed by the modules that drive them."""

from __future__ import annotations

import os

from ansible_collections.fleet.rollout.plugins.modules import haproxy_server, lb_servers_info, nginx_upstream


def addr(url):
    return url[len("http://"):]


def by_key(servers):
    return {(row["pool"], row["side"], row["server"] or row["address"]): row for row in servers}


def test_haproxy_shows_runtime_drain_and_weight_of_the_service_only(haproxy_lab, run_app, run_module):
    app = addr(run_app(version="1.0.0")[1])
    dead = "127.0.0.1:9"
    lab = haproxy_lab({
        "be_shop_blue": ["app1 %s check inter 100ms weight 100" % app, "app2 %s check inter 100ms weight 100" % app],
        "be_shop_blue_canary": ["app1 %s track be_shop_blue/app1 weight 0" % app],
        "be_shop_green": ["app3 %s check inter 100ms fall 1 weight 100" % dead],
        "be_shopping_main": ["app9 %s weight 100" % app],
    })
    lab.wait_status("be_shop_green/app3", "DOWN")
    lab.wait_status("be_shop_blue/app1", "UP")
    out = run_module(haproxy_server.main, {"socket": lab.socket, "state_file": lab.state_file,
                                           "servers": ["be_shop_blue/app1"], "state": "drain", "wait": False})
    assert out["changed"], out
    run_module(haproxy_server.main, {"socket": lab.socket, "state_file": lab.state_file,
                                     "servers": ["be_shop_blue/app2"], "weight": "25%"})

    out = run_module(lb_servers_info.main, {"lb": "haproxy", "service": "shop", "socket": lab.socket})

    assert out["changed"] is False and out["changed_at"] is None
    rows = by_key(out["servers"])
    # be_shopping_main belongs to another service whose name starts like this one's.
    assert set(rows) == {("blue", "main", "app1"), ("blue", "main", "app2"), ("blue", "canary", "app1"),
                         ("green", "main", "app3")}
    assert rows["blue", "main", "app1"]["admin_state"] == "drain"
    assert rows["blue", "main", "app1"]["in_rotation"] is False
    assert rows["blue", "main", "app2"]["weight"] == 25 and rows["blue", "main", "app2"]["initial_weight"] == 100
    assert rows["blue", "main", "app2"]["in_rotation"] is True
    assert rows["blue", "canary", "app1"]["weight"] == 0 and rows["blue", "canary", "app1"]["in_rotation"] is False
    assert rows["green", "main", "app3"]["status"].startswith("DOWN")
    assert rows["green", "main", "app3"]["in_rotation"] is False


def test_haproxy_without_its_socket_fails_naming_it(tmp_path, run_module):
    missing = str(tmp_path / "no.sock")
    out = run_module(lb_servers_info.main, {"lb": "haproxy", "service": "shop", "socket": missing})
    assert out["failed"] and missing in out["msg"], out


def test_nginx_reads_the_routing_file_nginx_runs_on(nginx_lab, run_app, run_module):
    app = addr(run_app(version="1.0.0")[1])
    other = addr(run_app(version="2.0.0")[1])
    path = os.path.join(nginx_lab.conf_d, "shop.routing.conf")
    out = run_module(nginx_upstream.main, nginx_lab.module_args(path=path, upstreams=[
        {"name": "fleet_shop_blue", "servers": [{"address": app, "weight": 3}, {"address": other, "down": True}]},
        {"name": "fleet_shop_blue_canary", "servers": [{"address": other, "weight": 1}]},
        {"name": "fleet_shopping_main", "servers": [{"address": app}]},
    ], maps=[{"source": "$http_x_variant", "variable": "$fleet_pool", "default": "fleet_shop_blue"}]))
    assert out["changed"], out
    nginx_lab.start()
    assert nginx_lab.version() == "1.0.0"  # the file is valid and routes: only the weighted server is up

    out = run_module(lb_servers_info.main, {"lb": "nginx", "service": "shop", "routing_dir": nginx_lab.conf_d})

    assert out["changed_at"] == os.stat(path).st_mtime
    rows = by_key(out["servers"])
    assert set(rows) == {("blue", "main", app), ("blue", "main", other), ("blue", "canary", other)}
    assert rows["blue", "main", app]["weight"] == 3 and rows["blue", "main", app]["in_rotation"] is True
    assert rows["blue", "main", other]["admin_state"] == "maint" and rows["blue", "main", other]["weight"] == 0
    assert rows["blue", "main", other]["in_rotation"] is False
    assert rows["blue", "canary", other]["weight"] == 1


def test_nginx_without_the_routing_file_says_how_to_set_it_up(tmp_path, run_module):
    out = run_module(lb_servers_info.main, {"lb": "nginx", "service": "shop", "routing_dir": str(tmp_path)})
    assert out["failed"] and "shop.routing.conf does not exist" in out["msg"] and "fleet.rollout.nginx" in out["msg"]


def test_a_bad_service_name_is_refused(run_module):
    out = run_module(lb_servers_info.main, {"lb": "nginx", "service": "../etc"})
    assert out["failed"] and out["msg"].startswith("service: expected a service name"), out
