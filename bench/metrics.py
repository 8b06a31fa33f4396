"""What bench/bench_strategies.py computes from the probe's records and the playbooks' output: pure
functions, unit-tested on their own."""

from __future__ import annotations

import os
import re
import sys

# What counts as a failed request is the probe's rule: one definition for the probe, the tests and the bench.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools", "probe"))
from rollout_probe import is_failed  # noqa: E402  pylint: disable=wrong-import-position


def downtime(records: list[dict]) -> float:
    """The longest downtime any one target (LB address) showed: see ``downtime_by_target``. Each target
    on its own, because users of an LB that is down while the other serves are down, though the two
    LBs' records interleaved would show a success between every two failures."""
    return max(downtime_by_target(records).values(), default=0.0)


def downtime_by_target(records: list[dict]) -> dict[str, float]:
    """Per target, the longest run of failed requests (no answer, 4xx or 5xx; in order of start, no
    success between): first start to last end."""
    by_target: dict[str, list[dict]] = {}
    for r in records:
        by_target.setdefault(r.get("target") or "-", []).append(r)
    return {target: _longest_failure_run(rs) for target, rs in sorted(by_target.items())}


def _longest_failure_run(records: list[dict]) -> float:
    longest, run_start, run_end = 0.0, None, None
    for r in sorted(records, key=lambda r: r["t"]):
        if is_failed(r, fail_on_4xx=True):
            run_start = r["t"] if run_start is None else run_start
            run_end = max(run_end or 0.0, r["t"] + r["dur"])
            longest = max(longest, run_end - run_start)
        else:
            run_start = run_end = None
    return round(longest, 3)


def switch_window(records: list[dict], old: str, new: str) -> float | None:
    """How long users saw both releases: the first request answered by ``new`` to the last one answered by
    ``old`` (by start); 0 when the switch was clean, None when one of them never answered."""
    first_new = min((r["t"] for r in records if r["version"] == new), default=None)
    last_old = max((r["t"] for r in records if r["version"] == old), default=None)
    if first_new is None or last_old is None:
        return None
    return round(max(0.0, last_old - first_new), 3)


def exposed_share(records: list[dict], until: float, new: str) -> float | None:
    """Percent of the users seen before ``until`` who got at least one answer from ``new`` before it."""
    users = {r["user"] for r in records if r["t"] < until and r["user"] is not None}
    exposed = {r["user"] for r in records if r["t"] < until and r["version"] == new}
    return round(100.0 * len(exposed) / len(users), 1) if users else None


TASK_TIME = re.compile(r"^(.*?) -{3,} ([0-9.]+)s$")


def task_times(output: str) -> dict[str, float]:
    """Seconds per kind of step from profile_tasks' list (every task, in the order run)."""
    kinds = {"drain": 0.0, "restart": 0.0, "gate": 0.0}
    for line in output.splitlines():
        found = TASK_TIME.match(line.strip())
        if not found:
            continue
        name, seconds = found.group(1), float(found.group(2))
        if "Stop new requests" in name or "requests in flight" in name or "Mark the servers down" in name \
                or "old workers" in name:
            kinds["drain"] += seconds
        elif "Start or restart the service" in name:
            kinds["restart"] += seconds
        elif "answers healthy" in name or "sees the servers UP" in name or "reaches the servers' health" in name:
            kinds["gate"] += seconds
    return {k: round(v, 1) for k, v in kinds.items()}


def median(values: list[float]) -> float | None:
    """The median of ``values`` (the mean of the middle two for an even count); None for none."""
    ordered = sorted(values)
    if not ordered:
        return None
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2.0


def spread(values: list[float]) -> tuple[float, float] | None:
    """(min, max) of ``values``; None for none."""
    return (min(values), max(values)) if values else None


def ratio(numerator: float | None, denominator: float | None, digits: int = 2) -> float | None:
    """``numerator / denominator`` rounded; None when either is missing or the denominator is 0."""
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, digits)


def batch_count(hosts: int, batch) -> int:
    """How many batches a rollout over ``hosts`` takes with a batch size as ``serial`` takes one (a count or a
    percentage of the hosts, rounded down, at least 1)."""
    text = str(batch).strip()
    size = int(hosts * float(text[:-1]) / 100) if text.endswith("%") else int(text)
    size = max(1, size)
    return -(-hosts // size)


def side_summary(side: str, playbook: str, batch_size, runs: list[dict]) -> dict:
    """One side of a comparison: its runs as measured (each with rc, sent, failed, wall_s) and, over the runs
    that succeeded (rc 0; a failed run's wall time says nothing about the rollout), the median wall time and
    its min-max spread."""
    walls = [run["wall_s"] for run in runs if run.get("rc") == 0 and run.get("wall_s") is not None]
    low_high = spread(walls)
    found = median(walls)
    return {
        "side": side, "playbook": playbook, "batch_size": batch_size, "runs": runs, "ok_runs": len(walls),
        "median_wall_s": round(found, 1) if found is not None else None,
        "min_wall_s": low_high[0] if low_high else None, "max_wall_s": low_high[1] if low_high else None,
    }


def comparison(peer: dict, ours: dict) -> dict:
    """Both sides' summaries (side_summary) and the ratio ours/peer of their median wall times."""
    return {"sides": [peer, ours], "ratio_ours_peer": ratio(ours["median_wall_s"], peer["median_wall_s"])}


def bad_release(records: list[dict], ended: float, rc: int, outcome: str = "", bad: str = "2.0.1-bad",
                old: str = "1.0.0") -> dict:
    """What users met of a bad release: seconds from the first failed request (``is_failed``) to the start of the
    last request the bad release answered, and to the run's end (its rollback done); whether the run rolled it
    back on its own (failed, with the outcome the LBs' state recorded: failed or flipped_back - not a run refused
    before it started), and whether the requests after the run got ``old`` only (None: none answered)."""
    first = min((r["t"] for r in records if is_failed(r)), default=None)
    last_bad = max((r["t"] for r in records if r["version"] == bad), default=None)
    tail = {r["version"] for r in records if r["t"] > ended} - {None}
    return {
        "rolled_back": rc != 0 and outcome in ("failed", "flipped_back"),
        "first_failure_to_last_bad_s": None if first is None or last_bad is None else round(last_bad - first, 1),
        "first_failure_to_run_end_s": None if first is None else round(ended - first, 1),
        "back_on_old": tail == {old} if tail else None,
    }
