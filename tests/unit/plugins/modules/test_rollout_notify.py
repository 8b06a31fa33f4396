"""fleet.rollout.rollout_notify and the rollout events, against real HTTP servers on loopback (a receiver that
takes events, one that answers 500, one that never answers, a port nothing listens on)."""

from __future__ import annotations

import http.server
import json
import threading
import time

import pytest

from ansible_collections.fleet.rollout.plugins.filter import rollout_event as event_filters
from ansible_collections.fleet.rollout.plugins.module_utils import _rollout_event
from ansible_collections.fleet.rollout.plugins.modules import rollout_notify

RUN = {"service": "shop", "strategy": "canary", "version": "2.0.0", "id": "20261208T040000Z-1", "owner": "ops@ctl",
       "started": 1796000000.0}


class Receiver:
    """An HTTP server on loopback answering every POST with ``status`` after ``delay`` s, keeping what it got."""

    def __init__(self, status=204, delay=0.0):
        self.got = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.got.append({"path": self.path, "headers": dict(self.headers), "body": json.loads(body)})
                time.sleep(delay)
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers():
    made = []

    def make(**kwargs):
        made.append(Receiver(**kwargs))
        return made[-1]

    yield make
    for receiver in made:
        receiver.close()


def test_every_webhook_gets_the_event_with_its_headers(run_module, receivers):
    chat, incidents = receivers(), receivers(status=200)
    event = event_filters.rollout_event("started", RUN)
    result = run_module(rollout_notify.main, {
        "webhooks": [chat.url + "/hook", {"url": incidents.url + "/api", "headers": {"Authorization": "Bearer s3cret"}}],
        "event": event})
    assert not result.get("failed") and result["changed"] and result["failed_webhooks"] == 0
    assert [(r["index"], r["status"], r["error"]) for r in result["sent"]] == [(1, 204, None), (2, 200, None)]
    assert chat.got[0]["path"] == "/hook" and chat.got[0]["body"] == event
    assert incidents.got[0]["headers"]["Authorization"] == "Bearer s3cret"
    assert incidents.got[0]["headers"]["Content-Type"] == "application/json"
    assert event["message"] == "canary of shop to 2.0.0: started" and event["run"] == RUN["id"]


def test_a_webhook_that_fails_or_hangs_is_a_warning_not_a_failure_and_does_not_hold_the_others(run_module, receivers):
    good, broken, hung = receivers(), receivers(status=500), receivers(delay=3.0)
    start = time.monotonic()
    result = run_module(rollout_notify.main, {
        "webhooks": [broken.url, hung.url, "http://127.0.0.1:9/closed", good.url],
        "event": event_filters.rollout_event("failed", RUN), "timeout": 1})
    took = time.monotonic() - start
    assert not result.get("failed") and result["failed_webhooks"] == 3 and result["changed"]
    sent = {r["index"]: r for r in result["sent"]}
    assert sent[1]["status"] == 500 and sent[1]["error"] == "HTTP 500"
    assert sent[2]["status"] is None and "Timeout" in sent[2]["error"]
    assert sent[3]["status"] is None and sent[3]["error"] == "ConnectionRefusedError: Connection refused"
    assert sent[4]["status"] == 204 and len(good.got) == 1
    # At once: the hung webhook's timeout (1 s) bounds the call, not the sum of the webhooks' times.
    assert took < 2.5, took
    warnings = " ".join(result["warnings"])
    assert "webhook 1 of 4 did not take the failed event: HTTP 500" in warnings
    assert "127.0.0.1" not in warnings and "closed" not in json.dumps(result["sent"])  # no URL said


def test_check_mode_sends_nothing(run_module, receivers):
    receiver = receivers()
    result = run_module(rollout_notify.main, {"webhooks": [receiver.url], "event": {"event": "started", "message": "m"}},
                        check_mode=True)
    assert result["sent"] == [] and not result["changed"] and receiver.got == []


