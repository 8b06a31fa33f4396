"""fleet.rollout.rollout_report writes the JSON, the Markdown and the PNG timeline (matplotlib is optional)."""

from __future__ import annotations

import builtins
import json
import os
import struct

from ansible_collections.fleet.rollout.plugins.modules import rollout_report

T0 = 1796000000.0


def args(dest, **kwargs):
    base = {
        "dest": str(dest), "name": "shop-r1",
        "run": {"service": "shop", "strategy": "canary", "version": "2.0.0", "outcome": "promoted", "id": "r1",
                "owner": "ops@ctl", "since": str(T0), "until": T0 + 3},
        "event": {"steps": [{"step": 10, "started": T0 + 1, "judged": T0 + 2, "verdict": "pass"}]},
        "timelines": {"lb1": [{"t": T0 + i, "requests": 10, "errors": 0, "maintenance": 0,
                               "by_server": {"main/app1": [i * 3, 0], "main/app2": [10 - i * 3, 0]}}
                              for i in range(3)]},
        "servers": {"main/app1": ["app1", "main"], "main/app2": ["app2", "main"]},
        "releases": {"app1/main": [{"time": "2026-11-30T00:53:20Z", "version": "2.0.0"}],
                     "app2/main": [{"time": "2026-11-30T00:40:00Z", "version": "1.0.0"}]},
    }
    base.update(kwargs)
    return base


def png_size(path):
    with open(path, "rb") as handle:
        head = handle.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


def test_writes_json_markdown_and_png(tmp_path, run_module):
    out = run_module(rollout_report.main, args(tmp_path / "reports"))
    assert out["changed"] is True, out
    assert out["json"] == str(tmp_path / "reports" / "shop-r1.json")
    assert out["png"] == str(tmp_path / "reports" / "shop-r1.png")
    report = json.loads(open(out["json"], encoding="utf-8").read())
    assert report["totals"]["requests"] == 30
    assert report["totals"]["by_version"] == {"1.0.0": {"requests": 21, "errors": 0},
                                              "2.0.0": {"requests": 9, "errors": 0}}
    assert [s["share"] for s in report["series"]] == [{"1.0.0": 100.0}, {"1.0.0": 70.0, "2.0.0": 30.0},
                                                      {"1.0.0": 40.0, "2.0.0": 60.0}]
    assert png_size(out["png"]) == (1100, 650)
    text = open(out["markdown"], encoding="utf-8").read()
    assert "![traffic share per version and error rate](shop-r1.png)" in text and "`series` in `shop-r1.json`" in text
    assert [m["label"] for m in out["marks"]] == ["step 10 %", "PASS"]


def test_without_matplotlib_json_and_markdown_still_appear(tmp_path, run_module, monkeypatch):
    real_import = builtins.__import__

    def no_matplotlib(name, *rest, **kwargs):
        if name.split(".")[0] == "matplotlib":
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *rest, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    out = run_module(rollout_report.main, args(tmp_path))
    assert out["png"] is None and not os.path.exists(tmp_path / "shop-r1.png")
    assert os.path.exists(out["json"]) and "![" not in open(out["markdown"], encoding="utf-8").read()


def test_check_mode_writes_nothing(tmp_path, run_module):
    out = run_module(rollout_report.main, args(tmp_path / "reports"), check_mode=True)
    assert out["changed"] is False and out["totals"]["requests"] == 30
    assert not os.path.exists(tmp_path / "reports")


def test_bad_input_is_refused_naming_it(tmp_path, run_module):
    out = run_module(rollout_report.main, args(tmp_path, name="../x", run={"since": "soon"},
                                               servers={"main/app1": "app1"}))
    assert out["failed"]
    assert "name: expected a file name" in out["msg"] and "run.since: expected epoch seconds, got 'soon'" in out["msg"]
    assert "run.until: expected epoch seconds" in out["msg"] and "servers: expected [host, slot]" in out["msg"]
    assert os.listdir(tmp_path) == []
