# Copyright: fleet.rollout contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The report of one rollout run: what the LBs answered over time, by version, with the run's steps marked.

Inputs are what the roles already read: each LB's request-log timeline (``lb_request_log`` with
``timeline_interval``: per bucket, requests and errors per ``pool/server``), which host and slot each
``pool/server`` is, and each host's release history per slot (when each version went live there). A
request's version is the one its server's slot ran when it was answered, so the share per version needs
nothing from the application (no version header) and works behind HAProxy and nginx alike.
"""

from __future__ import annotations

import datetime
import json

UNKNOWN = "unknown"


def _epoch(value) -> float | None:
    """Epoch seconds from a number or an ISO-8601 UTC time (the release role's history)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return datetime.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(
                tzinfo=datetime.timezone.utc).timestamp()
        except ValueError:
            try:
                return float(value)
            except ValueError:
                return None
    return None


def release_changes(history) -> list[tuple[float, str]]:
    """(when, version) of each release that went live in a slot, oldest first, from the release role's history."""
    changes = []
    for entry in history or []:
        if not isinstance(entry, dict):
            continue
        when = _epoch(entry.get("time"))
        # A release that failed its gate names the release it tried; the host went back to "from".
        version = entry.get("from") if entry.get("outcome") == "failed" else entry.get("version")
        if when is not None and version:
            changes.append((when, str(version)))
    return sorted(changes)


def version_at(changes: list[tuple[float, str]], when: float) -> str:
    version = UNKNOWN
    for changed, name in changes:
        if changed > when:
            break
        version = name
    return version


def marks(event: dict, since: float) -> list[dict]:
    """The run's moments worth a line on the plot: canary steps and verdicts, ramped batches, flips."""
    found = []
    for index, step in enumerate(event.get("steps") or []):
        if not isinstance(step, dict):
            continue
        if _epoch(step.get("started")) is not None:
            found.append({"t": _epoch(step["started"]), "label": "step %s %%" % _number(step.get("step")),
                          "kind": "step"})
        if _epoch(step.get("judged")) is not None:
            found.append({"t": _epoch(step["judged"]), "label": str(step.get("verdict", "?")).upper(),
                          "kind": "verdict", "verdict": step.get("verdict"), "summary": step.get("summary", "")})
    for index, started in enumerate(event.get("batch_started") or []):
        if _epoch(started) is not None:
            found.append({"t": _epoch(started), "label": "batch %d" % (index + 1), "kind": "step"})
    for key in sorted(event):
        if not key.endswith("_at"):
            continue
        value = event[key]
        times = [_epoch(v) for v in value.values()] if isinstance(value, dict) else [_epoch(value)]
        times = [t for t in times if t is not None]
        if times:
            found.append({"t": min(times), "label": key[:-3].replace("_", " "), "kind": "event"})
    return sorted((m for m in found if m["t"] >= since - 60), key=lambda m: m["t"])


def _number(value) -> str:
    try:
        return ("%g" % float(value))
    except (TypeError, ValueError):
        return str(value)


def build(run: dict, event: dict | None, timelines: dict, servers: dict, changes: dict) -> dict:
    """The report: ``run`` (service, strategy, version, outcome, owner, id, since, until), ``totals``,
    ``series`` (per bucket: requests, errors, error rate, requests and share per version), ``marks``,
    ``lbs`` (which LBs' logs are in it) and ``event`` (what the run recorded).

    ``timelines``: {LB: buckets or None}; ``servers``: {"pool/server" as the LB logs it: [host, slot]};
    ``changes``: {"host/slot": [(when, version), ...]}.
    """
    event = event or {}
    merged: dict[float, dict] = {}
    for buckets in timelines.values():
        for bucket in buckets or []:
            slot = merged.setdefault(bucket["t"], {"t": bucket["t"], "requests": 0, "errors": 0, "maintenance": 0,
                                                   "by_version": {}})
            slot["requests"] += bucket["requests"]
            slot["errors"] += bucket["errors"]
            slot["maintenance"] += bucket.get("maintenance", 0)
            for key, (requests, errors) in bucket["by_server"].items():
                if not requests:
                    continue
                host_slot = servers.get(key)
                version = version_at(changes.get("%s/%s" % tuple(host_slot), []), bucket["t"]) if host_slot else UNKNOWN
                counts = slot["by_version"].setdefault(version, [0, 0])
                counts[0] += requests
                counts[1] += errors
    series = []
    totals = {"requests": 0, "errors": 0, "maintenance": 0, "by_version": {}}
    for t in sorted(merged):
        slot = merged[t]
        served = sum(n for n, _e in slot["by_version"].values())
        slot["error_rate"] = round(100.0 * slot["errors"] / slot["requests"], 2) if slot["requests"] else 0.0
        slot["share"] = {v: round(100.0 * n / served, 2) for v, (n, _e) in sorted(slot["by_version"].items())} \
            if served else {}
        series.append(slot)
        totals["requests"] += slot["requests"]
        totals["errors"] += slot["errors"]
        totals["maintenance"] += slot["maintenance"]
        for version, (requests, errors) in slot["by_version"].items():
            counts = totals["by_version"].setdefault(version, {"requests": 0, "errors": 0})
            counts["requests"] += requests
            counts["errors"] += errors
    totals["error_rate"] = round(100.0 * totals["errors"] / totals["requests"], 3) if totals["requests"] else 0.0
    return {
        "run": dict(run, seconds=round(run["until"] - run["since"], 1)),
        "totals": totals,
        "series": series,
        "marks": marks(event, run["since"]),
        "lbs": sorted(lb for lb, buckets in timelines.items() if buckets is not None),
        "lbs_unread": sorted(lb for lb, buckets in timelines.items() if buckets is None),
        "event": event,
    }


