"""fleet.rollout.health_gate against real sample-app servers on loopback."""

from __future__ import annotations

import os
import threading
import time

import pytest

from ansible_collections.fleet.rollout.plugins.module_utils import _health_gate
from ansible_collections.fleet.rollout.plugins.modules import health_gate


def closed_port_url(port: int) -> str:
    """A loopback URL where nothing listens (``port`` from the free_port fixture)."""
    return "http://127.0.0.1:%d/healthz" % port


def test_healthy_app_passes_with_exactly_successes_attempts(run_app, run_module):
    dummy, url = run_app()
    out = run_module(health_gate.main, {"url": url + "/healthz", "successes": 4, "interval": 0.01})
    assert "failed" not in out
    assert out["changed"] is False
    assert out["healthy"] is True
    assert out["attempts"] == 4 and out["consecutive"] == 4 and out["best_consecutive"] == 4
    assert out["last_status"] == 200 and out["last_error"] is None and out["last_body"] == "ok\n"
    assert 0 <= out["elapsed"] < 5


def test_app_that_becomes_healthy_mid_wait_passes(run_app, run_module, tmp_path):
    fail_file = tmp_path / "unhealthy"
    fail_file.write_text("down\n")
    dummy, url = run_app(fail_file=fail_file)
    timer = threading.Timer(0.5, os.remove, [str(fail_file)])
    timer.start()
    try:
        out = run_module(health_gate.main, {"url": url + "/healthz", "successes": 3, "interval": 0.05, "timeout": 20})
    finally:
        timer.cancel()
    assert "failed" not in out, out["msg"]
    assert out["healthy"] is True and out["last_status"] == 200
    # The file existed at the first probe: at least one 503 came before the three successes.
    assert out["attempts"] >= 4
    assert out["consecutive"] == 3
    assert out["elapsed"] >= 0.4


def test_never_healthy_fails_naming_url_count_and_last_answer(run_app, run_module):
    dummy, url = run_app(health_fail=1)
    started = time.monotonic()
    out = run_module(health_gate.main, {"url": url + "/healthz", "timeout": 1, "interval": 0.05})
    took = time.monotonic() - started
    assert out["failed"] is True
    assert out["healthy"] is False and out["changed"] is False
    assert out["last_status"] == 503 and out["last_body"] == "unhealthy\n"
    assert url + "/healthz" in out["msg"]
    assert "0 of 3 consecutive successes" in out["msg"]
    assert "last answer: HTTP 503 'unhealthy'" in out["msg"]
    assert out["attempts"] >= 5 and out["consecutive"] == 0
    assert 0.9 <= took < 6


def test_connection_refused_fails_with_the_error(run_module, free_port):
    url = closed_port_url(free_port())
    out = run_module(health_gate.main, {"url": url, "timeout": 0.5, "interval": 0.05, "successes": 2})
    assert out["failed"] is True
    assert out["last_status"] is None
    assert "Connection refused" in out["last_error"]
    assert "0 of 2 consecutive successes" in out["msg"]
    assert "no HTTP answer" in out["msg"] and "Connection refused" in out["msg"]


def test_slow_answer_counts_as_unhealthy_and_gate_ends_near_timeout(run_app, run_module):
    dummy, url = run_app()
    started = time.monotonic()
    out = run_module(health_gate.main, {"url": url + "/slow?s=3", "timeout": 0.6, "interval": 0.05,
                                        "request_timeout": 0.2, "successes": 1})
    took = time.monotonic() - started
    assert out["failed"] is True
    assert out["last_error"] == "timed out"
    assert "timed out" in out["msg"]
    assert took < 2


def test_status_codes_and_body_contains(run_app, run_module):
    dummy, sick = run_app(health_fail=1)
    out = run_module(health_gate.main, {"url": sick + "/healthz", "status_codes": [503], "interval": 0.01,
                                        "successes": 2})
    assert out["healthy"] is True and out["last_status"] == 503

    dummy, well = run_app(version="2.0.0")
    out = run_module(health_gate.main, {"url": well + "/", "body_contains": '"version": "2.0.0"', "interval": 0.01})
    assert out["healthy"] is True and out["attempts"] == 3

    out = run_module(health_gate.main, {"url": well + "/", "body_contains": '"version": "9.9.9"', "interval": 0.05,
                                        "timeout": 0.3})
    assert out["failed"] is True and out["last_status"] == 200
    assert "does not contain" in out["last_error"] and "does not contain" in out["msg"]


