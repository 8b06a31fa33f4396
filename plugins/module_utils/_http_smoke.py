# Copyright: fleet.rollout contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Smoke-test a release: send N GETs to a URL and check that every one passed.

The logic behind ``fleet.rollout.http_smoke``. Standard library only: it runs
on a load balancer host and sends the requests through the LB's route (for
example its preview route) to the new release. Every request opens its own
connection, so the LB balances each one anew and a keep-alive connection
cannot pin all of them to one server.

A request passes when its status is expected (any 2xx, or one of
``expect_status``) and every header of ``expect_headers`` has exactly the
expected value. Each failed request is given one reason, so the failure
groups add up to the failed count.
"""

from __future__ import annotations

import http.client
import re
import socket
import time
from urllib.parse import urlsplit

USER_AGENT = "fleet.rollout-http-smoke"
MAX_SAMPLES = 5
SUMMARY_GROUPS = 5
READ_CHUNK = 65536
# A smoke answer is small; past this the rest of the body is not read (the request still counts).
BODY_READ_LIMIT = 8 * 1024 * 1024

_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_BAD_VALUE = re.compile(r"[\r\n\x00]")
_BAD_URL = re.compile(r"[\x00-\x20\x7f]")


# --- validation ---------------------------------------------------------------


def check_url(url) -> str:
    """The URL, stripped; ValueError unless it is an http:// or https:// URL with a host."""
    if not isinstance(url, str):
        raise ValueError("url must be an http:// or https:// URL with a host, got %r" % (url,))
    text = url.strip()
    if _BAD_URL.search(text):
        raise ValueError("url must not contain spaces or control characters, got %r" % url)
    try:
        parts = urlsplit(text)
    except ValueError:
        raise ValueError("url must be an http:// or https:// URL with a host, got %r" % url) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("url must be an http:// or https:// URL with a host, got %r" % url)
    if not (parts.path + parts.query).isascii():
        raise ValueError("url: percent-encode the non-ASCII characters of the path and query, got %r" % url)
    try:
        parts.port
    except ValueError:
        raise ValueError("url has an invalid port, got %r" % url) from None
    if parts.username is not None or parts.password is not None:
        raise ValueError("url must not contain credentials (user@host); send them with headers, got %r"
                         % _without_userinfo(parts))
    return text


def check_count(count) -> int:
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError("count must be at least 1, got %r" % (count,))
    return count


def check_timeout(timeout) -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ValueError("timeout must be above 0 seconds, got %r" % (timeout,))
    return float(timeout)


def check_interval(interval) -> float:
    if isinstance(interval, bool) or not isinstance(interval, (int, float)) or not interval >= 0:
        raise ValueError("interval must be 0 or more seconds, got %r" % (interval,))
    return float(interval)


def check_expect_status(expect_status) -> frozenset:
    """The expected statuses as a set; empty means any 2xx."""
    codes = list(expect_status or [])
    bad = [code for code in codes if isinstance(code, bool) or not isinstance(code, int) or not 100 <= code <= 599]
    if bad:
        raise ValueError("expect_status must list HTTP statuses (100-599), got %r" % (bad,))
    return frozenset(codes)


def check_headers(headers, option: str = "headers") -> dict:
    """Header names and values as strings; ValueError naming ``option`` for a bad name or value.

    Numbers are accepted as values (YAML reads ``X-Rollout-Preview: 1`` as one) and turned into text;
    booleans and empty values are refused, as their text is ambiguous - quote them.
    """
    if headers is None:
        return {}
    if not isinstance(headers, dict):
        raise ValueError("%s must be a dict of header names to values, got %r" % (option, headers))
    checked = {}
    seen = set()
    for name, value in headers.items():
        if not isinstance(name, str) or not _TOKEN.match(name):
            raise ValueError("%s: %r is not a valid header name (letters, digits and !#$%%&'*+-.^_`|~ only, "
                             "no spaces, colons, CR or LF)" % (option, name))
        if name.lower() in seen:
            raise ValueError("%s: header %s is given twice (names are case-insensitive)" % (option, name))
        seen.add(name.lower())
        if isinstance(value, bool) or value is None or not isinstance(value, (str, int, float)):
            raise ValueError("%s: the value of %s must be a string, got %r (quote it)" % (option, name, value))
        text = value if isinstance(value, str) else str(value)
        if _BAD_VALUE.search(text):
            raise ValueError("%s: the value of %s must not contain CR, LF or NUL, got %r" % (option, name, text))
        try:
            text.encode("latin-1")
        except UnicodeEncodeError:
            raise ValueError("%s: the value of %s must be Latin-1 text, got %r" % (option, name, text)) from None
        checked[name] = text
    return checked


def check_options(url, count=20, headers=None, timeout=5.0, interval=0.0, expect_status=None,
                  expect_headers=None) -> dict:
    """All options checked and normalised; one ValueError listing every problem ("; "-separated)."""
    checks = (
        ("url", check_url, (url,)),
        ("count", check_count, (count,)),
        ("headers", check_headers, (headers, "headers")),
        ("timeout", check_timeout, (timeout,)),
        ("interval", check_interval, (interval,)),
        ("expect_status", check_expect_status, (expect_status,)),
        ("expect_headers", check_headers, (expect_headers, "expect_headers")),
    )
    options = {}
    problems = []
    for name, check, args in checks:
        try:
            options[name] = check(*args)
        except ValueError as exc:
            problems.append(str(exc))
    if problems:
        raise ValueError("; ".join(problems))
    return options


