"""Fixtures shared by all unit tests: real processes, no mocks.

- ``run_app``: real sample-app HTTP servers on loopback (backends for LBs).
- ``run_module``: runs a module's ``main()`` in-process with the given args,
  against whatever real service the test started; returns its result dict.
"""

from __future__ import annotations

import http.client
import importlib.util
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

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def load_tool(name: str, relpath: str):
    """Import one of the repository's standalone scripts as a module."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, relpath))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def repo_root():
    return REPO


@pytest.fixture(scope="session")
def build_release():
    return load_tool("build_release", "tools/sample_app/build_release.py")


@pytest.fixture(scope="session")
def tarball_check():
    return load_tool("check_collection_tarball", "scripts/check_collection_tarball.py")


@pytest.fixture(scope="session")
def junit_summary():
    return load_tool("junit_summary", "scripts/junit_summary.py")


@pytest.fixture(scope="session")
def probe():
    return load_tool("rollout_probe", "tools/probe/rollout_probe.py")


@pytest.fixture(scope="session")
def bench_metrics():
    return load_tool("metrics", "bench/metrics.py")


@pytest.fixture(scope="session")
def bench_table():
    return load_tool("bench_table", "bench/bench_table.py")


@pytest.fixture(scope="session")
def shadow_relay():
    return load_tool("fleet_shadow_relay", "roles/shadow/files/fleet_shadow_relay.py")


@pytest.fixture(scope="session")
def sample_app():
    return load_tool("sample_app", "tools/sample_app/sample_app.py")


@pytest.fixture
def run_app(sample_app, tmp_path):
    """Start real sample-app servers on loopback; ``start(**knobs)`` returns (server, base_url)."""
    servers = []

    def start(version="1.0.0", defaults=None, **env):
        environ = {"SAMPLE_APP_PORT": "0", "SAMPLE_APP_BIND": "127.0.0.1", "SAMPLE_APP_DATA_DIR": str(tmp_path / "data")}
        environ.update({"SAMPLE_APP_" + k.upper(): str(v) for k, v in env.items()})
        settings = sample_app.load_settings(environ, {"version": version, "defaults": defaults or {}})
        server = sample_app.make_server(settings)
        # A load balancer in front may hold idle keep-alive connections:
        # do not wait for them at teardown.
        server.daemon_threads = True
        server.block_on_close = False
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        servers.append(server)
        return server, "http://127.0.0.1:%d" % server.server_address[1]

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


class ModuleExit(Exception):
    def __init__(self, result: dict):
        super().__init__(result.get("msg", ""))
        self.result = result


@pytest.fixture
def run_module(monkeypatch):
    """``run_module(main, args, check_mode=False, diff=False)`` → result dict (``failed`` set on fail_json)."""
    from ansible.module_utils import basic
    from ansible.module_utils.testing import patch_module_args

    def exit_json(self, **kwargs):
        kwargs.setdefault("changed", False)
        raise ModuleExit(kwargs)

    def fail_json(self, msg, **kwargs):
        kwargs.update(failed=True, msg=msg)
        raise ModuleExit(kwargs)

    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)
    # Collected here, not through ansible's global warnings: once controller code (a filter test) is
    # imported, those go to the display instead.
    warned: list[str] = []
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda self, warning: warned.append(warning))

    def run(main, args, check_mode=False, diff=False):
        full = dict(args, _ansible_check_mode=check_mode, _ansible_diff=diff)
        warned.clear()
        with patch_module_args(full):
            try:
                main()
            except ModuleExit as done:
                # Results must survive the JSON trip back to the controller.
                return json.loads(json.dumps(dict(done.result, warnings=list(warned)) if warned else done.result))
        raise AssertionError("module returned without exit_json or fail_json")

    return run


# --- haproxy ------------------------------------------------------------------


# Ports for servers the tests start. Picking one with bind(port 0) and closing it raced under pytest -n:
# another worker (or a server under test binding port 0) took it before the test's server bound it
# ("Address already in use"). Each pytest-xdist worker draws from its own block below the kernel's
# ephemeral range (32768 and up, where port-0 binds and outgoing connections land), so a port handed out
# here stays free for the test that asked for it.
_PORT_BLOCK = 400
_PORT_BASE = 20000
_ports_handed_out = [0]


def free_port() -> int:
    """A loopback port nothing listens on, for a server a test starts (or a URL nothing answers)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:]
    start = _PORT_BASE + (int(worker) % 30 if worker.isdigit() else 0) * _PORT_BLOCK
    for _attempt in range(_PORT_BLOCK):
        port = start + _ports_handed_out[0] % _PORT_BLOCK
        _ports_handed_out[0] += 1
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no free port in %d-%d" % (start, start + _PORT_BLOCK - 1))


@pytest.fixture(name="free_port")
def free_port_fixture():
    """``free_port()`` (see above) for tests and the fixtures of other conftest files."""
    return free_port


