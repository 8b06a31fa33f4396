#!/usr/bin/python
# Copyright: fleet.rollout contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: rollout_lock
short_description: One rollout of a service at a time - a lock with owner and expiry on the LB host
version_added: 0.1.0
description:
  - Takes, refreshes, releases or reads the rollout lock of a service, C(<state_dir>/<service>/lock.json) on
    the LB host, so two rollouts of the same service cannot interleave.
  - A lock held by another owner and not yet expired is refused with the owner's name and since when it
    runs. A lock past its expiry is stale and is taken over (the result says whose it was). O(force) breaks
    a live lock explicitly.
  - The owner taking a lock it already holds refreshes its expiry (a rerun resumes).
author:
  - fleet.rollout maintainers (@fleet-rollout)
attributes:
  check_mode:
    support: full
    description: Reports what would happen; writes nothing.
  diff_mode:
    support: none
    description: The lock is reported in RV(holder) instead.
options:
  service:
    description: The service name.
    type: str
    required: true
  state:
    description:
      - V(acquired) takes or refreshes the lock; V(released) gives it back; V(query) only reads it.
    type: str
    choices: [acquired, released, query]
    default: acquired
  owner:
    description:
      - Who holds the lock, for example C(user@controller (AWX job 123)). Required unless O(state=query).
    type: str
  ttl:
    description: Seconds the lock stays valid after it was taken or refreshed; above 0 and at most 604800 (7 days).
    type: float
    default: 3600
  force:
    description:
      - Take or release the lock even if another owner holds it and it has not expired.
      - A corrupt lock file (not JSON, no owner, or a start or expiry that is not a time) is never taken without it.
    type: bool
    default: false
  take_over:
    description:
      - The owner of a lock whose run is known to be gone (for example a run of this controller whose process
        has exited, see P(fleet.rollout.lock_run_gone#filter)). That lock is taken over even if it has not
        expired; a lock held by anyone else is refused as usual. Checked under the lock file's own lock, so a
        run that took the lock in between is not broken.
    type: str
  info:
    description: Anything to record with the lock (strategy, version, step).
    type: dict
  state_dir:
    description: Directory that holds one sub-directory per service.
    type: path
    default: /var/lib/fleet-rollout
"""

EXAMPLES = r"""
- name: Take the rollout lock of the shop on every LB
  fleet.rollout.rollout_lock:
    service: shop
    owner: "{{ lookup('ansible.builtin.env', 'USER') }}@{{ lookup('ansible.builtin.pipe', 'hostname') }}"
    ttl: 1800
    info:
      strategy: ramped
      version: 2.0.0

- name: Give it back
  fleet.rollout.rollout_lock:
    service: shop
    owner: "{{ lookup('ansible.builtin.env', 'USER') }}@{{ lookup('ansible.builtin.pipe', 'hostname') }}"
    state: released
"""

RETURN = r"""
holder:
  description:
    - The lock after the task (null when free); as it would be in check mode.
    - A corrupt lock file is returned with the reason in its C(corrupt) key (and in its owner); it never counts
      as stale.
  returned: always
  type: dict
  sample: {owner: ops@awx, started: 1795000000.0, expires: 1795001800.0, info: {strategy: ramped}}
stale:
  description: Whether the lock found was past its expiry.
  returned: always
  type: bool
broken:
  description: The lock of another owner that was taken over or released (stale or forced), else null.
  returned: always
  type: dict
lock_file:
  description: The lock file.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleet.rollout.plugins.module_utils._rollout_lock import LockHeld, converge
from ansible_collections.fleet.rollout.plugins.module_utils._rollout_state import StateError


def main():
    module = AnsibleModule(
        argument_spec=dict(
            service=dict(type="str", required=True),
            state=dict(type="str", choices=["acquired", "released", "query"], default="acquired"),
            owner=dict(type="str"),
            ttl=dict(type="float", default=3600.0),
            force=dict(type="bool", default=False),
            take_over=dict(type="str"),
            info=dict(type="dict"),
            state_dir=dict(type="path", default="/var/lib/fleet-rollout"),
        ),
        required_if=[("state", "acquired", ("owner",)), ("state", "released", ("owner",))],
        supports_check_mode=True,
    )
    p = module.params
    try:
        result = converge(p["state_dir"], p["service"], p["state"], p["owner"] or "", ttl=p["ttl"], force=p["force"],
                          info=p["info"], check_mode=module.check_mode, take_over=p["take_over"])
    except LockHeld as exc:
        module.fail_json(msg=str(exc), holder=exc.holder)
    except (StateError, OSError) as exc:
        module.fail_json(msg=str(exc))
    if result.get("broken"):
        module.warn("took over the rollout lock of %s held by %s" % (p["service"], result["broken"].get("owner")))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
