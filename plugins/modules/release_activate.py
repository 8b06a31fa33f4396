#!/usr/bin/python
# Copyright: fleet.rollout contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: release_activate
short_description: Activate an installed release behind its health gate, and undo it when it fails
version_added: 0.2.0
description:
  - Makes an installed release the live one of a slot in one round trip. It writes the slot's environment
    file and systemd unit when their content changed, switches the slot's C(current) link in one rename,
    restarts (or reloads, or starts) the unit and enables it, waits until the health URL answers healthy, and
    records the outcome in the release state file. Then it removes the releases beyond O(keep).
  - When any of that fails, it puts the slot back as it was (link, files, service), waits until that is
    healthy again, records the failure, removes the failed release when O(remove_failed) and fails with a
    message that says what failed and where the slot is now.
  - With O(state=restored) it undoes an activation that failed outside it (a hook of the
    C(fleet.rollout.release) role), from the files' content before the run.
  - The engine of the C(fleet.rollout.release) role (its main entry point and C(tasks_from=activate)) and of
    every strategy's batches; use the role rather than this module unless you build your own steps.
author:
  - fleet.rollout maintainers (@fleet-rollout)
attributes:
  check_mode:
    support: full
    description: Reports what would change (files, link, outcome) and changes nothing.
  diff_mode:
    support: none
    description: The files can hold secrets; the role shows what changed by name in RV(files_changed).
