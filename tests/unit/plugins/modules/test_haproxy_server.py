"""fleet.rollout.haproxy_server against a real HAProxy with real backends."""

from __future__ import annotations

import os
import threading
import time

import pytest

from ansible_collections.fleet.rollout.plugins.modules import haproxy_server


def addr(url):
    return url[len("http://"):]


@pytest.fixture
def lab(haproxy_lab, run_app):
    """be_shop: a (weight 10) and b (weight 20) on two app servers; be_other: a."""
    app_a = run_app(version="1.0.0")[1]
    app_b = run_app(version="2.0.0")[1]
    return haproxy_lab({
        "be_shop": ["a %s check inter 200ms weight 10" % addr(app_a), "b %s check inter 200ms weight 20" % addr(app_b)],
        "be_other": ["a %s weight 30" % addr(app_a)],
    })


def args(lab, **kwargs):
    base = {"socket": lab.socket, "state_file": lab.state_file, "poll_interval": 0.1}
    base.update(kwargs)
    return base


def background_get(get_url, url):
    result = {}

    def worker():
        result["answer"] = get_url(url, timeout=30)

    thread = threading.Thread(target=worker)
    thread.start()
    return thread, result


def wait_sessions(lab, key, count=1, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if lab.servers()[key]["scur"] >= count:
            return
        time.sleep(0.02)
    raise AssertionError("%s never had %d session(s)" % (key, count))


def test_drain_waits_for_the_request_in_flight_which_succeeds(lab, run_module, get_url):
    lab.cli("set server be_shop/b state maint")  # the slow request must land on a
    thread, result = background_get(get_url, lab.url + "/slow?s=1.5")
    wait_sessions(lab, "be_shop/a")
    started = time.monotonic()
    out = run_module(haproxy_server.main, args(lab, servers=["be_shop/a"], state="drain"))
    waited = time.monotonic() - started
    thread.join(10)
    assert result["answer"][0] == 200
    assert out["changed"] is True
    entry = out["servers"][0]
    assert entry["before"]["admin_state"] == "ready" and entry["after"]["admin_state"] == "drain"
    assert entry["before"]["sessions"] == 1 and entry["after"]["sessions"] == 0
    assert entry["drained"] is True and 1.0 <= entry["drain_seconds"] <= waited
    assert lab.servers()["be_shop/a"]["srv_admin_state"] == "8"


def test_drain_timeout_fail_leaves_server_draining(lab, run_module, get_url):
    lab.cli("set server be_shop/b state maint")
    thread, result = background_get(get_url, lab.url + "/slow?s=2")
    wait_sessions(lab, "be_shop/a")
    out = run_module(haproxy_server.main, args(lab, servers=["be_shop/a"], state="drain", drain_timeout=0.5))
    assert out["failed"] is True
    assert "drain timed out after 0.5s: be_shop/a (1 sessions, 0 queued) still busy" in out["msg"]
    assert out["servers"][0]["drained"] is False
    thread.join(10)
    assert result["answer"][0] == 200  # left alone: the request still completes
    assert lab.servers()["be_shop/a"]["srv_admin_state"] == "8"


def test_drain_in_rounds_reports_the_sessions_left_then_the_drain(lab, run_module, get_url):
    lab.cli("set server be_shop/b state maint")
    thread, result = background_get(get_url, lab.url + "/slow?s=2")
    wait_sessions(lab, "be_shop/a")
    params = args(lab, servers=["be_shop/a"], state="drain", drain_timeout=0.5, on_timeout="report")
    first = run_module(haproxy_server.main, params)
    assert first.get("failed") is not True and first["changed"] is True
    entry = first["servers"][0]
    assert entry["drained"] is False and entry["drain_seconds"] is None and entry["forced"] is False
    assert entry["after"]["admin_state"] == "drain" and entry["after"]["sessions"] == 1
    rounds = [first]
    while rounds[-1]["servers"][0]["drained"] is False and len(rounds) < 20:
        rounds.append(run_module(haproxy_server.main, params))
    thread.join(10)
    assert result["answer"][0] == 200  # never cut: the request finished on its own
    assert 3 <= len(rounds) <= 8, [r["servers"][0]["after"]["sessions"] for r in rounds]
    last = rounds[-1]["servers"][0]
    assert last["drained"] is True and last["after"]["sessions"] == 0 and rounds[-1]["changed"] is False
    # Each round ended with the session still open, but for the one whose last poll saw it just gone (an UP
    # server needs two empty polls in a row to count as drained).
    assert all(r["servers"][0]["after"]["sessions"] == 1 for r in rounds[:-2])
    assert rounds[-2]["servers"][0]["after"]["sessions"] in (0, 1)
    assert lab.servers()["be_shop/a"]["srv_admin_state"] == "8"


def test_drain_timeout_force_cuts_sessions_and_sets_maint(lab, run_module, get_url):
    lab.cli("set server be_shop/b state maint")
    thread, result = background_get(get_url, lab.url + "/slow?s=10")
    wait_sessions(lab, "be_shop/a")
    started = time.monotonic()
    params = args(lab, servers=["be_shop/a"], state="drain", drain_timeout=0.5, on_timeout="force")
    out = run_module(haproxy_server.main, params)
    thread.join(10)
    assert time.monotonic() - started < 5  # the session would last 10 s
    assert out.get("failed") is not True and out["changed"] is True
    assert out["servers"][0]["forced"] is True
    assert out["servers"][0]["after"]["admin_state"] == "maint"
    assert result["answer"][0] != 200  # the session was shut down, not waited for
    assert lab.servers()["be_shop/a"]["scur"] == 0


def test_down_and_maint_servers_count_as_drained_at_once(haproxy_lab, run_app, run_module):
    url = run_app()[1]
    lab = haproxy_lab({"be": ["up %s check inter 200ms" % addr(url), "dead 127.0.0.1:1 check inter 200ms fall 1",
                              "off %s" % addr(url)]})
    lab.wait_status("be/dead", "DOWN")
    lab.cli("set server be/off state maint")
    started = time.monotonic()
    # A poll interval this long proves nothing waits for a second poll.
    out = run_module(haproxy_server.main, args(lab, servers=["be/dead", "be/off"], state="maint", poll_interval=30))
    assert time.monotonic() - started < 10
    dead, off = out["servers"]
    assert dead["changed"] is True and dead["drained"] is True and dead["drain_seconds"] < 0.5
    assert off["changed"] is False and off["drained"] is True
    # Draining a DOWN server (the peer module's hang) is immediate too.
    lab.cli("set server be/dead state ready")
    lab.wait_status("be/dead", "DOWN")  # leaving maint, HAProxy calls it UP until the next check fails
    started = time.monotonic()
    out = run_module(haproxy_server.main, args(lab, servers=["be/dead"], state="drain", poll_interval=30))
    assert out["servers"][0]["drained"] is True and time.monotonic() - started < 10


def test_same_state_twice_is_no_change(lab, run_module):
    first = run_module(haproxy_server.main, args(lab, servers=["a"], state="drain", weight="5"))
    assert first["changed"] is True and [s["name"] for s in first["servers"]] == ["be_shop/a", "be_other/a"]
    second = run_module(haproxy_server.main, args(lab, servers=["a"], state="drain", weight="5"))
    assert second["changed"] is False
    assert all(not s["changed"] for s in second["servers"])


def test_missing_servers_fail_before_any_change(lab, run_module):
    out = run_module(haproxy_server.main, args(lab, servers=["be_shop/a", "be_shop/zz"], state="maint"))
    assert out["failed"] is True
    assert "no HAProxy server matches 'be_shop/zz'; servers that exist: be_other/a, be_shop/a, be_shop/b" in out["msg"]
    assert lab.servers()["be_shop/a"]["srv_admin_state"] == "0"


def test_weight_and_drain_survive_a_real_reload(lab, run_module, get_url):
    out = run_module(haproxy_server.main, args(lab, servers=["be_shop/b"], weight="50%"))
    assert out["servers"][0]["after"]["weight"] == 10  # 50 % of the configured 20
    run_module(haproxy_server.main, args(lab, servers=["be_shop/a"], state="drain"))
    assert os.path.exists(lab.state_file)
    lab.reload()
    rows = lab.servers()
    assert rows["be_shop/b"]["srv_uweight"] == "10" and rows["be_shop/b"]["srv_iweight"] == "20"
    assert rows["be_shop/a"]["srv_admin_state"] == "8"
    # ... and the drained server really gets no traffic after the reload.
    versions = {get_url(lab.url + "/")[1].get("x-app-version") for attempt in range(10)}
    assert versions == {"2.0.0"}


def test_without_persist_a_reload_forgets(lab, run_module):
    run_module(haproxy_server.main, args(lab, servers=["be_shop/b"], weight="3", persist=False))
    lab.reload()
    assert lab.servers()["be_shop/b"]["srv_uweight"] == "20"


def test_check_mode_reports_but_leaves_the_lb_untouched(lab, run_module):
    before = lab.servers()
    out = run_module(haproxy_server.main, args(lab, servers=["be_shop/*"], state="maint", weight="1"),
                     check_mode=True, diff=True)
    assert out["changed"] is True
    assert [s["after"]["admin_state"] for s in out["servers"]] == ["maint", "maint"]
    assert "be_shop/a: state=ready weight=10" in out["diff"]["before"]
    assert "be_shop/a: state=maint weight=1" in out["diff"]["after"]
    after = lab.servers()
    assert {k: (v["srv_admin_state"], v["srv_uweight"]) for k, v in after.items()} == \
        {k: (v["srv_admin_state"], v["srv_uweight"]) for k, v in before.items()}
    assert not os.path.exists(lab.state_file)


def test_two_hundred_servers_in_one_call(haproxy_lab, run_app, run_module):
    url = run_app()[1]
    lab = haproxy_lab({"be_many": ["s%03d %s" % (n, addr(url)) for n in range(200)]})
    out = run_module(haproxy_server.main, args(lab, servers=["be_many/*"], state="drain"))
    assert out["changed"] is True and len(out["servers"]) == 200
    assert all(s["after"]["admin_state"] == "drain" and s["drained"] for s in out["servers"])
    assert {row["srv_admin_state"] for row in lab.servers().values()} == {"8"}
    out = run_module(haproxy_server.main, args(lab, servers=["be_many/*"], state="ready", weight="100%"))
    assert sum(s["changed"] for s in out["servers"]) == 200
    assert {row["srv_admin_state"] for row in lab.servers().values()} == {"0"}


def test_tcp_socket(haproxy_lab, run_app, run_module):
    url = run_app()[1]
    lab = haproxy_lab({"be": ["a %s" % addr(url)]}, tcp_socket=True)
    out = run_module(haproxy_server.main, args(lab, socket="tcp://127.0.0.1:%d" % lab.tcp_port, servers=["a"],
                                               weight="2"))
    assert out["changed"] is True and lab.servers()["be/a"]["srv_uweight"] == "2"


def test_socket_missing_is_a_clear_error(run_module, tmp_path):
    out = run_module(haproxy_server.main, {"socket": str(tmp_path / "admin.sock"), "servers": ["a"], "state": "drain",
                                           "state_file": str(tmp_path / "state")})
    assert out["failed"] is True
    assert "admin.sock does not exist: is HAProxy running" in out["msg"]


@pytest.mark.parametrize("extra, message", [
    ({"weight": "300"}, "HAProxy weights are 0-256"),
    ({"weight": "x"}, "expected an integer 0-256 or a percentage"),
    ({"drain_timeout": 0}, "drain_timeout must be above 0"),
    ({"servers": [""]}, "servers: give at least one non-empty selector"),
    ({"state_file": "/nonexistent/dir/state"}, "state_file: directory /nonexistent/dir does not exist"),
])
def test_bad_input_fails_before_touching_the_lb(lab, run_module, extra, message):
    params = args(lab, servers=["be_shop/a"], state="maint")
    params.update(extra)
    out = run_module(haproxy_server.main, params)
    assert out["failed"] is True and message in out["msg"]
    assert lab.servers()["be_shop/a"]["srv_admin_state"] == "0"


def test_something_to_do_is_required(lab, run_module):
    out = run_module(haproxy_server.main, args(lab, servers=["a"]))
    assert out["failed"] is True
    assert "one of the following is required: state, weight, health_checks, agent_checks" in out["msg"]


def test_health_checks_off_and_on(lab, run_module):
    out = run_module(haproxy_server.main, args(lab, servers=["be_shop/*"], health_checks=False))
    assert out["changed"] is True
    assert [s["after"]["health_checks"] for s in out["servers"]] == [False, False]
    assert {lab.servers()[k]["srv_check_state"] for k in ("be_shop/a", "be_shop/b")} == {"2"}
    again = run_module(haproxy_server.main, args(lab, servers=["be_shop/*"], health_checks=False))
    assert again["changed"] is False
    back = run_module(haproxy_server.main, args(lab, servers=["be_shop/*"], health_checks=True))
    assert back["changed"] is True and lab.servers()["be_shop/a"]["srv_check_state"] == "6"


def test_enabling_checks_the_config_lacks_fails_before_any_change(lab, run_module):
    # be_other/a has no 'check': nothing to enable there.
    out = run_module(haproxy_server.main, args(lab, servers=["a"], state="drain", health_checks=True))
    assert out["failed"] is True
    assert "cannot enable checks that the HAProxy config does not define: be_other/a (health)" in out["msg"]
    assert lab.servers()["be_shop/a"]["srv_admin_state"] == "0"


def test_shutdown_sessions_cuts_at_once(lab, run_module, get_url):
    lab.cli("set server be_shop/b state maint")
    thread, result = background_get(get_url, lab.url + "/slow?s=10")
    wait_sessions(lab, "be_shop/a")
    started = time.monotonic()
    out = run_module(haproxy_server.main, args(lab, servers=["be_shop/a"], state="maint", shutdown_sessions=True))
    thread.join(10)
    assert time.monotonic() - started < 5  # the session would last 10 s
    assert out["servers"][0]["forced"] is True and out["servers"][0]["after"]["sessions"] == 0
    assert result["answer"][0] != 200
    bad = run_module(haproxy_server.main, args(lab, servers=["be_shop/a"], state="drain", shutdown_sessions=True))
    assert bad["failed"] is True and "shutdown_sessions needs state=maint" in bad["msg"]


def test_percentages_above_100_are_allowed_within_256(lab, run_module):
    out = run_module(haproxy_server.main, args(lab, servers=["be_shop/a"], weight="150%"))
    assert out["changed"] is True and lab.servers()["be_shop/a"]["srv_uweight"] == "15"
    out = run_module(haproxy_server.main, args(lab, servers=["be_other/a"], weight="1000%"))
    assert out["failed"] is True and "gives 300; HAProxy weights are 0-256" in out["msg"]


def test_a_change_refused_half_way_is_still_saved(haproxy_lab, run_app, run_module):
    """static-rr refuses weight changes: the drain sent before that must survive a reload."""
    url = run_app()[1]
    lab = haproxy_lab({"be": ["a %s" % addr(url), "b %s" % addr(url)]}, backend_options={"be": ["balance static-rr"]})
    out = run_module(haproxy_server.main, args(lab, servers=["be/a", "be/b"], state="drain", weight="3"))
    assert out["failed"] is True and "HAProxy refused" in out["msg"]
    assert lab.servers()["be/a"]["srv_admin_state"] == "8"
    lab.reload()
    assert lab.servers()["be/a"]["srv_admin_state"] == "8"
