#!/usr/bin/python
# Copyright: fleet.rollout contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: prometheus_analysis
short_description: Judge a canary against its baseline on a site's own Prometheus queries
version_added: 0.1.0
description:
  - Runs the site's PromQL queries for the canary's servers and for the stable (baseline) servers as instant queries
    on a Prometheus server, and gives a verdict - V(pass), V(fail) or V(inconclusive) - with the reasons and the
    numbers behind them.
  - Each side has an error-rate query, which must give the error rate B(in percent) (0 to 100, so multiply a ratio by
    100), and optionally a latency query, which must give B(seconds) (such as a 99th percentile from a histogram, or
    the average HAProxy exports). Each query must give one number - aggregate it, for example with C(sum(...)).
  - "Errors - the canary's error rate must not be over O(max_error_rate), and must not be higher than the baseline's
    by more than O(error_rate_tolerance) points."
  - "Latency - when both sides have a latency, the canary's may exceed the baseline's by O(latency_tolerance) percent
    or O(latency_tolerance_seconds), whichever is larger. O(max_latency_p99) caps the canary's latency outright."
  - Prometheus gives rates, not the counts behind them, so unlike M(fleet.rollout.canary_analysis) there is no
    significance test; the tolerances alone say how much worse is too much, so judge a window with enough requests.
  - A query with no series, or NaN (such as C(0/0) when no request came in the window), has no data. Without a canary
    error rate the verdict is V(inconclusive), unless its latency already failed it.
  - Never fails on a V(fail) verdict; the caller decides (for example with C(failed_when)). Fails when a query cannot
    be run, with Prometheus's own error text.
author:
  - fleet.rollout maintainers (@fleet-rollout)
options:
  url:
    description:
      - The Prometheus server's base URL, such as C(http://prometheus.example.com:9090); the module asks its
        C(/api/v1/query) endpoint.
      - Give credentials with O(headers) rather than in the URL; error messages never show a URL's user and password.
    type: str
    required: true
  queries:
    description:
      - The PromQL queries for each side, with placeholders (see O(placeholders)).
    type: dict
    required: true
    suboptions:
      canary:
        description: The canary's queries.
        type: dict
        required: true
        suboptions: &side
          error_rate:
            description:
              - The query for the side's error rate in percent (0 to 100), one number.
            type: str
            required: true
          latency:
            description:
              - The query for the side's latency in seconds, one number. No latency comparison when unset on either
                side.
            type: str
      baseline:
        description: The stable servers' queries, for the same window.
        type: dict
        required: true
        suboptions: *side
  placeholders:
    description:
      - Values for the placeholders in O(queries), such as C(window), C(canary_servers), C(baseline_servers) or
        C(backend), written C($window) or C(${window}) in a query (PromQL itself never uses C($); write C($$) for a
        C($)).
      - A list becomes its items joined with C(|), for a regular expression match such as
        C(server=~"$canary_servers"); each item matches itself only (its regular expression metacharacters are
        escaped as a PromQL string needs them, C(10.0.0.1:8080) giving C(10\\.0\\.0\\.1:8080)).
      - A placeholder without a value fails the module before Prometheus is asked.
    type: dict
    default: {}
  time:
    description:
      - The evaluation time, as seconds since the epoch; the Prometheus server's current time when unset.
    type: float
  timeout:
    description: Seconds to wait for Prometheus to answer one query.
    type: int
    default: 10
  headers:
    description:
      - HTTP headers sent with every query, such as C(Authorization) for a Prometheus behind authentication. Not logged.
    type: dict
  validate_certs:
    description: Whether to check the TLS certificate of an C(https) URL.
    type: bool
    default: true
  max_error_rate:
    description: Highest error rate, in percent, the canary may have, whatever the baseline's.
    type: float
    default: 1.0
  error_rate_tolerance:
    description: How many percentage points the canary's error rate may exceed the baseline's.
    type: float
    default: 1.0
  latency_tolerance:
    description: How many percent higher than the baseline's latency the canary's may be.
    type: float
    default: 10.0
  latency_tolerance_seconds:
    description: Seconds higher the canary's latency may always be (when the percentage is smaller than this).
    type: float
    default: 0.005
  max_latency_p99:
    description:
      - Highest latency, in seconds, the canary's latency query may give (a 99th percentile when the query asks for
        one). No ceiling when unset.
    type: float
extends_documentation_fragment:
  - fleet.rollout.attributes.read_only
seealso:
  - module: fleet.rollout.canary_analysis
  - name: Prometheus HTTP API
    description: The instant query endpoint the module asks.
    link: https://prometheus.io/docs/prometheus/latest/querying/api/#instant-queries
notes:
  - The queries in the examples are those the collection's tests run against HAProxy 2.6's built-in exporter
    (C(http-request use-service prometheus-exporter)). Its per-server counters are
    C(haproxy_server_http_responses_total) with a C(code) label (C(1xx) to C(5xx), C(other)); its latencies are
    averages over the server's last 512 requests (C(haproxy_server_total_time_average_seconds)).
  - HAProxy 2.6's exporter understates those averages until a server has answered 512 requests since HAProxy
    started or reloaded - it divides by the full window (100 requests of 22 ms export 0.005 s), while C(show stat)
    does not. Judge latency on them only with that much traffic, or on the application's own histogram.
