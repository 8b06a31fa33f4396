"""fleet.rollout.shadow under live traffic behind nginx (service orders, primary pool blue, shadow pool green).

Each run is ``ansible-playbook fleet.rollout.shadow`` as a user types it, while the probe sends 100
requests/s through both LBs (1 in 10 a ``POST /orders``). The asserts read the probe's records, the
report the run writes, the LBs' access logs and relay logs, and the app hosts' data files.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid

import pytest

from labtest import lab_hosts
from rollout_run import PROBE, Run, Service, docker, playbook, refused_at_once, run_under_traffic

LBS = lab_hosts("lb")
PRIMARY = lab_hosts("blue")
SHADOW = lab_hosts("green")
ORDERS = Service("nginx", "orders", 81, "shadow.vars.yml")
MIRRORH = Service("haproxy", "mirrorh", 80, "shadow.vars.yml")
RATE = 100.0
REQUESTS = ("--request", "GET / 9", "--request", 'POST /orders 1 {"item":"book"}')
MIRROR_FILES = ["/etc/nginx/fleet/orders.shadow.%s.conf" % part for part in ("http", "server", "location")]
RELAY_LOG = "/var/log/fleet-rollout-shadow/orders.jsonl"
DATA = "/opt/sample-app/shared/%s/orders.jsonl"
# The scratch store the shadow hosts write mirrored orders to (a shared dir of the release, so it is writable).
WRITES = {"shadow_methods": ["GET", "HEAD", "POST"], "shadow_release_environment": {"SAMPLE_APP_DATA_DIR": "scratch"},
          "release_shared_dirs": ["data", "scratch"]}
SHORT = {"rollout_version": "2.0.0", "shadow_duration": 12}


def lines(host: str, path: str) -> list[dict]:
    text = docker("exec", host, "sh", "-c", "cat %s 2>/dev/null || true" % path).stdout
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def shadow(extra: dict, during=None) -> tuple[Run, dict]:
    """One shadow run under traffic and the report it wrote on the controller."""
    report_dir = "/tmp/shadow-report-%s" % uuid.uuid4().hex[:8]
    run = run_under_traffic(ORDERS, "shadow", dict(SHORT, shadow_report_dir=report_dir, **extra), rate=RATE,
                            slow_share=0, probe_args=REQUESTS, during=during, during_after_s=0.0)
    try:
        with open("%s/orders-shadow-report.json" % report_dir, encoding="utf-8") as handle:
            report = json.load(handle)
    except OSError:
        report = {}
    subprocess.run(["rm", "-rf", report_dir], check=False)
    print("report: %s" % report.get("summary"))
    return run, report


def in_window(run: Run, report: dict) -> list[dict]:
    return [r for r in run.records if report["since"] <= r["t"] <= report["until"]]


def p99(records: list[dict]) -> float:
    durations = sorted(r["dur"] for r in records)
    return durations[min(len(durations) - 1, int(round(0.99 * (len(durations) - 1))))]


def assert_users_unaffected(run: Run) -> None:
    """Every answer came from the primary (1.0.0), none failed; the mirror and the relay are gone."""
    assert run.records and not run.failed, run.failed[:5]
    assert {r["version"] for r in run.records} == {"1.0.0"}
    for lb in LBS:
        for path in MIRROR_FILES:
            assert docker("exec", lb, "test", "-e", path).returncode != 0, "%s left on %s" % (path, lb)
        assert docker("exec", lb, "systemctl", "is-active", "fleet-shadow-relay@orders").stdout.strip() != "active"


@pytest.fixture(scope="module")
def baseline() -> list[dict]:
    """What users see without mirroring: the same probe, rate and requests, 12 s."""
    client = lab_hosts("client")[0]
    out = "/tmp/probe-baseline-%s.jsonl" % uuid.uuid4().hex[:8]
    docker("exec", client, "python3", PROBE, "run", "--rate", str(RATE), "--duration", "12", "--timeout", "15",
           "--out", out, *[arg for lb in LBS for arg in ("--url", "http://%s:81" % lb)], *REQUESTS, timeout=120)
    records = [json.loads(line) for line in docker("exec", client, "cat", out).stdout.splitlines()]
    docker("exec", client, "rm", "-f", out)
    assert records and all(r["status"] in (200, 201) for r in records)
    print("baseline: %d requests, p99 %.4f s" % (len(records), p99(records)))
    return records


# --- refused input -------------------------------------------------------------------------------------

CASES = {
    "haproxy": (MIRRORH, {}, "HAProxy 2.6 has no request mirroring): shadow runs behind nginx"),
    "writes-without-store": (ORDERS, {"shadow_methods": ["GET", "POST"]}, "shadow_methods: POST write"),
    "active-pool": (ORDERS, {"shadow_pool": "blue"}, "shadow_pool: blue is the active pool"),
    "sample-0": (ORDERS, {"shadow_sample_percent": 0}, "shadow_sample_percent: expected a percent above 0"),
    "then-unknown": (ORDERS, {"shadow_then": "canary"}, "value of shadow_then must be one of: none, blue_green, ramped, got: canary"),
}


@pytest.fixture(scope="module")
def refused():
    results = refused_at_once({
        case: ("fleet.rollout.shadow", dict(service.extra_vars, rollout_version="2.0.0", **extra),
               "-e", "@molecule/resources/shadow.vars.yml")
        for case, (service, extra, _message) in CASES.items()})
    return results


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_refused_before_any_change(refused, case):
    result, message = refused[case], CASES[case][2]
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert message in " ".join(output.split()), output[-3000:]
    # Refused before the lock: no relay, no mirror, the shadow hosts untouched.
    assert "Take the rollout lock on every LB" not in output
    assert "Deploy the release to the shadow pool" not in output


# --- a shadow answering 500s, a slow one, a stopped one ---------------------------------------------

@pytest.fixture(scope="module")
def erring():
    run, report = shadow({"shadow_release_environment": {"SAMPLE_APP_ERROR_RATE": "0.5"}})
    rollback = playbook("fleet.rollout.rollback", dict(ORDERS.extra_vars), "-e", "@molecule/resources/shadow.vars.yml")
    return run, report, rollback


def test_a_shadow_answering_500s_fails_and_users_never_see_it(erring):
    run, report, _rollback = erring
    assert run.rc != 0 and "The shadow of 2.0.0 on pool green failed" in " ".join(run.output.split())
    assert_users_unaffected(run)
    assert report["verdict"] == "fail" and report["compared"] >= 500
    assert 40 <= report["shadow_error_rate"] <= 60 and 40 <= report["mismatch_rate"] <= 60
    assert any("max_error_rate" in reason for reason in report["reasons"])
    top = report["top_mismatches"][0]
    assert (top["path"], top["primary_status"], top["shadow_status"]) in {("/", 200, 500), ("/orders", 201, 500)}


def test_rollback_refuses_the_failed_shadow_pool(erring, host_for):
    _run, _report, rollback = erring
    state = json.loads(host_for(LBS[0]).file("/var/lib/fleet-rollout/orders/state.json").content_string)
    assert (state["pools"]["green"]["release"], state["pools"]["green"]["status"]) == ("2.0.0", "failed")
    assert state["history"][-1]["strategy"] == "shadow" and state["history"][-1]["outcome"] == "failed"
    assert rollback.returncode != 0
    assert "which failed its rollout" in " ".join((rollback.stdout + rollback.stderr).split())
    assert state["active_pool"] == "blue"


@pytest.fixture(scope="module")
def slow():
    return shadow({"shadow_release_environment": {"SAMPLE_APP_LATENCY_MS": "2000"}})


def test_a_slow_shadow_fails_on_latency_and_does_not_slow_users(slow, baseline):
    run, report = slow
    assert run.rc != 0
    assert_users_unaffected(run)
    assert report["verdict"] == "fail"
    assert any("max_latency_increase" in reason for reason in report["reasons"]), report["reasons"]
    assert report["latency"]["shadow"]["p50"] >= 2.0
    window = in_window(run, report)
    print("slow shadow: users' p99 %.4f s while mirrored vs %.4f s without mirroring"
          % (p99(window), p99(baseline)))
    assert p99(window) <= p99(baseline) + 0.010


def stop_shadow_once_mirrored():
    """Stops the shadow pool's app as soon as the mirror is on (as a shadow that crashes would be)."""
    deadline = time.time() + 300
    while time.time() < deadline and docker("exec", LBS[0], "test", "-e", MIRROR_FILES[2]).returncode != 0:
        time.sleep(0.3)
    for host in SHADOW:
        docker("exec", host, "systemctl", "stop", "sample-app")
    return time.time()


