"""Strategy benchmark: every strategy's rollout and rollback on the lab fleet, under the same load.

    python bench/bench_strategies.py [--rate 100] [--matrix each|full] [--lbs haproxy,nginx]
                                     [--only ramped,canary] [--skip-peer] [--peer-runs 3] [--peer-preinstalled] [--skip-scaling]
                                     [--out bench/results.json]

On the lab fleet (`make lab-up`: two LB hosts running HAProxy and nginx, four
app hosts, a client), with the probe sending --rate requests/s through both
LB hosts (1 in 20 a 2 s request, 1,000 users told apart by X-User-Id) for the
whole of each run, it runs for each strategy - behind one LB kind each, both
kinds covered (--matrix each, the default, which keeps the strategy rows under
30 minutes on 2 cores), or behind every kind of --lbs (--matrix full, ~45 min):

  rollout   1.0.0 -> 2.0.0 with the strategy (playbook as a user runs it)
  rollback  back to 1.0.0: fleet.rollout.rollback for blue/green and shadow
            (a flip back to the pool still on 1.0.0), the same strategy for
            recreate and ramped, fleet.rollout.ramped for canary and A/B
            (1.0.0 is still installed; an A/B promotion puts the winner's
            release on every host); none of its own for the sticky canary,
            whose rollback is the canary's

and measures, from the probe's records and the LB hosts:

  requests sent and failed (no answer, 4xx or 5xx), downtime (the longest run
  of failed requests through one LB, first start to last end), wall times, the switch window
  (first 2.0.0 answer to last 1.0.0 answer: how long users saw both), the
  time until no user gets 2.0.0 any more after a rollback starts, the hosts
  that served users beyond those serving before, the share of users who got
  a 2.0.0 answer before the decision (canary: last verdict; blue/green and
  shadow: the flip; A/B: promotion), LB reloads (new worker generations of
  haproxy and nginx, sampled from /proc every 0.1 s).

Then a bad release, 2.0.1-bad (passes its health gate, fails 30 % of its
requests), once with the canary (its default, capacity-safe steps) and once
with blue/green (no smoke test, so the watch after the flip must catch it),
behind HAProxy: requests sent and failed, and from the first failed request
to the last answer of the bad release (how long users met it) and to the
run's end (the rollback done on every LB); whether users got 1.0.0 only
afterwards.

In the same run: the peer comparison at the same batch size, one host at a
time, under the same load on service web (HAProxy): bench/peer_plain.yml
(the plain drain-aware rolling playbook: serial 1, community.general.haproxy
drain / enable, copy + unarchive, switch `current`, restart, /healthz) and
fleet.rollout.ramped (ramped_batches 1, ramped_max_unavailable 1), taking
turns, --peer-runs times each, every run from 1.0.0 on every host and 2.0.0
on none, as in a real release: both sides upload and unpack it (with
--peer-preinstalled, 2.0.0 is installed by the release role first, so
neither side pays that):
per run the wall time, requests sent and failed; per side the median wall
time and its min-max; the ratio ours/peer of the medians. And the scaling
of a ramped rollout over 4, 8 and 16 app hosts (batches of 25 %, twelve more
containers from bench/scale.yml, no traffic), with the orchestration
overhead per host and per batch (wall time minus drain, restart and health
gate time, from the profile_tasks callback). Writes --out (JSON) and the
Markdown table next to it (.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "molecule", "resources"))

from labtest import LAB_INVENTORY, lab_hosts  # noqa: E402  pylint: disable=wrong-import-position
from rollout_run import Service, docker, env, reset_app, run_under_traffic  # noqa: E402  pylint: disable=wrong-import-position

from metrics import (  # noqa: E402  pylint: disable=wrong-import-position
    bad_release, batch_count, comparison, downtime, downtime_by_target, exposed_share, side_summary, switch_window, task_times,
)

# run_under_traffic reads vars files relative to molecule/resources.
VARS = "../../bench/lab.vars.yml"
SCALE_VARS = "../../bench/scale.vars.yml"
SCALE_INVENTORY = os.path.join(ROOT, "bench", "scale.yml")
# The app as the lab deploys it (inventories/lab/group_vars/app.yml: release_service sample-app).
APP_ROOT = "/opt/sample-app"
# The peer comparison: the plain rolling playbook and fleet.rollout.ramped, both one host at a time. Per side:
# its name, the playbook as run_under_traffic takes it (a project file, or a strategy's short name), its vars.
PEER_BATCH = 1
PEER_SIDES = (
    ("peer", "bench/peer_plain.yml", {"peer_version": "2.0.0", "peer_serial": PEER_BATCH}),
    ("ours", "ramped", {"rollout_version": "2.0.0", "ramped_batches": PEER_BATCH,
                        "ramped_max_unavailable": PEER_BATCH}),
)
SCALE_BATCH = "25%"
# Users keep their cookies, as browsers do (a sticky split keeps each user on a side with one).
USERS = ("--users", "1000", "--user-header", "X-User-Id", "--cookie-jar")
CANARY = {"canary_steps": [10, 50], "canary_interval": 10, "canary_min_samples": 20}
AB = {"ab_test_split": {"a": 50, "b": 50}, "ab_test_versions": {"b": "2.0.0"}, "ab_test_name": "bench",
      "ab_test_winner": "b", "bench_ab_window": 15}

# Runs on an LB host: the PIDs of every haproxy and nginx worker seen, every 0.1 s, until the stop file.
RELOADS = r"""
import json, os, sys, time
stop = sys.argv[1]
seen = {"haproxy": set(), "nginx": set()}
first = None
def procs():
    found = {}
    for e in os.listdir("/proc"):
        if not e.isdigit():
            continue
        try:
            stat = open("/proc/%s/stat" % e).read()
            cmd = open("/proc/%s/cmdline" % e, "rb").read().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        found[int(e)] = (int(stat[stat.rfind(")") + 2:].split()[1]), cmd)
    return found
