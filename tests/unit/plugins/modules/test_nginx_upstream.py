"""fleet.rollout.nginx_upstream against a real nginx with real backends."""

from __future__ import annotations

import fcntl
import os
import threading
import time

import pytest

from ansible_collections.fleet.rollout.plugins.modules import nginx_upstream


def addr(url):
    return url[len("http://"):]


def routing(url, name="pool", **server):
    """One upstream with the app at ``url``, chosen by $fleet_pool (header X-Variant may pick 'other')."""
    entry = {"address": addr(url)}
    entry.update(server)
    return {
        "upstreams": [{"name": name, "servers": [entry]}],
        "maps": [{"source": "$http_x_variant", "variable": "$fleet_pool", "default": name}],
    }


def read(path):
    with open(path, encoding="utf-8") as handle:
        return handle.read()


@pytest.fixture
def apps(run_app):
    return {"old": run_app(version="1.0.0")[1], "new": run_app(version="2.0.0")[1]}


@pytest.fixture
def lab(nginx_lab, run_module, apps):
    """nginx running and routing everything to the 1.0.0 app through a file the module wrote."""
    out = run_module(nginx_upstream.main, nginx_lab.module_args(**routing(apps["old"])))
    assert out["changed"] is True and out["reloaded"] is False, out
    nginx_lab.start()
    assert nginx_lab.version() == "1.0.0"
    return nginx_lab


def background_get(lab, path):
    answer = {}

    def worker():
        answer["status"] = lab.get(path, timeout=30)[0]

    thread = threading.Thread(target=worker)
    thread.start()
    return thread, answer


def test_first_install_before_nginx_starts_warns(nginx_lab, run_module, apps):
    out = run_module(nginx_upstream.main, nginx_lab.module_args(**routing(apps["old"])))
    assert out["changed"] is True and out["reloaded"] is False and out["old_workers"] == 0
    assert "diff" not in out
    assert any("nginx is not running" in message and nginx_lab.pid_file in message for message in out["warnings"])
    assert read(nginx_lab.routing_file).startswith("# Managed by fleet.rollout.nginx_upstream")


def test_apply_switches_traffic_then_same_data_changes_nothing(lab, run_module, apps):
    workers = lab.workers()
    sent = time.time()
    out = run_module(nginx_upstream.main, lab.module_args(**routing(apps["new"])), diff=True)
    assert out["changed"] is True and out["reloaded"] is True and out["old_workers"] == 1
    assert sent <= out["applied_at"] <= time.time()
    assert out["path"] == lab.routing_file
    assert addr(apps["old"]) in out["diff"]["before"] and addr(apps["new"]) in out["diff"]["after"]
    assert out["diff"]["before_header"] == out["diff"]["after_header"] == lab.routing_file
    assert [lab.version() for count in range(10)] == ["2.0.0"] * 10
    assert lab.workers() - workers

    time.sleep(0.3)  # let the old generation exit, so the comparison below sees only live workers
    workers = lab.workers()
    again = run_module(nginx_upstream.main, lab.module_args(**routing(apps["new"])), diff=True)
    assert again["changed"] is False and again["reloaded"] is False and again["old_workers"] == 0
    assert again["applied_at"] is None
    assert again["diff"]["before"] == again["diff"]["after"]
    assert lab.workers() == workers


def test_routing_blocks_pick_the_upstream_per_request(lab, run_module, apps):
    data = {
        "upstreams": [{"name": "blue", "servers": [{"address": addr(apps["old"])}]},
                      {"name": "green", "method": "least_conn", "keepalive": 4,
                       "servers": [{"address": addr(apps["new"]), "max_fails": 2, "fail_timeout": 5}]}],
        "maps": [{"source": "$http_x_variant", "variable": "$fleet_pool", "default": "$fleet_split",
                  "entries": [{"key": "green", "value": "green"}, {"key": "~*^blue", "value": "blue"}]}],
        "split_clients": [{"key": "${http_x_user}", "variable": "$fleet_split",
                           "buckets": [{"percent": "*", "value": "blue"}, {"percent": 50, "value": "green"}]}],
    }
    out = run_module(nginx_upstream.main, lab.module_args(**data))
    assert out["changed"] is True and out["reloaded"] is True, out
    assert lab.version(headers={"X-Variant": "green"}) == "2.0.0"
    assert lab.version(headers={"X-Variant": "Blue-team"}) == "1.0.0"
    by_user = {user: lab.version(headers={"X-User": user}) for user in ("u%d" % n for n in range(40))}
    assert set(by_user.values()) == {"1.0.0", "2.0.0"}
    assert all(lab.version(headers={"X-User": user}) == version for user, version in by_user.items())  # sticky


