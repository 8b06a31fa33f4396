"""Sample application used by the fleet.rollout lab, tests and demo.

A small stdlib-only HTTP/1.1 service. Every answer carries the release's
version in ``X-App-Version`` and the host in ``X-App-Host`` so that a traffic
probe can tell which release served each request.

Endpoints:
  GET  /            JSON: version, host, request id
  GET  /healthz     200 "ok", or 503 when the health knobs say so
  GET  /slow?s=N    answers after N seconds (at most 30): long in-flight requests
  GET  /checkout    counts a conversion (A/B tests)
  POST /orders      appends the request body, as one JSON line, to the data file
  GET  /stats       counters since start (requests, errors, orders, checkouts)

Knobs (environment, overriding the release's own defaults in release.json
next to this file):
  SAMPLE_APP_PORT          listening port (8080)
  SAMPLE_APP_BIND          listening address (0.0.0.0)
  SAMPLE_APP_ERROR_RATE    share of requests to / /checkout /orders answered 500 (0.0)
  SAMPLE_APP_LATENCY_MS    added to every request but /healthz and /stats (0)
  SAMPLE_APP_HEALTH_FAIL   "1": /healthz answers 503
  SAMPLE_APP_FAIL_FILE     while this file exists, /healthz answers 503
  SAMPLE_APP_SLOW_START_S  seconds to wait before listening (a slow boot)
  SAMPLE_APP_DATA_DIR      where orders.jsonl is written (/var/lib/sample-app)
  SAMPLE_APP_ACCESS_LOG    "1": one log line per request on stderr
  SAMPLE_APP_OFFER_RATE    share of users (by a hash of X-User-Id) whose GET / shows
                           the offer: X-Next: /checkout, which a simulated user follows (0.0)

SIGTERM stops accepting connections and lets requests in flight finish, as a
well-behaved service under a rolling update does.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
MAX_SLOW_S = 30.0
MAX_BODY = 1 << 20


def load_release(path: str | None = None) -> dict:
    path = path or os.path.join(HERE, "release.json")
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        return {"version": "0.0.0-dev", "defaults": {}}


def _knob(env: dict, name: str, defaults: dict, default, convert):
    key = "SAMPLE_APP_" + name.upper()
    raw = env.get(key)
    if raw is None or raw == "":
        raw = defaults.get(name, default)
    try:
        return convert(raw)
    except (TypeError, ValueError):
        raise SystemExit(f"sample_app: {key}={raw!r} is not a valid {convert.__name__}")


def load_settings(env: dict | None = None, release: dict | None = None) -> dict:
    """Merge the release's defaults with the environment into one settings dict."""
    env = os.environ if env is None else env
    release = load_release() if release is None else release
    defaults = release.get("defaults", {})
    settings = {
        "version": release["version"],
        "port": _knob(env, "port", defaults, 8080, int),
        "bind": _knob(env, "bind", defaults, "0.0.0.0", str),
        "error_rate": _knob(env, "error_rate", defaults, 0.0, float),
        "latency_ms": _knob(env, "latency_ms", defaults, 0.0, float),
        "health_fail": _knob(env, "health_fail", defaults, "0", str) in ("1", "true", "yes"),
        "fail_file": _knob(env, "fail_file", defaults, "", str),
        "slow_start_s": _knob(env, "slow_start_s", defaults, 0.0, float),
        "data_dir": _knob(env, "data_dir", defaults, "/var/lib/sample-app", str),
        "access_log": _knob(env, "access_log", defaults, "0", str) in ("1", "true", "yes"),
        "offer_rate": _knob(env, "offer_rate", defaults, 0.0, float),
        "host": socket.gethostname(),
    }
    for name in ("error_rate", "offer_rate"):
        if not 0.0 <= settings[name] <= 1.0:
            raise SystemExit("sample_app: SAMPLE_APP_%s must be between 0 and 1" % name.upper())
    return settings


def shows_offer(user: str | None, rate: float) -> bool:
    """Whether this user sees the offer: the same answer for a user every time and on every host (a hash
    of the id, not a draw), so a variant's conversion rate is its rate over the users it got."""
    if not user or rate <= 0:
        return False
    digest = hashlib.sha256(b"offer:" + user.encode("utf-8", "replace")).digest()
    return int.from_bytes(digest[:8], "big") / float(1 << 64) < rate


