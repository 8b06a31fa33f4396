"""fleet.rollout.http_smoke against a real HTTP server on loopback whose answers are scripted per request."""

from __future__ import annotations

import os
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible_collections.fleet.rollout.plugins.module_utils import _http_smoke
from ansible_collections.fleet.rollout.plugins.module_utils._http_smoke import check_options, smoke, summary
from ansible_collections.fleet.rollout.plugins.modules import http_smoke

NEW = "2.0.0"
OLD = "1.0.0"


class ScriptedHandler(BaseHTTPRequestHandler):
    """Answers each request as the next entry of the server's script says.

    An entry is ``(status, version)`` (version None: no X-App-Version header; a list: the header once per item),
    ``("slow", seconds)`` (a passing answer after that long), ``("reset",)`` (the connection is reset without an
    answer) or ``("close",)`` (the connection is closed without an answer). Past the script's end it answers
    ``(200, NEW)``.
    """

    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 - the name http.server calls
        answer = self.server.take(self)
        if answer[0] == "slow":
            time.sleep(answer[1])
            answer = (200, NEW)
        if answer[0] == "reset":
            # SO_LINGER 0: closing sends a RST instead of a FIN.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            os.close(self.connection.detach())
            self.close_connection = True
            return
        if answer[0] == "close":
            self.close_connection = True
            return
        status, version = answer
        body = b"ok\n"
        self.send_response(status)
        versions = version if isinstance(version, list) else [] if version is None else [version]
        for value in versions:
            self.send_header("X-App-Version", value)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):  # noqa: A002 - http.server's signature
        pass


class ScriptedServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, script):
        super().__init__(("127.0.0.1", 0), ScriptedHandler)
        self.script = list(script)
        self.seen = []  # per request: {"path", "client_port", "headers": [(name, value), ...]}
        self.lock = threading.Lock()
        self.url = "http://127.0.0.1:%d/" % self.server_address[1]

    def take(self, handler):
        with self.lock:
            self.seen.append({"path": handler.path, "client_port": handler.client_address[1],
                              "headers": list(handler.headers.items())})
            return self.script.pop(0) if self.script else (200, NEW)

    def handle_error(self, request, client_address):
        pass  # a client that timed out and went away is part of the script


@pytest.fixture
def scripted():
    """``scripted([(200, "2.0.0"), (503, None), ("slow", 1.0), ...])`` starts a server; returns it (``.url``)."""
    servers = []

    def start(script=()):
        server = ScriptedServer(script)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def closed_port_url(port: int) -> str:
    """A loopback URL where nothing listens (``port`` from the free_port fixture)."""
    return "http://127.0.0.1:%d/" % port


# --- module_utils -------------------------------------------------------------------


def test_all_pass(scripted):
    server = scripted()
    result = smoke(server.url, count=20, expect_headers={"X-App-Version": NEW})
    assert result["requests"] == 20 and result["passed"] == 20 and result["failed"] == 0
    assert result["failures"] == [] and result["samples"] == []
    assert result["statuses"] == {"200": 20}
    assert 0 <= result["slowest"] <= result["seconds"] < 5
    assert len(server.seen) == 20
    assert summary(result, server.url) == "all 20 smoke requests to %s passed (slowest %.3fs)" % (
        server.url, result["slowest"])


def test_each_request_uses_a_new_connection_and_sends_the_headers(scripted):
    server = scripted()
    result = smoke(server.url + "preview?x=1", count=3, headers={"X-Rollout-Preview": "1"})
    assert result["passed"] == 3
    assert [seen["path"] for seen in server.seen] == ["/preview?x=1"] * 3
    assert len({seen["client_port"] for seen in server.seen}) == 3
    for seen in server.seen:
        headers = {name.lower(): value for name, value in seen["headers"]}
        assert headers["x-rollout-preview"] == "1"
        assert headers["user-agent"] == "fleet.rollout-http-smoke"
        assert headers["connection"] == "close"
        assert headers["host"] == server.url.split("/")[2]


def test_given_host_and_user_agent_replace_the_defaults(scripted):
    server = scripted()
    smoke(server.url, count=1, headers={"host": "shop.example.org", "User-Agent": "probe/1"})
    names = [name.lower() for name, value in server.seen[0]["headers"]]
    assert names.count("host") == 1 and names.count("user-agent") == 1
    headers = {name.lower(): value for name, value in server.seen[0]["headers"]}
    assert headers["host"] == "shop.example.org" and headers["user-agent"] == "probe/1"


