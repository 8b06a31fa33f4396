"""The traffic probe, against real sample-app servers on loopback."""

from __future__ import annotations

import http.server
import itertools
import json
import socket
import threading
import time

import pytest


def run_probe(probe, tmp_path, *args):
    out = tmp_path / "probe.jsonl"
    summary = tmp_path / "summary.json"
    code = probe.main(["run", "--out", str(out), "--summary-json", str(summary), *args])
    records = [json.loads(line) for line in out.read_text().splitlines()]
    return code, records, json.loads(summary.read_text())


def closed_port_url(port: int) -> str:
    return "http://127.0.0.1:%d" % port


def test_records_every_request_with_version_and_host(probe, run_app, tmp_path, capsys):
    url_a = run_app(version="1.0.0")[1]
    url_b = run_app(version="2.0.0")[1]
    code, records, summary = run_probe(probe, tmp_path, "--url", url_a, "--url", url_b,
                                       "--rate", "200", "--count", "60")
    assert code == 0
    assert len(records) == 60 and sorted(r["seq"] for r in records) == list(range(60))
    assert {r["status"] for r in records} == {200}
    # Round robin over the two targets, each answering with its own version.
    assert sum(r["version"] == "1.0.0" for r in records) == 30
    for r in records:
        assert r["version"] == ("1.0.0" if r["target"] == url_a else "2.0.0")
        assert r["host"] == socket.gethostname()
        assert r["t"] > 0 and r["dur"] > 0 and r["error"] is None
    assert summary["sent"] == 60 and summary["failed"] == 0
    assert summary["by_version"] == {"1.0.0": 30, "2.0.0": 30}
    assert "failed:      0" in capsys.readouterr().out


def test_fixed_rate_holds_while_some_requests_are_slow(probe, run_app, tmp_path):
    url = run_app()[1]
    code, records, summary = run_probe(probe, tmp_path, "--url", url, "--rate", "50", "--duration", "1.5",
                                       "--request", "GET / 9", "--request", "GET /slow?s=1 1")
    assert code == 0 and summary["failed"] == 0
    assert len(records) == 75  # 1.5 s at 50/s, however slow some answers are
    specs = [probe.parse_request_spec("GET / 9"), probe.parse_request_spec("GET /slow?s=1 1")]
    drawn = [spec.path for spec in itertools.islice(probe.weighted_mix(specs, 1), 75)]  # the default seed's draws
    assert sum(r["path"] == "/slow?s=1" for r in records) == drawn.count("/slow?s=1") > 3
    # Slow answers must not lower the rate. A loaded machine can start the first request late and the schedule
    # then catches up, which raises the measured rate: only the lower bound is the probe's to keep.
    assert summary["achieved_rate"] >= 45
    starts = sorted(r["t"] for r in records)
    assert starts[-1] - starts[0] < 1.6
    # Slow answers overlap later requests instead of holding them back: judged on the probe's own records,
    # not on wall time, which a loaded machine stretches (interpreter start-up, scheduling).
    # Every slow answer: the (up to 10) requests that started after it started before it finished. A probe
    # descheduled by a loaded machine fires its late requests in a burst, so "after it" may be few.
    slow = [r for r in records if r["path"] == "/slow?s=1"]
    assert all(r["dur"] >= 0.9 for r in slow)
    for r in slow:
        later = sorted(o["t"] for o in records if o["t"] > r["t"])[:10]
        assert all(t < r["t"] + r["dur"] for t in later), (r, later)
    assert sum(o["t"] > min(r["t"] for r in slow) for o in records) >= 10  # the draws' first slow one is 18th of 75


def test_connection_errors_and_5xx_count_as_failed(probe, run_app, tmp_path, free_port):
    bad = run_app(error_rate="1")[1]
    down = closed_port_url(free_port())
    code, records, summary = run_probe(probe, tmp_path, "--url", bad, "--url", down, "--rate", "100",
                                       "--count", "20", "--max-failed", "0", "--timeout", "2")
    assert code == 1
    assert summary["failed"] == 20
    assert summary["by_status"] == {"500": 10, "error": 10}
    assert summary["errors"] == {"connection refused": 10}
    assert summary["longest_failure_run"]["count"] == 20


