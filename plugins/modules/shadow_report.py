#!/usr/bin/python
# Copyright: fleet.rollout contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: shadow_report
short_description: Compare a shadow pool's answers to mirrored live requests with the primary's
version_added: 0.1.0
description:
  - Reads, on an nginx LB host, the service's access log (the primary's answers, written by the
    M(fleet.rollout.nginx) role) and the shadow relay's log (the shadow pool's answers to the mirrored requests,
    written by the relay the P(fleet.rollout.shadow#role) role runs), joins them by request id over a time window and
    judges the shadow - requests compared, the shadow's error rate, status mismatches with the paths where they
    happen most, latency p50/p95/p99 of both and their difference - against thresholds.
  - Each LB host holds its own logs. Run it with O(return_rows=true) on every LB host but one, and on the last with
    O(merge) set to those results, to judge the requests of every LB together.
  - Reads only; changes nothing.
author:
  - fleet.rollout maintainers (@fleet-rollout)
options:
  service:
    description: The service (as in C(rollout_services)).
    type: str
    required: true
  since:
    description: Start of the window, seconds since the epoch; requests mirrored before it are left out.
    type: float
    required: true
  until:
    description: End of the window, seconds since the epoch. Defaults to now.
    type: float
  settle:
    description:
      - Seconds after O(until) to wait before reading, so that the shadow's answers to the last requests of the
        window are in the relay's log; set it to the relay's timeout to count a request that timed out as failed
        rather than missing. Waits only for what is left of it.
    type: float
    default: 1.0
  nginx_log_dir:
    description: Directory of the nginx role's access logs (C(fleet-<service>.access.json)).
    type: path
    default: /var/log/nginx
  relay_log:
    description: The shadow relay's log of the service.
    type: path
    required: true
  merge:
    description: Results of this module on the other LB hosts, run with O(return_rows=true), to judge with this host's.
    type: list
    elements: dict
    default: []
  return_rows:
    description: Also return RV(rows), one per mirrored request, for another host's O(merge).
    type: bool
    default: false
  max_error_rate:
    description: The most failed shadow answers (no answer or 5xx) allowed, percent of the requests sent to it.
    type: float
    default: 1.0
  max_mismatch_rate:
    description: The most answers allowed with another status than the primary's, percent of those compared.
    type: float
    default: 1.0
  max_latency_increase:
    description: The most seconds the shadow's p99 latency may exceed the primary's on the same requests.
    type: float
    default: 0.25
  max_dropped_rate:
    description:
      - The most mirrored requests the relay may drop because the shadow did not keep up (its queue was full),
        percent.
    type: float
    default: 5.0
  min_compared:
    description: The fewest requests compared for a verdict; fewer fails the report (too little evidence).
    type: int
    default: 100
extends_documentation_fragment:
  - fleet.rollout.attributes.read_only
notes:
  - The window is compared with the logs' own timestamps, taken on the LB host; keep LB hosts and the controller in
    time sync (NTP).
seealso:
  - module: fleet.rollout.lb_request_log
  - module: fleet.rollout.canary_analysis
"""

EXAMPLES = r"""
- name: Read the mirrored requests on every LB but the first
  fleet.rollout.shadow_report:
    service: shop
    since: "{{ shadow_started }}"
    relay_log: /var/log/fleet-rollout/shadow-shop.jsonl
    return_rows: true
  delegate_to: "{{ item }}"
  loop: "{{ groups['lb'][1:] }}"
  register: shadow_rows

- name: Judge the shadow on every LB's requests
  fleet.rollout.shadow_report:
    service: shop
    since: "{{ shadow_started }}"
    relay_log: /var/log/fleet-rollout/shadow-shop.jsonl
    merge: "{{ shadow_rows.results }}"
    max_error_rate: 0.5
    max_latency_increase: 0.1
  delegate_to: "{{ groups['lb'][0] }}"
  register: shadow

- name: Stop on a failed report
  ansible.builtin.fail:
    msg: "{{ shadow.reasons | join('; ') }}"
  when: not shadow.passed
"""

RETURN = r"""
verdict:
  description: V(pass) or V(fail).
  returned: always
  type: str
  sample: pass
passed:
  description: Whether the shadow passed.
  returned: always
  type: bool
reasons:
  description: Each criterion the shadow failed, with its numbers; empty when it passed.
  returned: always
  type: list
  elements: str
  sample: ["shadow error rate 20.00 % above max_error_rate (1.0 %)"]
summary:
  description: The verdict and its main numbers on one line.
  returned: always
  type: str
primary_requests:
  description: The service's requests the LBs answered in the window (mirrored or not).
  returned: always
  type: int
  sample: 6000
mirrored:
  description: Mirrored requests of the window whose primary answer is in the LB's log.
  returned: always
  type: int
  sample: 3000
unmatched:
  description: Mirrored requests without a primary answer in the log (the edge of the window).
  returned: always
  type: int
  sample: 0
dropped:
  description: Mirrored requests the relay dropped because its queue was full; they never reached the shadow.
  returned: always
  type: int
  sample: 0
dropped_rate:
  description: RV(dropped), percent of RV(mirrored).
  returned: always
  type: float
sent:
  description: Mirrored requests the relay sent to the shadow (RV(mirrored) less RV(dropped)).
  returned: always
  type: int
compared:
  description: Requests the shadow answered, whose status and latency are compared with the primary's.
  returned: always
  type: int
  sample: 3000
shadow_failed:
  description: Requests sent to the shadow that got no answer or a 5xx.
  returned: always
  type: int
shadow_error_rate:
  description: RV(shadow_failed), percent of RV(sent).
  returned: always
  type: float
shadow_errors:
  description: Why the shadow gave no answer (connection refused, timed out), with counts; at most five kinds.
  returned: always
  type: dict
  sample: {"ConnectionRefusedError: [Errno 111] Connection refused": 12}
status_mismatches:
  description: Compared requests the shadow answered with another status than the primary.
  returned: always
  type: int
mismatch_rate:
  description: RV(status_mismatches), percent of RV(compared).
  returned: always
  type: float
top_mismatches:
  description: The five commonest mismatches - method, path, primary and shadow status, requests.
  returned: always
  type: list
  elements: dict
  sample: [{method: GET, path: /checkout, primary_status: 200, shadow_status: 500, requests: 31}]
latency:
  description:
    - Seconds the primary and the shadow took for the compared requests (C(p50), C(p95), C(p99); null with none),
      and C(difference), shadow minus primary. The primary's is the time its app took as nginx logged it; the
      shadow's is the time the relay waited for its answer.
  returned: always
  type: dict
  sample: {primary: {p50: 0.004, p95: 0.009, p99: 0.02}, shadow: {p50: 0.005, p95: 0.01, p99: 0.022},
           difference: {p50: 0.001, p95: 0.001, p99: 0.002}}
criteria:
  description: The thresholds the shadow was judged against.
  returned: always
  type: dict
since:
  description: The window's start.
  returned: always
  type: float
until:
  description: The window's end.
  returned: always
  type: float
rows:
  description:
    - With O(return_rows), one entry per mirrored request of this host - C(id), C(method), C(path),
      C(primary_status), C(primary_seconds), C(shadow_status), C(shadow_seconds), C(shadow_error).
  returned: when O(return_rows=true)
  type: list
  elements: dict
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleet.rollout.plugins.module_utils._lb_request_log import read_file_lines, wait_for_window
from ansible_collections.fleet.rollout.plugins.module_utils._shadow_report import (
    ROW_KEYS, build_report, rows, summary_line,
)


def _merged(results) -> tuple[list, int, int]:
    """Rows and counts of other hosts' results (a registered loop's entries included)."""
    merged_rows, primary, unmatched = [], 0, 0
    for index, result in enumerate(results):
        if not isinstance(result.get("rows"), list):
            raise ValueError("merge[%d]: expected a result of this module run with return_rows=true" % index)
        for row in result["rows"]:
            if not isinstance(row, dict) or not set(ROW_KEYS) <= set(row):
                raise ValueError("merge[%d]: a row without %s" % (index, ", ".join(ROW_KEYS)))
        merged_rows.extend(result["rows"])
        primary += int(result.get("primary_requests", 0))
        unmatched += int(result.get("unmatched", 0))
    return merged_rows, primary, unmatched


def main():
    module = AnsibleModule(
        argument_spec=dict(
            service=dict(type="str", required=True),
            since=dict(type="float", required=True),
            until=dict(type="float"),
            settle=dict(type="float", default=1.0),
            nginx_log_dir=dict(type="path", default="/var/log/nginx"),
            relay_log=dict(type="path", required=True),
            merge=dict(type="list", elements="dict", default=[]),
            return_rows=dict(type="bool", default=False),
            max_error_rate=dict(type="float", default=1.0),
            max_mismatch_rate=dict(type="float", default=1.0),
            max_latency_increase=dict(type="float", default=0.25),
            max_dropped_rate=dict(type="float", default=5.0),
            min_compared=dict(type="int", default=100),
        ),
        supports_check_mode=True,
    )
    p = module.params
    criteria = dict((key, p[key]) for key in ("max_error_rate", "max_mismatch_rate", "max_latency_increase",
                                              "max_dropped_rate", "min_compared"))
    try:
        until = wait_for_window(p["service"], p["since"], p["until"], p["settle"])
        access = os.path.join(p["nginx_log_dir"], "fleet-%s.access.json" % p["service"])
        relay = read_file_lines(p["relay_log"]) if os.path.exists(p["relay_log"]) else []
        here = rows(read_file_lines(access), relay, p["service"], p["since"], until)
        other_rows, other_primary, other_unmatched = _merged(p["merge"])
        report = build_report(here["rows"] + other_rows, criteria, here["primary_requests"] + other_primary,
                              here["unmatched"] + other_unmatched)
    except (OSError, ValueError) as exc:
        module.fail_json(msg=str(exc))
    if p["return_rows"]:
        report["rows"] = here["rows"]
    module.exit_json(changed=False, summary=summary_line(report), since=p["since"], until=until, **report)


if __name__ == "__main__":
    main()
