# Copyright: fleet.rollout contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Judge a canary on a site's own Prometheus queries: pass, fail or inconclusive, with the numbers.

The logic behind ``fleet.rollout.prometheus_analysis``. The site writes, per side (the canary's
servers and the stable baseline servers), a PromQL query for the error rate - in percent, 0 to
100 - and optionally one for the latency - in seconds, such as a p99 from a histogram or HAProxy's
average. Placeholders such as ``$window`` or ``$canary_servers`` are filled in from the caller's
values (``expand``), each query is run as an instant query (``instant_query``) and must give one
number; ``judge_metrics`` then holds the canary against its ceilings and against the baseline of
the same time, with the criteria and defaults of ``_canary_analysis``. Counts are not known here,
so there is no significance test: the tolerances alone say how much worse is too much.

A query that gives no series, or NaN (``0/0``: no requests in the window), is "no data"; no
canary error rate makes the verdict inconclusive unless something else already failed.
"""

from __future__ import annotations

import json
import math
import re
import string
from urllib.parse import urlencode, urlsplit

from ansible.module_utils.urls import open_url as ansible_open_url

from ansible_collections.fleet.rollout.plugins.module_utils._canary_analysis import (
    FAIL, INCONCLUSIVE, PASS, check_criteria,
)

SIDES = ("canary", "baseline")
METRICS = ("error_rate", "latency")
REQUIRED_METRICS = ("error_rate",)
# The criteria a Prometheus verdict uses (``confidence`` and ``min_samples`` need counts, which are unknown here).
CRITERIA_USED = ("max_error_rate", "error_rate_tolerance", "latency_tolerance", "latency_tolerance_seconds",
                 "max_latency_p99")
BODY_LIMIT = 16 * 1024 * 1024


# --- queries ------------------------------------------------------------------


def expand(query: str, values: dict) -> str:
    """``query`` with its ``$name`` (or ``${name}``) placeholders replaced from ``values``; ``$$`` is a ``$``.

    A list value becomes ``a|b|c``, for a regular expression match inside a PromQL string
    (``server=~"$canary_servers"``): each item matches itself only, its regular expression
    metacharacters escaped as a PromQL string needs them (``10.0.0.1:8080`` gives ``10\\.0\\.0\\.1:8080``).
    ValueError naming a placeholder that has no value, or a ``$`` that starts none.
    """
    if not isinstance(query, str):
        raise ValueError("expected the query as a string, got %s" % type(query).__name__)
    mapping = {str(name): _placeholder_value(name, value) for name, value in (values or {}).items()}
    try:
        return string.Template(query).substitute(mapping)
    except KeyError as exc:
        name = exc.args[0]
        known = ", ".join("$" + key for key in sorted(mapping)) or "none"
        raise ValueError("unknown placeholder $%s in %r (placeholders given: %s)" % (name, query, known)) from None
    except ValueError as exc:
        # string.Template: "Invalid placeholder in string: line 1, col 12"
        raise ValueError("%s in %r: a $ starts a placeholder such as $window; write $$ for a $ itself"
                         % (str(exc).rstrip("."), query)) from None


# RE2's metacharacters; in a PromQL string a backslash is itself written \\.
_REGEX_SPECIAL = re.compile(r"([.^$*+?()\[\]{}|\\])")


def _placeholder_value(name, value) -> str:
    if isinstance(value, (list, tuple)):
        return "|".join(_REGEX_SPECIAL.sub(r"\\\\\1", str(item)) for item in value)
    if value is None or isinstance(value, dict):
        raise ValueError("placeholder $%s: expected a string, a number or a list, got %s"
                         % (name, "null" if value is None else "a dict"))
    return str(value)


def redact(url: str) -> str:
    """``url`` without the user and password it may carry (``https://***@host/``)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[-1]).geturl()


def instant_query(url: str, query: str, time: float | None = None, timeout: float = 10, headers: dict | None = None,
                  validate_certs: bool = True, open_url=ansible_open_url) -> float | None:
    """The one number an instant query of the Prometheus at ``url`` gives, None for no data.

    No data: no series, or NaN (such as ``0/0`` for a window without requests). ValueError with
    Prometheus's own error text for a query it refused, asking to aggregate when the query gives
    more than one series, and naming the URL (without credentials) when no answer came.
    """
    endpoint = url.rstrip("/") + "/api/v1/query"
    params = {"query": query}
    if time is not None:
        params["time"] = "%.3f" % float(time)
    shown = redact(endpoint)
    try:
        response = open_url(endpoint + "?" + urlencode(params), headers=dict(headers or {}), method="GET",
                            timeout=timeout, validate_certs=validate_certs, follow_redirects="safe")
        status, body = getattr(response, "status", None) or response.getcode(), response.read(BODY_LIMIT)
    except Exception as exc:  # pylint: disable=broad-exception-caught
        # urllib's HTTPError, URLError and OSError, ansible's ConnectionError and SSLValidationError,
        # http.client's HTTPException: all mean no usable answer from this URL.
        status, body = _http_error(exc, shown)
    payload = _decode(body, status, shown)
    if payload.get("status") != "success":
        raise ValueError("Prometheus refused the query %r: %s: %s"
                         % (query, payload.get("errorType") or "error", payload.get("error") or "(no error text)"))
    return parse(payload.get("data"), query)


def _http_error(exc: BaseException, shown: str) -> tuple:
    """(status, body) of an HTTP error answer, which Prometheus fills with its JSON error; raises for the rest."""
    code = getattr(exc, "code", None)
    if isinstance(code, int) and hasattr(exc, "read"):
        try:
            body = exc.read(BODY_LIMIT)
        except Exception:  # pylint: disable=broad-exception-caught
            body = b""
        try:
            payload = json.loads(body)
        except (TypeError, ValueError):
            payload = None
        if isinstance(payload, dict) and payload.get("status") == "error":
            return code, body
        reason = getattr(exc, "reason", "") or ""
        raise ValueError("Prometheus at %s answered HTTP %d%s" % (shown, code, (" " + str(reason)) if reason else ""))
    reason = getattr(exc, "reason", None) or exc
    raise ValueError("no answer from Prometheus at %s: %s" % (shown, _error_text(reason)))


def _error_text(exc) -> str:
    if not isinstance(exc, BaseException):
        return str(exc)
    detail = str(exc)
    return "%s: %s" % (exc.__class__.__name__, detail) if detail else exc.__class__.__name__


def _decode(body, status, shown: str) -> dict:
    try:
        payload = json.loads(body)
    except (TypeError, ValueError):
        payload = None
    if not isinstance(payload, dict):
        raise ValueError("Prometheus at %s answered HTTP %s without the JSON of its query API; is the URL the "
                         "Prometheus server's (such as http://prometheus:9090)?" % (shown, status))
    return payload


def parse(data, query: str = "") -> float | None:
    """The number in the ``data`` of a successful query answer, None for no data."""
    data = data if isinstance(data, dict) else {}
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar":
        return _number(result[1] if isinstance(result, list) and len(result) == 2 else None, query)
    if kind == "vector":
        series = result or []
        if not series:
            return None
        if len(series) > 1:
            labels = ", ".join(_labels(item.get("metric")) for item in series[:3])
            raise ValueError("the query %r gave %d series (%s%s), not one number: aggregate it, such as sum(...) "
                             "or max(...)" % (query, len(series), labels, ", ..." if len(series) > 3 else ""))
        value = series[0].get("value")
        return _number(value[1] if isinstance(value, list) and len(value) == 2 else None, query)
    if kind == "matrix":
        raise ValueError("the query %r gave a range vector; ask for one number at the evaluation time, such as "
                         "increase(...[$window]) or rate(...[$window])" % query)
    raise ValueError("the query %r gave a %s, not a number" % (query, kind or "result of no known type"))


def _number(text, query: str) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ValueError("the query %r gave %r, not a number" % (query, text)) from None
    return None if math.isnan(value) else value


def _labels(metric) -> str:
    metric = metric if isinstance(metric, dict) else {}
    name = metric.get("__name__", "")
    return name + "{%s}" % ",".join('%s="%s"' % (k, v) for k, v in sorted(metric.items()) if k != "__name__")


def check_queries(queries) -> dict:
    """``{canary: {error_rate, latency}, baseline: {...}}`` with latency None where not given; ValueError by name."""
    if not isinstance(queries, dict):
        raise ValueError("queries: expected a dict with canary and baseline, got %s" % type(queries).__name__)
    problems = ["queries: unknown side %r (expected canary and baseline)" % side for side in sorted(set(queries) - set(SIDES))]
    checked = {}
    for side in SIDES:
        given = queries.get(side)
        if not isinstance(given, dict):
            problems.append("queries.%s: expected a dict with error_rate (and optionally latency)" % side)
            continue
        problems += ["queries.%s: unknown metric %r (expected %s)" % (side, name, " and ".join(METRICS))
                     for name in sorted(set(given) - set(METRICS))]
        for metric in METRICS:
            query = given.get(metric)
            if query is None or (isinstance(query, str) and not query.strip()):
                if metric in REQUIRED_METRICS:
                    problems.append("queries.%s.%s: a query is required" % (side, metric))
                query = None
            elif not isinstance(query, str):
                problems.append("queries.%s.%s: expected a PromQL query string" % (side, metric))
            checked.setdefault(side, {})[metric] = query
    if problems:
        raise ValueError("; ".join(problems))
    return checked


def query_sides(url: str, queries: dict, values: dict | None = None, time: float | None = None, **request) -> dict:
    """Both sides' numbers: ``{canary: {error_rate, latency}, baseline: {...}, queries: {...}}``.

    ``error_rate`` is what the site's query gives, in percent; ``latency`` in seconds, None when the
    side has no latency query or the query has no data. ``queries`` holds the expanded queries.
    ``request`` goes to ``instant_query`` (``timeout``, ``headers``, ``validate_certs``, ``open_url``).
    Every query is expanded before any is run, so a missing placeholder is reported before Prometheus is asked.
    """
    checked = check_queries(queries)
    expanded, problems = {}, []
    for side in SIDES:
        for metric in METRICS:
            if checked[side][metric] is None:
                expanded.setdefault(side, {})[metric] = None
                continue
            try:
                expanded.setdefault(side, {})[metric] = expand(checked[side][metric], values or {})
            except ValueError as exc:
                problems.append("queries.%s.%s: %s" % (side, metric, exc))
    if problems:
        raise ValueError("; ".join(problems))
    result = {"queries": expanded}
    for side in SIDES:
        result[side] = {}
        for metric in METRICS:
            query = expanded[side][metric]
            try:
                result[side][metric] = None if query is None else instant_query(url, query, time=time, **request)
            except ValueError as exc:
                raise ValueError("%s %s: %s" % (side, metric.replace("_", " "), exc)) from None
    return result


# --- verdict ------------------------------------------------------------------


def judge_metrics(sides: dict, criteria: dict | None = None) -> dict:
    """The verdict on ``sides["canary"]`` against ``sides["baseline"]`` (each ``{error_rate, latency}``).

    ``{verdict, reasons, canary, baseline, criteria}``: fail on a broken ceiling or a canary worse
    than the baseline by more than the tolerance; inconclusive without a canary error rate.
    """
    c = check_criteria(criteria or {})
    canary, baseline = _side("canary", sides.get("canary")), _side("baseline", sides.get("baseline"))
    failures, notes = [], []
    ceiling, tolerance = float(c["max_error_rate"]), float(c["error_rate_tolerance"])

    rate, base_rate = canary["error_rate"], baseline["error_rate"]
    if rate is not None and rate > ceiling:
        failures.append("prometheus: canary error rate %.2f %% is over the %.2f %% ceiling" % (rate, ceiling))
    if rate is not None and base_rate is not None and rate - base_rate > tolerance:
        failures.append("prometheus: canary error rate %.2f %% is higher than the baseline's %.2f %% (+%.2f points, "
                        "allowed +%.2f)" % (rate, base_rate, rate - base_rate, tolerance))

    latency, base_latency = canary["latency"], baseline["latency"]
    if latency is not None and base_latency is not None:
        shift = latency - base_latency
        allowed = max(base_latency * float(c["latency_tolerance"]) / 100.0, float(c["latency_tolerance_seconds"]))
        if shift > allowed:
            failures.append("prometheus: canary is slower: latency %.3f s against the baseline's %.3f s (+%.3f s, "
                            "allowed +%.3f s)" % (latency, base_latency, shift, allowed))
    cap = c["max_latency_p99"]
    if cap is not None and latency is not None and latency > float(cap):
        failures.append("prometheus: canary latency %.3f s is over the %.3f s ceiling" % (latency, float(cap)))

    if rate is None:
        notes.append("prometheus: no canary error rate (no series, or no requests in the window): the canary "
                     "cannot be judged yet")
    elif base_rate is None:
        notes.append("prometheus: no baseline error rate: only the ceilings were checked")
    if failures:
        verdict = FAIL
    else:
        verdict = INCONCLUSIVE if rate is None else PASS
    return {"verdict": verdict, "reasons": failures + notes, "canary": canary, "baseline": baseline,
            "criteria": {name: c[name] for name in CRITERIA_USED}}


def _side(name: str, side) -> dict:
    side = side if isinstance(side, dict) else {}
    checked = {}
    for metric in METRICS:
        value = side.get(metric)
        if value is not None:
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise ValueError("%s %s: expected a number, got %r" % (name, metric, value)) from None
            value = None if math.isnan(value) else value
        checked[metric] = value
    return checked


def summary_line(result: dict) -> str:
    """One line a person reads as the rollout goes: verdict, both sides' error rates and latencies, reasons."""

    def side(name, data):
        rate = "-" if data["error_rate"] is None else "%.2f %%" % data["error_rate"]
        latency = "-" if data["latency"] is None else "%.3f s" % data["latency"]
        return "%s errors %s, latency %s" % (name, rate, latency)

    return "%s: %s; %s%s" % (result["verdict"].upper(), side("canary", result["canary"]),
                             side("baseline", result["baseline"]),
                             (" - " + "; ".join(result["reasons"])) if result["reasons"] else "")