def test_users_posts_and_variant_header(probe, run_app, tmp_path):
    server, url = run_app()
    code, records, summary = run_probe(
        probe, tmp_path, "--url", url, "--rate", "200", "--count", "12", "--users", "3",
        "--user-cookie", "uid", "--request", 'POST /orders 1 {"item": 1}', "--variant-header", "X-App-Host")
    assert code == 0
    assert [r["user"] for r in sorted(records, key=lambda r: r["seq"])][:4] == ["user-1", "user-2", "user-3", "user-1"]
    assert {r["status"] for r in records} == {201}
    assert summary["by_variant"] == {socket.gethostname(): 12}
    assert server.RequestHandlerClass.counters.snapshot()["orders"] == 12


def test_stop_file_ends_the_run_early(probe, run_app, tmp_path):
    url = run_app()[1]
    stop = tmp_path / "stop"
    # A few workers: starting the default 1024 took longer than the stop's delay on a loaded machine (2 sent).
    timer = threading.Timer(1.0, stop.write_text, args=("",))
    timer.start()
    started = time.monotonic()
    code, records, summary = run_probe(probe, tmp_path, "--url", url, "--rate", "20", "--duration", "30",
                                       "--concurrency", "8", "--stop-file", str(stop))
    assert code == 0
    assert time.monotonic() - started < 15  # half the 30 s it would run without the stop file
    assert 5 <= summary["sent"] <= 30


def test_longest_failure_run_spans_consecutive_failures(probe):
    def rec(t, status, dur=0.1):
        return {"t": t, "dur": dur, "status": status, "error": None if status else "timeout"}

    records = [rec(0, 200), rec(1, 503), rec(2, None, dur=0.5), rec(3, 200), rec(4, 500), rec(5, 200)]
    run = probe.longest_failure_run(records)
    assert run["count"] == 2 and run["duration_s"] == pytest.approx(1.5)
    assert probe.longest_failure_run([rec(0, 200)])["count"] == 0
    assert probe.longest_failure_run([rec(0, 404)], fail_on_4xx=True)["count"] == 1


def test_summary_percentiles_and_version_spans(probe):
    records = [{"t": float(i), "dur": (i + 1) / 100.0, "status": 200, "version": "1.0.0" if i < 60 else "2.0.0"}
               for i in range(100)]
    summary = probe.summarize(records)
    assert summary["latency_s"]["p50"] == pytest.approx(0.50)
    assert summary["latency_s"]["p99"] == pytest.approx(0.99)
    assert summary["version_spans"]["2.0.0"] == {"first": 60.0, "last": 99.0}
    assert summary["failed"] == 0 and summary["sent"] == 100