"""

EXAMPLES = r"""
- name: Judge the canary on HAProxy's exporter metrics of the last five minutes
  fleet.rollout.prometheus_analysis:
    url: http://prometheus.example.com:9090
    placeholders:
      window: 5m
      backend: be_shop
      canary_servers: [web3]
      baseline_servers: [web1, web2]
    queries:
      canary:
        error_rate: >-
          sum(increase(haproxy_server_http_responses_total{proxy="$backend",server=~"$canary_servers",code="5xx"}[$window]))
          / sum(increase(haproxy_server_http_responses_total{proxy="$backend",server=~"$canary_servers"}[$window])) * 100
        latency: max(haproxy_server_total_time_average_seconds{proxy="$backend",server=~"$canary_servers"})
      baseline:
        error_rate: >-
          sum(increase(haproxy_server_http_responses_total{proxy="$backend",server=~"$baseline_servers",code="5xx"}[$window]))
          / sum(increase(haproxy_server_http_responses_total{proxy="$backend",server=~"$baseline_servers"}[$window])) * 100
        latency: max(haproxy_server_total_time_average_seconds{proxy="$backend",server=~"$baseline_servers"})
    max_error_rate: 0.5
  register: analysis
  failed_when: analysis.verdict == 'fail'

- name: The application's own histogram, behind a Prometheus that wants a token
  fleet.rollout.prometheus_analysis:
    url: https://prometheus.example.com
    headers:
      Authorization: "Bearer {{ prometheus_token }}"
    placeholders: {window: 10m, canary: "{{ groups['canary'] | join('|') }}"}
    queries:
      canary:
        error_rate: >-
          100 * sum(rate(http_requests_total{instance=~"($canary):[0-9]+",status=~"5.."}[$window]))
          / sum(rate(http_requests_total{instance=~"($canary):[0-9]+"}[$window]))
        latency: >-
          histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{instance=~"($canary):[0-9]+"}[$window])))
      baseline:
        error_rate: >-
          100 * sum(rate(http_requests_total{instance!~"($canary):[0-9]+",status=~"5.."}[$window]))
          / sum(rate(http_requests_total{instance!~"($canary):[0-9]+"}[$window]))
        latency: >-
          histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{instance!~"($canary):[0-9]+"}[$window])))
    max_latency_p99: 1.5
  register: analysis

- name: Show the verdict
  ansible.builtin.debug:
    msg: "{{ analysis.summary }}"
"""

RETURN = r"""
verdict:
  description: V(pass), V(fail) or V(inconclusive).
  returned: always
  type: str
  sample: fail
reasons:
  description: Why the canary failed, or why it could not be judged; empty for a clean pass.
  returned: always
  type: list
  elements: str
  sample: ["prometheus: canary error rate 25.00 % is over the 1.00 % ceiling"]
summary:
  description: The verdict, both sides' error rates and latencies, and the reasons, on one line.
  returned: always
  type: str
  sample: "FAIL: canary errors 25.00 %, latency 0.021 s; baseline errors 0.00 %, latency 0.000 s - ..."
canary:
  description:
    - The canary's C(error_rate) (percent) and C(latency) (seconds), as the queries gave them; null for no data or no
      query.
  returned: always
  type: dict
  sample: {error_rate: 25.0, latency: 0.021}
baseline:
  description: The same for the baseline.
  returned: always
  type: dict
  sample: {error_rate: 0.0, latency: 0.0}
queries:
  description: The queries as run, placeholders filled in - C(canary) and C(baseline), each with C(error_rate) and
    C(latency) (null when not given).
  returned: always
  type: dict
criteria:
  description: The criteria the verdict was reached with.
  returned: always
  type: dict
  sample: {max_error_rate: 1.0, error_rate_tolerance: 1.0, latency_tolerance: 10.0, latency_tolerance_seconds: 0.005,
           max_latency_p99: null}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleet.rollout.plugins.module_utils._prometheus import (
    CRITERIA_USED, judge_metrics, query_sides, summary_line,
)

SIDE = dict(
    error_rate=dict(type="str", required=True),
    latency=dict(type="str"),
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            url=dict(type="str", required=True),
            queries=dict(type="dict", required=True, options=dict(
                canary=dict(type="dict", required=True, options=SIDE),
                baseline=dict(type="dict", required=True, options=SIDE),
            )),
            placeholders=dict(type="dict", default={}),
            time=dict(type="float"),
            timeout=dict(type="int", default=10),
            headers=dict(type="dict", no_log=True),
            validate_certs=dict(type="bool", default=True),
            max_error_rate=dict(type="float", default=1.0),
            error_rate_tolerance=dict(type="float", default=1.0),
            latency_tolerance=dict(type="float", default=10.0),
            latency_tolerance_seconds=dict(type="float", default=0.005),
            max_latency_p99=dict(type="float"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        sides = query_sides(p["url"], p["queries"], p["placeholders"], time=p["time"], timeout=p["timeout"],
                            headers=p["headers"], validate_certs=p["validate_certs"])
        result = judge_metrics(sides, {name: p[name] for name in CRITERIA_USED})
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, summary=summary_line(result), queries=sides["queries"], **result)


if __name__ == "__main__":
    main()
