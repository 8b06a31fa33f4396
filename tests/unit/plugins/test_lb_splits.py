"""User splits on a real HAProxy and a real nginx, from the LB roles' own templates.

The sticky split of a canary (canary_sticky): users without a side draw one at the share and get the
cookie; a user with a side keeps it across share changes; a cookie of another split is drawn again; a
canary side with no server left in rotation sends its users to the stable side; the split ended, no
cookie is set.

An A/B test: users are assigned by the hash of their id at the split's percentages and get the cookie;
the same id without the cookie lands on the same variant; the override header wins and sets no cookie;
a bogus cookie is assigned again; a new split moves only the users between the old and new boundaries.
"""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import time

import jinja2
import pytest

from ansible_collections.fleet.rollout.plugins.filter.nginx_routing import nginx_routing
from ansible_collections.fleet.rollout.plugins.filter.services import host_ips, pool_servers
from ansible_collections.fleet.rollout.plugins.module_utils._nginx_upstream import render

ROLES = os.path.join(os.path.dirname(__file__), "..", "..", "..", "roles")
HOSTS = {"app1": "127.0.0.1", "app2": "127.0.0.2", "app3": "127.0.0.3"}
CANARY = ["app3"]
USERS = 300


def template(role: str, name: str, **variables) -> str:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(os.path.join(ROLES, role, "templates")),
                             keep_trailing_newline=True)
    env.filters["fleet.rollout.pool_servers"] = pool_servers
    env.filters["fleet.rollout.host_ips"] = host_ips
    variables.setdefault("inventory_hostname", "lb1")
    return env.get_template(name).render(ansible_managed="test", **variables)


@pytest.fixture
def fleet(run_app, free_port):
    """app1 and app2 on 1.0.0, app3 (the canary, or variant b) on 2.0.0, one port on three loopback addresses;
    the service has one pool of all three (main) and one per variant (a: app1 and app2, b: app3)."""
    port = free_port()
    for host, address in HOSTS.items():
        run_app(version="2.0.0" if host in CANARY else "1.0.0", bind=address, port=port)
    service = {"name": "web", "port": free_port(), "pools": [
        {"name": "main", "group": "app", "port": port}, {"name": "a", "group": "a", "port": port},
        {"name": "b", "group": "b", "port": port}]}
    groups = {"app": sorted(HOSTS), "a": ["app1", "app2"], "b": ["app3"]}
    return service, groups, {host: {"ansible_host": address} for host, address in HOSTS.items()}


