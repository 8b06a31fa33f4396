"""fleet.rollout.haproxy_map against a real HAProxy routing real requests."""

from __future__ import annotations

import threading
import time

import pytest

from ansible_collections.fleet.rollout.plugins.module_utils._haproxy_map import (
    MapEntryError, MapNotAppliedError, converge, normalize_entries)
from ansible_collections.fleet.rollout.plugins.modules import haproxy_map


def addr(url):
    return url[len("http://"):]


@pytest.fixture
def pools(haproxy_lab, run_app):
    """Blue/green by a map: svc → backend; no match → be_none (no servers: 503)."""
    blue = run_app(version="1.0.0")[1]
    green = run_app(version="2.0.0")[1]
    return haproxy_lab(
        {"be_blue": ["a %s" % addr(blue)], "be_green": ["a %s" % addr(green)], "be_none": []},
        maps={"pools.map": "svc be_blue\n"},
        frontend_rules=["use_backend %[str(svc),map({maps}/pools.map,be_none)]"],
    )


def versions(get_url, url, count=10):
    return [get_url(url + "/")[1].get("x-app-version") for attempt in range(count)]


def test_flip_switches_traffic_and_survives_reload(pools, run_module, get_url):
    path = pools.maps["pools.map"]
    assert set(versions(get_url, pools.url)) == {"1.0.0"}
    sent = time.time()
    out = run_module(haproxy_map.main, {"socket": pools.socket, "map": path, "entries": {"svc": "be_green"}}, diff=True)
    assert out["changed"] and out["runtime_changed"] and out["file_changed"]
    assert sent <= out["applied_at"] <= time.time()
    assert out["previous_entries"] == [{"key": "svc", "value": "be_blue"}]
    assert set(versions(get_url, pools.url)) == {"2.0.0"}
    with open(path, encoding="utf-8") as handle:
        assert handle.read().splitlines()[1:] == ["svc be_green"]
    assert out["diff"]["before"] == "svc be_blue\n" and out["diff"]["after"].endswith("svc be_green\n")
    pools.reload()
    assert set(versions(get_url, pools.url)) == {"2.0.0"}
    again = run_module(haproxy_map.main, {"socket": pools.socket, "map": path, "entries": {"svc": "be_green"}})
    assert again["changed"] is False and again["applied_at"] is None


def test_check_mode_changes_neither_the_lb_nor_the_file(pools, run_module, get_url):
    path = pools.maps["pools.map"]
    out = run_module(haproxy_map.main, {"socket": pools.socket, "map": path, "entries": {"svc": "be_green"}},
                     check_mode=True)
    assert out["changed"] is True
    assert set(versions(get_url, pools.url)) == {"1.0.0"}
    with open(path, encoding="utf-8") as handle:
        assert handle.read() == "svc be_blue\n"


def test_map_swap_is_atomic_for_concurrent_requests(haproxy_lab, run_app, run_module, get_url):
    """Requests routed while 100-entry tables are swapped always find a complete table."""
    blue = run_app(version="1.0.0")[1]
    green = run_app(version="2.0.0")[1]
    table = {"%d:%d" % (n, n): "be_blue" for n in range(100)}
    lab = haproxy_lab(
        {"be_blue": ["a %s" % addr(blue)], "be_green": ["a %s" % addr(green)], "be_none": []},
        maps={"split.map": "".join("%s %s\n" % item for item in table.items())},
        frontend_rules=["use_backend %[rand(100),map_int({maps}/split.map,be_none)]"],
    )
    path = lab.maps["split.map"]
    statuses = []
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            statuses.append(get_url(lab.url + "/", timeout=5)[0])

    readers = [threading.Thread(target=reader) for n in range(4)]
    for thread in readers:
        thread.start()
    try:
        # At least 20 swaps, and as many more as it takes for the readers to
        # have sent plenty of requests during them (bounded).
        for swap in range(400):
            if swap >= 20 and len(statuses) > 200:
                break
            backend = "be_green" if swap % 2 == 0 else "be_blue"
            out = run_module(haproxy_map.main, {"socket": lab.socket, "map": path,
                                                "entries": {key: backend for key in table}})
            assert out["runtime_changed"] is True
    finally:
        stop.set()
        for thread in readers:
            thread.join(10)
    assert len(statuses) > 100
    assert set(statuses) == {200}, "a request found no map entry (503) while the map was swapped"


def test_unknown_map_fails_before_any_change(pools, run_module, tmp_path):
    path = str(tmp_path / "unknown.map")
    out = run_module(haproxy_map.main, {"socket": pools.socket, "map": path, "entries": {"svc": "x"}})
    assert out["failed"] is True and "Unknown map identifier" in out["msg"]
    assert not (tmp_path / "unknown.map").exists()


def test_file_only_mode_before_haproxy_runs(run_module, tmp_path):
    path = str(tmp_path / "pools.map")
    out = run_module(haproxy_map.main, {"socket": str(tmp_path / "none.sock"), "map": path, "runtime": False,
                                        "entries": [{"key": "svc", "value": "be_blue"}]})
    assert out["changed"] is True and out["runtime_changed"] is False
    with open(path, encoding="utf-8") as handle:
        assert handle.read().endswith("svc be_blue\n")


@pytest.mark.parametrize("entries, message", [
    ({"a b": "x"}, "without spaces"),
    ([{"key": "a", "value": "x\ny"}], "one line"),
    ([{"key": "a"}, {"key": "a"}], "appears twice"),
    ([{"k": "a"}], "expected {key: ..., value: ...}"),
    ("svc be_blue", "expected a dict or a list"),
])
def test_bad_entries_are_clear_errors(pools, run_module, entries, message):
    out = run_module(haproxy_map.main, {"socket": pools.socket, "map": pools.maps["pools.map"], "entries": entries})
    assert out["failed"] is True and message in out["msg"]


def test_entry_order_is_kept():
    assert normalize_entries([{"key": "10:99", "value": "b"}, {"key": "0:9", "value": "a"}]) == [("10:99", "b"), ("0:9", "a")]
    with pytest.raises(MapEntryError):
        normalize_entries({"": "x"})


class _CommitIgnored:
    """A runtime client whose commits HAProxy accepts but whose map keeps its old entries: the module must say
    so, not report the route as set."""

    def __init__(self, entries):
        self.entries = entries
        self.sent = []

    def show_map(self, _map_ref):
        return list(self.entries)

    def execute(self, command):
        self.sent.append(command)
        return "New version created: 7\n"

    def run_set(self, command, payload=None):
        self.sent.append(command)


def test_a_commit_the_running_map_does_not_show_fails_naming_map_and_entries(tmp_path):
    client = _CommitIgnored([("svc", "be_blue")])
    with pytest.raises(MapNotAppliedError) as caught:
        converge(client, str(tmp_path / "pools.map"), {"svc": "be_green"}, write_file=False)
    assert "commit map @7 %s" % (tmp_path / "pools.map") in client.sent
    assert str(caught.value) == ("the running map %s does not hold the entries after the commit: svc be_blue, "
                                 "expected svc be_green" % (tmp_path / "pools.map"))
