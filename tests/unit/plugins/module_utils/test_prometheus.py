"""The Prometheus metric source: placeholders filled in or refused by name, answers of the query API read (or
refused with Prometheus's own words), and verdicts on the numbers. A fake ``open_url`` stands in for Prometheus
only for the answers a real server is hard to make give; the module's tests run a real one."""

from __future__ import annotations

import io
import json
import urllib.error

import pytest

from ansible_collections.fleet.rollout.plugins.module_utils import _prometheus as prom

URL = "http://prometheus.test:9090"


# --- expand -------------------------------------------------------------------


def test_expand_fills_placeholders_and_joins_lists():
    query = 'sum(increase(x{proxy="$backend",server=~"$canary_servers"}[$window])) * ${scale}'
    out = prom.expand(query, {"backend": "app", "canary_servers": ["web3", "web4"], "window": "5m", "scale": 100})
    assert out == 'sum(increase(x{proxy="app",server=~"web3|web4"}[5m])) * 100'


def test_expand_makes_each_listed_name_match_itself_only():
    # nginx names its servers address:port: the dots must not match any character. In a PromQL string a regular
    # expression's backslash is written twice.
    out = prom.expand('x{server=~"$servers"}', {"servers": ["10.0.0.1:8080", "fleet-app1", "a+b(c)"]})
    assert out == r'x{server=~"10\\.0\\.0\\.1:8080|fleet-app1|a\\+b\\(c\\)"}'


def test_expand_leaves_a_query_without_placeholders_alone_and_unescapes_dollars():
    assert prom.expand('up{job="a"}', {}) == 'up{job="a"}'
    assert prom.expand('label_replace(up, "x", "$$1", "job", "(.*)")', {}) == 'label_replace(up, "x", "$1", "job", "(.*)")'


def test_expand_names_the_unknown_placeholder_and_those_given():
    with pytest.raises(ValueError) as exc:
        prom.expand("x[$window] + $canary_server", {"window": "1m", "canary_servers": "a"})
    assert "unknown placeholder $canary_server in" in str(exc.value)
    assert "placeholders given: $canary_servers, $window" in str(exc.value)


def test_expand_refuses_a_dollar_that_starts_no_placeholder():
    with pytest.raises(ValueError, match=r"Invalid placeholder .*write \$\$ for a \$ itself"):
        prom.expand("x * $1", {})


@pytest.mark.parametrize("value", [None, {"a": 1}])
def test_expand_refuses_values_that_are_not_text(value):
    with pytest.raises(ValueError, match=r"placeholder \$window: expected a string, a number or a list"):
        prom.expand("x[$window]", {"window": value})


# --- parse --------------------------------------------------------------------


def vector(*values, labels=None):
    return {"resultType": "vector",
            "result": [{"metric": dict(labels or {}, server="s%d" % i), "value": [1700000000.5, v]}
                       for i, v in enumerate(values)]}


def test_parse_one_sample_scalar_empty_and_nan():
    assert prom.parse(vector("12.5")) == 12.5
    assert prom.parse({"resultType": "scalar", "result": [1700000000, "3"]}) == 3.0
    assert prom.parse(vector()) is None
    assert prom.parse(vector("NaN")) is None
    assert prom.parse(vector("+Inf")) == float("inf")


def test_parse_asks_to_aggregate_more_than_one_series():
    with pytest.raises(ValueError) as exc:
        prom.parse(vector("1", "2", "3", "4", labels={"__name__": "hits"}), "hits")
    message = str(exc.value)
    assert "the query 'hits' gave 4 series (" in message
    assert 'hits{server="s0"}, hits{server="s1"}, hits{server="s2"}, ...' in message
    assert "aggregate it, such as sum(...)" in message


def test_parse_refuses_a_range_vector_and_strings():
    with pytest.raises(ValueError, match="range vector"):
        prom.parse({"resultType": "matrix", "result": []}, "x[5m]")
    with pytest.raises(ValueError, match="gave a string, not a number"):
        prom.parse({"resultType": "string", "result": [1, "a"]})


# --- instant_query, with a fake open_url --------------------------------------


