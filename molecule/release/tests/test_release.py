"""fleet.rollout.release on the app hosts: real state read from the hosts themselves."""

from __future__ import annotations

import json
import os
import uuid

import pytest
from labtest import PROJECT, http, lab_hosts, load_json
from rollout_run import playbook

APPS = lab_hosts("app")
ROOT = "/opt/sample-app"
KEEP_ROOT = "/opt/sample-keep"
ARTIFACTS = os.environ.get("FLEET_ARTIFACTS") or os.path.join(PROJECT, "build", "artifacts")

# unit, port, version, current link, environment file
INSTALLS = [
    ("sample-app.service", 8080, "2.0.0", ROOT + "/current", ROOT + "/shared/main.env"),
    ("sample-app@blue.service", 8081, "1.0.0", ROOT + "/slots/blue/current", ROOT + "/shared/blue.env"),
    ("sample-app@green.service", 8082, "2.0.0", ROOT + "/slots/green/current", ROOT + "/shared/green.env"),
    ("sample-keep.service", 8090, "2.0.0", KEEP_ROOT + "/current", KEEP_ROOT + "/shared/main.env"),
]
CASES = [(name,) + install for name in APPS for install in INSTALLS]
CASE_IDS = ["%s-%s" % (case[0], case[1]) for case in CASES]


def sha256_of(version: str) -> str:
    with open(os.path.join(ARTIFACTS, "sample-app-%s.tar.gz.sha256" % version), encoding="utf-8") as handle:
        return handle.read().split()[0]


def test_fleet_shape():
    assert len(APPS) == 4


@pytest.mark.parametrize("name, unit, port, version, link, env", CASES, ids=CASE_IDS)
def test_each_install_serves_its_release(host_for, name, unit, port, version, link, env):
    host = host_for(name)
    status, headers, body = http(host, "http://127.0.0.1:%d/" % port)
    assert status == 200
    assert headers["x-app-version"] == version
    assert json.loads(body)["version"] == version
    assert http(host, "http://127.0.0.1:%d/healthz" % port)[0] == 200


@pytest.mark.parametrize("name, unit, port, version, link, env", CASES, ids=CASE_IDS)
def test_unit_active_enabled_and_running_as_the_service_user(host_for, name, unit, port, version, link, env):
    host = host_for(name)
    service = host.service(unit)
    assert service.is_running and service.is_enabled
    pid = host.run("systemctl show -p MainPID --value %s" % unit).stdout.strip()
    assert pid not in ("", "0")
    user = "sample-keep" if unit.startswith("sample-keep") else "sample-app"
    assert host.run("ps -o user= -p %s" % pid).stdout.strip() == user


@pytest.mark.parametrize("name, unit, port, version, link, env", CASES, ids=CASE_IDS)
def test_current_is_a_link_to_the_release(host_for, name, unit, port, version, link, env):
    host = host_for(name)
    current = host.file(link)
    assert current.is_symlink
    root = KEEP_ROOT if unit.startswith("sample-keep") else ROOT
    assert host.run("readlink %s" % link).stdout.strip() == "%s/releases/%s" % (root, version)
    assert not host.file(link + ".next").exists


@pytest.mark.parametrize("name, unit, port, version, link, env", CASES, ids=CASE_IDS)
def test_environment_file_is_private(host_for, name, unit, port, version, link, env):
    host = host_for(name)
    env_file = host.file(env)
    assert env_file.is_file
    assert env_file.mode == 0o600
    assert env_file.user == "root" and env_file.group == "root"
    content = env_file.content_string
    assert 'SAMPLE_APP_PORT="%d"' % port in content
    assert "HEALTH_FAIL" not in content  # the failed release's environment was put back


@pytest.mark.parametrize("name", APPS)
def test_units_point_at_current_and_the_slot_env(host_for, name):
    host = host_for(name)
    plain = host.file("/etc/systemd/system/sample-app.service").content_string
    assert "WorkingDirectory=%s/current\n" % ROOT in plain
    assert "EnvironmentFile=%s/shared/main.env\n" % ROOT in plain
    assert "ExecStart=/usr/bin/python3 sample_app.py\n" in plain
    assert "User=sample-app\n" in plain
    template = host.file("/etc/systemd/system/sample-app@.service").content_string
    assert "WorkingDirectory=%s/slots/%%i/current\n" % ROOT in template
    assert "EnvironmentFile=%s/shared/%%i.env\n" % ROOT in template


