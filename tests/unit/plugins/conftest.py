"""Fixtures for the plugin tests: real load balancer processes on loopback, no mocks.

Each load balancer has its own clearly delimited section below.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request

import pytest


# --- nginx ---------------------------------------------------------------------
# ``nginx_lab``: a real nginx (master + 1 worker, daemonised) with its prefix,
# config, pid file, logs and temp dirs under the test's tmp_path. Its http{}
# context includes conf.d/*.conf and proxies every request to the upstream
# named by $fleet_pool, which the file under test defines. ``start()`` it once
# that file exists; it is stopped at teardown.

NGINX_MAIN_CONFIG = """\
user root;
daemon on;
master_process on;
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log notice;
events {{
    worker_connections 256;
}}
http {{
    access_log off;
    client_body_temp_path {root}/tmp/client_body;
    proxy_temp_path {root}/tmp/proxy;
    fastcgi_temp_path {root}/tmp/fastcgi;
    uwsgi_temp_path {root}/tmp/uwsgi;
    scgi_temp_path {root}/tmp/scgi;
    include {root}/conf.d/*.conf;
    server {{
        listen 127.0.0.1:{port};
        location = /lab-alive {{
            return 200 "alive\\n";
        }}
        location / {{
            proxy_pass http://$fleet_pool;
            proxy_read_timeout 60s;
        }}
    }}
}}
"""


def _nginx_proc_stat(pid: int):
    try:
        with open("/proc/%d/stat" % pid, encoding="utf-8", errors="replace") as handle:
            data = handle.read()
    except OSError:
        return None
    fields = data[data.rfind(")") + 2:].split()
    return fields[0], int(fields[1])


def _nginx_alive(pid: int) -> bool:
    stat = _nginx_proc_stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


class NginxLab:
    """One real nginx under ``root``; see the section comment."""

    def __init__(self, root, port: int):
        self.binary = shutil.which("nginx", path=os.environ.get("PATH", "") + ":/usr/sbin:/usr/local/sbin:/sbin")
        self.root = str(root)
        self.port = port
        self.url = "http://127.0.0.1:%d" % self.port
        self.config = os.path.join(self.root, "nginx.conf")
        self.pid_file = os.path.join(self.root, "nginx.pid")
        self.error_log = os.path.join(self.root, "error.log")
        self.conf_d = os.path.join(self.root, "conf.d")
        self.routing_file = os.path.join(self.conf_d, "fleet.conf")
        os.makedirs(os.path.join(self.root, "tmp"), exist_ok=True)
        os.makedirs(self.conf_d, exist_ok=True)
        with open(self.config, "w", encoding="utf-8") as handle:
            handle.write(NGINX_MAIN_CONFIG.format(root=self.root, port=self.port))
        self._started = False

    def module_args(self, **kwargs) -> dict:
        """Arguments of fleet.rollout.nginx_upstream aimed at this nginx and its routing file."""
        args = {"path": self.routing_file, "nginx_binary": self.binary, "nginx_config": self.config,
                "nginx_prefix": self.root, "pid_file": self.pid_file}
        args.update(kwargs)
        return args

    def command(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([self.binary, "-p", self.root, "-c", self.config] + list(args), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=30, check=False)

    def start(self) -> None:
        done = self.command()
        if done.returncode != 0:
            raise AssertionError("nginx did not start: %s" % done.stdout)
        self._started = True
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.master() and self.workers():
                try:
                    if self.get("/lab-alive", timeout=2)[0] == 200:
                        return
                except OSError:
                    pass
            time.sleep(0.05)
        raise AssertionError("nginx did not come up on %s" % self.url)

    def master(self) -> int | None:
        try:
            with open(self.pid_file, encoding="utf-8") as handle:
                pid = int(handle.read().strip())
        except (OSError, ValueError):
            return None
        return pid if _nginx_alive(pid) else None

    def workers(self) -> set[int]:
        """Live worker processes of the master, old generations included."""
        master = self.master()
        found = set()
        if master is None:
            return found
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                stat = _nginx_proc_stat(int(entry))
                if stat and stat[1] == master and stat[0] not in ("Z", "X"):
                    try:
                        with open("/proc/%s/cmdline" % entry, "rb") as handle:
                            if handle.read().startswith(b"nginx: worker process"):
                                found.add(int(entry))
                    except OSError:
                        pass
        return found

    def get(self, path: str = "/", timeout: float = 10, headers: dict | None = None):
        """(status, headers, body) of a GET through nginx; HTTP errors are answers, not exceptions."""
        request = urllib.request.Request(self.url + path, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, dict(response.headers), response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read().decode()

    def version(self, path: str = "/", headers: dict | None = None) -> str | None:
        """The X-App-Version that answered, or None when nginx itself answered an error."""
        status, answer_headers, body = self.get(path, headers=headers)
        assert status in (200, 502, 503, 504), (status, body)
        return answer_headers.get("X-App-Version")

    def stop(self) -> None:
        master = self.master()
        if not self._started or master is None:
            return
        workers = self.workers()
        self.command("-s", "quit")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _nginx_alive(master):
            time.sleep(0.05)
        for pid in [master] + sorted(workers | self.workers()):
            if _nginx_alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


@pytest.fixture
def nginx_lab(tmp_path, free_port):
    """A real nginx lab (not started yet); stopped at teardown."""
    lab = NginxLab(tmp_path / "nginx", free_port())
    if lab.binary is None:
        # Not a skip: the tests of half the LB layer would pass by not running (make bootstrap installs nginx).
        pytest.fail("nginx is not installed (make bootstrap installs it)")
    yield lab
    lab.stop()

# --- end of nginx ----------------------------------------------------------------
