"""Traffic probe: what users saw during a rollout, one JSON line per request.

Sends requests at a fixed rate, for a bounded time and/or count, to one or
more base URLs (round robin: e.g. both LBs of a pair), and writes a JSON line
per request with its start time, duration, status or connection error, the
``X-App-Version`` and ``X-App-Host`` that served it, the variant header and
the ``X-Request-ID`` the LB gave the request.
At the end (or on SIGTERM/SIGINT, or when --stop-file appears) it prints a
summary: sent, failed, by status, by version, latency percentiles and the
longest run of consecutive failures with its duration.

    rollout_probe.py run --url http://lb1 --url http://lb2 --rate 50 \\
        --duration 60 --out probe.jsonl --summary-json probe.summary.json
    rollout_probe.py summarize probe.jsonl

Requests: ``--request "METHOD PATH [WEIGHT] [BODY]"`` (repeatable; each
request drawn at random by weight, ``--seed`` fixes the draws; default
``GET /``). Simulated users: ``--users N`` gives each request
one of N user ids (user-1 ... user-N, in turn), sent as the cookie
``--user-cookie`` or the header ``--user-header``. ``--cookie-jar``: each
user keeps the cookies the service sets and sends them back, one request at
a time, as a browser does (sticky splits). ``--user-lifetime S``: each user
leaves after S seconds and a new one (new id, no cookies) takes its place,
the N users staggered, so new users keep arriving. ``--follow-next``: a
user given ``X-Next: <path>`` requests that path at once (an A/B test's
offer, followed to the goal); the follow-up is recorded with ``"follow": true``.

A request counts as failed when it gets no HTTP answer (connection refused
or reset, timeout) or a 5xx status (also a 4xx with --fail-on-4xx).

Standard library only, so it runs on any host with python3.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import random
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_DURATION_S = 3600.0
MAX_COUNT = 1_000_000
MAX_RATE = 5000.0


@dataclass(frozen=True)
class RequestSpec:
    method: str
    path: str
    weight: int = 1
    body: str | None = None


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    base_path: str
    label: str


def parse_request_spec(text: str) -> RequestSpec:
    """Parse ``METHOD PATH [WEIGHT] [BODY...]``."""
    parts = text.split(None, 3)
    if len(parts) < 2:
        raise ValueError("request %r: expected 'METHOD PATH [WEIGHT] [BODY]'" % text)
    method, path = parts[0].upper(), parts[1]
    if not method.isalpha():
        raise ValueError("request %r: method must be letters only" % text)
    if not path.startswith("/"):
        raise ValueError("request %r: path must start with '/'" % text)
    weight = 1
    body = None
    if len(parts) >= 3:
        try:
            weight = int(parts[2])
        except ValueError:
            raise ValueError("request %r: weight must be an integer" % text) from None
        if weight < 1:
            raise ValueError("request %r: weight must be at least 1" % text)
    if len(parts) == 4:
        body = parts[3]
    return RequestSpec(method, path, weight, body)


def parse_target(url: str) -> Target:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("url %r: expected http://host[:port][/path]" % url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return Target(parts.scheme, parts.hostname, port, parts.path.rstrip("/"), url)


def weighted_mix(specs: list[RequestSpec], seed: int):
    """Endless random draws honouring the weights, the same sequence for the same seed.

    Not a periodic interleaving: with a period of 20 and two URLs in turn,
    every 20th request (say the slow one) would always go to the same LB, and
    behind a round robin LB it would keep landing on the same servers.
    """
    draw = random.Random(seed)
    weights = [spec.weight for spec in specs]
    while True:
        yield draw.choices(specs, weights)[0]


def user_id(index: int, elapsed: float, users: int, lifetime: float | None) -> str:
    """The simulated user who sends request ``index``, ``elapsed`` seconds into the run.

    Users take requests in turn. With a ``lifetime``, user slot k is held by one user for that many
    seconds, then by a new one (``user-k.1``, ``user-k.2``...); the slots change hands at staggered times.
    """
    slot = index % users + 1
    if not lifetime:
        return "user-%d" % slot
    generation = int((elapsed + lifetime * slot / users) // lifetime)
    return "user-%d.%d" % (slot, generation)


def parse_set_cookie(value: str) -> tuple[str, str]:
    """(name, value) of a Set-Cookie header (its attributes dropped)."""
    pair = value.split(";", 1)[0]
    name, _sep, content = pair.partition("=")
    return name.strip(), content.strip()


def percentile(sorted_values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return None
    rank = max(1, int(-(-pct * len(sorted_values) // 100)))  # ceil without floats drifting
    return sorted_values[min(rank, len(sorted_values)) - 1]


def is_failed(record: dict, fail_on_4xx: bool = False) -> bool:
    status = record.get("status")
    if status is None:
        return True
    return status >= 500 or (fail_on_4xx and status >= 400)


def longest_failure_run(records: list[dict], fail_on_4xx: bool = False) -> dict:
    """Longest run of consecutive failed requests, in order of start time.

    Its duration spans from the first failed request's start to the end of
    the last one: how long users saw failures back to back.
    """
    best = {"count": 0, "duration_s": 0.0, "start": None, "end": None}
    run: list[dict] = []
    for record in sorted(records, key=lambda r: (r["t"], r.get("seq", 0))):
        if is_failed(record, fail_on_4xx):
            run.append(record)
            if len(run) > best["count"]:
                end = max(r["t"] + r["dur"] for r in run)
                best = {
                    "count": len(run),
                    "duration_s": round(end - run[0]["t"], 6),
                    "start": run[0]["t"],
                    "end": end,
                }
        else:
            run = []
    return best


# A probe that kept up: at least this share of the requests due in its window were sent, and no pause
# between two request starts (or the window's edges) was longer than MAX_GAP_S. A probe stalled or
# dead for a while would otherwise pass "no request failed".
MIN_SENT_SHARE = 0.95
MAX_GAP_S = 1.0


# Files the probe holds besides its sockets (output, stop file, standard streams), with room to spare.
SPARE_FILES = 64


def open_files_plan(concurrency: int, soft: int, hard: int, unlimited: int = -1) -> tuple[int, int]:
    """(soft limit to set, workers to run): each request in flight holds a socket, and a probe that runs out of
    files would count its own "Too many open files" as failed requests. The soft limit is raised up to the hard
    one; past that, fewer workers."""
    want = concurrency + SPARE_FILES
    if soft == unlimited or soft >= want:
        return soft, concurrency
    new_soft = want if hard == unlimited else min(want, hard)
    return new_soft, max(1, min(concurrency, new_soft - SPARE_FILES))


def kept_up(records: list[dict], rate: float, started: float, stopped: float) -> list[str]:
    """What says the probe did not keep up with ``rate`` requests/s from ``started`` to ``stopped`` (too few
    sent, or a gap), one sentence each; an empty list when it did. Followed redirects do not count."""
    starts = sorted(r["t"] for r in records if not r.get("follow") and started <= r["t"] <= stopped)
    due = rate * max(0.0, stopped - started)
    problems = []
    if len(starts) < MIN_SENT_SHARE * due:
        problems.append("the probe sent %d requests, fewer than %.0f %% of the %.0f due in %.1f s"
                        % (len(starts), 100 * MIN_SENT_SHARE, due, stopped - started))
    edges = [started] + starts + [stopped]
    gap, since = max(((b - a, a) for a, b in zip(edges, edges[1:])), default=(0.0, started))
    if gap > MAX_GAP_S:
        # Requests waiting for an answer halfway through the gap: as many as the probe has workers says the
        # schedule waited on slow answers, fewer that the probe itself did not run.
        middle = since + gap / 2
        waiting = [r for r in records if r["t"] <= middle < r["t"] + r.get("dur", 0.0)]
        problems.append("the probe sent nothing for %.1f s from %.1f s into its window (%d requests waiting for an"
                        " answer halfway through it%s)"
                        % (gap, since - started, len(waiting),
                           ", the longest %.1f s" % max(r["dur"] for r in waiting) if waiting else ""))
    return problems


def summarize(records: list[dict], fail_on_4xx: bool = False) -> dict:
    """Summary of probe records: what a user of the service experienced."""
    records = sorted(records, key=lambda r: (r["t"], r.get("seq", 0)))
    failed = [r for r in records if is_failed(r, fail_on_4xx)]
    by_status: dict[str, int] = {}
    by_version: dict[str, int] = {}
    by_variant: dict[str, int] = {}
    by_host: dict[str, int] = {}
    errors: dict[str, int] = {}
    versions: dict[str, dict] = {}
    for r in records:
        key = str(r["status"]) if r.get("status") is not None else "error"
        by_status[key] = by_status.get(key, 0) + 1
        if r.get("error"):
            errors[r["error"]] = errors.get(r["error"], 0) + 1
        if r.get("version"):
            by_version[r["version"]] = by_version.get(r["version"], 0) + 1
            span = versions.setdefault(r["version"], {"first": r["t"], "last": r["t"]})
            span["last"] = max(span["last"], r["t"])
        if r.get("variant"):
            by_variant[r["variant"]] = by_variant.get(r["variant"], 0) + 1
        if r.get("host"):
            by_host[r["host"]] = by_host.get(r["host"], 0) + 1
    durations = sorted(r["dur"] for r in records)
    first = records[0]["t"] if records else None
    last_end = max((r["t"] + r["dur"] for r in records), default=None)
    elapsed = (last_end - first) if records else 0.0
    send_span = (records[-1]["t"] - first) if records else 0.0
    return {
        "sent": len(records),
        "ok": len(records) - len(failed),
        "failed": len(failed),
        "failure_rate": round(len(failed) / len(records), 6) if records else 0.0,
        "by_status": dict(sorted(by_status.items())),
        "by_version": dict(sorted(by_version.items())),
        "by_variant": dict(sorted(by_variant.items())),
        "by_host": dict(sorted(by_host.items())),
        "errors": dict(sorted(errors.items())),
        "version_spans": versions,
        "latency_s": {
            "p50": percentile(durations, 50),
            "p95": percentile(durations, 95),
            "p99": percentile(durations, 99),
            "max": durations[-1] if durations else None,
        },
        "longest_failure_run": longest_failure_run(records, fail_on_4xx),
        "first_start": first,
        "elapsed_s": round(elapsed, 3),
        # Rate at which requests were started, not completed: slow answers
        # at the end must not make the sending rate look low.
        "achieved_rate": round((len(records) - 1) / send_span, 2) if send_span > 0 else 0.0,
    }


def format_summary(summary: dict) -> str:
    lat = summary["latency_s"]

    def ms(value):
        return "-" if value is None else "%.1f ms" % (value * 1000)

    run = summary["longest_failure_run"]
    lines = [
        "probe summary",
        "  sent:        %d over %.1f s (%.1f req/s)" % (summary["sent"], summary["elapsed_s"], summary["achieved_rate"]),
        "  failed:      %d (%.3f %%)" % (summary["failed"], 100.0 * summary["failure_rate"]),
        "  by status:   %s" % (", ".join("%s=%d" % kv for kv in summary["by_status"].items()) or "-"),
        "  by version:  %s" % (", ".join("%s=%d" % kv for kv in summary["by_version"].items()) or "-"),
    ]
    if summary["by_host"]:
        lines.append("  by host:     %s" % ", ".join("%s=%d" % kv for kv in summary["by_host"].items()))
    if summary["by_variant"]:
        lines.append("  by variant:  %s" % ", ".join("%s=%d" % kv for kv in summary["by_variant"].items()))
    if summary["errors"]:
        lines.append("  errors:      %s" % ", ".join("%s=%d" % kv for kv in summary["errors"].items()))
    lines.append("  latency:     p50 %s, p95 %s, p99 %s, max %s" % (ms(lat["p50"]), ms(lat["p95"]), ms(lat["p99"]), ms(lat["max"])))
    lines.append("  longest failure run: %d requests over %.3f s" % (run["count"], run["duration_s"]))
    return "\n".join(lines)


class Probe:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.targets = [parse_target(url) for url in args.url]
        self.specs = [parse_request_spec(text) for text in (args.request or ["GET /"])]
        self.mix = weighted_mix(self.specs, args.seed)
        self.headers = dict(_parse_header(h) for h in args.header or [])
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.seq = itertools.count()
        self.records: list[dict] = []
        # Per simulated user: the cookies the service set, and a lock so that a user sends one request at a time.
        self.jars: dict[str, dict[str, str]] = {}
        self.user_locks: dict[str, threading.Lock] = {}
        self.out = None
        self.t0 = 0.0
        self.go = threading.Event()

    # Scheduling: request i is due at t0 + i / rate. A free worker takes the
    # next index, so slow requests never lower the rate while workers remain.
    def _next_job(self):
        with self.lock:
            if self.stop.is_set():
                return None
            i = next(self.seq)
            if self.args.count is not None and i >= self.args.count:
                return None
            due = self.t0 + i / self.args.rate
            if due - self.t0 >= self.args.duration:
                return None
            spec = next(self.mix)
        target = self.targets[i % len(self.targets)]
        user = user_id(i, due - self.t0, self.args.users, self.args.user_lifetime) if self.args.users else None
        return i, due, target, spec, user

    def _send_with_follow(self, seq: int, target: Target, spec: RequestSpec, user: str | None) -> list[dict]:
        records = [self._send(seq, target, spec, user)]
        following = records[0]["next"]
        if self.args.follow_next and following and following.startswith("/"):
            records.append(dict(self._send(seq, target, RequestSpec("GET", following, 1, None), user), follow=True))
        return records

    def _send(self, seq: int, target: Target, spec: RequestSpec, user: str | None) -> dict:
        headers = dict(self.headers)
        headers.setdefault("User-Agent", "fleet-rollout-probe")
        headers["X-Probe-Seq"] = str(seq)
        if user:
            if self.args.user_header:
                headers[self.args.user_header] = user
            cookies = dict(self.jars.get(user, {})) if self.args.cookie_jar else {}
            if self.args.user_cookie:
                cookies[self.args.user_cookie] = user
            if cookies:
                headers["Cookie"] = "; ".join("%s=%s" % item for item in sorted(cookies.items()))
        body = spec.body.encode() if spec.body is not None else None
        if body is not None:
            headers.setdefault("Content-Type", "application/json")
        record = {
            "seq": seq,
            "t": time.time(),
            "dur": 0.0,
            "target": target.label,
            "method": spec.method,
            "path": spec.path,
            "user": user,
            "status": None,
            "error": None,
            "version": None,
            "host": None,
            "variant": None,
            "next": None,
            "request_id": None,
        }
        conn_class = http.client.HTTPSConnection if target.scheme == "https" else http.client.HTTPConnection
        conn = conn_class(target.host, target.port, timeout=self.args.timeout)
        started = time.monotonic()
        try:
            conn.request(spec.method, target.base_path + spec.path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            record["status"] = response.status
            record["version"] = response.getheader("X-App-Version")
            record["host"] = response.getheader("X-App-Host")
            record["variant"] = response.getheader(self.args.variant_header)
            record["next"] = response.getheader("X-Next")
            # The LB's id; an app that echoes it adds a second copy of the header.
            record["request_id"] = (response.getheader("X-Request-ID") or "").split(",")[0].strip() or None
            if user and self.args.cookie_jar:
                jar = self.jars.setdefault(user, {})
                jar.update(parse_set_cookie(value) for value in response.msg.get_all("Set-Cookie") or [])
        except socket.timeout:
            record["error"] = "timeout"
        except ConnectionRefusedError:
            record["error"] = "connection refused"
        except http.client.RemoteDisconnected:
            record["error"] = "remote disconnected"
        except ConnectionResetError:
            record["error"] = "connection reset"
        except (OSError, http.client.HTTPException) as exc:
            record["error"] = type(exc).__name__
        finally:
            conn.close()
        record["dur"] = round(time.monotonic() - started, 6)
        return record

    def _worker(self) -> None:
        self.go.wait()
        while True:
            job = self._next_job()
            if job is None:
                return
            seq, due, target, spec, user = job
            delay = due - time.time()
            if delay > 0 and self.stop.wait(delay):
                return
            if user and self.args.cookie_jar:
                with self.lock:
                    user_lock = self.user_locks.setdefault(user, threading.Lock())
                with user_lock:
                    records = self._send_with_follow(seq, target, spec, user)
            else:
                records = self._send_with_follow(seq, target, spec, user)
            with self.lock:
                for record in records:
                    self.records.append(record)
                    if self.out:
                        self.out.write(json.dumps(record, sort_keys=True) + "\n")

    def _watch_stop_file(self) -> None:
        while not self.stop.wait(0.2):
            if os.path.exists(self.args.stop_file):
                self.stop.set()

    def _fit_open_files(self) -> None:
        try:
            # POSIX only: imported where it is used.
            import resource  # pylint: disable=import-outside-toplevel
        except ImportError:
            return
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        new_soft, workers = open_files_plan(self.args.concurrency, soft, hard, resource.RLIM_INFINITY)
        if new_soft != soft:
            resource.setrlimit(resource.RLIMIT_NOFILE, (new_soft, hard))
        if workers < self.args.concurrency:
            sys.stderr.write("probe: %d workers, not %d: the open files limit is %d\n"
                             % (workers, self.args.concurrency, new_soft))
            self.args.concurrency = workers

    def run(self) -> dict:
        self._fit_open_files()
        if self.args.out:
            self.out = open(self.args.out, "w", encoding="utf-8", buffering=1)
        try:
            workers = [threading.Thread(target=self._worker, daemon=True) for n in range(self.args.concurrency)]
            if self.args.stop_file:
                threading.Thread(target=self._watch_stop_file, daemon=True).start()
            # The schedule starts once every worker runs: starting a thousand threads takes a while on a busy
            # host, and a schedule already under way would start with a burst of requests overdue.
            for worker in workers:
                worker.start()
            self.t0 = time.time() + 0.05
            self.go.set()
            for worker in workers:
                while worker.is_alive():
                    worker.join(0.2)
        finally:
            self.stop.set()
            self.go.set()
            if self.out:
                self.out.close()
        return summarize(self.records, self.args.fail_on_4xx)


def _parse_header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise ValueError("header %r: expected 'Name: value'" % text)
    return name.strip(), value.strip()


def load_records(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rollout_probe", description=__doc__.split("\n\n", maxsplit=1)[0])
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="send traffic and record every request")
    run.add_argument("--url", action="append", required=True, help="base URL; repeat for round robin")
    run.add_argument("--rate", type=float, default=20.0, help="requests per second (default 20)")
    run.add_argument("--duration", type=float, help="stop after this many seconds")
    run.add_argument("--count", type=int, help="stop after this many requests")
    # Users keep arriving when the service is slow: with too few workers, slow answers hold up the schedule
    # and the probe stops sending exactly when it matters (coordinated omission). At 100 requests/s, one of
    # two LBs answering nothing for 5 s holds 250 workers (seen here under load); 1024 cover 20 s of that.
    run.add_argument("--concurrency", type=int, default=1024, help="worker threads (default 1024)")
    run.add_argument("--timeout", type=float, default=10.0, help="per-request timeout in seconds (default 10)")
    run.add_argument("--request", action="append", help="'METHOD PATH [WEIGHT] [BODY]', repeatable")
    run.add_argument("--seed", type=int, default=1, help="seed of the random request mix (default 1)")
    run.add_argument("--header", action="append", help="'Name: value' sent with every request")
    run.add_argument("--users", type=int, default=0, help="number of simulated users (0: none)")
    run.add_argument("--user-cookie", help="cookie that carries the user id")
    run.add_argument("--user-header", help="header that carries the user id")
    run.add_argument("--cookie-jar", action="store_true",
                     help="each user keeps the cookies the service sets, and sends one request at a time")
    run.add_argument("--user-lifetime", type=float, help="seconds before a user is replaced by a new one")
    run.add_argument("--follow-next", action="store_true", help="request the path an X-Next header gives, at once")
    run.add_argument("--variant-header", default="X-Variant", help="response header recorded as the variant")
    run.add_argument("--fail-on-4xx", action="store_true", help="count 4xx answers as failed")
    run.add_argument("--out", help="JSON lines file, one line per request")
    run.add_argument("--summary-json", help="write the summary as JSON to this file")
    run.add_argument("--stop-file", help="stop early once this file exists")
    run.add_argument("--max-failed", type=int, help="exit 1 when more requests than this failed")

    summ = sub.add_parser("summarize", help="summarize a JSON lines file written by run")
    summ.add_argument("file")
    summ.add_argument("--fail-on-4xx", action="store_true")
    summ.add_argument("--json", action="store_true", help="print JSON instead of text")
    return parser


def validate_run_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.duration is None and args.count is None:
        parser.error("give --duration and/or --count: the probe always stops by itself")
    if args.count is not None and not 1 <= args.count <= MAX_COUNT:
        parser.error("--count must be between 1 and %d" % MAX_COUNT)
    if not 0 < args.rate <= MAX_RATE:
        parser.error("--rate must be above 0 and at most %g" % MAX_RATE)
    if args.duration is None:
        args.duration = min(MAX_DURATION_S, args.count / args.rate + 1.0)
    if not 0 < args.duration <= MAX_DURATION_S:
        parser.error("--duration must be above 0 and at most %g seconds" % MAX_DURATION_S)
    if args.concurrency < 1 or args.concurrency > 4096:
        parser.error("--concurrency must be between 1 and 4096")
    if args.users < 0:
        parser.error("--users must not be negative")
    if args.users and not (args.user_cookie or args.user_header or args.cookie_jar):
        parser.error("--users needs --user-cookie, --user-header or --cookie-jar to tell users apart")
    if (args.cookie_jar or args.user_lifetime is not None) and not args.users:
        parser.error("--cookie-jar and --user-lifetime need --users")
    if args.user_lifetime is not None and not args.user_lifetime > 0:
        parser.error("--user-lifetime must be above 0 seconds")
    try:
        for url in args.url:
            parse_target(url)
        for text in args.request or []:
            parse_request_spec(text)
        for text in args.header or []:
            _parse_header(text)
    except ValueError as exc:
        parser.error(str(exc))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "summarize":
        summary = summarize(load_records(args.file), args.fail_on_4xx)
        print(json.dumps(summary, indent=2, sort_keys=True) if args.json else format_summary(summary))
        return 0
    validate_run_args(parser, args)
    probe = Probe(args)

    def stop(signum, frame):
        probe.stop.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    summary = probe.run()
    if args.summary_json:
        with open(args.summary_json, "w", encoding="utf-8") as handle:
            json.dump(summary, handle, indent=2, sort_keys=True)
            handle.write("\n")
    print(format_summary(summary))
    if args.max_failed is not None and summary["failed"] > args.max_failed:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