@pytest.mark.parametrize("name", APPS)
def test_release_state_file(host_for, name):
    host = host_for(name)
    state_file = host.file(ROOT + "/release-state.json")
    assert state_file.mode == 0o644
    state = load_json(host, ROOT + "/release-state.json")
    assert state["service"] == "sample-app" and state["root"] == ROOT
    slots = state["slots"]
    assert {"main", "blue", "green"} <= set(slots)
    expected = {"main": ("2.0.0", "1.0.0", "sample-app.service"), "blue": ("1.0.0", None, "sample-app@blue.service"),
                "green": ("2.0.0", None, "sample-app@green.service")}
    for slot, (version, previous, unit) in expected.items():
        entry = slots[slot]
        assert entry["version"] == version, slot
        assert entry["path"] == "%s/releases/%s" % (ROOT, version)
        assert entry["sha256"] == sha256_of(version)
        assert entry["unit"] == unit
        if slot != "main":
            assert entry["previous"] == previous
            assert [(h["version"], h["outcome"]) for h in entry["history"]] == [(version, "deployed")]
    main = slots["main"]
    assert main["previous"] == "1.0.0"
    # The scenario's cycle, oldest first: 1.0.0 (deployed, or only reconfigured when
    # another scenario had already put 1.0.0 there), 2.0.0, rollback to 1.0.0,
    # 2.0.0, and 2.0.1-bad that failed its gate and was rolled back.
    steps = [(h["version"], h["outcome"]) for h in main["history"][-5:]]
    assert steps[0][0] == "1.0.0" and steps[0][1] in ("deployed", "reconfigured")
    assert steps[1:] == [("2.0.0", "deployed"), ("1.0.0", "rolled_back"), ("2.0.0", "deployed"), ("2.0.1-bad", "failed")]
    failed = main["history"][-1]
    assert failed["from"] == "2.0.0"
    for entry in main["history"]:
        assert len(entry["time"]) == 20 and entry["time"].endswith("Z")


@pytest.mark.parametrize("name", APPS)
def test_keep_n_and_no_leftovers(host_for, name):
    host = host_for(name)
    # sample-app keeps 3: 1.0.0 and 2.0.0 (both live in a slot); the failed 2.0.1-bad was removed
    # after its rollback, and 3.0.0 (wrong sha256) never got in.
    assert sorted(host.file(ROOT + "/releases").listdir()) == ["1.0.0", "2.0.0"]
    # sample-keep keeps 2: 2.0.1-bad, installed first and neither live nor previous, went.
    assert sorted(host.file(KEEP_ROOT + "/releases").listdir()) == ["1.0.0", "2.0.0"]
    state = load_json(host, KEEP_ROOT + "/release-state.json")
    assert state["slots"]["main"]["version"] == "2.0.0" and state["slots"]["main"]["previous"] == "1.0.0"
    for root in (ROOT, KEEP_ROOT):
        assert host.file(root + "/artifacts").listdir() == []
        assert host.file(root + "/artifacts").mode == 0o700


@pytest.mark.parametrize("name", APPS)
def test_each_release_is_complete_and_links_the_shared_data(host_for, name):
    host = host_for(name)
    for version in ("1.0.0", "2.0.0"):
        release = "%s/releases/%s" % (ROOT, version)
        assert host.file(release + "/.release-sha256").content_string.strip() == sha256_of(version)
        assert host.file(release + "/sample_app.py").is_file
        assert json.loads(host.file(release + "/release.json").content_string)["version"] == version
        data = host.file(release + "/data")
        assert data.is_symlink and data.linked_to == ROOT + "/shared/data"
        assert host.file(release).user == "root"
    shared = host.file(ROOT + "/shared/data")
    assert shared.is_directory and shared.user == "sample-app" and shared.mode == 0o750


@pytest.mark.parametrize("name", APPS)
def test_orders_land_in_the_shared_directory(host_for, name):
    host = host_for(name)
    request_id = uuid.uuid4().hex
    done = host.run("curl -fsS -X POST -H 'X-Request-ID: %s' -d '{\"item\": 1}' http://127.0.0.1:8080/orders" % request_id)
    assert done.rc == 0, done.stderr
    assert request_id in host.file(ROOT + "/shared/data/orders.jsonl").content_string


@pytest.mark.parametrize("name", APPS)
def test_hooks_ran_at_their_points(host_for, name):
    lines = set(host_for(name).file("/var/lib/fleet-rollout-molecule/hooks.log").content_string.splitlines())
    assert "after_activate sample-app main 1.0.0" in lines
    assert "after_activate sample-app main 2.0.0" in lines
    assert "after_activate sample-app blue 1.0.0" in lines
    assert "after_activate sample-app green 2.0.0" in lines
    # before_install runs only for a release that is not installed yet...
    assert "before_install sample-app main 2.0.1-bad" in lines
    assert "before_install sample-app blue 1.0.0" not in lines
    # ...and after_activate only once the gate passed.
    assert "after_activate sample-app main 2.0.1-bad" not in lines


def test_a_corrupt_release_state_is_named_though_the_read_is_no_log(host_for):
    """The read hides its result (the environment file's content is in it), not which file is corrupt."""
    name = APPS[0]
    host = host_for(name)
    root = "/opt/sample-corrupt"
    assert host.run("mkdir -p %s && printf '{broken' > %s/release-state.json" % (root, root)).rc == 0
    try:
        result = playbook("tools/lab/app.yml", {"release_root": root, "sample_app_version": "1.0.0"}, "--limit", name)
    finally:
        host.run("rm -rf %s" % root)
    assert result.returncode != 0
    assert "%s/release-state.json is not JSON" % root in result.stdout, result.stdout[-3000:]
