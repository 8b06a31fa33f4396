# Copyright: fleet.rollout contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rollout events: what a run says to the outside (chat, incident tools, CI) as it goes.

An event is one JSON object: ``event`` (one of ``EVENTS``), the service, strategy, version, the run's id,
the step and its verdict where there is one, the run's outcome and error, the report's path and one line a
person reads. ``final_event`` names the event a run ends with from what it recorded in the LB history;
``send`` posts an event to webhooks and never raises: a notification that cannot be made must not change
how a rollout ends."""

from __future__ import annotations

import json
import threading
import time
import urllib.error

from ansible.module_utils.urls import open_url

EVENTS = ("started", "step", "paused", "promoted", "aborted", "failed", "rolled_back", "succeeded")

# Record outcomes whose event does not depend on anything else.
_BY_OUTCOME = {
    "succeeded": "succeeded",
    "unchanged": "succeeded",
    "passed": "succeeded",  # a shadow whose report passed
    "promoted": "promoted",
    # A canary waiting for its promotion, an A/B test running until one is promoted.
    "awaiting_promotion": "paused",
    "started": "paused",
    "flipped_back": "rolled_back",
}
# Events that say a run went well: a run with an error (its body's, or its cleanup's) is never named so.
_WENT_WELL = ("succeeded", "promoted", "paused", "aborted")


def final_event(record, error: str = "", override: str = "") -> str:
    """The event a run ends with, from the event it recorded (``rollout_common_record``) and its error.

    A failed or stopped run whose change was taken back from users (a canary failed in its steps and put
    back, an A/B test's users sent back to the control) ended ``rolled_back``; one that left part of the fleet
    on the new release, or never reached users, ``failed``. ``override`` is a caller's own name for a run that
    went as it should (``aborted``: a take-back that worked, ``promoted``). ``error`` is any error of the run,
    its cleanup's included: a run with one is never named as one that went well."""
    if override and override not in EVENTS:
        raise ValueError("event: expected one of %s, got %r" % (", ".join(EVENTS), override))
    record = record if isinstance(record, dict) else {}
    outcome = str(record.get("outcome") or "")
    if override and not error and outcome not in ("failed", "stopped", "error"):
        name = override
    elif not record:
        name = "failed" if error else "succeeded"
    elif record.get("event") == "rollback":
        name = "rolled_back" if outcome in ("succeeded", "unchanged") else "failed"
    elif outcome in _BY_OUTCOME:
        name = _BY_OUTCOME[outcome]
    elif outcome in ("failed", "stopped"):
        took_back = bool(record.get("rolled_back")) and record.get("phase", "steps") == "steps"
        guard = record.get("strategy") == "ab_test" and bool(record.get("guard"))
        name = "rolled_back" if took_back or guard else "failed"
    else:
        name = "failed"
    return "failed" if error and name in _WENT_WELL else name


def message(event: dict) -> str:
    """One line for people: ``canary of shop to 2.0.0: step 2 (10 %) pass``."""
    head = "%s of %s to %s" % (event.get("strategy") or "rollout", event.get("service") or "?", event.get("version") or "?")
    name = event.get("event")
    if name == "step":
        step = event.get("step") or {}
        text = "%s: step %s" % (head, step.get("index", "?"))
        if step.get("weight") is not None:
            text += " (%s %%)" % ("%g" % step["weight"] if isinstance(step["weight"], float) else step["weight"])
        return text + " %s" % (event.get("verdict") or "done")
    text = "%s: %s" % (head, str(name).replace("_", " "))
    if event.get("error"):
        text += " - %s" % event["error"]
    return text


def _numbers(step):
    """A step's numbers as numbers: ansible-core before 2.19 templates them into strings."""
    if not isinstance(step, dict):
        return step
    step = dict(step)
    for key, kind in (("index", int), ("of", int), ("weight", float), ("share", float)):
        try:
            step[key] = kind(float(step[key])) if kind is int else kind(step[key])
        except (KeyError, TypeError, ValueError):
            pass
    return step


def build(name: str, run: dict, step=None, verdict=None, record=None, report=None, now=None) -> dict:
    """The event ``name`` of the run ``run`` (service, strategy, version, id, owner, started)."""
    if name not in EVENTS:
        raise ValueError("event: expected one of %s, got %r" % (", ".join(EVENTS), name))
    record = record if isinstance(record, dict) else {}
    event = {
        "event": name,
        "service": run.get("service"),
        # The run's (an entry point names its own: fleet.rollout.promote runs ramped for the canary), else the record's.
        "strategy": run.get("strategy") or record.get("strategy"),
        "version": record.get("version") or run.get("version"),
        "run": run.get("id"),
        "owner": run.get("owner"),
        "started": run.get("started"),
        "time": round(time.time() if now is None else now, 3),
        "step": _numbers(step),
        "verdict": verdict,
        "outcome": record.get("outcome"),
        "error": record.get("error") or run.get("error") or None,
        "report": report or None,
    }
    event["message"] = message(event)
    return event


def _webhook(entry) -> dict:
    if isinstance(entry, str):
        return {"url": entry, "headers": {}}
    if isinstance(entry, dict) and isinstance(entry.get("url"), str):
        return {"url": entry["url"], "headers": dict(entry.get("headers") or {})}
    raise ValueError("each webhook: expected a URL or {url: ..., headers: {...}}, got %s" % type(entry).__name__)


def _has_control(text: str) -> bool:
    return any(ord(char) < 32 or ord(char) == 127 for char in text)


def webhook_problems(webhooks) -> list[str]:
    """What is wrong with a list of webhooks, said without their URLs or headers (they often carry a token)."""
    if not isinstance(webhooks, list):
        return ["expected a list of URLs or {url, headers}, got %s" % type(webhooks).__name__]
    problems = []
    for index, entry in enumerate(webhooks):
        try:
            hook = _webhook(entry)
        except ValueError as exc:
            problems.append("item %d: %s" % (index + 1, exc))
            continue
        if not hook["url"].startswith(("http://", "https://")) or _has_control(hook["url"]) or " " in hook["url"]:
            problems.append("item %d: expected an http:// or https:// URL without spaces or control characters"
                            % (index + 1))
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in hook["headers"].items()):
            problems.append("item %d: header names and values must be strings" % (index + 1))
        elif any(_has_control(k) or _has_control(v) for k, v in hook["headers"].items()):
            # A value from a vault often ends in a newline: http.client would refuse it and say it whole.
            problems.append("item %d: a header name or value has a control character (a trailing newline?)" % (index + 1))
    return problems