class Counters:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.values = {"requests": 0, "errors": 0, "orders": 0, "checkouts": 0, "shadow_requests": 0}

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self.values[name] += amount

    def snapshot(self) -> dict:
        with self._lock:
            return dict(self.values)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without TCP_NODELAY the body of an answer on a reused
    # keep-alive connection waits for the LB's delayed ACK (40 ms on Linux), which a canary analysis
    # rightly reads as a slower release.
    disable_nagle_algorithm = True
    server_version = "sample-app"
    # Set per server by make_server().
    settings: dict = {}
    counters: Counters = Counters()
    orders_lock = threading.Lock()

    # --- plumbing -------------------------------------------------------
    # A stopping server closes idle keep-alive connections (LBs keep some open
    # to reuse) and finishes the requests in flight, as production servers do;
    # otherwise a stop waits for every idle connection to time out.
    busy = False

    def setup(self):
        super().setup()
        self.server.track(self)

    def finish(self):
        try:
            super().finish()
        finally:
            self.server.untrack(self)

    def parse_request(self):
        self.busy = True
        return super().parse_request()

    def handle_one_request(self):
        try:
            super().handle_one_request()
        finally:
            self.busy = False
            if self.server.stopping:
                self.close_connection = True

    def log_message(self, format, *args):  # noqa: A002 - stdlib signature
        if self.settings.get("access_log"):
            sys.stderr.write("%s %s\n" % (self.address_string(), format % args))

    def _send(self, status: int, body: dict | str, extra: dict | None = None) -> None:
        if isinstance(body, dict):
            payload = (json.dumps(body, sort_keys=True) + "\n").encode()
            ctype = "application/json"
        else:
            payload = body.encode()
            ctype = "text/plain; charset=utf-8"
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("X-App-Version", self.settings["version"])
        self.send_header("X-App-Host", self.settings["host"])
        request_id = self.headers.get("X-Request-ID")
        if request_id:
            self.send_header("X-Request-ID", request_id)
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _healthy(self) -> bool:
        if self.settings["health_fail"]:
            return False
        fail_file = self.settings["fail_file"]
        return not (fail_file and os.path.exists(fail_file))

    def _delay(self) -> None:
        if self.settings["latency_ms"] > 0:
            time.sleep(self.settings["latency_ms"] / 1000.0)

    def _injected_error(self) -> bool:
        rate = self.settings["error_rate"]
        return rate > 0 and random.random() < rate

    def _base_body(self) -> dict:
        return {
            "version": self.settings["version"],
            "host": self.settings["host"],
            "request_id": self.headers.get("X-Request-ID", ""),
            "shadow": self.headers.get("X-Shadow-Request") == "1",
        }

    def _count_request(self) -> None:
        self.counters.add("requests")
        if self.headers.get("X-Shadow-Request") == "1":
            self.counters.add("shadow_requests")

    # --- routes ---------------------------------------------------------
    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/healthz":
            if self._healthy():
                self._send(200, "ok\n")
            else:
                self._send(503, "unhealthy\n")
            return
        if url.path == "/stats":
            self._send(200, dict(self.counters.snapshot(), version=self.settings["version"]))
            return
        self._count_request()
        self._delay()
        if url.path == "/slow":
            try:
                seconds = float(parse_qs(url.query).get("s", ["1"])[0])
            except ValueError:
                self._send(400, {"error": "s must be a number"})
                return
            time.sleep(min(max(seconds, 0.0), MAX_SLOW_S))
        elif url.path not in ("/", "/checkout"):
            self._send(404, {"error": "not found", "path": url.path})
            return
        if self._injected_error():
            self.counters.add("errors")
            self._send(500, dict(self._base_body(), error="injected failure"))
            return
        body = self._base_body()
        extra = {}
        if url.path == "/checkout":
            self.counters.add("checkouts")
            body["converted"] = True
        elif url.path == "/" and shows_offer(self.headers.get("X-User-Id"), self.settings["offer_rate"]):
            extra["X-Next"] = "/checkout"
        self._send(200, body, extra)

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        self._count_request()
        if url.path != "/orders":
            self._send(404, {"error": "not found", "path": url.path})
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._send(413, {"error": "body too large"})
            return
        raw = self.rfile.read(length) if length else b""
        self._delay()
        if self._injected_error():
            self.counters.add("errors")
            self._send(500, dict(self._base_body(), error="injected failure"))
            return
        try:
            order = json.loads(raw.decode() or "{}")
        except ValueError:
            self._send(400, {"error": "body must be JSON"})
            return
        record = {
            "order": order,
            "request_id": self.headers.get("X-Request-ID", ""),
            "version": self.settings["version"],
            "shadow": self.headers.get("X-Shadow-Request") == "1",
            "time": time.time(),
        }
        path = os.path.join(self.settings["data_dir"], "orders.jsonl")
        with self.orders_lock:
            os.makedirs(self.settings["data_dir"], exist_ok=True)
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(record, sort_keys=True) + "\n")
        self.counters.add("orders")
        self._send(201, dict(self._base_body(), stored=True))


class Server(ThreadingHTTPServer):
    # Join request threads on close, so SIGTERM lets in-flight requests finish.
    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True

    def __init__(self, *args, **kwargs):
        self.stopping = False
        self._connections: set = set()
        self._connections_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def track(self, handler) -> None:
        with self._connections_lock:
            self._connections.add(handler)

    def untrack(self, handler) -> None:
        with self._connections_lock:
            self._connections.discard(handler)

    def stop(self) -> None:
        """Stop accepting, end idle keep-alive connections, let requests in flight finish."""
        self.stopping = True
        with self._connections_lock:
            idle = [handler for handler in self._connections if not handler.busy]
        for handler in idle:
            try:
                handler.connection.shutdown(socket.SHUT_RD)
            except OSError:
                pass
        self.shutdown()

    def handle_error(self, request, client_address):
        # Health checkers and load balancers often connect and hang up
        # (TCP checks, aborted requests): that is normal, not worth a traceback.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


def make_server(settings: dict) -> Server:
    handler = type("BoundHandler", (Handler,), {"settings": settings, "counters": Counters()})
    return Server((settings["bind"], settings["port"]), handler)


def main() -> int:
    settings = load_settings()
    if settings["slow_start_s"] > 0:
        time.sleep(settings["slow_start_s"])
    server = make_server(settings)

    def stop(signum, frame):
        # shutdown() blocks until serve_forever returns: call it off the main thread.
        threading.Thread(target=server.stop, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    sys.stderr.write(
        "sample-app %s listening on %s:%d\n" % (settings["version"], settings["bind"], server.server_address[1])
    )
    sys.stderr.flush()
    server.serve_forever(poll_interval=0.2)
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