@pytest.fixture(scope="module")
def stopped():
    try:
        return shadow({}, during=stop_shadow_once_mirrored)
    finally:
        for host in SHADOW:
            docker("exec", host, "systemctl", "start", "sample-app")


def test_a_stopped_shadow_fails_and_does_not_slow_users(stopped, baseline):
    run, report = stopped
    assert run.rc != 0
    assert_users_unaffected(run)
    assert report["verdict"] == "fail" and report["shadow_error_rate"] >= 50
    assert any("Connection" in kind for kind in report["shadow_errors"]), report["shadow_errors"]
    window = [r for r in in_window(run, report) if r["t"] > run.during + 1]
    print("stopped shadow: users' p99 %.4f s while mirrored vs %.4f s without mirroring"
          % (p99(window), p99(baseline)))
    assert len(window) > 300
    assert p99(window) <= p99(baseline) + 0.010


# --- a good shadow with writes, then on into a blue/green flip -----------------------------------------

@pytest.fixture(scope="module")
def good():
    before = {host: {r["request_id"] for r in lines(host, DATA % "data")} for host in PRIMARY + SHADOW}
    run, report = shadow(dict(WRITES, shadow_then="blue_green", blue_green_verify_seconds=3))
    relay = {lb: [r for r in lines(lb, RELAY_LOG) if r["ts"] >= run.started] for lb in LBS}
    access = {lb: [r for r in lines(lb, "/var/log/nginx/fleet-orders.access.json") if r["ts"] >= run.started - 5]
              for lb in LBS}
    data = {host: lines(host, DATA % "data") for host in PRIMARY + SHADOW}
    scratch = {host: lines(host, DATA % "scratch") for host in SHADOW}
    return run, report, relay, access, data, scratch, before


