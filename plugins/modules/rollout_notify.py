#!/usr/bin/python
# Copyright: fleet.rollout contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: rollout_notify
short_description: Send a rollout event to webhooks, never failing the rollout
version_added: 0.1.0
description:
  - POSTs one rollout event (JSON, as the P(fleet.rollout.rollout_event#filter) filter builds it) to every webhook
    at once, each bounded by O(timeout).
  - A webhook that cannot be reached or answers an error is a warning and a line of RV(sent), not a failure, since a
    notification must not change how a rollout ends. Only malformed input fails the task.
  - The strategies send their events with it when C(rollout_notify_webhooks) is set (see the events page of the
    docs), from the controller (C(delegate_to=localhost)); any host that reaches the webhooks will do.
author:
  - fleet.rollout maintainers (@fleet-rollout)
attributes:
  check_mode:
    support: full
    description: Sends nothing; RV(sent) is empty.
  diff_mode:
    support: none
    description: Nothing on the host changes.
options:
  webhooks:
    description:
      - Where to send the event; each a URL (C(http://) or C(https://)) or a dict with C(url) and C(headers)
        (for example an C(Authorization) header).
      - Never logged, nor named in results or warnings (URLs often carry a token); a webhook is named by its place
        in the list, from 1.
    type: list
    elements: raw
    required: true
  event:
    description: The event, a dict with at least C(event) (its name) and C(message).
    type: dict
    required: true
  timeout:
    description: Seconds each webhook has to answer; above 0 and at most 60.
    type: float
    default: 5
"""

EXAMPLES = r"""
- name: Tell the chat room that the canary of shop failed
  fleet.rollout.rollout_notify:
    webhooks:
      - "{{ chat_webhook_url }}"
      - url: https://incidents.example.com/api/events
        headers:
          Authorization: "Bearer {{ incident_token }}"
    event: "{{ 'failed' | fleet.rollout.rollout_event({'service': 'shop', 'strategy': 'canary', 'version': '2.0.0'}) }}"
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
sent:
  description: One result per webhook, in the order given (empty in check mode).
  returned: always
  type: list
  elements: dict
  contains:
    index:
      description: The webhook's place in O(webhooks), from 1.
      type: int
    status:
      description: The HTTP status it answered, or null when it did not answer.
      type: int
    error:
      description: Why the event was not taken (an HTTP status of 300 or above, a refused connection, a timeout), or null.
      type: str
    seconds:
      description: How long the webhook took.
      type: float
  sample: [{index: 1, status: 204, error: null, seconds: 0.012}]
failed_webhooks:
  description: How many webhooks did not take the event.
  returned: always
  type: int
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleet.rollout.plugins.module_utils._rollout_event import send, webhook_problems


def main():
    module = AnsibleModule(
        argument_spec=dict(
            webhooks=dict(type="list", elements="raw", required=True, no_log=True),
            event=dict(type="dict", required=True),
            timeout=dict(type="float", default=5.0),
        ),
        supports_check_mode=True,
    )
    p = module.params
    problems = webhook_problems(p["webhooks"])
    if not 0 < p["timeout"] <= 60:
        problems.append("timeout: expected seconds above 0 and at most 60, got %s" % p["timeout"])
    if not isinstance(p["event"].get("event"), str):
        problems.append("event: expected a rollout event with its name in 'event'")
    if problems:
        module.fail_json(msg="webhooks: " + "; ".join(problems))
    if module.check_mode:
        module.exit_json(changed=False, sent=[], failed_webhooks=0)
    sent = send(p["webhooks"], p["event"], timeout=p["timeout"])
    refused = [result for result in sent if result["error"] or not result["status"] or result["status"] >= 300]
    for result in refused:
        module.warn("webhook %d of %d did not take the %s event: %s" % (
            result["index"], len(sent), p["event"]["event"], result["error"] or "HTTP %s" % result["status"]))
    module.exit_json(changed=len(refused) < len(sent), sent=sent, failed_webhooks=len(refused))


if __name__ == "__main__":
    main()
