"""The Markdown tables of a strategy benchmark's results (bench/bench_strategies.py).

    python bench/bench_table.py bench/results.json [--docs docs/benchmarks.md]

Writes <results>.md next to the JSON and puts the same tables in --docs
between the lines "<!-- bench:strategies -->" and "<!-- /bench:strategies -->".
"""

from __future__ import annotations

import argparse
import json
import os
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "bench"))

from metrics import ratio  # noqa: E402  pylint: disable=wrong-import-position

BEGIN, END = "<!-- bench:strategies -->", "<!-- /bench:strategies -->"


def _num(value, unit: str = "", digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        value = round(value, digits)
    return "%s%s" % (format(value, ",") if isinstance(value, int) else value, unit)


def _rollback_name(row: dict) -> str:
    if "rollback" not in row:
        return "- (none of its own)" if row["rollout"].get("rc") == 0 else "-"
    playbook = row["rollback"].get("playbook", "")
    return "flip back" if playbook == "rollback" else playbook


def _matrix(results: dict) -> str:
    if results.get("matrix") == "each":
        return "each strategy behind one LB kind (column LB), both kinds covered"
    return "each strategy behind each LB kind"


def _peer(peer: dict, strategies: list[dict]) -> list[str]:
    """The peer comparison: per side its runs, median wall time and spread, then the ratio of the medians."""
    if "sides" not in peer:
        return _peer_single(peer, strategies)
    lines = [
        "",
        "**Peer comparison** at the same batch size - the plain drain-aware rolling playbook an ops team writes "
        "(`bench/peer_plain.yml`: `serial`, `community.general.haproxy` drain until no sessions / enable on every LB, "
        "copy + unarchive, switch `current`, restart, wait for `/healthz`) and `fleet.rollout.ramped`, taking turns, "
        "%s runs each, every run 1.0.0 -> 2.0.0 from 1.0.0 on every host (%s), same fleet, "
        "same load, service %s (%s). Median and min-max over the runs that succeeded:"
        % (peer.get("runs_each", "-"),
           # Results written before the key existed were measured with 2.0.0 installed.
           "2.0.0 already installed" if peer.get("release_preinstalled", True)
           else "2.0.0 on no host: both sides upload and unpack it",
           peer.get("service", "web"), _lb_name(peer.get("lb", "haproxy"))),
        "",
        "| side | batch size | runs | median wall | min–max | sent / failed per run |",
        "|---|--:|--:|--:|--:|---|",
    ]
    for side in peer["sides"]:
        runs = side.get("runs") or []
        failed_runs = len(runs) - side.get("ok_runs", len(runs))
        spread = "-" if side.get("min_wall_s") is None else "%s–%s" % (
            _num(side["min_wall_s"]), _num(side["max_wall_s"], " s"))
        per_run = ", ".join(_run_text(run) for run in runs) or "-"
        lines.append("| %s: `%s` | %s | %s | %s | %s | %s |" % (
            side["side"], side["playbook"], _num(side.get("batch_size")),
            "%d%s" % (len(runs), " (%d failed)" % failed_runs if failed_runs else ""),
            _num(side.get("median_wall_s"), " s"), spread, per_run))
    found = peer.get("ratio_ours_peer")
    lines += ["", "ratio ours/peer (median): %s" % ("%.2f×" % found if found is not None
                                                    else "- (a side has no successful run)")]
    return lines


def _run_text(run: dict) -> str:
    """A run's requests sent / failed, and its exit code when it failed."""
    failed = "" if run.get("rc") == 0 else " (rc %s)" % run.get("rc")
    return "%s / %s%s" % (_num(run.get("sent")), _num(run.get("failed")), failed)


def _lb_name(kind: str) -> str:
    return {"haproxy": "HAProxy", "nginx": "nginx"}.get(kind, kind)


def _peer_single(peer: dict, strategies: list[dict]) -> list[str]:
    """Results of a bench before the comparison: one peer run (bench/peer_rolling.yml, since removed) next to
    the ramped row."""
    lines = [
        "",
        "**Peer baseline** - the rolling update of Ansible's examples (`serial: 1`, `community.general.haproxy` "
        "disable / enable around the same install), same fleet, same load, service web (HAProxy):",
        "",
        "| | sent | failed | downtime | wall time | LB reloads |",
        "|---|--:|--:|--:|--:|--:|",
        "| peer: `%s` | %s | %s | %s | %s | %s |" % (
            peer.get("playbook", "bench/peer_rolling.yml"), _num(peer["sent"]), _num(peer["failed"]),
            _num(peer["downtime_s"], " s", 2), _num(peer["wall_s"], " s"), _num(peer.get("reloads"))),
    ]
    ours = next((row for row in strategies if row["strategy"] == "ramped" and row["lb"] == "haproxy"), None)
    if ours:
        out = ours["rollout"]
        lines.append("| ours: `fleet.rollout.ramped` | %s | %s | %s | %s | %s |" % (
            _num(out["sent"]), _num(out["failed"]), _num(out["downtime_s"], " s", 2), _num(out["wall_s"], " s"),
            _num(out.get("reloads"))))
    return lines


def _bad_releases(rows: list[dict]) -> list[str]:
    """The bad release (2.0.1-bad, 30 % errors) per strategy: what users met of it before the rollback."""
    if not rows:
        return []
    lines = [
        "",
        "**Bad release** - 2.0.1-bad (passes its health gate, fails 30 % of its requests), rolled back on its own "
        "(canary: default steps; blue/green: no smoke test, caught by the watch after the flip):",
        "",
        "| strategy | LB | sent | failed | first failure → last bad answer | first failure → run end | rolled back "
        "| users on 1.0.0 only after |",
        "|---|---|--:|--:|--:|--:|---|---|",
    ]
    for row in rows:
        out, bad = row["rollout"], row.get("bad_release") or {}
        back = bad.get("back_on_old")
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
            row["strategy"], row["lb"], _num(out["sent"]), _num(out["failed"]),
            _num(bad.get("first_failure_to_last_bad_s"), " s"), _num(bad.get("first_failure_to_run_end_s"), " s"),
            "yes" if bad.get("rolled_back") else "**no**", "-" if back is None else ("yes" if back else "**no**")))
    return lines


