"""Smoke test of the lab fleet: real state read from the hosts themselves."""

from __future__ import annotations

import json

import pytest
from labtest import lab_hosts

ALL = lab_hosts("lab")
LBS = lab_hosts("lb")
APPS = lab_hosts("app")
CLIENTS = lab_hosts("client")


def test_fleet_shape():
    assert len(LBS) == 2 and len(APPS) == 4 and len(CLIENTS) == 1


@pytest.mark.parametrize("name", ALL)
def test_systemd_is_running(host_for, name):
    host = host_for(name)
    assert host.run("systemctl is-system-running").stdout.strip() == "running"
    assert host.run("cat /proc/1/comm").stdout.strip() == "systemd"


@pytest.mark.parametrize("name", APPS)
def test_sample_app_serves_its_release(host_for, name):
    host = host_for(name)
    service = host.service("sample-app")
    assert service.is_running and service.is_enabled
    assert host.socket("tcp://0.0.0.0:8080").is_listening
    answer = host.run("curl -fsS -D - http://127.0.0.1:8080/")
    assert answer.rc == 0, answer.stderr
    headers, dummy, body = answer.stdout.partition("\r\n\r\n")
    assert "X-App-Version: 1.0.0" in headers
    assert json.loads(body) == {"host": name, "request_id": "", "shadow": False, "version": "1.0.0"}
    assert host.run("curl -fsS http://127.0.0.1:8080/healthz").stdout == "ok\n"


@pytest.mark.parametrize("name", LBS)
def test_haproxy_forwards_to_every_app_host(host_for, name):
    host = host_for(name)
    assert host.service("haproxy").is_running
    assert host.socket("tcp://0.0.0.0:80").is_listening
    assert host.run("haproxy -c -f /etc/haproxy/haproxy.cfg").rc == 0
    seen = set()
    for attempt in range(12):
        answer = host.run("curl -fsS http://127.0.0.1/")
        assert answer.rc == 0, answer.stderr
        seen.add(json.loads(answer.stdout)["host"])
    assert seen == set(APPS)


def test_probe_through_both_lbs_sees_only_2xx(host_for):
    client = host_for(CLIENTS[0])
    urls = " ".join("--url http://%s" % lb for lb in LBS)
    run = client.run(
        "python3 /usr/local/lib/rollout_probe.py run %s --rate 50 --count 300 "
        "--out /var/tmp/smoke.jsonl --summary-json /var/tmp/smoke.summary.json" % urls
    )
    assert run.rc == 0, run.stdout + run.stderr
    records = [json.loads(line) for line in client.file("/var/tmp/smoke.jsonl").content_string.splitlines()]
    assert len(records) == 300
    assert all(200 <= r["status"] < 300 for r in records), [r for r in records if r["status"] != 200][:5]
    assert {r["target"] for r in records} == {"http://%s" % lb for lb in LBS}
    assert {r["version"] for r in records} == {"1.0.0"}
    assert {r["host"] for r in records} == set(APPS)
    summary = json.loads(client.file("/var/tmp/smoke.summary.json").content_string)
    assert summary["sent"] == 300 and summary["failed"] == 0
