"""Fault: a drain that never completes - requests far longer than ``ramped_drain_timeout`` in flight on
every app host (12 requests of 30 s through one LB) while a ramped rollout runs under live traffic.

``ramped_on_drain_timeout: fail`` (the default): the first batch's drain times out, the batch goes back
into rotation untouched and the run stops, naming the server still busy; the long requests all finish
(200), no host changed release, no lock is left. ``force``: each batch's long requests are cut when
its drain times out and the rollout goes on; the users' requests (the probe's) still all succeed; only
the long requests in flight on a drained host are lost, which is the allowance of this row."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

import pytest

from labtest import assert_lbs_agree_unlocked, haproxy_servers, lab_hosts, live_version, lb_views
from rollout_run import LAB_SERVICES, Run, reset_app, run_under_traffic

APPS = lab_hosts("app")
LBS = lab_hosts("lb")
CLIENT = lab_hosts("client")[0]
WEB = LAB_SERVICES["haproxy"]
LONG = 12
# Two batches of two hosts: every host meets the timeout, in half the rounds of single-host batches.
RUN = {"rollout_version": "2.0.0", "ramped_batches": 2, "ramped_drain_timeout": 4}


def long_requests() -> subprocess.Popen:
    """``LONG`` requests of 30 s (the most the app allows) through the first LB, all at once; prints each one's HTTP status."""
    script = ("for i in $(seq %d); do curl -s -o /dev/null -w '%%{http_code}\\n' --max-time 60 "
              "http://%s:%d/slow?s=30 & done; wait" % (LONG, LBS[0], WEB.port))
    return subprocess.Popen(["docker", "exec", CLIENT, "sh", "-c", script], stdout=subprocess.PIPE, text=True)


@dataclass
class Drain:
    run: Run
    codes: list
    servers: dict
    versions: dict
    views: dict


def drain_case(on_timeout: str) -> Drain:
    long = long_requests()
    try:
        run = run_under_traffic(WEB, "ramped", dict(RUN, ramped_on_drain_timeout=on_timeout), report=True)
    finally:
        out = long.communicate(timeout=90)[0]
    return Drain(run, out.split(), {lb: haproxy_servers(lb) for lb in LBS}, {app: live_version(app) for app in APPS},
                 lb_views())


@pytest.fixture(scope="module")
def refused_drain():
    reset_app("1.0.0")
    return drain_case("fail")


@pytest.fixture(scope="module")
def forced_drain(refused_drain):  # after the fail case (they share the fleet)
    reset_app("1.0.0")
    return drain_case("force")


def test_a_drain_that_times_out_stops_the_run_and_puts_the_batch_back(refused_drain):
    drain = refused_drain
    print("drain timeout, fail: %s; long requests %s" % (drain.run.summary(), drain.codes))
    out = drain.run.said
    assert drain.run.rc != 0, out[-3000:]
    assert "drain timed out after 4" in out and "still busy" in out, out[-3000:]
    assert "stay in drain" not in out, out[-3000:]  # the cleanup put them back: the line must not say otherwise
    assert any("be_web_main/%s (" % app in out for app in APPS), out[-3000:]  # names the server still busy
    assert drain.servers == {lb: {app: "UP/100" for app in APPS} for lb in LBS}, drain.servers
    assert set(drain.versions.values()) == {"1.0.0"}, drain.versions
    assert_lbs_agree_unlocked(drain.views)
    # Nothing was cut: every long request finished, and no user request failed.
    assert drain.codes == ["200"] * LONG, drain.codes
    assert len(drain.run.records) > 0 and not drain.run.failed, drain.run.summary()


def test_a_forced_drain_cuts_only_the_long_requests_and_the_rollout_finishes(forced_drain):
    drain = forced_drain
    print("drain timeout, force: %s; long requests %s" % (drain.run.summary(), drain.codes))
    assert drain.run.rc == 0, drain.run.output[-3000:]
    assert set(drain.versions.values()) == {"2.0.0"}, drain.versions
    assert drain.servers == {lb: {app: "UP/100" for app in APPS} for lb in LBS}, drain.servers
    assert_lbs_agree_unlocked(drain.views)
    assert len(drain.codes) == LONG and drain.codes.count("200") < LONG, drain.codes
    assert len(drain.run.records) > 0 and not drain.run.failed, drain.run.summary()