class FakeOpen:
    """Records the request; answers ``body`` (JSON-encoded unless bytes) or raises ``error``."""

    def __init__(self, body=None, error=None):
        self.body, self.error, self.calls = body, error, []

    def __call__(self, url, **kwargs):
        self.calls.append((url, kwargs))
        if self.error is not None:
            raise self.error
        body = self.body if isinstance(self.body, bytes) else json.dumps(self.body).encode()
        response = io.BytesIO(body)
        response.status = 200
        return response


def success(data):
    return {"status": "success", "data": data}


def test_instant_query_asks_the_query_endpoint_with_time_and_headers():
    fake = FakeOpen(success(vector("0.25")))
    value = prom.instant_query(URL + "/", 'sum(x{a="b"})', time=1700000000.25, timeout=3,
                               headers={"Authorization": "Bearer t"}, open_url=fake)
    assert value == 0.25
    url, kwargs = fake.calls[0]
    assert url == URL + "/api/v1/query?query=sum%28x%7Ba%3D%22b%22%7D%29&time=1700000000.250"
    assert kwargs["headers"] == {"Authorization": "Bearer t"} and kwargs["timeout"] == 3
    assert kwargs["method"] == "GET" and kwargs["validate_certs"] is True


def test_instant_query_without_time_lets_prometheus_use_its_clock():
    fake = FakeOpen(success(vector()))
    assert prom.instant_query(URL, "up", open_url=fake) is None
    assert fake.calls[0][0] == URL + "/api/v1/query?query=up"


def test_instant_query_nan_is_no_data():
    assert prom.instant_query(URL, "0/0", open_url=FakeOpen(success(vector("NaN")))) is None


def test_instant_query_multiple_series_are_refused():
    with pytest.raises(ValueError, match=r"gave 2 series .* aggregate it"):
        prom.instant_query(URL, "up", open_url=FakeOpen(success(vector("1", "1"))))


def test_instant_query_status_error_gives_prometheus_error_text():
    fake = FakeOpen({"status": "error", "errorType": "execution", "error": "query timed out in expression evaluation"})
    with pytest.raises(ValueError) as exc:
        prom.instant_query(URL, "up", open_url=fake)
    assert str(exc.value) == "Prometheus refused the query 'up': execution: query timed out in expression evaluation"


def http_error(code, body, reason="Bad Request"):
    return urllib.error.HTTPError(URL + "/api/v1/query", code, reason, {}, io.BytesIO(body))


def test_instant_query_http_400_with_prometheus_json_gives_its_error_text():
    body = json.dumps({"status": "error", "errorType": "bad_data",
                       "error": "invalid parameter \"query\": 1:5: parse error: unexpected \")\""}).encode()
    with pytest.raises(ValueError) as exc:
        prom.instant_query(URL, "sum())", open_url=FakeOpen(error=http_error(400, body)))
    assert "Prometheus refused the query 'sum())': bad_data: invalid parameter" in str(exc.value)
    assert "parse error" in str(exc.value)


def test_instant_query_http_error_without_json_names_the_url_without_credentials():
    error = http_error(502, b"<html>bad gateway</html>", "Bad Gateway")
    with pytest.raises(ValueError) as exc:
        prom.instant_query("https://admin:s3cret@prom.test/prometheus", "up", open_url=FakeOpen(error=error))
    assert str(exc.value) == "Prometheus at https://***@prom.test/prometheus/api/v1/query answered HTTP 502 Bad Gateway"
    assert "s3cret" not in str(exc.value) and "admin" not in str(exc.value)


def test_instant_query_no_answer_names_the_url_and_the_reason():
    error = urllib.error.URLError(ConnectionRefusedError(111, "Connection refused"))
    with pytest.raises(ValueError) as exc:
        prom.instant_query("http://u:p@127.0.0.1:1", "up", open_url=FakeOpen(error=error))
    assert str(exc.value) == ("no answer from Prometheus at http://***@127.0.0.1:1/api/v1/query: "
                              "ConnectionRefusedError: [Errno 111] Connection refused")


def test_instant_query_an_answer_that_is_not_the_query_api_is_refused():
    with pytest.raises(ValueError, match=r"HTTP 200 without the JSON of its query API"):
        prom.instant_query(URL, "up", open_url=FakeOpen(b"<html>Grafana</html>"))


# --- query_sides --------------------------------------------------------------


QUERIES = {
    "canary": {"error_rate": 'err{s=~"$canary_servers"}[$window]', "latency": 'lat{s=~"$canary_servers"}'},
    "baseline": {"error_rate": 'err{s=~"$baseline_servers"}[$window]'},
}


