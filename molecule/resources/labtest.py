"""Testinfra helpers shared by the Molecule scenarios: the lab fleet, read from its inventory."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest
import testinfra
import testinfra.utils.ansible_runner

PROJECT = os.environ.get("MOLECULE_PROJECT_DIRECTORY", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
# FLEET_LAB_INVENTORY (relative to the project) picks the fleet: `make molecule` runs a second lane on
# molecule/resources/lab-b.
LAB_INVENTORY = os.path.join(PROJECT, os.environ.get("FLEET_LAB_INVENTORY") or os.path.join("inventories", "lab"))


def lab_hosts(group: str) -> list[str]:
    """Inventory hostnames of a lab group (read from the inventory, not hard-coded)."""
    return testinfra.utils.ansible_runner.AnsibleRunner(LAB_INVENTORY).get_hosts(group)


@pytest.fixture(scope="session")
def host_for():
    cache = {}

    def get(name: str):
        if name not in cache:
            cache[name] = testinfra.get_host("ansible://%s?ansible_inventory=%s" % (name, LAB_INVENTORY))
        return cache[name]

    return get


def http(host, url: str, headers: dict | None = None) -> tuple[int, dict, str]:
    """(status, lower-cased headers, body) of a GET made with curl on ``host``."""
    args = ["curl", "-sS", "-D", "-", "-o", "-", "--max-time", "10"]
    for name, value in (headers or {}).items():
        args += ["-H", "%s: %s" % (name, value)]
    result = host.run(" ".join(_quote(a) for a in args + [url]))
    assert result.rc == 0, result.stderr
    head, _sep, body = result.stdout.partition("\r\n\r\n")
    lines = head.split("\r\n")
    status = int(lines[0].split()[1])
    parsed = {}
    for line in lines[1:]:
        name, _colon, value = line.partition(":")
        parsed[name.strip().lower()] = value.strip()
    return status, parsed, body


def _quote(arg: str) -> str:
    return "'" + arg.replace("'", "'\"'\"'") + "'"


def load_json(host, path: str):
    return json.loads(host.file(path).content_string)


HAPROXY_CLI = (
    "import socket,sys\n"
    "s=socket.socket(socket.AF_UNIX);s.connect(sys.argv[1]);s.sendall(sys.argv[2].encode()+b'\\n')\n"
    "out=b''\n"
    "while True:\n"
    "    d=s.recv(65536)\n"
    "    if not d: break\n"
    "    out+=d\n"
    "sys.stdout.write(out.decode())\n"
)


def haproxy_cli(host, command: str, socket_path: str = "/run/haproxy/admin.sock") -> str:
    """Send one runtime API command on ``host`` (python3 is there; socat may not be)."""
    result = host.run(" ".join(_quote(a) for a in ["python3", "-c", HAPROXY_CLI, socket_path, command]))
    assert result.rc == 0, result.stderr
    return result.stdout


def haproxy_stat(lb: str, backend: str = "be_web_main") -> dict[str, dict]:
    """``show stat`` rows of ``backend``'s servers on the LB container ``lb``, by server name. Through
    ``docker exec``, so that it also serves a thread that watches a run."""
    done = subprocess.run(["docker", "exec", lb, "python3", "-c", HAPROXY_CLI, "/run/haproxy/admin.sock", "show stat"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    head = lines[0].lstrip("# ").split(",")
    rows = [dict(zip(head, line.split(","))) for line in lines[1:] if line]
    return {row["svname"]: row for row in rows if row["pxname"] == backend and row["svname"] != "BACKEND"}


def haproxy_servers(lb: str, backend: str = "be_web_main") -> dict[str, str]:
    """``STATUS/WEIGHT`` of ``backend``'s servers on ``lb``, by server name (UP/100 when in full rotation)."""
    return {name: "%s/%s" % (row["status"], row["weight"]) for name, row in haproxy_stat(lb, backend).items()}


def rollout_locks(service: str = "web") -> dict[str, bool]:
    """Per LB host of the lab, whether a rollout lock of ``service`` is there (``docker exec``)."""
    path = "/var/lib/fleet-rollout/%s/lock.json" % service
    return {lb: subprocess.run(["docker", "exec", lb, "test", "-e", path], check=False).returncode == 0
            for lb in lab_hosts("lb")}


def _cat(host: str, path: str) -> str:
    return subprocess.run(["docker", "exec", host, "cat", path], capture_output=True, text=True, check=True).stdout


