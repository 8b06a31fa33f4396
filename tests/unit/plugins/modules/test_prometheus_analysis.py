"""fleet.rollout.prometheus_analysis against a real Prometheus scraping a real HAProxy's built-in exporter.

HAProxy balances one backend over a canary that answers every fourth request with a 500 (and 20 ms late) and a
stable sample app; Prometheus (the Debian package's binary, run by the test on loopback) scrapes HAProxy every
second. The module's verdicts come from the measured numbers, which must match what the servers answered.

HAProxy 2.6's exporter divides a server's time averages by its full 512-request window, also before the server
has answered 512 requests (``show stat`` does not): after 100 requests of 22 ms it exports 0.005 s. So each
server gets 512 requests here, sent 8 at a time.
"""

from __future__ import annotations

import concurrent.futures
import http.server
import json
import os
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from ansible_collections.fleet.rollout.plugins.modules import prometheus_analysis

PROMETHEUS = "/usr/bin/prometheus"
WAIT = 60.0  # seconds any one wait may take on a loaded machine (each is a poll that returns as soon as it can)
REQUESTS = 1024  # 512 per server: see above
CONCURRENCY = 8
CANARY_DELAY = 0.02

RATE = ('sum(increase(haproxy_server_http_responses_total{proxy="$backend",server=~"$%s",code="5xx"}[$window]))'
        ' / sum(increase(haproxy_server_http_responses_total{proxy="$backend",server=~"$%s"}[$window])) * 100')
LATENCY = 'max(haproxy_server_total_time_average_seconds{proxy="$backend",server=~"$%s"})'
QUERIES = {
    "canary": {"error_rate": RATE % ("canary_servers", "canary_servers"), "latency": LATENCY % "canary_servers"},
    "baseline": {"error_rate": RATE % ("baseline_servers", "baseline_servers"), "latency": LATENCY % "baseline_servers"},
}
PLACEHOLDERS = {"backend": "app", "canary_servers": ["canary"], "baseline_servers": ["stable"], "window": "10m"}