while not os.path.exists(stop):
    now = {"haproxy": set(), "nginx": set()}
    table = procs()
    for pid, (ppid, cmd) in table.items():
        parent = table.get(ppid, (0, ""))[1]
        if cmd.startswith("nginx: worker process"):
            now["nginx"].add(pid)
        elif "haproxy" in cmd.split(" ")[0] and "haproxy" in parent.split(" ")[0]:
            now["haproxy"].add(pid)
    if first is None:
        first = {k: len(v) for k, v in now.items()}
    for k in seen:
        seen[k] |= now[k]
    time.sleep(0.1)
print(json.dumps({"first": first, "seen": {k: len(v) for k, v in seen.items()}}))
"""


# --matrix each: the LB kind each strategy runs behind. Ramped behind HAProxy, next to the peer comparison
# (community.general.haproxy); the steps that reload nginx (recreate's maintenance page, the canary's
# weights, the A/B split) behind nginx; shadow mirrors with nginx only.
EACH = {"recreate": "nginx", "ramped": "haproxy", "blue_green": "haproxy", "canary": "nginx",
        "canary_sticky": "haproxy", "ab_test": "nginx", "shadow": "nginx", "canary_bad": "haproxy",
        "blue_green_bad": "haproxy"}


@dataclass
class Case:
    strategy: str
    service: Service
    rollout: str
    rollout_vars: dict
    rollback: str | None  # None: no rollback of its own (the harness puts 1.0.0 back, unmeasured)
    rollback_vars: dict
    decision: str  # verdict, flip, marker or none
    group: str = "app"  # the inventory group of the pool users reach before the rollout
    bad: bool = False  # a bad release: the run must fail and roll back on its own


# The bad releases: the canary with its default steps, blue/green without the smoke test that would stop it first.
BAD = {"rollout_version": "2.0.1-bad", "canary_interval": 10, "canary_min_samples": 20}
BAD_CASES = (
    ("canary_bad", "inplace", "canary", BAD, "app"),
    ("blue_green_bad", "bg", "blue_green", {"rollout_version": "2.0.1-bad", "blue_green_smoke_requests": 0,
                                            "blue_green_verify_seconds": 10}, "blue"),
)


def cases(lbs: list[str], matrix: str = "full") -> list[Case]:
    """The runs, in order: with ``matrix`` "each", every strategy once, behind its LB kind in EACH
    (when that kind is in ``lbs``); with "full", every strategy behind every kind in ``lbs``."""
    found = matrix_cases(lbs)
    if matrix == "each":
        found = [case for case in found if EACH[case.strategy] == case.service.lb]
    return found


def matrix_cases(lbs: list[str]) -> list[Case]:
    svc = {
        ("haproxy", "inplace"): Service("haproxy", "web", 80, VARS), ("nginx", "inplace"): Service("nginx", "store", 81, VARS),
        ("haproxy", "bg"): Service("haproxy", "shop", 82, VARS), ("nginx", "bg"): Service("nginx", "cart", 83, VARS),
        ("haproxy", "ab"): Service("haproxy", "exp", 84, VARS), ("nginx", "ab"): Service("nginx", "expn", 85, VARS),
        ("nginx", "shadow"): Service("nginx", "orders", 86, VARS),
    }
    # Two hosts per batch wherever fleet.rollout.ramped runs (ramped, canary's promotion, the rollbacks).
    new, old = {"rollout_version": "2.0.0", "ramped_batches": 2}, {"rollout_version": "1.0.0", "ramped_batches": 2}
    found = []
    for lb in lbs:
        found += [
            Case("recreate", svc[lb, "inplace"], "recreate", new, "recreate", old, "none"),
            Case("ramped", svc[lb, "inplace"], "ramped", new, "ramped", old, "none"),
            Case("blue_green", svc[lb, "bg"], "blue_green", dict(new, blue_green_verify_seconds=5), "rollback", {},
                 "flip", "blue"),
            Case("canary", svc[lb, "inplace"], "canary", dict(new, **CANARY), "ramped", old, "verdict"),
            Case("canary_sticky", svc[lb, "inplace"], "canary", dict(new, canary_sticky=True, **CANARY), None, {},
                 "verdict"),
            # The promotion puts the winner's release on the other variant's hosts too: no pool is left on
            # 1.0.0 to flip back to.
            Case("ab_test", svc[lb, "ab"], "bench/ab_rollout.yml", dict(AB, ramped_batches=2), "ramped", old,
                 "marker", "blue"),
        ]
        if lb == "haproxy":
            found += [Case(name, svc[lb, kind], strategy, extra, None, {}, "none", group, bad=True)
                      for name, kind, strategy, extra, group in BAD_CASES]
        if lb == "nginx":
            found.append(Case("shadow", svc[lb, "shadow"], "shadow",
                              dict(new, shadow_duration=12, shadow_then="blue_green", blue_green_verify_seconds=5),
                              "rollback", {}, "flip", "blue"))
    return found


def reload_sampler():
    """Start the reload sampler on every LB host; the returned function stops it and gives the reloads."""
    token = "/tmp/bench-reloads-%d.stop" % os.getpid()
    procs = {lb: subprocess.Popen(["docker", "exec", lb, "python3", "-c", RELOADS, token],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for lb in lab_hosts("lb")}
    time.sleep(0.5)

    def stop() -> dict[str, int]:
        total = {"haproxy": 0, "nginx": 0}
        for lb, proc in procs.items():
            docker("exec", lb, "touch", token)
            out = proc.communicate(timeout=30)[0]
            docker("exec", lb, "rm", "-f", token)
            data = json.loads(out.strip().splitlines()[-1])
            for kind in total:
                per_generation = max(data["first"][kind], 1)
                total[kind] += round((data["seen"][kind] - data["first"][kind]) / per_generation)
        return total
    return stop


def state_event(service: Service) -> dict:
    text = docker("exec", lab_hosts("lb")[0], "cat", "/var/lib/fleet-rollout/%s/state.json" % service.name).stdout
    history = json.loads(text).get("history") or [{}]
    return history[-1]


def decision_time(case: Case, run, event: dict) -> float | None:
    if case.decision == "verdict":
        judged = [step.get("judged") for step in event.get("steps") or [] if isinstance(step, dict)]
        judged = [float(t) for t in judged if isinstance(t, (int, float))]
        return max(judged) if judged else None
    if case.decision == "flip":
        flipped = event.get("flipped_at")
        times = list(flipped.values()) if isinstance(flipped, dict) else [flipped]
        times = [float(t) for t in times if isinstance(t, (int, float))]
        return min(times) if times else None
    if case.decision == "marker":
        found = re.search(r"bench decision at ([0-9.]+)", run.output)
        return float(found.group(1)) if found else None
    return None


def measure(run, reloads: dict, lb: str) -> dict:
    return {
        "rc": run.rc,
        "sent": len(run.records),
        "failed": len(run.failed),
        "downtime_s": downtime(run.records),
        "downtime_by_lb_s": downtime_by_target(run.records),
        "wall_s": round(run.seconds, 1),
        "reloads": reloads[lb],
        "versions": {v: sum(1 for r in run.records if (r["version"] or "-") == v)
                     for v in sorted({r["version"] or "-" for r in run.records})},
    }


def live_versions() -> set[str]:
    """The version each app host runs (main slot), read from the hosts: where its `current` link points, not
    release-state.json, which the peer playbook (bench/peer_plain.yml) does not update."""
    found = set()
    for app in lab_hosts("app"):
        target = docker("exec", app, "readlink", APP_ROOT + "/current").stdout.strip()
        found.add(os.path.basename(target.rstrip("/")) if target else None)
    return found


def installed_everywhere(version: str) -> bool:
    """Whether every app host has ``version`` installed by fleet.rollout.release (its sha256 marker)."""
    return all(docker("exec", app, "test", "-f", "%s/releases/%s/.release-sha256" % (APP_ROOT, version)).returncode == 0
               for app in lab_hosts("app"))


def run_case(case: Case, rate: float) -> dict:
    if live_versions() != {"1.0.0"}:
        reset_app("1.0.0")
    lb = case.service.lb
    stop = reload_sampler()
    rollout = run_under_traffic(case.service, case.rollout, case.rollout_vars, rate=rate, probe_args=USERS,
                                tail_s=3.0 if case.bad else 2.0)
    if case.bad:
        outcome = state_event(case.service).get("outcome", "")
        return {"strategy": case.strategy, "lb": lb, "service": case.service.name, "bad": True,
                "rollout": measure(rollout, stop(), lb),
                "bad_release": bad_release(rollout.records, rollout.ended, rollout.rc, outcome)}
    out = {"strategy": case.strategy, "lb": lb, "service": case.service.name,
           "rollout": measure(rollout, stop(), lb)}
    event = state_event(case.service)
    # Hosts that answered users during the run beyond the pool that served them before it.
    out["extra_hosts"] = len({r["host"] for r in rollout.records if r["host"]} - set(lab_hosts(case.group)))
    out["switch_window_s"] = switch_window(rollout.records, "1.0.0", "2.0.0")
    decided = decision_time(case, rollout, event)
    out["decision"] = case.decision
    out["exposed_before_decision_pct"] = exposed_share(rollout.records, decided, "2.0.0") if decided else None
    if rollout.rc != 0:
        out["error"] = rollout.output[-2000:]
        return out
    if case.rollback is None:
        return out
    stop = reload_sampler()
    back = run_under_traffic(case.service, case.rollback, case.rollback_vars, rate=rate, probe_args=USERS)
    out["rollback"] = measure(back, stop(), lb)
    out["rollback"]["playbook"] = case.rollback
    last_new = max((r["t"] for r in back.records if r["version"] == "2.0.0"), default=None)
    out["rollback"]["users_on_new_until_s"] = round(max(0.0, last_new - back.started), 1) if last_new else 0.0
    # The probe's tail, after the playbook ended: a rollback is one when users get 1.0.0 only (failed
    # requests are counted apart; no answer in the tail says nothing).
    tail = {r["version"] for r in back.records if r["t"] > back.ended} - {None}
    out["rollback"]["back_on_old"] = tail == {"1.0.0"} if tail else None
    if back.rc != 0:
        out["rollback"]["error"] = back.output[-2000:]
    return out


def playbook_timed(name: str, inventories: list[str], extra: dict, profile: bool = False, vars_file: str = ""):
    command = ["ansible-playbook", name]
    for inventory in inventories:
        command += ["-i", inventory]
    command += ["-e", json.dumps(extra)] + (["-e", "@" + vars_file] if vars_file else [])
    environ = env()
    environ["ANSIBLE_FORKS"] = "16"
    if profile:
        environ.update({"ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.profile_tasks",
                        "PROFILE_TASKS_TASK_OUTPUT_LIMIT": "all", "PROFILE_TASKS_SORT_ORDER": "none"})
    started = time.time()
    done = subprocess.run(command, cwd=ROOT, env=environ, capture_output=True, text=True, timeout=1800, check=False)
    return done, time.time() - started


def remove_release(version: str) -> None:
    """No app host has ``version`` installed or uploaded (it is not live on any)."""
    for app in lab_hosts("app"):
        for path in ("%s/releases/%s" % (APP_ROOT, version), "%s/releases/.incoming-%s" % (APP_ROOT, version)):
            assert docker("exec", app, "rm", "-rf", path).returncode == 0, (app, path)
        found = docker("exec", app, "find", APP_ROOT + "/artifacts", "-name", "*%s*" % version, "-delete")
        assert found.returncode == 0, (app, found.stderr)


def peer_compare(rate: float, runs: int = 3, preinstalled: bool = False) -> dict:
    """The plain rolling playbook (bench/peer_plain.yml, serial 1) and fleet.rollout.ramped (one host per
    batch) on service web, same load, taking turns, ``runs`` times each; every run from 1.0.0 on every host
    and, as in a real release, 2.0.0 on none: both sides upload and unpack it. With ``preinstalled``, 2.0.0
    is installed by the release role first (unmeasured): neither side pays the upload, and the role finds
    its marker in releases/2.0.0 (it refuses a release directory it did not install)."""
    if preinstalled and not installed_everywhere("2.0.0"):
        reset_app("2.0.0")
    web = Service("haproxy", "web", 80, VARS)
    measured: dict[str, list[dict]] = {side: [] for side, _playbook, _extra in PEER_SIDES}
    for _round in range(runs):
        for side, playbook, extra in PEER_SIDES:
            if live_versions() != {"1.0.0"}:
                reset_app("1.0.0")
            if not preinstalled:
                remove_release("2.0.0")
            stop = reload_sampler()
            run = run_under_traffic(web, playbook, extra, rate=rate, probe_args=USERS)
            row = measure(run, stop(), "haproxy")
            print(json.dumps(dict(row, side=side), sort_keys=True), flush=True)
            if run.rc != 0:
                row["error"] = run.output[-2000:]
            measured[side].append(row)
    summaries = {side: side_summary(side, playbook if playbook.endswith(".yml") else "fleet.rollout." + playbook,
                                    PEER_BATCH, measured[side])
                 for side, playbook, _extra in PEER_SIDES}
    return dict(comparison(summaries["peer"], summaries["ours"]), batch_size=PEER_BATCH, runs_each=runs,
                service="web", lb="haproxy", release_preinstalled=preinstalled)


def scaling(sizes=(4, 8, 16)) -> list[dict]:
    """Ramped wall time (batches of 25 %) over 4, 8 and 16 app hosts, and the overhead per host and per batch; without
    traffic, so drains are short and the overhead is the orchestration's own."""
    inventories = [LAB_INVENTORY, SCALE_INVENTORY]
    for name in ("playbooks/lab_up.yml", "bench/scale_stack.yml"):
        done = playbook_timed(name, inventories, {})[0]
        if done.returncode != 0:
            raise SystemExit("%s with the scale hosts failed:\n%s" % (name, done.stdout[-3000:]))
    rows = []
    try:
        for size in sizes:
            extra = {"lab_lb": "haproxy", "rollout_service": "s%d" % size, "rollout_app_group": "scale%d" % size,
                     "rollout_version": "2.0.0", "ramped_batches": SCALE_BATCH, "ramped_max_unavailable": SCALE_BATCH}
            run, wall = playbook_timed("fleet.rollout.ramped", inventories, extra, profile=True,
                                       vars_file="bench/scale.vars.yml")
            times = task_times(run.stdout)
            overhead = wall - sum(times.values())
            batches = batch_count(size, SCALE_BATCH)
            rows.append({"hosts": size, "rc": run.returncode, "wall_s": round(wall, 1), **{k + "_s": v for k, v in times.items()},
                         "overhead_s": round(overhead, 1), "overhead_per_host_s": round(overhead / size, 2),
                         "batches": batches, "overhead_per_batch_s": round(overhead / batches, 2)})
            if run.returncode != 0:
                rows[-1]["error"] = run.stdout[-2000:]
    finally:
        docker("rm", "-f", *[h for h in group_hosts(inventories, "scale16") if h not in lab_hosts("app")])
    return rows