def test_some_5xx_and_wrong_or_missing_versions_are_grouped_by_reason(scripted):
    script = [(200, NEW)] * 2 + [(503, None), (503, NEW)] + [(200, NEW)] * 2 + [(200, OLD), (200, NEW), (200, None)]
    server = scripted(script)
    result = smoke(server.url, count=20, expect_headers={"X-App-Version": NEW})
    assert result["passed"] == 16 and result["failed"] == 4
    assert result["failures"] == [
        {"reason": "status 503", "count": 2, "first": 3},
        {"reason": "X-App-Version 1.0.0 (expected 2.0.0)", "count": 1, "first": 7},
        {"reason": "X-App-Version missing (expected 2.0.0)", "count": 1, "first": 9},
    ]
    assert result["statuses"] == {"200": 18, "503": 2}
    assert [sample["index"] for sample in result["samples"]] == [3, 4, 7, 9]
    first = result["samples"][0]
    assert first["status"] == 503 and first["error"] == "status 503"
    assert first["headers"] == {"X-App-Version": None}
    assert result["samples"][1]["headers"] == {"X-App-Version": NEW}
    assert result["samples"][2] == {"index": 7, "status": 200, "error": "X-App-Version 1.0.0 (expected 2.0.0)",
                                    "seconds": result["samples"][2]["seconds"], "headers": {"X-App-Version": OLD}}
    assert summary(result, server.url) == (
        "4 of 20 smoke requests to %s failed: 2 x status 503, 1 x X-App-Version 1.0.0 (expected 2.0.0), "
        "1 x X-App-Version missing (expected 2.0.0)" % server.url)


def test_header_names_are_case_insensitive_and_values_exact(scripted):
    server = scripted([(200, "2.0.0 "), (200, "2.0.0-rc1"), (200, [OLD, NEW])])
    result = smoke(server.url, count=4, expect_headers={"x-app-version": NEW})
    # http.client drops the whitespace around a value; "2.0.0-rc1" is not "2.0.0"; a repeated header is joined.
    assert result["passed"] == 2
    assert [group["reason"] for group in result["failures"]] == [
        "x-app-version 2.0.0-rc1 (expected 2.0.0)", "x-app-version 1.0.0, 2.0.0 (expected 2.0.0)"]


def test_samples_keep_the_first_five(scripted):
    server = scripted([(500, None)] * 8)
    result = smoke(server.url, count=10)
    assert result["failed"] == 8
    assert [sample["index"] for sample in result["samples"]] == [1, 2, 3, 4, 5]
    assert all(sample["headers"] == {} for sample in result["samples"])  # no expect_headers: nothing to show
    assert result["failures"] == [{"reason": "status 500", "count": 8, "first": 1}]


def test_non_2xx_fails_by_default_and_expect_status_replaces_the_2xx_rule(scripted):
    server = scripted([(204, NEW), (302, NEW), (404, NEW)])
    result = smoke(server.url, count=4)
    assert result["failures"] == [{"reason": "status 302", "count": 1, "first": 2},
                                  {"reason": "status 404", "count": 1, "first": 3}]
    assert result["statuses"] == {"200": 1, "204": 1, "302": 1, "404": 1}

    server = scripted([(302, NEW), (404, NEW), (200, NEW)])
    result = smoke(server.url, count=3, expect_status=[302, 404])
    assert result["failures"] == [{"reason": "status 200", "count": 1, "first": 3}]


def test_timeout(scripted):
    server = scripted([("slow", 2.0), (200, NEW)])
    started = time.monotonic()
    result = smoke(server.url, count=2, timeout=0.3)
    assert time.monotonic() - started < 1.5
    assert result["failures"] == [{"reason": "timeout", "count": 1, "first": 1}]
    assert result["statuses"] == {"timeout": 1, "200": 1}
    sample = result["samples"][0]
    assert sample["status"] is None and sample["headers"] == {}
    assert "timed out" in sample["error"]
    assert 0.25 <= sample["seconds"] < 1.0
    assert result["slowest"] == sample["seconds"]


def test_connection_refused(free_port):
    url = closed_port_url(free_port())
    result = smoke(url, count=3, expect_headers={"X-App-Version": NEW})
    assert result["passed"] == 0 and result["failed"] == 3
    assert result["failures"] == [{"reason": "connection refused", "count": 3, "first": 1}]
    assert result["statuses"] == {"connection refused": 3}
    assert result["samples"][0]["error"].startswith("ConnectionRefusedError: ")
    assert result["samples"][0]["headers"] == {}
    assert summary(result, url) == "3 of 3 smoke requests to %s failed: 3 x connection refused" % url