def test_check_mode_reports_the_change_and_touches_nothing(lab, run_module, apps):
    before = read(lab.routing_file)
    workers = lab.workers()
    out = run_module(nginx_upstream.main, lab.module_args(**routing(apps["new"])), check_mode=True, diff=True)
    assert out["changed"] is True and out["reloaded"] is False
    assert out["diff"]["before"] == before and addr(apps["new"]) in out["diff"]["after"]
    assert read(lab.routing_file) == before
    assert lab.workers() == workers
    assert lab.version() == "1.0.0"


def test_nginx_rejects_the_file_so_the_old_one_stays_and_serves(lab, run_module, apps):
    before = read(lab.routing_file)
    workers = lab.workers()
    data = routing(apps["new"])
    data["upstreams"][0]["servers"].append({"address": "nonexistent.invalid:80"})
    out = run_module(nginx_upstream.main, lab.module_args(**data))
    assert out["failed"] is True and out["changed"] is False
    assert 'host not found in upstream "nonexistent.invalid:80"' in out["msg"]
    assert "previous file was restored" in out["msg"]
    assert read(lab.routing_file) == before
    assert lab.workers() == workers
    assert lab.version() == "1.0.0"


def test_an_apply_waits_while_another_one_holds_nginx(lab, run_module, apps):
    # Another service's write-validate-reload under way (the lock it holds on nginx's main file): this one
    # writes nothing until that one is done, then applies as usual.
    before = read(lab.routing_file)
    done = {}
    with open(lab.config, "rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        thread = threading.Thread(target=lambda: done.update(
            run_module(nginx_upstream.main, lab.module_args(**routing(apps["new"])))))
        thread.start()
        time.sleep(1.0)
        assert thread.is_alive() and read(lab.routing_file) == before and lab.version() == "1.0.0"
        fcntl.flock(held.fileno(), fcntl.LOCK_UN)
    thread.join(30)
    assert done["changed"] is True and done["reloaded"] is True, done
    assert lab.version() == "2.0.0"


def test_drain_waits_for_the_old_worker_and_the_request_in_flight_succeeds(lab, run_module, apps):
    thread, answer = background_get(lab, "/slow?s=2")
    time.sleep(0.4)  # the request is now in the current worker
    started = time.monotonic()
    out = run_module(nginx_upstream.main, lab.module_args(wait_workers=True, worker_timeout=20, **routing(apps["new"])))
    took = time.monotonic() - started
    thread.join(10)
    assert answer["status"] == 200
    assert out["changed"] is True and out["reloaded"] is True and out["old_workers"] == 1
    assert 1.0 <= out["workers_exited_seconds"] <= 6  # well below worker_timeout
    assert took >= out["workers_exited_seconds"]
    assert lab.version() == "2.0.0"


def test_drain_timeout_fails_clearly_but_the_new_config_is_active(lab, run_module, apps):
    thread, answer = background_get(lab, "/slow?s=3")
    time.sleep(0.4)
    out = run_module(nginx_upstream.main, lab.module_args(wait_workers=True, worker_timeout=0.5, **routing(apps["new"])))
    assert out["failed"] is True
    assert out["msg"].startswith("1 of 1 old nginx worker processes still running 0.5s after the reload")
    assert "the new configuration is active" in out["msg"]
    assert out["changed"] is True and out["reloaded"] is True and out["workers_exited_seconds"] is None
    assert lab.version() == "2.0.0"
    assert addr(apps["new"]) in read(lab.routing_file)
    thread.join(10)
    assert answer["status"] == 200


def test_drain_in_rounds_reports_what_is_left_then_the_drain(lab, run_module, apps):
    thread, answer = background_get(lab, "/slow?s=2")
    time.sleep(0.4)
    target = routing(apps["new"])
    target["upstreams"][0]["servers"].append({"address": addr(apps["old"]), "down": True})
    started = lab.module_args(on_timeout="report", **target)
    first = run_module(nginx_upstream.main, started)  # marks 1.0.0 down and reloads, without waiting
    assert first["changed"] is True and first["reloaded"] is True and first["workers_left"] is None
    rounds = []
    while not rounds or rounds[-1]["workers_left"]:
        rounds.append(run_module(nginx_upstream.main, dict(started, wait_workers=True, worker_timeout=0.5)))
        assert len(rounds) < 20
    thread.join(10)
    assert answer["status"] == 200
    assert all(r["changed"] is False and r["reloaded"] is False and r.get("failed") is not True for r in rounds)
    assert 3 <= len(rounds) <= 6, [r["workers_left"] for r in rounds]
    # The old worker still holds the slow request's connection to 1.0.0, and none to 2.0.0.
    assert all(r["old_workers"] == 1 and r["workers_left"] == 1 for r in rounds[:-1])
    assert all(r["connections_left"] == {addr(apps["new"]): 0, addr(apps["old"]): 1} for r in rounds[:-1])
    assert rounds[-1]["workers_left"] == 0 and rounds[-1]["workers_exited_seconds"] is not None
    assert rounds[-1]["connections_left"] == {addr(apps["new"]): 0, addr(apps["old"]): 0}
    # Nothing left shutting down: the next wait has nothing to wait for.
    again = run_module(nginx_upstream.main, dict(started, wait_workers=True, worker_timeout=0.5))
    assert again["old_workers"] == 0 and again["workers_left"] == 0


