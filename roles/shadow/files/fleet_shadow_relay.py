# Copyright: fleet.rollout contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The shadow relay of fleet.rollout.shadow: nginx mirrors live requests to it
on the LB host's loopback; it acknowledges each at once (204) and forwards it
to the shadow pool from a queue, recording every shadow answer by request id.

Why not let nginx mirror straight to the shadow pool: nginx holds the next
request on a keep-alive connection until the mirror subrequest ends, so a slow
shadow would slow real users down. Acknowledging at once keeps users unaffected
whatever the shadow does; a queue that is full drops the request (recorded as
dropped) rather than grow without bound.

    fleet_shadow_relay.py CONFIG.json

CONFIG: {"listen": "127.0.0.1:19081", "targets": ["10.0.0.3:8080", ...],
"timeout": 5.0, "workers": 64, "queue": 2000, "log": "/var/log/...jsonl",
"service": "shop", "forward_credentials": false}. One JSON line per mirrored
request goes to "log" (mode 0640):
{"ts", "id", "method", "uri", "target", "status", "rt", "version", "error"} -
"uri" is the path alone (a query string can carry tokens); status null and
error set when the shadow gave no answer, or "dropped" when the request never
reached it (the queue was full, or the relay stopped first).

Users' credentials (Cookie, Authorization) are not forwarded unless
"forward_credentials" is true: the shadow pool runs a release under test, and
a session cookie or a token it receives could be logged or used there.