options:
  state:
    description:
      - V(activated) makes O(version) live; V(restored) undoes an activation of O(version) that failed
        elsewhere, putting O(live_before) and the O(files) back.
    type: str
    choices: [activated, restored]
    default: activated
  service:
    description: The service name, as recorded in the release state file.
    type: str
    required: true
  slot:
    description: The slot (V(main) without slots).
    type: str
    default: main
  root:
    description: The service's root directory, as recorded in the release state file.
    type: path
    required: true
  releases_dir:
    description: The directory of installed releases (one directory per version).
    type: path
    required: true
  current_link:
    description: The slot's C(current) link.
    type: path
    required: true
  state_file:
    description: The release state file (C(release-state.json)).
    type: path
    required: true
  version:
    description: The release to activate (installed in O(releases_dir)).
    type: str
    required: true
  sha256:
    description: The sha256 of the release's artifact, recorded in the state file.
    type: str
    default: ''
  live_before:
    description: The slot's live release before this run (empty when none).
    type: str
    default: ''
  rollback:
    description: Whether this activation is a rollback (outcome V(rolled_back) and the previous release's lineage).
    type: bool
    default: false
  files:
    description:
      - Files of the slot with the content they must have (environment file, unit). With O(state=restored),
        the content they had before the run.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: The file.
        type: path
        required: true
      content:
        description: Its content (never logged - an environment file can hold secrets).
        type: str
        required: true
      mode:
        description: Its mode (owner and group are root).
        type: str
        default: '0644'
      unit:
        description: Whether it is a systemd unit file (a change needs C(systemctl daemon-reload)).
        type: bool
        default: false
  config_changed:
    description: With O(state=restored), whether the run had changed the files (the service is restarted on them).
    type: bool
    default: false
  unit:
    description: The systemd unit of the slot.
    type: str
    required: true
  restart_mode:
    description: V(reload) reloads an active unit on a switch that changes no file; otherwise it restarts.
    type: str
    choices: [restart, reload]
    default: restart
  health:
    description: The health gate.
    type: dict
    required: true
    suboptions:
      url:
        description: The URL that must answer 200.
        type: str
        required: true
      successes:
        description: Consecutive healthy answers needed.
        type: int
        default: 3
      timeout:
        description: Seconds the gate waits at most.
        type: float
        default: 60
      interval:
        description: Seconds between two probes.
        type: float
        default: 1
  keep:
    description: Installed releases to keep after a successful activation (live and previous ones are always kept); 0 keeps all.
    type: int
    default: 0
  marker:
    description: The file in each release directory that records its artifact's sha256.
    type: str
    default: .release-sha256
  remove_failed:
    description: Remove a release that failed and was rolled back from.
    type: bool
    default: true
  history_size:
    description: Entries of the slot's history kept in the state file.
    type: int
    default: 20
  host:
    description: The host's name as the failure message shows it.
    type: str
    default: ''
  error:
    description: With O(state=restored), why the activation failed.
    type: str
    default: ''
  failed_step:
    description: With O(state=restored), the step that failed.
    type: str
    default: ''
notes:
  - Runs on the host with Python's standard library and C(systemctl).
seealso:
  - module: fleet.rollout.health_gate
  - module: fleet.rollout.release_info
"""

EXAMPLES = r"""
- name: Activate 2.0.0 (installed by the release role's stage step)
  fleet.rollout.release_activate:
    service: shop
    root: /opt/shop
    releases_dir: /opt/shop/releases
    current_link: /opt/shop/current
    state_file: /opt/shop/release-state.json
    version: 2.0.0
    live_before: 1.0.0
    unit: shop.service
    health:
      url: http://127.0.0.1:8080/healthz
    keep: 5
"""

RETURN = r"""
outcome:
  description: V(deployed), V(rolled_back), V(reconfigured), V(unchanged) or V(failed).
  returned: always
  type: str
version:
  description: The slot's live release after the run.
  returned: always
  type: str
previous:
  description: The slot's previous release after the run.
  returned: always
  type: str
switched:
  description: Whether the run switched the C(current) link.
  returned: always
  type: bool
files_changed:
  description: The files the run wrote.
  returned: always
  type: list
  elements: str
action:
  description: How the unit was (re)started (V(restart), V(reload) or V(start)).
  returned: when state=activated
  type: str
removed:
  description: Releases removed (beyond O(keep), or the failed one).
  returned: always
  type: list
  elements: str
state:
  description: The release state file's content after the run.
  returned: always
  type: dict
gate:
  description: The health gate's result (see M(fleet.rollout.health_gate)).
  returned: on success
  type: dict
steps:
  description: The steps run, in order (the last one is where a failure happened).
  returned: always
  type: list
  elements: str
back_healthy:
  description: After a failure, whether the slot answers healthy again on what it went back to.
  returned: on failure
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.fleet.rollout.plugins.module_utils._release_activate import ActivationFailed, Activation
from ansible_collections.fleet.rollout.plugins.module_utils._release_info import ReleaseInfoError


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", choices=["activated", "restored"], default="activated"),
            service=dict(type="str", required=True),
            slot=dict(type="str", default="main"),
            root=dict(type="path", required=True),
            releases_dir=dict(type="path", required=True),
            current_link=dict(type="path", required=True),
            state_file=dict(type="path", required=True),
            version=dict(type="str", required=True),
            sha256=dict(type="str", default=""),
            live_before=dict(type="str", default=""),
            rollback=dict(type="bool", default=False),
            files=dict(type="list", elements="dict", default=[], options=dict(
                path=dict(type="path", required=True),
                content=dict(type="str", required=True, no_log=True),
                mode=dict(type="str", default="0644"),
                unit=dict(type="bool", default=False),
            )),
            config_changed=dict(type="bool", default=False),
            unit=dict(type="str", required=True),
            restart_mode=dict(type="str", choices=["restart", "reload"], default="restart"),
            health=dict(type="dict", required=True, options=dict(
                url=dict(type="str", required=True),
                successes=dict(type="int", default=3),
                timeout=dict(type="float", default=60.0),
                interval=dict(type="float", default=1.0),
            )),
            keep=dict(type="int", default=0),
            marker=dict(type="str", default=".release-sha256"),
            remove_failed=dict(type="bool", default=True),
            history_size=dict(type="int", default=20),
            host=dict(type="str", default=""),
            error=dict(type="str", default=""),
            failed_step=dict(type="str", default=""),
        ),
        supports_check_mode=True,
    )
    systemctl_path = module.get_bin_path("systemctl", required=not module.check_mode)

    def systemctl(args):
        return module.run_command([systemctl_path] + args)

    activation = Activation(module.params, systemctl)
    try:
        if module.params["state"] == "restored":
            if module.check_mode:
                module.exit_json(changed=True, outcome="failed", version=module.params["live_before"], previous=None,
                                 switched=False, files_changed=[], removed=[], state=None, steps=[])
            raise activation.restore(module.params["error"] or "failed", module.params["failed_step"] or "activation")
        result = activation.run(check_mode=module.check_mode)
    except ActivationFailed as exc:
        module.fail_json(msg=str(exc), **exc.result)
    except ReleaseInfoError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
