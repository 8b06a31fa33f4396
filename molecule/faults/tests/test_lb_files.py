"""Faults in an LB's own files, under live traffic: an nginx config that ``nginx -t`` rejects (a broken file
another hand dropped in conf.d) and a rollout lock file that is not a lock.

nginx: the first drain on that LB is refused by ``nginx -t``; its previous routing stays and serves, the
run stops naming the LB and what nginx said, the other LB gets its host back; users lose nothing. Once
the file is gone, a rerun finishes. Lock: the run is refused naming the file and what is wrong with it,
before any change; ``rollout_lock_force`` then takes it over and the rollout finishes."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from labtest import (assert_lbs_agree_unlocked, haproxy_servers, lab_hosts, lb_views, live_version, rollout_locks,
                     rollout_snapshot, without_volatile)
from rollout_run import LAB_SERVICES, Run, docker, reset_app, run_under_traffic

APPS = lab_hosts("app")
LBS = lab_hosts("lb")
WEB = LAB_SERVICES["haproxy"]
STORE = LAB_SERVICES["nginx"]
# The runs refused at their first batch take one host at a time; the reruns that finish, two (what they prove
# does not depend on the batch size).
RUN = {"rollout_version": "2.0.0", "ramped_batches": 1}
BROKEN = "/etc/nginx/conf.d/zz-not-nginx.conf"
LOCK = "/var/lib/fleet-rollout/web/lock.json"


def routing(lb: str) -> str:
    return docker("exec", lb, "cat", "/etc/nginx/fleet/store.routing.conf").stdout


@dataclass
class Rejected:
    run: Run
    routing_before: str
    routing_after: dict
    versions: dict
    locks: dict
    rerun: Run
    views_after: dict


@pytest.fixture(scope="module")
def rejected():
    reset_app("1.0.0")
    before = routing(LBS[0])
    assert docker("exec", LBS[0], "sh", "-c", "echo 'this is not nginx config;' > %s" % BROKEN).returncode == 0
    try:
        run = run_under_traffic(STORE, "ramped", RUN, report=True)
        after = {lb: routing(lb) for lb in LBS}
        versions = {app: live_version(app) for app in APPS}
        locks = rollout_locks(STORE.name)
    finally:
        docker("exec", LBS[0], "rm", "-f", BROKEN)
    rerun = run_under_traffic(STORE, "ramped", dict(RUN, ramped_batches=2), report=True)
    return Rejected(run, before, after, versions, locks, rerun, lb_views(STORE.name, "nginx"))


def test_a_config_nginx_rejects_stops_the_run_naming_the_lb_and_users_lose_nothing(rejected):
    run = rejected.run
    print("nginx -t fails: %s" % run.summary())
    out = run.said
    assert run.rc != 0, out[-3000:]
    assert "failed on LB %s" % LBS[0] in out and "nginx -t rejected the configuration" in out, out[-3000:]
    assert BROKEN in out, out[-3000:]
    assert len(run.records) > 0 and not run.failed, run.summary()


def test_the_rejected_lb_keeps_its_routing_and_the_other_has_every_host_back(rejected):
    assert rejected.routing_after[LBS[0]] == rejected.routing_before
    for lb in LBS:
        assert " down" not in rejected.routing_after[lb], rejected.routing_after[lb]
    assert set(rejected.versions.values()) == {"1.0.0"}, rejected.versions
    assert rejected.locks == {lb: False for lb in LBS}, rejected.locks


def test_once_the_file_is_gone_a_rerun_finishes(rejected):
    rerun = rejected.rerun
    print("nginx rerun: %s" % rerun.summary())
    assert rerun.rc == 0, rerun.output[-3000:]
    assert len(rerun.records) > 0 and not rerun.failed, rerun.summary()
    assert {app: live_version(app) for app in APPS} == {app: "2.0.0" for app in APPS}
    assert_lbs_agree_unlocked(rejected.views_after)


@dataclass
class CorruptLock:
    run: Run
    before: dict
    after: dict
    forced: Run
    views_after: dict


@pytest.fixture(scope="module")
def corrupt_lock(rejected, host_for):  # after the nginx case (they share the fleet)
    reset_app("1.0.0")
    content = '{"owner": "ops@old-box", "started": 1790000000, "expires": null}'
    assert docker("exec", LBS[0], "sh", "-c", "printf '%s' > %s" % (content, LOCK)).returncode == 0
    try:
        before = rollout_snapshot(host_for)
        run = run_under_traffic(WEB, "ramped", RUN, report=True)
        after = rollout_snapshot(host_for)
        forced = run_under_traffic(WEB, "ramped", dict(RUN, ramped_batches=2, rollout_lock_force=True), report=True)
        views_after = lb_views()
    finally:
        docker("exec", LBS[0], "rm", "-f", LOCK)
    return CorruptLock(run, before, after, forced, views_after)


def test_a_corrupt_lock_is_refused_naming_the_file_before_any_change(corrupt_lock):
    run = corrupt_lock.run
    print("corrupt lock: %s" % run.summary())
    out = run.said
    assert run.rc != 0, out[-3000:]
    assert "(%s) is corrupt: expires is null, not a time" % LOCK in out and "rollout_lock_force=true" in out, out[-3000:]
    assert "(refused by %s" % LBS[0] in out, out[-3000:]  # names the LB the file is on
    assert "not releasing it" not in out, out[-3000:]  # the undo leaves alone a lock that is not this run's
    assert without_volatile(corrupt_lock.after) == without_volatile(corrupt_lock.before)
    assert len(run.records) > 0 and not run.failed, run.summary()


def test_rollout_lock_force_takes_a_corrupt_lock_over_and_finishes(corrupt_lock):
    forced = corrupt_lock.forced
    print("corrupt lock, forced: %s" % forced.summary())
    out = forced.said
    assert forced.rc == 0, out[-3000:]
    assert "Took over the lock of (corrupt lock file: expires is null, not a time) on %s" % LBS[0] in out, out[-3000:]
    assert len(forced.records) > 0 and not forced.failed, forced.summary()
    assert_lbs_agree_unlocked(corrupt_lock.views_after)  # no lock left, every LB the same
    assert {lb: haproxy_servers(lb) for lb in LBS} == {lb: {app: "UP/100" for app in APPS} for lb in LBS}
