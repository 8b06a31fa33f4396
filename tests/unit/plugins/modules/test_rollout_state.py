"""fleet.rollout.rollout_state on a real directory."""

from __future__ import annotations

import json
import os

from ansible_collections.fleet.rollout.plugins.modules import rollout_state


def test_created_once_then_updated_with_history(run_module, tmp_path):
    args = {"service": "shop", "state_dir": str(tmp_path)}
    first = run_module(rollout_state.main, dict(args, initial={"active_pool": "blue"}))
    assert first["changed"] and first["created"]
    path = tmp_path / "shop" / "state.json"
    assert json.loads(path.read_text()) == {"service": "shop", "active_pool": "blue", "history": []}
    again = run_module(rollout_state.main, dict(args, initial={"active_pool": "green"}))
    assert again["changed"] is False and again["state"]["active_pool"] == "blue"
    flip = run_module(rollout_state.main, dict(args, update={"active_pool": "green", "pools": {"green": {"release": "2.0.0"}}},
                                               event={"action": "flip", "to": "green"}), diff=True)
    assert flip["changed"] and '"active_pool": "blue"' in flip["diff"]["before"]
    data = json.loads(path.read_text())
    assert data["active_pool"] == "green" and data["pools"] == {"green": {"release": "2.0.0"}}
    assert data["history"][0]["action"] == "flip" and data["history"][0]["time"] > 0
    merged = run_module(rollout_state.main, dict(args, update={"pools": {"blue": {"release": "1.0.0"}}}))
    assert merged["state"]["pools"] == {"green": {"release": "2.0.0"}, "blue": {"release": "1.0.0"}}
    read = run_module(rollout_state.main, args)
    assert read["changed"] is False and read["state"] == merged["state"]


def test_check_mode_writes_nothing(run_module, tmp_path):
    out = run_module(rollout_state.main, {"service": "shop", "state_dir": str(tmp_path), "initial": {"active_pool": "a"}},
                     check_mode=True)
    assert out["changed"] is True and out["state"]["active_pool"] == "a"
    assert not os.path.exists(tmp_path / "shop")


def test_bad_service_name_and_corrupt_file_are_clear_errors(run_module, tmp_path):
    out = run_module(rollout_state.main, {"service": "../etc", "state_dir": str(tmp_path)})
    assert out["failed"] and "service '../etc'" in out["msg"]
    # A trailing newline would name a directory "shop\n" next to shop's.
    out = run_module(rollout_state.main, {"service": "shop\n", "state_dir": str(tmp_path)})
    assert out["failed"] and not (tmp_path / "shop\n").exists()
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "state.json").write_text("{not json")
    out = run_module(rollout_state.main, {"service": "shop", "state_dir": str(tmp_path)})
    assert out["failed"] and "is not valid JSON" in out["msg"]


def test_reading_an_absent_state_creates_nothing(run_module, tmp_path):
    out = run_module(rollout_state.main, {"service": "shop", "state_dir": str(tmp_path)})
    assert out["changed"] is False and out["state"] is None
    assert not os.path.exists(tmp_path / "shop" / "state.json")
