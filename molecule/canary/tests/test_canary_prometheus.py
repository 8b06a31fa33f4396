"""The canary judged on a real Prometheus server too (Debian's package on the lab's client, scraping both LBs'
HAProxy exporters every second; tools/lab/prometheus.yml), next to the LBs' own logs: each step's verdict is the
worse of both, and both are in its line and its record. A good release passes on both; 2.0.1-bad (30 % errors)
fails on both, Prometheus measuring about the error rate the LBs' logs count."""

from __future__ import annotations

import pytest

from labtest import lab_hosts, load_json
from rollout_run import LAB_SERVICES, playbook, reset_app, run_under_traffic

APPS = lab_hosts("app")
LBS = lab_hosts("lb")
WEB = LAB_SERVICES["haproxy"]


def error_rate(servers: str) -> str:
    """HAProxy 2.6's exporter: the share of 5xx answers of ``servers`` (a placeholder) in the window, in percent."""
    selector = 'proxy="$backend",server=~"%s"' % servers
    return ('100 * sum(increase(haproxy_server_http_responses_total{%s,code="5xx"}[$window]))'
            ' / sum(increase(haproxy_server_http_responses_total{%s}[$window]))' % (selector, selector))


PROMETHEUS = {
    "canary_prometheus_url": "http://%s:9090" % lab_hosts("client")[0],
    "canary_prometheus_queries": {"canary": {"error_rate": error_rate("$canary_servers")},
                                  "baseline": {"error_rate": error_rate("$baseline_servers")}},
    # One step of 25 % (1 canary of 4 hosts: its share of a full fleet), judged once, at the window's end.
    "canary_steps": [25], "canary_interval": 10, "canary_look_interval": 0, "canary_min_samples": 20,
    "canary_promote": False,
}


def last_event(host_for) -> dict:
    return load_json(host_for(LBS[0]), "/var/lib/fleet-rollout/web/state.json")["history"][-1]


@pytest.fixture(scope="module")
def runs(host_for):
    reset_app("1.0.0")
    good = run_under_traffic(WEB, "canary", dict(PROMETHEUS, rollout_version="2.0.0"))
    good_event = last_event(host_for)
    aborted = playbook("fleet.rollout.abort", WEB.extra_vars, "-e", "@molecule/resources/strategy.vars.yml")
    assert aborted.returncode == 0, aborted.stdout[-3000:]
    bad = run_under_traffic(WEB, "canary", dict(PROMETHEUS, rollout_version="2.0.1-bad"))
    return good, good_event, bad, last_event(host_for)


def test_a_good_release_passes_on_the_logs_and_on_prometheus(runs):
    good, event, _bad, _bad_event = runs
    assert good.rc == 0, good.output[-4000:]
    step = event["steps"][0]
    print("good: %s; prometheus %s" % (step["summary"], step["prometheus"]))
    assert step["verdict"] == "pass" and step["prometheus"]["verdict"] == "pass", step
    assert step["prometheus"]["canary"]["error_rate"] == 0.0 and step["prometheus"]["baseline"]["error_rate"] == 0.0
    # The placeholders became the canary's server, its backend and the window judged.
    query = step["prometheus"]["queries"]["canary"]["error_rate"]
    assert 'proxy="be_web_main"' in query and 'server=~"%s"' % event["canary"][0] in query, query
    assert "| prometheus PASS" in " ".join(good.output.split())


def test_a_bad_release_fails_on_both_and_prometheus_measures_its_errors(runs, host_for):
    _good, _good_event, bad, event = runs
    assert bad.rc != 0, bad.output[-4000:]
    step = event["steps"][0]
    print("bad: %s; prometheus %s" % (step["summary"], step["prometheus"]))
    assert step["verdict"] == "fail" and step["prometheus"]["verdict"] == "fail", step
    # The LB logs' own reason and Prometheus' each failed the step.
    assert any(r.startswith("canary error rate") for r in step["reasons"]), step["reasons"]
    assert any(r.startswith("prometheus: canary error rate") for r in step["reasons"]), step["reasons"]
    # Both sources count the same requests: Prometheus' rate is near the logs' (30 % errors, ~150 canary requests).
    logs, prometheus = step["canary"]["error_rate"], step["prometheus"]["canary"]["error_rate"]
    assert 15 <= prometheus <= 45 and abs(prometheus - logs) <= 10, (prometheus, logs)
    # Rolled back: every host on 1.0.0 again.
    assert {app: load_json(host_for(app), "/opt/sample-app/release-state.json")["slots"]["main"]["version"]
            for app in APPS} == {app: "1.0.0" for app in APPS}