@pytest.mark.parametrize("webhooks, timeout, said", [
    (["ftp://x"], 5, "item 1: expected an http:// or https:// URL"),
    (["http://x/a\nb"], 5, "item 1: expected an http:// or https:// URL without spaces or control characters"),
    ([{"headers": {}}], 5, "item 1: each webhook: expected a URL or {url: ..., headers: {...}}, got dict"),
    ([{"url": "http://x", "headers": {"X": 1}}], 5, "item 1: header names and values must be strings"),
    # A vaulted token with its trailing newline: refused, and not said.
    ([{"url": "http://x", "headers": {"Authorization": "Bearer s3cret\n"}}], 5,
     "item 1: a header name or value has a control character (a trailing newline?)"),
    (["http://x"], 0, "timeout: expected seconds above 0 and at most 60, got 0.0"),
])
def test_bad_input_fails_naming_what_is_wrong_without_the_urls(run_module, webhooks, timeout, said):
    result = run_module(rollout_notify.main, {"webhooks": webhooks, "event": {"event": "started"}, "timeout": timeout})
    assert result["failed"] and said in result["msg"], result["msg"]
    assert "s3cret" not in json.dumps(result)


@pytest.mark.parametrize("record, error, override, expected", [
    (None, "", "", "succeeded"),  # nothing to change
    (None, "an A/B promotion failed", "promoted", "failed"),
    ({"strategy": "ramped", "outcome": "succeeded"}, "", "", "succeeded"),
    # The record said succeeded, but the cleanup could not reach an LB: the run fails, and so does its event.
    ({"strategy": "ramped", "outcome": "succeeded"}, "could not reach fleet-lb2", "", "failed"),
    ({"strategy": "ramped", "outcome": "stopped"}, "", "", "failed"),  # failure budget spent: part of the fleet is new
    ({"strategy": "canary", "outcome": "promoted"}, "", "", "promoted"),
    ({"strategy": "canary", "outcome": "awaiting_promotion"}, "", "", "paused"),
    ({"strategy": "canary", "outcome": "failed", "phase": "steps", "rolled_back": ["app1"]}, "x", "", "rolled_back"),
    ({"strategy": "canary", "outcome": "failed", "phase": "promote", "rolled_back": ["app1"]}, "x", "", "failed"),
    # Failed while its release went in, before any user was sent to it: nothing was rolled back from users.
    ({"strategy": "canary", "outcome": "failed", "phase": "deploy", "rolled_back": ["app1"]}, "x", "", "failed"),
    ({"strategy": "blue_green", "outcome": "flipped_back"}, "x", "", "rolled_back"),
    ({"strategy": "blue_green", "outcome": "failed"}, "x", "", "failed"),  # the smoke test failed before the flip
    ({"strategy": "ab_test", "outcome": "started"}, "", "", "paused"),
    ({"strategy": "ab_test", "outcome": "stopped", "guard": {"variant": "b"}}, "x", "", "rolled_back"),
    ({"strategy": "shadow", "outcome": "passed"}, "", "", "succeeded"),
    ({"strategy": "shadow", "outcome": "failed"}, "", "", "failed"),  # its report failed: the run fails after
    ({"strategy": "shadow", "outcome": "error", "error": "the mirror could not be removed"}, "", "", "failed"),
    ({"event": "rollback", "outcome": "succeeded"}, "", "", "rolled_back"),
    ({"event": "rollback", "outcome": "failed"}, "x", "", "failed"),
    ({"strategy": "ramped", "outcome": "succeeded"}, "", "aborted", "aborted"),
    # An abort whose take-back stopped on the failure budget (ramped sets no error for that): not "aborted".
    ({"strategy": "ramped", "outcome": "stopped"}, "", "aborted", "failed"),
    ({"strategy": "ramped", "outcome": "succeeded"}, "a batch failed", "aborted", "failed"),
])
def test_the_last_event_is_named_from_what_the_run_recorded(record, error, override, expected):
    assert event_filters.rollout_final_event(record, error, override) == expected


