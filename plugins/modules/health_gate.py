#!/usr/bin/python
# Copyright: fleet.rollout contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: health_gate
short_description: Wait until a URL answers healthy several times in a row
version_added: 0.1.0
description:
  - Sends a C(GET) to O(url) every O(interval) seconds until it has answered healthy O(successes) times in a
    row, or fails once O(timeout) seconds have passed.
  - An answer is healthy when its HTTP status is one of O(status_codes) and, with O(body_contains), its body
    contains that text. A connection error, a timeout or any other status resets the count, so a flapping
    service does not pass.
  - Redirects are not followed; a redirect is judged by its own status.
  - The failure message names the URL, the longest run of consecutive successes seen against the number
    needed, and the last answer (status and body excerpt, or the connection error).
  - Runs on the managed node with Python's standard library only, so it can probe a service bound to
    loopback; delegate it to probe from elsewhere.
author:
  - fleet.rollout maintainers (@fleet-rollout)
attributes:
  check_mode:
    support: full
    description:
      - In check mode nothing is probed, because a gate must not pass vacuously for a service that check mode
        did not really deploy. The task is reported as skipped, with RV(healthy=null) and RV(attempts=0).
  diff_mode:
    support: none
    description: It changes nothing, so there is nothing to show.
options:
  url:
    description:
      - The C(http://) or C(https://) URL to probe, for example V(http://127.0.0.1:8080/healthz).
    type: str
    required: true
  successes:
    description:
      - Healthy answers needed in a row.
    type: int
    default: 3
  timeout:
    description:
      - Seconds to reach O(successes) before the task fails. A request in flight at the deadline is cut short,
        so the task takes about this long at most.
    type: float
    default: 60
  interval:
    description:
      - Seconds between the end of one probe and the start of the next.
    type: float
    default: 1
  request_timeout:
    description:
      - Seconds one request may take; a slower answer counts as unhealthy.
    type: float
    default: 5
  status_codes:
    description:
      - HTTP statuses that count as healthy.
    type: list
    elements: int
    default: [200]
  body_contains:
    description:
      - Text the body must contain to count as healthy (the first 64 KiB are read).
    type: str
notes:
  - The module never changes anything; it always reports C(changed=false).
seealso:
  - module: ansible.builtin.uri
  - module: ansible.builtin.wait_for
"""

EXAMPLES = r"""
- name: Wait until the new release answered healthy 3 times in a row (at most 60 s)
  fleet.rollout.health_gate:
    url: http://127.0.0.1:8080/healthz

- name: A stricter gate, probing every 200 ms, that also checks the body
  fleet.rollout.health_gate:
    url: http://127.0.0.1:8080/healthz
    successes: 10
    interval: 0.2
    timeout: 30
    body_contains: ok

- name: Probe an app host from the load balancer, accepting 200 and 204
  fleet.rollout.health_gate:
    url: "http://{{ inventory_hostname }}:8080/healthz"
    status_codes: [200, 204]
  delegate_to: "{{ groups['lb'][0] }}"
"""

RETURN = r"""
healthy:
  description: Whether the URL answered healthy O(successes) times in a row in time; null in check mode.
  returned: always
  type: bool
  sample: true
attempts:
  description: Requests sent.
  returned: always
  type: int
  sample: 3
consecutive:
  description: Healthy answers in a row at the end.
  returned: always
  type: int
  sample: 3
best_consecutive:
  description: The longest run of healthy answers in a row that was seen.
  returned: always
  type: int
  sample: 3
elapsed:
  description: Seconds the gate took.
  returned: always
  type: float
  sample: 2.013
last_status:
  description: HTTP status of the last answer; null when it got none (or in check mode).
  returned: always
  type: int
  sample: 200
last_error:
  description: Why the last answer was unhealthy (connection error, timeout, unexpected status or body); null when healthy.
  returned: always
  type: str
  sample: "[Errno 111] Connection refused"
last_body:
  description: The first 200 characters of the last answer's body.
  returned: always
  type: str
  sample: "ok\n"
"""

from urllib.parse import urlsplit

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleet.rollout.plugins.module_utils._health_gate import GateFailed, wait_healthy


def main():
    module = AnsibleModule(
        argument_spec=dict(
            url=dict(type="str", required=True),
            successes=dict(type="int", default=3),
            timeout=dict(type="float", default=60.0),
            interval=dict(type="float", default=1.0),
            request_timeout=dict(type="float", default=5.0),
            status_codes=dict(type="list", elements="int", default=[200]),
            body_contains=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    problems = []
    url = urlsplit(p["url"].strip())
    if url.scheme not in ("http", "https") or not url.netloc:
        problems.append("url must be an http:// or https:// URL with a host, got %r" % p["url"])
    if p["successes"] < 1:
        problems.append("successes must be at least 1, got %s" % p["successes"])
    for name in ("timeout", "interval", "request_timeout"):
        if p[name] <= 0:
            problems.append("%s must be above 0 seconds, got %s" % (name, p[name]))
    if not p["status_codes"]:
        problems.append("status_codes must list at least one HTTP status")
    bad_codes = [code for code in p["status_codes"] if not 100 <= code <= 599]
    if bad_codes:
        problems.append("status_codes must be HTTP statuses (100-599), got %s" % bad_codes)
    if problems:
        module.fail_json(msg="; ".join(problems))

    if module.check_mode:
        module.exit_json(changed=False, skipped=True, msg="check mode: %s was not probed" % p["url"], healthy=None,
                         attempts=0, consecutive=0, best_consecutive=0, elapsed=0.0, last_status=None,
                         last_error=None, last_body="")
    try:
        result = wait_healthy(
            p["url"].strip(), successes=p["successes"], timeout=p["timeout"], interval=p["interval"],
            request_timeout=p["request_timeout"], status_codes=p["status_codes"], body_contains=p["body_contains"],
        )
    except GateFailed as exc:
        module.fail_json(msg=str(exc), changed=False, **exc.result)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