def test_connection_reset_and_closed_without_answer(scripted):
    server = scripted([("reset",), ("close",), (200, NEW)])
    result = smoke(server.url, count=3)
    assert result["failures"] == [{"reason": "connection reset", "count": 2, "first": 1}]
    assert result["statuses"] == {"connection reset": 2, "200": 1}
    assert result["samples"][0]["error"].startswith("ConnectionResetError: ")
    assert result["samples"][1]["error"].startswith("RemoteDisconnected: ")


def test_interval_spaces_the_requests(scripted):
    server = scripted()
    result = smoke(server.url, count=3, interval=0.15)
    assert result["passed"] == 3
    assert result["seconds"] >= 0.3


def test_injected_clock_and_sleep(scripted):
    server = scripted()
    now = [100.0]
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        now[0] += seconds

    result = smoke(server.url, count=4, interval=2.5, clock=lambda: now[0], sleep=sleep)
    assert slept == [2.5, 2.5, 2.5]  # between requests, not after the last
    assert result["seconds"] == 7.5 and result["slowest"] == 0.0


def test_summary_text_and_many_reasons():
    result = {"requests": 20, "passed": 17, "failed": 3, "slowest": 0.01, "failures": [
        {"reason": "status 503", "count": 2, "first": 1},
        {"reason": "X-App-Version 1.0.0 (expected 2.0.0)", "count": 1, "first": 5},
    ]}
    assert summary(result, "http://127.0.0.1:80/") == (
        "3 of 20 smoke requests to http://127.0.0.1:80/ failed: 2 x status 503, "
        "1 x X-App-Version 1.0.0 (expected 2.0.0)")
    many = [{"reason": "status %d" % (500 + n), "count": 1, "first": n + 1} for n in range(8)]
    result = {"requests": 8, "passed": 0, "failed": 8, "slowest": 0.0, "failures": many}
    assert summary(result, "http://lb/") == (
        "8 of 8 smoke requests to http://lb/ failed: 1 x status 500, 1 x status 501, 1 x status 502, "
        "1 x status 503, 1 x status 504, 3 x 3 other reasons")


@pytest.mark.parametrize("kwargs, expected", [
    ({"count": 0}, "count must be at least 1, got 0"),
    ({"count": -3}, "count must be at least 1, got -3"),
    ({"timeout": 0}, "timeout must be above 0 seconds, got 0"),
    ({"timeout": -1.5}, "timeout must be above 0 seconds, got -1.5"),
    ({"interval": -0.1}, "interval must be 0 or more seconds, got -0.1"),
    ({"url": "127.0.0.1:80/"}, "url must be an http:// or https:// URL with a host, got '127.0.0.1:80/'"),
    ({"url": "ftp://example.org/"}, "url must be an http:// or https:// URL with a host"),
    ({"url": "http:///path"}, "url must be an http:// or https:// URL with a host"),
    ({"url": "http://[::1/"}, "url must be an http:// or https:// URL with a host"),
    ({"url": "http://127.0.0.1:99999/"}, "url has an invalid port"),
    ({"url": "http://127.0.0.1/a b"}, "url must not contain spaces or control characters"),
    ({"url": "http://127.0.0.1/\r\nX-Evil: 1"}, "url must not contain spaces or control characters"),
    ({"url": "http://127.0.0.1/caf\u00e9"}, "url: percent-encode the non-ASCII characters"),
    ({"url": "http://user:secret@127.0.0.1/"}, "url must not contain credentials"),
    ({"expect_status": [200, 99, 600]}, "expect_status must list HTTP statuses (100-599), got [99, 600]"),
    ({"headers": {"X-Rollout-Preview": "1\r\nX-Evil: 1"}}, "headers: the value of X-Rollout-Preview must not contain CR"),
    ({"headers": {"X-Evil\r\nX": "1"}}, "headers: 'X-Evil\\r\\nX' is not a valid header name"),
    ({"headers": {"Bad Name": "1"}}, "headers: 'Bad Name' is not a valid header name"),
    ({"headers": {"X-Flag": True}}, "headers: the value of X-Flag must be a string, got True (quote it)"),
    ({"headers": {"X-A": "1", "x-a": "2"}}, "headers: header x-a is given twice"),
    ({"headers": {"X-Name": "\u2603"}}, "headers: the value of X-Name must be Latin-1 text"),
    ({"expect_headers": {"X-App-Version": "2.0.0\n"}}, "expect_headers: the value of X-App-Version must not contain"),
    ({"expect_headers": {"X-App-Version:": "2.0.0"}}, "expect_headers: 'X-App-Version:' is not a valid header name"),
    ({"expect_headers": {"X-App-Version": None}}, "expect_headers: the value of X-App-Version must be a string"),
])
def test_bad_input_is_refused_naming_the_option(kwargs, expected):
    args = {"url": "http://127.0.0.1:1/"}
    args.update(kwargs)
    with pytest.raises(ValueError) as error:
        smoke(**args)
    assert expected in str(error.value)


