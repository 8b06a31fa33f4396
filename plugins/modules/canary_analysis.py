#!/usr/bin/python
# Copyright: fleet.rollout contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: canary_analysis
short_description: Judge a canary against its baseline - pass, fail or inconclusive, with the numbers
version_added: 0.1.0
description:
  - Compares the requests the canary's servers answered with those the stable (baseline) servers answered in the same
    window, and gives a verdict - V(pass), V(fail) or V(inconclusive) - with the reasons and the numbers behind them.
  - "Errors - the canary's error rate must not be over O(max_error_rate), and must not be higher than the baseline's
    by more than O(error_rate_tolerance) points with significance (one-sided pooled two-proportion z-test,
    p < 1 - O(confidence))."
  - "Latency - the canary must not be slower with significance (one-sided Mann-Whitney U test, as Kayenta judges
    canaries) by more than the tolerance: its median may exceed the baseline's by O(latency_tolerance) percent or
    O(latency_tolerance_seconds), whichever is larger. O(max_latency_p99) optionally caps the canary's 99th
    percentile."
  - Fewer than O(min_samples) canary requests make the verdict V(inconclusive); wait and judge again, or decide what
    that means. Except when their errors already show, with O(confidence), that the canary's error rate is over
    O(max_error_rate) (one-sided binomial test) - a canary that fails every request fails at once.
  - Pure Python (standard library); no SciPy or NumPy needed anywhere. The statistics match SciPy's
    C(mannwhitneyu) and C(chi2_contingency) to 1e-6 (the collection's unit tests check it).
  - The M(fleet.rollout.lb_request_log) module gives both sides from an LB's own log (its
    O(fleet.rollout.lb_request_log#module:groups) option); any other source works too, such as metrics from a
    monitoring system.
  - Never fails on a V(fail) verdict; the caller decides (for example with C(failed_when)).
author:
  - fleet.rollout maintainers (@fleet-rollout)
options:
  canary:
    description: What the canary's servers answered.
    type: dict
    required: true
    suboptions: &side
      requests:
        description: Requests answered, errors included.
        type: int
        required: true
      errors:
        description: Requests that failed - a 5xx status, or no answer at all.
        type: int
        default: 0
      latencies:
        description: Seconds each successful request took (at most O(canary.requests) values).
        type: list
        elements: float
        default: []
      consecutive_errors:
        description:
          - The longest run of requests that failed one after another (at most O(canary.errors)), for
            O(max_consecutive_errors).
        type: int
        default: 0
  baseline:
    description:
      - What the stable servers answered in the same window. With no requests, only the ceilings are checked.
    type: dict
    required: true
    suboptions: *side
  max_error_rate:
    description: Highest error rate, in percent, the canary may have, whatever the baseline's.
    type: float
    default: 1.0
  error_rate_tolerance:
    description: How many percentage points the canary's error rate may exceed the baseline's.
    type: float
    default: 1.0
  confidence:
    description:
      - Confidence the tests need before they call the canary worse (0.98 is Kayenta's default); a difference counts
        as significant when its p-value is under 1 - O(confidence).
    type: float
    default: 0.98
  latency_tolerance:
    description: How many percent slower than the baseline's median latency the canary's may be.
    type: float
    default: 10.0
  latency_tolerance_seconds:
    description: Seconds slower the canary's median may always be (when the percentage is smaller than this).
    type: float
    default: 0.005
  max_latency_p99:
    description: Highest 99th percentile latency, in seconds, the canary may have. No ceiling when unset.
    type: float
  min_samples:
    description: Canary requests needed to judge it; fewer give V(inconclusive) unless their errors prove the ceiling broken.
    type: int
    default: 50
  max_consecutive_errors:
    description:
      - A hard rule on top of the tests, as Argo Rollouts' failure limit - this many canary requests failing one after
        another (O(canary.consecutive_errors)) fail the canary at any look, interim or not, however few requests came.
      - V(0) sets no limit.
    type: int
    default: 0
  interim:
    description:
      - A look while the window still runs. The verdict is then V(fail) when the canary's errors show its error rate
        over O(max_error_rate), by a sequential test whose false-fail rate stays under 1 - O(confidence) however many
        interim looks are taken (a mixture sequential probability ratio test); otherwise V(inconclusive), to be judged
        in full at the window's end. Nothing else is judged at an interim look.
      - With interim looks every few seconds a canary failing many of its requests is stopped seconds into its step.
    type: bool
    default: false
extends_documentation_fragment:
  - fleet.rollout.attributes.read_only
seealso:
  - module: fleet.rollout.lb_request_log
notes:
  - A significant but small difference passes. With thousands of requests the tests find differences no user
    notices; the tolerances say how much worse is too much.
"""

EXAMPLES = r"""
- name: Judge the canary on what the LB saw in the last minute
  fleet.rollout.canary_analysis:
    canary: "{{ lb_log.groups.canary }}"
    baseline: "{{ lb_log.groups.baseline }}"
    max_error_rate: 0.5
    max_latency_p99: 1.5
  register: analysis
  failed_when: analysis.verdict == 'fail'

- name: Judge numbers from elsewhere (for example a monitoring system)
  fleet.rollout.canary_analysis:
    canary: {requests: 1200, errors: 3, latencies: "{{ canary_latencies }}"}
    baseline: {requests: 11000, errors: 20, latencies: "{{ stable_latencies }}"}
    confidence: 0.99
  register: analysis

- name: Look while the window runs - fail now only when the errors already prove the ceiling broken
  fleet.rollout.canary_analysis:
    canary: "{{ lb_log.groups.canary }}"
    baseline: "{{ lb_log.groups.baseline }}"
    interim: true
  register: look

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
  sample: ["canary error rate 19.33 % is over the 1.00 % ceiling (29 of 150 requests)"]
summary:
  description: The verdict, both sides' sizes, error rates and medians, and the reasons, on one line.
  returned: always
  type: str
  sample: "FAIL: canary 150 req, errors 19.33 %, p50 0.005 s; baseline 1700 req, errors 0.00 %, p50 0.005 s - ..."
canary:
  description: The canary's C(requests), C(errors), C(consecutive_errors), C(error_rate) (percent) and C(latency)
    (C(samples), C(p50), C(p95), C(p99) in seconds).
  returned: always
  type: dict
  sample: {requests: 150, errors: 0, consecutive_errors: 0, error_rate: 0.0,
           latency: {samples: 150, p50: 0.005, p95: 1.2, p99: 2.001}}
baseline:
  description: The same for the baseline.
  returned: always
  type: dict
errors:
  description:
    - The error-rate comparison - C(ceiling), C(z), C(p_value), C(significant) and C(difference) (canary minus
      baseline, in points). C(z), C(p_value) and C(difference) are null without requests on both sides.
  returned: always
  type: dict
  sample: {ceiling: 1.0, z: 9.1, p_value: 4.2e-20, significant: true, difference: 19.33}
  contains:
    sequential_p:
      description: At an interim look, the sequential test's always-valid p-value (C(z), C(p_value) and
        C(difference) are null then).
      returned: when O(interim) is true
      type: float
interim:
  description: Whether this was an interim look.
  returned: when O(interim) is true
  type: bool
latency:
  description:
    - The latency comparison - C(u) (Mann-Whitney U of the canary), C(p_value), C(significant), C(p50_shift) and
      C(allowed_shift) in seconds. Null values without latencies on both sides.
  returned: always
  type: dict
  sample: {u: 190000.0, p_value: 1.0e-30, significant: true, p50_shift: 0.3, allowed_shift: 0.005}
criteria:
  description: The criteria the verdict was reached with, defaults filled in.
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleet.rollout.plugins.module_utils._canary_analysis import CRITERIA, judge, summary_line

SIDE = dict(
    requests=dict(type="int", required=True),
    errors=dict(type="int", default=0),
    latencies=dict(type="list", elements="float", default=[]),
    consecutive_errors=dict(type="int", default=0),
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            canary=dict(type="dict", required=True, options=SIDE),
            baseline=dict(type="dict", required=True, options=SIDE),
            max_error_rate=dict(type="float", default=1.0),
            error_rate_tolerance=dict(type="float", default=1.0),
            confidence=dict(type="float", default=0.98),
            latency_tolerance=dict(type="float", default=10.0),
            latency_tolerance_seconds=dict(type="float", default=0.005),
            max_latency_p99=dict(type="float"),
            min_samples=dict(type="int", default=50),
            max_consecutive_errors=dict(type="int", default=0),
            interim=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        result = judge(p["canary"], p["baseline"], {name: p[name] for name in CRITERIA}, interim=p["interim"])
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, summary=summary_line(result), **result)


if __name__ == "__main__":
    main()