def _scale_ratio(rows: list[dict]) -> list[str]:
    """The wall time of the most hosts over that of the fewest (16 over 4), when both runs succeeded."""
    ok = [row for row in rows if row.get("rc", 0) == 0 and row.get("wall_s")]
    if len(ok) < 2:
        return []
    small, big = min(ok, key=lambda row: row["hosts"]), max(ok, key=lambda row: row["hosts"])
    found = ratio(big["wall_s"], small["wall_s"])
    if small is big or found is None:
        return []
    return ["", "wall time %d hosts / %d hosts: %.2f× (%d× the hosts)" % (
        big["hosts"], small["hosts"], found, big["hosts"] // small["hosts"])]


def tables(results: dict) -> str:
    lines = [
        "Lab fleet: 2 LB hosts, 4 app hosts (containers), probe at %s requests/s through both LB hosts, "
        "1 in 20 a 2 s request, 1,000 users; %s. Machine: %s; %s; the whole run took %s s."
        % (_num(int(results["rate"])), _matrix(results), results["machine"], results["when"],
           _num(results.get("bench_seconds"))),
        "",
        "| strategy | LB | sent | failed | downtime | rollout | switch window | exposed before decision "
        "| extra hosts | LB reloads | rollback | rollback sent / failed | back on 1.0.0 after | rollback reloads |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|---|--:|--:|--:|",
    ]
    for row in results["strategies"]:
        out, back = row["rollout"], row.get("rollback") or {}
        exposed = row.get("exposed_before_decision_pct")
        exposed_text = "n/a (no decision point)" if row.get("decision") == "none" else _num(exposed, " %")
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s / %s | %s | %s |" % (
            row["strategy"], row["lb"], _num(out["sent"]), _num(out["failed"]), _num(out["downtime_s"], " s", 2),
            _num(out["wall_s"], " s"), _num(row.get("switch_window_s"), " s"), exposed_text,
            _num(row.get("extra_hosts")), _num(out.get("reloads")), _rollback_name(row), _num(back.get("sent")),
            _num(back.get("failed")), "never" if back.get("back_on_old") is False else
            _num(back.get("users_on_new_until_s"), " s"), _num(back.get("reloads"))))
        if out.get("rc") or back.get("rc"):
            lines.append("| | | *run failed: rollout rc %s, rollback rc %s* | | | | | | | | | | | |"
                         % (out.get("rc"), back.get("rc", "-")))
    lines += _bad_releases(results.get("bad_releases") or [])
    for note in results.get("notes", []):
        lines += ["", "*%s*" % note]
    if results.get("peer"):
        lines += _peer(results["peer"], results["strategies"])
    scale = results.get("scaling")
    if scale:
        lines += [
            "",
            "**Scaling** - `fleet.rollout.ramped` in batches of 25 %, no traffic, HAProxy (times from profile_tasks):",
            "",
            "| app hosts | wall time | drain | restart | health gates | overhead | overhead per host | batches "
            "| overhead per batch |",
            "|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
        ]
        for row in scale:
            lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                row["hosts"], _num(row["wall_s"], " s"), _num(row.get("drain_s"), " s"), _num(row.get("restart_s"), " s"),
                _num(row.get("gate_s"), " s"), _num(row.get("overhead_s"), " s"), _num(row.get("overhead_per_host_s"), " s", 2),
                _num(row.get("batches")), _num(row.get("overhead_per_batch_s"), " s", 2)))
        lines += _scale_ratio(scale)
    lbops = results.get("lb_operations")
    if lbops:
        lines += [
            "",
            "**LB operations** (`make bench-lb`): drain + ready of %s servers, `fleet.rollout.haproxy_server` %s s vs "
            "`community.general.haproxy` %s s: **%s×**." % (lbops.get("servers"), lbops.get("ours_seconds"),
                                                            lbops.get("peer_seconds"), lbops.get("ratio")),
        ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results")
    parser.add_argument("--docs", default=os.path.join(ROOT, "docs", "benchmarks.md"))
    args = parser.parse_args()
    with open(args.results, encoding="utf-8") as handle:
        text = tables(json.load(handle))
    with open(os.path.splitext(args.results)[0] + ".md", "w", encoding="utf-8") as handle:
        handle.write(text)
    if args.docs and os.path.exists(args.docs):
        with open(args.docs, encoding="utf-8") as handle:
            doc = handle.read()
        if BEGIN in doc and END in doc:
            head, rest = doc.split(BEGIN, 1)
            doc = head + BEGIN + "\n" + text + END + rest.split(END, 1)[1]
            with open(args.docs, "w", encoding="utf-8") as handle:
                handle.write(doc)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
