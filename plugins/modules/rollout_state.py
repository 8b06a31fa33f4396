#!/usr/bin/python
# Copyright: fleet.rollout contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: rollout_state
short_description: Read, create and update the rollout state of a service on an LB host
version_added: 0.1.0
description:
  - Keeps the rollout state of a service (active pool, release per pool, history) in one JSON file on the
    LB host, C(<state_dir>/<service>/state.json), written atomically.
  - Creates it from O(initial) when it does not exist (an existing state is never reset by O(initial)),
    merges O(update) into it, and appends O(event) to its history (the last 50 events are kept).
  - Without O(initial), O(update) and O(event) it only reads the state; a state that does not exist is
    returned as null and is not created.
  - Changes are serialized with a lock file next to the state, so concurrent runs on one LB host do not
    lose each other's updates.
author:
  - fleet.rollout maintainers (@fleet-rollout)
attributes:
  check_mode:
    support: full
    description: Reports the state it would write; writes nothing.
  diff_mode:
    support: full
    description: Shows the JSON before and after.
options:
  service:
    description: The service name (letters, digits, V(.), V(_), V(-)).
    type: str
    required: true
  state_dir:
    description: Directory that holds one sub-directory per service.
    type: path
    default: /var/lib/fleet-rollout
  initial:
    description: The state to create when none exists yet; ignored otherwise.
    type: dict
  update:
    description: Keys to set; nested dicts are merged, other values replaced.
    type: dict
  event:
    description: A record to append to the history (a C(time) key is added).
    type: dict
"""

EXAMPLES = r"""
- name: Create the state of the shop with blue active, unless it exists
  fleet.rollout.rollout_state:
    service: shop
    initial:
      active_pool: blue

- name: Record a flip to green
  fleet.rollout.rollout_state:
    service: shop
    update:
      active_pool: green
    event:
      action: flip
      to: green

- name: Read it
  fleet.rollout.rollout_state:
    service: shop
  register: shop_state
"""

RETURN = r"""
state:
  description: The state after the task (as it would be, in check mode); null when it does not exist and was only read.
  returned: success
  type: dict
  sample: {service: shop, active_pool: green, history: [{action: flip, to: green, time: 1795000000.0}]}
state_file:
  description: The state file.
  returned: success
  type: str
  sample: /var/lib/fleet-rollout/shop/state.json
created:
  description: Whether the state did not exist before this task.
  returned: success
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleet.rollout.plugins.module_utils._rollout_state import StateError, converge


def main():
    module = AnsibleModule(
        argument_spec=dict(
            service=dict(type="str", required=True),
            state_dir=dict(type="path", default="/var/lib/fleet-rollout"),
            initial=dict(type="dict"),
            update=dict(type="dict"),
            event=dict(type="dict"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        result = converge(p["state_dir"], p["service"], initial=p["initial"], update=p["update"], event=p["event"],
                          check_mode=module.check_mode)
    except (StateError, OSError) as exc:
        module.fail_json(msg=str(exc))
    if not module._diff:
        result.pop("diff")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
