"""Building the rollout report: versions from the release histories, the LBs' buckets merged, steps marked."""

from __future__ import annotations

from ansible_collections.fleet.rollout.plugins.module_utils._rollout_report import (
    build, markdown, marks, release_changes, version_at,
)

# app1 went from 1.0.0 to 2.0.0 at 1796000010 (2026-11-30T00:53:30Z); app2 stayed on 1.0.0.
HISTORY_APP1 = [{"time": "2026-11-30T00:53:20Z", "version": "1.0.0"}, {"time": "2026-11-30T00:53:30Z", "version": "2.0.0"}]
HISTORY_APP2 = [{"time": "2026-11-30T00:40:00Z", "version": "1.0.0"}]
T0 = 1796000000.0


def bucket(t, by_server, errors=0):
    return {"t": t, "requests": sum(n for n, _e in by_server.values()), "errors": errors, "maintenance": 0,
            "by_server": by_server}


def test_release_changes_and_version_at():
    changes = release_changes(HISTORY_APP1 + [{"time": "not a time", "version": "x"}, {"version": "y"}, "junk"])
    assert changes == [(T0, "1.0.0"), (T0 + 10, "2.0.0")]
    # A release that failed its gate: the host is back on the one it came from.
    failed = release_changes(HISTORY_APP1 + [{"time": "2026-11-30T00:53:40Z", "version": "2.0.1-bad", "from": "2.0.0",
                                              "outcome": "failed"}])
    assert version_at(failed, T0 + 25) == "2.0.0"
    assert version_at(changes, T0 - 1) == "unknown"
    assert version_at(changes, T0 + 9.9) == "1.0.0"
    assert version_at(changes, T0 + 10) == "2.0.0"


def test_build_merges_the_lbs_and_splits_by_version():
    servers = {"main/app1": ["app1", "main"], "main/app2": ["app2", "main"]}
    changes = {"app1/main": release_changes(HISTORY_APP1), "app2/main": release_changes(HISTORY_APP2)}
    timelines = {
        "lb1": [bucket(T0 + 5, {"main/app1": [10, 0], "main/app2": [10, 0]}),
                bucket(T0 + 15, {"main/app1": [5, 1], "main/app2": [15, 0]}, errors=1)],
        "lb2": [bucket(T0 + 5, {"main/app2": [20, 0]}), bucket(T0 + 15, {"main/app1": [15, 0], "main/app9": [5, 0]})],
        "lb3": None,
    }
    run = {"service": "shop", "strategy": "canary", "version": "2.0.0", "outcome": "promoted", "id": "r1",
           "since": T0, "until": T0 + 20}
    report = build(run, {"steps": [{"step": 50, "started": T0 + 10, "judged": T0 + 18, "verdict": "pass",
                                    "summary": "PASS: canary 20 req"}]}, timelines, servers, changes)
    assert report["lbs"] == ["lb1", "lb2"] and report["lbs_unread"] == ["lb3"]
    first, second = report["series"]
    assert (first["requests"], first["share"]) == (40, {"1.0.0": 100.0})
    # 20 on 2.0.0 (app1 after its change), 15 on 1.0.0, 5 on a server the inventory does not know.
    assert second["by_version"] == {"2.0.0": [20, 1], "1.0.0": [15, 0], "unknown": [5, 0]}
    assert second["share"] == {"1.0.0": 37.5, "2.0.0": 50.0, "unknown": 12.5}
    assert second["error_rate"] == 2.5
    assert report["totals"] == {"requests": 80, "errors": 1, "maintenance": 0, "error_rate": 1.25,
                                "by_version": {"1.0.0": {"requests": 55, "errors": 0},
                                               "2.0.0": {"requests": 20, "errors": 1},
                                               "unknown": {"requests": 5, "errors": 0}}}
    assert [(m["label"], m["kind"]) for m in report["marks"]] == [("step 50 %", "step"), ("PASS", "verdict")]
    assert report["run"]["seconds"] == 20.0

    text = markdown(report, "shop-r1.png", "shop-r1.json")
    assert text.startswith("# canary of shop 2.0.0: promoted\n")
    assert "| failed (5xx or no answer) | 1 (1.250 %) |" in text
    assert "| 2.0.0 | 20 | 1 |" in text and "| step 50 % |" in text and "PASS: canary 20 req" in text
    assert "![traffic share per version and error rate](shop-r1.png)" in text
    assert "| LBs whose log could not be read | lb3 |" in text
    assert "![" not in markdown(report, None, "shop-r1.json")


def test_marks_from_batches_and_flips():
    event = {"batch_started": [T0 + 1, T0 + 30], "flipped_at": {"lb1": T0 + 50.5, "lb2": T0 + 50.2},
             "flipped_back_at": {"lb1": None}, "outcome": "succeeded"}
    assert [(m["label"], round(m["t"] - T0, 1)) for m in marks(event, T0)] == [
        ("batch 1", 1.0), ("batch 2", 30.0), ("flipped", 50.2)]