Python standard library only (it runs on the LB host).
"""

from __future__ import annotations

import http.client
import itertools
import json
import os
import queue
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote

# Not forwarded: they describe the connection to the relay, not the request.
HOP_BY_HOP = frozenset(("connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
                        "trailer", "transfer-encoding", "upgrade", "content-length"))
# Not forwarded unless the config says so: they would let the shadow act as the user.
CREDENTIALS = frozenset(("cookie", "authorization"))
MAX_BODY = 8 * 1024 * 1024
DROPPED = "dropped"
# Everything printable but the space stays as it is in a forwarded URI; other bytes are percent-encoded.
URI_SAFE = "".join(chr(code) for code in range(0x21, 0x7F))


def load_config(path: str) -> dict:
    with open(path, encoding="utf-8") as handle:
        config = json.load(handle)
    host, _sep, port = str(config["listen"]).rpartition(":")
    targets = [str(target) for target in config.get("targets") or []]
    if not targets:
        raise SystemExit("fleet_shadow_relay: %s: no targets" % path)
    return {
        "listen": (host or "127.0.0.1", int(port)),
        "targets": targets,
        "timeout": float(config.get("timeout", 5.0)),
        "workers": max(1, int(config.get("workers", 64))),
        "queue": max(1, int(config.get("queue", 2000))),
        "log": config["log"],
        "service": str(config.get("service", "")),
        "forward_credentials": config.get("forward_credentials") is True,
    }


class RecordLog:
    """Appends one JSON line per record; line-buffered so a reader sees whole lines."""

    def __init__(self, path: str) -> None:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        # Not world-readable: the paths users requested are in it.
        descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        os.fchmod(descriptor, 0o640)
        self._handle = open(descriptor, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - lives as long as the relay
        self._lock = threading.Lock()

    def write(self, record: dict) -> None:
        line = json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n"
        with self._lock:
            self._handle.write(line)

    def close(self) -> None:
        with self._lock:
            self._handle.close()


class Forwarder:
    """Worker threads that send queued requests to the targets in turn, over kept-alive connections."""

    def __init__(self, config: dict, log: RecordLog) -> None:
        self.config = config
        self.log = log
        self.queue: queue.Queue = queue.Queue(maxsize=config["queue"])
        self._targets = itertools.cycle(config["targets"])
        self._targets_lock = threading.Lock()
        self._threads = [threading.Thread(target=self._work, name="forward-%d" % index, daemon=True)
                         for index in range(config["workers"])]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self, wait: float = 2.0) -> None:
        """Record the queued requests as dropped (they never reached the shadow), let the requests in flight end
        (at most ``wait`` seconds), then return: the log then holds every request the relay took."""
        while True:
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                self.log.write(dict(self._record(item), error=DROPPED))
        for _thread in self._threads:
            try:
                self.queue.put_nowait(None)
            except queue.Full:
                break
        deadline = time.monotonic() + wait
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def submit(self, item: dict) -> bool:
        try:
            self.queue.put_nowait(item)
            return True
        except queue.Full:
            self.log.write(dict(self._record(item), error=DROPPED))
            return False

    @staticmethod
    def _record(item: dict) -> dict:
        return {"ts": item["ts"], "id": item["id"], "method": item["method"], "uri": item["uri"].split("?", 1)[0],
                "target": None, "status": None, "rt": None, "version": None, "error": None}

    def _next_target(self) -> str:
        with self._targets_lock:
            return next(self._targets)

    def _work(self) -> None:
        connections: dict = {}
        while True:
            item = self.queue.get()
            if item is None:
                break
            target = self._next_target()
            record = dict(self._record(item), target=target)
            started = time.monotonic()
            try:
                status, version = self._send(connections, target, item)
                record.update(status=status, version=version)
            except Exception as exc:  # pylint: disable=broad-exception-caught
                # Whatever one request does, the worker lives on (a dead worker would stall the queue).
                connections.pop(target, None)
                record["error"] = "%s: %s" % (type(exc).__name__, exc) if str(exc) else type(exc).__name__
            record["rt"] = round(time.monotonic() - started, 6)
            self.log.write(record)
        for connection in connections.values():
            connection.close()

    def _send(self, connections: dict, target: str, item: dict) -> tuple[int, str | None]:
        # A kept-alive connection the shadow closed meanwhile fails at once: one retry on a new one.
        for attempt in (1, 2):
            connection = connections.get(target)
            fresh = connection is None
            if fresh:
                host, _sep, port = target.rpartition(":")
                connection = http.client.HTTPConnection(host, int(port), timeout=self.config["timeout"])
                connections[target] = connection
            try:
                connection.request(item["method"], item["uri"], body=item["body"], headers=item["headers"])
                response = connection.getresponse()
                response.read()
            except (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected,
                    http.client.CannotSendRequest):
                connection.close()
                connections.pop(target, None)
                if fresh or attempt == 2:
                    raise
                continue
            except Exception:
                connection.close()
                connections.pop(target, None)
                raise
            if response.will_close:
                connection.close()
                connections.pop(target, None)
            return response.status, response.getheader("X-App-Version")
        raise http.client.HTTPException("unreachable")  # pragma: no cover


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fleet-shadow-relay"
    disable_nagle_algorithm = True
    forwarder: Forwarder

    def log_message(self, format, *args):  # noqa: A002 - stdlib signature
        return

    def _body(self) -> bytes | None:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            size = 0
            while True:
                line = self.rfile.readline(1024)
                length = int(line.split(b";")[0].strip() or b"0", 16)
                if length == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                size += length
                if size > MAX_BODY:
                    return None
                chunks.append(self.rfile.read(length))
                self.rfile.readline(1024)
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            return None
        return self.rfile.read(length) if length else b""

    def _relay(self) -> None:
        received = time.time()
        body = self._body()
        # Answered before anything else: nginx's mirror subrequest (and so the user's next request) waits for it.
        if body is None:
            self.close_connection = True
            self.send_response(413)
        else:
            self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()
        self.wfile.flush()
        if body is None:
            return
        dropped = HOP_BY_HOP if self.forwarder.config.get("forward_credentials") is True else HOP_BY_HOP | CREDENTIALS
        headers = dict((key, value) for key, value in self.headers.items() if key.lower() not in dropped)
        headers["X-Shadow-Request"] = "1"
        if body or self.command not in ("GET", "HEAD", "DELETE", "OPTIONS"):
            headers["Content-Length"] = str(len(body))
        # The request line was read as latin-1: bytes beyond ASCII go on percent-encoded, as http.client needs.
        uri = quote(self.path.encode("latin-1", "replace"), safe=URI_SAFE)
        self.forwarder.submit({"ts": round(received, 6), "id": self.headers.get("X-Request-ID", ""),
                               "method": self.command, "uri": uri, "headers": headers, "body": body or None})

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _relay


class Relay(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def make_relay(config: dict) -> tuple[Relay, Forwarder, RecordLog]:
    log = RecordLog(config["log"])
    forwarder = Forwarder(config, log)
    handler = type("BoundHandler", (Handler,), {"forwarder": forwarder})
    relay = Relay(config["listen"], handler)
    relay.socket.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    forwarder.start()
    return relay, forwarder, log


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        sys.stderr.write("usage: fleet_shadow_relay.py CONFIG.json\n")
        return 2
    config = load_config(argv[0])
    relay, forwarder, log = make_relay(config)

    def stop(_signum, _frame):
        threading.Thread(target=relay.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    sys.stderr.write("fleet_shadow_relay: %s on %s:%d -> %s\n"
                     % (config["service"], config["listen"][0], config["listen"][1], ", ".join(config["targets"])))
    try:
        relay.serve_forever(poll_interval=0.2)
    finally:
        relay.server_close()
        # A request in flight may wait for its connection and then for its answer.
        forwarder.stop(wait=2 * config["timeout"] + 1)
        log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
