#!/usr/bin/python
# Copyright: fleet.rollout contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: ab_report
short_description: Report an A/B test - conversion per variant, lift, significance and a decision
version_added: 0.1.0
description:
  - From what each LB saw per variant and per user, reports for every variant its users, requests, errors and
    conversions (users who reached the goal at least once), the conversion rate, and against the control the
    absolute lift (percentage points, Wald interval) and the relative lift (log interval), with their p-value
    (pooled two-proportion z-test).
  - Tests the variants together - the two-proportion z-test for two, the chi-square test of homogeneity for more -
    and says how many users each variant needs to detect O(min_effect) points over the control's rate with
    O(power) (Cohen's h, as statsmodels' C(NormalIndPower) solves it).
  - Decides - V(winner) (with the winner, the control included) once every variant has the users it needs, the test
    is significant and one variant converts better than all the others with confidence; V(no_significant_difference)
    when they have the users and it is not so; V(keep_collecting) before that. Deciding before the users are in
    would stop at chance differences.
  - "Guard rail - with O(max_error_rate), a variant other than the control whose errors prove its error rate over
    that ceiling stops the test: decision V(stop), whatever the conversions say. The proof is a sequential test
    (fleet.rollout.canary_analysis's interim test) whose chance of stopping a variant within its ceiling stays under
    1 - O(guard_confidence) however often the report is run. While the control's errors prove the control over the
    ceiling too, a variant is stopped only when it fails more than the control by over the ceiling's points with
    significance (one-sided two-proportion z-test)."
  - Counts a user seen in more than one variant (a sticky assignment never does) and returns them.
  - Pure Python (standard library). The numbers match statsmodels and SciPy to 1e-6 (the collection's unit tests
    check it).
author:
  - fleet.rollout maintainers (@fleet-rollout)
options:
  samples:
    description:
      - What each LB saw, one item per LB - per variant, per user id, C(requests), C(errors) and C(conversions) -
        counts of that user's requests, failed requests (5xx or no answer) and requests that reached the goal.
      - A user id of V("") or V(-) stands for requests without a user; they count as requests, not as users.
    type: list
    elements: dict
    required: true
  control:
    description: The variant the others are compared with.
    type: str
    default: a
  confidence:
    description: Confidence of the intervals; the tests are significant below 1 - O(confidence).
    type: float
    default: 0.95
  power:
    description: The chance of detecting an effect of O(min_effect) the sample size is chosen for.
    type: float
    default: 0.8
  min_effect:
    description: The smallest difference in conversion rate worth detecting, in percentage points over the control's.
    type: float
    default: 1.0
  max_error_rate:
    description:
      - The guard rail's ceiling - percent of failed requests (5xx or no answer) a variant's errors must not prove it
        over. No guard rail when unset.
    type: float
  guard_confidence:
    description: Confidence the guard rail needs before it stops the test.
    type: float
    default: 0.99
extends_documentation_fragment:
  - fleet.rollout.attributes.read_only
seealso:
  - name: statsmodels proportion tests
    description: The reference for the z-test, the chi-square test and the intervals.
    link: https://www.statsmodels.org/stable/stats.html#proportion
"""

EXAMPLES = r"""
- name: Report the A/B test of the shop
  fleet.rollout.ab_report:
    samples:
      - a: {"user-1": {requests: 4, errors: 0, conversions: 1}, "user-2": {requests: 2, errors: 0, conversions: 0}}
        b: {"user-3": {requests: 5, errors: 0, conversions: 1}}
    control: a
    min_effect: 2
  register: ab

- name: Show it
  ansible.builtin.debug:
    msg: "{{ ab.table }}"
"""

RETURN = r"""
variants:
  description: One entry per variant, the control first.
  returned: always
  type: list
  elements: dict
  sample:
    - {variant: a, control: true, users: 1000, requests: 3000, errors: 0, error_rate: 0.0, conversions: 95,
       conversion_rate: 9.5, lift: null, lift_ci: null, relative_lift: null, relative_lift_ci: null, p_value: null}
    - {variant: b, control: false, users: 1000, requests: 3000, errors: 0, error_rate: 0.0, conversions: 165,
       conversion_rate: 16.5, lift: 7.0, lift_ci: [4.07, 9.93], relative_lift: 73.68, relative_lift_ci: [38.5, 117.9],
       p_value: 3.25e-06}
test:
  description: The test of all variants together, C(two-proportion z) or C(chi-square); null while a variant has no users.
  returned: always
  type: str
statistic:
  description: Its statistic (z, or chi-square).
  returned: always
  type: float
p_value:
  description: Its p-value.
  returned: always
  type: float
users_needed_per_variant:
  description: Users each variant needs to detect O(min_effect) with O(power); null without a control rate yet.
  returned: always
  type: int
decision:
  description: V(winner), V(no_significant_difference), V(keep_collecting), or V(stop) when the guard rail tripped.
  returned: always
  type: str
guard:
  description:
    - The guard rail - C(max_error_rate) (null without one), C(confidence), C(p_values) (per variant, the always-valid
      p that its error rate is over the ceiling), C(tripped) (the variants whose errors prove it) and C(reason).
  returned: always
  type: dict
  sample: {max_error_rate: 1.0, confidence: 0.99, p_values: {a: 1.0, b: 1.2e-09}, tripped: [b],
           reason: "b: 40 of 130 requests failed, which proves its error rate over the 1 % ceiling (...)"}
winner:
  description: The winning variant, when the decision is V(winner).
  returned: always
  type: str
reason:
  description: Why, in one sentence.
  returned: always
  type: str
table:
  description: The report for people, one row per variant, then the test and the decision.
  returned: always
  type: str
users_in_several_variants:
  description: Users seen in more than one variant (at most 20 of them listed in RV(users_in_several_variants_sample)).
  returned: always
  type: int
users_in_several_variants_sample:
  description: Up to 20 of those users.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleet.rollout.plugins.module_utils._ab_report import build_report, merge_samples, variant_counts


def main():
    module = AnsibleModule(
        argument_spec=dict(
            samples=dict(type="list", elements="dict", required=True),
            control=dict(type="str", default="a"),
            confidence=dict(type="float", default=0.95),
            power=dict(type="float", default=0.8),
            min_effect=dict(type="float", default=1.0),
            max_error_rate=dict(type="float"),
            guard_confidence=dict(type="float", default=0.99),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        merged, several = merge_samples(p["samples"])
        report = build_report(variant_counts(merged), p["control"], p["confidence"], p["power"], p["min_effect"],
                              p["max_error_rate"], p["guard_confidence"])
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, users_in_several_variants=len(several),
                     users_in_several_variants_sample=several[:20], **report)


if __name__ == "__main__":
    main()