def test_state_absent_removes_the_file(lab, run_module, apps):
    other = os.path.join(lab.conf_d, "other.conf")
    extra = {"upstreams": [{"name": "spare", "servers": [{"address": addr(apps["new"])}]}]}
    assert run_module(nginx_upstream.main, lab.module_args(path=other, **extra))["reloaded"] is True
    workers = lab.workers()
    out = run_module(nginx_upstream.main, lab.module_args(path=other, state="absent"), diff=True)
    assert out["changed"] is True and out["reloaded"] is True
    assert "upstream spare" in out["diff"]["before"] and out["diff"]["after"] == ""
    assert not os.path.exists(other)
    assert lab.workers() - workers
    again = run_module(nginx_upstream.main, lab.module_args(path=other, state="absent"))
    assert again["changed"] is False and again["reloaded"] is False
    assert lab.version() == "1.0.0"


def test_state_absent_fails_and_keeps_the_file_while_nginx_still_uses_it(lab, run_module):
    before = read(lab.routing_file)
    out = run_module(nginx_upstream.main, lab.module_args(state="absent"))
    assert out["failed"] is True and out["changed"] is False
    assert 'unknown "fleet_pool" variable' in out["msg"]
    assert read(lab.routing_file) == before
    assert lab.version() == "1.0.0"


@pytest.mark.parametrize("args, expected", [
    ({"upstreams": [{"name": "pool", "servers": [{"address": "10.0.0.1:80", "weight": 0}]}]},
     "upstreams[0].servers[0].weight: must be at least 1, got 0"),
    ({"upstreams": [{"name": "pool", "servers": [{"address": "10.0.0.1:80"}]},
                    {"name": "x", "servers": [{"address": "10.0.0.1:80;evil"}]}]},
     "upstreams[1].servers[0].address: must not contain ;"),
    ({"upstreams": [{"name": "pool", "method": "hash", "hash_key": "$cookie_uid",
                     "servers": [{"address": "10.0.0.1:80", "backup": True}]}]},
     "upstreams[0].servers[0].backup: nginx does not allow backup servers with method=hash"),
    ({"maps": [{"source": "$cookie_v", "variable": "$fleet_pool", "entries": [{"key": "a}", "value": "b"}]}]},
     "maps[0].entries[0].key: must not contain }"),
    ({"split_clients": [{"key": "$remote_addr", "variable": "$fleet_pool",
                         "buckets": [{"percent": 70, "value": "a"}, {"percent": 40, "value": "b"}]}]},
     "split_clients[0].buckets: the percentages add up to 110, more than 100"),
    ({}, "state=present: give at least one of upstreams, maps or split_clients"),
    ({"state": "absent", "upstreams": [{"name": "pool", "servers": [{"address": "10.0.0.1:80"}]}]},
     "state=absent removes the file: upstreams, maps and split_clients must be empty"),
    ({"path": "relative.conf", "maps": [{"source": "$a", "variable": "$b"}]}, "path: expected an absolute path"),
    ({"worker_timeout": 0, "maps": [{"source": "$a", "variable": "$b"}]}, "worker_timeout must be above 0, got 0"),
])
def test_bad_input_fails_before_anything_changes(nginx_lab, run_module, args, expected):
    out = run_module(nginx_upstream.main, nginx_lab.module_args(**args))
    assert out["failed"] is True
    assert expected in out["msg"]
    assert not os.path.exists(nginx_lab.routing_file)
    assert os.listdir(nginx_lab.conf_d) == []


def test_argument_spec_errors_name_the_option(nginx_lab, run_module):
    out = run_module(nginx_upstream.main, nginx_lab.module_args(upstreams=[{"name": "pool", "servers": [{"weight": 2}]}]))
    assert out["failed"] is True and "address" in out["msg"]
    assert not os.path.exists(nginx_lab.routing_file)


def test_missing_nginx_binary_fails_before_writing(nginx_lab, run_module, apps):
    out = run_module(nginx_upstream.main, nginx_lab.module_args(nginx_binary="no-such-nginx", **routing(apps["old"])))
    assert out["failed"] is True and "nginx_binary: cannot find an executable 'no-such-nginx'" in out["msg"]
    assert not os.path.exists(nginx_lab.routing_file)
