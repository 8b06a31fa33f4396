"""Run a strategy playbook the way a user does, under live traffic, and keep what users and LBs saw.

The traffic probe (tools/probe/rollout_probe.py, installed on the client) sends requests through
both LBs for the whole run and records each one; a sampler on every LB host records which servers
of the service are in rotation, every 0.2 s. Tests assert on those records.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from labtest import LAB_INVENTORY, PROJECT, lab_hosts

# The probe's pure functions, from this checkout (the client runs its installed copy).
sys.path.insert(0, os.path.join(PROJECT, "tools", "probe"))
import rollout_probe  # noqa: E402  pylint: disable=wrong-import-position

PROBE = "/usr/local/lib/rollout_probe.py"

# Runs on an LB host (python3 -c, standard library only): one JSON line per sample with the state of
# every server of the service, {name: [status, weight]}; HAProxy from the runtime API, nginx from the
# routing file (nginx has no runtime state to read: "down" in the file is out of rotation).
SAMPLER = r"""
import json, os, socket, sys, time
kind, target, prefix, stop, interval = sys.argv[1:6]
interval = float(interval)
deadline = time.time() + 1800
def haproxy():
    s = socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(target)
    s.sendall(b"show stat\n"); out = b""
    while True:
        d = s.recv(65536)
        if not d: break
        out += d
    s.close()
    lines = out.decode().splitlines()
    head = lines[0].lstrip("# ").split(",")
    servers = {}
    for line in lines[1:]:
        row = dict(zip(head, line.split(",")))
        # A pool's canary backend (a sticky split) has the same servers: the pool's own backend counts.
        if row.get("pxname", "").startswith(prefix) and not row["pxname"].endswith("_canary") \
                and row.get("svname") not in ("FRONTEND", "BACKEND", None):
            servers[row["svname"]] = [row["status"], int(row["weight"] or 0)]
    return servers
def nginx():
    servers = {}
    upstream = None
    for line in open(target):
        words = line.split()
        if words[:1] == ["upstream"]:
            upstream = words[1]
        elif words[:1] == ["server"] and upstream and upstream.startswith(prefix) and not upstream.endswith("_canary"):
            name = words[1].split(":")[0]
            weight = [int(w.split("=")[1].rstrip(";")) for w in words if w.startswith("weight=")]
            servers[name] = ["DOWN" if any(w.rstrip(";") == "down" for w in words) else "UP", weight[0] if weight else 100]
    return servers
read = haproxy if kind == "haproxy" else nginx
while not os.path.exists(stop) and time.time() < deadline:
    try:
        print(json.dumps({"t": time.time(), "servers": read()}), flush=True)
    except Exception as exc:
        print(json.dumps({"t": time.time(), "error": str(exc)}), flush=True)
    time.sleep(interval)
"""


@dataclass
class Service:
    """A lab service behind one kind of LB, as the strategy scenarios set it up."""
    lb: str
    name: str
    port: int
    # The scenario's vars file (molecule/resources), which defines rollout_services from these variables.
    vars_file: str = "strategy.vars.yml"
    layout: str = "pools"

    @property
    def extra_vars(self) -> dict:
        return {"lab_service_name": self.name, "lab_service_port": self.port, "lab_lb": self.lb,
                "rollout_service": self.name}

    @property
    def id(self) -> str:
        return "%s-%s" % (self.lb, self.layout)

    def sampler_args(self) -> list[str]:
        if self.lb == "haproxy":
            return ["haproxy", "/run/haproxy/admin.sock", "be_%s_" % self.name]
        return ["nginx", "/etc/nginx/fleet/%s.routing.conf" % self.name, "fleet_%s_" % self.name]


LAB_SERVICES = {"haproxy": Service("haproxy", "web", 80), "nginx": Service("nginx", "store", 81)}

# The release role's health gate on the app's real page, not only /healthz: 30 good answers in a row
# catch a release that fails 30 % of its requests (0.7^30 < 1e-4).
STRICT_GATE = {
    "release_health_url": "http://127.0.0.1:{{ lab_app_port }}/",
    "release_health_successes": 30,
    "release_health_interval": 0.05,
    "release_health_timeout": 15,
}


@dataclass
class Run:
    """One playbook run and what the probe and the LB samplers recorded around it."""
    rc: int
    output: str
    seconds: float
    started: float
    ended: float
    records: list[dict] = field(default_factory=list)
    samples: dict[str, list[dict]] = field(default_factory=dict)
    during: object = None
    after: object = None

    @property
    def failed(self) -> list[dict]:
        """Requests users would count as failed: no answer, 4xx or 5xx (every probed path answers 2xx or a
        redirect when all is well)."""
        return [r for r in self.records if rollout_probe.is_failed(r, fail_on_4xx=True)]

    @property
    def said(self) -> str:
        """The run's output on one line (Ansible folds long messages over several)."""
        return " ".join(self.output.split())

    def out_of_rotation(self) -> dict[str, int]:
        """Per LB host, the most servers seen out of rotation at once."""
        return {lb: max((sum(1 for status, _w in s["servers"].values() if status != "UP") for s in samples
                         if "servers" in s), default=0)
                for lb, samples in self.samples.items()}

    def summary(self) -> str:
        versions: dict[str, int] = {}
        for r in self.records:
            versions[r["version"] or "-"] = versions.get(r["version"] or "-", 0) + 1
        text = "rc=%d in %.1f s, %d requests, %d failed, versions %s" % (
            self.rc, self.seconds, len(self.records), len(self.failed), versions)
        reported = re.search(r"downtime [0-9.]+ s as the LBs saw it", self.output)
        return text + ("; " + reported.group(0) if reported else "")