def group_hosts(inventories: list[str], group: str) -> list[str]:
    command = ["ansible-inventory", "--list"]
    for inventory in inventories:
        command += ["-i", inventory]
    data = json.loads(subprocess.run(command, capture_output=True, text=True, env=env(), check=True).stdout)
    return list(data.get(group, {}).get("hosts", []))


def machine() -> str:
    cores = os.cpu_count()
    return "%s, %d cores, Python %s" % (platform.platform(), cores, platform.python_version())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--matrix", choices=("each", "full"), default="each",
                        help="each: every strategy behind one LB kind (both kinds covered); full: behind every kind")
    parser.add_argument("--lbs", default="haproxy,nginx")
    parser.add_argument("--only", default="", help="comma-separated strategies (default: all)")
    parser.add_argument("--skip-peer", action="store_true", help="no peer comparison")
    parser.add_argument("--peer-runs", type=int, default=3, metavar="N",
                        help="runs of each side of the peer comparison (default 3)")
    parser.add_argument("--peer-preinstalled", action="store_true",
                        help="the peer comparison with 2.0.0 installed on every host before each run")
    parser.add_argument("--skip-scaling", action="store_true")
    parser.add_argument("--lb-results", default=os.path.join(ROOT, "build", "bench-lb.json"))
    parser.add_argument("--out", default=os.path.join(ROOT, "bench", "results.json"))
    args = parser.parse_args()
    if args.peer_runs < 1:
        parser.error("--peer-runs must be at least 1")
    started = time.time()
    # Each run starts from the first pool of every service: an earlier run's A/B promotion left pool b active,
    # which a new A/B test of b refuses. Without a state file and a routing file (HAProxy's maps, nginx's
    # routing) the LB roles start a service on its first pool; with the routing alone, where it routes.
    services = sorted({case.service.name for case in matrix_cases(["haproxy", "nginx"])})
    for lb in lab_hosts("lb"):
        docker("exec", lb, "rm", "-f", *["/var/lib/fleet-rollout/%s/state.json" % name for name in services],
               *["/etc/haproxy/maps/%s%s" % (name, suffix) for name in services for suffix in (".map", ".ab.map")],
               *["/etc/nginx/fleet/%s.routing.conf" % name for name in services],
               # Its server blocks include every routing file by name: nginx -t would refuse the first
               # routing file written back while the others are missing. The role writes it again.
               "/etc/nginx/conf.d/fleet-rollout.conf")
    done = subprocess.run(["ansible-playbook", "-i", LAB_INVENTORY, "bench/stack.yml"], cwd=ROOT, env=env(),
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit("bench/stack.yml failed:\n" + done.stdout[-3000:])
    only = {s for s in args.only.split(",") if s}
    results = {"machine": machine(), "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
               "rate": args.rate, "matrix": args.matrix, "strategies": [], "bad_releases": []}
    for case in cases(args.lbs.split(","), args.matrix):
        if only and case.strategy not in only:
            continue
        row = run_case(case, args.rate)
        results["bad_releases" if case.bad else "strategies"].append(row)
        print(json.dumps(row, sort_keys=True), flush=True)
    if not args.skip_peer:
        results["peer"] = peer_compare(args.rate, args.peer_runs, args.peer_preinstalled)
        print(json.dumps(results["peer"], sort_keys=True), flush=True)
    if not args.skip_scaling:
        results["scaling"] = scaling()
        print(json.dumps(results["scaling"], sort_keys=True), flush=True)
    if os.path.exists(args.lb_results):
        with open(args.lb_results, encoding="utf-8") as handle:
            results["lb_operations"] = json.load(handle)
    results["bench_seconds"] = round(time.time() - started)
    with open(args.out, "w", encoding="utf-8") as handle:
        json.dump(results, handle, indent=2, sort_keys=True)
        handle.write("\n")
    subprocess.run([sys.executable, os.path.join(ROOT, "bench", "bench_table.py"), args.out], check=True)
    good = all(row["rollout"]["rc"] == 0 and row.get("rollback", {}).get("rc", 0) == 0
               and row.get("rollback", {}).get("back_on_old") is not False for row in results["strategies"])
    caught = all(row["bad_release"]["rolled_back"] and row["bad_release"]["back_on_old"] is True
                 for row in results["bad_releases"])
    return 0 if good and caught else 1


if __name__ == "__main__":
    sys.exit(main())
