# Copyright: fleet.rollout contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Wait until a URL answers healthy N consecutive times within a timeout.

The logic behind ``fleet.rollout.health_gate``. Standard library only: it
runs on the managed node. The clock and the sleep are injectable so a test
can decide exactly what happens between two probes, while the probes
themselves go to a real server.
"""

from __future__ import annotations

import http.client
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

BODY_EXCERPT = 200
BODY_READ_LIMIT = 65536
MIN_REQUEST_TIMEOUT = 0.05


class GateFailed(Exception):
    """The URL did not answer healthy often enough in time; ``result`` has the details."""

    def __init__(self, message: str, result: dict):
        super().__init__(message)
        self.result = result


@dataclass
class Answer:
    healthy: bool
    status: int | None = None
    body: str = ""
    error: str | None = None

    def describe(self) -> str:
        if self.status is None:
            return "no HTTP answer (%s)" % self.error
        text = "HTTP %d" % self.status
        excerpt = " ".join(self.body.split())[:BODY_EXCERPT]
        if excerpt:
            text += " %r" % excerpt
        if self.error:
            text += " (%s)" % self.error
        return text


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A health endpoint is judged by its own answer: a redirect is a status, not a hop."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def probe(url: str, request_timeout: float, status_codes, body_contains: str | None = None) -> Answer:
    """One GET of ``url``; healthy when the status is expected and the body has ``body_contains``."""
    request = urllib.request.Request(url, headers={"User-Agent": "fleet.rollout-health-gate", "Connection": "close"})
    try:
        with _OPENER.open(request, timeout=request_timeout) as response:
            status, raw = response.status, response.read(BODY_READ_LIMIT)
    except urllib.error.HTTPError as exc:
        status = exc.code
        try:
            raw = exc.read(BODY_READ_LIMIT)
        except (OSError, http.client.HTTPException):
            raw = b""
        finally:
            exc.close()
    except urllib.error.URLError as exc:
        return Answer(False, error=_reason(exc.reason))
    except (OSError, http.client.HTTPException, ValueError) as exc:
        return Answer(False, error=_reason(exc))
    body = raw.decode("utf-8", errors="replace")
    if status not in status_codes:
        return Answer(False, status, body, "status %d is not one of %s" % (status, sorted(status_codes)))
    if body_contains and body_contains not in body:
        return Answer(False, status, body, "body does not contain %r" % body_contains)
    return Answer(True, status, body)


def _reason(exc) -> str:
    if isinstance(exc, str):
        return exc
    text = str(exc) or exc.__class__.__name__
    if isinstance(exc, TimeoutError) or text == "timed out":
        return "timed out"
    return text


def wait_healthy(url: str, successes: int = 3, timeout: float = 60.0, interval: float = 1.0,
                 request_timeout: float = 5.0, status_codes=(200,), body_contains: str | None = None,
                 clock=time.monotonic, sleep=time.sleep) -> dict:
    """Probe ``url`` every ``interval`` s until ``successes`` healthy answers in a row.

    Returns the result dict (``healthy`` true); raises GateFailed with the
    same dict (``healthy`` false) when ``timeout`` s pass first. A request
    never waits beyond the deadline (nor less than 50 ms), so the whole gate
    takes about ``timeout`` s at most.
    """
    codes = frozenset(status_codes)
    started = clock()
    deadline = started + timeout
    attempts = consecutive = best = 0
    answer = None
    while True:
        remaining = deadline - clock()
        answer = probe(url, max(min(request_timeout, remaining), MIN_REQUEST_TIMEOUT), codes, body_contains)
        attempts += 1
        consecutive = consecutive + 1 if answer.healthy else 0
        best = max(best, consecutive)
        if consecutive >= successes:
            return _result(True, attempts, consecutive, best, clock() - started, answer)
        remaining = deadline - clock()
        if remaining <= 0:
            break
        sleep(min(interval, remaining))
    result = _result(False, attempts, consecutive, best, clock() - started, answer)
    message = "health gate: %s did not answer healthy %d times in a row within %ss (best run: %d of %d consecutive " \
        "successes, %d attempts); last answer: %s" % (url, successes, timeout, best, successes, attempts, answer.describe())
    raise GateFailed(message, result)


def _result(healthy: bool, attempts: int, consecutive: int, best: int, elapsed: float, answer: Answer) -> dict:
    return {
        "healthy": healthy,
        "attempts": attempts,
        "consecutive": consecutive,
        "best_consecutive": best,
        "elapsed": round(elapsed, 3),
        "last_status": answer.status,
        "last_error": answer.error,
        "last_body": answer.body[:BODY_EXCERPT],
    }