def test_every_problem_is_reported_at_once_and_nothing_is_sent(scripted):
    server = scripted()
    with pytest.raises(ValueError) as error:
        smoke(server.url, count=0, timeout=0, interval=-1)
    assert str(error.value) == ("count must be at least 1, got 0; timeout must be above 0 seconds, got 0; "
                                "interval must be 0 or more seconds, got -1")
    assert server.seen == []


def test_check_options_normalises():
    options = check_options(" http://lb:8080/x ", count=2, headers={"X-Rollout-Preview": 1}, timeout=1,
                            expect_status=[200], expect_headers={"X-App-Version": 2.5})
    assert options == {"url": "http://lb:8080/x", "count": 2, "headers": {"X-Rollout-Preview": "1"}, "timeout": 1.0,
                       "interval": 0.0, "expect_status": frozenset([200]), "expect_headers": {"X-App-Version": "2.5"}}


def test_error_reasons():
    assert _http_smoke._error_reason(socket.timeout("timed out")) == "timeout"
    assert _http_smoke._error_reason(TimeoutError()) == "timeout"
    assert _http_smoke._error_reason(socket.gaierror(-2, "Name or service not known")) == "name not resolved"
    assert _http_smoke._error_reason(BrokenPipeError()) == "connection reset"
    assert _http_smoke._error_reason(OSError(113, "No route to host")) == "OSError"


# --- the module ---------------------------------------------------------------------


def test_module_passes_unchanged_with_a_summary(scripted, run_module):
    server = scripted()
    out = run_module(http_smoke.main, {"url": server.url, "count": 5, "headers": {"X-Rollout-Preview": 1},
                                       "expect_headers": {"X-App-Version": NEW}})
    assert "failed" not in out, out["msg"]
    assert out["changed"] is False
    assert out["msg"].startswith("all 5 smoke requests to %s passed" % server.url)
    assert out["requests"] == 5 and out["passed"] == 5 and out["failed_requests"] == 0
    assert out["statuses"] == {"200": 5} and out["failures"] == [] and out["samples"] == []
    assert set(out) >= {"requests", "passed", "failed_requests", "failures", "samples", "seconds", "slowest",
                        "statuses"}
    # YAML's unquoted 1 arrives as an int and is sent as "1".
    assert all(("X-Rollout-Preview", "1") in seen["headers"] for seen in server.seen)


def test_module_fails_with_the_summary_and_the_whole_result(scripted, run_module):
    server = scripted([(200, NEW), (503, None), (200, OLD)])
    out = run_module(http_smoke.main, {"url": server.url, "count": 4, "expect_headers": {"X-App-Version": NEW}})
    assert out["failed"] is True and out["changed"] is False
    assert out["msg"] == ("2 of 4 smoke requests to %s failed: 1 x status 503, 1 x X-App-Version 1.0.0 "
                          "(expected 2.0.0)" % server.url)
    assert out["passed"] == 2 and out["failed_requests"] == 2
    assert [group["first"] for group in out["failures"]] == [2, 3]
    assert out["statuses"] == {"200": 3, "503": 1}


def test_module_sends_the_requests_in_check_mode(scripted, run_module):
    server = scripted()
    out = run_module(http_smoke.main, {"url": server.url, "count": 3}, check_mode=True)
    assert "failed" not in out and "skipped" not in out
    assert out["changed"] is False and out["passed"] == 3
    assert len(server.seen) == 3


def test_module_refuses_bad_input_before_sending(scripted, run_module):
    server = scripted()
    out = run_module(http_smoke.main, {"url": server.url, "count": 0, "expect_status": [999],
                                       "headers": {"X-A": "1\n2"}})
    assert out["failed"] is True
    assert out["msg"] == ("count must be at least 1, got 0; headers: the value of X-A must not contain CR, LF or NUL, "
                          "got '1\\n2'; expect_status must list HTTP statuses (100-599), got [999]")
    assert "requests" not in out
    assert server.seen == []