def _without_userinfo(parts) -> str:
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return parts._replace(netloc="***@" + netloc).geturl()


# --- requests -----------------------------------------------------------------


def _error_reason(exc: BaseException) -> str:
    """A short, groupable reason for a request that got no (complete) HTTP answer."""
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timeout"
    if isinstance(exc, socket.gaierror):
        return "name not resolved"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
        # http.client.RemoteDisconnected (closed before any answer) is a ConnectionResetError too.
        return "connection reset"
    return exc.__class__.__name__


def _error_text(exc: BaseException) -> str:
    detail = str(exc)
    name = exc.__class__.__name__
    return "%s: %s" % (name, detail) if detail else name


def _request(parts, target: str, headers: dict, timeout: float) -> tuple:
    """One GET on a new connection: (status, response headers) or raises OSError/HTTPException."""
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=timeout)
    else:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        connection.request("GET", target, headers=headers)
        response = connection.getresponse()
        left = BODY_READ_LIMIT
        while left > 0:
            chunk = response.read(min(READ_CHUNK, left))
            if not chunk:
                break
            left -= len(chunk)
        return response.status, response.msg
    finally:
        connection.close()


def _header_value(message, name: str):
    """The header's value (repeated headers joined with ", "), None when absent; name case-insensitive."""
    values = message.get_all(name) if message is not None else None
    if not values:
        return None
    return ", ".join(value.strip() for value in values)


def _judge(status: int, message, expect_status: frozenset, expect_headers: dict):
    """None when the answer passes, else its reason."""
    status_ok = status in expect_status if expect_status else 200 <= status <= 299
    if not status_ok:
        return "status %d" % status
    wrong = []
    for name, expected in expect_headers.items():
        actual = _header_value(message, name)
        if actual is None:
            wrong.append("%s missing (expected %s)" % (name, expected))
        elif actual != expected:
            wrong.append("%s %s (expected %s)" % (name, actual, expected))
    return "; ".join(wrong) or None


def smoke(url, count=20, headers=None, timeout=5.0, interval=0.0, expect_status=None, expect_headers=None,
          clock=time.monotonic, sleep=time.sleep) -> dict:
    """Send ``count`` GETs to ``url``, each on a new connection, ``interval`` s apart; report how they did.

    ``timeout`` bounds the connection and each read of one request. Raises ValueError for bad options,
    before any request is sent. See the module documentation for the result's keys.
    """
    options = check_options(url, count, headers, timeout, interval, expect_status, expect_headers)
    parts = urlsplit(options["url"])
    target = (parts.path or "/") + ("?" + parts.query if parts.query else "")
    send = dict(options["headers"])
    names = {name.lower() for name in send}
    if "user-agent" not in names:
        send["User-Agent"] = USER_AGENT
    if "connection" not in names:
        send["Connection"] = "close"
    wanted = options["expect_headers"]

    statuses: dict[str, int] = {}
    groups: dict[str, dict] = {}
    samples = []
    passed = 0
    slowest = 0.0
    started = clock()
    for index in range(1, options["count"] + 1):
        if index > 1 and options["interval"] > 0:
            sleep(options["interval"])
        began = clock()
        status = message = None
        try:
            status, message = _request(parts, target, send, options["timeout"])
        except (OSError, http.client.HTTPException) as exc:
            reason = _error_reason(exc)
            error = _error_text(exc)
        else:
            reason = error = _judge(status, message, options["expect_status"], wanted)
        seconds = clock() - began
        slowest = max(slowest, seconds)
        key = str(status) if status is not None else reason
        statuses[key] = statuses.get(key, 0) + 1
        if reason is None:
            passed += 1
            continue
        group = groups.setdefault(reason, {"reason": reason, "count": 0, "first": index})
        group["count"] += 1
        if len(samples) < MAX_SAMPLES:
            samples.append({
                "index": index,
                "status": status,
                "error": error,
                "seconds": round(seconds, 3),
                "headers": {name: _header_value(message, name) for name in wanted} if status is not None else {},
            })
    requests = options["count"]
    return {
        "requests": requests,
        "passed": passed,
        "failed": requests - passed,
        "failures": sorted(groups.values(), key=lambda g: (-g["count"], g["first"])),
        "samples": samples,
        "seconds": round(clock() - started, 3),
        "slowest": round(slowest, 3),
        "statuses": statuses,
    }


def summary(result: dict, url: str) -> str:
    """One line: how many of the requests failed and why, or that all passed."""
    requests = result["requests"]
    if not result["failed"]:
        return "all %d smoke requests to %s passed (slowest %.3fs)" % (requests, url, result["slowest"])
    groups = result["failures"]
    reasons = ["%d x %s" % (group["count"], group["reason"]) for group in groups[:SUMMARY_GROUPS]]
    if len(groups) > SUMMARY_GROUPS:
        rest = groups[SUMMARY_GROUPS:]
        reasons.append("%d x %d other reasons" % (sum(group["count"] for group in rest), len(rest)))
    return "%d of %d smoke requests to %s failed: %s" % (result["failed"], requests, url, ", ".join(reasons))