def test_events_carry_the_step_the_record_and_the_report():
    step = {"index": 2, "of": 4, "weight": 10.0, "counted_as": "pass"}
    event = event_filters.rollout_event("step", RUN, step=step, verdict="pass")
    assert event["step"] == step and event["verdict"] == "pass" and event["outcome"] is None
    # As ansible-core before 2.19 templates them: strings, sent as numbers all the same.
    as_text = event_filters.rollout_event("step", RUN, step={"index": "2", "of": "4", "weight": "10.0", "share": "9.8"})
    assert as_text["step"] == {"index": 2, "of": 4, "weight": 10.0, "share": 9.8}
    assert event["message"] == "canary of shop to 2.0.0: step 2 (10 %) pass"
    record = {"strategy": "canary", "version": "2.0.0", "outcome": "failed", "error": "step 1 (5 %) failed its analysis"}
    last = event_filters.rollout_event("rolled_back", RUN, record=record, report="/r/shop-1.md")
    assert last["outcome"] == "failed" and last["report"] == "/r/shop-1.md"
    assert last["message"] == "canary of shop to 2.0.0: rolled back - step 1 (5 %) failed its analysis"
    with pytest.raises(ValueError, match="event: expected one of started, step"):
        event_filters.rollout_event("done", RUN)
    with pytest.raises(ValueError):
        event_filters.rollout_final_event({}, "", "finished")


def test_notification_input_problems_name_the_variable():
    ok = event_filters.rollout_notify_problems(["https://chat.example.com/x"], [], 5)
    assert ok == []
    problems = event_filters.rollout_notify_problems("https://x", "hooks.yml", 90)
    assert problems == [
        "rollout_notify_webhooks: expected a list of URLs or {url, headers}, got str",
        "rollout_notify_tasks: expected a list of task file paths, got 'hooks.yml'",
        "rollout_notify_timeout: expected seconds above 0 and at most 60, got 90",
    ]


def test_send_never_raises_on_a_malformed_list():
    assert _rollout_event.send("http://x", {"event": "started"})[0]["error"].startswith("expected a list")


def test_a_redirect_is_not_followed_so_the_headers_go_nowhere_else(run_module, receivers):
    target = receivers()
    redirect = receivers(status=302)
    original = redirect.server.RequestHandlerClass.do_POST

    def do_post(handler):
        handler.rfile.read(int(handler.headers["Content-Length"]))
        handler.send_response(302)
        handler.send_header("Location", target.url + "/elsewhere")
        handler.end_headers()

    redirect.server.RequestHandlerClass.do_POST = do_post
    try:
        result = run_module(rollout_notify.main, {
            "webhooks": [{"url": redirect.url, "headers": {"Authorization": "Bearer s3cret"}}],
            "event": {"event": "started", "message": "m"}})
    finally:
        redirect.server.RequestHandlerClass.do_POST = original
    assert result["sent"][0]["status"] == 302 and result["sent"][0]["error"] == "HTTP 302"
    assert result["failed_webhooks"] == 1 and target.got == []


def test_many_hung_webhooks_cost_the_timeout_once(receivers):
    hung = [receivers(delay=3.0) for _hook in range(4)]
    start = time.monotonic()
    results = _rollout_event.send([h.url for h in hung], {"event": "started"}, timeout=0.5)
    took = time.monotonic() - start
    assert [r["error"] for r in results if r["error"]] and len(results) == 4
    assert took < 2.0, took


def test_task_files_must_be_absolute_paths_of_files_on_the_controller(tmp_path):
    hook = tmp_path / "events.yml"
    hook.write_text("---\n")
    assert event_filters.rollout_notify_problems([], [str(hook)], 5) == []
    assert event_filters.rollout_notify_problems([], ["hooks/events.yml", str(tmp_path / "absent.yml")], 5) == [
        "rollout_notify_tasks: expected an absolute path (such as {{ inventory_dir }}/hooks/events.yml), got "
        "'hooks/events.yml'",
        "rollout_notify_tasks: no such file on the controller: %s" % (tmp_path / "absent.yml"),
    ]