def test_summarize_command_reads_records(probe, tmp_path, capsys):
    path = tmp_path / "r.jsonl"
    path.write_text("\n".join(json.dumps({"t": i, "dur": 0.01, "status": 200 if i % 2 else 502}) for i in range(10)))
    assert probe.main(["summarize", str(path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["failed"] == 5 and summary["longest_failure_run"]["count"] == 1


@pytest.mark.parametrize("args, message", [
    (["--url", "http://x"], "--duration and/or --count"),
    (["--url", "ftp://x", "--count", "1"], "expected http"),
    (["--url", "http://x", "--count", "0"], "--count must be"),
    (["--url", "http://x", "--duration", "99999"], "--duration must be"),
    (["--url", "http://x", "--count", "1", "--users", "3"], "--user-cookie, --user-header or --cookie-jar"),
    (["--url", "http://x", "--count", "1", "--cookie-jar"], "need --users"),
    (["--url", "http://x", "--count", "1", "--users", "3", "--cookie-jar", "--user-lifetime", "0"],
     "--user-lifetime must be above 0"),
    (["--url", "http://x", "--count", "1", "--request", "GET nopath"], "path must start"),
    (["--url", "http://x", "--count", "1", "--header", "novalue"], "Name: value"),
])
def test_bad_arguments_are_clear_errors(probe, capsys, args, message):
    with pytest.raises(SystemExit) as exc:
        probe.main(["run", *args])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_mix_follows_the_weights_and_the_seed(probe):
    specs = [probe.RequestSpec("GET", "/a", 3), probe.RequestSpec("GET", "/b", 1)]
    draws = [spec.path for spec in itertools.islice(probe.weighted_mix(specs, 7), 4000)]
    assert 0.22 < draws.count("/b") / len(draws) < 0.28
    assert draws == [spec.path for spec in itertools.islice(probe.weighted_mix(specs, 7), 4000)]
    assert draws != [spec.path for spec in itertools.islice(probe.weighted_mix(specs, 8), 4000)]


def test_rare_requests_reach_every_lb_and_every_round_robin_server(probe):
    """Two LBs in turn, each with 4 servers in round robin: a 1 in 20 slow request must reach all 8.

    A periodic mix (period 20, even) sent every slow request to the same LB and, there, to 2 of
    the 4 servers: a rolling update's drain of the others never had a slow request in flight."""
    specs = [probe.RequestSpec("GET", "/", 19), probe.RequestSpec("GET", "/slow", 1)]
    next_server = {0: 0, 1: 0}
    reached = set()
    for i, spec in zip(range(2000), probe.weighted_mix(specs, 1)):
        lb = i % 2
        server, next_server[lb] = next_server[lb], (next_server[lb] + 1) % 4
        if spec.path == "/slow":
            reached.add((lb, server))
    assert len(reached) == 8, sorted(reached)


class SideServer(http.server.ThreadingHTTPServer):
    """Draws a side for a request without the cookie ``side`` and sets it; answers with the side as the
    version, as a sticky LB does."""
    daemon_threads = True

    def __init__(self):
        self.draws = itertools.count()
        self.cookies_seen = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(handler):  # noqa: N805  pylint: disable=no-self-argument
                cookie = handler.headers.get("Cookie") or ""
                self.cookies_seen.append(cookie)
                sides = dict(part.strip().partition("=")[::2] for part in cookie.split(";") if "=" in part)
                side = sides.get("side")
                handler.send_response(200)
                if side is None:
                    side = "canary" if next(self.draws) % 4 == 0 else "stable"
                    handler.send_header("Set-Cookie", "side=%s; Path=/; HttpOnly" % side)
                handler.send_header("X-App-Version", side)
                handler.send_header("Content-Length", "0")
                handler.end_headers()

            def log_message(handler, *args):  # noqa: N805  pylint: disable=no-self-argument
                pass

        super().__init__(("127.0.0.1", 0), Handler)


def test_cookie_jar_users_keep_what_the_service_set_and_new_users_arrive(probe, tmp_path):
    server = SideServer()
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        url = "http://127.0.0.1:%d" % server.server_address[1]
        code, records, summary = run_probe(probe, tmp_path, "--url", url, "--rate", "100", "--duration", "3",
                                           "--users", "10", "--cookie-jar", "--user-lifetime", "1",
                                           "--user-cookie", "uid")
    finally:
        server.shutdown()
        server.server_close()
    assert code == 0 and summary["failed"] == 0
    by_user: dict[str, set] = {}
    for record in records:
        by_user.setdefault(record["user"], set()).add(record["version"])
    # Each user kept the side drawn at its first request; users came and went (10 slots, ~3 generations).
    assert all(len(versions) == 1 for versions in by_user.values()), by_user
    assert 25 <= len(by_user) <= 45
    assert all(cookie.startswith("uid=user-") or "; uid=user-" in cookie for cookie in server.cookies_seen)
    assert sum("side=" in cookie for cookie in server.cookies_seen) == len(records) - len(by_user)


def test_user_ids_change_hands_at_staggered_times(probe):
    assert [probe.user_id(i, 0.0, 3, None) for i in range(4)] == ["user-1", "user-2", "user-3", "user-1"]
    # Slot 1 of 4 with a 10 s lifetime changes hands at 7.5 s, 17.5 s...; slot 4 at 0 s, 10 s...
    slot_one = [probe.user_id(0, t, 4, 10.0) for t in (0.0, 7.4, 7.6, 17.6)]
    assert slot_one == ["user-1.0", "user-1.0", "user-1.1", "user-1.2"]
    assert [probe.user_id(3, t, 4, 10.0) for t in (0.0, 9.9, 10.0)] == ["user-4.1", "user-4.1", "user-4.2"]
    assert probe.parse_set_cookie("fleet_web=2.0.0-1.canary; Path=/; HttpOnly") == ("fleet_web", "2.0.0-1.canary")


def test_follow_next_takes_users_to_the_offer_the_app_shows_them(probe, sample_app, run_app, tmp_path):
    url = run_app(offer_rate=0.3)[1]
    code, records, summary = run_probe(probe, tmp_path, "--url", url, "--rate", "200", "--count", "200", "--users", "50",
                                       "--user-header", "X-User-Id", "--follow-next")
    assert code == 0 and summary["failed"] == 0
    followed = {r["user"] for r in records if r.get("follow")}
    assert all(r["path"] == "/checkout" and r["status"] == 200 for r in records if r.get("follow"))
    # The app shows the offer to the same users every time: a hash of the id, about 30 % of them.
    assert followed == {"user-%d" % n for n in range(1, 51) if sample_app.shows_offer("user-%d" % n, 0.3)}
    assert 5 <= len(followed) <= 25
    assert len(records) == 200 + sum(1 for r in records if r.get("follow"))


def _starts(times):
    return [{"t": t, "status": 200, "dur": 0.01} for t in times]


def test_kept_up_accepts_a_probe_that_sent_on_schedule(probe):
    assert probe.kept_up(_starts([100 + i / 10.0 for i in range(100)]), 10.0, 100.0, 110.0) == []


def test_kept_up_names_a_probe_that_died_early(probe):
    problems = probe.kept_up(_starts([100 + i / 10.0 for i in range(10)]), 10.0, 100.0, 110.0)
    assert problems == ["the probe sent 10 requests, fewer than 95 % of the 100 due in 10.0 s",
                        "the probe sent nothing for 9.1 s from 0.9 s into its window (0 requests waiting for an"
                        " answer halfway through it)"]


def test_kept_up_names_a_stall_even_when_enough_were_sent(probe):
    # 2 s without a request in the middle, then a burst that catches up on the count.
    times = [100 + i / 10.0 for i in range(40)] + [106 + i / 30.0 for i in range(120)]
    assert probe.kept_up(_starts(times), 10.0, 100.0, 110.0) == [
        "the probe sent nothing for 2.1 s from 3.9 s into its window (0 requests waiting for an answer halfway"
        " through it)"]


def test_kept_up_counts_the_requests_still_waiting_when_a_gap_began(probe):
    # Three of the last requests before the gap still wait for their answers halfway through it (slow answers
    # held the workers), the others were answered: that tells a schedule held up by answers from a dead probe.
    records = _starts([100 + i / 10.0 for i in range(40)] + [106 + i / 30.0 for i in range(120)])
    for record, dur in zip(records[36:40], (0.05, 2.5, 3.0, 1.5)):
        record["dur"] = dur
    assert probe.kept_up(records, 10.0, 100.0, 110.0) == [
        "the probe sent nothing for 2.1 s from 3.9 s into its window (3 requests waiting for an answer"
        " halfway through it, the longest 3.0 s)"]


def test_kept_up_does_not_count_followed_redirects_or_requests_outside_the_window(probe):
    records = _starts([100 + i / 10.0 for i in range(50)])
    records += [dict(r, follow=True) for r in _starts([105 + i / 10.0 for i in range(50)])]
    records += _starts([111 + i / 10.0 for i in range(50)])
    problems = probe.kept_up(records, 10.0, 100.0, 110.0)
    assert problems[0].startswith("the probe sent 50 requests") and "5.1 s from 4.9 s" in problems[1]


def test_open_files_plan_raises_the_soft_limit_then_lowers_the_workers(probe):
    assert probe.open_files_plan(1024, 1024, 4096) == (1024 + probe.SPARE_FILES, 1024)
    assert probe.open_files_plan(1024, 20000, 20000) == (20000, 1024)
    assert probe.open_files_plan(1024, -1, -1) == (-1, 1024)
    assert probe.open_files_plan(1024, 256, -1) == (1024 + probe.SPARE_FILES, 1024)
    # The hard limit is the ceiling: fewer workers, each with its socket.
    assert probe.open_files_plan(1024, 512, 512) == (512, 512 - probe.SPARE_FILES)
