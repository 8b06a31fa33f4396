#!/usr/bin/python
# Copyright: fleet.rollout contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: rollout_report
short_description: Write the report of one rollout run - JSON, Markdown and a PNG timeline
version_added: 0.1.0
description:
  - Puts together what the LBs answered during one run of a strategy, from each LB's request-log timeline
    (M(fleet.rollout.lb_request_log) with O(fleet.rollout.lb_request_log#module:timeline_interval)), and which
    version each server ran at each moment (the release role's history of each host's slot), with the steps the
    run recorded (canary steps and verdicts, ramped batches, flips).
  - Writes C(<name>.json) (everything, with the series per bucket), C(<name>.md) (a summary for people, for a
    ticket or a chat) and C(<name>.png) - the share of requests per version (stacked) over the error rate and the
    request rate, with the steps as vertical lines (green a passed step, red a failed one) - into O(dest).
  - The PNG needs matplotlib on the host the module runs on (the controller); without it the JSON and Markdown are
    still written and RV(png) is null.
  - Runs on the controller (delegated to localhost); the strategies call it at the end of every run.
author:
  - fleet.rollout maintainers (@fleet-rollout)
attributes:
  check_mode:
    support: full
    description: Builds the report and returns its totals; writes nothing.
  diff_mode:
    support: none
    description: The files are new for each run.
options:
  dest:
    description: The directory to write into; created when missing.
    type: path
    required: true
  name:
    description: The files' base name (letters, digits, V(.), V(_), V(-)).
    type: str
    required: true
  run:
    description:
      - The run - C(service), C(strategy), C(version), C(outcome), C(owner), C(id), C(error), and C(since) and
        C(until) (epoch seconds, the window the report covers).
    type: dict
    required: true
  event:
    description: What the run recorded in the LB history (its steps, flips...), for the marks.
    type: dict
    default: {}
  timelines:
    description: Each LB's timeline (RV(fleet.rollout.lb_request_log#module:timeline)), null for an LB whose log was not read.
    type: dict
    required: true
  servers:
    description: Each server as the timelines name it, C(pool/server), to its C([host, slot]).
    type: dict
    required: true
  releases:
    description:
      - Each C(host/slot) to the release role's history of that slot (entries with C(time) and C(version)), which
        says what the server ran when.
    type: dict
    required: true
  plot:
    description: Draw the PNG (when matplotlib is there).
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Write the report of this run on the controller
  fleet.rollout.rollout_report:
    dest: "{{ playbook_dir }}/rollout-reports"
    name: "shop-{{ run_id }}"
    run: {service: shop, strategy: canary, version: 2.0.0, outcome: promoted, id: "{{ run_id }}",
          since: "{{ started }}", until: "{{ ended }}"}
    event: "{{ recorded_event }}"
    timelines: "{{ dict(groups['lb'] | zip(lb_logs.results | map(attribute='timeline'))) }}"
    servers: {"main/app1": [app1, main], "main/app2": [app2, main]}
    releases: {"app1/main": "{{ app1_history }}", "app2/main": "{{ app2_history }}"}
  delegate_to: localhost
"""

RETURN = r"""
json:
  description: The JSON report's path.
  returned: success
  type: str
  sample: /home/ops/rollout-reports/shop-20261203T051340Z-44253.json
markdown:
  description: The Markdown report's path.
  returned: success
  type: str
png:
  description: The PNG timeline's path; null when matplotlib is missing or O(plot=false).
  returned: success
  type: str
totals:
  description: Requests, failures (C(errors), C(error_rate) in percent), maintenance answers and C(by_version).
  returned: success
  type: dict
  sample: {requests: 7235, errors: 0, error_rate: 0.0, maintenance: 0, by_version: {"1.0.0": {requests: 3891, errors: 0}}}
marks:
  description: The steps marked on the timeline (C(t), C(label), C(kind), and C(verdict) for a judged step).
  returned: success
  type: list
  elements: dict
"""

import os
import re

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleet.rollout.plugins.module_utils._atomic_file import write_atomic
from ansible_collections.fleet.rollout.plugins.module_utils._rollout_report import (
    build, markdown, plot, release_changes, to_json,
)

SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*\Z")


def main():
    module = AnsibleModule(
        argument_spec=dict(
            dest=dict(type="path", required=True),
            name=dict(type="str", required=True),
            run=dict(type="dict", required=True),
            event=dict(type="dict", default={}),
            timelines=dict(type="dict", required=True),
            servers=dict(type="dict", required=True),
            releases=dict(type="dict", required=True),
            plot=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    p = module.params
    problems = []
    if not SAFE_NAME.match(p["name"]):
        problems.append("name: expected a file name (letters, digits, '.', '_', '-'), got %r" % p["name"])
    run = dict(p["run"])
    for key in ("since", "until"):
        try:
            run[key] = float(run[key])
        except (KeyError, TypeError, ValueError):
            problems.append("run.%s: expected epoch seconds, got %r" % (key, run.get(key)))
    bad_servers = sorted(k for k, v in p["servers"].items() if not isinstance(v, (list, tuple)) or len(v) != 2)
    if bad_servers:
        problems.append("servers: expected [host, slot] for each server, not for %s" % ", ".join(bad_servers))
    if problems:
        module.fail_json(msg="; ".join(problems))

    changes = {key: release_changes(history) for key, history in p["releases"].items()}
    report = build(run, p["event"], p["timelines"], p["servers"], changes)
    base = os.path.join(p["dest"], p["name"])
    paths = {"json": base + ".json", "markdown": base + ".md", "png": None}
    if not module.check_mode:
        try:
            os.makedirs(p["dest"], exist_ok=True)
            plotted = p["plot"] and plot(report, base + ".png")
            paths["png"] = base + ".png" if plotted else None
            write_atomic(paths["json"], to_json(report), mode=0o644)
            write_atomic(paths["markdown"], markdown(report, os.path.basename(paths["png"]) if plotted else None,
                                                     os.path.basename(paths["json"])), mode=0o644)
        except OSError as exc:
            module.fail_json(msg="writing the report into %s: %s" % (p["dest"], exc))
    module.exit_json(changed=not module.check_mode, totals=report["totals"], marks=report["marks"], **paths)


if __name__ == "__main__":
    main()
