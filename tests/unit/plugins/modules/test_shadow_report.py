"""fleet.rollout.shadow_report on what a real nginx and the real shadow relay logged: nginx mirrors through the
fleet.rollout.shadow role's own templates to the relay (roles/shadow/files), which forwards to a real sample app."""

from __future__ import annotations

import http.client
import json
import os
import threading
import time

import jinja2
import pytest

from ansible_collections.fleet.rollout.plugins.modules import shadow_report

ROLE = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "roles", "shadow")
LOG_FORMAT = ("log_format fleet_shop escape=json '{\"ts\":$msec,\"id\":\"$request_id\",\"service\":\"shop\","
              "\"pool\":\"fleet_shop_blue\",\"upstream\":\"$upstream_addr\",\"status\":$status,"
              "\"upstream_status\":\"$upstream_status\",\"rt\":$request_time,\"urt\":\"$upstream_response_time\","
              "\"method\":\"$request_method\",\"uri\":\"$request_uri\",\"user\":\"\"}';")


def render(name: str, **variables) -> str:
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined)
    environment.filters["bool"] = bool
    with open(os.path.join(ROLE, "templates", name), encoding="utf-8") as handle:
        return environment.from_string(handle.read()).render(**variables)


@pytest.fixture
def shadowed(nginx_lab, run_app, shadow_relay, tmp_path, free_port):
    """``start(methods, sample, **shadow_knobs)``: nginx serving the 1.0.0 app on its own port, mirroring to the
    relay, which forwards to a 2.0.0 app with ``shadow_knobs``. Returns a dict of what the test needs."""
    made = []

    def start(methods=("GET", "HEAD"), sample=100, **knobs):
        primary, primary_url = run_app(version="1.0.0", data_dir=str(tmp_path / "primary-data"))
        shadow, shadow_url = run_app(version="2.0.0", data_dir=str(tmp_path / "scratch"), **knobs)
        relay_log = str(tmp_path / "relay" / "shop.jsonl")
        relay, forwarder, log = shadow_relay.make_relay({
            "listen": ("127.0.0.1", 0), "targets": [shadow_url.split("//")[1]], "timeout": 2.0, "workers": 8,
            "queue": 100, "log": relay_log, "service": "shop"})
        threading.Thread(target=relay.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        made.append((relay, forwarder, log))
        variables = {
            "ansible_managed": "test", "rollout_common_service": {"name": "shop"}, "_shadow_pool": "green",
            "_shadow_var": "shop", "_shadow_port": relay.server_address[1], "shadow_sample_percent": sample,
            "shadow_methods": list(methods), "_shadow_writes": bool(set(methods) - {"GET", "HEAD", "OPTIONS"}),
            "shadow_mirror_connect_timeout": "100ms", "shadow_mirror_timeout": "200ms"}
        root = nginx_lab.root
        for name in ("shadow.server.conf", "shadow.location.conf"):
            with open(os.path.join(root, name), "w", encoding="utf-8") as handle:
                handle.write(render(name + ".j2", **variables))
        port = free_port()
        with open(os.path.join(nginx_lab.conf_d, "shop.conf"), "w", encoding="utf-8") as handle:
            handle.write(render("shadow.http.conf.j2", **variables) + "\n" + LOG_FORMAT + "\n" + """
upstream fleet_shop_blue {{ server {primary}; keepalive 4; }}
map "" $fleet_pool {{ default fleet_shop_blue; }}
server {{
    listen 127.0.0.1:{port};
    access_log {root}/fleet-shop.access.json fleet_shop;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header X-Request-ID $request_id;
    include {root}/shadow.server.conf;
    location / {{
        include {root}/shadow.location.conf;
        proxy_pass http://fleet_shop_blue;
    }}
}}
""".format(primary=primary_url.split("//")[1], port=port, root=root))
        nginx_lab.start()
        return {"port": port, "root": root, "relay_log": relay_log, "primary": primary, "shadow": shadow,
                "tmp": tmp_path}

    yield start
    for relay, forwarder, log in made:
        relay.shutdown()
        relay.server_close()
        forwarder.stop()
        log.close()


def send(port: int, gets: int, posts: int = 0) -> list[dict]:
    """Requests through nginx on one keep-alive connection; what each got."""
    answers = []
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for index in range(gets + posts):
        if index % 5 == 4 and posts:
            posts -= 1
            connection.request("POST", "/orders", body=json.dumps({"n": index}),
                               headers={"Content-Type": "application/json"})
        else:
            connection.request("GET", "/")
        response = connection.getresponse()
        response.read()
        answers.append({"status": response.status, "version": response.getheader("X-App-Version"),
                        "id": response.getheader("X-Request-ID")})
    connection.close()
    return answers


def report(run_module, lab, since, **extra):
    return run_module(shadow_report.main, dict({
        "service": "shop", "since": since, "until": time.time(), "settle": 0.5, "nginx_log_dir": lab["root"],
        "relay_log": lab["relay_log"], "min_compared": 10}, **extra))


def relay_lines(lab) -> list[dict]:
    with open(lab["relay_log"], encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def wait_for_relay(lab, lines: int, timeout: float = 10.0) -> None:
    """nginx answers the user before its mirror subrequest reaches the relay, so the last mirrored request can
    arrive after the client's ``time.time()``: wait until the relay logged ``lines`` requests before the window
    closes (under ``pytest -n`` the gap reached a window's edge and dropped a row)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.exists(lab["relay_log"]) and len(relay_lines(lab)) >= lines:
            return
        time.sleep(0.05)
    raise AssertionError("the relay logged fewer than %d requests in %.0f s" % (lines, timeout))


def wait_for_access_log(lab, lines: int, timeout: float = 10.0) -> None:
    """nginx logs a request after it answered it, at that moment ($msec): under load the last line can come after
    the client's ``time.time()`` and fall out of the window. Wait until nginx logged ``lines`` requests."""
    path = os.path.join(lab["root"], "fleet-shop.access.json")
    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.exists(path):
            with open(path, encoding="utf-8") as handle:
                if sum(1 for _line in handle) >= lines:
                    return
        time.sleep(0.05)
    raise AssertionError("nginx logged fewer than %d requests in %.0f s" % (lines, timeout))


def test_a_good_shadow_passes_and_counts_match_the_logs(shadowed, run_module):
    lab = shadowed()
    since = time.time()
    answers = send(lab["port"], gets=100, posts=25)
    wait_for_relay(lab, 100)
    wait_for_access_log(lab, 125)
    out = report(run_module, lab, since)
    assert not out.get("failed"), out
    assert {a["version"] for a in answers} == {"1.0.0"} and {a["status"] for a in answers} == {200, 201}
    # Reads mirrored, writes not: the shadow got each GET once, with the header and the user's request id.
    gets = {a["id"] for a in answers if a["status"] == 200}
    logged = relay_lines(lab)
    assert {r["id"] for r in logged} == gets and len(logged) == 100
    assert lab["shadow"].RequestHandlerClass.counters.snapshot()["shadow_requests"] >= 100
    assert (out["primary_requests"], out["mirrored"], out["compared"], out["status_mismatches"]) == (125, 100, 100, 0)
    assert out["verdict"] == "pass" and out["passed"] and out["summary"].startswith("PASS: 100 compared")
    assert out["latency"]["shadow"]["p99"] is not None and "rows" not in out


def test_mirrored_writes_go_to_the_shadow_store_and_500s_fail(shadowed, run_module):
    lab = shadowed(methods=("GET", "POST"), error_rate=1.0)
    since = time.time()
    answers = send(lab["port"], gets=40, posts=10)
    wait_for_relay(lab, 50)
    wait_for_access_log(lab, 50)
    out = report(run_module, lab, since)
    assert {a["status"] for a in answers} == {200, 201}
    assert out["verdict"] == "fail" and out["shadow_error_rate"] == 100.0 and out["mismatch_rate"] == 100.0
    assert out["top_mismatches"][0] == {"method": "GET", "path": "/", "primary_status": 200, "shadow_status": 500,
                                        "requests": 40}
    assert out["top_mismatches"][1]["path"] == "/orders" and out["top_mismatches"][1]["requests"] == 10
    with open(lab["tmp"] / "primary-data" / "orders.jsonl", encoding="utf-8") as handle:
        stored = [json.loads(line) for line in handle]
    assert sorted(r["request_id"] for r in stored) == sorted(a["id"] for a in answers if a["status"] == 201)
    assert not any(r["shadow"] for r in stored)


def test_a_stopped_shadow_fails_and_rows_merge(shadowed, run_module):
    lab = shadowed()
    lab["shadow"].shutdown()
    lab["shadow"].server_close()
    since = time.time()
    answers = send(lab["port"], gets=30)
    assert {a["status"] for a in answers} == {200}
    wait_for_relay(lab, 30)
    wait_for_access_log(lab, 30)
    first = report(run_module, lab, since, return_rows=True)
    assert len(first["rows"]) == 30 and first["shadow_failed"] == 30
    assert any("Connection" in kind for kind in first["shadow_errors"])
    merged = report(run_module, lab, since, merge=[first], max_error_rate=100.0)
    assert (merged["mirrored"], merged["primary_requests"], merged["sent"]) == (60, 60, 60)
    assert merged["verdict"] == "fail" and merged["reasons"] == ["0 requests compared, fewer than min_compared (10)"]


def test_a_sample_mirrors_a_share(shadowed, run_module):
    lab = shadowed(sample=50)
    since = time.time()
    send(lab["port"], gets=400)
    wait_for_access_log(lab, 400)
    out = report(run_module, lab, since)
    assert 150 <= out["mirrored"] <= 250 and out["primary_requests"] == 400


@pytest.mark.parametrize("args, message", [
    ({"until": 1.0}, "until (1.0) is before since"),
    ({"service": "../etc"}, "service: expected a service name"),
    ({"merge": [{"primary_requests": 3}]}, "merge[0]: expected a result of this module run with return_rows=true"),
    ({"max_mismatch_rate": 101.0}, "max_mismatch_rate must be a percentage"),
])
def test_bad_input(run_module, tmp_path, args, message):
    (tmp_path / "fleet-shop.access.json").write_text("")
    out = run_module(shadow_report.main, dict({"service": "shop", "since": 2.0, "settle": 0, "nginx_log_dir": str(tmp_path),
                                               "relay_log": str(tmp_path / "none.jsonl")}, **args))
    assert out["failed"] and message in out["msg"]