class HAProxyLab:
    """A real HAProxy (master-worker) with its admin socket in a temp dir."""

    def __init__(self, workdir, backends, maps=None, frontend_rules=None, tcp_socket=False, backend_options=None):
        self.dir = str(workdir)
        self.socket = os.path.join(self.dir, "admin.sock")
        self.state_file = os.path.join(self.dir, "server-state")
        self.cfg = os.path.join(self.dir, "haproxy.cfg")
        self.pidfile = os.path.join(self.dir, "haproxy.pid")
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.tcp_port = free_port() if tcp_socket else None
        self.maps = {}
        os.makedirs(os.path.join(self.dir, "maps"), exist_ok=True)
        for name, content in (maps or {}).items():
            path = os.path.join(self.dir, "maps", name)
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(content)
            self.maps[name] = path
        rules = [rule.format(maps=os.path.join(self.dir, "maps")) for rule in (frontend_rules or [])]
        lines = [
            "global",
            "    master-worker",
            "    stats socket %s mode 600 level admin" % self.socket,
        ]
        if tcp_socket:
            lines.append("    stats socket ipv4@127.0.0.1:%d level admin" % self.tcp_port)
        lines += [
            "    server-state-file %s" % self.state_file,
            "defaults",
            "    mode http",
            "    timeout connect 2s",
            "    timeout client 30s",
            "    timeout server 30s",
            "    load-server-state-from-file global",
            "frontend fe",
            "    bind 127.0.0.1:%d" % self.port,
        ]
        lines += ["    " + rule for rule in rules]
        lines.append("    default_backend %s" % next(iter(backends)))
        for backend, servers in backends.items():
            lines.append("backend %s" % backend)
            lines += ["    " + option for option in (backend_options or {}).get(backend, [])]
            for server in servers:
                lines.append("    server " + server)
        with open(self.cfg, "w", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
        subprocess.run(["haproxy", "-c", "-q", "-f", self.cfg], check=True)
        subprocess.run(["haproxy", "-W", "-D", "-f", self.cfg, "-p", self.pidfile], check=True)
        self._wait_for(lambda pid: pid is not None, "HAProxy did not start")

    def cli(self, command: str) -> str:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(5)
            sock.connect(self.socket)
            sock.sendall(command.encode() + b"\n")
            chunks = []
            while True:
                data = sock.recv(65536)
                if not data:
                    return b"".join(chunks).decode()
                chunks.append(data)

    def worker_pid(self):
        try:
            for line in self.cli("show info").splitlines():
                if line.startswith("Pid:"):
                    return int(line.split(":")[1])
        except OSError:
            return None
        return None

    def _wait_for(self, predicate, message, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid = self.worker_pid()
            if predicate(pid):
                return pid
            time.sleep(0.05)
        raise AssertionError(message)

    def master_pid(self) -> int:
        with open(self.pidfile, encoding="utf-8") as handle:
            return int(handle.read().split()[0])

    def reload(self) -> None:
        """A real graceful reload (SIGUSR2 to the master); returns when the new worker answers."""
        old = self.worker_pid()
        # A master that has just started can miss a SIGUSR2 that comes before
        # its worker reported ready: signal again until a new worker answers.
        for attempt in range(5):
            os.kill(self.master_pid(), signal.SIGUSR2)
            try:
                self._wait_for(lambda pid: pid is not None and pid != old, "no new worker", timeout=2.0)
                return
            except AssertionError:
                continue
        raise AssertionError("HAProxy reload did not produce a new worker")

    def servers(self) -> dict:
        """``backend/server`` → row of ``show servers state`` joined with ``show stat``."""
        state_lines = [line for line in self.cli("show servers state").splitlines()[1:] if line.strip()]
        header = state_lines[0][2:].split()
        rows = {}
        for line in state_lines[1:]:
            row = dict(zip(header, line.split()))
            rows["%s/%s" % (row["be_name"], row["srv_name"])] = row
        stat_lines = self.cli("show stat").splitlines()
        stat_header = stat_lines[0][2:].split(",")
        for line in stat_lines[1:]:
            if line.strip():
                values = dict(zip(stat_header, line.split(",")))
                key = "%s/%s" % (values["pxname"], values["svname"])
                if key in rows:
                    rows[key].update(status=values["status"], scur=int(values["scur"] or 0))
        return rows

    def wait_status(self, key: str, prefix: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.servers()[key]["status"].startswith(prefix):
                return
            time.sleep(0.05)
        raise AssertionError("%s never reached status %s: %s" % (key, prefix, self.servers()[key]))

    def stop(self) -> None:
        try:
            os.kill(self.master_pid(), signal.SIGTERM)
        except (OSError, ValueError):
            return
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _alive(self.master_pid()):
            time.sleep(0.05)


def _alive(pid: int) -> bool:
    """Running, not a zombie (nobody may reap a daemon's exit in a container)."""
    try:
        with open("/proc/%d/stat" % pid, encoding="utf-8") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture
def haproxy_lab(tmp_path):
    """``haproxy_lab(backends={"be": ["a 127.0.0.1:8080 check"]}, maps=..., frontend_rules=[...])``."""
    labs = []

    def start(backends, **kwargs):
        lab = HAProxyLab(tmp_path / ("haproxy%d" % len(labs)), backends, **kwargs)
        labs.append(lab)
        return lab

    yield start
    for lab in labs:
        lab.stop()


def http_get(url: str, timeout: float = 10.0):
    """(status, headers, body) of a GET; header names lower-cased (HAProxy sends them so).

    Status is None, and body the error, when no HTTP answer came.
    """
    request = urllib.request.Request(url)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, _lower(response.headers), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, _lower(exc.headers), exc.read().decode()
    except (OSError, http.client.HTTPException) as exc:
        return None, {}, repr(exc)


def _lower(headers) -> dict:
    return {name.lower(): value for name, value in headers.items()}


@pytest.fixture(scope="session")
def get_url():
    return http_get