def lb_views(service: str = "web", lb: str = "haproxy") -> dict[str, dict]:
    """Per LB host, what every LB must agree on once a run has ended, and whether it left a lock.

    The rollout state without its history, the last history event by run and outcome, and the routing
    users get: HAProxy's server states (status/weight) and its map; nginx's routing file.
    """
    locks = rollout_locks(service)
    views = {}
    for host in lab_hosts("lb"):
        state = json.loads(_cat(host, "/var/lib/fleet-rollout/%s/state.json" % service))
        last = (state.pop("history", None) or [{}])[-1]
        view = {"state": state, "last": {key: last.get(key) for key in ("run", "event", "outcome", "version")},
                "lock": locks[host]}
        if lb == "haproxy":
            view["servers"] = haproxy_servers(host, "be_%s_main" % service)
            view["routing"] = _cat(host, "/etc/haproxy/maps/%s.map" % service)
        else:
            view["routing"] = _cat(host, "/etc/nginx/fleet/%s.routing.conf" % service)
        views[host] = view
    return views


def assert_lbs_agree_unlocked(views: dict[str, dict]) -> None:
    """No LB holds a lock, and every LB has the same state, last event and routing (``lb_views``)."""
    assert not [host for host, view in views.items() if view["lock"]], "a lock is left: %s" % views
    first = next(iter(views.values()))
    differ = [host for host, view in views.items() if view != first]
    assert not differ, "the LBs disagree: %s" % views


def wait_for(predicate, timeout: float = 60.0, what: str = "") -> None:
    """Poll ``predicate`` every 0.3 s until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError("timed out waiting for %s" % what)


def live_version(app: str, root: str = "/opt/sample-app") -> str:
    """The release the app container's release state names live (main slot)."""
    done = subprocess.run(["docker", "exec", app, "cat", root + "/release-state.json"], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["slots"]["main"]["version"]


def json_lines(text: str) -> list[dict]:
    """The JSON objects among log lines (HAProxy's journal also holds its notices)."""
    records = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            records.append(json.loads(line))
    return records


def assert_active_and_hosts(client, base_url: str, active_hosts: list[str], active_version: str = "1.0.0") -> None:
    """Plain requests reach every host of the active pool and only them.

    Every answer carries an X-Request-ID (set by the LB, echoed by the app).
    """
    seen = set()
    for _attempt in range(4 * len(active_hosts)):
        status, headers, _body = http(client, base_url + "/")
        assert status == 200 and headers["x-app-version"] == active_version and headers["x-request-id"], headers
        seen.add(headers["x-app-host"])
    assert seen == set(active_hosts)


def rollout_snapshot(host_for, service: str = "web", apps: list[str] | None = None, lbs: list[str] | None = None) -> dict:
    """What a rollout of the HAProxy-fronted ``service`` would change: live releases, HAProxy server
    states, the LB state files and locks."""
    snap = {}
    for app in apps or lab_hosts("app"):
        snap[app] = host_for(app).file("/opt/sample-app/release-state.json").content_string
    for lb in lbs or lab_hosts("lb"):
        host = host_for(lb)
        snap[lb + ":servers"] = haproxy_cli(host, "show servers state be_%s_main" % service).splitlines()[2:]
        snap[lb + ":state"] = host.file("/var/lib/fleet-rollout/%s/state.json" % service).content_string
        snap[lb + ":lock"] = host.file("/var/lib/fleet-rollout/%s/lock.json" % service).exists
    return snap


def without_volatile(snap: dict) -> dict:
    """Keep what a rollout changes of a server (name, operational and admin state, weights); the check
    counters and the time since the last change move by themselves."""
    def server(line: str) -> str:
        cols = line.split()
        return " ".join(cols[i] for i in (3, 5, 6, 7, 8)) if len(cols) > 8 else line
    return {key: ([server(line) for line in value] if key.endswith(":servers") else value) for key, value in snap.items()}


class EventReceiver:
    """A webhook on the controller (loopback) that keeps every rollout event POSTed to it, as a chat or an
    incident tool would get them from ``rollout_notify_webhooks``."""

    def __init__(self):
        import http.server  # pylint: disable=import-outside-toplevel
        import threading  # pylint: disable=import-outside-toplevel

        self.events: list[dict] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                receiver.events.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/hook" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def of_run(self, run_id: str) -> list[dict]:
        return [event for event in self.events if event.get("run") == run_id]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