class ByQuery:
    """A fake Prometheus answering by query text (the part after ``query=``)."""

    def __init__(self, answers):
        self.answers, self.asked = answers, []

    def __call__(self, url, **kwargs):
        from urllib.parse import parse_qs, urlsplit
        query = parse_qs(urlsplit(url).query)["query"][0]
        self.asked.append(query)
        return FakeOpen(success(vector(*self.answers[query])))(url, **kwargs)


def test_query_sides_expands_and_runs_each_query():
    fake = ByQuery({'err{s=~"c1"}[5m]': ["25"], 'lat{s=~"c1"}': ["0.021"], 'err{s=~"b1|b2"}[5m]': []})
    out = prom.query_sides(URL, QUERIES, {"canary_servers": "c1", "baseline_servers": ["b1", "b2"], "window": "5m"},
                           open_url=fake)
    assert out == {
        "canary": {"error_rate": 25.0, "latency": 0.021},
        "baseline": {"error_rate": None, "latency": None},
        "queries": {"canary": {"error_rate": 'err{s=~"c1"}[5m]', "latency": 'lat{s=~"c1"}'},
                    "baseline": {"error_rate": 'err{s=~"b1|b2"}[5m]', "latency": None}},
    }
    assert len(fake.asked) == 3


def test_query_sides_reports_every_missing_placeholder_before_asking():
    fake = ByQuery({})
    with pytest.raises(ValueError) as exc:
        prom.query_sides(URL, QUERIES, {"window": "5m"}, open_url=fake)
    assert "queries.canary.error_rate: unknown placeholder $canary_servers" in str(exc.value)
    assert "queries.baseline.error_rate: unknown placeholder $baseline_servers" in str(exc.value)
    assert fake.asked == []


def test_query_sides_names_the_side_and_metric_of_a_failed_query():
    fake = FakeOpen({"status": "error", "errorType": "bad_data", "error": "parse error"})
    with pytest.raises(ValueError, match=r"^canary error rate: Prometheus refused the query"):
        prom.query_sides(URL, QUERIES, {"canary_servers": "c", "baseline_servers": "b", "window": "1m"}, open_url=fake)


@pytest.mark.parametrize("queries, message", [
    ({"canary": {"error_rate": "a"}}, "queries.baseline: expected a dict with error_rate"),
    ({"canary": {"latency": "a"}, "baseline": {"error_rate": "b"}}, "queries.canary.error_rate: a query is required"),
    ({"canary": {"error_rate": "a", "p99": "x"}, "baseline": {"error_rate": "b"}}, "unknown metric 'p99'"),
    ({"canary": {"error_rate": "a"}, "baseline": {"error_rate": "b"}, "stable": {}}, "unknown side 'stable'"),
    ({"canary": {"error_rate": 5}, "baseline": {"error_rate": "b"}}, "queries.canary.error_rate: expected a PromQL"),
])
def test_query_sides_refuses_bad_query_sets_by_name(queries, message):
    with pytest.raises(ValueError, match=message):
        prom.query_sides(URL, queries, {}, open_url=ByQuery({}))


# --- judge_metrics ------------------------------------------------------------


def sides(canary_rate, baseline_rate, canary_latency=None, baseline_latency=None):
    return {"canary": {"error_rate": canary_rate, "latency": canary_latency},
            "baseline": {"error_rate": baseline_rate, "latency": baseline_latency}}


def test_a_good_canary_passes():
    result = prom.judge_metrics(sides(0.2, 0.1, 0.050, 0.048))
    assert result["verdict"] == "pass" and result["reasons"] == []
    assert result["criteria"] == {"max_error_rate": 1.0, "error_rate_tolerance": 1.0, "latency_tolerance": 10.0,
                                  "latency_tolerance_seconds": 0.005, "max_latency_p99": None}


def test_error_rate_over_the_ceiling_fails():
    result = prom.judge_metrics(sides(12.0, 11.5))
    assert result["verdict"] == "fail"
    assert result["reasons"] == ["prometheus: canary error rate 12.00 % is over the 1.00 % ceiling"]


