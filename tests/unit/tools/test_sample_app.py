"""The sample app, run for real on loopback."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest


def get(url, method="GET", body=None, headers=None):
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


def test_root_reports_version_and_host(run_app):
    url = run_app(version="2.0.0")[1]
    status, headers, body = get(url + "/", headers={"X-Request-ID": "abc123"})
    data = json.loads(body)
    assert status == 200
    assert headers["X-App-Version"] == "2.0.0"
    assert headers["X-App-Host"] == socket.gethostname()
    assert headers["X-Request-ID"] == "abc123"
    assert data["version"] == "2.0.0" and data["request_id"] == "abc123"


def test_keepalive_connection_serves_many_requests(run_app):
    server, url = run_app()
    conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=5)
    for attempt in range(20):
        conn.request("GET", "/")
        response = conn.getresponse()
        response.read()
        assert response.status == 200
    conn.close()


def test_healthz_knobs(run_app, tmp_path):
    healthy = run_app()[1]
    assert get(healthy + "/healthz")[0] == 200
    failing = run_app(health_fail="1")[1]
    assert get(failing + "/healthz")[0] == 503
    flag = tmp_path / "down"
    by_file = run_app(fail_file=str(flag))[1]
    assert get(by_file + "/healthz")[0] == 200
    flag.write_text("")
    assert get(by_file + "/healthz")[0] == 503
    flag.unlink()
    assert get(by_file + "/healthz")[0] == 200


def test_error_rate_knob_fails_that_share_of_requests(run_app):
    url = run_app(error_rate="0.5")[1]
    statuses = [get(url + "/")[0] for attempt in range(400)]
    failed = statuses.count(500)
    assert set(statuses) == {200, 500}
    assert 140 <= failed <= 260  # 0.5 * 400 = 200, well inside 6 sigma


def test_bad_release_defaults_apply_and_env_overrides_them(run_app):
    bad = run_app(version="2.0.1-bad", defaults={"error_rate": 1.0})[1]
    assert get(bad + "/")[0] == 500
    assert get(bad + "/healthz")[0] == 200  # only traffic analysis can catch it
    fixed = run_app(version="2.0.1-bad", defaults={"error_rate": 1.0}, error_rate="0")[1]
    assert get(fixed + "/")[0] == 200


def test_latency_knob_adds_latency(run_app):
    url = run_app(latency_ms="1000")[1]
    started = time.monotonic()
    get(url + "/")
    assert time.monotonic() - started >= 1.0
    started = time.monotonic()
    get(url + "/healthz")  # health checks stay fast
    assert time.monotonic() - started < 0.5


def test_orders_are_appended_to_the_data_file(run_app, tmp_path):
    url = run_app()[1]
    for n in range(3):
        headers = {"Content-Type": "application/json", "X-Request-ID": "r%d" % n}
        assert get(url + "/orders", "POST", json.dumps({"item": n}).encode(), headers)[0] == 201
    get(url + "/orders", "POST", b'{"item": 9}', {"X-Shadow-Request": "1"})
    lines = (tmp_path / "data" / "orders.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["order"]["item"] for r in records] == [0, 1, 2, 9]
    assert [r["request_id"] for r in records[:3]] == ["r0", "r1", "r2"]
    assert records[3]["shadow"] is True
    assert get(url + "/orders", "POST", b"not json")[0] == 400


def test_checkout_counts_conversions(run_app):
    url = run_app()[1]
    for attempt in range(3):
        assert json.loads(get(url + "/checkout")[2])["converted"] is True
    get(url + "/")
    stats = json.loads(get(url + "/stats")[2])
    assert stats["checkouts"] == 3 and stats["requests"] == 4


def test_slow_endpoint_is_bounded_and_validated(run_app):
    url = run_app()[1]
    started = time.monotonic()
    assert get(url + "/slow?s=0.3")[0] == 200
    assert time.monotonic() - started >= 0.3
    assert get(url + "/slow?s=abc")[0] == 400
    assert get(url + "/nope")[0] == 404


def test_invalid_knob_is_a_clear_error(sample_app):
    with pytest.raises(SystemExit, match="SAMPLE_APP_ERROR_RATE"):
        sample_app.load_settings({"SAMPLE_APP_ERROR_RATE": "lots"}, {"version": "1", "defaults": {}})
    with pytest.raises(SystemExit, match="between 0 and 1"):
        sample_app.load_settings({"SAMPLE_APP_ERROR_RATE": "2"}, {"version": "1", "defaults": {}})


def _wait_listening(port, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def _start_app(tmp_path, repo_root, port):
    """The sample app as its own process (signals are the point), on ``port``."""
    env = dict(os.environ, SAMPLE_APP_PORT=str(port), SAMPLE_APP_BIND="127.0.0.1", SAMPLE_APP_DATA_DIR=str(tmp_path))
    proc = subprocess.Popen([sys.executable, os.path.join(repo_root, "tools/sample_app/sample_app.py")], env=env,
                            stderr=subprocess.PIPE)
    return port, proc


def test_sigterm_lets_in_flight_requests_finish(tmp_path, repo_root, free_port):
    """A rolling update stops the service while requests are in flight: none may fail."""
    port, proc = _start_app(tmp_path, repo_root, free_port())
    try:
        assert _wait_listening(port)
        result = {}

        def slow_request():
            result["answer"] = get("http://127.0.0.1:%d/slow?s=1" % port)

        thread = threading.Thread(target=slow_request)
        thread.start()
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        thread.join(10)
        assert result["answer"][0] == 200
        assert proc.wait(10) == 0
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    finally:
        proc.kill()
        proc.wait()


def test_sigterm_closes_idle_keep_alive_connections_at_once(tmp_path, repo_root, free_port):
    """LBs keep idle connections to reuse (HAProxy's http-reuse): a stop must not wait for them to time out,
    while a request in flight on another kept-alive connection still gets its answer."""
    port, proc = _start_app(tmp_path, repo_root, free_port())
    try:
        assert _wait_listening(port)
        idle = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        idle.request("GET", "/")
        assert idle.getresponse().read() and idle.sock is not None  # kept alive, now idle
        busy = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        busy.request("GET", "/")
        busy.getresponse().read()
        result = {}

        def slow_request():
            busy.request("GET", "/slow?s=1")
            response = busy.getresponse()
            result["status"] = response.status
            result["close"] = response.getheader("Connection")

        thread = threading.Thread(target=slow_request)
        thread.start()
        time.sleep(0.3)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        stopped_after = time.monotonic() - started
        thread.join(10)
        assert result["status"] == 200
        # The stop took as long as the request in flight, not an idle timeout.
        assert stopped_after < 2.5
    finally:
        proc.kill()
        proc.wait()


def test_slow_start_delays_listening(tmp_path, repo_root, free_port):
    port = free_port()
    env = dict(os.environ, SAMPLE_APP_PORT=str(port), SAMPLE_APP_BIND="127.0.0.1", SAMPLE_APP_SLOW_START_S="1",
               SAMPLE_APP_DATA_DIR=str(tmp_path))
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, os.path.join(repo_root, "tools/sample_app/sample_app.py")], env=env,
                            stderr=subprocess.DEVNULL)
    try:
        assert _wait_listening(port)
        assert time.monotonic() - started >= 1.0
    finally:
        proc.terminate()
        proc.wait(10)
