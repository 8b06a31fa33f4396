"""LB operations benchmark: one haproxy_server task vs. the per-server peer module.

    python bench/bench_lb.py [--servers 50] [--out bench/lb-results.json]

Starts a real HAProxy (master-worker, admin socket in a temp dir) whose
backend has N servers in front of one sample-app process, then times two
playbooks against it, in the same run:

  ours:  fleet.rollout.haproxy_server, servers be_bench/*, state drain (wait
         until drained), then state ready: two tasks
  peer:  community.general.haproxy, state drain (wait) then state enabled
         (wait), once per server: two tasks looping over N servers

Both playbooks run through ansible-playbook with a local connection, so the
times include what a user pays: process start, module transfer, the LB work.
It checks the LB ends with every server ready after each playbook, prints
both wall times and the ratio, and writes them as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "build", "collections"))

from ansible_collections.fleet.rollout.plugins.module_utils._haproxy_runtime import RuntimeClient  # noqa: E402  pylint: disable=wrong-import-position


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("port %d never opened" % port)


def admin_states(sock_path: str) -> set[str]:
    return {row["srv_admin_state"] for row in RuntimeClient(sock_path).show_servers_state("be_bench")}


def run_playbook(workdir: str, name: str, body: str) -> float:
    path = os.path.join(workdir, name + ".yml")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(body)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, "build", "collections"),
               ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK="ansible.builtin.null")
    started = time.monotonic()
    done = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,",
                           "-c", "local", "-e", "ansible_python_interpreter=" + sys.executable, path],
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit("%s playbook failed:\n%s" % (name, done.stdout[-3000:]))
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=50)
    parser.add_argument("--out", default=os.path.join(ROOT, "bench", "lb-results.json"))
    args = parser.parse_args()
    count = args.servers

    with tempfile.TemporaryDirectory(prefix="bench-lb-") as workdir:
        app_port, fe_port = free_port(), free_port()
        app = subprocess.Popen([sys.executable, os.path.join(ROOT, "tools", "sample_app", "sample_app.py")],
                               env=dict(os.environ, SAMPLE_APP_PORT=str(app_port), SAMPLE_APP_BIND="127.0.0.1",
                                        SAMPLE_APP_DATA_DIR=workdir),
                               stderr=subprocess.DEVNULL)
        sock = os.path.join(workdir, "admin.sock")
        cfg = os.path.join(workdir, "haproxy.cfg")
        pidfile = os.path.join(workdir, "haproxy.pid")
        servers = "\n".join("    server s%03d 127.0.0.1:%d check inter 2s" % (n, app_port) for n in range(count))
        with open(cfg, "w", encoding="utf-8") as handle:
            handle.write(textwrap.dedent("""\
                global
                    master-worker
                    stats socket {sock} mode 600 level admin
                    server-state-file {workdir}/server-state
                defaults
                    mode http
                    timeout connect 2s
                    timeout client 10s
                    timeout server 10s
                    load-server-state-from-file global
                frontend fe
                    bind 127.0.0.1:{fe_port}
                    default_backend be_bench
                backend be_bench
                """).format(sock=sock, workdir=workdir, fe_port=fe_port) + servers + "\n")
        try:
            wait_port(app_port)
            subprocess.run(["haproxy", "-W", "-D", "-f", cfg, "-p", pidfile], check=True)
            wait_port(fe_port)
            time.sleep(2.5)  # first health checks: every server UP, as the peer's wait expects

            ours = run_playbook(workdir, "ours", textwrap.dedent("""\
                - hosts: localhost
                  gather_facts: false
                  tasks:
                    - fleet.rollout.haproxy_server:
                        socket: {sock}
                        state_file: {workdir}/server-state
                        servers: ["be_bench/*"]
                        state: drain
                        poll_interval: 0.2
                    - fleet.rollout.haproxy_server:
                        socket: {sock}
                        state_file: {workdir}/server-state
                        servers: ["be_bench/*"]
                        state: ready
                """).format(sock=sock, workdir=workdir))
            assert admin_states(sock) == {"0"}, "ours left servers not ready"

            peer = run_playbook(workdir, "peer", textwrap.dedent("""\
                - hosts: localhost
                  gather_facts: false
                  vars:
                    names: "{{{{ query('ansible.builtin.sequence', 'start=0 count={count} format=s%03d') }}}}"
                  tasks:
                    - community.general.haproxy:
                        socket: {sock}
                        backend: be_bench
                        host: "{{{{ item }}}}"
                        state: drain
                        wait: true
                        wait_interval: 1
                      loop: "{{{{ names }}}}"
                    - community.general.haproxy:
                        socket: {sock}
                        backend: be_bench
                        host: "{{{{ item }}}}"
                        state: enabled
                        wait: true
                        wait_interval: 1
                      loop: "{{{{ names }}}}"
                """).format(sock=sock, count=count))
            assert admin_states(sock) == {"0"}, "peer left servers not ready"
        finally:
            try:
                with open(pidfile, encoding="utf-8") as handle:
                    os.kill(int(handle.read().split()[0]), signal.SIGTERM)
            except (OSError, ValueError):
                pass
            app.terminate()
            app.wait(10)

    result = {
        "servers": count,
        "ours_seconds": round(ours, 2),
        "peer_seconds": round(peer, 2),
        "ratio": round(peer / ours, 1),
        "machine": "%s, %d cores, Python %s" % (platform.platform(), os.cpu_count() or 0, platform.python_version()),
        "when": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    with open(args.out, "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=2)
        handle.write("\n")
    print("drain + ready of %d servers" % count)
    print("  fleet.rollout.haproxy_server (1 task each):        %6.2f s" % ours)
    print("  community.general.haproxy (1 task per server each): %6.2f s" % peer)
    print("  ratio: %.1fx faster" % (peer / ours))
    return 0


if __name__ == "__main__":
    sys.exit(main())