class HAProxy:
    """The haproxy role's config for the fleet's service, run by a real HAProxy."""

    def __init__(self, fleet, root: str, prometheus_port: int):
        service, groups, hostvars = fleet
        self.root, self.port = root, service["port"]
        for name in ("web-503.http", "web-maintenance.html"):
            with open(os.path.join(root, name), "w", encoding="utf-8") as handle:
                handle.write("HTTP/1.0 503 Service Unavailable\r\n\r\n" if name.endswith(".http") else "maintenance")
        for name, content in (("web.map", "active be_web_main\npreview be_web_a\n"), ("web.ab.map", "")):
            with open(os.path.join(root, name), "w", encoding="utf-8") as handle:
                handle.write(content)
        cfg = os.path.join(root, "haproxy.cfg")
        # fall 25 (5 s): no test here takes a server out by its checks, and a machine loaded by the rest of
        # the suite can stall the one-server variant b's app long enough for 2 failed checks.
        with open(cfg, "w", encoding="utf-8") as handle:
            handle.write(template(
                "haproxy", "haproxy.cfg.j2", rollout_services=[service], groups=groups, hostvars=hostvars,
                haproxy_maxconn=256, haproxy_socket=os.path.join(root, "admin.sock"),
                haproxy_state_file=os.path.join(root, "state"), haproxy_timeout_connect="2s",
                haproxy_timeout_client="30s", haproxy_timeout_server="30s", haproxy_prometheus_bind="127.0.0.1",
                haproxy_prometheus_port=prometheus_port, haproxy_maps_dir=root, haproxy_errors_dir=root,
                haproxy_preview_sources=["127.0.0.0/8"], haproxy_preview_header="X-Rollout-Preview",
                haproxy_check_interval="200ms", haproxy_check_fall=25, haproxy_check_rise=1, haproxy_server_weight=100,
                haproxy_log_format="%b/%s %ST"))
        self.pidfile = os.path.join(root, "pid")
        self.socket = os.path.join(root, "admin.sock")
        subprocess.run(["haproxy", "-c", "-q", "-f", cfg], check=True)
        subprocess.run(["haproxy", "-D", "-f", cfg, "-p", self.pidfile], check=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (os.path.exists(self.socket) and self.cli("show stat").count(",UP,") >= 12):
            time.sleep(0.1)

    def cli(self, command: str) -> str:
        with socket.socket(socket.AF_UNIX) as conn:
            conn.settimeout(5)
            conn.connect(self.socket)
            conn.sendall(command.encode() + b"\n")
            chunks = []
            while True:
                data = conn.recv(65536)
                if not data:
                    return b"".join(chunks).decode()
                chunks.append(data)

    def set_map(self, name: str, entries: dict) -> None:
        """The map holds exactly ``entries`` (as fleet.rollout.haproxy_map leaves it)."""
        self.cli("clear map %s/%s" % (self.root, name))
        for key, value in entries.items():
            self.cli("add map %s/%s %s %s" % (self.root, name, key, value))

    def stop(self) -> None:
        with open(self.pidfile, encoding="utf-8") as handle:
            for pid in handle.read().split():
                subprocess.run(["kill", pid], check=False)


@pytest.fixture
def haproxy(fleet, tmp_path, free_port):
    lb = HAProxy(fleet, str(tmp_path), free_port())
    yield lb
    lb.stop()


@pytest.fixture
def nginx(fleet, nginx_lab, free_port):
    """The nginx role's config for the fleet's service on a real nginx; ``route(**nginx_routing options)``
    writes the routing file and starts or reloads nginx."""
    service, groups, hostvars = fleet
    routing_dir = os.path.join(nginx_lab.root, "routing")
    os.makedirs(routing_dir)
    for name in ("fleet-rollout-preview.conf.j2", "fleet-rollout.conf.j2"):
        with open(os.path.join(nginx_lab.conf_d, name[:-3]), "w", encoding="utf-8") as handle:
            handle.write(template("nginx", name, rollout_services=[service], nginx_routing_dir=routing_dir,
                                  nginx_log_dir=nginx_lab.root, nginx_proxy_connect_timeout="2s",
                                  nginx_proxy_read_timeout="10s", nginx_status_port=free_port(),
                                  nginx_preview_sources=["127.0.0.0/8"]))
    with open(os.path.join(nginx_lab.conf_d, "lab.conf"), "w", encoding="utf-8") as handle:
        handle.write("map $host $fleet_pool {\n    default 127.0.0.1:1;\n}\n")  # the lab's own server uses it

    def route(**kwargs) -> None:
        routing = nginx_routing(service, groups, hostvars, "main", **kwargs)
        with open(os.path.join(routing_dir, "web.routing.conf"), "w", encoding="utf-8") as handle:
            handle.write(render(routing["upstreams"], routing["maps"], routing["split_clients"]))
        if nginx_lab.master() is None:
            nginx_lab.start()
        else:
            assert nginx_lab.command("-s", "reload").returncode == 0
            time.sleep(1.0)

    return route


def get(port: int, cookie: str | None = None, headers: dict | None = None) -> tuple[int, str, str | None]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/", headers=dict(headers or {}, **({"Cookie": cookie} if cookie else {})))
        response = conn.getresponse()
        response.read()
        return response.status, response.getheader("X-App-Version"), response.getheader("Set-Cookie")
    finally:
        conn.close()


def get_body(port: int, headers: dict) -> tuple[int, str, str | None]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/", headers=headers)
        response = conn.getresponse()
        return response.status, response.read().decode(), response.getheader("Set-Cookie")
    finally:
        conn.close()


def draw_users(port: int, count: int) -> list[tuple[str, str]]:
    """``count`` new users' first answers: (version, the cookie they were given)."""
    drawn = []
    for _index in range(count):
        status, version, set_cookie = get(port)
        assert status == 200 and set_cookie, (status, set_cookie)
        assert set_cookie.endswith("; Path=/; HttpOnly; SameSite=Lax")
        drawn.append((version, set_cookie.split(";", 1)[0]))
    return drawn


def check_split(port: int, share: float, apply_share) -> None:
    """The behaviour both LBs must have, at ``share`` percent and then after ``apply_share(80)``."""
    drawn = draw_users(port, USERS)
    canary = [cookie for version, cookie in drawn if version == "2.0.0"]
    assert abs(100.0 * len(canary) / USERS - share) <= 8, len(canary)
    assert all(cookie.endswith(".canary") for cookie in canary)
    assert all(cookie.endswith(".stable") for version, cookie in drawn if version == "1.0.0")
    apply_share(80)
    # Users keep their side (and get no new cookie) when the share changes.
    for version, cookie in drawn[:60]:
        assert [get(port, cookie)[1:] for _n in range(3)] == [(version, None)] * 3
    later = draw_users(port, USERS)
    assert abs(100.0 * sum(version == "2.0.0" for version, _c in later) / USERS - 80) <= 8
    # A side drawn in another split is drawn again.
    assert get(port, "fleet_web=1.9.0-1.canary")[2] is not None
    # Without an A/B test the variant header means nothing.
    assert get(port, "fleet_web=1.9.0-1.canary", headers={"X-Variant": "zz"})[0] == 200


def test_haproxy_sticky_split(haproxy, fleet):
    port = fleet[0]["port"]
    # What the haproxy role's sticky_split.yml does: canary backend weights, then the map.
    for host in HOSTS:
        haproxy.cli("set server be_web_main_canary/%s weight %d" % (host, 100 if host in CANARY else 0))
    haproxy.cli("set server be_web_main/app3 weight 0")
    assert {get(port)[1] for _n in range(20)} == {"1.0.0"}
    assert get(port)[2] is None
    sticky = {"active": "be_web_main", "preview": "be_web_a", "sticky": "main", "sticky_canary": "2.0.0-1.canary",
              "sticky_stable": "2.0.0-1.stable"}
    haproxy.set_map("web.map", dict(sticky, sticky_share=2500))
    check_split(port, 25, lambda percent: haproxy.set_map("web.map", dict(sticky, sticky_share=percent * 100)))
    # The canary host out of rotation: its users go to the stable side, no error.
    haproxy.cli("set server be_web_main/app3 state maint")
    assert [get(port, "fleet_web=2.0.0-1.canary")[:2] for _n in range(5)] == [(200, "1.0.0")] * 5
    # Split off (sticky_off.yml): no cookie any more, everyone on the stable side.
    haproxy.set_map("web.map", {"active": "be_web_main", "preview": "be_web_a"})
    haproxy.cli("set server be_web_main/app3 state ready")
    answers = [get(port, cookie) for cookie in (None, "fleet_web=2.0.0-1.canary") for _n in range(5)]
    assert answers == [(200, "1.0.0", None)] * 10


def test_nginx_sticky_split(nginx, fleet):
    port = fleet[0]["port"]
    nginx(down=CANARY)
    assert [get(port) for _n in range(10)] == [(200, "1.0.0", None)] * 10
    nginx(sticky={"canary": CANARY, "share": 25, "token": "2.0.0-1"})
    check_split(port, 25, lambda percent: nginx(sticky={"canary": CANARY, "share": percent, "token": "2.0.0-1"}))
    # Off again (sticky_off.yml): no cookie, everyone on the stable side.
    nginx(down=CANARY)
    answers = [get(port, cookie) for cookie in (None, "fleet_web=2.0.0-1.canary") for _n in range(5)]
    assert answers == [(200, "1.0.0", None)] * 10


AB_USERS = 2000


def check_ab(port: int, apply_split) -> None:
    """A test of a (1.0.0) and b (2.0.0) at 70/30, then 50/50 (``apply_split(percent of a)``)."""
    first = {}
    for index in range(AB_USERS):
        user = {"X-User-Id": "user-%d" % index}
        status, version, set_cookie = get(port, headers=user)
        variant = "b" if version == "2.0.0" else "a"
        assert status == 200 and set_cookie == "fleet_web=t1.%s; Path=/; HttpOnly; SameSite=Lax" % variant
        first[index] = variant
        if index % 10 == 0:
            # The same id without the cookie: the same variant (the hash); with it: no new cookie.
            assert get(port, headers=user)[1] == version
            assert get(port, "fleet_web=t1." + variant, headers=user)[1:] == (version, None)
    share_b = 100.0 * list(first.values()).count("b") / AB_USERS
    assert abs(share_b - 30) <= 3, share_b
    # The override header wins over the cookie and sets none; a bogus cookie is assigned again.
    assert get(port, "fleet_web=t1.a", headers={"X-Variant": "B"})[1:] == ("2.0.0", None)
    # A header naming no variant is QA's mistake: a clear 400, no cookie, no routing.
    for bogus in ("c", "a,b"):
        status, body, set_cookie = get_body(port, {"X-Variant": bogus, "X-User-Id": "user-1"})
        assert (status, set_cookie) == (400, None) and "X-Variant: not a variant of" in body and "a,b)" in body, body
    assert get(port, "fleet_web=active", headers={"X-User-Id": "user-1"})[2].startswith("fleet_web=t1.")
    apply_split(50)
    moved = {"a->b": 0, "b->a": 0}
    for index in range(AB_USERS):
        status, version, _cookie = get(port, headers={"X-User-Id": "user-%d" % index})
        assert status == 200 and version in ("1.0.0", "2.0.0"), (index, status, version)
        variant = "b" if version == "2.0.0" else "a"
        if variant != first[index]:
            moved["%s->%s" % (first[index], variant)] += 1
    # Only users between the old and the new boundary move: 20 % of them, all from a to b.
    assert moved["b->a"] == 0 and abs(100.0 * moved["a->b"] / AB_USERS - 20) <= 3, moved


def test_haproxy_ab_split(haproxy, fleet):
    variants = {"ab": "t1", "variants": "a,b", "variant.a": "a", "variant.b": "b", "cookie.t1.a": "a", "cookie.t1.b": "b"}
    haproxy.set_map("web.map", dict(variants, active="be_web_a", preview="be_web_b"))

    def split(percent_a: int) -> None:
        haproxy.set_map("web.ab.map", {"0:%d" % (percent_a * 100 - 1): "a", "%d:9999" % (percent_a * 100): "b"})

    split(70)
    check_ab(fleet[0]["port"], split)


def test_nginx_ab_split(nginx, fleet):
    def split(percent_a: int) -> None:
        nginx(ab={"token": "t1", "split": [{"variant": "a", "percent": percent_a},
                                           {"variant": "b", "percent": 100 - percent_a}]})

    split(70)
    check_ab(fleet[0]["port"], split)


def test_nginx_preview_route_is_closed_unless_a_step_opens_it(nginx, fleet):
    """Closed (every step but a route step that asks), a preview request is routed as any other: over pool
    main, which has the 2.0.0 host; open, it reaches pool a (app1 and app2, 1.0.0 only)."""
    port = fleet[0]["port"]
    preview = {"X-Rollout-Preview": "1"}
    nginx()
    assert {get(port, headers=preview)[1] for _n in range(30)} == {"1.0.0", "2.0.0"}
    nginx(preview=True)
    assert {get(port, headers=preview)[1] for _n in range(30)} == {"1.0.0"}
    nginx()
    assert {get(port, headers=preview)[1] for _n in range(30)} == {"1.0.0", "2.0.0"}


def test_the_preview_sources_are_loopback_the_lb_itself_and_the_listed_networks(fleet, tmp_path):
    """The LB's own IP address is trusted (a name cannot be: a source ACL takes addresses), not the other
    hosts of the play, which --limit changes; HAProxy accepts the config."""
    service, groups, hostvars = fleet
    hostvars = dict(hostvars, lb1={"ansible_host": "10.9.0.5"}, lb2={"ansible_host": "lb2.example.com"},
                    lb3={"rollout_address": "fd00::5", "ansible_host": "lb3.example.com"})
    cfg = template("haproxy", "haproxy.cfg.j2", rollout_services=[service], groups=groups, hostvars=hostvars,
                   inventory_hostname="lb3", ansible_play_hosts_all=["lb1", "lb2", "lb3"], haproxy_maxconn=256,
                   haproxy_socket=str(tmp_path / "admin.sock"), haproxy_state_file=str(tmp_path / "state"),
                   haproxy_timeout_connect="2s", haproxy_timeout_client="30s", haproxy_timeout_server="30s",
                   haproxy_prometheus_bind="127.0.0.1", haproxy_prometheus_port=8405, haproxy_maps_dir=str(tmp_path),
                   haproxy_errors_dir=str(tmp_path), haproxy_preview_sources=["192.168.0.0/16"],
                   haproxy_preview_header="X-Rollout-Preview", haproxy_check_interval="1s", haproxy_check_fall=2,
                   haproxy_check_rise=1, haproxy_server_weight=100, haproxy_log_format="%b/%s %ST")
    acls = [line.strip() for line in cfg.splitlines() if "acl preview_allowed" in line]
    assert acls == ["acl preview_allowed src 127.0.0.0/8 ::1 fd00::5 192.168.0.0/16"]
    for name in ("web.map", "web.ab.map", "web-503.http", "web-maintenance.html"):
        (tmp_path / name).write_text("HTTP/1.0 503 Service Unavailable\r\n\r\n" if name.endswith(".http") else "")
    (tmp_path / "haproxy.cfg").write_text(cfg)
    checked = subprocess.run(["haproxy", "-c", "-q", "-f", str(tmp_path / "haproxy.cfg")], capture_output=True, text=True,
                             check=False)
    assert checked.returncode == 0, checked.stderr
    geo = template("nginx", "fleet-rollout-preview.conf.j2", hostvars=hostvars, inventory_hostname="lb1",
                   ansible_play_hosts_all=["lb1", "lb2", "lb3"], nginx_preview_sources=["192.168.0.0/16"])
    assert [line.strip() for line in geo.splitlines() if line.strip().endswith(" 1;")] == [
        "127.0.0.0/8 1;", "::1/128 1;", "10.9.0.5 1;", "192.168.0.0/16 1;"]
