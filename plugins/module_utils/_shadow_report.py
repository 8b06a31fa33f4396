# Copyright: fleet.rollout contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The shadow report: what the shadow pool answered to mirrored live requests, next to what the primary
answered to the same requests, joined by request id.

The primary's answers come from the nginx role's access log (``id`` is nginx's ``$request_id``), the
shadow's from the shadow relay's log (one JSON line per mirrored request: ``ts``, ``id``, ``method``,
``uri``, ``status`` - null when the shadow gave no answer -, ``rt``, ``error``; ``error`` is
``dropped`` when the relay's queue was full and the request never reached the shadow).

Each LB host holds its own two logs: ``rows`` joins them on one host, ``build_report`` judges the rows
of every LB host together.
"""

from __future__ import annotations

import json
from collections import Counter

from ansible_collections.fleet.rollout.plugins.module_utils._lb_request_log import _path, nginx_records
from ansible_collections.fleet.rollout.plugins.module_utils._statistics import percentile

DROPPED = "dropped"
DEFAULT_CRITERIA = {
    "max_error_rate": 1.0,
    "max_mismatch_rate": 1.0,
    "max_latency_increase": 0.25,
    "max_dropped_rate": 5.0,
    "min_compared": 100,
}
QUANTILES = (("p50", 50), ("p95", 95), ("p99", 99))
ROW_KEYS = ("id", "method", "path", "primary_status", "primary_seconds", "shadow_status", "shadow_seconds",
            "shadow_error")


def relay_records(lines) -> list[dict]:
    """The shadow relay's records (lines that are not one of its JSON records are skipped)."""
    records = []
    for line in lines:
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if not isinstance(entry, dict) or "ts" not in entry or not entry.get("id"):
            continue
        status = entry.get("status")
        records.append({
            "ts": float(entry["ts"]),
            "id": str(entry["id"]),
            "method": str(entry.get("method", "")),
            "path": _path(entry.get("uri")),
            "status": status if isinstance(status, int) else None,
            "seconds": float(entry["rt"]) if isinstance(entry.get("rt"), (int, float)) else None,
            "error": entry.get("error") or None,
        })
    return records


def _primary_seconds(record: dict) -> float:
    """What the app took: the last upstream try's time (the relay measures the shadow the same way),
    else nginx's request time."""
    attempts = record.get("attempts") or []
    if attempts and attempts[-1][1] is not None:
        return float(attempts[-1][2])
    return float(record["seconds"])


def rows(access_lines, relay_lines, service: str, since: float, until: float) -> dict:
    """One LB host's mirrored requests of the window, each with the primary's and the shadow's answer.

    Returns ``primary_requests`` (the service's requests the LB logged in the window), ``rows`` (one per
    mirrored request whose primary answer is in the log) and ``unmatched`` (mirrored requests without one:
    the window's edge, or a log line not written yet).
    """
    primary = [record for record in nginx_records(access_lines, service) if since <= record["ts"] <= until]
    by_id = dict((record["id"], record) for record in primary if record["id"])
    joined, unmatched = [], 0
    for shadow in relay_records(relay_lines):
        if not since <= shadow["ts"] <= until:
            continue
        record = by_id.get(shadow["id"])
        if record is None:
            unmatched += 1
            continue
        joined.append({
            "id": shadow["id"], "method": record["method"] or shadow["method"],
            "path": record["path"] or shadow["path"],
            "primary_status": record["status"], "primary_seconds": round(_primary_seconds(record), 6),
            "shadow_status": shadow["status"], "shadow_seconds": shadow["seconds"],
            "shadow_error": shadow["error"],
        })
    return {"primary_requests": len(primary), "rows": joined, "unmatched": unmatched}


def check_criteria(criteria: dict | None) -> dict:
    merged = dict(DEFAULT_CRITERIA)
    merged.update(dict((key, value) for key, value in (criteria or {}).items() if value is not None))
    for key in ("max_error_rate", "max_mismatch_rate", "max_dropped_rate"):
        if not 0 <= float(merged[key]) <= 100:
            raise ValueError("%s must be a percentage between 0 and 100, got %r" % (key, merged[key]))
    if float(merged["max_latency_increase"]) < 0:
        raise ValueError("max_latency_increase must be 0 or more seconds, got %r" % merged["max_latency_increase"])
    if int(merged["min_compared"]) < 1:
        raise ValueError("min_compared must be at least 1, got %r" % merged["min_compared"])
    return merged


def _rate(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 4) if whole else 0.0


def _quantiles(values) -> dict:
    return dict((name, None if not values else round(percentile(values, q), 6)) for name, q in QUANTILES)


def build_report(all_rows, criteria: dict | None = None, primary_requests: int = 0, unmatched: int = 0,
                 top: int = 5) -> dict:
    """Judge the shadow on the mirrored requests of every LB host.

    Failed: no answer or a 5xx, among the requests the relay sent (not the dropped ones). A status mismatch:
    the shadow answered with another status than the primary, among the answered ones (``compared``).
    Latencies are those of the compared requests, primary and shadow, and their difference (shadow minus
    primary). The verdict fails on too few compared requests, and on any criterion exceeded.
    """
    criteria = check_criteria(criteria)
    all_rows = list(all_rows)
    dropped = [row for row in all_rows if row["shadow_error"] == DROPPED]
    sent = [row for row in all_rows if row["shadow_error"] != DROPPED]
    failed = [row for row in sent if row["shadow_status"] is None or row["shadow_status"] >= 500]
    compared = [row for row in sent if row["shadow_status"] is not None]
    mismatched = [row for row in compared if row["shadow_status"] != row["primary_status"]]
    counts = Counter((row["method"], row["path"], row["primary_status"], row["shadow_status"]) for row in mismatched)
    top_mismatches = [{"method": method, "path": path, "primary_status": primary, "shadow_status": shadow,
                       "requests": count}
                      for (method, path, primary, shadow), count
                      in sorted(counts.items(), key=lambda item: (-item[1], item[0][1], item[0][0]))[:top]]
    errors = Counter(row["shadow_error"] for row in sent if row["shadow_error"])
    primary_latency = _quantiles([row["primary_seconds"] for row in compared])
    shadow_latency = _quantiles([row["shadow_seconds"] for row in compared if row["shadow_seconds"] is not None])
    difference = dict((name, None if primary_latency[name] is None or shadow_latency[name] is None
                       else round(shadow_latency[name] - primary_latency[name], 6)) for name, _q in QUANTILES)
    report = {
        "primary_requests": int(primary_requests),
        "mirrored": len(all_rows),
        "unmatched": int(unmatched),
        "dropped": len(dropped),
        "dropped_rate": _rate(len(dropped), len(all_rows)),
        "sent": len(sent),
        "compared": len(compared),
        "shadow_failed": len(failed),
        "shadow_error_rate": _rate(len(failed), len(sent)),
        "shadow_errors": dict(errors.most_common(top)),
        "status_mismatches": len(mismatched),
        "mismatch_rate": _rate(len(mismatched), len(compared)),
        "top_mismatches": top_mismatches,
        "latency": {"primary": primary_latency, "shadow": shadow_latency, "difference": difference},
        "criteria": criteria,
    }
    reasons = []
    if len(compared) < int(criteria["min_compared"]):
        reasons.append("%d requests compared, fewer than min_compared (%d)" % (len(compared), int(criteria["min_compared"])))
    if report["shadow_error_rate"] > float(criteria["max_error_rate"]):
        reasons.append("shadow error rate %.2f %% above max_error_rate (%s %%)"
                       % (report["shadow_error_rate"], criteria["max_error_rate"]))
    if report["mismatch_rate"] > float(criteria["max_mismatch_rate"]):
        reasons.append("status mismatch rate %.2f %% above max_mismatch_rate (%s %%)"
                       % (report["mismatch_rate"], criteria["max_mismatch_rate"]))
    if difference["p99"] is not None and difference["p99"] > float(criteria["max_latency_increase"]):
        reasons.append("shadow p99 latency %.3f s above the primary's by %.3f s, more than max_latency_increase (%s s)"
                       % (shadow_latency["p99"], difference["p99"], criteria["max_latency_increase"]))
    if report["dropped_rate"] > float(criteria["max_dropped_rate"]):
        reasons.append("the relay dropped %.2f %% of the mirrored requests (the shadow did not keep up), above"
                       " max_dropped_rate (%s %%)" % (report["dropped_rate"], criteria["max_dropped_rate"]))
    report["verdict"] = "fail" if reasons else "pass"
    report["passed"] = not reasons
    report["reasons"] = reasons
    return report


def summary_line(report: dict) -> str:
    latency = report["latency"]

    def seconds(value):
        return "-" if value is None else "%.3f" % value

    return ("%s: %d compared (%d mirrored, %d dropped), shadow errors %.2f %%, status mismatches %.2f %%,"
            " p50/p95/p99 primary %s/%s/%s s, shadow %s/%s/%s s"
            % (report["verdict"].upper(), report["compared"], report["mirrored"], report["dropped"],
               report["shadow_error_rate"], report["mismatch_rate"],
               seconds(latency["primary"]["p50"]), seconds(latency["primary"]["p95"]), seconds(latency["primary"]["p99"]),
               seconds(latency["shadow"]["p50"]), seconds(latency["shadow"]["p95"]), seconds(latency["shadow"]["p99"])))
