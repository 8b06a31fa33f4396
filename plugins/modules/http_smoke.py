#!/usr/bin/python
# Copyright: fleet.rollout contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: http_smoke
short_description: Smoke-test a release with a burst of HTTP requests that must all pass
version_added: 0.1.0
description:
  - Sends O(count) C(GET) requests to O(url), O(interval) seconds apart, each on a new connection (no keep-alive
    reuse, so a load balancer balances every request anew), and fails unless every one of them passed.
  - A request passes when its HTTP status is one of O(expect_status) (any 2xx when O(expect_status) is empty) and
    every header of O(expect_headers) has exactly the expected value (header names are case-insensitive, values
    are compared as they are; a header sent several times is compared as its values joined with C(", ")).
  - Each failed request gets one reason - the connection error when no (complete) answer came (V(timeout),
    V(connection refused), V(connection reset), V(name not resolved), or the name of the exception), else its
    status when that is unexpected, else the headers that differ - and the failures are grouped by reason, so
    their counts add up to RV(failed_requests).
  - Meant to be delegated to a load balancer host, to send the requests through the LB (for example its preview
    route) to a new release before it gets real traffic. Runs with Python's standard library only.
  - Redirects are not followed; a redirect is judged by its own status.
author:
  - fleet.rollout maintainers (@fleet-rollout)
attributes:
  check_mode:
    support: full
    description:
      - The requests are read-only C(GET)s, so they are sent in check mode too and the result is the same.
  diff_mode:
    support: none
    description: It changes nothing, so there is nothing to show.
options:
  url:
    description:
      - The C(http://) or C(https://) URL to request, for example V(http://127.0.0.1:80/).
      - For C(https://), the server certificate is verified against the host's trusted CAs.
    type: str
    required: true
  count:
    description:
      - Requests to send; all of them must pass.
    type: int
    default: 20
  headers:
    description:
      - Headers to send with every request, for example C(X-Rollout-Preview) to take the LB's preview route, or
        C(Host) to pick a virtual host.
      - Quote values that YAML would read as something other than text (numbers are turned into text, booleans and
        empty values are refused).
      - C(User-Agent) defaults to V(fleet.rollout-http-smoke) and C(Connection) to V(close).
    type: dict
    default: {}
  timeout:
    description:
      - Seconds to wait for the connection and for each read of one request; a request that waits longer fails
        with the reason V(timeout).
    type: float
    default: 5
  interval:
    description:
      - Seconds between the end of one request and the start of the next.
    type: float
    default: 0
  expect_status:
    description:
      - HTTP statuses that pass. Empty means any status from 200 to 299.
    type: list
    elements: int
    default: []
  expect_headers:
    description:
      - Response headers every answer must have, with exactly these values, for example
        C(X-App-Version) with the version of the new release. Quote the values, as for O(headers).
    type: dict
    default: {}
notes:
  - The module never changes anything; it always reports C(changed=false).
  - The task fails when any request failed, with a one-line summary of the failures as its message.
  - Up to 8 MiB of each body is read; the rest is not read and does not make the request fail.
seealso:
  - module: fleet.rollout.health_gate
  - module: fleet.rollout.lb_request_log
  - module: ansible.builtin.uri
"""

EXAMPLES = r"""
- name: Smoke-test the new release through the LB's preview route
  fleet.rollout.http_smoke:
    url: http://127.0.0.1:80/
    count: 20
    headers:
      X-Rollout-Preview: "1"
    expect_headers:
      X-App-Version: "2.0.0"
  delegate_to: "{{ groups['lb'][0] }}"

- name: Slower, with a virtual host, accepting a redirect to the login page too
  fleet.rollout.http_smoke:
    url: http://127.0.0.1:80/account
    count: 50
    interval: 0.1
    timeout: 2
    headers:
      Host: shop.example.org
      X-Rollout-Preview: "1"
    expect_status: [200, 302]
  delegate_to: "{{ groups['lb'][0] }}"
  register: smoke

- name: Show how long the slowest request took
  ansible.builtin.debug:
    msg: "{{ smoke.slowest }} s"
"""

RETURN = r"""
requests:
  description: Requests sent (O(count)).
  returned: always
  type: int
  sample: 20
passed:
  description: Requests that passed.
  returned: always
  type: int
  sample: 17
failed_requests:
  description:
    - Requests that failed. (The module's C(failed) is Ansible's flag of a failed task, true when this is above 0.)
  returned: always
  type: int
  sample: 3
failures:
  description:
    - The failed requests grouped by reason, most frequent first (ties - first seen first). Their counts add up
      to RV(failed_requests).
  returned: always
  type: list
  elements: dict
  contains:
    reason:
      description:
        - Why the requests failed, for example V(status 503), V(X-App-Version 1.0.0 (expected 2.0.0\)),
          V(X-App-Version missing (expected 2.0.0\)), V(timeout), V(connection refused), V(connection reset),
          V(name not resolved) or the name of the exception. Several wrong headers are joined with C("; ").
      type: str
      sample: status 503
    count:
      description: Requests that failed for this reason.
      type: int
      sample: 2
    first:
      description: Number of the first request that failed for this reason (1 for the first request sent).
      type: int
      sample: 4
  sample:
    - {reason: status 503, count: 2, first: 4}
    - {reason: X-App-Version 1.0.0 (expected 2.0.0), count: 1, first: 9}
samples:
  description: The first 5 failed requests, in the order they were sent.
  returned: always
  type: list
  elements: dict
  contains:
    index:
      description: Number of the request (1 for the first request sent).
      type: int
      sample: 4
    status:
      description: Its HTTP status; null when no (complete) answer came.
      type: int
      sample: 503
    error:
      description:
        - Why it failed - the reason for an answer, or the exception and its message when no answer came.
      type: str
      sample: "ConnectionRefusedError: [Errno 111] Connection refused"
    seconds:
      description: Seconds the request took.
      type: float
      sample: 0.004
    headers:
      description:
        - The values of the O(expect_headers) headers in the answer (null when absent); empty when no answer came.
      type: dict
      sample: {X-App-Version: 1.0.0}
seconds:
  description: Seconds all the requests took, intervals included.
  returned: always
  type: float
  sample: 0.213
slowest:
  description: Seconds the slowest request took.
  returned: always
  type: float
  sample: 0.031
statuses:
  description: Requests per HTTP status; requests with no answer are counted under their reason.
  returned: always
  type: dict
  sample: {"200": 17, "503": 2, "timeout": 1}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleet.rollout.plugins.module_utils._http_smoke import check_options, smoke, summary


def main():
    module = AnsibleModule(
        argument_spec=dict(
            url=dict(type="str", required=True),
            count=dict(type="int", default=20),
            headers=dict(type="dict", default={}),
            timeout=dict(type="float", default=5.0),
            interval=dict(type="float", default=0.0),
            expect_status=dict(type="list", elements="int", default=[]),
            expect_headers=dict(type="dict", default={}),
        ),
        supports_check_mode=True,
    )
    p = module.params
    options = dict(url=p["url"], count=p["count"], headers=p["headers"], timeout=p["timeout"], interval=p["interval"],
                   expect_status=p["expect_status"], expect_headers=p["expect_headers"])
    try:
        check_options(**options)
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    url = options["url"] = options["url"].strip()
    result = smoke(**options)
    message = summary(result, url)
    # "failed" is Ansible's flag of a failed task: the count is returned as failed_requests.
    result["failed_requests"] = result.pop("failed")
    if result["failed_requests"]:
        module.fail_json(msg=message, changed=False, **result)
    module.exit_json(changed=False, msg=message, **result)


if __name__ == "__main__":
    main()
