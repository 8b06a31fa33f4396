"""The shadow relay (roles/shadow/files/fleet_shadow_relay.py) against real sample-app servers on loopback."""

from __future__ import annotations

import http.client
import json
import os
import socket
import stat
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def start(shadow_relay, tmp_path, targets, workers=2, queue=10, timeout=2.0, **config):
    log = str(tmp_path / "relay.jsonl")
    relay, forwarder, record_log = shadow_relay.make_relay(dict({
        "listen": ("127.0.0.1", 0), "targets": targets, "timeout": timeout, "workers": workers, "queue": queue,
        "log": log, "service": "shop"}, **config))
    threading.Thread(target=relay.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return relay, forwarder, record_log, log


def send(relay, requests, first=0, headers=()):
    """Requests to the relay on one keep-alive connection; each must be acknowledged at once with 204."""
    connection = http.client.HTTPConnection("127.0.0.1", relay.server_address[1], timeout=5)
    for index, (method, path, body) in enumerate(requests, first):
        connection.putrequest(method, path, skip_accept_encoding=True)
        connection.putheader("X-Request-ID", "r%d" % index)
        for name, value in headers:
            connection.putheader(name, value)
        connection.putheader("Content-Length", str(len(body or b"")))
        connection.endheaders(body)
        response = connection.getresponse()
        response.read()
        assert response.status == 204
    connection.close()


def records(log, count, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(log, encoding="utf-8") as handle:
            lines = [json.loads(line) for line in handle]
        if len(lines) >= count:
            return lines
        time.sleep(0.05)
    raise AssertionError("%d records, expected %d" % (len(lines), count))


def stop(relay, forwarder, record_log, wait=5.0):
    relay.shutdown()
    relay.server_close()
    forwarder.stop(wait)
    record_log.close()


def test_forwards_with_the_shadow_header_and_survives_odd_uris(shadow_relay, run_app, tmp_path):
    app, url = run_app(version="2.0.0", data_dir=str(tmp_path / "scratch"))
    relay, forwarder, record_log, log = start(shadow_relay, tmp_path, [url.split("//")[1]], workers=1)
    # A raw non-ASCII byte in the path (as nginx passes it on), then ordinary requests: the one worker must live on.
    with socket.create_connection(("127.0.0.1", relay.server_address[1]), timeout=5) as raw:
        raw.sendall(b"GET /caf\xe9 HTTP/1.1\r\nHost: x\r\nX-Request-ID: r0\r\nContent-Length: 0\r\n\r\n")
        assert raw.recv(1024).startswith(b"HTTP/1.1 204")
    send(relay, [("POST", "/orders", b'{"n": 1}'), ("GET", "/", None)], first=1)
    got = sorted(records(log, 3), key=lambda r: r["id"])
    assert [(r["id"], r["uri"], r["status"]) for r in got] == [
        ("r0", "/caf%E9", 404), ("r1", "/orders", 201), ("r2", "/", 200)]
    assert {r["version"] for r in got} == {"2.0.0"}
    assert app.RequestHandlerClass.counters.snapshot()["shadow_requests"] == 3
    with open(tmp_path / "scratch" / "orders.jsonl", encoding="utf-8") as handle:
        order = json.loads(handle.readline())
    assert order["shadow"] is True and order["request_id"] == "r1" and order["order"] == {"n": 1}
    stop(relay, forwarder, record_log)


def test_a_full_queue_drops_and_stopping_records_what_was_left(shadow_relay, run_app, tmp_path):
    _app, url = run_app(version="2.0.0", latency_ms=500)
    relay, forwarder, record_log, log = start(shadow_relay, tmp_path, [url.split("//")[1]], workers=1, queue=2)
    started = time.monotonic()
    send(relay, [("GET", "/", None)] * 6)
    # Acknowledged at once although the shadow takes 0.5 s a request.
    assert time.monotonic() - started < 1.5  # waiting on the shadow would take 3 s
    stop(relay, forwarder, record_log, wait=2.0)
    got = records(log, 6)
    answered = [r for r in got if r["status"] == 200]
    dropped = [r for r in got if r["error"] == "dropped"]
    assert len(answered) >= 1 and len(answered) + len(dropped) == 6
    assert len(dropped) >= 3


def test_a_stopped_shadow_is_recorded_as_no_answer(shadow_relay, tmp_path, free_port):
    closed = "127.0.0.1:%d" % free_port()
    relay, forwarder, record_log, log = start(shadow_relay, tmp_path, [closed])
    send(relay, [("GET", "/", None)])
    got = records(log, 1)
    assert got[0]["status"] is None and got[0]["error"].startswith("ConnectionRefusedError")
    stop(relay, forwarder, record_log)


def capturing_shadow():
    """A shadow on loopback that answers 200 and keeps the path and headers of every request it gets."""
    seen = []

    class Capture(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            seen.append((self.path, {key.lower(): value for key, value in self.headers.items()}))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Capture)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server, seen


CREDENTIALS = (("Cookie", "session=s3cret"), ("Authorization", "Bearer t0ken"), ("X-User-Id", "u1"))


def test_credentials_stay_with_the_users_and_the_log_keeps_paths_only(shadow_relay, tmp_path):
    """The shadow runs a release under test: it gets no session cookie or token (unless the config says so),
    and the relay's log, which holds what users requested, keeps no query string and is not world-readable."""
    server, seen = capturing_shadow()
    relay, forwarder, record_log, log = start(shadow_relay, tmp_path, ["127.0.0.1:%d" % server.server_address[1]])
    send(relay, [("GET", "/account?token=abc&page=2", None)], headers=CREDENTIALS)
    got = records(log, 1)
    stop(relay, forwarder, record_log)
    path, headers = seen[0]
    # The shadow gets the request as the user sent it, less the credentials.
    assert path == "/account?token=abc&page=2"
    assert "cookie" not in headers and "authorization" not in headers
    assert headers["x-user-id"] == "u1" and headers["x-shadow-request"] == "1"
    assert got[0]["uri"] == "/account" and got[0]["status"] == 200
    assert stat.S_IMODE(os.stat(log).st_mode) == 0o640
    server.shutdown()
    server.server_close()


def test_credentials_are_forwarded_when_the_config_asks(shadow_relay, tmp_path):
    server, seen = capturing_shadow()
    relay, forwarder, record_log, log = start(shadow_relay, tmp_path, ["127.0.0.1:%d" % server.server_address[1]],
                                              forward_credentials=True)
    send(relay, [("GET", "/", None)], headers=CREDENTIALS)
    records(log, 1)
    stop(relay, forwarder, record_log)
    assert seen[0][1]["cookie"] == "session=s3cret" and seen[0][1]["authorization"] == "Bearer t0ken"
    server.shutdown()
    server.server_close()