def test_error_rate_above_the_baseline_by_more_than_the_tolerance_fails():
    result = prom.judge_metrics(sides(4.0, 0.5), {"max_error_rate": 10})
    assert result["verdict"] == "fail"
    assert result["reasons"] == ["prometheus: canary error rate 4.00 % is higher than the baseline's 0.50 % "
                                 "(+3.50 points, allowed +1.00)"]
    assert prom.judge_metrics(sides(4.0, 0.5), {"max_error_rate": 10, "error_rate_tolerance": 4})["verdict"] == "pass"


def test_both_error_reasons_at_once():
    result = prom.judge_metrics(sides(25.0, 0.0))
    assert [r.split(" is ")[1][:10] for r in result["reasons"]] == ["over the 1", "higher tha"]


@pytest.mark.parametrize("canary, baseline, criteria, verdict", [
    (0.105, 0.100, {}, "pass"),            # +5 ms: within the larger allowance, 10 % = 10 ms
    (0.111, 0.100, {}, "fail"),            # +11 ms: over 10 ms
    (0.008, 0.004, {}, "pass"),            # +4 ms: 10 % is 0.4 ms but 5 ms always allowed
    (0.010, 0.004, {}, "fail"),            # +6 ms: over 5 ms
    (0.140, 0.100, {"latency_tolerance": 50}, "pass"),
    (0.140, 0.100, {"latency_tolerance": 0, "latency_tolerance_seconds": 0.05}, "pass"),
])
def test_latency_shift_against_the_larger_allowance(canary, baseline, criteria, verdict):
    result = prom.judge_metrics(sides(0.0, 0.0, canary, baseline), criteria)
    assert result["verdict"] == verdict, result["reasons"]


def test_slower_canary_message():
    result = prom.judge_metrics(sides(0.0, 0.0, 0.300, 0.100))
    assert result["reasons"] == ["prometheus: canary is slower: latency 0.300 s against the baseline's 0.100 s "
                                 "(+0.200 s, allowed +0.010 s)"]


def test_latency_ceiling_fails_even_without_a_baseline_latency():
    result = prom.judge_metrics(sides(0.0, 0.0, 2.0, None), {"max_latency_p99": 1.5})
    assert result["verdict"] == "fail"
    assert result["reasons"] == ["prometheus: canary latency 2.000 s is over the 1.500 s ceiling"]


def test_no_canary_data_is_inconclusive_unless_something_failed():
    result = prom.judge_metrics(sides(None, 0.0, None, 0.1))
    assert result["verdict"] == "inconclusive"
    assert result["reasons"] == ["prometheus: no canary error rate (no series, or no requests in the window): "
                                 "the canary cannot be judged yet"]
    failed = prom.judge_metrics(sides(None, 0.0, 3.0, 0.1), {"max_latency_p99": 1})
    assert failed["verdict"] == "fail" and len(failed["reasons"]) == 3


def test_no_baseline_data_checks_only_the_ceilings():
    result = prom.judge_metrics(sides(0.5, None))
    assert result["verdict"] == "pass"
    assert result["reasons"] == ["prometheus: no baseline error rate: only the ceilings were checked"]
    assert prom.judge_metrics(sides(5.0, None))["verdict"] == "fail"


def test_nan_counts_as_no_data():
    assert prom.judge_metrics(sides(float("nan"), 0.0))["verdict"] == "inconclusive"


def test_bad_criteria_and_numbers_are_refused_by_name():
    with pytest.raises(ValueError, match="max_error_rate: expected a percentage"):
        prom.judge_metrics(sides(0, 0), {"max_error_rate": 150})
    with pytest.raises(ValueError, match="unknown criteria: max_errors"):
        prom.judge_metrics(sides(0, 0), {"max_errors": 1})
    with pytest.raises(ValueError, match="canary error_rate: expected a number, got 'lots'"):
        prom.judge_metrics(sides("lots", 0))


def test_summary_line():
    result = prom.judge_metrics(sides(25.0, 0.0, 0.021, None))
    line = prom.summary_line(result)
    assert line.startswith("FAIL: canary errors 25.00 %, latency 0.021 s; baseline errors 0.00 %, latency - - "
                           "prometheus: canary error rate 25.00 % is over")
    assert prom.summary_line(prom.judge_metrics(sides(0.0, 0.0))) == (
        "PASS: canary errors 0.00 %, latency -; baseline errors 0.00 %, latency -")
