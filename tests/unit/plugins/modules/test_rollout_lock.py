"""fleet.rollout.rollout_lock on a real directory."""

from __future__ import annotations

import json

import pytest

from ansible_collections.fleet.rollout.plugins.module_utils import _rollout_lock
from ansible_collections.fleet.rollout.plugins.modules import rollout_lock


def args(tmp_path, **kwargs):
    base = {"service": "shop", "state_dir": str(tmp_path), "owner": "alice@ctl"}
    base.update(kwargs)
    return base


def test_second_rollout_is_refused_with_the_owner(run_module, tmp_path):
    first = run_module(rollout_lock.main, args(tmp_path, info={"strategy": "ramped"}))
    assert first["changed"] and first["holder"]["owner"] == "alice@ctl"
    lock = json.loads((tmp_path / "shop" / "lock.json").read_text())
    assert lock["info"] == {"strategy": "ramped"} and lock["expires"] > lock["started"]
    other = run_module(rollout_lock.main, args(tmp_path, owner="bob@ctl"))
    assert other["failed"] and "shop is being rolled out by alice@ctl since" in other["msg"]
    assert other["holder"]["owner"] == "alice@ctl"
    assert json.loads((tmp_path / "shop" / "lock.json").read_text())["owner"] == "alice@ctl"


def test_the_owner_refreshes_and_releases(run_module, tmp_path):
    run_module(rollout_lock.main, args(tmp_path))
    started = json.loads((tmp_path / "shop" / "lock.json").read_text())["started"]
    again = run_module(rollout_lock.main, args(tmp_path))
    assert again["changed"] and again["holder"]["started"] == started  # a rerun resumes the same rollout
    refused = run_module(rollout_lock.main, args(tmp_path, owner="bob@ctl", state="released"))
    assert refused["failed"] and "belongs to alice@ctl" in refused["msg"]
    done = run_module(rollout_lock.main, args(tmp_path, state="released"))
    assert done["changed"] and done["holder"] is None and not (tmp_path / "shop" / "lock.json").exists()
    assert run_module(rollout_lock.main, args(tmp_path, state="released"))["changed"] is False


def test_a_stale_lock_is_taken_over_and_force_breaks_a_live_one(tmp_path):
    state_dir = str(tmp_path)
    _rollout_lock.converge(state_dir, "shop", "acquired", "alice@ctl", ttl=60, now=lambda: 1000.0)
    taken = _rollout_lock.converge(state_dir, "shop", "acquired", "bob@ctl", ttl=60, now=lambda: 1061.0)
    assert taken["stale"] and taken["broken"]["owner"] == "alice@ctl" and taken["holder"]["owner"] == "bob@ctl"
    forced = _rollout_lock.converge(state_dir, "shop", "acquired", "carol@ctl", force=True, now=lambda: 1062.0)
    assert not forced["stale"] and forced["broken"]["owner"] == "bob@ctl"
    assert _rollout_lock.converge(state_dir, "shop", "query", "", now=lambda: 1063.0)["holder"]["owner"] == "carol@ctl"


def test_check_mode_and_bad_input(run_module, tmp_path):
    out = run_module(rollout_lock.main, args(tmp_path), check_mode=True)
    assert out["changed"] and not (tmp_path / "shop").exists()
    assert "ttl must be above 0" in run_module(rollout_lock.main, args(tmp_path, ttl=0))["msg"]
    assert "at most 604800 seconds (7 days), got 1e+12" in run_module(rollout_lock.main, args(tmp_path, ttl=1e12))["msg"]
    # An empty owner would write a lock that no one could refresh or give back.
    assert "owner must name who" in run_module(rollout_lock.main, args(tmp_path, owner=""))["msg"]
    assert not (tmp_path / "shop" / "lock.json").exists()
    assert "state is acquired but all of the following are missing: owner" in \
        run_module(rollout_lock.main, {"service": "shop", "state_dir": str(tmp_path)})["msg"]
    assert "service '../x'" in run_module(rollout_lock.main, args(tmp_path, service="../x"))["msg"]


def test_take_over_breaks_only_the_named_gone_holder(run_module, tmp_path):
    run_module(rollout_lock.main, args(tmp_path, owner="alice@ctl [run 1]"))
    # Someone else's live lock is refused even with take_over naming another (gone) owner.
    refused = run_module(rollout_lock.main, args(tmp_path, owner="bob@ctl [run 2]", take_over="alice@ctl [run 0]"))
    assert refused["failed"] and refused["holder"]["owner"] == "alice@ctl [run 1]"
    taken = run_module(rollout_lock.main, args(tmp_path, owner="bob@ctl [run 2]", take_over="alice@ctl [run 1]"))
    assert taken["changed"] and taken["broken"]["owner"] == "alice@ctl [run 1]"
    assert json.loads((tmp_path / "shop" / "lock.json").read_text())["owner"] == "bob@ctl [run 2]"


@pytest.mark.parametrize("content, reason", [
    ("{not json", "not JSON"),
    ("[1]", "not a JSON object"),
    ('{"expires": 9999999999, "started": 1}', "no owner"),
    ('{"owner": "alice@ctl", "expires": null, "started": 1}', "expires is null, not a time"),
    ('{"owner": "alice@ctl", "expires": 9999999999, "started": "x"}', 'started is "x", not a time'),
    ('{"owner": "alice@ctl", "expires": true, "started": 1}', "expires is true, not a time"),
])
def test_a_corrupt_lock_is_refused_until_forced(run_module, tmp_path, content, reason):
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "lock.json").write_text(content)
    query = run_module(rollout_lock.main, args(tmp_path, state="query"))
    assert query["holder"]["corrupt"] == reason and not query["stale"]
    refused = run_module(rollout_lock.main, args(tmp_path))
    assert refused["failed"] and "is corrupt: %s" % reason in refused["msg"] and "force=true" in refused["msg"]
    assert (tmp_path / "shop" / "lock.json").read_text() == content
    forced = run_module(rollout_lock.main, args(tmp_path, force=True))
    assert forced["changed"] and forced["broken"]["corrupt"] == reason
    assert json.loads((tmp_path / "shop" / "lock.json").read_text())["owner"] == "alice@ctl"