def _when(epoch) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def markdown(report: dict, plot_name: str | None, json_name: str) -> str:
    run, totals = report["run"], report["totals"]
    lines = [
        "# %s of %s %s: %s" % (run.get("strategy") or "rollout", run.get("service"), run.get("version") or "",
                               run.get("outcome") or "?"),
        "",
        "| | |",
        "|---|---|",
        "| run | `%s` by %s |" % (run.get("id"), run.get("owner")),
        "| from | %s |" % _when(run["since"]),
        "| to | %s (%.1f s) |" % (_when(run["until"]), run["seconds"]),
        "| requests through the LBs | %d (%s) |" % (totals["requests"], ", ".join(report["lbs"]) or "none read"),
        "| failed (5xx or no answer) | %d (%.3f %%) |" % (totals["errors"], totals["error_rate"]),
        "| maintenance page | %d |" % totals["maintenance"],
    ]
    if report["lbs_unread"]:
        lines.append("| LBs whose log could not be read | %s |" % ", ".join(report["lbs_unread"]))
    if run.get("error"):
        lines.append("| error | %s |" % str(run["error"]).replace("|", "\\|").replace("\n", " "))
    lines += ["", "## Requests per version", "", "| version | requests | failed |", "|---|---:|---:|"]
    for version, counts in sorted(totals["by_version"].items()):
        lines.append("| %s | %d | %d |" % (version, counts["requests"], counts["errors"]))
    if report["marks"]:
        lines += ["", "## Steps", "", "| time | after | what | |", "|---|---:|---|---|"]
        for mark in report["marks"]:
            summary = str(mark.get("summary", "")).replace("|", "\\|")
            after = mark["t"] - run["since"]
            lines.append("| %s | %.1f s | %s | %s |" % (_when(mark["t"])[11:19], after, mark["label"], summary))
    if plot_name:
        lines += ["", "## Timeline", "", "![traffic share per version and error rate](%s)" % plot_name]
    lines += ["", "Per %s s, requests, failures and the share of each version: `series` in `%s`." % (
        _interval(report), json_name)]
    return "\n".join(lines) + "\n"


def _interval(report: dict) -> str:
    series = report["series"]
    return _number(series[1]["t"] - series[0]["t"]) if len(series) > 1 else "?"


def plot(report: dict, path: str) -> bool:
    """A PNG timeline: share per version (stacked) over error rate and requests per second, the run's steps
    and verdicts as vertical lines. False, with nothing written, when matplotlib is not installed."""
    try:
        # The figure and the Agg canvas alone: pyplot's import (its backend machinery) costs a run ~0.5 s.
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return False
    series = report["series"]
    since = report["run"]["since"]
    xs = [s["t"] - since for s in series]
    versions = sorted({v for s in series for v in s["share"]})
    figure = Figure(figsize=(11, 6.5))
    FigureCanvasAgg(figure)
    top, bottom = figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    run = report["run"]
    figure.suptitle("%s of %s %s: %s (%d requests, %d failed)" % (
        run.get("strategy"), run.get("service"), run.get("version") or "", run.get("outcome"),
        report["totals"]["requests"], report["totals"]["errors"]))
    if versions and xs:
        top.stackplot(xs, [[s["share"].get(v, 0.0) for s in series] for v in versions], labels=versions,
                      step="post", alpha=0.8)
        top.legend(loc="upper left", title="version")
    top.set_ylabel("share of requests (%)")
    top.set_ylim(0, 100)
    rate = bottom.twinx()
    interval = (series[1]["t"] - series[0]["t"]) if len(series) > 1 else 1.0
    rate.plot(xs, [s["requests"] / interval for s in series], color="grey", linewidth=0.8, drawstyle="steps-post")
    rate.set_ylabel("requests/s", color="grey")
    bottom.plot(xs, [s["error_rate"] for s in series], color="red", drawstyle="steps-post")
    bottom.set_ylabel("failed (%)", color="red")
    bottom.set_ylim(bottom=0, top=max([s["error_rate"] for s in series] + [1.0]) * 1.15)
    bottom.set_xlabel("seconds since the run started")
    colours = {"pass": "green", "fail": "red"}
    for mark in report["marks"]:
        x = mark["t"] - since
        colour = colours.get(str(mark.get("verdict")), "black" if mark["kind"] != "verdict" else "orange")
        for axis in (top, bottom):
            axis.axvline(x, color=colour, linestyle="--" if mark["kind"] == "step" else ":", linewidth=0.9)
        top.annotate(mark["label"], (x, 100), xytext=(2, -4), textcoords="offset points", rotation=90,
                     va="top", fontsize=7, color=colour)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return True


def to_json(report: dict) -> str:
    return json.dumps(report, indent=2, sort_keys=True) + "\n"