def test_users_only_get_the_primary_while_mirrored_then_the_flip(good):
    run, report = good[:2]
    assert run.rc == 0, run.output[-3000:]
    assert report["verdict"] == "pass", report["reasons"]
    assert not run.failed, run.failed[:5]
    window = in_window(run, report)
    assert len(window) > 1000 and {r["version"] for r in window} == {"1.0.0"}
    # The flip came after the window: the last answers are the shadowed release's.
    assert {r["version"] for r in run.records[-50:]} == {"2.0.0"}


def test_report_counts_equal_the_logs_and_the_probe(good):
    run, report, relay, access = good[:4]
    since, until = report["since"], report["until"]
    primary = {r["id"]: r for lb in LBS for r in access[lb] if since <= r["ts"] <= until}
    mirrored = [r for lb in LBS for r in relay[lb] if since <= r["ts"] <= until and r["id"] in primary]
    assert report["primary_requests"] == len(primary)
    assert report["mirrored"] == len(mirrored) and report["dropped"] == 0
    assert report["compared"] == sum(1 for r in mirrored if r["status"] is not None)
    assert report["status_mismatches"] == sum(1 for r in mirrored if r["status"] != primary[r["id"]]["status"])
    # Every request of the window came from the probe, and every one of them (all methods mirrored) reached the shadow.
    probe_ids = {r["request_id"] for r in run.records}
    assert set(primary) <= probe_ids
    # Only at the window's edges may a request of the window be missing from the relay's: nginx logs a request when
    # its answer went out, the relay when the mirror arrived, and a reload hands over to new workers gradually.
    missing = set(primary) - {r["id"] for r in mirrored}
    assert len(missing) <= 10
    assert all(min(abs(primary[i]["ts"] - since), abs(primary[i]["ts"] - until)) < 1.0 for i in missing), missing
    assert {r["version"] for r in mirrored} == {"2.0.0"}
    print("report: %d requests, %d mirrored, %d compared; probe %d in the window"
          % (report["primary_requests"], report["mirrored"], report["compared"], len(in_window(run, report))))


def test_mirrored_writes_never_reach_the_primary_data(good):
    run, _report, relay, _access, data, scratch, before = good
    posts = {r["request_id"] for r in run.records if r["method"] == "POST" and r["status"] == 201}
    assert len(posts) > 100
    written = [r for host in PRIMARY for r in data[host] if r["request_id"] not in before[host]]
    # Before the flip the primary (blue) stored every order exactly once, never a mirrored one.
    assert not [r for r in written if r["shadow"]]
    counts = {}
    for record in written:
        counts[record["request_id"]] = counts.get(record["request_id"], 0) + 1
    assert set(counts.values()) == {1}
    # The shadow hosts' real store got nothing while they were the shadow; their scratch store got the mirrored orders.
    mirrored_posts = {r["id"] for lb in LBS for r in relay[lb] if r["method"] == "POST" and r["status"] == 201}
    assert mirrored_posts and mirrored_posts <= posts
    shadow_written = {r["request_id"] for host in SHADOW for r in data[host] if r["request_id"] not in before[host]}
    assert not shadow_written & mirrored_posts
    scratch_ids = {r["request_id"] for host in SHADOW for r in scratch[host] if r["shadow"]}
    assert mirrored_posts <= scratch_ids
    # Every order a user placed is stored once: by the primary before the flip, by the new pool after it.
    assert posts == set(counts) | shadow_written