def poll(check, message, timeout=WAIT, interval=0.1):
    """``check()``'s first truthy value, polled until ``timeout``; AssertionError with ``message`` after."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(message() if callable(message) else message)
        time.sleep(interval)


class Prometheus:
    """A real Prometheus server on loopback with its config, data and log in a temp dir."""

    def __init__(self, workdir, port, scrape_targets):
        if not os.access(PROMETHEUS, os.X_OK):
            pytest.fail("%s is missing: run `make bootstrap` (it installs the Debian package prometheus)" % PROMETHEUS)
        self.dir = str(workdir)
        os.makedirs(self.dir, exist_ok=True)
        self.url = "http://127.0.0.1:%d" % port
        self.log = os.path.join(self.dir, "prometheus.log")
        config = os.path.join(self.dir, "prometheus.yml")
        scrape = [{"job_name": "haproxy", "metrics_path": "/metrics",
                   "static_configs": [{"targets": list(scrape_targets)}]}] if scrape_targets else []
        with open(config, "w", encoding="utf-8") as handle:
            # JSON is YAML.
            json.dump({"global": {"scrape_interval": "1s", "evaluation_interval": "1s"}, "scrape_configs": scrape},
                      handle)
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(  # pylint: disable=consider-using-with
                [PROMETHEUS, "--config.file=" + config, "--storage.tsdb.path=" + os.path.join(self.dir, "data"),
                 "--web.listen-address=127.0.0.1:%d" % port, "--log.level=warn"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        poll(self._ready, lambda: "Prometheus did not get ready in %.0f s: %s" % (WAIT, self.log_tail()))

    def _ready(self):
        if self.process.poll() is not None:
            raise AssertionError("Prometheus exited with %s: %s" % (self.process.returncode, self.log_tail()))
        try:
            with urllib.request.urlopen(self.url + "/-/ready", timeout=5) as response:
                return response.status == 200
        except (OSError, urllib.error.URLError):
            return False

    def value(self, query):
        """The one number ``query`` gives now, None for no data (the test's own view, not the module's)."""
        with urllib.request.urlopen(self.url + "/api/v1/query?" + urllib.parse.urlencode({"query": query}),
                                    timeout=10) as response:
            result = json.load(response)["data"]["result"]
        return float(result[0]["value"][1]) if result else None

    def log_tail(self, lines=20):
        try:
            with open(self.log, encoding="utf-8", errors="replace") as handle:
                return "".join(handle.readlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        shutil.rmtree(os.path.join(self.dir, "data"), ignore_errors=True)


@pytest.fixture
def prometheus(tmp_path, free_port):
    """``prometheus(["127.0.0.1:port", ...])`` → a started ``Prometheus`` scraping those targets every second."""
    servers = []

    def start(scrape_targets=()):
        server = Prometheus(tmp_path / ("prometheus%d" % len(servers)), free_port(), scrape_targets)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


class CanaryHandler(http.server.BaseHTTPRequestHandler):
    """Every fourth request gets a 500; every request takes CANARY_DELAY seconds."""

    lock = threading.Lock()
    answered = {"requests": 0, "errors": 0}

    def do_GET(self):  # pylint: disable=invalid-name
        time.sleep(CANARY_DELAY)
        with self.lock:
            self.answered["requests"] += 1
            error = self.answered["requests"] % 4 == 0
            self.answered["errors"] += error
        body = b"canary error\n" if error else b"canary ok\n"
        self.send_response(500 if error else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # pylint: disable=arguments-differ
        pass


@pytest.fixture
def canary_app():
    """(server, "127.0.0.1:port") of a fresh canary backend (its counts in ``server.RequestHandlerClass.answered``)."""
    handler = type("Canary", (CanaryHandler,), {"lock": threading.Lock(), "answered": {"requests": 0, "errors": 0}})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server, "127.0.0.1:%d" % server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def measured(haproxy_lab, run_app, canary_app, prometheus, get_url):
    """HAProxy (exporter on /metrics) in front of canary + stable, scraped by Prometheus, after REQUESTS requests."""
    canary, canary_address = canary_app
    stable_url = run_app(version="1.0.0")[1]
    lab = haproxy_lab({"app": ["canary %s" % canary_address, "stable %s" % stable_url[len("http://"):]]},
                      frontend_rules=["http-request use-service prometheus-exporter if {{ path /metrics }}"])
    status, _headers, body = get_url(lab.url + "/metrics")
    assert status == 200 and 'haproxy_server_http_responses_total{proxy="app",server="canary",code="5xx"} 0' in body
    assert 'haproxy_server_total_time_average_seconds{proxy="app",server="canary"}' in body
    prom = prometheus(["127.0.0.1:%d" % lab.port])
    # Two scrapes of the idle counters first: the window's first samples are zeros, so increase() starts from them.
    scrapes = 'count_over_time(up{job="haproxy"}[1h])'
    poll(lambda: (prom.value('up{job="haproxy"}') == 1.0 and (prom.value(scrapes) or 0) >= 2),
         lambda: "Prometheus never scraped HAProxy twice: %s" % prom.log_tail())
    with concurrent.futures.ThreadPoolExecutor(CONCURRENCY) as pool:
        statuses = [answer[0] for answer in pool.map(get_url, [lab.url + "/"] * REQUESTS)]
    assert statuses.count(500) == REQUESTS // 8 and statuses.count(200) == REQUESTS - REQUESTS // 8, statuses
    total = 'sum(haproxy_server_http_responses_total{proxy="app"})'
    poll(lambda: prom.value(total) == REQUESTS, lambda: "Prometheus never saw %d responses (%s)"
         % (REQUESTS, prom.value(total)))
    after = prom.value(scrapes)
    poll(lambda: prom.value(scrapes) >= after + 2, "Prometheus stopped scraping HAProxy")  # >= 3 scrapes after traffic
    return prom, canary.RequestHandlerClass.answered


def run(run_module, prom, **kwargs):
    args = {"url": prom.url, "queries": QUERIES, "placeholders": PLACEHOLDERS}
    args.update(kwargs)
    return run_module(prometheus_analysis.main, args)


def test_a_canary_failing_every_fourth_request_fails_at_1_percent_and_passes_at_50(measured, run_module):
    prom, answered = measured
    assert answered == {"requests": REQUESTS // 2, "errors": REQUESTS // 8}
    true_share = 100.0 * answered["errors"] / answered["requests"]

    out = run(run_module, prom, max_error_rate=1, time=time.time())
    assert out["changed"] is False and out["verdict"] == "fail", out
    canary, baseline = out["canary"], out["baseline"]
    assert abs(canary["error_rate"] - true_share) < 0.5 and abs(canary["error_rate"] - 25.0) < 5, out
    assert baseline["error_rate"] == 0.0
    # HAProxy's average over the server's last 512 requests: the canary's 20 ms delay shows, the stable app is fast.
    # (Both sides run in this busy test process, so only the canary's extra delay is certain.)
    assert CANARY_DELAY * 0.8 <= canary["latency"] < CANARY_DELAY + 0.2, out
    assert canary["latency"] - baseline["latency"] >= CANARY_DELAY / 2, out
    assert out["reasons"][0] == "prometheus: canary error rate %.2f %% is over the 1.00 %% ceiling" % canary["error_rate"]
    assert out["reasons"][1].startswith("prometheus: canary error rate %.2f %% is higher than the baseline's 0.00 %%"
                                        % canary["error_rate"])
    assert out["reasons"][2].startswith("prometheus: canary is slower: latency")
    assert out["summary"].startswith("FAIL: canary errors %.2f %%" % canary["error_rate"])
    assert out["queries"]["canary"]["error_rate"] == (
        'sum(increase(haproxy_server_http_responses_total{proxy="app",server=~"canary",code="5xx"}[10m]))'
        ' / sum(increase(haproxy_server_http_responses_total{proxy="app",server=~"canary"}[10m])) * 100')
    assert out["queries"]["baseline"]["latency"] == (
        'max(haproxy_server_total_time_average_seconds{proxy="app",server=~"stable"})')

    out = run(run_module, prom, max_error_rate=50, error_rate_tolerance=30, latency_tolerance_seconds=0.5)
    assert out["verdict"] == "pass" and out["reasons"] == [], out
    assert abs(out["canary"]["error_rate"] - true_share) < 0.5

    # A canary no request reached (a server name with no series) cannot be judged; nothing fails.
    out = run(run_module, prom, placeholders=dict(PLACEHOLDERS, canary_servers=["nobody"]))
    assert out["verdict"] == "inconclusive" and out["canary"] == {"error_rate": None, "latency": None}, out

    # Per-server series, not aggregated: refused with a hint.
    queries = dict(QUERIES, baseline={"error_rate": 'haproxy_server_http_responses_total{proxy="app",code="5xx"}'})
    out = run(run_module, prom, queries=queries)
    assert out["failed"] and out["msg"].startswith("baseline error rate: the query "), out
    assert "gave 2 series (" in out["msg"] and "aggregate it, such as sum(...)" in out["msg"]


def test_a_query_prometheus_refuses_fails_with_its_error_text(prometheus, run_module):
    prom = prometheus()
    queries = {"canary": {"error_rate": "sum(rate(haproxy_server_http_responses_total[$window])"},
               "baseline": {"error_rate": "0"}}
    out = run_module(prometheus_analysis.main, {"url": prom.url, "queries": queries, "placeholders": {"window": "1m"}})
    assert out["failed"] is True
    assert out["msg"].startswith("canary error rate: Prometheus refused the query "
                                 "'sum(rate(haproxy_server_http_responses_total[1m])': bad_data: "), out
    assert "parse error" in out["msg"]


def test_a_missing_placeholder_fails_before_prometheus_is_asked(free_port, run_module):
    out = run_module(prometheus_analysis.main, {"url": "http://127.0.0.1:%d" % free_port(), "queries": QUERIES,
                                                "placeholders": {"backend": "app", "window": "5m"}})
    assert out["failed"] is True and "no answer" not in out["msg"]
    assert "queries.canary.error_rate: unknown placeholder $canary_servers" in out["msg"]


def test_an_unreachable_prometheus_fails_naming_its_url_without_credentials(free_port, run_module):
    port = free_port()
    out = run_module(prometheus_analysis.main, {"url": "http://watcher:s3cret@127.0.0.1:%d/" % port,
                                                "queries": QUERIES, "placeholders": PLACEHOLDERS, "timeout": 5})
    assert out["failed"] is True
    assert out["msg"].startswith("canary error rate: no answer from Prometheus at "
                                 "http://***@127.0.0.1:%d/api/v1/query: " % port), out
    assert "Connection refused" in out["msg"] and "s3cret" not in out["msg"] and "watcher" not in out["msg"]