def test_check_mode_does_not_probe_and_reports_healthy_null(run_module, free_port):
    out = run_module(health_gate.main, {"url": closed_port_url(free_port()), "timeout": 0.2}, check_mode=True)
    assert "failed" not in out
    assert out["skipped"] is True and out["changed"] is False
    assert out["healthy"] is None and out["attempts"] == 0 and out["last_status"] is None


@pytest.mark.parametrize("args, expected", [
    ({"successes": 0}, "successes must be at least 1, got 0"),
    ({"timeout": 0}, "timeout must be above 0 seconds, got 0.0"),
    ({"timeout": -5}, "timeout must be above 0 seconds, got -5.0"),
    ({"interval": 0}, "interval must be above 0 seconds"),
    ({"request_timeout": -1}, "request_timeout must be above 0 seconds"),
    ({"url": "127.0.0.1:8080/healthz"}, "url must be an http:// or https:// URL with a host, got '127.0.0.1:8080/healthz'"),
    ({"url": "ftp://example.org/health"}, "url must be an http:// or https:// URL"),
    ({"url": "http:///healthz"}, "url must be an http:// or https:// URL"),
    ({"status_codes": []}, "status_codes must list at least one HTTP status"),
    ({"status_codes": [200, 999]}, "status_codes must be HTTP statuses (100-599), got [999]"),
])
def test_bad_input_is_refused_with_a_clear_error(run_module, args, expected):
    full = {"url": "http://127.0.0.1:1/healthz"}
    full.update(args)
    out = run_module(health_gate.main, full)
    assert out["failed"] is True
    assert expected in out["msg"]
    assert "attempts" not in out  # refused before any probe


class Flapper:
    """Toggles the app's fail file after every ``period`` probes, between two probes.

    The gate calls ``sleep`` once after each unsuccessful-so-far probe, so the
    answers the real app gives are fixed in advance: ``period`` healthy, then
    ``period`` unhealthy, and so on (about 0.15 s each with period 3 and 50 ms
    sleeps). No thread races the prober.
    """

    def __init__(self, path, period: int, pause: float = 0.05):
        self.path = str(path)
        self.period = period
        self.pause = pause
        self.calls = 0

    def sleep(self, seconds: float) -> None:
        self.calls += 1
        if self.calls % self.period == 0:
            if os.path.exists(self.path):
                os.remove(self.path)
            else:
                with open(self.path, "w", encoding="utf-8") as handle:
                    handle.write("down\n")
        time.sleep(min(seconds, self.pause))


def test_flapping_app_never_passes_a_gate_longer_than_its_healthy_runs(run_app, tmp_path):
    fail_file = tmp_path / "flap"
    dummy, url = run_app(fail_file=fail_file)
    flapper = Flapper(fail_file, period=3)
    with pytest.raises(_health_gate.GateFailed) as failure:
        _health_gate.wait_healthy(url + "/healthz", successes=5, timeout=2.0, interval=0.05, sleep=flapper.sleep)
    result = failure.value.result
    assert result["healthy"] is False
    assert result["best_consecutive"] == 3
    assert result["attempts"] >= 12  # at least two full healthy/unhealthy cycles were seen
    assert "best run: 3 of 5 consecutive successes" in str(failure.value)


def test_flapping_app_passes_when_a_healthy_run_is_long_enough(run_app, tmp_path):
    fail_file = tmp_path / "flap"
    fail_file.write_text("down\n")  # unhealthy first: 3 x 503, then 3 x 200
    dummy, url = run_app(fail_file=fail_file)
    flapper = Flapper(fail_file, period=3)
    result = _health_gate.wait_healthy(url + "/healthz", successes=3, timeout=5.0, interval=0.05, sleep=flapper.sleep)
    assert result["healthy"] is True
    assert result["attempts"] == 6 and result["consecutive"] == 3


def test_injected_clock_bounds_the_gate(run_app):
    """With a fake clock that jumps 1 s per probe, a 3 s gate probes exactly 4 times (at 0, 1, 2, 3 s)."""
    dummy, url = run_app(health_fail=1)
    now = [0.0]

    def clock():
        return now[0]

    def sleep(seconds):
        now[0] += seconds

    with pytest.raises(_health_gate.GateFailed) as failure:
        _health_gate.wait_healthy(url + "/healthz", timeout=3.0, interval=1.0, clock=clock, sleep=sleep)
    assert failure.value.result["attempts"] == 4
    assert failure.value.result["elapsed"] == 3.0