def _post(hook: dict, body: bytes, timeout: float) -> dict:
    started = time.monotonic()
    headers = {"Content-Type": "application/json", "User-Agent": "fleet.rollout"}
    headers.update(hook["headers"])
    result = {"status": None, "error": None}
    try:
        # A redirect is an answer, not a hop: following it would send the headers (a token) to another place.
        response = open_url(hook["url"], data=body, headers=headers, method="POST", timeout=timeout,
                            follow_redirects="none")
        with response:
            response.read(65536)
            result["status"] = response.status
    except urllib.error.HTTPError as exc:
        result["status"] = exc.code
        result["error"] = "HTTP %d" % exc.code
    except urllib.error.URLError as exc:
        # The reason of a refused or timed-out connection, never the URL or a header.
        reason = exc.reason
        result["error"] = ("%s%s" % (type(reason).__name__, ": %s" % reason.strerror if getattr(reason, "strerror", None)
                                     else "") if isinstance(reason, BaseException) else "no answer")
    except (TimeoutError, OSError) as exc:
        result["error"] = "%s%s" % (type(exc).__name__, ": %s" % exc.strerror if getattr(exc, "strerror", None) else "")
    # Whatever else (http.client's InvalidURL, BadStatusLine, ...): a notification never stops a run.
    except Exception as exc:  # pylint: disable=broad-exception-caught
        result["error"] = type(exc).__name__
    result["seconds"] = round(time.monotonic() - started, 3)
    return result


def send(webhooks, event: dict, timeout: float = 5.0) -> list[dict]:
    """POST ``event`` as JSON to every webhook at once; one result per webhook, in order, never raising.

    A result names the webhook by its place in the list (``index``, from 1), not its URL. The whole call takes
    at most about ``timeout`` seconds plus one, however many webhooks hang."""
    problems = webhook_problems(webhooks)
    if problems:
        return [{"index": 0, "status": None, "error": "; ".join(problems), "seconds": 0.0}]
    hooks = [_webhook(entry) for entry in webhooks]
    body = json.dumps(event, sort_keys=True).encode()
    results: list = [None] * len(hooks)

    def worker(position: int) -> None:
        results[position] = dict(_post(hooks[position], body, timeout), index=position + 1)

    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(len(hooks))]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout + 1.0
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return [result or {"index": n + 1, "status": None, "error": "no answer in time", "seconds": timeout}
            for n, result in enumerate(results)]