def env() -> dict:
    result = dict(os.environ)
    result.update({
        "ANSIBLE_CONFIG": os.path.join(PROJECT, "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": os.path.join(PROJECT, "build", "collections"),
        "FLEET_ARTIFACTS": result.get("FLEET_ARTIFACTS") or os.path.join(PROJECT, "build", "artifacts"),
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_NOCOLOR": "1",
        # The shell's directory, where a run writes its report (rollout-reports/): the project, where the
        # playbooks run, whichever directory pytest was started from.
        "PWD": PROJECT,
    })
    return result


def playbook(name: str, extra_vars: dict | None = None, *args: str) -> subprocess.CompletedProcess:
    """``ansible-playbook NAME -i <lab> -e <json>`` as a user types it; output kept for the asserts."""
    command = ["ansible-playbook", name, "-i", LAB_INVENTORY]
    if extra_vars:
        command += ["-e", json.dumps(extra_vars)]
    command += list(args)
    return subprocess.run(command, cwd=PROJECT, env=env(), capture_output=True, text=True, timeout=1200, check=False)


def refused_at_once(runs: dict[str, tuple]) -> dict[str, subprocess.CompletedProcess]:
    """``playbook(*args)`` for each ``id: args`` of ``runs``, several at a time, for input that is refused
    before any change: such runs stop before the lock, so they cannot disturb each other, and each one
    costs mostly ansible-playbook's start-up."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {key: pool.submit(playbook, *args) for key, args in runs.items()}
        return {key: future.result() for key, future in futures.items()}


@dataclass
class Status:
    """What ``fleet.rollout.status`` said about one service, and when it read the fleet."""
    started: float
    ended: float
    data: dict
    output: str


def rollout_status(service: Service) -> Status:
    """``ansible-playbook fleet.rollout.status`` for ``service``, its JSON (rollout_status_json) kept."""
    path = os.path.join("/tmp", "status-%s.json" % uuid.uuid4().hex[:8])
    started = time.time()
    result = playbook("fleet.rollout.status", service.extra_vars,
                      "-e", "@" + os.path.join(PROJECT, "molecule", "resources", service.vars_file),
                      "-e", "rollout_status_json=%s" % path)
    ended = time.time()
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    os.unlink(path)
    assert [entry["service"] for entry in data] == [service.name], data
    return Status(started, ended, data[0], result.stdout)


def reset_app(version: str = "1.0.0") -> None:
    """Every app host on ``version`` (no traffic is measured while this runs)."""
    result = playbook("tools/lab/app.yml", {"sample_app_version": version})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


def docker(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=False, **kwargs)


def run_under_traffic(service: Service, strategy: str, extra_vars: dict, rate: float = 60.0,
                      slow_share: int = 1, slow_s: float = 2.0, tail_s: float = 2.0, during=None,
                      during_after_s: float = 15.0, after=None,
                      probe_args: tuple = (), report: bool = False) -> Run:
    """Run ``fleet.rollout.<strategy>`` (or the playbook file ``strategy``) for ``service`` while the probe sends ``rate`` requests/s through
    both LBs (1 in 20 of them a ``slow_s`` request, when ``slow_share`` is 1) and the LBs are sampled; the probe
    keeps going ``tail_s`` seconds after the run, to see what is served afterwards. ``during`` (a
    callable) runs ``during_after_s`` seconds into the run; what it returns is ``Run.during``. ``after`` (a
    callable) runs once the playbook has ended, before the tail: to read what the run left before anything
    changes it, and to end a fault (an LB paused) before the probe and samplers are stopped; what it returns
    is ``Run.after``.
    ``probe_args`` go to the probe as they are (simulated users, for example). The run's own report
    (rollout_report_dir) is written only with ``report`` or a ``rollout_report_dir`` in ``extra_vars``: a
    report never changes how a rollout ends (one that cannot be made is said, not failed), and skipping it
    where no test reads it saves its ~5 s per run; the tests that read reports, and the fault tests (whose
    cleanup includes it), ask for it."""
    token = uuid.uuid4().hex[:8]
    client = lab_hosts("client")[0]
    lbs = lab_hosts("lb")
    out, stop = "/tmp/probe-%s.jsonl" % token, "/tmp/probe-%s.stop" % token
    requests = ["--request", "GET / %d" % (20 - slow_share)]
    if slow_share:
        requests += ["--request", "GET /slow?s=%g %d" % (slow_s, slow_share)]
    probe = subprocess.Popen(
        ["docker", "exec", client, "python3", PROBE, "run", "--rate", str(rate), "--duration", "1500",
         "--timeout", "15", "--out", out, "--stop-file", stop]
        + [arg for lb in lbs for arg in ("--url", "http://%s:%d" % (lb, service.port))] + requests + list(probe_args),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    samplers = {
        lb: subprocess.Popen(["docker", "exec", lb, "python3", "-c", SAMPLER, *service.sampler_args(), stop, "0.2"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for lb in lbs
    }
    probe_started = time.time()
    try:
        time.sleep(1.0)  # traffic flows before the rollout starts
        side: dict = {}
        side_thread = None
        if during is not None:
            def side_run():
                time.sleep(during_after_s)
                side["result"] = during()
            side_thread = threading.Thread(target=side_run, daemon=True)
            side_thread.start()
        started = time.time()
        # A playbook of the collection by its short name, or a playbook file of the project.
        name = strategy if strategy.endswith(".yml") else "fleet.rollout.%s" % strategy
        no_report = {} if report else {"rollout_report_dir": ""}
        result = playbook(name, {**no_report, **service.extra_vars, **extra_vars},
                          "-e", "@" + os.path.join(PROJECT, "molecule", "resources", service.vars_file))
        ended = time.time()
        if side_thread is not None:
            side_thread.join(600)
        side["after"] = after() if after is not None else None
        time.sleep(tail_s)
    finally:
        probe_stopped = time.time()
        docker("exec", client, "touch", stop)
        for lb in lbs:
            docker("exec", lb, "touch", stop)
        _probe_out, probe_err = probe.communicate(timeout=60)
        sampled = {lb: sampler.communicate(timeout=30)[0] for lb, sampler in samplers.items()}
    text = docker("exec", client, "cat", out).stdout
    docker("exec", client, "rm", "-f", out, stop)
    for lb in lbs:
        docker("exec", lb, "rm", "-f", stop)
    records = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    samples = {lb: [json.loads(line) for line in raw.splitlines() if line.startswith("{")] for lb, raw in sampled.items()}
    run = Run(rc=result.returncode, output=result.stdout + result.stderr, seconds=ended - started,
              started=started, ended=ended, records=records, samples=samples, during=side.get("result"),
              after=side.get("after"))
    print("%s %s %s: %s" % (strategy, service.lb, json.dumps(extra_vars, sort_keys=True), run.summary()))
    # The probe's own health, before any test reads its records. Its first request is due once docker
    # exec has started it: the first record's start, or (none at all) when it was launched.
    assert probe.returncode == 0, "the probe exited %s: %s" % (probe.returncode, probe_err[-2000:])
    first = min((r["t"] for r in records), default=probe_started)
    problems = rollout_probe.kept_up(records, rate, first, probe_stopped)
    assert not problems, "; ".join(problems) + (" (probe stderr: %s)" % probe_err[-1000:] if probe_err else "")
    return run
